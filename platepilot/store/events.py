"""Plate events, one per vehicle: a database through SQLAlchemy Core, plus a JSON-lines file.

SQLite (WAL mode, so `platepilot reads` can query while the runtime writes) by default; any
SQLAlchemy URL (PostgreSQL ...) works unchanged. Times are seconds since the epoch (float).

A failing output never stops the others: an event the database refuses (disk full, read-only) still
goes to the JSON-lines file, and the other way round; each failure is counted and logged once per
outage, and an event that reached neither is counted in `lost`.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import uuid
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic.util import CommandError
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from platepilot.errors import EXTRA_OF, PlatepilotError
from platepilot.plates.charset import normalize
from platepilot.store.atomic import append_whole, locked
from platepilot.store.outage import Outage, os_reason
from platepilot.store.partitions import ensure_days
from platepilot.store.schema import migrate

_UPSERT: dict[str, Any] = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}

EVENT_ID_LENGTH = 200
# 64-bit on PostgreSQL (migration 0009); SQLite's INTEGER PRIMARY KEY is its 64-bit rowid (a BIGINT one is not)
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
metadata = sa.MetaData()
events_table = sa.Table(
    "plate_events",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("camera_id", sa.String(32), nullable=False, index=True),
    sa.Column("track_id", sa.Integer, nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False, index=True),
    sa.Column("last_seen", sa.Float, nullable=False),
    sa.Column("text", sa.String(16), nullable=False, index=True),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("candidates", sa.Text, nullable=False),  # JSON [[text, confidence], ...]
    sa.Column("crop_path", sa.Text, nullable=False, index=True),  # retention marks events by their crop
    sa.Column("engine", sa.String(32), nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("reads", sa.Integer, nullable=False),
    sa.Column("format", sa.String(64), nullable=True),
    sa.Column("state", sa.String(16), nullable=False, server_default="unknown", index=True),  # postal code
    sa.Column("state_confidence", sa.Float, nullable=False, server_default="0"),
    sa.Column("crop_note", sa.Text, nullable=False, server_default=""),  # why crop_path is empty, if it is
    # fleet: <device>/<camera>/<run>/<track>, unique (NULL on rows from before it); inserts skip a known one
    sa.Column("event_id", sa.String(EVENT_ID_LENGTH), nullable=True, unique=True, index=True),
    sa.Column("device_id", sa.String(64), nullable=False, server_default="", index=True),
    sa.Column("synced_at", sa.Float, nullable=True, index=True),  # the collector acknowledged (edge) / stored it
    sa.Column("source_file", sa.Text, nullable=False, server_default=""),  # the photo or video file; '' for streams
)
# watchlist alerts `platepilot collect` gathered from the devices: one per event (the device raises at most
# one per event), so the event's id makes the insert idempotent as for events
alerts_table = sa.Table(
    "plate_alerts",
    metadata,
    sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(EVENT_ID_LENGTH), nullable=False, unique=True, index=True),
    sa.Column("device_id", sa.String(64), nullable=False, index=True),
    sa.Column("camera_id", sa.String(32), nullable=False),
    sa.Column("first_seen", sa.Float, nullable=False, index=True),
    sa.Column("text", sa.String(16), nullable=False, index=True),
    sa.Column("list_name", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("entry", sa.Text, nullable=False),  # JSON: the watchlist entry as the device had it
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("matched_text", sa.String(64), nullable=False),
    sa.Column("received_at", sa.Float, nullable=False),
)


@dataclass(frozen=True, slots=True)
class PlateEvent:
    """One vehicle seen by one camera and its final (fused) read."""

    camera_id: str
    track_id: int
    first_seen: float
    last_seen: float
    text: str
    confidence: float
    candidates: tuple[tuple[str, float], ...]
    crop_path: str
    engine: str
    model_version: str
    reads: int
    format: str | None = None
    state: str = "unknown"  # the issuing state's postal code (FL, GA, ...), or unknown
    state_confidence: float = 0.0
    crop_note: str = ""  # why the event has no crop: not written (disk), or pruned; '' when crop_path holds it
    event_id: str | None = None  # globally unique (`EventIds`); None on events from before fleets
    device_id: str = ""
    source_file: str = ""  # the photo (a folder of photos) or video file it was seen in; '' for streams, the demo

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["candidates"] = [list(c) for c in self.candidates]
        return data


@dataclass(frozen=True, slots=True)
class EventIds:
    """Names the events of one run of one device: `<device>/<camera>/<run>/<track>`, unique across a
    fleet (track ids restart with each run, `run_id` does not repeat)."""

    device_id: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def stamp(self, event: PlateEvent) -> PlateEvent:
        """`event` with its id and device (unchanged when it has an id already)."""
        if event.event_id is not None:
            return event
        event_id = f"{self.device_id}/{event.camera_id}/{self.run_id}/{event.track_id}"
        return replace(event, event_id=event_id, device_id=self.device_id)


def insert_new(conn: Connection, rows: list[dict[str, Any]], table: sa.Table = events_table) -> list[str]:
    """Insert the rows of `table` (`events_table`, `alerts_table`) whose event_id it does not hold yet
    (ON CONFLICT DO NOTHING, so replays and redeliveries never double a row); the event ids inserted."""
    dialect = conn.dialect.name
    if dialect not in _UPSERT:
        raise PlatepilotError(f"events database {dialect}: only SQLite and PostgreSQL skip known event ids")
    conflict = ["event_id"]
    if table is events_table:
        ensure_days(conn, [row["first_seen"] for row in rows])
        if dialect == "postgresql":  # partitioned by day: its unique index holds the partition key
            conflict.append("first_seen")
    stmt = _UPSERT[dialect](table).on_conflict_do_nothing(index_elements=conflict)
    return [r[0] for r in conn.execute(stmt.returning(table.c.event_id), rows)]


def event_row(event: PlateEvent) -> dict[str, Any]:
    """The `events_table` row of `event` (without `id` and `synced_at`)."""
    return {**asdict(event), "candidates": json.dumps([list(c) for c in event.candidates])}


def existing_database(url: str) -> str:
    """`url`, or PlatepilotError when it names a SQLite file that does not exist: a command that only
    reads events (`reads`) must not create an empty database in the wrong folder and print nothing."""
    with contextlib.suppress(sa.exc.ArgumentError):  # open_engine names a bad URL
        parsed = sa.make_url(url)
        path = parsed.database
        on_disk = parsed.drivername.startswith("sqlite") and path not in (None, "", ":memory:") and "mode=" not in url
        if on_disk and not Path(str(path)).is_file():
            raise PlatepilotError(
                f"no events database at {path} (output.events_db_url): run from the folder `platepilot run` "
                "ran in, or pass its --config"
            )
    return url


def open_engine(url: str) -> Engine:
    """An engine for `url`, its schema migrated to the newest revision (`store.schema`, rows kept);
    SQLite files get WAL mode and their folder."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise PlatepilotError(f"events database URL {url!r} is not a SQLAlchemy URL") from None
    uri = parsed.query.get("uri") == "true"  # `file:...?mode=ro`: SQLite opens it as a URI, not a path
    if parsed.drivername.startswith("sqlite") and parsed.database not in (None, "", ":memory:") and not uri:
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # a server that does not answer (PostgreSQL) is an error within seconds, not a hang
    timeout = {"connect_timeout": 10} if parsed.get_backend_name() == "postgresql" else {}
    try:
        engine = sa.create_engine(parsed, connect_args=timeout)
    except ImportError as exc:
        extra = EXTRA_OF.get(exc.name or "")
        install = f"'platepilot[{extra}]'" if extra else exc.name
        raise PlatepilotError(
            f"events database {parsed!r}: its driver is not installed ({exc.name}): pip install {install}"
        ) from None
    if parsed.drivername.startswith("sqlite"):

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA busy_timeout=5000")
            cursor.close()

    try:
        migrate(engine)
    except (sa.exc.SQLAlchemyError, CommandError) as exc:
        raise PlatepilotError(f"events database {parsed!r}: {str(exc).splitlines()[0]}") from None
    return engine


