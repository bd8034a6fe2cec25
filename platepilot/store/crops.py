"""The best-crop store: `<crops_dir>/YYYY-MM-DD/<CAMERA>_track<N>.jpg`, one file per track.

A track's file is written when its first crop arrives and replaced only when a crop of higher
quality arrives: written to a temporary file in the same folder, then `os.replace`d, so a reader
(the labeling app, `find ... | wc -l`) never sees a half-written JPEG. The date is the track's first
frame's local date. Track ids restart with each run, so `next_track_id` tells the tracker where the
day's numbering left off; a track whose day folder already holds its name (a run crossing midnight,
a clock set back) gets `<CAMERA>_track<N>_2.jpg` and so on: an earlier run's crops are never overwritten.

The disk may fail (full, read-only, a folder that is a file) or fall under the free-space floor: the
crop is then not written, the track goes on (its event says why it has no crop), the failure is
counted in `failed` and logged once per outage.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import cv2

from platepilot.errors import PlatepilotError
from platepilot.store.atomic import NEW_FILE_MODE, sync_to_disk
from platepilot.store.outage import Outage, os_reason
from platepilot.types import PlateCrop

log = logging.getLogger(__name__)

JPEG_QUALITY = 95


@dataclass(frozen=True, slots=True)
class StoredCrop:
    """What the store holds for one track: the file (None: no crop of it could be written) and the
    quality of its best crop; `note` says why its best crop is not on disk ('' when it is)."""

    path: Path | None
    quality: float
    frame_index: int
    note: str = ""


_CROP_STEM = re.compile(r"^(?P<camera>[A-Za-z0-9-]{1,32})_track(?P<track>\d+)(?!\d)")


def crop_path(crops_dir: Path, camera_id: str, track_id: int, timestamp: float) -> Path:
    """`<crops_dir>/YYYY-MM-DD/<CAMERA>_track<N>.jpg`, the day of `timestamp` (local time)."""
    day = datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d")
    return crops_dir / day / f"{camera_id}_track{track_id}.jpg"


def parse_crop_stem(stem: str) -> tuple[str, int] | None:
    """(camera id, track number) of a crop file's stem, `CAM1_track7` (a suffix such as `_b` is allowed:
    crops cut from one track elsewhere), or None for any other name. Camera ids as the config allows."""
    match = _CROP_STEM.match(stem)
    return (match["camera"], int(match["track"])) if match else None


class CropStore:
    """Keeps the best crop of every track on disk, while the disk holding `crops_dir` has more than
    `min_free_bytes` free. Thread-safe."""

    def __init__(self, crops_dir: Path, min_free_bytes: int = 0) -> None:
        self.crops_dir, self.min_free_bytes = crops_dir, min_free_bytes
        self._best: dict[tuple[str, int], StoredCrop] = {}
        self._paths: dict[tuple[str, int], Path] = {}  # each track's file, chosen at its first crop
        self._lock = threading.Lock()
        self.writes = 0
        self.outage = Outage(f"crops {crops_dir}", "events go on without their crops (counted as crops_failed)")

    @property
    def failed(self) -> int:
        return self.outage.failed

    def offer(self, crop: PlateCrop) -> StoredCrop | None:
        """Store `crop` if it is its track's first or better than the stored one; the new entry, or None.

        When the write fails the entry keeps the track's earlier file (if any) and says why in `note`."""
        key = (crop.camera_id, crop.track_id)
        with self._lock:
            current = self._best.get(key)
            if current is not None and crop.quality <= current.quality:
                return None
            path = self._paths.get(key) or self._paths.setdefault(key, self._free_path(crop))
            problem = self._write(path, crop)
            if problem is None:
                stored = StoredCrop(path, crop.quality, crop.frame_index)
            else:
                kept = current.path if current is not None else None
                note = (
                    f"best crop not written ({problem}); an earlier crop kept"
                    if kept
                    else f"crop not written: {problem}"
                )
                stored = StoredCrop(kept, crop.quality, crop.frame_index, note)
            self._best[key] = stored
            return stored

    def discount(self, crop: PlateCrop, factor: float) -> None:
        """Lower the quality of the track's stored crop to `factor` of its own when it is `crop`, so later
        crops compete with it again (the pipeline calls this when `crop`'s read gave nothing usable)."""
        key = (crop.camera_id, crop.track_id)
        with self._lock:
            current = self._best.get(key)
            if current is not None and current.frame_index == crop.frame_index:
                self._best[key] = replace(current, quality=current.quality * factor)

    def line(self) -> str:
        return f"crops {self.crops_dir}: {self.writes} written, {self.failed} crops_failed"

    def _write(self, path: Path, crop: PlateCrop) -> str | None:
        """Write `crop` to `path`; None when written, else why not (counted, logged once per outage)."""
        free = free_bytes(self.crops_dir)
        if free < self.min_free_bytes:
            problem = f"{free / 1e9:.2f} GB free, under output.retention.min_free_gb ({self.min_free_bytes / 1e9:g})"
        else:
            try:
                _write_jpeg_atomic(path, crop)
            except OSError as exc:
                problem = os_reason(exc)
            else:
                self.writes += 1
                self.outage.success()
                return None
        self.outage.failure(problem)
        return problem

    def best(self, camera_id: str, track_id: int) -> StoredCrop | None:
        with self._lock:
            return self._best.get((camera_id, track_id))

    def persist(self, stored: StoredCrop | None) -> str | None:
        """Put a finished track's crop on disk before its event names it. Its writes skip fsync (a track
        rewrites its crop as better ones come), so after a power cut the last events' crops could be empty
        files; one fsync per event spares an SD card the rest. Returns why the crop is gone, if it is (a
        `platepilot prune` of another process deleted it while the track was live): the event must not
        name a file that is not there."""
        if stored is None or stored.path is None:
            return None
        try:
            sync_to_disk(stored.path)
        except FileNotFoundError:
            return "crop deleted (retention) before its event was written"
        except OSError as exc:
            log.warning("%s: cannot sync the crop to disk (%s)", stored.path, os_reason(exc))
        return None

    def live_paths(self) -> set[Path]:
        """The crop files of the tracks still live (resolved): retention must leave them alone."""
        with self._lock:
            return {path.resolve() for path in self._paths.values()}

    def forget(self, camera_id: str, track_id: int) -> None:
        """Drop a finished track from memory (its file stays)."""
        with self._lock:
            self._best.pop((camera_id, track_id), None)
            self._paths.pop((camera_id, track_id), None)

    def _free_path(self, crop: PlateCrop) -> Path:
        """The track's file in its first crop's day folder, under a name no earlier run's crop holds."""
        path = crop_path(self.crops_dir, crop.camera_id, crop.track_id, crop.timestamp)
        taken = set(self._paths.values())
        copy = 1
        while _exists(path) or path in taken:
            copy += 1
            path = path.with_name(f"{crop.camera_id}_track{crop.track_id}_{copy}.jpg")
        return path

    def next_track_id(self, camera_id: str, timestamp: float) -> int:
        """1 + the highest track number of `camera_id` already stored on `timestamp`'s day (1 when the folder
        cannot be read: crops are not written then either, and events must go on)."""
        folder = crop_path(self.crops_dir, camera_id, 0, timestamp).parent
        try:
            names = [parse_crop_stem(p.stem) for p in folder.glob("*.jpg")] if folder.is_dir() else []
        except OSError as exc:
            log.warning("%s: cannot list earlier crops (%s); track numbers start at 1", folder, exc.strerror or exc)
            names = []
        return max((n[1] for n in names if n is not None and n[0] == camera_id), default=0) + 1


def _exists(path: Path) -> bool:
    """`path.exists()`, False when it cannot be told (the write that follows then says why, as a crop note)."""
    try:
        return path.exists()
    except OSError:
        return False


def free_bytes(folder: Path) -> int:
    """Free bytes on the disk that holds (or will hold) `folder`: its nearest existing ancestor's."""
    for candidate in (folder, *folder.absolute().parents):
        try:
            return shutil.disk_usage(candidate).free
        except OSError:  # not there yet (or not a folder's path): ask its parent
            continue
    return 0


def _write_jpeg_atomic(path: Path, crop: PlateCrop) -> None:
    ok, data = cv2.imencode(".jpg", crop.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PlatepilotError(f"{path}: cannot encode the crop of track {crop.track_id} as JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.tobytes())
            os.fchmod(handle.fileno(), NEW_FILE_MODE)  # mkstemp's 0600 kept the dashboard's user out
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
