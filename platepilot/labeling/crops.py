"""Finding crops on disk and telling which ones labels.txt already covers.

A crop is named by its path relative to `--crops-dir` in POSIX form (`2024-05-01/CAM1_track7.jpg`):
that is what the web page sends back, and what `safe_crop_file` checks before any file is served.
In labels.txt the crop is written as `<crops-dir as the user gave it>/<relative path>`, the guide's
`output/crops/2024-05-01/CAM1_track7.jpg`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from platepilot.errors import PlatepilotError
from platepilot.images import WEB_IMAGE_SUFFIXES
from platepilot.store.crops import parse_crop_stem
from platepilot.store.labels import nameable, resolve_crop_path

log = logging.getLogger(__name__)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_NUMBERS = re.compile(r"(\d+)")


@dataclass(frozen=True, slots=True)
class CropMeta:
    """What a crop's path says: camera id, capture date (YYYY-MM-DD) and track number, when present."""

    camera: str | None
    date: str | None
    track: int | None


def crop_meta(rel: str) -> CropMeta:
    """`2024-05-01/CAM1_track7.jpg` -> CropMeta("CAM1", "2024-05-01", 7); unknown parts are None."""
    path = PurePosixPath(rel)
    date = next((part for part in reversed(path.parent.parts) if _DATE.match(part)), None)
    parsed = parse_crop_stem(path.stem)
    if parsed is None:
        return CropMeta(None, date, None)
    return CropMeta(parsed[0], date, parsed[1])


def natural_key(rel: str) -> tuple[object, ...]:
    """Sort key that puts `track2` before `track10`."""
    return tuple(int(part) if part.isdigit() else part for part in _NUMBERS.split(rel))


def list_crops(crops_dir: Path, suffixes: Collection[str] = WEB_IMAGE_SUFFIXES) -> list[str]:
    """Relative POSIX paths of every image under `crops_dir`, naturally sorted (see `scan_crops`)."""
    return scan_crops(crops_dir, suffixes)[0]


def scan_crops(crops_dir: Path, suffixes: Collection[str] = WEB_IMAGE_SUFFIXES) -> tuple[list[str], list[str]]:
    """(crops, skipped): relative POSIX paths of every image file under `crops_dir` (those a browser
    shows, by default), naturally sorted, and of those left out, which could never be labeled:
    - symlinks: a link out of `crops_dir` is never served, and a label of a link inside would count for
      the file it points to;
    - names labels.txt cannot hold (a tab or line break in them) or JSON cannot carry (not UTF-8): one
      such crop stopped the labeling page, every save of it refused.

    Hidden files and temp files (`*.tmp*`, written before an atomic rename) are left out, so a crop
    that is still being written never shows.
    """
    if not crops_dir.is_dir():
        raise PlatepilotError(f"{crops_dir}: crops folder not found (pass --crops-dir)")
    found: list[str] = []
    skipped: list[str] = []
    for entry, name in _image_entries(str(crops_dir), "", suffixes):
        (found if _labelable(entry, name) else skipped).append(name)
    return sorted(found, key=natural_key), sorted(skipped, key=natural_key)


def _image_entries(folder: str, prefix: str, suffixes: Collection[str]) -> Iterator[tuple[os.DirEntry[str], str]]:
    """(entry, relative POSIX name) of the image files below `folder`, hidden and temp ones left out;
    `os.scandir`, whose entries know their type, as a page polls a folder of 30,000 crops every second."""
    try:
        listing = os.scandir(folder)
    except OSError as exc:  # `lost+found` on a crops disk: that folder only is left out
        log.warning("%s: cannot list (%s); its crops are left out", folder, exc.strerror)
        return
    with listing as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = prefix + entry.name
            if entry.is_dir(follow_symlinks=False):
                yield from _image_entries(entry.path, name + "/", suffixes)
            elif os.path.splitext(entry.name)[1].lower() in suffixes and ".tmp" not in entry.name and entry.is_file():
                yield entry, name


def _labelable(entry: os.DirEntry[str], name: str) -> bool:
    return not entry.is_symlink() and nameable(name) and name.isprintable() and _utf8(name)


def _utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes in the file name (surrogate escapes)
        return False
    return True


def safe_crop_file(crops_dir: Path, rel: str) -> Path | None:
    """The file `rel` names inside `crops_dir`, or None when it escapes the folder, is no image, or is absent.

    Symlinks are resolved before the check, so a link pointing outside `crops_dir` is refused too.
    """
    if not rel or "\x00" in rel or rel.startswith(("/", "\\")):
        return None
    root = crops_dir.resolve()
    try:
        target = (root / rel).resolve()
    except (OSError, RuntimeError):
        return None
    if not target.is_relative_to(root) or target == root:
        return None
    try:
        if target.suffix.lower() not in WEB_IMAGE_SUFFIXES or not target.is_file():
            return None
    except OSError:  # a name too long for the file system
        return None
    return target


def label_key(crops_dir: Path, rel: str) -> str:
    """The path written to labels.txt for crop `rel`: the crops folder as the user gave it, joined."""
    return (crops_dir / rel).as_posix()


def relative_to_crops(crops_dir: Path, written: str, labels_file: Path) -> str | None:
    """The crop-relative path of a labels.txt path, or None when that file lies outside `crops_dir`."""
    target = resolve_crop_path(written, labels_file).resolve()
    root = crops_dir.resolve()
    if not target.is_relative_to(root):
        return None
    return target.relative_to(root).as_posix()
