"""MANIFEST.tsv: real scene photos with their labelled plate boxes (the file contract, read once here).

A tab-separated file with a header naming at least `image_relpath x y w h plate_text` (in any
order; extra columns such as `region` or `split` are ignored). One row per plate: the image path
relative to the manifest's folder, the plate's box in that image's pixels (x, y = top-left corner;
w, h > 0) and its text. An image may have several rows (several plates). A row whose box and text
are all empty lists an image with no plate (a negative, where every detection is false).
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path

from platepilot.errors import PlatepilotError
from platepilot.plates.charset import is_valid_text

COLUMNS = ("image_relpath", "x", "y", "w", "h", "plate_text")
_PLATE_FIELDS = COLUMNS[1:]


@dataclass(frozen=True, slots=True)
class LabelledPlate:
    """One plate of a scene: its box (x, y, w, h) in image pixels and its text (A-Z0-9)."""

    box_xywh: tuple[float, float, float, float]
    text: str


@dataclass(frozen=True, slots=True)
class LabelledScene:
    """One photo and every plate labelled in it (none for a negative)."""

    image: Path
    plates: tuple[LabelledPlate, ...]


def read_tsv(path: Path) -> csv.DictReader[str]:
    """The rows of a tab-separated manifest with a header; PlatepilotError naming a missing or unreadable file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlatepilotError(f"{path}: manifest not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PlatepilotError(f"{path}: cannot read manifest: {exc}") from None
    reader = csv.DictReader(text.splitlines(), delimiter="\t")
    return reader


def read_manifest(path: Path, check_images: bool = True) -> tuple[LabelledScene, ...]:
    """The scenes of MANIFEST.tsv at `path`, in file order of their first row.

    PlatepilotError naming the file and line for: a missing or unreadable file, a header without the
    required columns, a row with a bad box or text, and (with `check_images`) an image that is missing.
    """
    reader = read_tsv(path)
    missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise PlatepilotError(
            f"{path}: bad header, missing column(s) {', '.join(missing)}; "
            f"the first line must name the tab-separated columns {' '.join(COLUMNS)}"
        )
    scenes: dict[Path, list[LabelledPlate]] = {}
    for line, row in enumerate(reader, start=2):
        relpath, plate = _parse_row(row, f"{path}:{line}")
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
    except ValueError:
        box = " ".join(cells[k] or "''" for k in "xywh")
        raise PlatepilotError(f"{where}: box x y w h must be numbers, got {box}") from None
    if w <= 0 or h <= 0:
        raise PlatepilotError(f"{where}: box width and height must be > 0, got w={w:g} h={h:g}")
    plate_text = re.sub(r"[\s-]", "", cells["plate_text"].upper())  # `abc-123` is ABC123, `AB?12` an error
    if not is_valid_text(plate_text):
        raise PlatepilotError(f"{where}: plate_text {cells['plate_text']!r} must be letters and digits (A-Z0-9)")
    return cells["image_relpath"], LabelledPlate((x, y, w, h), plate_text)
