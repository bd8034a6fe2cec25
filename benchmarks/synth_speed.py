"""How fast the synthetic plate generator feeds training, on one core.

Measures crops/s of `synth_sample` (render + camera, default settings), of the same crops resized to
the reader's 32x128 input (`to_input`), and of the clean render alone (`camera=False`): the median of
3 runs of 300 samples each, after a 2,000-sample warm-up (font and caption caches fill as in a
training run, where millions of samples are drawn).
Wall-clock and CPU time are both reported: on a shared machine, CPU time is the steadier number.

    python benchmarks/synth_speed.py [--runs 3] [--samples 300] [--output benchmarks/results/synth_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import cv2
from rich.console import Console
from rich.table import Table

from platepilot.ocr.spec import ModelSpec, to_input
from platepilot.plates.synth import synth_sample

TARGET = 500.0  # crops/s on one core (issue 3)
RESULTS = Path(__file__).resolve().parent / "results" / "synth_speed.json"


def _cases() -> dict[str, Callable[[int], object]]:
    spec = ModelSpec()
    return {
        "synth_sample (render + camera)": lambda i: synth_sample(0, i),
        f"to_input {spec.height}x{spec.width} crop": lambda i: to_input(synth_sample(0, i).image, spec),
        "render only (camera=False)": lambda i: synth_sample(0, i, camera=False),
    }


def _run(make: Callable[[int], object], start: int, samples: int) -> tuple[float, float]:
    """(wall, cpu) crops/s for samples start..start+samples."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(start, start + samples):
        make(i)
    return samples / (time.perf_counter() - wall), samples / (time.process_time() - cpu)


def measure(runs: int, samples: int, warmup: int) -> dict[str, dict[str, float]]:
    cv2.setNumThreads(1)
    for i in range(warmup):
        synth_sample(0, 1_000_000 + i)
    results = {}
    for name, make in _cases().items():
        timings = [_run(make, r * samples, samples) for r in range(runs)]
        results[name] = {
            "crops_per_s_wall": statistics.median(t[0] for t in timings),
            "crops_per_s_cpu": statistics.median(t[1] for t in timings),
        }
        results[name]["ms_per_crop_cpu"] = 1000.0 / results[name]["crops_per_s_cpu"]
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--output", type=Path, default=RESULTS)
    args = parser.parse_args()
    results = measure(args.runs, args.samples, args.warmup)
    table = Table(title=f"synthetic plates, one core (median of {args.runs} x {args.samples})")
    for column in ("case", "crops/s (wall)", "crops/s (CPU)", "ms/crop (CPU)", f"target {TARGET:.0f}/s"):
        table.add_column(column, justify="left" if column == "case" else "right")
    for name, r in results.items():
        met = "met" if r["crops_per_s_cpu"] >= TARGET else "not met"
        table.add_row(
            name,
            f"{r['crops_per_s_wall']:.0f}",
            f"{r['crops_per_s_cpu']:.0f}",
            f"{r['ms_per_crop_cpu']:.2f}",
            met,
        )
    Console(width=110).print(table)
    report = {
        "results": results,
        "runs": args.runs,
        "samples": args.samples,
        "warmup": args.warmup,
        "target_crops_per_s": TARGET,
        "machine": {
            "python": platform.python_version(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "loadavg_1min": os.getloadavg()[0],
            "opencv": cv2.__version__,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    Console().print(f"written to {args.output}")


if __name__ == "__main__":
    main()
