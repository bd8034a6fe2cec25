"""What the dashboard's JSON API says about one event: its columns, its watchlist hits, its crop's URL.

Crop files are served by event id only: the stored path must lie under `output.crops_dir`
(`safe_crop_file`), so neither a crafted URL nor a crafted row reaches another file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platepilot.labeling.crops import safe_crop_file
from platepilot.store.search import FoundEvent
from platepilot.watch.match import Matcher

_HIDDEN = ("candidates",)  # sent parsed, below


@dataclass(frozen=True, slots=True)
class CropDir:
    """The crops folder, resolved against the dashboard's working directory (the runtime's, as a rule)."""

    root: Path

    def file(self, crop_path: str) -> Path | None:
        """The crop file a stored `crop_path` names, if it is an image inside the crops folder."""
        if not crop_path:
            return None
        try:
            rel = os.path.relpath(Path(crop_path).resolve(), self.root.resolve())
        except ValueError:  # another drive (Windows)
            return None
        return safe_crop_file(self.root, rel)


def event_view(found: FoundEvent, matcher: Matcher, crops: CropDir) -> dict[str, Any]:
    """The event as the page shows it: every column of its row (a `state` column too, when the database
    has one), its candidates, its watchlist hits best first, and `crop` (a URL, or None)."""
    row = {k: v for k, v in found.row.items() if k not in _HIDDEN}
    has_crop = crops.file(found.event.crop_path) is not None
    return {
        **row,
        "candidates": [[t, c] for t, c in found.event.candidates],
        "crop": f"crop/{found.id}" if has_crop else None,
        "crop_name": Path(found.event.crop_path).name,
        "hits": [hit.to_json() for hit in matcher.match_event(found.event)],
        "distance": found.distance,
    }
