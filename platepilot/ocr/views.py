"""Two more framings of a crop the CRNN read unsure of, and the vote of the three reads.

The CRNN squeezes every crop to its fixed input, so the margin around the serial (a dataset's tight
crop, a detector's loose box) decides the size and place of every character it sees, and a framing it
reads badly can cost a character (`O` read as `Q`, a `1` read as `I`, a dropped `0`). Where its read is
less sure than `ocr.views_below`, the crop is read twice more: grown by GROW on every side (edge pixels
replicated) and cut by half as much. The three reads vote as PlateOCR's members do (`ensemble.combine`:
every text any of them offers, scored by the geometric mean of the three views' CTC probabilities, the
format prior among near-equal texts), so a text wins when all three framings find it plausible.

Measured on the dev sets' crops with the bundled CRNN (docs/plateocr.md): the framings that move
the serial sideways (cut on the left or the right) lost plates; grown and cut at both ends gained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import cv2
import numpy as np

from platepilot.ocr.ensemble import MemberRead, combine, geometric_probabilities, stacked
from platepilot.types import PlateRead

GROW = (0.04, 0.06)
"""Share of the crop's width and height added on each side for the grown view; the cut view removes half
as much on each side."""


def margin_views(crop: np.ndarray) -> list[np.ndarray]:
    """The crop grown by GROW on every side (edge pixels replicated) and cut by half of it: never empty."""
    h, w = crop.shape[:2]
    dx, dy = max(1, round(GROW[0] * w)), max(1, round(GROW[1] * h))
    grown = cv2.copyMakeBorder(crop, dy, dy, dx, dx, cv2.BORDER_REPLICATE)
    cut = crop[dy // 2 : h - dy // 2, dx // 2 : w - dx // 2]
    return [grown, cut]


def vote_views(views: Sequence[MemberRead], format_prior: bool, engine: str) -> PlateRead:
    """The read the views agree on (`combine`); the first view is the crop as it came.

    When the vote keeps the first view's text, its read is returned as it is. A text the vote changed
    gets as its confidence the geometric mean over the views of its probability per character
    (P(text) ** (1 / len), as `decode_read` gives a prior-picked candidate), not `combine`'s noisy-or:
    three framings of one crop by one network are not independent readers, and agreeing must not push
    a read past the runtime's confidence thresholds."""
    first = views[0].read
    voted = combine(views, format_prior, engine)
    if voted.text == first.text or not voted.text:
        return first
    confidence = float(geometric_probabilities([voted.text], stacked(views))[0]) ** (1.0 / len(voted.text))
    return replace(voted, confidence=confidence, char_confidences=(confidence,) * len(voted.text))
