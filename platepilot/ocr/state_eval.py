"""Scoring a state classifier on labelled photos (a state manifest): top-1, top-3, Florida vs not, speed.

- `top1`, `top3`: the true state is the best state, or among the three best (the `unknown` class and
  the confidence floor are ignored: they are scored by `unknown_rate`);
- `named_right`: the state a read would carry (`unknown` below the floor) is the true one: what an
  operator sees in the events, `top1` less the right states the floor turned into `unknown`;
- `florida_precision`, `florida_recall`: of Florida vs not Florida, with the runtime's decision (null
  when no photo was called Florida, or none is)
  (a read says FL only when FL is the best state and clears the floor);
- `ms_per_plate`: the classifier's time per photo at batches of 64 (and the name reader's, when the
  classifier has one), decoding and a first warm-up call excluded.

`write_state_report` adds what a person looks at: every wrong best state, the most confident first,
in report.json and as a captioned contact sheet (worst_errors.png).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import track

from platepilot.images import read_image
from platepilot.ocr.evaluate import write_report_files
from platepilot.ocr.state import StateClassifier
from platepilot.plates.state_manifest import StatePhoto
from platepilot.plates.states import FLORIDA, UNKNOWN

SHEET_ERRORS = 36  # in worst_errors.png


@dataclass(frozen=True)
class StateError:
    """A photo whose best state is not its state; `confidence` is the best state's probability."""

    path: Path
    truth: str
    predicted: str
    confidence: float


@dataclass(frozen=True)
class StateEval:
    n: int
    top1: float
    top3: float
    florida_precision: float | None  # None: no photo said Florida (precision of nothing)
    florida_recall: float | None  # None: no Florida photo
    florida_n: int
    unknown_rate: float
    named_right: float
    ms_per_plate: float
    confusions: tuple[tuple[str, str, int], ...]  # (true, predicted, count), most frequent first
    worst_states: tuple[tuple[str, float, int], ...]  # (state, top-1 accuracy, photos), worst first
    errors: tuple[StateError, ...] = field(default=(), repr=False)  # most confident first; not in to_json

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["errors"]
        out["confusions"] = [{"true": t, "predicted": p, "count": c} for t, p, c in self.confusions]
        out["worst_states"] = [{"state": s, "top1": a, "n": n} for s, a, n in self.worst_states]
        return out


def evaluate_states(
    photos: Sequence[StatePhoto], classifier: StateClassifier, console: Console | None = None, top: int = 12
) -> StateEval:
    """Classify every photo once (in batches of BATCH) and score it; see the module docstring."""
    images = [read_image(p.image) for p in track(photos, "reading photos", console=console, transient=True)]
    classifier.classify(images[:1])  # warm-up (sessions, arenas; the name reader's too), as `--scenes` does
    started = time.perf_counter()
    found = classifier.classify(images)  # with the classifier's name reader, if it has one
    ms = 1000 * (time.perf_counter() - started) / max(len(images), 1)
    ranked = [g.top[0] if g.top else (UNKNOWN, 0.0) for g in found]  # a degenerate image has no ranking
    best = [state for state, _ in ranked]
    truth = [p.state for p in photos]
    said_fl = [g.state == FLORIDA for g in found]
    is_fl = [t == FLORIDA for t in truth]
    hits = sum(a and b for a, b in zip(said_fl, is_fl, strict=True))
    per_state: dict[str, list[bool]] = {}
    for t, b in zip(truth, best, strict=True):
        per_state.setdefault(t, []).append(t == b)
    worst = sorted(((s, sum(v) / len(v), len(v)) for s, v in per_state.items()), key=lambda r: (r[1], r[0]))
    confusions = Counter((t, b) for t, b in zip(truth, best, strict=True) if t != b)
    errors = [StateError(p.image, t, *r) for p, t, r in zip(photos, truth, ranked, strict=True) if t != r[0]]
    return StateEval(
        n=len(photos),
        top1=_share(t == b for t, b in zip(truth, best, strict=True)),
        top3=_share(t in [s for s, _ in g.top[:3]] for t, g in zip(truth, found, strict=True)),
        florida_precision=share_of(hits, sum(said_fl)),
        florida_recall=share_of(hits, sum(is_fl)),
        florida_n=sum(is_fl),
        unknown_rate=_share(g.state == UNKNOWN for g in found),
        named_right=_share(g.state == t for g, t in zip(found, truth, strict=True)),
        ms_per_plate=ms,
        confusions=tuple((t, b, c) for (t, b), c in confusions.most_common(top)),
        worst_states=tuple(worst[:top]),
        errors=tuple(sorted(errors, key=lambda e: -e.confidence)),
    )


def write_state_report(result: StateEval, folder: Path) -> None:
    """`folder/report.json` (the summary and every error) and `folder/worst_errors.png` (the most
    confident errors, captioned `true / predicted confidence`)."""
    errors = [{**asdict(e), "path": str(e.path), "confidence": round(e.confidence, 4)} for e in result.errors]
    sheet = [(e.path, f"{e.truth} / {e.predicted} {e.confidence:.2f}") for e in result.errors[:SHEET_ERRORS]]
    write_report_files(folder, {**result.to_json(), "errors": errors}, sheet)


def share_of(hits: int, total: int) -> float | None:
    """hits / total, or None when there is nothing to take a share of (a 0% would be a claim)."""
    return hits / total if total else None


def percent(share: float | None, digits: int = 1) -> str:
    """A share as a percentage, `n/a` for None."""
    return "n/a" if share is None else f"{share:.{digits}%}"


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(values) / max(len(values), 1)
