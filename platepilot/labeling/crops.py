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
import time
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from platepilot.errors import PlatepilotError
from platepilot.images import WEB_IMAGE_SUFFIXES, natural_key
from platepilot.store.crops import parse_crop_stem
from platepilot.store.labels import nameable, resolve_crop_path

log = logging.getLogger(__name__)

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


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


def list_crops(crops_dir: Path, suffixes: Collection[str] = WEB_IMAGE_SUFFIXES) -> list[str]:
    """Relative POSIX paths of every image under `crops_dir`, naturally sorted (see `scan_crops`)."""
    return scan_crops(crops_dir, suffixes)[0]


def scan_crops(crops_dir: Path, suffixes: Collection[str] = WEB_IMAGE_SUFFIXES) -> tuple[list[str], list[str]]:
    """(crops, skipped) under `crops_dir` once (see `CropScanner`)."""
    return CropScanner(crops_dir, suffixes).scan()


SETTLE_S = 2.0
"""A folder changed this recently is listed again even if its modification time looks the same: a file
added within the clock's tick after the last listing leaves the folder's time as it was."""


@dataclass(frozen=True, slots=True)
class _Folder:
    version: tuple[int, int]  # (modification time ns, inode)
    listed_ns: int  # when it was listed (time.time_ns())
    files: tuple[tuple[str, bool], ...]  # (relative POSIX name, labelable) of its image files
    folders: tuple[tuple[str, str], ...]  # (path, relative prefix) of its subfolders


class CropScanner:
    """The crops under `crops_dir` for a page that polls the folder every second.

    `scan` gives (crops, skipped): relative POSIX paths of every image file under `crops_dir` (those a
    browser shows, by default), naturally sorted, and of those left out, which could never be labeled:
    - symlinks: a link out of `crops_dir` is never served, and a label of a link inside would count for
      the file it points to;
    - names labels.txt cannot hold (a tab or line break in them) or JSON cannot carry (not UTF-8): one
      such crop stopped the labeling page, every save of it refused.

    Hidden files and temp files (`*.tmp*`, written before an atomic rename) are left out, so a crop
    that is still being written never shows. A folder whose modification time is unchanged (and was
    listed SETTLE_S or more after it) is not listed again, and each name's sort key is made once: listing and sorting
    30,000 crops at every keystroke took most of a save's time.
    """

    def __init__(self, crops_dir: Path, suffixes: Collection[str] = WEB_IMAGE_SUFFIXES) -> None:
        self.crops_dir = crops_dir
        self.suffixes = suffixes
        self._folders: dict[str, _Folder] = {}
        self._keys: dict[str, tuple[object, ...]] = {}

    def scan(self) -> tuple[list[str], list[str]]:
        if not self.crops_dir.is_dir():
            raise PlatepilotError(f"{self.crops_dir}: crops folder not found (pass --crops-dir)")
        seen: dict[str, _Folder] = {}
        found: list[str] = []
        skipped: list[str] = []
        self._walk(str(self.crops_dir), "", seen, found, skipped)
        self._folders = seen
        return self._sorted(found), self._sorted(skipped)

    def _walk(self, folder: str, prefix: str, seen: dict[str, _Folder], found: list[str], skipped: list[str]) -> None:
        listed = self._folder(folder, prefix)
        if listed is None:
            return
        seen[folder] = listed
        for name, labelable in listed.files:
            (found if labelable else skipped).append(name)
        for path, sub in listed.folders:
            self._walk(path, sub, seen, found, skipped)

    def _folder(self, folder: str, prefix: str) -> _Folder | None:
        """`folder`'s listing, from the cache while it is unchanged; None when it cannot be read."""
        try:
            stat = os.stat(folder)
        except OSError:
            return None
        version = (stat.st_mtime_ns, stat.st_ino)
        cached = self._folders.get(folder)
        if cached is not None and cached.version == version and cached.listed_ns - version[0] > SETTLE_S * 1e9:
            return cached  # listed well after its last change: nothing can have come in that tick unseen
        files: list[tuple[str, bool]] = []
        folders: list[tuple[str, str]] = []
        listed_ns = time.time_ns()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.name.startswith("."):
                        continue
                    name = prefix + entry.name
                    if entry.is_dir(follow_symlinks=False):
                        folders.append((entry.path, name + "/"))
                    elif self._image(entry):
                        files.append((name, _labelable(entry, name)))
        except OSError as exc:  # `lost+found` on a crops disk: that folder only is left out
            if cached is None or cached.files or cached.folders:  # said once, not at every poll
                log.warning("%s: cannot list (%s); its crops are left out", folder, exc.strerror)
            files, folders = [], []
        return _Folder(version, listed_ns, tuple(files), tuple(folders))

    def _image(self, entry: os.DirEntry[str]) -> bool:
        return os.path.splitext(entry.name)[1].lower() in self.suffixes and ".tmp" not in entry.name and entry.is_file()

    def _sorted(self, names: list[str]) -> list[str]:
        keys = self._keys
        for name in names:
            if name not in keys:
                keys[name] = natural_key(name)
        return sorted(names, key=keys.__getitem__)


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
