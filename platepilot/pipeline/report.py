"""Text the runtime prints: one line per event, events as CSV, the `--since` parser."""

from __future__ import annotations

import csv
import io
import re
import time
from datetime import datetime
from pathlib import Path

from platepilot.errors import PlatepilotError
from platepilot.images import IMAGE_SUFFIXES
from platepilot.store.events import PlateEvent

CSV_FIELDS = ("camera_id", "track_id", "first_seen", "last_seen", "text", "confidence", "format",
              "reads", "crop_path", "engine", "model_version", "candidates", "state", "state_confidence",
              "source_file", "device_id", "event_id")  # fmt: skip
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def event_line(event: PlateEvent) -> str:
    """One event as `run` and `reads` print it; the photo it was read from, if any, last (a video file's
    name would end every line the same)."""
    when = datetime.fromtimestamp(event.first_seen).strftime("%Y-%m-%d %H:%M:%S")
    photo = Path(event.source_file)
    seen_in = f"  from {photo.name}" if photo.suffix.lower() in IMAGE_SUFFIXES else ""
    return (
        f"{when}  {event.camera_id} track {event.track_id:<4d} {event.text:<9s} {event.confidence:.2f}  "
        f"{event.state} {event.state_confidence:.2f}  "
        f"{event.format or '-'}  ({event.reads} reads)  {event.crop_path}{seen_in}"
    )


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: object) -> object:
    """A text cell a spreadsheet would run as a formula (=, +, -, @ first: OWASP's CSV injection) is
    quoted with a leading apostrophe; numbers pass as they are."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_STARTS) else value


def local_time(seconds: float) -> str:
    """ISO 8601 local time with its UTC offset: the hour repeated when the clocks go back stays two hours."""
    return datetime.fromtimestamp(seconds).astimezone().isoformat()


def events_csv(events: list[PlateEvent]) -> str:
    """The events as CSV (`reads --csv`, the dashboard's export), safe to open in a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    for e in events:
        candidates = " ".join(f"{t}:{c:.3f}" for t, c in e.candidates)
        row = [e.camera_id, e.track_id, local_time(e.first_seen), local_time(e.last_seen), e.text,
               f"{e.confidence:.4f}", e.format or "", e.reads, e.crop_path, e.engine, e.model_version, candidates,
               e.state, f"{e.state_confidence:.4f}", e.source_file, e.device_id, e.event_id or ""]  # fmt: skip
        writer.writerow([csv_cell(v) for v in row])
    return out.getvalue()


def parse_since(text: str, now: float | None = None) -> float:
    """`--since`: a duration back from now (`30m`, `2h`, `1d`, `45s`) or an ISO date/time -> epoch seconds."""
    match = _DURATION.match(text.strip())
    if match:
        return (time.time() if now is None else now) - float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    try:
        return datetime.fromisoformat(text.strip()).timestamp()
    except ValueError:
        raise PlatepilotError(
            f"--since {text!r}: use a duration (30m, 2h, 1d) or an ISO date/time (2026-11-23T08:00)"
        ) from None
