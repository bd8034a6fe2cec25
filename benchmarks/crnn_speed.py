"""CRNN serving speed: plates/s at batch 64 and latency at batch 1, with preprocessing timed apart.

    python benchmarks/crnn_speed.py --model platepilot/assets/florida_plate_ocr.onnx [--model OTHER.onnx ...]
        [--deblur-below 0 --deblur-below 0.99] [--views-below 0 --views-below 0.99] [--labels labels.txt]

Reads synthetic crops (`platepilot.plates.synth`, stream 0), or the crops of a labels file (`--labels`:
real crops have more unsure reads, which deblurring and the second framings of `ocr.views_below` read
again), with `CRNNOCRService` exactly as the edge runtime does, prints a table and writes
benchmarks/results/crnn_speed.json. Several models take
turns round after round in one process, so their ratio holds on a noisy machine. Targets (issue 14):
>= 1,500 plates/s at batch 64 and p50 < 1.5 ms at batch 1 on a 2-core CPU.
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
from realdata import fail
from rich.console import Console
from rich.progress import track
from rich.table import Table

from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.ocr.crnn_service import BEAM_SKIP_PATH_PROB, CRNNOCRService, decode_read
from platepilot.ocr.spec import preprocess
from platepilot.plates.synth import synth_sample
from platepilot.store.labels import read_labels, resolve_crop_path

TARGET_PLATES_PER_S = 1500.0
TARGET_P50_MS = 1.5
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


def measure(
    service: CRNNOCRService, images: list[np.ndarray], runs: int, calls: int, beam_width: int
) -> dict[str, Any]:
    """One round for one model: batch 64 throughput and batch-1 latency."""
    batch = bench_batch(service, images, runs, beam_width)
    single = bench_single(service, images, calls)
    return {**batch, **single}


def main(
    model: list[Path] = typer.Option(
        ..., "--model", "-m", help="CRNN .onnx with its sidecar; repeat to compare models side by side."
    ),
    crops: int = typer.Option(640, min=1, help="Synthetic crops read per batch-64 run."),
    runs: int = typer.Option(3, min=1, help="Batch-64 runs per round."),
    rounds: int = typer.Option(
        4, min=1, help="Rounds; the models take turns in each, and medians over all are reported."
    ),
    calls: int = typer.Option(200, min=1, help="Batch-1 calls per round for the latency percentiles."),
    threads: int | None = typer.Option(None, help="onnxruntime intra-op threads (default: per core)."),
    beam_width: int = typer.Option(8, help="Beam width; 0 times greedy decoding only."),
    deblur_below: list[float] = typer.Option(
        [Settings().ocr.deblur_below],
        help="Deblur reads less confident than this (ocr.deblur_below; 0: never); repeat to time several settings "
        "side by side (each model with each).",
    ),
    views_below: list[float] = typer.Option(
        [Settings().ocr.views_below],
        help="Read unsure reads again in two more framings (ocr.views_below; 0: never); repeatable, as above.",
    ),
    labels: Path | None = typer.Option(None, help="Time the crops of this labels.txt instead of synthetic ones."),
    out: Path = typer.Option(Path("benchmarks/results/crnn_speed.json"), help="JSON results file."),
) -> None:
    """Measure every model (with every deblurring and views setting) in turns, print a table, write JSON."""
    console = Console()
    variants = [(m, below, views) for m in model for below in deblur_below for views in views_below]
    try:
        services = [
            CRNNOCRService(
                m, batch_size=BATCH, threads=threads, beam_width=beam_width, deblur_below=below, views_below=views
            )
            for m, below, views in variants
        ]
    except PlatepilotError as exc:
        fail(exc)
    if labels is None:
        with console.status(f"rendering {crops} synthetic crops"):
            images = [synth_sample(0, i).image for i in range(crops)]
    else:
        try:
            usable = [label for label in read_labels(labels) if not label.skipped][:crops]
            images = [read_image(resolve_crop_path(str(label.path), labels)) for label in usable]
        except PlatepilotError as exc:
            fail(exc)
    for service in services:
        service.warmup(iterations=3)
    # Alternating rounds, so a busy spell on this noisy machine slows every model alike.
    per_model: list[list[dict[str, Any]]] = [[] for _ in services]
    for _ in track(range(rounds), description="rounds", console=console):
        for service, results in zip(services, per_model, strict=True):
            results.append(measure(service, images, runs, calls, beam_width))
    medians = [{k: statistics.median(r[k] for r in results) for k in results[0]} for results in per_model]
    base = medians[0]["plates_per_s"]
    entries = [
        {
            "model": str(m),
            "deblur_below": below,
            "views_below": views,
            "architecture": service.card.architecture,
            "beam_fraction": beam_fraction(service, images),
            "rounds_plates_per_s": [round(r["plates_per_s"], 1) for r in results],
            **{k: round(v, 3) for k, v in med.items()},
            "ratio_to_first": round(med["plates_per_s"] / base, 3),
            "met": med["plates_per_s"] >= TARGET_PLATES_PER_S and med["p50_ms"] < TARGET_P50_MS,
        }
        for (m, below, views), service, results, med in zip(variants, services, per_model, medians, strict=True)
    ]
    result = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()},
        "load_1min": os.getloadavg()[0],
        "threads": threads,
        "beam_width": beam_width,
        "crops": len(images),
        "crops_from": str(labels) if labels else "synthetic",
        "rounds": rounds,
        "targets": {"plates_per_s": TARGET_PLATES_PER_S, "p50_ms": TARGET_P50_MS},
        "models": entries,
    }
    console.print(_table(entries))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"wrote {out}")


def _table(entries: list[dict[str, Any]]) -> Table:
    """One column per model, one row per measure; medians over the rounds."""
    table = Table(title="CRNN speed (medians over alternating rounds)")
    table.add_column("measure")
    for entry in entries:
        name = Path(entry["model"]).parent.name + "/" + Path(entry["model"]).name
        below = f"deblur below {entry['deblur_below']:g}, views below {entry['views_below']:g}"
        table.add_column(f"{name}\n{below}", justify="right")
    table.add_column("target", justify="right")
    rows: list[tuple[str, str, str]] = [
        ("batch 64: plates/s (end to end)", "plates_per_s", f">= {TARGET_PLATES_PER_S:,.0f}"),
        ("  ratio to the first model", "ratio_to_first", ""),
        ("batch 64: plates/s (network only)", "network_plates_per_s", ""),
        ("  preprocess ms/plate", "preprocess_ms_per_plate", ""),
        ("  network ms/plate", "network_ms_per_plate", ""),
        ("  decode ms/plate", "decode_ms_per_plate", ""),
        ("batch 1: p50 ms", "p50_ms", f"< {TARGET_P50_MS:.1f}"),
        ("batch 1: p95 ms", "p95_ms", ""),
        ("batch 1: preprocess p50 ms", "preprocess_p50_ms", ""),
        ("crops needing the beam search", "beam_fraction", ""),
    ]
    for label, key, target in rows:
        table.add_row(label, *(_cell(key, e[key]) for e in entries), target)
    return table


def _cell(key: str, value: float) -> str:
    if key == "beam_fraction":
        return f"{value:.0%}"
    if key.endswith("plates_per_s"):
        return f"{value:,.0f}"
    return f"{value:.2f}" if key.startswith(("p50", "p95", "ratio")) else f"{value:.3f}"


if __name__ == "__main__":
    typer.run(main)
