"""Where the benchmarks find the real, human-labelled dev sets (never shipped with the repository)."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

from rich.console import Console

from platepilot.errors import PlatepilotError
from platepilot.plates.label_errors import ERRATA_FILE

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("PLATEPILOT_REAL_DATA", ROOT.parent / "shared" / "data" / "real"))


def label_sets(data: Path, console: Console) -> list[Path]:
    """Every `*/labels.txt` under `data`; says so on `console` when there is none."""
    sets = sorted(data.glob("*/labels.txt")) if data.is_dir() else []
    if not sets:
        console.print(f"no real data at {data}: nothing to measure (set PLATEPILOT_REAL_DATA)")
    return sets


def at_least_one(text: str) -> int:
    """An argparse type: a count of 1 or more (0 rounds or frames left a benchmark nothing to take a median of)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: give 1 or more")
    return value


def one_line_errors(main: Callable[[], None]) -> Callable[[], None]:
    """`main` ending with one error line (`fail`) on bad input (a missing model, an unknown engine)."""

    def guarded() -> None:
        try:
            main()
        except PlatepilotError as exc:
            fail(exc)

    return guarded


def fail(exc: PlatepilotError) -> NoReturn:
    """Bad input: one error line on stderr and exit 1, never a traceback."""
    Console(stderr=True).print(f"error: {exc}", highlight=False, markup=False, emoji=False, soft_wrap=True)
    sys.exit(1)


def in_temp_folder(prefix: str, work: Callable[[Path], T]) -> T:
    """`work(folder)` in a temporary folder removed afterwards (written scenes, clips); a PlatepilotError
    from it ends the benchmark with one error line (`fail`)."""
    try:
        with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
            return work(Path(tmp))
    except PlatepilotError as exc:
        fail(exc)


def keep_errata(source: Path, folder: Path) -> None:
    """The set's KNOWN_LABEL_ERRORS.tsv beside a copy of its labels or manifest in `folder` (crops and
    photos keep the file names it lists, so `platepilot eval` still corrects those labels)."""
    errata = source / ERRATA_FILE
    if errata.is_file():
        (folder / errata.name).write_text(errata.read_text())
