"""Retention (`output.retention`): crops and events older than `max_age_days` are deleted, and crops plus
the events files are kept under `max_disk_gb` by deleting the oldest crops first.

An event whose crop is deleted stays, marked: its `crop_path` emptied and `crop_note` saying when and
why, in the database before the file goes (a crash in between leaves an event saying its crop is gone
while it is still there, never the reverse), then in the JSON-lines file, whose rewrite needs as much
free space as the file: on a full disk the crops must go first. Each batch of rows is its own short
transaction, so the running runtime's inserts wait a moment, not the whole prune. Crops listed in the site's
labels file (gate.labels) are training data and never deleted, nor crops written in the last
`RECENT_SECONDS` (their track may still be read, its event not yet written), nor, in `run`, the crops of
its live tracks however old (a parked car). `run` prunes on a thread every `interval_minutes`;
`platepilot prune [--dry-run]` on demand (a live track's crop it deletes leaves its event without a crop,
and a note saying why).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from platepilot.config import OutputConfig, RetentionConfig
from platepilot.errors import PlatepilotError
from platepilot.store.atomic import locked, replace_atomically
from platepilot.store.events import events_table, open_engine
from platepilot.store.labels import latest_labels, resolve_crop_path
from platepilot.store.partitions import drop_days_before

log = logging.getLogger(__name__)

RECENT_SECONDS = 600.0
GB = 1e9
_DAY = 86_400.0


@dataclass(frozen=True, slots=True)
class CropFile:
    path: Path
    mtime: float  # seconds since the epoch: when the track's best crop was written
    size: int  # bytes


@dataclass(frozen=True, slots=True)
class PrunePlan:
    """Crops to delete, each with why; events last seen before `event_cutoff` go too (None: none);
    `over_cap`: bytes still over max_disk_gb once the plan is done (only protected crops and events left)."""

    crops: tuple[tuple[CropFile, str], ...]
    event_cutoff: float | None
    over_cap: int


@dataclass(frozen=True, slots=True)
class PruneReport:
    plan: PrunePlan
    events_deleted: int  # database rows (with --dry-run: that would be)
    events_marked: int  # database rows whose crop is deleted
    jsonl_deleted: int
    dry_run: bool

    @property
    def changed(self) -> bool:
        return bool(self.plan.crops or self.events_deleted or self.jsonl_deleted)

    def line(self) -> str:
        verb = "would delete" if self.dry_run else "deleted"
        freed = sum(crop.size for crop, _ in self.plan.crops) / 1e6
        text = (
            f"retention: {verb} {len(self.plan.crops)} crops ({freed:.1f} MB), {self.events_deleted} events "
            f"and {self.jsonl_deleted} JSONL lines; {self.events_marked} events marked as having lost their crop"
        )
        if self.plan.over_cap:
            text += f"; still {self.plan.over_cap / 1e6:.1f} MB over max_disk_gb (labeled or recent crops, events)"
        return text


def applies(retention: RetentionConfig) -> bool:
    """Whether retention deletes anything (max_age_days or max_disk_gb set)."""
    return retention.max_age_days is not None or retention.max_disk_gb is not None


def plan_prune(
    crops: Sequence[CropFile], retention: RetentionConfig, events_bytes: int, now: float, keep: set[Path]
) -> PrunePlan:
    """Which crops go: those older than max_age_days, then the oldest until crops + events fit max_disk_gb.
    Crops in `keep` (labeled, resolved paths) and those newer than `RECENT_SECONDS` never go."""
    cutoff = None if retention.max_age_days is None else now - retention.max_age_days * _DAY
    chosen: list[tuple[CropFile, str]] = []
    candidates: list[CropFile] = []
    for crop in sorted(crops, key=lambda c: c.mtime):
        if crop.path.resolve() in keep or crop.mtime > now - RECENT_SECONDS:
            continue
        if cutoff is not None and crop.mtime < cutoff:
            chosen.append((crop, f"older than max_age_days {retention.max_age_days:g}"))
        else:
            candidates.append(crop)
    total = events_bytes + sum(c.size for c in crops) - sum(c.size for c, _ in chosen)
    cap = None if retention.max_disk_gb is None else int(retention.max_disk_gb * GB)
    for crop in candidates:
        if cap is None or total <= cap:
            break
        chosen.append((crop, f"max_disk_gb {retention.max_disk_gb:g} reached"))
        total -= crop.size
    return PrunePlan(tuple(chosen), cutoff, 0 if cap is None else max(total - cap, 0))


def prune(
    output: OutputConfig,
    labels: Path,
    now: float,
    dry_run: bool = False,
    fleet_crops: Path | None = None,
    live: Callable[[], set[Path]] | None = None,
) -> PruneReport:
    """Apply `output.retention` once: mark the events of the crops that go, delete those crops, then the
    events older than max_age_days (with `dry_run`, only count). `fleet_crops`: the collector's crops
    folder (`<dir>/<device>/<day>/`), whose crops go with their events as the runtime's do. `live`: the
    (resolved) crops of the runtime's live tracks, kept however old (a car parked for an hour)."""
    folders = {output.crops_dir: "*/*.jpg", **({fleet_crops: "*/*/*.jpg"} if fleet_crops is not None else {})}
    crops = sorted(
        (c for folder, pattern in folders.items() for c in crop_files(folder, pattern)), key=lambda c: c.mtime
    )
    engine = open_engine(output.events_db_url)
    try:
        keep = labeled(labels) | (live() if live is not None else set())
        plan = plan_prune(crops, output.retention, events_bytes(output), now, keep)
        day = time.strftime("%Y-%m-%d", time.localtime(now))
        notes = {key: f"crop deleted {day}: {why}" for crop, why in plan.crops for key in _keys(crop.path)}
        marked, deleted = _prune_database(engine, notes, plan.event_cutoff, dry_run)
    finally:
        engine.dispose()
    if not dry_run:
        for crop, _ in plan.crops:
            crop.path.unlink(missing_ok=True)
        _remove_empty_folders(set(folders), {crop.path.parent for crop, _ in plan.crops})
    jsonl_deleted = 0
    if output.events_jsonl is not None and output.events_jsonl.is_file():
        jsonl_deleted = _prune_jsonl(output.events_jsonl, notes, plan.event_cutoff, dry_run)
    return PruneReport(plan, deleted, marked, jsonl_deleted, dry_run)


