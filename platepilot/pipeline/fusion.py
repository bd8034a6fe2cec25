"""One final read per track from the reads of its crops.

Reads are grouped by text length and the length with the most confidence wins (a read that
dropped or doubled a character cannot vote position by position with the others). Within it, each
position votes its character weighted by that character's confidence. The voted text, and every
read's own text, become candidates scored by their support; with the format prior, a candidate
matching a plate format wins among near-equal ones (`apply_format_prior`). Only a text some read
or the vote produced is ever returned.

The state is fused the same way, by confidence: each state's support is the sum of the reads'
confidences in it over the number of reads (a read that said `unknown` supports none), and the
best state stands when its support reaches the floor, else the track's state is `unknown`. The
format prior then prefers the fused state's formats (Florida's for FL).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace

from platepilot.ocr.base import apply_format_prior
from platepilot.plates.formats import match_format
from platepilot.plates.states import UNKNOWN, format_regions
from platepilot.types import PlateRead

TOP_CANDIDATES = 5
MIN_WEIGHT = 0.1  # the least say a read's crop quality leaves it, relative to the best crop's


def _char_weights(read: PlateRead) -> tuple[float, ...]:
    if len(read.char_confidences) == len(read.text):
        return read.char_confidences
    return (read.confidence,) * len(read.text)


def vote(reads: Sequence[PlateRead]) -> tuple[str, float]:
    """Character-level vote over reads of one length: (text, share of the weight the winners got)."""
    by_position: list[dict[str, float]] = [defaultdict(float) for _ in reads[0].text]
    for read in reads:
        for pos, (char, weight) in enumerate(zip(read.text, _char_weights(read), strict=True)):
            by_position[pos][char] += weight
    text = "".join(max(votes, key=lambda c: votes[c]) for votes in by_position)
    won = sum(max(votes.values()) for votes in by_position)
    total = sum(sum(votes.values()) for votes in by_position)
    return text, won / total if total else 0.0


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
) -> PlateRead | None:
    """The fused read of one track's accepted reads (text and state); None when there is none with text.

    `weights` (one per read: its crop's quality) scale each read's say in the text vote, relative to
    the best crop's (floored at MIN_WEIGHT): a plate seen twice as large and sharp counts twice as much,
    so two confident reads of the far plate cannot out-vote the read of the near one."""
    kept = [(r, w) for r, w in zip(reads, weights or [1.0] * len(reads), strict=True) if r.text]
    if not kept:
        return None
    reads = [r for r, _ in kept]
    best = max(w for _, w in kept)
    voters = [weighted(r, max(w / best, MIN_WEIGHT) if best > 0 else 1.0) for r, w in kept]
    by_length: dict[int, list[PlateRead]] = defaultdict(list)
    for read in voters:
        by_length[len(read.text)].append(read)
    group = max(by_length.values(), key=lambda g: (sum(r.confidence for r in g), len(g[0].text)))
    voted, agreement = vote(group)
    support: dict[str, float] = defaultdict(float)
    for read in voters:
        support[read.text] += read.confidence
    group_conf = sum(r.confidence for r in group) / len(group)
    support[voted] = max(support[voted], agreement * group_conf * len(group))
    total = sum(r.confidence for r in voters)
    candidates = sorted(((t, s / total) for t, s in support.items()), key=lambda c: -c[1])[:TOP_CANDIDATES]
    state, state_confidence = fuse_state(reads, state_min_confidence)
    text, _ = apply_format_prior(candidates, regions=format_regions(state)) if format_prior else candidates[0]
    agreeing = [r.confidence for r in reads if r.text == text]
    confidence = max(agreeing) if agreeing else group_conf * agreement
    return PlateRead(
        text=text,
        confidence=min(max(confidence, 0.0), 1.0),
        engine=engine or reads[0].engine,
        candidates=tuple((t, round(c, 4)) for t, c in candidates),
        format_match=match_format(text),
        state=state,
        state_confidence=round(state_confidence, 4),
    )
