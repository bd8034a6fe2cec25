"""Combining the members' reads of one crop into one PlateRead: pure functions, no models.

CTC members (the PaddleOCR recogniser, the CRNN) give their per-step probabilities, so each can score
any text, not only its own read: P_m(text) by the forward algorithm. The ensemble gathers every
member's candidates (EasyOCR's read included) and scores each text by the members' geometric mean
probability (a product of experts: a text only wins if every CTC member finds it plausible), times
AGREEMENT_BONUS for each member whose own read it is (agreement raises confidence). Among near-equal
texts the plate-format prior prefers one that matches a plate format (`apply_format_prior`). A best
text that fits no state's format (`LRAR512`: a blurred California `4` read as `L` by PP-OCRv6) also
brings in the texts one character from a format (`format_variants`), scored the same way, so the
prior's one-character swap can find `4RAR512` when no member offered it. With no CTC member at all
(EasyOCR alone) the members' own reads are voted with their confidences.

Character-level voting comes out of the scoring: where two members read the same length and
disagree on a character, the mixed text (each position from the member surer of it) is added as a
candidate, and it wins when the members' probabilities favour it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from platepilot.ocr.base import PRIOR_RATIO, apply_format_prior, variant_scores
from platepilot.ocr.ctc import text_probabilities
from platepilot.plates.charset import CHARSET
from platepilot.plates.formats import match_format
from platepilot.types import PlateRead

AGREEMENT_BONUS = 2.0
"""Each member whose own read is a text multiplies its score by this."""

TOP_K = 5
"""Candidates kept in the read (the chosen text always among them)."""

_FLOOR = 1e-12  # a CTC member that cannot spell a text at all still leaves it a (tiny) score


@dataclass(frozen=True, slots=True)
class MemberRead:
    """One member's read of one crop; CTC members add `probs` (T, 1 + len(charset)), class 0 the blank."""

    read: PlateRead
    probs: np.ndarray | None = None
    charset: str = CHARSET


def combine(members: Sequence[MemberRead], format_prior: bool = True, engine: str = "plateocr") -> PlateRead:
    """The ensemble's PlateRead for one crop; `candidates` are the top texts with their share of the scores.

    A text with confidence 0 (no member read any of its characters: noise, a 1x1 image, a 10000x20
    strip) is no read: the read is empty rather than a made-up plate."""
    texts = candidate_texts([m.read for m in members])
    if not texts:
        return PlateRead(text="", confidence=0.0, engine=engine)
    scorers = stacked(members)
    scores = _scores(texts, members, scorers)
    if format_prior and scorers:

        def score_variants(variants: list[str]) -> list[float]:
            scored = _scores(variants, members, scorers)
            return [scored[variant] for variant in variants]

        best = max(scores, key=lambda t: scores[t])
        scores.update(variant_scores(best, score_variants, scores))
    total = sum(scores.values())
    ranked = sorted(((t, s / total) for t, s in scores.items()), key=lambda c: -c[1])
    text, share = apply_format_prior(ranked, PRIOR_RATIO) if format_prior else ranked[0]
    candidates = ranked[:TOP_K] if (text, share) in ranked[:TOP_K] else [*ranked[: TOP_K - 1], (text, share)]
    confidence = _confidence(text, members)
    if confidence <= 0.0:
        return PlateRead(text="", confidence=0.0, engine=engine, candidates=tuple(candidates))
    return PlateRead(
        text=text,
        confidence=confidence,
        char_confidences=_char_confidences(text, members),
        engine=engine,
        candidates=tuple(candidates),
        format_match=match_format(text),
    )


def candidate_texts(reads: Sequence[PlateRead]) -> list[str]:
    """Every non-empty text any member offers, plus the per-character votes of equal-length reads."""
    texts: list[str] = []
    for read in reads:
        for text in (read.text, *(c for c, _ in read.candidates)):
            if text and text not in texts:
                texts.append(text)
    for i, a in enumerate(reads):
        for b in reads[i + 1 :]:
            mixed = char_vote(a, b)
            if mixed and mixed not in texts:
                texts.append(mixed)
    return texts


def char_vote(a: PlateRead, b: PlateRead) -> str | None:
    """Two equal-length, different reads -> each position from the read surer of it; else None."""
    if not a.text or len(a.text) != len(b.text) or a.text == b.text:
        return None
    conf_a = a.char_confidences or (a.confidence,) * len(a.text)
    conf_b = b.char_confidences or (b.confidence,) * len(b.text)
    return "".join(x if cx >= cy else y for x, y, cx, cy in zip(a.text, b.text, conf_a, conf_b, strict=True))


def stacked(members: Sequence[MemberRead]) -> list[tuple[np.ndarray, str]]:
    """The CTC members' probabilities, stacked (N, T, C) where they share a shape and a charset, so
    `geometric_probabilities` scores each stack at once."""
    groups: dict[tuple[tuple[int, ...], str], list[np.ndarray]] = {}
    for m in members:
        if m.probs is not None:
            groups.setdefault((m.probs.shape, m.charset), []).append(m.probs)
    return [(np.stack(group), charset) for (_, charset), group in groups.items()]


def geometric_probabilities(texts: Sequence[str], scorers: Sequence[tuple[np.ndarray, str]]) -> np.ndarray:
    """Each text's geometric mean of P(text) over every matrix of the `stacked` scorers (a product of
    experts), all texts scored together."""
    logs = np.hstack([np.log(np.maximum(text_probabilities(s, charset, texts), _FLOOR)) for s, charset in scorers])
    return np.exp(logs.mean(axis=1))


def _scores(
    texts: Sequence[str], members: Sequence[MemberRead], scorers: Sequence[tuple[np.ndarray, str]]
) -> dict[str, float]:
    if scorers:
        bases = [float(p) for p in geometric_probabilities(texts, scorers)]
    else:
        bases = [max((m.read.confidence for m in members if m.read.text == t), default=_FLOOR) for t in texts]
    return {
        text: base * AGREEMENT_BONUS ** len(_agreeing(text, members)) for text, base in zip(texts, bases, strict=True)
    }


def _agreeing(text: str, members: Sequence[MemberRead]) -> dict[str, float]:
    """The members whose own read is `text`, each once with its surest such read: PaddleOCR reads a crop's
    line and the whole crop, one network's two reads, not two members agreeing."""
    best: dict[str, float] = {}
    for m in members:
        if m.read.text == text:
            best[m.read.engine] = max(best.get(m.read.engine, 0.0), m.read.confidence)
    return best


def _confidence(text: str, members: Sequence[MemberRead]) -> float:
    """Noisy-or of the confidences of the members that read `text`: agreeing members raise it.

    A text no member read itself (a vote or another member's candidate) gets the mean of the members'
    character confidences at its positions where they are known, else half the best confidence.
    """
    agreeing = _agreeing(text, members)
    if agreeing:
        return 1.0 - math.prod(1.0 - c for c in agreeing.values())
    chars = _char_confidences(text, members)
    return float(np.mean(chars)) if chars else 0.5 * max(m.read.confidence for m in members)


def _char_confidences(text: str, members: Sequence[MemberRead]) -> tuple[float, ...]:
    """Per position, the best confidence of any member that read the same character there (same length)."""
    same_length = [m.read for m in members if len(m.read.text) == len(text) and m.read.char_confidences]
    if not text or not same_length:
        return ()
    return tuple(
        max((r.char_confidences[i] for r in same_length if r.text[i] == ch), default=0.0) for i, ch in enumerate(text)
    )
