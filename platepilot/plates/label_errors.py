"""KNOWN_LABEL_ERRORS.tsv: a data set's own errata, the labels found to be wrong (the file contract, read here).

A tab-separated file beside a MANIFEST.tsv or a labels.txt, with a header naming at least
`image_relpath label observed`: the photo, the label as the set gives it, and what its plate really
reads (the first word of `observed`; a note may follow, as in `4TXY091 (digits transposed)`).
Scores are counted against what the plate reads, and the evals report the score as labelled beside
it, so that both numbers are on record. An erratum applies only while the label still reads as it
says: a set that has since been fixed is scored as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from platepilot.errors import PlatepilotError
from platepilot.plates.charset import is_valid_text
from platepilot.plates.tsv import read_tsv

ERRATA_FILE = "KNOWN_LABEL_ERRORS.tsv"
COLUMNS = ("image_relpath", "label", "observed")


@dataclass(frozen=True, slots=True)
class LabelError:
    """One wrong label: the photo (relative to the set's folder), its label, what the plate reads."""

    image_relpath: str
    label: str
    observed: str

    def covers(self, relpath: str) -> bool:
        """Whether `relpath` is this photo, or a crop cut from it and named after it (`0187_cars4_066.jpg`
        for `images/cars4_066.jpg`)."""
        if relpath == self.image_relpath:
            return True
        stem, crop = PurePosixPath(self.image_relpath).stem, PurePosixPath(relpath).stem
        return crop == stem or crop.endswith(f"_{stem}")


def read_label_errors(folder: Path) -> tuple[LabelError, ...]:
    """The errata in `folder` (none when it has no ERRATA_FILE); PlatepilotError naming the line of a bad row."""
    path = folder / ERRATA_FILE
    if not path.is_file():
        return ()
    reader = read_tsv(path, COLUMNS)
    errors = []
    for line, row in enumerate(reader, start=2):
        relpath = (row.get("image_relpath") or "").strip()
        label = (row.get("label") or "").strip().upper()
        observed = ((row.get("observed") or "").split() or [""])[0].upper()
        if not relpath or not is_valid_text(label) or not is_valid_text(observed):
            raise PlatepilotError(
                f"{path}:{line}: expected an image path, its label and what the plate reads (A-Z0-9), "
                f"got {relpath!r} {label!r} {observed!r}"
            )
        errors.append(LabelError(relpath, label, observed))
    return tuple(errors)


def corrected(errors: tuple[LabelError, ...], relpath: str, label: str) -> str | None:
    """What the plate labelled `label` at `relpath` really reads, or None when no erratum names it."""
    return next((e.observed for e in errors if e.label == label and e.covers(relpath)), None)
