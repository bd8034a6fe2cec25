"""The state of one labeling run, independent of HTTP: the queue, leases, saves, progress.

Labeling mode walks the crops under `crops_dir` that labels.txt does not cover yet, oldest path first;
the folder is rescanned (at most once a second) so crops that arrive while it runs show up. Each page
(a `client` id) leases the crop it shows, so two tabs never get the same crop; a lease lapses after
`lease_s` seconds. Review mode walks the labeled crops and pending pre-labels, suspicious first.

Every save appends to labels.txt (flock + fsync, later lines win) and a `human`, verified record to
the provenance sidecar; nothing is ever rewritten. All methods are thread-safe.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from platepilot.errors import PlatepilotError
from platepilot.labeling.checks import Reason, check_labels, severity, text_reasons
from platepilot.labeling.crops import CropScanner, crop_meta, label_key, relative_to_crops, safe_crop_file
from platepilot.plates.charset import is_valid_text
from platepilot.store.atomic import AppendedLines
from platepilot.store.labels import append_labels, parse_lines
from platepilot.store.provenance import HUMAN, Provenance, append_records, make_record, parse_record, sidecar_path
from platepilot.types import SKIP

log = logging.getLogger(__name__)

RESCAN_S = 1.0


@dataclass(frozen=True, slots=True)
class Item:
    """One crop as the page shows it; `current` is its saved label (None when unlabeled)."""

    rel: str
    key: str
    current: str | None
    suggestion: Provenance | None
    reasons: tuple[Reason, ...] = ()
    position: int | None = None

    def to_json(self) -> dict[str, Any]:
        meta = crop_meta(self.rel)
        s = self.suggestion
        return {
            "rel": self.rel, "key": self.key, "current": self.current,
            "camera": meta.camera, "date": meta.date, "track": meta.track,
            "suggestion": None if s is None else {"text": s.text, "engine": s.engine,
                                                  "confidence": s.confidence},
            "reasons": [{"code": r.code, "detail": r.detail} for r in self.reasons],
            "position": self.position,
        }  # fmt: skip


class LabelConflict(PlatepilotError):
    """A save of a crop whose label changed since the page showed it."""


@dataclass(frozen=True, slots=True)
class SaveResult:
    line: str
    """What was appended to labels.txt, without the newline; empty when the text was unchanged."""
    item: Item


@dataclass
class _Labels:
    """labels.txt and its provenance sidecar as read so far: crop-relative path -> (path as first written,
    latest text), and -> its latest pre-label. Lines naming no crop (yet) wait in `pending`, with their
    place in the file: a label may be written before its crop arrives, and a later line still wins."""

    by_rel: dict[str, tuple[str, str]] = field(default_factory=dict)
    prelabels: dict[str, Provenance] = field(default_factory=dict)
    label_at: dict[str, int] = field(default_factory=dict)  # rel -> the place of its latest line
    pending: list[tuple[int, str, str]] = field(default_factory=list)  # (place, path as written, text)
    pending_records: list[tuple[int, Provenance]] = field(default_factory=list)
    record_at: dict[str, int] = field(default_factory=dict)
    lines: int = 0  # lines of labels.txt read (places)
    records: int = 0


class LabelSession:
    """Args: crops_dir (as the user gave it); labels_file; review: walk labeled crops instead;
    clock: seconds (time.time by default; tests step it); lease_s: how long a shown crop stays reserved."""

    def __init__(
        self,
        crops_dir: Path,
        labels_file: Path,
        review: bool = False,
        clock: Callable[[], float] = time.time,
        lease_s: float = 300.0,
    ) -> None:
        if not crops_dir.is_dir():
            raise PlatepilotError(f"{crops_dir}: crops folder not found (pass --crops-dir)")
        self.crops_dir = crops_dir
        self.labels_file = labels_file
        self.review = review
        self.clock = clock
        self.lease_s = lease_s
        self.on_quit: Callable[[], None] = lambda: None
        self._lock = threading.RLock()
        self._labels = _Labels()
        self._crops: list[str] = []
        self._scanned_at = -RESCAN_S
        self._leases: dict[str, tuple[str, float]] = {}
        self._saves: list[float] = []
        self._saved_rels: set[str] = set()
        self._last_line = ""
        self._skipped: set[str] = set()
        self._rel_of: dict[str, str] = {}  # path as written in labels.txt -> crop-relative path
        self._label_lines = AppendedLines(labels_file)
        self._scanner = CropScanner(crops_dir)
        self._record_lines = AppendedLines(sidecar_path(labels_file))
        self._review: list[tuple[str, tuple[Reason, ...]]] = self._review_order() if review else []

    # -- reading state -------------------------------------------------------------------------
    def _refresh_labels(self) -> _Labels:
        """Read what labels.txt and its sidecar gained since the last call (every save appends to both;
        reading them whole again took 0.4 s a keystroke at 29,000 labels), or all of them again when
        one was rewritten (compaction, an editor). Lines whose crop is missing are tried again after
        each change, as they were when every change read the files whole."""
        labels = self._labels
        from_start, lines = self._label_lines.read()
        if from_start:
            labels.by_rel, labels.label_at, labels.pending, labels.lines = {}, {}, [], 0
        if from_start or lines:
            waiting, labels.pending = labels.pending, []
            entries = list(waiting)
            for written, label in parse_lines(lines, from_start):
                entries.append((labels.lines, written, label.text))
                labels.lines += 1
            for place, written, text in entries:
                self._add_label(labels, place, written, text)
        from_start, record_lines = self._record_lines.read()
        if from_start:
            labels.prelabels, labels.record_at, labels.pending_records, labels.records = {}, {}, [], 0
        if from_start or record_lines:
            waiting_records, labels.pending_records = labels.pending_records, []
            for line in record_lines:
                record = parse_record(line)
                if record is not None and record.engine != HUMAN:
                    waiting_records.append((labels.records, record))
                labels.records += 1
            for place, record in waiting_records:
                rel = self._crop_of(record.path)
                if rel is None:
                    labels.pending_records.append((place, record))
                elif place >= labels.record_at.get(rel, -1):
                    labels.prelabels[rel], labels.record_at[rel] = record, place
        return labels

    def _add_label(self, labels: _Labels, place: int, written: str, text: str) -> None:
        rel = self._crop_of(written)
        if rel is None:
            labels.pending.append((place, written, text))
        elif place >= labels.label_at.get(rel, -1):
            first = labels.by_rel.get(rel, (written, text))[0]
            labels.by_rel[rel], labels.label_at[rel] = (first, text), place

    def _crop_of(self, written: str) -> str | None:
        """`relative_to_crops`, once per path found: lines whose crop is missing are tried again after
        each change, and resolving them (stat calls, symlinks) is the costly part."""
        if written in self._rel_of:
            return self._rel_of[written]
        rel = relative_to_crops(self.crops_dir, written, self.labels_file)
        if rel is not None:  # kept once found: a label may be written before its crop arrives
            self._rel_of[written] = rel
        return rel

    def _refresh_crops(self) -> list[str]:
        now = time.monotonic()
        if now - self._scanned_at >= RESCAN_S:
            self._crops, skipped = self._scanner.scan()
            self._scanned_at = now
            self._say_skipped(skipped)
        return self._crops

    def _say_skipped(self, skipped: list[str]) -> None:
        """Name the crops left out once each (see `CropScanner`)."""
        new = [rel for rel in skipped if rel not in self._skipped]
        if new:
            self._skipped.update(new)
            why = "symlinks, or names labels.txt cannot hold (a tab or line break, not UTF-8)"
            log.warning("%s: skipped %d crops (first: %r): %s", self.crops_dir, len(new), new[0], why)

    def _review_order(self) -> list[tuple[str, tuple[Reason, ...]]]:
        """Labeled crops and pending pre-labels: flagged first (most serious first), then unverified
        pre-labels (least confident first), then the rest in file order."""
        labels = self._refresh_labels()
        report = check_labels(self.labels_file, check_images=True) if labels.by_rel else None
        reasons = {f.path: f.reasons for f in report.flags} if report else {}
        ranked = []
        for index, (rel, (written, text)) in enumerate(labels.by_rel.items()):
            rec = labels.prelabels.get(rel)
            unverified = rec is not None and rec.text == text and not rec.verified
            why = reasons.get(written, ())
            ranked.append(((0 if why else 1 if unverified else 2), severity(why), _conf(rec), index, rel, why))
        for rel, rec in labels.prelabels.items():
            if rel not in labels.by_rel:
                why = tuple(text_reasons(rec.text)) if rec.text else (Reason("empty_read", "engine read nothing"),)
                ranked.append((1 if not why else 0, severity(why), _conf(rec), len(ranked), rel, why))
        return [(rel, why) for *_, rel, why in sorted(ranked, key=lambda r: r[:4])]

    def _item(self, rel: str, reasons: tuple[Reason, ...] = (), position: int | None = None) -> Item:
        labels = self._refresh_labels()
        written, text = labels.by_rel.get(rel, (label_key(self.crops_dir, rel), None))
        return Item(rel, written, text, labels.prelabels.get(rel), reasons, position)

    # -- the page's calls ----------------------------------------------------------------------
    def item(self, rel: str) -> Item:
        """The crop `rel` (e.g. when going back); PlatepilotError when it is not a crop of this folder."""
        with self._lock:
            if safe_crop_file(self.crops_dir, rel) is None:
                raise PlatepilotError(f"{rel!r} is not a crop under {self.crops_dir}")
            position = next((i for i, (r, _) in enumerate(self._review) if r == rel), None)
            reasons = self._review[position][1] if position is not None else ()
            return self._item(rel, reasons, position)

    def next_item(self, client: str, after: str | None = None) -> Item | None:
        """Labeling: the first unlabeled crop nobody else holds (leased to `client`).
        Review: the entry after `after` (the first when None). None when there is nothing left."""
        with self._lock:
            if self.review:
                return self._next_review(after)
            labels = self._refresh_labels()
            now = self.clock()
            for rel in self._refresh_crops():
                holder = self._leases.get(rel)
                if rel in labels.by_rel or (holder and holder[0] != client and holder[1] > now):
                    continue
                self._leases = {r: h for r, h in self._leases.items() if h[0] != client and h[1] > now}
                self._leases[rel] = (client, now + self.lease_s)
                return self._item(rel)
            return None

    def _next_review(self, after: str | None) -> Item | None:
        start = 0
        if after is not None:
            start = next((i + 1 for i, (r, _) in enumerate(self._review) if r == after), 0)
        for position in range(start, len(self._review)):
            rel, reasons = self._review[position]
            if safe_crop_file(self.crops_dir, rel) is not None:
                return self._item(rel, reasons, position)
        return None

    def save(self, rel: str, text: str, client: str = "", shown: str | None = None) -> SaveResult:
        """Label crop `rel` with `text` (A-Z0-9 or __SKIP__) for good; unchanged texts append nothing.
        `shown`: the label the page showed for it ('' for none); LabelConflict when it has another one
        now (a stale tab confirming ABC123 undid another tab's FIXED1)."""
        if text != SKIP and not is_valid_text(text):
            raise PlatepilotError(f"label {text!r}: use A-Z and 0-9 only, or {SKIP}")
        with self._lock:
            item = self.item(rel)
            if shown is not None and (item.current or "") != shown:
                now_is = f"labelled {item.current}" if item.current else "unlabelled"
                raise LabelConflict(f"{rel} was {now_is} meanwhile (another tab?): shown again, save it anew")
            line = ""
            if item.current != text:
                append_labels(self.labels_file, [(item.key, text)])
                line = f"{item.key}\t{text}"
            now = self.clock()
            record = make_record(item.key, text, HUMAN, None, True, datetime.fromtimestamp(now, UTC))
            append_records(self.labels_file, [record])
            self._leases.pop(rel, None)
            self._saves.append(now)
            self._saved_rels.add(rel)
            if line:
                self._last_line = line
            return SaveResult(line, self._item(rel, item.reasons, item.position))

    def progress(self) -> dict[str, Any]:
        """Counts for the page: done/total, this run's saves and labels per hour, the last line written."""
        with self._lock:
            labels = self._refresh_labels()
            if self.review:
                done, total = len({r for r, _ in self._review} & self._saved_rels), len(self._review)
            else:
                crops = self._refresh_crops()
                done, total = sum(1 for rel in crops if rel in labels.by_rel), len(crops)
            rate = None
            if len(self._saves) >= 2 and self._saves[-1] > self._saves[0]:
                rate = round((len(self._saves) - 1) * 3600 / (self._saves[-1] - self._saves[0]))
            return {
                "mode": "review" if self.review else "label", "done": done, "total": total,
                "saved": len(self._saves), "per_hour": rate, "last_line": self._last_line,
                "labels_file": str(self.labels_file), "crops_dir": str(self.crops_dir),
            }  # fmt: skip

    def quit(self) -> None:
        self.on_quit()


def _conf(rec: Provenance | None) -> float:
    return 2.0 if rec is None or rec.confidence is None else rec.confidence
