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
    """Reconnect delays: `first` seconds, doubling up to `maximum`; reset after a good frame."""

    first: float = 1.0
    maximum: float = 30.0

    def delay(self, failures: int) -> float:
        return min(self.first * 2 ** max(failures - 1, 0), self.maximum)


Opener = Callable[[str | int], "cv2.VideoCapture"]


def _open(target: str | int) -> cv2.VideoCapture:
    return cv2.VideoCapture(target)


class StreamSource:
    """An RTSP/HTTP URL or a USB camera index; never ends on its own: a dropped stream is reopened
    after `backoff`, until `stop` is set. `reconnects` counts reopen attempts."""

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
            bad = 0
            try:
                while not stop.is_set() and bad < self._max_bad_reads:
                    ok, image = capture.read()
                    if not ok or not usable(image):
                        bad += 1
                        self.skipped += 1
                        continue
                    bad, failures = 0, 0
                    yield Frame(self.camera_id, index, self._clock(), np.ascontiguousarray(image))
                    index += 1
            finally:
                capture.release()
            if not stop.is_set():
                failures += 1
                self._wait(failures, stop, "stream dropped")

    def _wait(self, failures: int, stop: threading.Event, why: str) -> None:
        delay = self.backoff.delay(failures)
        log.warning("%s (%s): %s; retrying in %.1f s", self.camera_id, redact(str(self.target)), why, delay)
        self.reconnects += 1
        stop.wait(delay)
