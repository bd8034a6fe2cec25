"""CTC decoding (greedy best path, prefix beam search) and the plate-format prior."""

from __future__ import annotations

import numpy as np
import pytest

from platepilot.ocr.base import apply_format_prior
from platepilot.ocr.ctc import beam_search, greedy_decode, softmax, text_probability

CHARSET = "ABC"  # classes: 0 blank, 1 A, 2 B, 3 C


def peaked(path: str, peak: float = 0.9, charset: str = CHARSET) -> np.ndarray:
    """(T, C) probabilities whose argmax path is `path` ('-' the blank), `peak` on the argmax."""
    classes = len(charset) + 1
    probs = np.full((len(path), classes), (1 - peak) / (classes - 1))
    for t, ch in enumerate(path):
        probs[t, 0 if ch == "-" else charset.index(ch) + 1] = peak
    return probs


@pytest.mark.parametrize(
    ("path", "text"),
    [
        ("A", "A"),
        ("AAB", "AB"),  # repeats merge
        ("A-A", "AA"),  # a blank splits a repeat
        ("-AA--BB-C", "ABC"),
        ("----", ""),  # all blank
        ("CBA", "CBA"),
    ],
)
def test_greedy_decode(path: str, text: str) -> None:
    got, confs = greedy_decode(peaked(path), CHARSET)
    assert got == text
    assert len(confs) == len(text)
    assert all(c == pytest.approx(0.9) for c in confs)


def test_greedy_char_confidence_is_the_best_step_of_a_repeat() -> None:
    probs = peaked("AA")
    probs[0] = [0.2, 0.6, 0.1, 0.1]
    assert greedy_decode(probs, CHARSET) == ("A", (pytest.approx(0.9),))


def test_softmax_rows_sum_to_one() -> None:
    logits = np.random.default_rng(0).normal(0, 5, (6, 7, 4))
    assert np.allclose(softmax(logits).sum(axis=-1), 1.0)


@pytest.mark.parametrize("path", ["-A-B-C-", "AAB-BC", "C--CC-A", "----"])
def test_beam_top1_equals_greedy_on_peaked_distributions(path: str) -> None:
    probs = peaked(path, peak=0.97)
    results = beam_search(probs, CHARSET, beam_width=8, top_k=5)
    assert results[0][0] == greedy_decode(probs, CHARSET)[0]
    assert [p for _, p in results] == sorted((p for _, p in results), reverse=True)
    assert 0 < sum(p for _, p in results) <= 1 + 1e-9
    assert len({t for t, _ in results}) == len(results)  # prefixes merged, not listed twice


def test_beam_merges_paths_of_the_same_text() -> None:
    # Best path is blank-blank (""), yet "A" collects A-, -A and AA: 0.4*0.6*2 + 0.4*0.4 = 0.64 > 0.36.
    probs = np.array([[0.6, 0.4, 0.0, 0.0], [0.6, 0.4, 0.0, 0.0]])
    assert greedy_decode(probs, CHARSET)[0] == ""
    results = dict(beam_search(probs, CHARSET, beam_width=4, top_k=2))
    assert results["A"] == pytest.approx(0.64)
    assert results[""] == pytest.approx(0.36)


@pytest.mark.parametrize("seed", range(4))
def test_beam_probabilities_are_the_forward_algorithms_when_nothing_is_pruned(seed: int) -> None:
    # Random steps (every class above the prune floor) with steps sure of the blank (exactly 1.0, as a
    # float32 softmax gives) between them: the search's fast path for those must keep repeats apart.
    rng = np.random.default_rng(seed)
    steps = 0.96 * rng.dirichlet(np.ones(len(CHARSET) + 1), size=4) + 0.01
    probs = np.insert(steps, [1, 2, 2, 4], [1.0, 0.0, 0.0, 0.0], axis=0)
    results = beam_search(probs, CHARSET, beam_width=500, top_k=500)
    assert len(results) == sum(len(CHARSET) ** n for n in range(5))  # every text of up to 4 characters
    for text, p in results:
        assert p == pytest.approx(text_probability(probs, CHARSET, text), rel=1e-9)


def test_beam_keeps_a_repeat_split_by_a_certain_blank() -> None:
    assert beam_search(peaked("A-A", peak=1.0), CHARSET)[0] == ("AA", 1.0)


@pytest.mark.parametrize(
    ("candidates", "expected"),
    [
        # Best is no plate format; a near-equal Florida plate wins.
        ([("ABCD1Z", 0.40), ("ABCD12", 0.35)], ("ABCD12", 0.35)),
        # Far worse (below half the best): the best stays when some state issues it (Mississippi's @@@@@#)...
        ([("ABCDE1", 0.60), ("ABCD51", 0.20)], ("ABCDE1", 0.60)),
        # ...while a text no state issues gives way to a format one character away from a twentieth of it.
        ([("ABCD1Z", 0.60), ("ABCD12", 0.04)], ("ABCD12", 0.04)),
        ([("ABCD1Z", 0.60), ("ABCD12", 0.02)], ("ABCD1Z", 0.60)),
        # The best already matches: kept, though another format matches too.
        ([("ABC123", 0.50), ("ABC1234", 0.45)], ("ABC123", 0.50)),
        # Nothing matches: the best, never an edited text.
        ([("XYZ", 0.50), ("XYZW", 0.40)], ("XYZ", 0.50)),
        # Unsorted input is ranked first.
        ([("ABCD12", 0.30), ("ABCD1Z", 0.50)], ("ABCD12", 0.30)),
        ([], ("", 0.0)),
    ],
)
def test_format_prior(candidates: list[tuple[str, float]], expected: tuple[str, float]) -> None:
    assert apply_format_prior(candidates) == expected


def test_format_prior_ratio_is_the_cut() -> None:
    candidates = [("ABCDE1", 0.50), ("ABCD51", 0.30)]
    assert apply_format_prior(candidates, ratio=0.5)[0] == "ABCD51"
    assert apply_format_prior(candidates, ratio=0.7)[0] == "ABCDE1"
