"""The labeling page's speed on a big site: one keystroke (next crop, save its label, progress) as
labels.txt grows.

    python benchmarks/labeling_speed.py [--crops 30000] [--labelled 0 --labelled 29000] [--rounds 20]

Writes `--crops` copies of one synthetic plate JPEG into a temporary crops folder and a labels.txt of
`--labelled` lines, then times what the page asks for at each keystroke through `LabelSession`
(`next_item`, `save`, `progress`), round after round, after a first untimed read. Prints a table and
writes benchmarks/results/labeling_speed.json. Every save grows labels.txt, so each keystroke reads it
again: before the session kept each path's resolution, 29,000 labels made a keystroke take 1.7 s here.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import cv2
import typer
from rich.console import Console
from rich.table import Table

from platepilot.labeling.session import LabelSession
from platepilot.plates.synth import synth_sample

RESULTS = Path(__file__).parent / "results" / "labeling_speed.json"


def _site(root: Path, crops: int, labelled: int) -> LabelSession:
    folder = root / "crops" / "2026-12-01"
    folder.mkdir(parents=True)
    ok, jpeg = cv2.imencode(".jpg", synth_sample(0, 0).image)
    assert ok
    for i in range(crops):
        (folder / f"CAM1_track{i}.jpg").write_bytes(jpeg.tobytes())
    lines = (f"{folder}/CAM1_track{i}.jpg\tABC{i % 1000:03d}\n" for i in range(labelled))
    (root / "labels.txt").write_text("".join(lines))
    return LabelSession(root / "crops", root / "labels.txt")


def _keystroke_ms(session: LabelSession, rounds: int) -> list[float]:
    session.progress()  # the page's first read of the folder and the file, untimed
    times = []
    for i in range(rounds):
        started = time.perf_counter()
        item = session.next_item("bench")
        if item is None:
            break
        session.save(item.rel, f"XYZ{i:03d}")
        session.progress()
        times.append(1e3 * (time.perf_counter() - started))
    return times


def main(
    crops: Annotated[int, typer.Option(min=1, help="Crops in the folder.")] = 30_000,
    labelled: Annotated[list[int], typer.Option(help="Lines already in labels.txt (repeatable).")] = [0, 29_000],  # noqa: B006
    rounds: Annotated[int, typer.Option(min=1, help="Keystrokes timed per row.")] = 20,
) -> None:
    console = Console()
    rows = []
    for count in labelled:
        with tempfile.TemporaryDirectory() as tmp:
            times = _keystroke_ms(_site(Path(tmp), crops, min(count, crops - rounds)), rounds)
        rows.append({"crops": crops, "labelled": count, "keystrokes": len(times),
                     "median_ms": statistics.median(times), "max_ms": max(times)})  # fmt: skip
    table = Table(title="labeling page: next + save + progress per keystroke")
    for column in ("crops", "labels.txt lines", "keystrokes", "median ms", "max ms"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(f"{r['crops']:,}", f"{r['labelled']:,}", str(r["keystrokes"]), f"{r['median_ms']:.0f}",
                      f"{r['max_ms']:.0f}")  # fmt: skip
    console.print(table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"rows": rows}, indent=2) + "\n")
    console.print(f"written to {RESULTS}")


if __name__ == "__main__":
    typer.run(main)
