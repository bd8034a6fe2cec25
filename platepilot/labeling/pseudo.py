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
    latest_pseudo_labels,
    make_record,
)

if TYPE_CHECKING:
    from platepilot.ocr.plate_ocr import PlateOCR


@dataclass(frozen=True, slots=True)
class PseudoFilter:
    """What a read needs to become a pseudo-label."""

    min_agree: int = 2
    min_confidence: float = 0.5

    def passes(self, text: str, confidence: float, agreed: tuple[str, ...]) -> bool:
        return len(agreed) >= self.min_agree and confidence >= self.min_confidence and match_format(text) is not None


@dataclass(frozen=True, slots=True)
class PseudoResult:
    """`read`: crops read now; `kept`: of those, pseudo-labels; `already_labeled` / `already_read`: left
    alone (a human label, or an earlier `labels auto` record); `unreadable`: images that could not be read;
    `withdrawn` / `admitted`: earlier reads whose verdict this run's filter changed (`rejudge`)."""

    read: int
    kept: int
    already_labeled: int
    already_read: int
    unreadable: int
    withdrawn: int = 0
    admitted: int = 0


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
    withdrawn, admitted = rejudge(labels_file, rules, clock())
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
                passed = rules.passes(plate.text, plate.confidence, agreed)
                key = label_key(crops_dir, rel)
                records.append(
                    make_record(key, plate.text, PSEUDO_ENGINE, plate.confidence, False, now, agreed, passed)
                )
                kept += passed
            append_records(labels_file, records)
            read += len(records)
            progress.update(task, advance=len(todo[start : start + batch_size]), kept=f"{kept} kept")
    return PseudoResult(read, kept, n_labeled, n_read, unreadable, withdrawn, admitted)


def rejudge(labels_file: Path, rules: PseudoFilter, now: datetime) -> tuple[int, int]:
    """Judge the earlier `labels auto` reads again by `rules` (stored with their text, confidence and
    agreement, so nothing is read again): a rerun with a stricter filter withdraws the pseudo-labels it no
    longer passes, a looser one admits more. A record is appended where the verdict changes (the latest
    wins); (withdrawn, admitted)."""
    changed = [
        make_record(r.path, r.text, PSEUDO_ENGINE, r.confidence, False, now, r.agreement, verdict)
        for r in latest_pseudo_labels(labels_file).values()
        if (verdict := rules.passes(r.text, r.confidence or 0.0, r.agreement)) != r.pseudo
    ]
    append_records(labels_file, changed)
    admitted = sum(r.pseudo for r in changed)
    return len(changed) - admitted, admitted
