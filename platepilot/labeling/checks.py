"""Checks of a labels file: counts, suspicious labels with reasons, character coverage, readiness.

`check_labels` looks at each crop's latest label (later lines win). Text checks apply to plate texts
(not `__SKIP__`); image checks to every crop. Nothing here edits the file: fixing is the labeling
tool's `--review` mode, which walks the flagged crops first.
"""

from __future__ import annotations

import hashlib
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.plates.charset import CHARSET
from platepilot.plates.formats import matching_formats
from platepilot.store.labels import resolve_crop_path, scan_labels
from platepilot.store.provenance import latest_prelabels, unverified_paths
from platepilot.store.splits import FINETUNE_ADVICE, is_held_out, split_group, validation_plan
from platepilot.types import SKIP

# Words from signs, banners and parking-lot paint that plate detectors pick up (and OCR reads well).
# fmt: off
SIGN_WORDS = frozenset({
    "RESERVED", "SUITE", "EXIT", "PARKING", "PARK", "ENTRANCE", "ENTER", "ENTRY", "STOP", "ONLY",
    "VISITOR", "VISITORS", "HANDICAP", "LOADING", "ZONE", "SPEED", "LIMIT", "YIELD", "PRIVATE",
    "PROPERTY", "OFFICE", "STAFF", "EMPLOYEE", "EMPLOYEES", "CUSTOMER", "CUSTOMERS", "FIRE", "LANE",
    "TAXI", "FLORIDA", "SUNSHINE", "STATE", "MYFLORIDA", "SALE", "OPEN", "CLOSED", "DRIVE", "THRU",
    "WELCOME", "PULL", "PUSH", "CAUTION", "SLOW", "SCHOOL", "COMPACT", "LEVEL", "FLOOR", "TOWAWAY",
    "TOWING", "ONEWAY", "NO", "TOW", "BUS", "WAY", "ONE",
})
# fmt: on
MAX_LEN = 8
MIN_LEN = 2
FEW_EXAMPLES = 10
"""A character seen fewer times than this in the labels is reported as poorly covered."""

# (minimum plate labels, verdict, what to expect): a rule of thumb in the spirit of the guide's table.
READINESS: tuple[tuple[int, str, str], ...] = (
    (0, "none", "no plate labels yet: label crops with `platepilot label` (or the guide's label_crops.py)"),
    (1, "too few", f"too few to train on: fine-tune the bundled reader ({FINETUNE_ADVICE}) only to try "
                   "the pipeline; expect little change on your cameras, and the promotion gate to refuse it"),
    (200, "starter", "enough to fine-tune the bundled reader with synthetic plates mixed in; expect "
                     "clear gains on your cameras, but a noisy validation score"),
    (500, "good", "a good first real model: fine-tune with --synthetic; expect most plates read exactly "
                  "and the validation score to mean something"),
    (1000, "solid", "solid: training pays off across lighting and angles; keep labeling the reader's "
                    "mistakes (eval's worst errors) rather than more easy crops"),
    (2000, "production", "production-ready amount: a reader trained on these should beat generic OCR on "
                         "your cameras; keep adding crops from new cameras and seasons"),
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Reason:
    """Why a crop is flagged: a stable `code` for machines and a `detail` for people."""

    code: str
    detail: str


# Most serious first: flags are listed (and reviewed) in this order; no_format catches vanity and
# out-of-state plates too, so it comes last.
SEVERITY = (
    "missing_image", "unreadable_image", "identical_images_different_labels",
    "sign_word", "too_long", "too_short", "no_digits", "empty_read", "no_format",
)  # fmt: skip


def severity(reasons: tuple[Reason, ...]) -> int:
    """Rank of the most serious reason (0 is worst); len(SEVERITY) for none."""
    ranks = [SEVERITY.index(r.code) if r.code in SEVERITY else len(SEVERITY) - 1 for r in reasons]
    return min(ranks, default=len(SEVERITY))


@dataclass(frozen=True, slots=True)
class Flag:
    """A crop (path as written in labels.txt) whose latest label looks wrong, and why."""

    path: str
    text: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True, slots=True)
class Readiness:
    level: str
    plate_labels: int
    expect: str
    val_crops: int
    val_margin: float | None
    """Half-width of a 95% interval on validation exact accuracy near 90%, as a fraction."""
    held_out: int = 0
    """Plate labels kept for the promotion gate: training never sees them."""
    training: str = ""
    """What training on these labels validates on (`store.splits.ValidationPlan.line`)."""


