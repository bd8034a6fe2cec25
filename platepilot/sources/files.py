"""Recorded sources: a video file (OpenCV's FFMPEG backend) and a folder of images."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import cv2
import numpy as np

from platepilot.errors import PlatepilotError
from platepilot.images import IMAGE_SUFFIXES, natural_key, read_image
from platepilot.sources.base import Clock
from platepilot.types import Frame

log = logging.getLogger(__name__)


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
        unless the file changed since (a camera reusing its file names), so a restart doubles nothing,
        whichever spelling of the folder either run was given (a relative one from this folder)."""
        self._read_before = {os.path.abspath(path): when for path, when in read_before.items()}

    def _was_read(self, path: Path) -> bool:
        when = self._read_before.get(os.path.abspath(path))
        try:
            return when is not None and when >= path.stat().st_mtime
        except OSError:  # gone meanwhile
            return False

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        start = self._clock()
        watch = _FolderWatch(self.folder, self.paths, self._was_read) if self.follow else None
        index = 0
        batch = self.paths if watch is None else watch.ready()
        while not stop.is_set():
            for path in batch:
                if stop.is_set():
                    return
                if watch is not None:
                    watch.mark_read(path)
                image = _photo(path)
                if image is None or not usable(image):
                    log.warning("%s: unreadable image, skipped", path)
                else:
                    taken = self._clock() if self.follow else start + index / self.fps
                    yield Frame(self.camera_id, index, taken, image, str(path))
                index += 1
            if watch is None:
                return
            stop.wait(POLL_SECONDS)
            batch = watch.ready()


def _photo(path: Path) -> np.ndarray | None:
    """The photo as the readers read crops (`read_image`), or None when it cannot be read: one bad upload
    (corrupt, or over OpenCV's pixel limit, which raised and stopped the camera) is skipped."""
    try:
        return read_image(path)
    except PlatepilotError:
        return None


class _FolderWatch:
    """The photos of a followed folder to read next: each new photo once its upload is done, and a photo
    again when its file changes (a camera reusing `snapshot.jpg`, an upload that stalled and resumed).

    Upload folders are rarely cleaned, so a poll must not cost the folder's size: the folder is listed
    again only when its own mtime says a file was added, removed or renamed (or every RESCAN_SECONDS);
    between listings only the photos not read yet and the last RECENT read are looked at (a file
    rewritten in place leaves the folder's mtime as it was)."""

    def __init__(self, folder: Path, paths: list[Path], was_read: Callable[[Path], bool]) -> None:
        self.folder = folder
        self._read: dict[str, tuple[int, int]] = {}  # name -> (mtime_ns, size) of the version read
        for path in paths:
            signature = _signature(path) if was_read(path) else None
            if signature is not None:
                self._read[path.name] = signature
        self._pending = {path.name for path in paths} - self._read.keys()  # listed, not read as they are
        self._recent: deque[str] = deque(maxlen=RECENT)
        self._listed = (_mtime_ns(folder), time.monotonic())
        self._gone = False  # the folder could not be listed at the last look

    def mark_read(self, path: Path) -> None:
        """`path` is being read as it is now (an unreadable file too: it is read again when it changes)."""
        signature = _signature(path)
        if signature is not None:
            self._read[path.name] = signature
        self._pending.discard(path.name)
        self._recent.append(path.name)

    def ready(self) -> list[Path]:
        """The photos to read now, in name order (none while the folder cannot be listed: a remount, an
        FTP server recreating it; said once, and the photos come once it is back)."""
        if self._folder_changed():
            try:
                names = _image_names(self.folder)
            except OSError as exc:
                if not self._gone:
                    log.warning("%s: cannot list (%s); waiting for it to come back", self.folder, exc.strerror or exc)
                self._gone, self._listed = True, (0, 0.0)
                return []
            if self._gone:
                log.warning("%s: back; reading its new photos", self.folder)
            self._gone = False
            self._read = {name: signature for name, signature in self._read.items() if name in names}
            self._pending = names - self._read.keys()
        out = []
        for name in sorted(self._pending | set(self._recent), key=natural_key):
            path = self.folder / name
            signature = _signature(path)
            if signature is None or self._read.get(name) == signature:  # gone, or read as it is
                self._pending.discard(name)
            elif _settled(path, signature):
                out.append(path)
            else:
                self._pending.add(name)
        return out

    def _folder_changed(self) -> bool:
        """Whether the folder must be listed again: its mtime moved, or is too recent to trust (a coarse
        clock stamps two changes in one tick alike), or RESCAN_SECONDS passed."""
        mtime, listed_at = self._listed
        now_ns, now = _mtime_ns(self.folder), time.monotonic()
        if now_ns == mtime and time.time_ns() - now_ns > 2 * 10**9 and now - listed_at < RESCAN_SECONDS:
            return False
        self._listed = (now_ns, now)
        return True


POLL_SECONDS = 0.5
"""How often a followed folder is listed for new photos."""
SETTLE_SECONDS = 1.0
"""A file in a followed folder is read once this long has passed since it last changed."""
STALLED_SECONDS = 60.0
"""A JPEG whose upload has not finished (no end-of-image marker) is read as it is after this long unchanged."""
JPEG_END = b"\xff\xd9"
JPEG_TAIL_BYTES = 64
"""Bytes at a JPEG's end searched for its end marker (some cameras pad the file after it)."""
RESCAN_SECONDS = 60.0
"""A followed folder is listed again at least this often, whatever its mtime says."""
RECENT = 64
"""The last photos read that a followed folder's poll looks at again (a camera rewriting its file in place)."""


def _images(folder: Path) -> list[Path]:
    return [folder / name for name in sorted(_image_names(folder), key=natural_key)]


def _image_names(folder: Path) -> set[str]:
    """The image files' names in `folder` (names, not paths: an upload folder may hold 100,000 photos)."""
    return {name for name in os.listdir(folder) if os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES}


def _signature(path: Path) -> tuple[int, int] | None:
    """(mtime in ns, size) of `path`, None when it is gone."""
    try:
        info = path.stat()
    except OSError:
        return None
    return info.st_mtime_ns, info.st_size


def _mtime_ns(path: Path) -> int:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return 0


def _settled(path: Path, signature: tuple[int, int]) -> bool:
    """Whether the upload of `path` is done: it holds data, has not changed for SETTLE_SECONDS, and a JPEG
    ends with its end-of-image marker (an upload stalled for longer: OpenCV would decode the part that
    arrived as a half-grey photo); a JPEG still without one after STALLED_SECONDS is read as it is."""
    mtime_ns, size = signature
    age = time.time() - mtime_ns / 1e9
    if size == 0 or age < SETTLE_SECONDS:
        return False
    if path.suffix.lower() not in (".jpg", ".jpeg") or age >= STALLED_SECONDS:
        return True
    try:
        with path.open("rb") as file:
            file.seek(max(0, size - JPEG_TAIL_BYTES))
            return JPEG_END in file.read()
    except OSError:
        return False
