"""One final read per track from the reads of its crops.

Reads are grouped by text length and the length with the most confidence wins (a read that
dropped or doubled a character cannot vote position by position with the others). Within it, each
position votes its character weighted by that character's confidence. The voted text, and every
read's own text, become candidates scored by their support; with the format prior, when the voted
text fits no state's format, so does the best-voted text that fits a named plate format
(`shaped_vote`), and a candidate matching a plate format wins among near-equal ones
(`apply_format_prior`). Only a text some read or the vote
produced is ever returned.

The state is fused the same way, by confidence: each state's support is the sum of the reads'
confidences in it over the number of reads (a read that said `unknown` supports none), and the
best state stands when its support reaches the floor, else the track's state is `unknown`. The
format prior then prefers the fused state's formats (Florida's for FL).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from platepilot.ocr.base import IMPOSSIBLE_SWAP_RATIO, apply_format_prior, prior_candidates
from platepilot.plates.charset import fold
from platepilot.plates.formats import fits_some_state, match_format, region_formats
from platepilot.plates.states import UNKNOWN, format_regions
from platepilot.types import PlateRead

TOP_CANDIDATES = 5
MIN_WEIGHT = 0.1  # the least say a read's crop quality leaves it, relative to the best crop's


def _char_weights(read: PlateRead) -> tuple[float, ...]:
    if len(read.char_confidences) == len(read.text):
        return read.char_confidences
    return (read.confidence,) * len(read.text)


Votes = list[dict[str, float]]
"""Per position of a text length, each character's summed weight."""


def position_votes(reads: Sequence[PlateRead]) -> Votes:
    """The character votes of reads of one length, each weighted by its confidence."""
    by_position: Votes = [defaultdict(float) for _ in reads[0].text]
    for read in reads:
        for pos, (char, weight) in enumerate(zip(read.text, _char_weights(read), strict=True)):
            by_position[pos][char] += weight
    return by_position


def _share(by_position: Votes, text: str) -> float:
    """The share of all the votes that `text`'s characters got."""
    total = sum(sum(votes.values()) for votes in by_position)
    return sum(votes.get(char, 0.0) for votes, char in zip(by_position, text, strict=True)) / total if total else 0.0


def _odds(by_position: Votes, text: str) -> float:
    """How `text` fares against each position's most-voted character: the product of its characters'
    votes over the winners' (1.0 for the winners' own text), O and 0, I and 1 counting as one (`fold`:
    plates print them alike, the formats tell them apart)."""
    odds = 1.0
    for votes, char in zip(by_position, text, strict=True):
        top = max(votes, key=lambda c: votes[c])
        if fold(char) != fold(top):
            odds *= votes.get(char, 0.0) / votes[top]
    return odds


def _winners(by_position: Votes) -> tuple[str, float]:
    """Each position's most-voted character: (text, share of the votes)."""
    text = "".join(max(votes, key=lambda c: votes[c]) for votes in by_position)
    return text, _share(by_position, text)


def vote(reads: Sequence[PlateRead]) -> tuple[str, float]:
    """Character-level vote over reads of one length: (text, share of the weight the winners got)."""
    return _winners(position_votes(reads))


def shaped_vote(by_position: Votes, regions: tuple[str, ...] | None) -> tuple[str, float] | None:
    """The best-voted text that matches a named plate format of `regions`, built only from characters
    some read gave at each position: (text, share of the votes), or None when no format can be built.

    As OpenALPR's post-processing does: when most frames read a blurred California `4` as `L`, but some
    read `4`, `LRAR512` (no US format) loses to `4RAR512` (`#@@@###`) if that is near-equal. A text whose
    characters together got less than `IMPOSSIBLE_SWAP_RATIO` of the winners' odds is no candidate, as a
    single read's swap into a format is not (`apply_format_prior`): two sure reads of the vanity plate
    `MARETA` (no digit: no named format) lost to `MAR59A`, its 5 and 9 from one far read of `UM1591`."""
    best: tuple[str, float] | None = None
    for plate_format in region_formats(regions):
        if len(plate_format.position_chars) != len(by_position):
            continue
        chars = []
        for votes, allowed in zip(by_position, plate_format.position_chars, strict=True):
            voted = [c for c in votes if c in allowed]
            if not voted:
                break
            chars.append(max(voted, key=lambda c: votes[c]))
        else:
            text = "".join(chars)
            if _odds(by_position, text) < IMPOSSIBLE_SWAP_RATIO:
                continue
            share = _share(by_position, text)
            if best is None or share > best[1]:
                best = (text, share)
    return best


