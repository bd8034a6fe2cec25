"""Scoring reads against labels: exact match and character error rate, strict and O/I-folded."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rapidfuzz.distance import Levenshtein

from platepilot.plates.charset import fold


@dataclass(frozen=True)
class Scores:
    n: int
    exact: float
    exact_folded: float
    cer: float
    cer_folded: float


def cer(preds: Sequence[str], truths: Sequence[str]) -> float:
    """Total edit distance over total truth length (0 is perfect; can exceed 1)."""
    total = sum(len(t) for t in truths)
    return sum(Levenshtein.distance(p, t) for p, t in zip(preds, truths, strict=True)) / max(total, 1)


def score(preds: Sequence[str], truths: Sequence[str]) -> Scores:
    n = len(truths)
    fp, ft = [fold(p) for p in preds], [fold(t) for t in truths]
    return Scores(
        n=n,
        exact=sum(p == t for p, t in zip(preds, truths, strict=True)) / max(n, 1),
        exact_folded=sum(p == t for p, t in zip(fp, ft, strict=True)) / max(n, 1),
        cer=cer(preds, truths),
        cer_folded=cer(fp, ft),
    )


def confusions(preds: Sequence[str], truths: Sequence[str]) -> Counter[tuple[str, str]]:
    """(true char, read char) substitution counts from the edit alignment; '' marks insert/delete."""
    counts: Counter[tuple[str, str]] = Counter()
    for p, t in zip(preds, truths, strict=True):
        for op in Levenshtein.editops(t, p):
            if op.tag == "replace":
                counts[(t[op.src_pos], p[op.dest_pos])] += 1
            elif op.tag == "delete":
                counts[(t[op.src_pos], "")] += 1
            else:
                counts[("", p[op.dest_pos])] += 1
    return counts
