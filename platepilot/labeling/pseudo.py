"""Pseudo-labels for unlabeled crops (`platepilot labels auto`): a site's own plates, read by PlateOCR.

PlateOCR reads each crop; the read becomes a pseudo-label only if at least `min_agree` of its members
read that very text on their own (PP-OCRv6 and the CRNN are trained on different data, so their
agreement is evidence), it matches a plate format and its confidence reaches `min_confidence`.
Every read is recorded in the provenance sidecar (`store/provenance.py`, engine `pseudo:plateocr`,
with `agreement` and `pseudo`), never in labels.txt, which stays human-verified; `train --pseudo`
trains on the passing ones (`store.provenance.pseudo_labels`), weighted below human labels.
Records are appended batch by batch, so an interrupted run keeps what it read and a rerun goes on
from there without duplicates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from platepilot.errors import PlatepilotError
from platepilot.labeling.crops import label_key
from platepilot.labeling.prelabel import todo_crops
from platepilot.levels import read_crop
from platepilot.plates.formats import match_format
from platepilot.store.provenance import (
    PSEUDO_ENGINE,
    Provenance,
    append_records,
    make_record,
)
from platepilot.types import PlateRead

if TYPE_CHECKING:
    from platepilot.ocr.plate_ocr import PlateOCR


@dataclass(frozen=True, slots=True)
class PseudoFilter:
    """What a read needs to become a pseudo-label."""

    min_agree: int = 2
    min_confidence: float = 0.5

    def passes(self, read: PlateRead, agreed: tuple[str, ...]) -> bool:
        return (
            len(agreed) >= self.min_agree
            and read.confidence >= self.min_confidence
            and match_format(read.text) is not None
        )


@dataclass(frozen=True, slots=True)
class PseudoResult:
    """`read`: crops read now; `kept`: of those, pseudo-labels; `already_labeled` / `already_read`: left
    alone (a human label, or an earlier `labels auto` record); `unreadable`: images that could not be read."""

    read: int
    kept: int
    already_labeled: int
    already_read: int
    unreadable: int


def pseudo_label_crops(
    crops_dir: Path,
    labels_file: Path,
    reader: PlateOCR,
    rules: PseudoFilter = PseudoFilter(),
    *,
    batch_size: int = 32,
    console: Console | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> PseudoResult:
    """Read every crop under `crops_dir` that has neither a human label nor a `labels auto` record."""
    if rules.min_agree < 1 or rules.min_agree > len(reader.members):
        raise PlatepilotError(
            f"--min-agree {rules.min_agree}: PlateOCR has {len(reader.members)} members "
            f"({', '.join(m.name for m in reader.members)}); use 1 to {len(reader.members)}"
        )
    todo, n_labeled, n_read = todo_crops(crops_dir, labels_file, PSEUDO_ENGINE)
    read = kept = unreadable = 0
    columns = (TextColumn("labels auto"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[kept]}"),
               TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, console=console, disable=not todo) as progress:
        task = progress.add_task("labels auto", total=len(todo), kept="")
        for start in range(0, len(todo), batch_size):
            records: list[Provenance] = []
            now = clock()
            for rel in todo[start : start + batch_size]:
                try:
                    image = read_crop(crops_dir / rel)
                except PlatepilotError:
                    unreadable += 1
                    continue
                plate, agreed = reader.read_agreed(image)
                passed = rules.passes(plate, agreed)
                key = label_key(crops_dir, rel)
                records.append(
                    make_record(key, plate.text, PSEUDO_ENGINE, plate.confidence, False, now, agreed, passed)
                )
                kept += passed
            append_records(labels_file, records)
            read += len(records)
            progress.update(task, advance=len(todo[start : start + batch_size]), kept=f"{kept} kept")
    return PseudoResult(read, kept, n_labeled, n_read, unreadable)
