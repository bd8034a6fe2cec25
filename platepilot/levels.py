"""Flat frames (dusk, haze, a dim sensor) stretched to the full brightness range before detection and reading.

The detector and the readers learned from frames that span most of the range; a frame whose darkest and
brightest pixels lie close together (a dusk scene, a low-contrast haze) hides plates from the detector and
softens the characters the readers see. Such a frame gets one linear stretch of its levels: its
`LOW_PERCENTILE` to `HIGH_PERCENTILE` brightness mapped to 0-255 (measured on a small copy, applied as a
lookup table: about 1.6 ms a 720p frame here). A frame that already spans `FLAT_BELOW` levels or more,
as daylight frames do, is left as it is: stretching UCSD's photos, all of which span 200 or more, read
three plates fewer. A plate crop read on its own (`read_crop`) is stretched the same way below
`FLAT_CROP_BELOW`.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from platepilot.images import read_image, scaled

FLAT_BELOW = 160
"""Brightness levels (of 255) between a frame's `LOW_PERCENTILE` and `HIGH_PERCENTILE` under which it is
stretched: UCSD's 291 photos span 200-250, the same darkened as at dusk 81-150."""
FLAT_CROP_BELOW = 100
"""The same for a plate crop read on its own (`platepilot ocr`, `eval --labels`, `labels auto`, `prelabel`):
a crop is mostly plate, and soft daylight crops span 100-160 (79 of UCSD's 246) and read the same either
way (from 160, one UCSD plate fewer), while seg_ocr's crops at a third of their contrast or a quarter of
their light read 95.4% and 96.2% plain and 97.2% stretched, as the originals do (the default reader,
folded)."""
LOW_PERCENTILE, HIGH_PERCENTILE = 0.5, 99.9
"""The levels stretched to 0 and 255: the top is nearly the brightest pixel, so a plate, often the
brightest thing in a frame, is not clipped white."""
MAX_GAIN = 4.0
"""A flat frame is stretched at most this much, so its noise is not made a texture."""
BLANK_BELOW = 24
"""A frame spanning fewer levels than this shows nothing (a lens cap, a wall, black night) and is left as it
is: stretching would only raise its noise."""
SAMPLE_SIDE = 320
"""The frame is measured on a copy this wide at most (the levels of a frame need no more)."""


def levels(image: np.ndarray) -> tuple[float, float]:
    """The (low, high) brightness percentiles of a BGR frame, measured on a small copy."""
    scale = min(1.0, SAMPLE_SIDE / max(image.shape[:2]))
    small = scaled(image, scale) if scale < 1 else image
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    counts = np.cumsum(np.bincount(grey.ravel(), minlength=256)) / grey.size
    low = float(np.searchsorted(counts, LOW_PERCENTILE / 100))
    high = float(np.searchsorted(counts, HIGH_PERCENTILE / 100))
    return low, high


def stretched(image: np.ndarray, flat_below: int = FLAT_BELOW) -> np.ndarray:
    """`image` with its levels stretched when it spans fewer than `flat_below` levels but is not blank
    (`BLANK_BELOW`); otherwise `image` itself."""
    low, high = levels(image)
    if not BLANK_BELOW <= high - low < flat_below:
        return image
    gain = min(255.0 / max(high - low, 1.0), MAX_GAIN)
    table = np.clip((np.arange(256, dtype=np.float32) - low) * gain, 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)


def read_crop(path: Path) -> np.ndarray:
    """A plate crop file as the readers take it: BGR, stretched when flat (`FLAT_CROP_BELOW`)."""
    return stretched(read_image(path), FLAT_CROP_BELOW)