def crop_files(crops_dir: Path, pattern: str = "*/*.jpg") -> list[CropFile]:
    """Every crop of the store (`<crops_dir>/<day>/*.jpg`, or as `pattern` says), oldest first."""
    found = []
    for path in crops_dir.glob(pattern) if crops_dir.is_dir() else []:
        try:
            stat = path.stat()
        except OSError:  # deleted meanwhile
            continue
        found.append(CropFile(path, stat.st_mtime, stat.st_size))
    return sorted(found, key=lambda c: c.mtime)


def events_bytes(output: OutputConfig) -> int:
    """Bytes the events take on disk: a SQLite database (with its WAL) and the JSON-lines file."""
    files = [output.events_jsonl] if output.events_jsonl is not None else []
    url = sa.make_url(output.events_db_url)
    if url.drivername.startswith("sqlite") and url.database not in (None, "", ":memory:"):
        database = Path(str(url.database))
        files += [database, database.with_name(database.name + "-wal")]
    return sum(path.stat().st_size for path in files if path.is_file())


def labeled(labels: Path) -> set[Path]:
    """The resolved crop paths `labels` names (none when the file is missing)."""
    if not labels.is_file():
        return set()
    return {resolve_crop_path(path, labels).resolve() for path in latest_labels(labels)}


def _keys(path: Path) -> tuple[str, str]:
    """How an event may name a crop: as the store wrote it, or absolute."""
    return str(path), str(path.resolve())


def _prune_database(engine: sa.Engine, notes: dict[str, str], cutoff: float | None, dry_run: bool) -> tuple[int, int]:
    """(events marked, events deleted) in the database."""
    table = events_table
    by_note: dict[str, list[str]] = {}
    for path, note in notes.items():
        by_note.setdefault(note, []).append(path)
    marked = deleted = 0
    dropped = drop_days_before(engine, cutoff) if cutoff is not None and not dry_run else 0
    for note, paths in by_note.items():
        for chunk in _chunks(paths, 500):
            where = table.c.crop_path.in_(chunk)
            with engine.begin() as conn:
                if dry_run:
                    marked += conn.execute(sa.select(sa.func.count()).where(where)).scalar_one()
                else:
                    marked += conn.execute(table.update().where(where).values(crop_path="", crop_note=note)).rowcount
    with engine.begin() as conn:
        if cutoff is not None:
            old = table.c.last_seen < cutoff
            if dry_run:
                deleted = conn.execute(sa.select(sa.func.count()).where(old)).scalar_one()
            else:
                deleted = dropped + conn.execute(table.delete().where(old)).rowcount
    return marked, deleted


def _prune_jsonl(path: Path, notes: dict[str, str], cutoff: float | None, dry_run: bool) -> int:
    """Rewrite the JSON-lines file without events older than `cutoff` and with deleted crops marked,
    under the lock its appender takes; lines that are not events are kept as they are. Lines dropped."""
    with locked(path, "rb") as handle:
        kept, dropped, changed = [], 0, False
        for raw in handle.read().splitlines(keepends=True):
            event = _event_or_none(raw)
            if event is None:
                kept.append(raw)
            elif cutoff is not None and float(event.get("last_seen", cutoff)) < cutoff:
                dropped += 1
            elif event.get("crop_path") in notes:
                event["crop_note"] = notes[event["crop_path"]]
                event["crop_path"] = ""
                kept.append((json.dumps(event) + "\n").encode("utf-8"))
                changed = True
            else:
                kept.append(raw)
        if (dropped or changed) and not dry_run:
            replace_atomically(path, b"".join(kept), path.stat().st_mode)
    return dropped


def _event_or_none(raw: bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(raw)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _remove_empty_folders(roots: set[Path], folders: set[Path]) -> None:
    """Remove the emptied day folders (never a crops folder itself)."""
    for folder in folders:
        if folder not in roots and roots & set(folder.parents) and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()


class Pruner:
    """Applies retention at start, then every `interval_minutes`, on its own thread, while the runtime
    runs; a failing prune is logged and tried again at the next interval."""

    def __init__(
        self,
        output: OutputConfig,
        labels: Path,
        clock: Callable[[], float] = time.time,
        fleet_crops: Path | None = None,
        live: Callable[[], set[Path]] | None = None,
    ) -> None:
        self.output, self.labels, self._clock, self.fleet_crops = output, labels, clock, fleet_crops
        self.live = live  # the crops of the live tracks (`prune`)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="retention", daemon=True)

    def start(self) -> None:
        if applies(self.output.retention):
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def run_once(self) -> PruneReport | None:
        try:
            report = prune(self.output, self.labels, self._clock(), fleet_crops=self.fleet_crops, live=self.live)
        except (PlatepilotError, OSError, sa.exc.SQLAlchemyError) as exc:
            log.error(
                "retention: prune failed (%s); trying again in %g min", exc, self.output.retention.interval_minutes
            )
            return None
        if report.changed:
            log.info("%s", report.line())
        return report

    def _loop(self) -> None:
        while True:
            self.run_once()
            if self._stop.wait(self.output.retention.interval_minutes * 60):
                return
