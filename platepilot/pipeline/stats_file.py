"""The running pipeline's per-camera stats as a JSON file, rewritten atomically every few seconds,
so another process (`platepilot dashboard`) can show them.

Format: `{"updated": <epoch s>, "cameras": [{"camera_id", "fps", "captured", "processed", "dropped",
"skipped", "queue_depth", "detect_ms", "ocr_ms", "ocr_reads", "tracks", "events", "error"}, ...]}`.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from platepilot.pipeline.stats import CameraStats
from platepilot.store.atomic import NEW_FILE_MODE

log = logging.getLogger(__name__)


def stats_json(stats: CameraStats) -> dict[str, Any]:
    return {
        "camera_id": stats.camera_id,
        "fps": round(stats.fps(), 2),
        "captured": stats.captured,
        "processed": stats.processed,
        "dropped": stats.dropped,
        "skipped": stats.skipped,
        "queue_depth": stats.queue_depth,
        "detect_ms": round(1000 * stats.detect_seconds / stats.processed, 1) if stats.processed else None,
        "ocr_ms": round(1000 * stats.ocr_seconds / stats.ocr_reads, 1) if stats.ocr_reads else None,
        "ocr_reads": stats.ocr_reads,
        "tracks": stats.tracks,
        "events": stats.events,
        "error": stats.error,
    }


class StatsFile:
    """Writes the stats to `path`; a failing write is logged once until one succeeds again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._failing = False

    def write(self, cameras: Iterable[CameraStats], now: float) -> None:
        data = {"updated": now, "cameras": [stats_json(s) for s in cameras]}
        tmp = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=f".{self.path.name}.", suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
                os.fchmod(handle.fileno(), NEW_FILE_MODE)  # mkstemp's 0600 kept the dashboard's user out
            os.replace(tmp, self.path)
        except OSError as exc:
            if tmp is not None:
                Path(tmp).unlink(missing_ok=True)
            if not self._failing:
                log.warning("stats file %s not written (%s); the pipeline goes on", self.path, exc.strerror or exc)
            self._failing = True
            return
        self._failing = False


def read_stats(path: Path) -> dict[str, Any] | None:
    """The last stats written to `path`, None when there are none (no pipeline ran, or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
