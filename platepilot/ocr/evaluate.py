"""Evaluate a reader on a labels file: accuracy (strict and O/I-folded), confusions, errors, speed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rapidfuzz.distance import Levenshtein

from platepilot.errors import PlatepilotError
from platepilot.imagegrid import contact_sheet, save_picture
from platepilot.images import read_image
from platepilot.levels import read_crop
from platepilot.ocr.base import OCREngine
from platepilot.ocr.metrics import Scores, confusions, score
from platepilot.plates.formats import is_standard_label
from platepilot.plates.label_errors import corrected, read_label_errors
from platepilot.store.atomic import write_text_atomically
from platepilot.store.labels import latest_labels, resolve_crop_path, why_no_labels
from platepilot.types import PlateRead

BATCH_SIZE = 64
TOP_CONFUSIONS = 15
REPORTED_ERRORS = 100  # in report.json
SHEET_ERRORS = 24  # in worst_errors.png


@dataclass(frozen=True, slots=True)
class EvalError:
    """One wrong read: `distance` is the edit distance between `pred` and `truth`."""

    path: Path
    truth: str
    pred: str
    confidence: float
    distance: int


@dataclass(frozen=True)
class EvalResult:
    """Scores over the readable labelled crops; `plates_per_s` counts only the engine's `read` time.

    `confusions` holds (true char, read char, count), most frequent first, '' for an insertion or a
    deletion; `errors` every wrong read, worst (largest edit distance, then most confident) first.
    """

    scores: Scores
    plates_per_s: float
    unreadable: tuple[Path, ...]
    confusions: tuple[tuple[str, str, int], ...]
    errors: tuple[EvalError, ...]
    model: str | None = None
    corrected: int = 0  # labels a known label error corrected (plates.label_errors)
    as_labelled: Scores | None = None  # the scores against the labels as written, when any was corrected
    standard: Scores | None = None  # the scores on standard serials alone, when some labels are not

    def to_json(self) -> dict[str, Any]:
        """Summary: n, exact, exact_folded, cer, cer_folded, plates_per_s, unreadable, model, confusions;
        with known label errors corrected, labels_corrected, exact_as_labelled and exact_folded_as_labelled;
        when some labels are no standard serial (`is_standard_label`), n_standard, exact_standard and
        exact_folded_standard."""
        extra: dict[str, Any] = {}
        if self.as_labelled is not None:
            extra |= {"labels_corrected": self.corrected, "exact_as_labelled": self.as_labelled.exact,
                      "exact_folded_as_labelled": self.as_labelled.exact_folded}  # fmt: skip
        if self.standard is not None:
            extra |= {"n_standard": self.standard.n, "exact_standard": self.standard.exact,
                      "exact_folded_standard": self.standard.exact_folded}  # fmt: skip
        return {
            **asdict(self.scores),
            "plates_per_s": round(self.plates_per_s, 1),
            "unreadable": len(self.unreadable),
            "model": self.model,
            "confusions": [{"true": t, "read": r, "count": c} for t, r, c in self.confusions],
            **extra,
        }


def evaluate(
    engine: OCREngine,
    labels_file: Path,
    limit: int | None = None,
    model: str | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> EvalResult:
    """Read every labelled crop of `labels_file` (latest label per path, `__SKIP__` left out), against
    the plate's real text where a KNOWN_LABEL_ERRORS.tsv beside it names the label wrong.

    Crops that cannot be read from disk are counted in `unreadable`, not fatal; `limit` keeps the first
    N labelled crops. Speed is wall-clock over `engine.read` calls of BATCH_SIZE crops (loading excluded).
    """
    errata = read_label_errors(labels_file.parent)
    labels = [
        (path, corrected(errata, path, label.text) or label.text, label.text)
        for path, label in latest_labels(labels_file).items()
        if not label.skipped
    ]
    if limit is not None:
        labels = labels[: max(limit, 0)]
    if not labels:
        raise PlatepilotError(f"{labels_file}: no labelled crops to evaluate: {why_no_labels(labels_file)}")
    unreadable: list[Path] = []
    paths: list[Path] = []
    truths: list[str] = []
    written: list[str] = []
    reads: list[PlateRead] = []
    elapsed = 0.0
    for batch in _batches(labels, labels_file, unreadable):
        start = clock()
        reads.extend(engine.read([image for _, _, _, image in batch]))
        elapsed += clock() - start
        paths.extend(path for path, _, _, _ in batch)
        truths.extend(truth for _, truth, _, _ in batch)
        written.extend(label for _, _, label, _ in batch)
    if not reads:
        raise PlatepilotError(f"{labels_file}: none of its {len(labels)} crops could be read (first: {unreadable[0]})")
    preds = [r.text for r in reads]
    errors = [
        EvalError(path, truth, read.text, read.confidence, Levenshtein.distance(read.text, truth))
        for path, truth, read in zip(paths, truths, reads, strict=True)
        if read.text != truth
    ]
    errors.sort(key=lambda e: (-e.distance, -e.confidence))
    fixed = sum(t != w for t, w in zip(truths, written, strict=True))
    standard = [i for i, truth in enumerate(truths) if is_standard_label(truth)]
    standard_scores = None  # only when some labels are not standard serials: else it is `scores` again
    if standard and len(standard) < len(truths):
        standard_scores = score([preds[i] for i in standard], [truths[i] for i in standard])
    return EvalResult(
        scores=score(preds, truths),
        plates_per_s=len(reads) / elapsed if elapsed > 0 else 0.0,
        unreadable=tuple(unreadable),
        confusions=tuple((t, r, c) for (t, r), c in confusions(preds, truths).most_common(TOP_CONFUSIONS)),
        errors=tuple(errors),
        model=model,
        corrected=fixed,
        as_labelled=score(preds, written) if fixed else None,
        standard=standard_scores,
    )


def _batches(
    labels: list[tuple[str, str, str]], labels_file: Path, unreadable: list[Path]
) -> Iterator[list[tuple[Path, str, str, np.ndarray]]]:
    """Full batches of readable crops (path, truth, label as written, image) from (written path, truth, label);
    unreadable paths are appended to `unreadable`."""
    batch: list[tuple[Path, str, str, np.ndarray]] = []
    for written, truth, label in labels:
        path = resolve_crop_path(written, labels_file)
        try:
            batch.append((path, truth, label, read_crop(path)))
        except PlatepilotError:
            unreadable.append(path)
            continue
        if len(batch) == BATCH_SIZE:
            yield batch
            batch = []
    if batch:
        yield batch


def write_report(result: EvalResult, folder: Path) -> None:
    """Write `folder/report.json` (summary, worst errors, unreadable crops) and `folder/worst_errors.png`."""
    report = {
        **result.to_json(),
        "unreadable_paths": [str(p) for p in result.unreadable],
        "errors": [
            {**asdict(e), "path": str(e.path), "confidence": round(e.confidence, 4)}
            for e in result.errors[:REPORTED_ERRORS]
        ],
    }
    sheet = [(e.path, f"{e.truth} / {e.pred or '-'}") for e in result.errors[:SHEET_ERRORS]]
    write_report_files(folder, report, sheet)


def write_report_files(folder: Path, report: dict[str, Any], errors: list[tuple[Path, str]]) -> None:
    """`folder/report.json` and `folder/worst_errors.png`: a contact sheet of the errors' images, each
    captioned (images deleted since the evaluation are left out)."""
    images, captions = [], []
    for path, caption in errors:
        try:
            images.append(read_image(path))
        except PlatepilotError:  # deleted or replaced since the evaluation
            continue
        captions.append(caption)
    write_report_tiles(folder, report, images, captions)


def write_report_tiles(
    folder: Path, report: dict[str, Any], images: list[np.ndarray], captions: list[str],
    cell: tuple[int, int] = (192, 64),
) -> None:  # fmt: skip
    """`folder/report.json` and `folder/worst_errors.png`, a contact sheet of `images` resized to `cell`
    and captioned (one blank tile when there are none)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PlatepilotError(f"{folder}: cannot create report folder: {exc.strerror}") from None
    if images:
        picture = contact_sheet(images, captions, columns=min(6, len(images)), cell=cell)
    else:
        picture = contact_sheet([np.full((cell[1], cell[0], 3), 255, np.uint8)], ["no errors"], columns=1, cell=cell)
    save_picture(folder / "worst_errors.png", picture)
    write_text_atomically(folder / "report.json", json.dumps(report, indent=2) + "\n")
