"""Recorded sources: a video file (OpenCV's FFMPEG backend) and a folder of images."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import cv2
import numpy as np

from platepilot.errors import PlatepilotError
from platepilot.sources.base import Clock
from platepilot.types import Frame

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def usable(image: np.ndarray | None) -> bool:
    """A frame worth processing: a non-empty 3-channel uint8 array (corrupt decodes are skipped)."""
    return image is not None and image.ndim == 3 and image.shape[2] == 3 and image.size > 0


def check_video(path: Path) -> None:
    """Raise PlatepilotError (one line) unless `path` is a video OpenCV can open: checked before a run
    starts, so a bad file stops it once, before any output is created."""
    if path.stat().st_size == 0:
        raise PlatepilotError(f"{path}: video file is empty (0 bytes)")
    capture = cv2.VideoCapture(str(path))
    try:
        if not capture.isOpened():
            raise PlatepilotError(f"{path}: OpenCV cannot open this video (format or codec)")
        # A corrupt file can still open (a broken JPEG through FFMPEG's image demuxer): the run would then
        # end at once, having read nothing, with only FFMPEG's own complaints on stderr.
        ok, image = capture.read()
        if not ok or not usable(image):
            raise PlatepilotError(
                f"{path}: no frame of this video can be decoded (corrupt file, or a codec OpenCV lacks)"
            )
    finally:
        capture.release()


class VideoFileSource:
    """Every frame of a video file; timestamp = `clock()` at open + the frame's stream time."""

    live = False
    stills = False

    def __init__(self, path: Path, camera_id: str, clock: Clock = time.time) -> None:
        if not path.is_file():
            raise PlatepilotError(f"{path}: video file not found")
        self.path, self.camera_id, self._clock = path, camera_id, clock
        self.fps = 0.0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        capture = cv2.VideoCapture(str(self.path))
        if not capture.isOpened():
            raise PlatepilotError(f"{self.path}: OpenCV cannot open this video (format or codec)")
        self.fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        start = self._clock()
        index = 0
        try:
            while not stop.is_set():
                ok, image = capture.read()
                if not ok:
                    break
                stream_ms = capture.get(cv2.CAP_PROP_POS_MSEC)
                offset = stream_ms / 1000 if stream_ms > 0 or index == 0 else index / (self.fps or 25.0)
                if usable(image):
                    yield Frame(self.camera_id, index, start + offset, image, str(self.path))
                else:
                    log.warning("%s: frame %d unreadable, skipped", self.path, index)
                index += 1
        finally:
            capture.release()


class ImageFolderSource:
    """The images of a folder in name order, `fps` apart in time; unreadable files are skipped. `stills`:
    they are separate photos (the camera's `stills`), else frames of one video. `follow`: the folder is a
    camera's upload folder; after the photos already in it, each photo that arrives is read, stamped with
    the time it is read, until `stop` (a photo is read once its file has stopped changing for
    SETTLE_SECONDS: an upload in progress is not a photo yet)."""

    live = False

    def __init__(
        self,
        folder: Path,
        camera_id: str,
        fps: float = 10.0,
        clock: Clock = time.time,
        stills: bool = True,
        follow: bool = False,
    ) -> None:
        self.folder, self.follow = folder, follow
        self.paths = _images(folder)
        if not self.paths and not follow:
            raise PlatepilotError(f"{folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder")
        self.camera_id, self.fps, self._clock, self.stills = camera_id, fps, clock, stills
        self._read_before: Mapping[str, float] = {}

    def skip_read(self, read_before: Mapping[str, float]) -> None:
        """Following: leave out the photos read before (path as a frame names it -> when it was read),
        unless the file changed since (a camera reusing its file names), so a restart doubles nothing."""
        self._read_before = read_before

    def _was_read(self, path: Path) -> bool:
        when = self._read_before.get(str(path))
        try:
            return when is not None and when >= path.stat().st_mtime
        except OSError:  # gone meanwhile
            return False

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        start = self._clock()
        seen: set[Path] = {path for path in self.paths if self._was_read(path)} if self.follow else set()
        index = 0
        batch = [path for path in self.paths if path not in seen and _settled(path)] if self.follow else self.paths
        while not stop.is_set():
            for path in batch:
                if stop.is_set():
                    return
                seen.add(path)
                image = cv2.imread(str(path), cv2.IMREAD_COLOR)
                if image is None or not usable(image):
                    log.warning("%s: unreadable image, skipped", path)
                else:
                    taken = self._clock() if self.follow else start + index / self.fps
                    yield Frame(self.camera_id, index, taken, image, str(path))
                index += 1
            if not self.follow:
                return
            stop.wait(POLL_SECONDS)
            listing = _images(self.folder)
            seen.intersection_update(listing)  # photos moved away are forgotten: memory stays the folder's size
            batch = [path for path in listing if path not in seen and _settled(path)]


POLL_SECONDS = 0.5
"""How often a followed folder is listed for new photos."""
SETTLE_SECONDS = 1.0
"""A file in a followed folder is read once this long has passed since it last changed."""


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def _settled(path: Path) -> bool:
    """Whether `path` holds data and has not changed for SETTLE_SECONDS (False when it is gone)."""
    try:
        info = path.stat()
    except OSError:
        return False
    return info.st_size > 0 and time.time() - info.st_mtime >= SETTLE_SECONDS
