"""CTC decoding in numpy: greedy best path and a prefix beam search for top-k candidates.

Logits come as (T, C) per image with class 0 the blank and class i the charset's character i-1.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PRUNE = 1e-3


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def greedy_decode(probs: np.ndarray, charset: str) -> tuple[str, tuple[float, ...]]:
    """Best path: argmax per step, merge repeats, drop blanks; per-character max probability."""
    best = probs.argmax(axis=-1)
    text, confs = [], []
    prev = 0
    for t, k in enumerate(best):
        if k != 0 and k != prev:
            text.append(charset[k - 1])
            confs.append(float(probs[t, k]))
        elif k != 0 and k == prev and confs:
            confs[-1] = max(confs[-1], float(probs[t, k]))
        prev = k
    return "".join(text), tuple(confs)


def beam_search(probs: np.ndarray, charset: str, beam_width: int = 8, top_k: int = 5) -> list[tuple[str, float]]:
    """Prefix beam search; returns up to `top_k` (text, probability) pairs, most probable first."""
    beams: dict[str, tuple[float, float]] = {"": (1.0, 0.0)}  # prefix -> (p ending in blank, p in char)
    # Each step's classes, surest first; those under PRUNE cannot lift a prefix into the top k: skip
    # them (2x faster). Sorted for all steps at once, and walked as Python lists (indexing the numpy
    # arrays step by step was slower).
    order = np.argsort(probs, axis=1)[:, ::-1][:, : beam_width + 1]
    top = np.take_along_axis(probs, order, axis=1)
    kept = (top >= PRUNE) | (order == 0)
    # A step sure of the blank (seven steps in ten of unsure synthetic reads) scales every beam alike
    # and ends none in a character: no merging or ranking, and a run of them is applied as one product.
    blank_run: float | None = None  # the probability of the blank-only steps since the last other step
    for classes, values, keep in zip(order.tolist(), top.tolist(), kept.tolist(), strict=True):
        candidates = [(k, p) for k, p, y in zip(classes, values, keep, strict=True) if y]
        if len(candidates) == 1 and candidates[0][0] == 0:
            blank_run = candidates[0][1] * (1.0 if blank_run is None else blank_run)
            continue
        if blank_run is not None:
            beams = _after_blanks(beams, blank_run)
            blank_run = None
        nxt: dict[str, list[float]] = {}
        for prefix, (pb, pnb) in beams.items():
            for k, p in candidates:
                if k == 0:
                    nxt.setdefault(prefix, [0.0, 0.0])[0] += (pb + pnb) * p
                    continue
                ch = charset[k - 1]
                extended = nxt.setdefault(prefix + ch, [0.0, 0.0])
                if prefix and prefix[-1] == ch:
                    extended[1] += pb * p
                    nxt.setdefault(prefix, [0.0, 0.0])[1] += pnb * p
                else:
                    extended[1] += (pb + pnb) * p
        ranked = sorted(nxt.items(), key=_beam_total, reverse=True)[:beam_width]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    if blank_run is not None:
        beams = _after_blanks(beams, blank_run)
    scored = sorted(((k, v[0] + v[1]) for k, v in beams.items()), key=lambda kv: kv[1], reverse=True)
    return scored[:top_k]


def _after_blanks(beams: dict[str, tuple[float, float]], p: float) -> dict[str, tuple[float, float]]:
    """The beams after steps that only the blank passes, with probability `p` all told."""
    return {prefix: ((pb + pnb) * p, 0.0) for prefix, (pb, pnb) in beams.items()}


def _beam_total(beam: tuple[str, list[float]]) -> float:
    return beam[1][0] + beam[1][1]


def text_probability(probs: np.ndarray, charset: str, text: str) -> float:
    """P(text | probs) summed over every CTC path that spells `text` (the forward algorithm).

    Lets one recogniser score a text another recogniser read; 0.0 when `text` holds a character
    outside `charset` or needs more steps than the (T, C) matrix has.
    """
    return float(text_probabilities(probs[None], charset, [text])[0, 0])


def text_probabilities(probs: np.ndarray, charset: str, texts: Sequence[str]) -> np.ndarray:
    """`text_probability` of each of `texts` (rows) under each of a stack of (N, T, C) probability
    matrices (columns), at the cost of about one: the forward algorithm's steps are a few small array
    operations each, so every text and every matrix of one shape (the views of one crop read by one
    network, `ocr.views`; the candidates a vote weighs) go through the steps together."""
    spelled = [i for i, text in enumerate(texts) if all(ch in charset for ch in text)]
    out = np.zeros((len(texts), len(probs)))
    if not spelled:
        return out
    # Each text's states: blank, l1, blank, l2, ..., blank, laid end to end. From a state the path
    # stays, moves to the next, or skips the blank between two different characters (never between
    # repeats): one block-diagonal transition matrix, the same at every step.
    blocks = [_states([charset.index(ch) + 1 for ch in texts[i]]) for i in spelled]
    sizes = np.array([len(block) for block in blocks])
    starts = np.cumsum(sizes) - sizes
    ext = np.concatenate(blocks)
    moves = np.zeros((len(ext), len(ext)))
    for start, block in zip(starts, blocks, strict=True):
        span = slice(start, start + len(block))
        moves[span, span] = np.eye(len(block)) + np.eye(len(block), k=1)
        skips = start + np.nonzero((block[2:] != 0) & (block[2:] != block[:-2]))[0]
        moves[skips, skips + 2] = 1.0
    steps = probs[:, :, ext]  # (N, T, states): each state's probability at each step
    firsts = np.concatenate([starts, (starts + 1)[sizes > 1]])  # a path starts on the blank or l1
    alpha = np.zeros((len(probs), len(ext)))
    alpha[:, firsts] = steps[:, 0, firsts]
    for t in range(1, probs.shape[1]):
        alpha = (alpha @ moves) * steps[:, t]
    ends = starts + sizes - 1  # a path ends on the last blank or the last character
    out[spelled] = (alpha[:, ends] + np.where(sizes > 1, alpha[:, np.maximum(ends - 1, starts)], 0.0)).T
    return out


def _states(labels: list[int]) -> np.ndarray:
    states = [0]
    for k in labels:
        states += [k, 0]
    return np.array(states)
