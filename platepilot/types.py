"""The data that flows between stages: small, typed, immutable where possible.

Images are numpy arrays in OpenCV's layout: uint8, shape (H, W, 3), BGR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

import numpy as np

SKIP = "__SKIP__"
"""The label text that marks an unusable crop in labels.txt."""

BoxXYXY = tuple[float, float, float, float]
"""A box in pixels: (x1, y1, x2, y2), x right, y down."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One image from a camera; `timestamp` in seconds (epoch or stream time), `index` counts frames;
    `source_file` is the photo or video file it was read from ('' for streams and the demo)."""

    camera_id: str
    index: int
    timestamp: float
    image: np.ndarray
    source_file: str = ""


@dataclass(frozen=True, slots=True)
class Detection:
    """A plate found in a frame; `score` in [0, 1]."""

    box_xyxy: BoxXYXY
    score: float
    class_id: int = 0


class TrackState(StrEnum):
    TENTATIVE = "tentative"
    CONFIRMED = "confirmed"
    LOST = "lost"


@dataclass(frozen=True, slots=True)
class Track:
    """A plate followed across frames of one camera; `boxes` oldest first."""

    track_id: int
    camera_id: str
    boxes: tuple[BoxXYXY, ...]
    first_seen: float
    last_seen: float
    state: TrackState = TrackState.TENTATIVE


@dataclass(frozen=True, slots=True)
class PlateCrop:
    """The image of one plate cut from one frame; `quality` in [0, 1], higher is sharper/larger;
    `clipped` when its box touches the frame edge (characters may be cut off); `source_file` is its frame's."""

    camera_id: str
    track_id: int
    frame_index: int
    timestamp: float
    image: np.ndarray
    quality: float
    box: BoxXYXY
    clipped: bool = False
    source_file: str = ""


@dataclass(frozen=True, slots=True)
class PlateRead:
    """What an OCR engine read from one crop.

    `text` is normalised (A-Z0-9, possibly empty); `confidence` and each of `char_confidences` in [0, 1];
    `candidates` holds alternative (text, confidence) pairs, best first, the read itself included;
    `format_match` names the plate format the text matches, or None; `state` is the issuing state's
    postal code (FL, GA, ...) or "unknown", with the classifier's `state_confidence` in [0, 1].
    """

    text: str
    confidence: float
    char_confidences: tuple[float, ...] = ()
    engine: str = ""
    candidates: tuple[tuple[str, float], ...] = ()
    format_match: str | None = None
    state: str = "unknown"
    state_confidence: float = 0.0


@dataclass(frozen=True, slots=True)
class Label:
    """One line of labels.txt: a crop path and its text (A-Z0-9) or SKIP."""

    path: Path
    text: str
    line_no: int = field(default=0, compare=False)

    @property
    def skipped(self) -> bool:
        return self.text == SKIP