class EventStore:
    """Appends events to the database and to `jsonl` (if given). Thread-safe.

    Counters: `stored` (events the database or the JSONL file took), `lost` (neither did), and each
    output's failures in `db.failed` and `jsonl_outage.failed`."""

    def __init__(self, url: str, jsonl: Path | None = None, ids: EventIds | None = None) -> None:
        self.engine = open_engine(url)
        self.jsonl = jsonl
        self.ids = ids
        self._lock = threading.Lock()
        self.stored = self.lost = 0
        where = repr(self.engine.url)  # the password hidden
        self.db = Outage(f"events database {where}", "events go on to the other outputs (counted)")
        self.jsonl_outage = Outage(f"events file {jsonl}", "events go on to the other outputs (counted)")
        if jsonl is not None:
            jsonl.parent.mkdir(parents=True, exist_ok=True)

    def add(self, event: PlateEvent) -> bool:
        """Write `event` (stamped with `ids`, if given) to every output that takes it; True when at least one did."""
        event = self.stamp(event)
        with self._lock:
            in_db = self._insert(event)
            in_file = self.jsonl is not None and self._append(self.jsonl, event)
            if in_db or in_file:
                self.stored += 1
            else:
                self.lost += 1
            return in_db or in_file

    def stamp(self, event: PlateEvent) -> PlateEvent:
        """`event` with the id and device it is stored under."""
        return event if self.ids is None else self.ids.stamp(event)

    @property
    def failed(self) -> int:
        return self.db.failed + self.jsonl_outage.failed

    def line(self) -> str:
        text = f"events: {self.stored} stored, {self.lost} stored nowhere; database {self.db.failed} failed"
        return text + (f", JSONL {self.jsonl_outage.failed} failed" if self.jsonl is not None else "")

    def _insert(self, event: PlateEvent) -> bool:
        try:
            with self.engine.begin() as conn:
                if event.event_id is None:
                    ensure_days(conn, [event.first_seen])
                    conn.execute(events_table.insert().values(**event_row(event)))
                else:
                    insert_new(conn, [event_row(event)])
        except sa.exc.SQLAlchemyError as exc:
            self.db.failure(str(getattr(exc, "orig", None) or exc).splitlines()[0])
            return False
        self.db.success()
        return True

    def _append(self, jsonl: Path, event: PlateEvent) -> bool:
        try:
            with locked(jsonl, "a+b") as handle:  # the pruner rewrites the file under the same lock
                end = os.fstat(handle.fileno()).st_size
                torn = end > 0 and os.pread(handle.fileno(), 1, end - 1) != b"\n"  # a power cut mid-append
                line = ("\n" if torn else "") + json.dumps(event.to_json()) + "\n"  # never glued to the torn one
                append_whole(handle, line.encode("utf-8"))
        except OSError as exc:
            self.jsonl_outage.failure(os_reason(exc))
            return False
        self.jsonl_outage.success()
        return True

    def close(self) -> None:
        self.engine.dispose()