def fuse_state(reads: Sequence[PlateRead], min_confidence: float) -> tuple[str, float]:
    """(state, support) of a track's reads; `unknown` when no state's support reaches `min_confidence`.

    Support is a state's summed confidence over the reads that name a state: a read that says
    `unknown` is no evidence either way (the pipeline skips the name reader once a read is sure, so
    later reads often say `unknown`), while reads naming different states dilute each other."""
    support: dict[str, float] = defaultdict(float)
    named = [read for read in reads if read.state != UNKNOWN]
    for read in named:
        support[read.state] += read.state_confidence
    if not support:
        return UNKNOWN, max((r.state_confidence for r in reads), default=0.0)
    state = max(support, key=lambda s: support[s])
    share = support[state] / len(named)
    return (state if share >= min_confidence else UNKNOWN), share


def weighted(read: PlateRead, weight: float) -> PlateRead:
    """`read` with its confidence and each character's scaled by `weight`: its say in the vote."""
    return replace(
        read, confidence=read.confidence * weight, char_confidences=tuple(c * weight for c in read.char_confidences)
    )


def fuse(
    reads: Sequence[PlateRead],
    format_prior: bool = True,
    engine: str = "",
    state_min_confidence: float = 0.5,
    weights: Sequence[float] | None = None,
    site_state: str | None = None,
) -> PlateRead | None:
    """The fused read of one track's accepted reads (text and state); None when there is none with text.

    `weights` (one per read: its crop's quality) scale each read's say in the text vote, relative to
    the best crop's (floored at MIN_WEIGHT): a plate seen twice as large and sharp counts twice as much,
    so two confident reads of the far plate cannot out-vote the read of the near one. A track of unknown
    state at a site that names its state (`site_state`, `ocr.site_state`) is shaped to the site's formats
    (`format_regions`); the one-character swap into them happens per read (`ocr.state.with_state`), where
    the reader's own candidates are."""
    kept = [
        (r, w if math.isfinite(w) else 1.0)
        for r, w in zip(reads, weights or [1.0] * len(reads), strict=True)
        if r.text and math.isfinite(r.confidence) and r.confidence > 0  # a read sure of nothing carries no vote
    ]
    if not kept:
        return None
    reads = [r for r, _ in kept]
    best = max(w for _, w in kept)
    voters = [weighted(r, max(w / best, MIN_WEIGHT) if best > 0 else 1.0) for r, w in kept]
    by_length: dict[int, list[PlateRead]] = defaultdict(list)
    for read in voters:
        by_length[len(read.text)].append(read)
    group = max(by_length.values(), key=lambda g: (sum(r.confidence for r in g), len(g[0].text)))
    state, state_confidence = fuse_state(reads, state_min_confidence)
    regions = format_regions(state, site_state)
    support: dict[str, float] = defaultdict(float)
    for read in voters:
        support[read.text] += read.confidence
    group_conf = sum(r.confidence for r in group) / len(group)
    by_position = position_votes(group)
    winner, winner_share = _winners(by_position)
    voted = {winner: winner_share}  # text -> share of the character votes
    # Only a vote no plate can carry is reshaped: three sure reads of a California commercial `6M28575`
    # (`#@#####`, a state's own format) lost to `6ML8575` (`#@@####`) built from one far read's `L`.
    shaped = shaped_vote(by_position, regions) if format_prior and not fits_some_state(winner) else None
    if shaped:
        voted.setdefault(*shaped)
    for text, share in voted.items():
        support[text] = max(support[text], share * group_conf * len(group))
    total = sum(r.confidence for r in voters)
    candidates = sorted(((t, s / total) for t, s in support.items()), key=lambda c: -c[1])[:TOP_CANDIDATES]
    if format_prior:
        text, _ = apply_format_prior(prior_candidates(candidates, len(candidates[0][0]), regions), regions=regions)
    else:
        text = candidates[0][0]
    agreeing = [r.confidence for r in reads if r.text == text]
    confidence = max(agreeing) if agreeing else group_conf * voted[text]
    return PlateRead(
        text=text,
        confidence=min(max(confidence, 0.0), 1.0),
        engine=engine or reads[0].engine,
        candidates=tuple((t, round(c, 4)) for t, c in candidates),
        format_match=match_format(text, regions),
        state=state,
        state_confidence=round(state_confidence, 4),
    )