@dataclass(frozen=True)
class CheckReport:
    labels_file: Path
    lines: int
    crops: int
    labeled: int
    skipped: int
    bad_lines: tuple[str, ...]
    flags: tuple[Flag, ...]
    coverage: dict[str, int]
    few_examples: tuple[str, ...]
    duplicate_images: int
    unverified: int
    pending_prelabels: int
    readiness: Readiness
    flagged_paths: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "flagged_paths", frozenset(f.path for f in self.flags))

    @property
    def ok(self) -> bool:
        return not self.flags and not self.bad_lines

    def to_json(self) -> dict[str, Any]:
        r = self.readiness
        return {
            "labels_file": str(self.labels_file), "lines": self.lines, "crops": self.crops,
            "labeled": self.labeled, "skipped": self.skipped, "bad_lines": list(self.bad_lines),
            "flags": [
                {"path": f.path, "text": f.text, "reasons": [_reason_json(x) for x in f.reasons]}
                for f in self.flags
            ],
            "flag_counts": dict(Counter(x.code for f in self.flags for x in f.reasons)),
            "coverage": self.coverage, "few_examples": list(self.few_examples),
            "duplicate_images": self.duplicate_images, "unverified": self.unverified,
            "pending_prelabels": self.pending_prelabels,
            "readiness": {"level": r.level, "plate_labels": r.plate_labels, "expect": r.expect,
                          "val_crops": r.val_crops, "val_margin": r.val_margin},
            "ok": self.ok,
        }  # fmt: skip


def _reason_json(reason: Reason) -> dict[str, str]:
    return {"code": reason.code, "detail": reason.detail}


def text_reasons(text: str) -> list[Reason]:
    """What is suspicious about a plate text on its own (empty for a plausible plate or SKIP)."""
    if text == SKIP:
        return []
    reasons = []
    word = _sign_word(text)
    if word is not None:
        reasons.append(Reason("sign_word", f"looks like sign text ({word})"))
    if not any(ch.isdigit() for ch in text):
        reasons.append(Reason("no_digits", "no digits (plates almost always have some)"))
    if len(text) > MAX_LEN:
        reasons.append(Reason("too_long", f"{len(text)} characters (US plates have at most {MAX_LEN})"))
    if len(text) < MIN_LEN:
        reasons.append(Reason("too_short", f"{len(text)} character (fewer than {MIN_LEN})"))
    if not reasons and not matching_formats(text):
        reasons.append(Reason("no_format", "matches no known Florida/US plate format"))
    return reasons


def _sign_word(text: str) -> str | None:
    if text in SIGN_WORDS:
        return text
    letters = "".join(ch for ch in text if ch.isalpha())
    if len(letters) >= 4 and letters in SIGN_WORDS:
        return letters
    return next((w for w in sorted(SIGN_WORDS) if len(w) >= 5 and w in text), None)


def check_labels(labels_file: Path, check_images: bool = True, holdout_fraction: float = 0.15) -> CheckReport:
    """Read `labels_file` (and its provenance sidecar) and check every crop's latest label.

    `holdout_fraction` must be the `gate.holdout_fraction` training uses, so the verdict matches the run."""
    report = scan_labels(labels_file)
    latest = {path: label.text for path, label in report.latest.items()}
    reasons: dict[str, list[Reason]] = {path: text_reasons(text) for path, text in latest.items()}
    duplicates = 0
    if check_images:
        duplicates = _image_reasons(labels_file, latest, reasons)
    flagged = [Flag(p, latest[p], tuple(r)) for p, r in reasons.items() if r]
    flags = tuple(sorted(flagged, key=lambda f: severity(f.reasons)))  # stable: file order within a rank
    plates = [text for text in latest.values() if text != SKIP]
    coverage = Counter("".join(plates))
    labeled_paths = {str(resolve_crop_path(p, labels_file).resolve()) for p in latest}
    pending = [
        p for p in latest_prelabels(labels_file)
        if p not in latest and str(resolve_crop_path(p, labels_file).resolve()) not in labeled_paths
    ]  # fmt: skip
    return CheckReport(
        labels_file=labels_file,
        lines=len(report.entries),
        crops=len(latest),
        labeled=len(plates),
        skipped=len(latest) - len(plates),
        bad_lines=tuple(str(p) for p in report.problems),
        flags=flags,
        coverage={ch: coverage.get(ch, 0) for ch in CHARSET},
        few_examples=tuple(ch for ch in CHARSET if coverage.get(ch, 0) < FEW_EXAMPLES),
        duplicate_images=duplicates,
        unverified=len(unverified_paths(labels_file, latest)),
        pending_prelabels=len(pending),
        readiness=readiness(len(plates), held_out=_held_out(latest, holdout_fraction)),
    )


