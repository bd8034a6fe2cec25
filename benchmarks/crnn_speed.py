"""CRNN serving speed: plates/s at batch 64 and latency at batch 1, with preprocessing timed apart.

    python benchmarks/crnn_speed.py --model platepilot/assets/florida_plate_ocr.onnx

Reads synthetic crops (`platepilot.plates.synth`, stream 0) with `CRNNOCRService` exactly as the
edge runtime does, prints a table and writes benchmarks/results/crnn_speed.json. Targets (issue 4):
>= 1,000 plates/s at batch 64 and p50 < 3 ms at batch 1 on a 2-core CPU.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from platepilot.ocr.crnn_service import BEAM_SKIP_PATH_PROB, CRNNOCRService, decode_read
from platepilot.ocr.spec import preprocess
from platepilot.plates.synth import synth_sample

TARGET_PLATES_PER_S = 1000.0
TARGET_P50_MS = 3.0
BATCH = 64
T = TypeVar("T")


def _timed(fn: Callable[..., T], *args: Any) -> tuple[float, T]:
    """(seconds, result) of one call."""
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def bench_batch(service: CRNNOCRService, crops: list[np.ndarray], runs: int, beam_width: int) -> dict[str, Any]:
    """End-to-end plates/s over all crops in batches of 64 (median of `runs`), and its parts per plate."""
    batches = [crops[i : i + BATCH] for i in range(0, len(crops), BATCH)]
    totals, pre, net, dec = [], [], [], []
    for _ in range(runs):
        totals.append(_timed(service.read, crops)[0])
        t_pre = t_net = t_dec = 0.0
        for batch in batches:
            dt, tensor = _timed(preprocess, batch, service.spec)
            t_pre += dt
            dt, probs = _timed(service.infer, tensor)
            t_net += dt
            dt, _ = _timed(lambda p: [decode_read(x, service.spec.charset, beam_width) for x in p], probs)
            t_dec += dt
        pre.append(t_pre)
        net.append(t_net)
        dec.append(t_dec)
    n = len(crops)
    return {
        "plates_per_s": n / statistics.median(totals),
        "runs_plates_per_s": [round(n / t, 1) for t in totals],
        "network_plates_per_s": n / statistics.median(net),
        "preprocess_ms_per_plate": 1e3 * statistics.median(pre) / n,
        "network_ms_per_plate": 1e3 * statistics.median(net) / n,
        "decode_ms_per_plate": 1e3 * statistics.median(dec) / n,
    }


def bench_single(service: CRNNOCRService, crops: list[np.ndarray], calls: int) -> dict[str, float]:
    """Latency of `read([crop])`, one crop per call, and of its preprocessing alone; milliseconds."""
    total, pre = [], []
    for i in range(calls):
        crop = crops[i % len(crops)]
        total.append(_timed(service.read, [crop])[0])
        pre.append(_timed(preprocess, [crop], service.spec)[0])
    return {
        "p50_ms": 1e3 * float(np.percentile(total, 50)),
        "p95_ms": 1e3 * float(np.percentile(total, 95)),
        "preprocess_p50_ms": 1e3 * float(np.percentile(pre, 50)),
    }


def beam_fraction(service: CRNNOCRService, crops: list[np.ndarray]) -> float:
    """Share of crops whose read is unsure enough to run the beam search (the slow part of decoding)."""
    probs = service.probabilities(crops[:BATCH])
    return float(np.mean(probs.max(axis=-1).prod(axis=-1) <= BEAM_SKIP_PATH_PROB))


def main(
    model: Path = typer.Option(..., "--model", "-m", help="CRNN .onnx with its sidecar."),
    crops: int = typer.Option(640, help="Synthetic crops read per batch-64 run."),
    runs: int = typer.Option(5, help="Batch-64 runs; the median is reported."),
    calls: int = typer.Option(200, help="Batch-1 calls for the latency percentiles."),
    threads: int | None = typer.Option(None, help="onnxruntime intra-op threads (default: per core)."),
    beam_width: int = typer.Option(8, help="Beam width; 0 times greedy decoding only."),
    out: Path = typer.Option(Path("benchmarks/results/crnn_speed.json"), help="JSON results file."),
) -> None:
    """Measure, print a table, write JSON."""
    console = Console()
    service = CRNNOCRService(model, batch_size=BATCH, threads=threads, beam_width=beam_width)
    with console.status(f"rendering {crops} synthetic crops"):
        images = [synth_sample(0, i).image for i in range(crops)]
    service.warmup(iterations=3)
    batch = bench_batch(service, images, runs, beam_width)
    single = bench_single(service, images, calls)
    result = {
        "model": str(model),
        "architecture": service.card.architecture,
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "threads": threads,
        "beam_width": beam_width,
        "crops": crops,
        "beam_fraction": beam_fraction(service, images),
        "batch64": {k: round(v, 3) if isinstance(v, float) else v for k, v in batch.items()},
        "batch1": {k: round(v, 3) for k, v in single.items()},
        "targets": {
            "plates_per_s": TARGET_PLATES_PER_S,
            "p50_ms": TARGET_P50_MS,
            "met": batch["plates_per_s"] >= TARGET_PLATES_PER_S and single["p50_ms"] < TARGET_P50_MS,
        },
    }
    table = Table(title=f"CRNN speed: {model}")
    table.add_column("measure")
    table.add_column("value", justify="right")
    table.add_column("target", justify="right")
    target = f">= {TARGET_PLATES_PER_S:,.0f}"
    table.add_row("batch 64: plates/s (end to end)", f"{batch['plates_per_s']:,.0f}", target)
    table.add_row("batch 64: plates/s (network only)", f"{batch['network_plates_per_s']:,.0f}", "")
    table.add_row("  preprocess ms/plate", f"{batch['preprocess_ms_per_plate']:.3f}", "")
    table.add_row("  network ms/plate", f"{batch['network_ms_per_plate']:.3f}", "")
    table.add_row("  decode ms/plate", f"{batch['decode_ms_per_plate']:.3f}", "")
    table.add_row("batch 1: p50 ms", f"{single['p50_ms']:.2f}", f"< {TARGET_P50_MS:.0f}")
    table.add_row("batch 1: p95 ms", f"{single['p95_ms']:.2f}", "")
    table.add_row("batch 1: preprocess p50 ms", f"{single['preprocess_p50_ms']:.3f}", "")
    table.add_row("crops needing the beam search", f"{result['beam_fraction']:.0%}", "")
    console.print(table)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {out}")


if __name__ == "__main__":
    typer.run(main)
