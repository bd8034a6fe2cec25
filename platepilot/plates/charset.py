"""The plate alphabet, normalisation of raw OCR text, and the characters plate readers confuse."""

from __future__ import annotations

import re
import string

LETTERS = string.ascii_uppercase
DIGITS = string.digits
CHARSET = DIGITS + LETTERS
"""Every character a plate text may hold, in the order models index them (blank comes separately)."""

_DROP = re.compile(r"[\s\-_.·•:,'\"/\\|]+")
_VALID = re.compile(rf"^[{CHARSET}]*$")

# Pairs that real readers swap (FLORIDA.md: Florida's 2012 study B/8, Q/O; FHP Q/0, 5/S, K/X;
# OpenALPR/Frigate confusion maps). Letter first, digit second where one of each.
CONFUSABLE_PAIRS: tuple[tuple[str, str], ...] = (
    ("O", "0"),
    ("I", "1"),
    ("B", "8"),
    ("S", "5"),
    ("Z", "2"),
    ("G", "6"),
    ("D", "0"),
    ("Q", "0"),
)
LETTER_TO_DIGIT: dict[str, str] = {a: b for a, b in CONFUSABLE_PAIRS if a not in ("D", "Q")}
DIGIT_TO_LETTER: dict[str, str] = {b: a for a, b in CONFUSABLE_PAIRS if a not in ("D", "Q")}
_FOLD = str.maketrans({"O": "0", "I": "1"})
WATCH_FOLD_PAIRS: tuple[tuple[str, str], ...] = tuple((a, b) for a, b in CONFUSABLE_PAIRS if a in "OIBS")
"""The pairs a watchlist match or a plate search treats as one character: O/0, I/1, B/8, S/5."""
_WATCH_FOLD = str.maketrans(dict(WATCH_FOLD_PAIRS))


def normalize(raw: str) -> str:
    """Raw OCR output -> plate text: upper-case, spaces/dashes/dots dropped, other non-A-Z0-9 removed."""
    text = _DROP.sub("", raw.upper())
    return "".join(ch for ch in text if ch in CHARSET)


def is_valid_text(text: str) -> bool:
    """True when `text` is non-empty and only A-Z0-9 (the labels.txt rule)."""
    return bool(text) and _VALID.match(text) is not None


def fold(text: str) -> str:
    """Fold O->0 and I->1: many US plates print them with one glyph, so scoring reports both ways."""
    return text.translate(_FOLD)


def fold_confusable(text: str) -> str:
    """Fold O->0, I->1, B->8, S->5 (`WATCH_FOLD_PAIRS`): two texts that fold alike may be one plate misread."""
    return text.translate(_WATCH_FOLD)
