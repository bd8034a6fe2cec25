"""Contact sheets to compare synthetic plate crops with real ones by eye.

Writes docs/img/synth_contact_sheet.png (48 synthetic crops, seed 0, captioned with their labels) and,
when the real crops are present (`../shared/data/real` beside the repository, or $PLATEPILOT_REAL_DATA),
benchmarks/results/real_contact_sheet.png: every Florida crop plus an even sample of the others. Real
crops are third-party data: their sheet stays out of docs/ and is never committed.

    python benchmarks/contact_sheets.py
"""

from __future__ import annotations

import csv
import os
from pathlib import Path

import cv2
import numpy as np
import typer
from rich.console import Console

from platepilot.imagegrid import contact_sheet
from platepilot.plates.synth import synth_sample

ROOT = Path(__file__).resolve().parents[1]
SYNTH_SHEET = ROOT / "docs" / "img" / "synth_contact_sheet.png"
REAL_SHEET = ROOT / "benchmarks" / "results" / "real_contact_sheet.png"
COUNT = 48


def real_data_dir() -> Path:
    env = os.environ.get("PLATEPILOT_REAL_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared" / "data" / "real"


def real_crops(root: Path, count: int = COUNT) -> list[tuple[np.ndarray, str]]:
    """Florida crops first, then an even sample of the rest; (BGR image, caption) from each crops.tsv."""
    rows: list[tuple[Path, str, str]] = []
    for table in sorted(root.glob("*/crops.tsv")):
        with table.open(newline="") as fh:
            rows += [
                (table.parent / r["crop_relpath"], r["text"], r["region"]) for r in csv.DictReader(fh, delimiter="\t")
            ]
    florida = [r for r in rows if r[2] == "us-fl"]
    others = [r for r in rows if r[2] != "us-fl"]
    step = max(len(others) // max(count - len(florida), 1), 1)
    chosen = (florida + others[::step])[:count]
    crops = []
    for path, text, region in chosen:
        image = cv2.imread(str(path))
        if image is not None:
            crops.append((image, f"{text} {region.removeprefix('us-')}"))
    return crops


def main() -> None:
    """Write the synthetic contact sheet (docs/img) and, with the real crops at hand, the real one."""
    console = Console()
    samples = [synth_sample(0, i) for i in range(COUNT)]
    sheet = contact_sheet([s.image for s in samples], [f"{s.text} {s.family[:6]}" for s in samples])
    SYNTH_SHEET.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(SYNTH_SHEET), sheet, [cv2.IMWRITE_PNG_COMPRESSION, 9])  # committed: keep it small
    console.print(f"synthetic sheet: {SYNTH_SHEET}")
    real = real_data_dir()
    if not real.is_dir():
        console.print(f"no real crops at {real} (set PLATEPILOT_REAL_DATA): real sheet skipped")
        return
    crops = real_crops(real)
    if not crops:
        console.print(f"{real} holds no */crops.tsv with readable crops: real sheet skipped")
        return
    REAL_SHEET.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(REAL_SHEET), contact_sheet([c[0] for c in crops], [c[1] for c in crops]))
    console.print(f"real sheet ({len(crops)} crops from {real}): {REAL_SHEET} (not for docs/: third-party data)")


if __name__ == "__main__":
    typer.run(main)  # so that --help shows this, not runs it
