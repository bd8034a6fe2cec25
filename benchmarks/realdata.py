"""Where the benchmarks find the real, human-labelled dev sets (never shipped with the repository)."""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("PLATEPILOT_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


def label_sets(data: Path, console: Console) -> list[Path]:
    """Every `*/labels.txt` under `data`; says so on `console` when there is none."""
    sets = sorted(data.glob("*/labels.txt")) if data.is_dir() else []
    if not sets:
        console.print(f"no real data at {data}: nothing to measure (set PLATEPILOT_REAL_DATA)")
    return sets