def photos_read(engine: Engine, camera_id: str) -> dict[str, float]:
    """Each photo (`source_file`) that gave `camera_id` an event, with when it was last read: what a
    followed folder need not read again after a restart."""
    query = (
        sa.select(events_table.c.source_file, sa.func.max(events_table.c.first_seen))
        .where(events_table.c.camera_id == camera_id, events_table.c.source_file != "")
        .group_by(events_table.c.source_file)
    )
    with engine.connect() as conn:
        return {str(path): float(seen) for path, seen in conn.execute(query)}


def query_events(
    url: str, since: float | None = None, plate: str | None = None, device: str | None = None,
    state: str | None = None, last: int | None = None,
) -> list[PlateEvent]:  # fmt: skip
    """Events first seen at or after `since` (epoch seconds) whose text contains `plate` (and of `device`
    and `state`), oldest first; only the newest `last` when given."""
    wanted = None if plate is None else normalize(plate)
    if wanted == "":  # `-`, `%` or `_` alone was a search for every event
        raise PlatepilotError(f"--plate {plate!r} holds no letter or digit")
    engine = open_engine(url)
    order = (events_table.c.first_seen, events_table.c.id)
    stmt = sa.select(events_table).order_by(*(c.desc() for c in order) if last is not None else order)
    if since is not None:
        stmt = stmt.where(events_table.c.first_seen >= since)
    if wanted:
        stmt = stmt.where(events_table.c.text.contains(wanted, autoescape=True))
    if device is not None:
        stmt = stmt.where(events_table.c.device_id == device)
    if state is not None:
        stmt = stmt.where(events_table.c.state == state)
    if last is not None:
        stmt = stmt.limit(last)
    try:
        with engine.connect() as conn:
            rows = conn.execute(stmt).mappings().all()
    finally:
        engine.dispose()
    return [event_from_row(row) for row in (reversed(rows) if last is not None else rows)]


def event_from_row(row: Mapping[Any, Any]) -> PlateEvent:
    """The event of one `events_table` row (its `id` and any column the event does not know left out)."""
    known = {f.name for f in fields(PlateEvent)} - {"candidates"}
    return PlateEvent(
        **{k: row[k] for k in row if k in known},
        candidates=tuple((str(t), float(c)) for t, c in json.loads(row["candidates"])),
    )
