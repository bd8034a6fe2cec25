"""What every plate reader offers (`OCREngine`), reading crops from disk, and the plate-format prior."""

from __future__ import annotations

from collections.abc import Callable, Container, Sequence
from typing import Protocol

import numpy as np
from rapidfuzz.distance import Hamming

from platepilot.plates.formats import DEFAULT_REGIONS, fits_some_state, format_variants, matching_formats
from platepilot.types import PlateRead


class OCREngine(Protocol):
    """A plate reader: BGR uint8 crops (H, W, 3) in, one PlateRead per crop out, in order.

    `read` must be safe to call from several threads at once.
    """

    name: str

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]: ...

    def warmup(self, iterations: int = 1) -> None: ...


PRIOR_RATIO = 0.5
"""Candidates at least this fraction of the best one's probability count as near-equal for the format prior."""


SWAP_RATIO = 0.2
"""A candidate one character away from the best read may win on a format at this fraction of its probability
(`apply_format_prior`: where the best read fits no state's format, or into a site state's): on blurred
California plates the right `4` of an `L` read was the second candidate at 0.1-0.5 of its probability."""


IMPOSSIBLE_SWAP_RATIO = 0.05
"""The same, where the best read fits no format of any state (`LRAR512`): such a text is a plate only if it is a
personalised one, a few percent of US plates, so a format-shaped text one character away wins from a
twentieth of its probability. Paddle reads a blurred California open-top `4` as `L` so surely that the
right text often scored 0.05-0.2 of it (docs/plateocr.md)."""


def apply_format_prior(
    candidates: Sequence[tuple[str, float]],
    ratio: float = PRIOR_RATIO,
    regions: tuple[str, ...] | None = None,
    swap_into: tuple[str, ...] = (),
) -> tuple[str, float]:
    """Pick among (text, probability) candidates, preferring plate-shaped texts among near-equal ones.

    Candidates at least `ratio` x the best probability are near-equal; of those the most probable
    that matches a named Florida/US format (only those of `regions`, when given: the plate's state,
    `plates.states.format_regions`) wins. Failing that, the most probable candidate at least `SWAP_RATIO`
    x the best that differs from it in one character and matches a format: one of `swap_into`'s (the
    site state's region, `plates.states.site_regions`), or, where the best fits no format of any state
    (`LRAR512` for a blurred California `4RAR512`: no plate anywhere starts with four letters), one of
    `regions`'. Else the most probable overall. Only a given candidate is ever returned (the text is
    never edited); no candidates gives ("", 0.0).

    Why only then: swapped into the default formats whatever the best read, California commercial plates
    (`5N30048`, `#@#####`, a format only California's list has) became `EN30048` (docs/plateocr.md).
    """
    if not candidates:
        return "", 0.0
    ranked = sorted(candidates, key=lambda c: c[1], reverse=True)
    best = ranked[0]
    for text, prob in ranked:
        if prob < best[1] * ratio:
            break
        if matching_formats(text, regions):
            return text, prob
    impossible = not fits_some_state(best[0])
    if swap_into or impossible:
        floor = IMPOSSIBLE_SWAP_RATIO if impossible else SWAP_RATIO
        for text, prob in ranked:
            if prob < best[1] * floor:
                break
            one_swap = len(text) == len(best[0]) and Hamming.distance(text, best[0]) == 1
            if one_swap and matching_formats(text, swap_into or regions):
                return text, prob
    return best


def variant_scores(best: str, score: Callable[[list[str]], Sequence[float]], known: Container[str]) -> dict[str, float]:
    """Where the best read `best` fits no state's format (`LRAR512`), the texts one character from a format
    (`format_variants`: `4RAR512`, ...) that are not `known` yet, scored by the reader(s) (`score`, all at
    once): candidates for `apply_format_prior`'s swap that no beam or member may have offered. Else nothing."""
    if fits_some_state(best):
        return {}
    variants = [variant for variant in format_variants(best) if variant not in known]
    return dict(zip(variants, score(variants), strict=True)) if variants else {}


def prior_candidates(
    candidates: Sequence[tuple[str, float]], length: int, regions: tuple[str, ...] | None
) -> list[tuple[str, float]]:
    """The candidates the format prior may pick for a read of `length` characters of a plate of `regions`:
    every one of that length, and of another length only those fitting Florida's or the generic US
    formats. A state's own formats (`us-xx`) only fix characters in place: some are loose (Idaho's
    `#####`, Wyoming's `###@@`), and on real crops they let in a dropped or an added character
    (`164081` -> `16408`)."""
    default = tuple(r for r in regions or DEFAULT_REGIONS if r in DEFAULT_REGIONS)
    return [c for c in candidates if len(c[0]) == length or matching_formats(c[0], default)]
