"""Reading the state's name printed on a plate (FLORIDA, Texas, ...) and fuzzy-matching it to a state.

PaddleOCR's PP-OCRv6 small detector and recogniser (rapidocr, a core dependency) read every text line
of the crop; each line's letters, and all lines' letters run together (NEW / YORK), are matched
against the state names and older plates' abbreviations (`name_scores`), and the best match at or
above `min_score` (0-100) names the state. A name must be found whole: a line read as NORTH, or a
fragment of a longer word, names no state. The plate's serial rarely looks like a state name (its
digits are dropped and fewer than four letters are ignored). Optional
(`state.read_names`): it costs a text detection and a recognition per line on every crop, about two
orders of magnitude more than the classifier (docs/states.md), and it only helps where the name is
legible.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from rapidfuzz import fuzz
from rapidfuzz.process import cdist

from platepilot.plates.states import STATE_ABBREVIATIONS, STATE_NAMES

MIN_LETTERS = 4
MIN_SIDE = 16  # pixels: no legible state name below; rapidocr's resize (multiples of 32) fails on less
MAX_ASPECT = 8  # no plate is longer than 8 times its height; a thinner strip would shrink under MIN_SIDE
_NAMES: dict[str, str] = {
    **{re.sub(r"[^A-Z]+", "", name.upper()): code for code, name in STATE_NAMES.items()},
    # DC's plates print "Washington, D.C." (read as "WASHINGTON DC"), not "District of Columbia".
    "WASHINGTONDC": "DC",
    **STATE_ABBREVIATIONS,
}  # fmt: skip
_NAME_LIST = list(_NAMES)
MAX_WINDOW = max(map(len, _NAMES)) + 1  # letters: a name and one more (NORTHERNMARIANAISLANDS is 22)
_NAME_LENGTH = np.array([len(name) for name in _NAME_LIST])
_ABBREVIATION = np.array([name in STATE_ABBREVIATIONS for name in _NAME_LIST])


def name_scores(letters: str) -> np.ndarray:
    """Per name in `_NAMES`: how well (0-100, `fuzz.ratio`) the name matches a run of `letters` as
    long as the name, or one letter longer (a letter read twice). A name of six letters or more may
    also match a run one letter shorter (a letter lost); an abbreviation only exactly. `letters`
    shorter than a name is matched whole, so a fragment (NORTH) scores low against its name."""
    sizes = sorted({min(size, len(letters)) for size in range(MIN_LETTERS - 1, MAX_WINDOW + 1)})
    windows = [letters[i : i + size] for size in sizes for i in range(len(letters) - size + 1)]
    scores = cdist(_NAME_LIST, windows, scorer=fuzz.ratio)
    size = np.array([len(w) for w in windows])[None, :]
    extra = size - _NAME_LENGTH[:, None]
    fits = (extra == 0) | ((extra == 1) & ~_ABBREVIATION[:, None]) | ((extra == -1) & (_NAME_LENGTH >= 6)[:, None])
    fits |= (extra < 0) & (size == len(letters))
    best = np.where(fits, scores, 0).max(axis=1)
    best[_ABBREVIATION & (best < 100)] = 0
    return best


def match_state_name(
    lines: Sequence[str], min_score: float, prior: Mapping[str, float] | None = None
) -> tuple[str, float] | None:
    """The postal code whose name best matches `lines`, and the score (0-100); None below `min_score`.

    Each line is matched, and all lines run together (NEW / YORK, SOUTH / DAKOTA on two lines). Of
    names matched equally well, a name inside a longer one matched too loses to it (KANSAS in ARKANSAS,
    VIRGINIA in WEST VIRGINIA, WASHINGTON in WASHINGTON DC); of other ties (a Florida plate from
    Washington County reads FLORIDA and WASHINGTON), the one likelier by `prior` (the classifier's) wins.
    """
    letters = [re.sub(r"[^A-Z]+", "", line.upper()) for line in lines]
    texts = [t for t in letters if len(t) >= MIN_LETTERS]
    joined = "".join(letters)
    if len(joined) >= MIN_LETTERS and joined not in texts:
        texts.append(joined)
    found: dict[str, tuple[float, str]] = {}  # code -> (score, the name matched)
    for text in texts:
        for name, score in zip(_NAME_LIST, name_scores(text), strict=True):
            code, previous = _NAMES[name], found.get(_NAMES[name])
            if score >= min_score and (previous is None or (score, len(name)) > (previous[0], len(previous[1]))):
                found[code] = (float(score), name)
    if not found:
        return None
    best = max(score for score, _ in found.values())
    tied = {code: name for code, (score, name) in found.items() if score == best}
    whole = {code for code, name in tied.items() if not any(name != other and name in other for other in tied.values())}
    odds = prior or {}
    code = max(whole, key=lambda c: (odds.get(c, 0.0), len(tied[c])))
    return code, best


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

    def read(self, image: np.ndarray, prior: Mapping[str, float] | None = None) -> tuple[str, float] | None:
        """(postal code, score 0-100) of the state name printed on the BGR crop, or None; `prior`
        (state -> probability) breaks ties between names read equally well."""
        return match_state_name(self.lines(image), self.min_score, prior)
