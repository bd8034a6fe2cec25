"""Reading the state's name printed on a plate (FLORIDA, Texas, ...) and fuzzy-matching it to a state.

PaddleOCR's PP-OCRv6 small detector and recogniser (rapidocr, a core dependency) read every text line
of the crop; each line's letters are matched (rapidfuzz WRatio) against the state names, and the
best match at or above `min_score` (0-100) names the state. The plate's serial rarely looks like a
state name (its digits are dropped and fewer than four letters are ignored). Optional
(`state.read_names`): it costs a text detection and a recognition per line on every crop, about two
orders of magnitude more than the classifier (docs/states.md), and it only helps where the name is
legible.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process

from platepilot.plates.states import STATE_NAMES

MIN_LETTERS = 4
MIN_SIDE = 16  # pixels: no legible state name below; rapidocr's resize (multiples of 32) fails on less
MAX_ASPECT = 8  # no plate is longer than 8 times its height; a thinner strip would shrink under MIN_SIDE
_NAMES: dict[str, str] = {
    **{name.upper(): code for code, name in STATE_NAMES.items()},
    # DC's plates print "Washington, D.C." (read as "WASHINGTON DC"), not "District of Columbia".
    "WASHINGTON DC": "DC", "WASHINGTON D C": "DC",
}  # fmt: skip


def match_state_name(lines: Sequence[str], min_score: float) -> tuple[str, float] | None:
    """The postal code whose name best matches one of `lines`, and the score (0-100); None below `min_score`."""
    best: tuple[str, float] | None = None
    for line in lines:
        letters = re.sub(r"[^A-Z ]+", "", line.upper()).strip()
        if len(letters.replace(" ", "")) < MIN_LETTERS:
            continue
        found = process.extractOne(letters, list(_NAMES), scorer=fuzz.WRatio)
        if found and found[1] >= min_score and (best is None or found[1] > best[1]):
            best = (_NAMES[found[0]], float(found[1]))
    return best


class StateNameReader:
    """Text lines of a crop through rapidocr (detector capped at `max_side`), matched to state names.

    One rapidocr engine, used under a lock (its pipeline object is not documented as thread-safe).
    """

    def __init__(self, min_score: float = 85.0, max_side: int = 320, threads: int = 1) -> None:
        from rapidocr import RapidOCR

        self.min_score = min_score
        self._engine: Any = RapidOCR(
            params={
                "Global.log_level": "error", "Global.use_cls": False, "Det.limit_type": "max",
                "Det.limit_side_len": max_side, "EngineConfig.onnxruntime.intra_op_num_threads": threads,
                "EngineConfig.onnxruntime.inter_op_num_threads": 1,
            }
        )  # fmt: skip
        self._lock = threading.Lock()

    def lines(self, image: np.ndarray) -> list[str]:
        """The text lines read on the crop; none on a crop too small or too thin to be a plate."""
        short, long = sorted(image.shape[:2])
        if short < MIN_SIDE or long > MAX_ASPECT * short:
            return []
        with self._lock:
            result = self._engine(image, use_cls=False)
        return list(result.txts) if getattr(result, "txts", None) is not None else []

    def read(self, image: np.ndarray) -> tuple[str, float] | None:
        """(postal code, score 0-100) of the state name printed on the BGR crop, or None."""
        return match_state_name(self.lines(image), self.min_score)
