"""The labeling page's speed on a big site: one keystroke (next crop, save its label, progress) as
labels.txt grows.

    python benchmarks/labeling_speed.py [--crops 30000] [--days 30] [--labelled 0 --labelled 29000] [--rounds 20]

Writes `--crops` copies of one synthetic plate JPEG into a temporary crops folder (one folder per day, as
`platepilot run` writes them, today's the only one changing) and a labels.txt of
`--labelled` lines, then times what the page asks for at each keystroke through `LabelSession`
(`next_item`, `save`, `progress`), round after round, after a first untimed read. Prints a table and
writes benchmarks/results/labeling_speed.json. The folder is rescanned at every keystroke, as at a
person's pace. Every save grows labels.txt: before the session kept each path's resolution, 29,000 labels
made a keystroke take 1.7 s here; before it read only the lines added since, 0.34-0.6 s.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Annotated

import cv2
import typer
from rich.console import Console
from rich.table import Table

from platepilot.labeling import session as session_module
from platepilot.labeling.session import LabelSession
from platepilot.plates.synth import synth_sample

RESULTS = Path(__file__).parent / "results" / "labeling_speed.json"


def _site(root: Path, crops: int, labelled: int, days: int) -> LabelSession:
    """`crops` crops in a folder per day as `platepilot run` writes them (the oldest first labelled); the
    past days' folders last changed on their day, today's (the last) now."""
    ok, jpeg = cv2.imencode(".jpg", synth_sample(0, 0).image)
    assert ok
    per_day = -(-crops // days)
    paths = [root / "crops" / f"2026-11-{1 + i // per_day:02d}" / f"CAM1_track{i}.jpg" for i in range(crops)]
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(jpeg.tobytes())
    folders = sorted({path.parent for path in paths})
    for age, folder in enumerate(reversed(folders[:-1]), 1):
        os.utime(folder, (time.time() - age * 86_400,) * 2)
    (root / "labels.txt").write_text("".join(f"{path}\tABC{i % 1000:03d}\n" for i, path in enumerate(paths[:labelled])))
    return LabelSession(root / "crops", root / "labels.txt")


def _keystroke_ms(session: LabelSession, rounds: int) -> list[float]:
    session.progress()  # the page's first read of the folder and the file, untimed
    session_module.RESCAN_S = 0.0  # a person takes a second or more a crop: the folder is rescanned every time
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
    days: Annotated[int, typer.Option(min=1, max=30, help="Day folders the crops are spread over.")] = 30,
) -> None:
    console = Console()
    rows = []
    for count in labelled:
        with tempfile.TemporaryDirectory() as tmp:
            times = _keystroke_ms(_site(Path(tmp), crops, min(count, crops - rounds), days), rounds)
        rows.append({"crops": crops, "days": days, "labelled": count, "keystrokes": len(times),
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
