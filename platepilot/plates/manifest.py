"""MANIFEST.tsv: real scene photos with their labelled plate boxes (the file contract, read once here).

A tab-separated file with a header naming at least `image_relpath x y w h plate_text` (in any
order; extra columns such as `region` or `split` are ignored). One row per plate: the image path
relative to the manifest's folder, the plate's box in that image's pixels (x, y = top-left corner;
w, h > 0) and its text. An image may have several rows (several plates). A row whose box and text
are all empty lists an image with no plate (a negative, where every detection is false).
A KNOWN_LABEL_ERRORS.tsv beside the manifest (`plates.label_errors`) corrects the labels it names;
each corrected plate keeps its label as written in `as_labelled`, so evals can report both scores.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, replace
from pathlib import Path

from platepilot.errors import PlatepilotError
from platepilot.plates.charset import is_valid_text
from platepilot.plates.label_errors import corrected, read_label_errors
from platepilot.plates.tsv import read_tsv

COLUMNS = ("image_relpath", "x", "y", "w", "h", "plate_text")
_PLATE_FIELDS = COLUMNS[1:]


@dataclass(frozen=True, slots=True)
class LabelledPlate:
    """One plate of a scene: its box (x, y, w, h) in image pixels and its text (A-Z0-9); `as_labelled`
    is the manifest's text when a known label error corrected it."""

    box_xywh: tuple[float, float, float, float]
    text: str
    as_labelled: str | None = None

    @property
    def label(self) -> str:
        """The text as the manifest writes it."""
        return self.as_labelled or self.text


@dataclass(frozen=True, slots=True)
class LabelledScene:
    """One photo and every plate labelled in it (none for a negative)."""

    image: Path
    plates: tuple[LabelledPlate, ...]


def read_manifest(path: Path, check_images: bool = True) -> tuple[LabelledScene, ...]:
    """The scenes of MANIFEST.tsv at `path`, in file order of their first row, known label errors corrected.

    PlatepilotError naming the file and line for: a missing or unreadable file, a header without the
    required columns, a row with a bad box or text, and (with `check_images`) an image that is missing.
    """
    reader = read_tsv(path, COLUMNS)
    errata = read_label_errors(path.parent)
    scenes: dict[Path, list[LabelledPlate]] = {}
    for row in reader:
        line = reader.line_num
        relpath, plate = _parse_row(row, f"{path}:{line}")
        if plate is not None and (truth := corrected(errata, relpath, plate.text)) is not None:
            plate = replace(plate, text=truth, as_labelled=plate.text)
        image = path.parent / relpath
        if check_images and image not in scenes and not image.is_file():
            raise PlatepilotError(f"{path}:{line}: image {image} not found")
        scenes.setdefault(image, [])
        if plate is not None:
            scenes[image].append(plate)
    if not scenes:
        raise PlatepilotError(f"{path}: no rows under the header")
    return tuple(LabelledScene(image, tuple(plates)) for image, plates in scenes.items())


def _parse_row(row: dict[str | None, str | None], where: str) -> tuple[str, LabelledPlate | None]:
    """(image relpath, its plate or None for a negative row) of one csv row; `where` is file:line."""
    if None in row:  # more cells than header columns
        raise PlatepilotError(f"{where}: more cells than the header has columns")
    cells = {k: (row.get(k) or "").strip() for k in COLUMNS}
    if not cells["image_relpath"]:
        raise PlatepilotError(f"{where}: empty image_relpath")
    if not any(cells[k] for k in _PLATE_FIELDS):
        return cells["image_relpath"], None
    try:
        x, y, w, h = (float(cells[k]) for k in "xywh")
        if not all(math.isfinite(v) for v in (x, y, w, h)):  # nan, inf, 1e999
            raise ValueError
    except ValueError:
        box = " ".join(cells[k] or "''" for k in "xywh")
        raise PlatepilotError(f"{where}: box x y w h must be numbers, got {box}") from None
    if w <= 0 or h <= 0:
        raise PlatepilotError(f"{where}: box width and height must be > 0, got w={w:g} h={h:g}")
    plate_text = re.sub(r"[\s-]", "", cells["plate_text"].upper())  # `abc-123` is ABC123, `AB?12` an error
    if not is_valid_text(plate_text):
        raise PlatepilotError(f"{where}: plate_text {cells['plate_text']!r} must be letters and digits (A-Z0-9)")
    return cells["image_relpath"], LabelledPlate((x, y, w, h), plate_text)
