"""Pre-labels: an OCR engine reads every crop that labels.txt does not cover yet.

Reads go to the provenance sidecar (`labels.txt.meta.jsonl`) as unverified records, never to labels.txt
itself, so training only sees texts a human confirmed; the labeling tool shows them as suggestions
(Enter accepts) and `--review` lists them. `accept_above` opts in to writing confident reads to
labels.txt as well; their sidecar records stay unverified, so they can still be told apart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from platepilot.errors import PlatepilotError
from platepilot.labeling.crops import label_key, list_crops, relative_to_crops
from platepilot.levels import read_crop
from platepilot.ocr.base import OCREngine
from platepilot.plates.charset import is_valid_text
from platepilot.store.labels import append_labels, latest_labels
from platepilot.store.provenance import Provenance, append_records, latest_prelabels, make_record


@dataclass(frozen=True, slots=True)
class PrelabelResult:
    """`read`: crops read now; `already_labeled` / `already_read`: left alone; `accepted`: also written
    to labels.txt; `unreadable`: (crop, why) pairs."""

    read: int
    already_labeled: int
    already_read: int
    accepted: int
    unreadable: tuple[tuple[str, str], ...]


def _now() -> datetime:
    return datetime.now(UTC)


def todo_crops(crops_dir: Path, labels_file: Path, engine_name: str, redo: bool = False) -> tuple[list[str], int, int]:
    """(crops to read, how many labels.txt covers, how many this engine already pre-labeled)."""
    crops = list_crops(crops_dir)
    labeled = set()
    if labels_file.exists():
        labeled = {relative_to_crops(crops_dir, p, labels_file) for p in latest_labels(labels_file)}
    read = set()
    if not redo:
        read = {
            relative_to_crops(crops_dir, p, labels_file)
            for p, rec in latest_prelabels(labels_file).items()
            if rec.engine == engine_name
        }
    todo = [rel for rel in crops if rel not in labeled and rel not in read]
    n_labeled = sum(1 for rel in crops if rel in labeled)
    return todo, n_labeled, len(crops) - n_labeled - len(todo)


def prelabel_crops(
    crops_dir: Path,
    labels_file: Path,
    engine: OCREngine,
    *,
    batch_size: int = 32,
    accept_above: float | None = None,
    redo: bool = False,
    console: Console | None = None,
    clock: Callable[[], datetime] = _now,
) -> PrelabelResult:
    """Read the crops under `crops_dir` that `labels_file` lacks with `engine`; record them as pre-labels.

    Records are appended batch by batch, so an interrupted run keeps what it read and a rerun goes on
    from there. A crop that cannot be read is reported, not fatal.
    """
    if accept_above is not None and not 0.0 <= accept_above <= 1.0:
        raise PlatepilotError(f"--accept-above {accept_above}: use a confidence between 0 and 1")
    todo, n_labeled, n_read = todo_crops(crops_dir, labels_file, engine.name, redo)
    unreadable: list[tuple[str, str]] = []
    read = accepted = 0
    columns = (TextColumn("pre-labeling"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=False, disable=not todo) as progress:
        task = progress.add_task("pre-labeling", total=len(todo))
        for start in range(0, len(todo), batch_size):
            batch = []
            for rel in todo[start : start + batch_size]:
                try:
                    batch.append((rel, read_crop(crops_dir / rel)))
                except PlatepilotError as exc:
                    unreadable.append((rel, str(exc)))
            reads = engine.read([image for _, image in batch]) if batch else []
            now = clock()
            records: list[Provenance] = []
            accepts = []
            for (rel, _), plate in zip(batch, reads, strict=True):
                key = label_key(crops_dir, rel)
                records.append(make_record(key, plate.text, engine.name, plate.confidence, False, now))
                if accept_above is not None and plate.confidence >= accept_above and is_valid_text(plate.text):
                    accepts.append((key, plate.text))
            # Sidecar first: a crash in between leaves a suggestion, never an unexplained label.
            append_records(labels_file, records)
            accepted += append_labels(labels_file, accepts)
            read += len(records)
            progress.advance(task, len(todo[start : start + batch_size]))
    return PrelabelResult(read, n_labeled, n_read, accepted, tuple(unreadable))
