"""Frame sources: the protocol every camera offers, and the pure helpers they share."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Protocol

from platepilot.types import Frame

Clock = Callable[[], float]
"""Seconds since the epoch (`time.time` in production; a fake in tests)."""


class FrameSource(Protocol):
    """Frames of one camera, in order, each stamped with a timestamp in seconds.

    `live` sources (cameras, streams, the paced demo) produce frames whether or not anyone reads
    them, so a slow consumer must drop frames; recorded sources (files, folders) wait for it.
    `frames` ends at the end of the recording, or when `stop` is set (checked between frames).
    The frames of a `stills` source are separate photos, not a video: nothing is tracked from one to the next.
    """

    camera_id: str
    live: bool
    stills: bool

    def frames(self, stop: threading.Event) -> Iterator[Frame]: ...


class Pacer:
    """Sleeps so that frame `index` is delivered no earlier than `index / fps` after the first one."""

    def __init__(self, fps: float, clock: Clock = time.monotonic, sleep: Callable[[float], None] = time.sleep):
        self._period = 1.0 / fps
        self._clock, self._sleep = clock, sleep
        self._start: float | None = None

    def wait(self, index: int, stop: threading.Event) -> None:
        now = self._clock()
        if self._start is None:
            self._start = now - index * self._period
        delay = self._start + index * self._period - now
        if delay > 0:
            stop.wait(delay)


class RateLimit:
    """Passes at most `fps` frames a second of frame time (`cameras[].fps_limit`; None passes every frame).

    Time from the first frame is cut into slots of 1 / fps seconds and the first frame of each slot passes,
    so a 30 fps video limited to 10 keeps every third frame, and a 25 fps one ten frames a second, unevenly
    spaced."""

    def __init__(self, fps: float | None) -> None:
        self._period = 1.0 / fps if fps else None
        self._origin: float | None = None
        self._slot = -1

    def passes(self, timestamp: float) -> bool:
        if self._period is None:
            return True
        if self._origin is None:
            self._origin = timestamp
        slot = math.floor((timestamp - self._origin) / self._period + 0.01)  # a hair early stays in its slot
        if slot < self._slot - 1:  # the clock went back (a stream reopened, the clock was set): start over here
            self._origin, slot = timestamp, 0
        elif slot <= self._slot:
            return False
        self._slot = slot
        return True
