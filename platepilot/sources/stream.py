"""Live cameras: RTSP/HTTP streams and USB cameras through OpenCV, reconnecting with backoff."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from platepilot.redact import redact
from platepilot.sources.base import Clock
from platepilot.sources.files import usable
from platepilot.types import Frame

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Backoff:
    """Reconnect delays: `first` seconds, doubling up to `maximum`; from `first` again after a stream that
    stayed up STABLE_SECONDS."""

    first: float = 1.0
    maximum: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.first * 2 ** min(max(failures - 1, 0), 30), self.maximum)  # 2 ** 1025 overflows a float


Opener = Callable[[str | int], "cv2.VideoCapture"]


TIMEOUT_MS = 10_000
"""How long opening a stream, or one read from it, may block (OpenCV's FFmpeg waits 30 s): a camera that
accepts the connection and sends nothing holds up a stop for at most 10 s (a quiet camera's tracks end
without it: `pilot.IDLE_SECONDS`). A camera sending fewer than a frame in 10 s (a timelapse) is
reconnected after each."""
STABLE_SECONDS = 30.0
"""A stream that stayed up this long before it dropped reconnects from the first backoff delay again; one
that keeps dropping after a frame or two (an overloaded recorder) backs off as one that cannot be opened."""


def _open(target: str | int) -> cv2.VideoCapture:
    if isinstance(target, int):
        return cv2.VideoCapture(target)
    timeouts = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, TIMEOUT_MS]
    return cv2.VideoCapture(target, cv2.CAP_ANY, timeouts)


class StreamSource:
    """An RTSP/HTTP URL or a USB camera index; never ends on its own: a dropped stream is reopened
    after `backoff`, until `stop` is set. `reconnects` counts reopen attempts. A URL naming a recording
    (a video file on a web server: its frames are counted) is read once, at the pace it is read, and
    ends with its last frame."""

    live = True
    stills = False

    def __init__(
        self,
        target: str | int,
        camera_id: str,
        clock: Clock = time.time,
        backoff: Backoff | None = None,
        opener: Opener = _open,
        max_bad_reads: int = 25,
    ) -> None:
        self.target, self.camera_id, self._clock = target, camera_id, clock
        self.backoff = backoff or Backoff()
        self._opener = opener
        self._max_bad_reads = max_bad_reads
        self.reconnects = 0
        self.skipped = 0

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        index, failures = 0, 0
        while not stop.is_set():
            capture = self._opener(self.target)
            if not capture.isOpened():
                failures += 1
                self._wait(failures, stop, "cannot open")
                continue
            opened, bad = time.monotonic(), 0
            recording = isinstance(self.target, str) and capture.get(cv2.CAP_PROP_FRAME_COUNT) > 0
            self.live = not recording  # a recording waits for the reader, as a video file does
            try:
                while not stop.is_set() and bad < self._max_bad_reads:
                    ok, image = capture.read()
                    if not ok and recording:
                        said = "end of the recording" if index else "no frame of this recording could be read"
                        log.warning("%s (%s): %s", self.camera_id, redact(str(self.target)), said)
                        return
                    if not ok or not usable(image):
                        bad += 1
                        self.skipped += 1
                        continue
                    bad = 0
                    yield Frame(self.camera_id, index, self._clock(), np.ascontiguousarray(image))
                    index += 1
            finally:
                capture.release()
            if not stop.is_set():
                failures = 1 if time.monotonic() - opened >= STABLE_SECONDS else failures + 1
                self._wait(failures, stop, "stream dropped")

    def _wait(self, failures: int, stop: threading.Event, why: str) -> None:
        delay = self.backoff.delay(failures)
        log.warning("%s (%s): %s; retrying in %.1f s", self.camera_id, redact(str(self.target)), why, delay)
        self.reconnects += 1
        stop.wait(delay)
