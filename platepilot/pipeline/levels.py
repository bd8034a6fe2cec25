"""Flat frames (dusk, haze, a dim sensor) stretched to the full brightness range before detection and reading.

The detector and the readers learned from frames that span most of the range; a frame whose darkest and
brightest pixels lie close together (a dusk scene, a low-contrast haze) hides plates from the detector and
softens the characters the readers see. Such a frame gets one linear stretch of its levels: its
`LOW_PERCENTILE` to `HIGH_PERCENTILE` brightness mapped to 0-255 (a lookup table, under a millisecond a
720p frame). A frame that already spans `FLAT_BELOW` levels or more, as daylight frames do, is left as
it is: stretching UCSD's photos, all of which span 200 or more, read three plates fewer.
"""

from __future__ import annotations

import cv2
import numpy as np

FLAT_BELOW = 160
"""Brightness levels (of 255) between a frame's `LOW_PERCENTILE` and `HIGH_PERCENTILE` under which it is
stretched: UCSD's 291 photos span 200-250, the same darkened as at dusk 81-150."""
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
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    grey = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY) if small.ndim == 3 else small
    counts = np.cumsum(np.bincount(grey.ravel(), minlength=256)) / grey.size
    low = float(np.searchsorted(counts, LOW_PERCENTILE / 100))
    high = float(np.searchsorted(counts, HIGH_PERCENTILE / 100))
    return low, high


def stretched(image: np.ndarray) -> np.ndarray:
    """`image` with its levels stretched when it is flat (`FLAT_BELOW`) but not blank (`BLANK_BELOW`);
    otherwise `image` itself."""
    low, high = levels(image)
    if not BLANK_BELOW <= high - low < FLAT_BELOW:
        return image
    gain = min(255.0 / max(high - low, 1.0), MAX_GAIN)
    table = np.clip((np.arange(256, dtype=np.float32) - low) * gain, 0, 255).astype(np.uint8)
    return cv2.LUT(image, table)
