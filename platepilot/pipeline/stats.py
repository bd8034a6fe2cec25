"""Per-camera counters of the running pipeline (thread-safe enough: each field has one writer)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

FPS_WINDOW_S = 60.0  # the frame rate shown is over about this long


@dataclass
class CameraStats:
    """Counts and latencies of one camera; latencies in seconds (sums, for means)."""

    camera_id: str
    captured: int = 0
    dropped: int = 0
    skipped: int = 0  # frames left out by cameras[].fps_limit
    processed: int = 0
    detections: int = 0
    detect_seconds: float = 0.0
    ocr_reads: int = 0
    ocr_seconds: float = 0.0
    tracks: int = 0
    crops_failed: int = 0  # better crops the disk did not take (full, read-only, under the free-disk floor)
    events: int = 0
    queue_depth: int = 0
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    reconnects: Callable[[], int] = lambda: 0  # a live stream's reopen attempts so far (the source counts)

    _samples: deque[tuple[float, int]] = field(default_factory=deque, repr=False)  # (time, processed)

    def fps(self, now: float | None = None) -> float:
        """Frames processed per second over about the last FPS_WINDOW_S (since the start at first): a
        whole-run mean showed a camera dead for half an hour after ten good hours at 14 fps."""
        now = now if now is not None else time.monotonic()
        samples = self._samples
        if not samples:
            samples.append((self.started, 0))
        while len(samples) >= 2 and samples[1][0] <= now - FPS_WINDOW_S:
            samples.popleft()
        since, processed = samples[0]
        if now - samples[-1][0] >= 1.0:
            samples.append((now, self.processed))
        elapsed = now - since
        return (self.processed - processed) / elapsed if elapsed > 0 else 0.0

    def line(self) -> str:
        det_ms = 1000 * self.detect_seconds / self.processed if self.processed else 0.0
        ocr_ms = 1000 * self.ocr_seconds / self.ocr_reads if self.ocr_reads else 0.0
        text = (
            f"{self.camera_id}: {self.fps():.1f} fps, {self.processed} processed, {self.dropped} dropped "
            f"of {self.captured}, queue {self.queue_depth}, detect {det_ms:.0f} ms, OCR {ocr_ms:.0f} ms "
            f"x{self.ocr_reads}, {self.tracks} tracks, {self.events} events"
        )
        reconnects = self.reconnects()
        text += f", {reconnects} reconnects" if reconnects else ""
        text += f", {self.skipped} skipped (fps_limit)" if self.skipped else ""
        text += f", {self.crops_failed} crops_failed" if self.crops_failed else ""
        return text + (f", FAILED: {self.error}" if self.error else "")
