"""The best-crop store: `<crops_dir>/YYYY-MM-DD/<CAMERA>_track<N>.jpg`, one file per track.

A track's file is written when its first crop arrives and replaced only when a crop of higher
quality arrives: written to a temporary file in the same folder, then `os.replace`d, so a reader
(the labeling app, `find ... | wc -l`) never sees a half-written JPEG. The date is the track's first
frame's local date. Track ids restart with each run, so `next_track_id` tells the tracker where the
day's numbering left off, and an earlier run's crops are never overwritten.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import cv2

from platepilot.errors import PlatepilotError
from platepilot.types import PlateCrop

JPEG_QUALITY = 95


@dataclass(frozen=True, slots=True)
class StoredCrop:
    """What the store holds for one track: the file and the quality of the crop in it."""

    path: Path
    quality: float
    frame_index: int


def crop_path(crops_dir: Path, camera_id: str, track_id: int, timestamp: float) -> Path:
    day = datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d")
    return crops_dir / day / f"{camera_id}_track{track_id}.jpg"


class CropStore:
    """Keeps the best crop of every track on disk. Thread-safe."""

    def __init__(self, crops_dir: Path) -> None:
        self.crops_dir = crops_dir
        self._best: dict[tuple[str, int], StoredCrop] = {}
        self._first_seen: dict[tuple[str, int], float] = {}
        self._lock = threading.Lock()
        self.writes = 0

    def offer(self, crop: PlateCrop) -> StoredCrop | None:
        """Store `crop` if it is its track's first or better than the stored one; the new entry, or None."""
        key = (crop.camera_id, crop.track_id)
        with self._lock:
            current = self._best.get(key)
            if current is not None and crop.quality <= current.quality:
                return None
            first = self._first_seen.setdefault(key, crop.timestamp)
            path = crop_path(self.crops_dir, crop.camera_id, crop.track_id, first)
            _write_jpeg_atomic(path, crop)
            stored = StoredCrop(path, crop.quality, crop.frame_index)
            self._best[key] = stored
            self.writes += 1
            return stored

    def best(self, camera_id: str, track_id: int) -> StoredCrop | None:
        with self._lock:
            return self._best.get((camera_id, track_id))

    def forget(self, camera_id: str, track_id: int) -> None:
        """Drop a finished track from memory (its file stays)."""
        with self._lock:
            self._best.pop((camera_id, track_id), None)
            self._first_seen.pop((camera_id, track_id), None)

    def next_track_id(self, camera_id: str, timestamp: float) -> int:
        """1 + the highest track number of `camera_id` already stored on `timestamp`'s day."""
        folder = crop_path(self.crops_dir, camera_id, 0, timestamp).parent
        pattern = re.compile(rf"^{re.escape(camera_id)}_track(\d+)\.jpg$")
        numbers = [int(m.group(1)) for p in folder.glob("*.jpg") if (m := pattern.match(p.name))]
        return max(numbers, default=0) + 1


def _write_jpeg_atomic(path: Path, crop: PlateCrop) -> None:
    ok, data = cv2.imencode(".jpg", crop.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PlatepilotError(f"{path}: cannot encode the crop of track {crop.track_id} as JPEG")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.tobytes())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
