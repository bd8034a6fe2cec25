"""State classifier speed, several models side by side: ms per plate at batch 64, resize included.

    python benchmarks/state_speed.py --model platepilot/assets/plate_state.onnx --model other/plate_state.onnx

Classifies 256 rendered plates (`platepilot.plates.render`, a fixed seed) with `StateClassifier.probabilities`
exactly as the runtime does, in batches of 64. The models take turns within each round, so a busy
machine slows them alike; the table gives each model's median over the rounds and its ratio to the
first model. Writes benchmarks/results/state_speed.json. Target (issue 17): <= 1 ms per plate.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from rich.console import Console
from rich.table import Table

from platepilot.ocr.state import BUNDLED_STATE_MODEL, StateClassifier
from platepilot.plates.designs import sample_design
from platepilot.plates.render import render_plate

PLATES = 256
RESULTS = Path(__file__).parent / "results" / "state_speed.json"
TARGET_MS = 1.0


def rendered_plates(count: int) -> list[np.ndarray]:
    """`count` rendered plates of every family (seed 0)."""
    rng = np.random.default_rng(0)
    return [render_plate(sample_design(rng), rng).image for _ in range(count)]


def ms_per_plate(classifier: StateClassifier, plates: list[np.ndarray]) -> float:
    """Milliseconds per plate of one pass over `plates` (batches of 64 inside `probabilities`)."""
    start = time.perf_counter()
    classifier.probabilities(plates)
    return 1e3 * (time.perf_counter() - start) / len(plates)


def main(
    model: Annotated[
        list[Path] | None, typer.Option(help="State classifier ONNX; repeat to compare (default: the bundled one).")
    ] = None,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds; each model runs once per round.")] = 7,
    threads: Annotated[int, typer.Option(min=1, help="onnxruntime threads per classifier.")] = 1,
) -> None:
    console = Console()
    models = model or [BUNDLED_STATE_MODEL]
    classifiers = [StateClassifier(m, threads=threads) for m in models]
    plates = rendered_plates(PLATES)
    for c in classifiers:
        c.probabilities(plates[:64])  # warm-up
    times: list[list[float]] = [[] for _ in classifiers]
    for _ in range(rounds):
        for i, c in enumerate(classifiers):
            times[i].append(ms_per_plate(c, plates))
    medians = [statistics.median(t) for t in times]
    table = Table(title=f"State classifier, ms per plate at batch 64 ({threads} thread(s), {rounds} rounds)")
    for column in ("model", "input", "MB", "ms/plate (median)", "vs first", "<= 1 ms"):
        table.add_column(column)
    rows = []
    for m, c, med, t in zip(models, classifiers, medians, times, strict=True):
        row = {"model": str(m), "height": c.card.height, "width": c.card.width,
               "mb": round(m.stat().st_size / 1e6, 1), "ms_per_plate": round(med, 3),
               "rounds_ms": [round(x, 3) for x in t], "ratio_to_first": round(med / medians[0], 2)}  # fmt: skip
        rows.append(row)
        table.add_row(m.name if len(models) == 1 else str(m), f"{c.card.height}x{c.card.width}", str(row["mb"]),
                      f"{med:.2f}", f"{row['ratio_to_first']:.2f}x", "yes" if med <= TARGET_MS else "no")  # fmt: skip
    console.print(table)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    payload = {"plates": PLATES, "batch": 64, "threads": threads, "rounds": rounds, "load_1min": load,
               "machine": platform.processor() or platform.machine(), "models": rows}  # fmt: skip
    RESULTS.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"written to {RESULTS}")


if __name__ == "__main__":
    typer.run(main)
