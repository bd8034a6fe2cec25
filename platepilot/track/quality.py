"""How good a plate crop is for reading, and cutting it out of the frame.

The score multiplies five factors in [0, 1], so one bad factor sinks a crop:
- size: plate width in pixels, saturating at `full_width` (a reader gains little above it);
- sharpness: variance of the Laplacian of the grey crop scaled to `SHARPNESS_HEIGHT`, saturating at
  `full_sharpness`. Measured at the crop's own size it falls as a plate grows (the same blur in pixels
  spreads over fewer pixels per stroke), so a tracker ranked an approaching plate's far, tiny crops
  above its near ones and never read the near ones. At a fixed height it measures what a reader sees;
- detector score;
- not clipped: a box touching the frame edge likely cuts characters off (x0.3);
- frontal aspect: plates are ~2:1; a box far from that is seen at an angle or is not a plate.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

from platepilot.types import BoxXYXY

FRONTAL_ASPECT = 2.0
_EDGE_MARGIN = 2.0  # pixels: a box this close to the frame edge counts as clipped
_CLIPPED_FACTOR = 0.3
SHARPNESS_HEIGHT = 48  # pixels: about the height a reader scales a plate crop to (PP-OCR's recogniser: 48)


CROP_PAD = 0.05  # share of a box's size `cut_crop` adds on each side


def cut_crop(image: np.ndarray, box: BoxXYXY, pad: float = CROP_PAD) -> np.ndarray:
    """The box grown by `pad` of its size on each side, clipped to the frame; a copy (frames are reused)."""
    x1, y1, x2, y2 = box
    dx, dy = (x2 - x1) * pad, (y2 - y1) * pad
    h, w = image.shape[:2]
    xa, ya = _crop_corner(box, pad)
    xb, yb = min(math.ceil(x2 + dx), w), min(math.ceil(y2 + dy), h)
    return image[ya:yb, xa:xb].copy()


def _crop_corner(box: BoxXYXY, pad: float) -> tuple[int, int]:
    """The frame pixel `cut_crop` starts its crop at (top-left)."""
    x1, y1, x2, y2 = box
    return max(int(x1 - (x2 - x1) * pad), 0), max(int(y1 - (y2 - y1) * pad), 0)


def margin_share(margin: float) -> float:
    """The share of a box, grown by `margin` of its plate's size on each side, that one side's margin takes."""
    return margin / (1 + 2 * margin)


def plate_within(crop: np.ndarray, box: BoxXYXY, margin: tuple[float, float], pad: float = CROP_PAD) -> np.ndarray:
    """The plate itself in `crop`, which `cut_crop(frame, box, pad)` cut from a box grown by `margin` (shares
    of the plate's width and height on every side, `PlateDetector.box_margin`); a view, clipped to the crop."""
    x1, y1, x2, y2 = box
    left, top = _crop_corner(box, pad)
    inset_x = (x2 - x1) * margin_share(margin[0])
    inset_y = (y2 - y1) * margin_share(margin[1])
    xa, ya = max(round(x1 + inset_x) - left, 0), max(round(y1 + inset_y) - top, 0)
    xb, yb = round(x2 - inset_x) - left, round(y2 - inset_y) - top
    return crop[ya:yb, xa:xb]


def sharpness(crop: np.ndarray) -> float:
    """Variance of the Laplacian of the grey crop scaled to SHARPNESS_HEIGHT (higher is sharper)."""
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if crop.ndim == 3 else crop
    scale = SHARPNESS_HEIGHT / grey.shape[0]
    size = (max(round(grey.shape[1] * scale), 1), SHARPNESS_HEIGHT)
    grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    return float(cv2.Laplacian(grey, cv2.CV_32F).var())


def touches_edge(box: BoxXYXY, frame_size: tuple[int, int]) -> bool:
    """Whether `box` reaches the edge of a (width, height) frame, so the plate may be cut off."""
    x1, y1, x2, y2 = box
    frame_w, frame_h = frame_size
    return x1 <= _EDGE_MARGIN or y1 <= _EDGE_MARGIN or x2 >= frame_w - _EDGE_MARGIN or y2 >= frame_h - _EDGE_MARGIN


def crop_quality(
    crop: np.ndarray,
    box: BoxXYXY,
    score: float,
    frame_size: tuple[int, int],
    full_width: float = 160.0,
    full_sharpness: float = 1000.0,
) -> float:
    """The quality in [0, 1] of `crop` cut at `box` from a (width, height) frame (see module doc)."""
    if crop.size == 0:
        return 0.0
    x1, y1, x2, y2 = box
    width, height = max(x2 - x1, 1e-6), max(y2 - y1, 1e-6)
    size = min(width / full_width, 1.0)
    sharp = min(sharpness(crop) / full_sharpness, 1.0)
    edge = _CLIPPED_FACTOR if touches_edge(box, frame_size) else 1.0
    aspect = math.exp(-abs(math.log(width / height / FRONTAL_ASPECT)))
    return float(np.clip(size * sharp * min(max(score, 0.0), 1.0) * edge * aspect, 0.0, 1.0))


def plate_in_crop(shape: tuple[int, ...], margin: tuple[float, float], pad: float = CROP_PAD) -> BoxXYXY:
    """Where the plate lies in a crop of this `shape` that `cut_crop(frame, box, pad)` cut from a box grown
    by `margin` (as `plate_within`, from the crop's size alone: exact unless the frame's edge clipped it)."""
    height, width = shape[:2]
    inset_x = (pad + margin_share(margin[0])) / (1 + 2 * pad)
    inset_y = (pad + margin_share(margin[1])) / (1 + 2 * pad)
    return inset_x * width, inset_y * height, (1 - inset_x) * width, (1 - inset_y) * height
