"""Reading a whole-plate crop before searching its lines: the plate's middle band.

On a US plate the serial fills the middle of the plate, between the state name and the caption. Finding
the plate line (PP-OCRv6's text detector, `PlateLineFinder`) is most of the cost of reading a detector's
whole-plate crop (60-70 ms a crop here), while the CRNN reads a cut of the crop in about a millisecond.
So the CRNN first reads the plate's middle band, cut twice (`BAND_ROWS`, `BAND_WIDEN`), plainly (no
deblurring, no framings: a band that needs them goes to the line search anyway); when both reads have the
same text, are both at least `ocr.band_sure` confident and the text fits a named plate format, that is the
crop's read and its lines are never searched. Anything else (a disagreement, an unsure or empty read, a
text no format names) goes on to the line search as before.

The band keeps the plate's full width: cutting a plate's sides made the CRNN read confident partial
serials (`94NK` for `094NKC`). The plate's place in the crop comes from the detector's box margin
(`PlateDetector.box_margin`), so the band needs the detector that cut the crop; a box off its plate still
clips the serial (`WAG411` read surely from a `4WAG411` whose first character the cut left out), so the
second cut reaches past the plate's sides: a character one cut clips, the other holds, and the two
disagree. Partial serials also rarely fit a named format (`DRM13` for `5DRM137`). docs/plateocr.md has
the measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from platepilot.plates.formats import matching_formats
from platepilot.track.quality import plate_in_crop
from platepilot.types import PlateRead

Margin = tuple[float, float]
"""A detector's box margin (`PlateDetector.box_margin`): shares of the plate's width and height per side."""

BAND_ROWS = ((0.2, 0.85), (0.25, 0.8))
"""The two cuts of the band, as shares of the plate's height (top, bottom)."""

BAND_WIDEN = (0.0, 0.06)
"""How far each cut reaches past the plate's sides, as a share of its width on each side."""

MIN_BAND_HEIGHT = 8
"""Pixels: a band thinner than this is not read (the crop goes to the line search)."""


@dataclass(frozen=True, slots=True)
class Band:
    """Read the middle band first: `margin` is the detector's box margin, `sure` the confidence both cuts'
    reads must reach."""

    margin: Margin
    sure: float


def band_cuts(crop: np.ndarray, margin: Margin) -> list[np.ndarray]:
    """The two cuts of the plate in `crop` (a detector's box grown by `margin`, cut by `cut_crop`): its
    `BAND_ROWS`, each `BAND_WIDEN` wider than the plate; empty when the plate is too small for them."""
    x1, y1, x2, y2 = plate_in_crop(crop.shape, margin)
    cuts = [
        crop[
            round(y1 + top * (y2 - y1)) : round(y1 + bottom * (y2 - y1)),
            max(0, round(x1 - widen * (x2 - x1))) : round(x2 + widen * (x2 - x1)),
        ]
        for (top, bottom), widen in zip(BAND_ROWS, BAND_WIDEN, strict=True)
    ]
    return cuts if all(min(cut.shape[:2]) >= MIN_BAND_HEIGHT for cut in cuts) else []


def agreed(reads: list[PlateRead], sure: float) -> PlateRead | None:
    """The first read when every read has its text, at least `sure` confident, and that text fits a named
    plate format (`matching_formats`); else None."""
    first = reads[0]
    if not all(read.text == first.text and read.confidence >= sure for read in reads):
        return None
    return first if matching_formats(first.text) else None