def _image_reasons(labels_file: Path, latest: dict[str, str], reasons: dict[str, list[Reason]]) -> int:
    """Add missing/unreadable/conflict reasons in place; returns how many crops duplicate another's bytes."""
    by_hash: dict[str, list[str]] = defaultdict(list)
    for path, text in latest.items():
        target = resolve_crop_path(path, labels_file)
        if not target.is_file():
            if text != SKIP:
                reasons[path].append(Reason("missing_image", f"image not found: {target}"))
            continue
        try:
            read_image(target)
            by_hash[hashlib.sha1(target.read_bytes()).hexdigest()].append(path)
        except PlatepilotError as exc:
            reasons[path].append(Reason("unreadable_image", str(exc)))
    duplicates = 0
    for paths in by_hash.values():
        files = {str(resolve_crop_path(p, labels_file).resolve()) for p in paths}
        if len(files) > 1:
            duplicates += len(paths) - 1
            _conflicts(paths, latest, reasons, "identical_images_different_labels", "identical image")
    return duplicates


def _conflicts(
    paths: list[str], latest: dict[str, str], reasons: dict[str, list[Reason]], code: str, what: str
) -> None:
    if len({latest[p] for p in paths}) < 2:
        return
    for path in paths:
        others = ", ".join(f"{p} = {latest[p]}" for p in paths if p != path)
        reasons[path].append(Reason(code, f"{what} {others}"))


def readiness(plate_labels: int, val_split: float = 0.15, held_out: int = 0) -> Readiness:
    """The verdict for `plate_labels` labels (`held_out` of them kept for the gate), what training will
    validate on (the same plan training follows), and how precise a validation score can be."""
    level, expect = next((lv, ex) for n, lv, ex in reversed(READINESS) if plate_labels >= n)
    plan = validation_plan(plate_labels - held_out, val_split)
    val = plan.val_crops
    margin = round(1.96 * math.sqrt(0.9 * 0.1 / val), 3) if val else None
    return Readiness(level, plate_labels, expect, val, margin, held_out, plan.line())


def _held_out(latest: dict[str, str], fraction: float) -> int:
    return sum(text != SKIP and is_held_out(split_group(path, text), fraction) for path, text in latest.items())


def summary_lines(report: CheckReport, max_flags: int = 50) -> list[str]:
    """The human-readable report, one string per line."""
    r = report.readiness
    lines = [
        f"{report.labels_file}: {report.lines} lines, {report.crops} crops",
        f"labeled: {report.labeled}   skipped: {report.skipped}",
    ]
    if report.unverified or report.pending_prelabels:
        lines.append(
            f"unverified pre-labels: {report.unverified} in labels.txt, "
            f"{report.pending_prelabels} only suggested (review them with label_crops.py --review)"
        )
    if report.duplicate_images:
        lines.append(f"duplicate images: {report.duplicate_images} (identical bytes under another path)")
    for problem in report.bad_lines:
        lines.append(f"unusable {problem}")
    counts = Counter(x.code for f in report.flags for x in f.reasons)
    summary = ", ".join(f"{code} {n}" for code, n in counts.most_common())
    lines.append(f"flagged: {len(report.flags)}" + (f" ({summary})" if summary else ""))
    for flag in report.flags[:max_flags]:
        lines.append(f"  {flag.path}\t{flag.text}\t" + "; ".join(x.detail for x in flag.reasons))
    if len(report.flags) > max_flags:
        lines.append(f"  ... and {len(report.flags) - max_flags} more (--json lists them all)")
    few = ", ".join(f"{ch} {report.coverage[ch]}" for ch in report.few_examples)
    lines.append(f"characters with fewer than {FEW_EXAMPLES} examples: {few or 'none'}")
    margin = f" (validation on ~{r.val_crops} crops: exact accuracy +/-{r.val_margin:.0%})" if r.val_margin else ""
    lines.append(f"readiness: {r.level}, {r.plate_labels} plate labels{margin}")
    lines.append(f"  {r.expect}")
    lines.append(f"  training: {r.held_out} held out for the promotion gate (never trained on); {r.training}")
    return lines
