"""Searching stored events by plate (exact, or fuzzy: O/0 I/1 B/8 S/5 folded, then an edit distance),
time range and camera; what `platepilot reads --fuzzy` and the dashboard use.

A plate search over a million events stays fast through one expression index on the folded text
(`ensure_search_index`; the dashboard creates it at start, `reads --fuzzy` before searching; without
it a search is right, only slow): up to distance 1, every folded text within reach
of the query (a few hundred for a 7-character plate) is looked up in that index. Distance 2 would
mean ~100,000 lookups, so it reads the events in the time range and camera instead (slower).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from rapidfuzz.distance import Levenshtein
from sqlalchemy.engine import Engine

from platepilot.errors import PlatepilotError
from platepilot.plates.charset import CHARSET, WATCH_FOLD_PAIRS, fold_confusable, normalize
from platepilot.store.events import PlateEvent, event_from_row, events_table, open_engine

SEARCH_INDEX = "ix_plate_events_text_folded"
MAX_FUZZY = 2
MAX_PLATE_TEXT: int = events_table.c.text.type.length  # type: ignore[attr-defined]  # String(16)
_FOLDED_CHARSET = sorted(set(fold_confusable(CHARSET)))


def _folded_sql(column: str) -> str:
    sql = column
    for letter, digit in WATCH_FOLD_PAIRS:
        sql = f"replace({sql}, '{letter}', '{digit}')"
    return sql


FOLDED_TEXT: sa.ColumnClause[str] = sa.literal_column(_folded_sql("plate_events.text"))
"""The folded plate text in SQL, written as the index is, so the database uses the index."""


def ensure_search_index(engine: Engine) -> None:
    """Create the folded-text index unless it exists (minutes on a very large table, once)."""
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE INDEX IF NOT EXISTS {SEARCH_INDEX} ON plate_events (({_folded_sql('text')}))"))


@dataclass(frozen=True, slots=True)
class EventQuery:
    """`plate` (None: any) within `fuzzy` edits after folding O/0 I/1 B/8 S/5 (0: the same once folded);
    times are epoch seconds."""

    plate: str | None = None
    fuzzy: int = 0
    since: float | None = None
    until: float | None = None
    camera: str | None = None
    limit: int | None = 200
    newest_first: bool = True
    device: str | None = None  # a fleet database: only this device's events
    state: str | None = None  # only events of this postal code (or `unknown`)

    def __post_init__(self) -> None:
        if not 0 <= self.fuzzy <= MAX_FUZZY:
            raise ValueError(f"fuzzy must be 0-{MAX_FUZZY}, got {self.fuzzy}")
        if self.plate is not None:  # a plate no event can hold is a mistake, not a search for everything
            longest = MAX_PLATE_TEXT
            if not normalize(self.plate):
                raise ValueError(f"plate {self.plate!r} holds no letter or digit")
            if len(normalize(self.plate)) > longest:
                raise ValueError(f"plate: at most {longest} letters and digits")


@dataclass(frozen=True, slots=True)
class FoundEvent:
    """A stored event with its row id, every column of its row (`row`, JSON-able), and how far its
    folded text is from the searched plate (0 without a plate)."""

    id: int
    event: PlateEvent
    row: dict[str, Any]
    distance: int = 0


def neighbours(folded: str) -> set[str]:
    """Every folded text within one edit (deletion, substitution, insertion) of `folded`, itself included."""
    out = {folded}
    for i in range(len(folded) + 1):
        for char in _FOLDED_CHARSET:
            out.add(folded[:i] + char + folded[i:])
            if i < len(folded):
                out.add(folded[:i] + char + folded[i + 1 :])
        if i < len(folded):
            out.add(folded[:i] + folded[i + 1 :])
    out.discard("")
    return out


def search_events(engine: Engine, query: EventQuery) -> list[FoundEvent]:
    """Events matching `query`, newest (or oldest) first, at most `query.limit`."""
    table = events_table
    order = (table.c.first_seen.desc(), table.c.id.desc()) if query.newest_first else (table.c.first_seen, table.c.id)
    stmt = sa.select(table).order_by(*order)
    if query.since is not None:
        stmt = stmt.where(table.c.first_seen >= query.since)
    if query.until is not None:
        stmt = stmt.where(table.c.first_seen <= query.until)
    if query.camera:
        stmt = stmt.where(table.c.camera_id == query.camera)
    if query.device:
        stmt = stmt.where(table.c.device_id == query.device)
    if query.state:
        stmt = stmt.where(table.c.state == query.state)
    plate = normalize(query.plate or "")
    folded = fold_confusable(plate)
    if plate and query.fuzzy <= 1:
        stmt = stmt.where(FOLDED_TEXT.in_(sorted(neighbours(folded))) if query.fuzzy else FOLDED_TEXT.in_([folded]))
    elif plate:
        stmt = stmt.where(sa.func.length(table.c.text).between(len(plate) - query.fuzzy, len(plate) + query.fuzzy))
    found = []
    with engine.connect() as conn:
        limited = stmt if query.limit is None or query.fuzzy > 1 else stmt.limit(query.limit)
        for row in conn.execute(limited).mappings():
            distance = Levenshtein.distance(folded, fold_confusable(row["text"])) if plate else 0
            if distance <= query.fuzzy:
                found.append(FoundEvent(row["id"], event_from_row(row), dict(row), distance))
                if query.limit is not None and len(found) >= query.limit:
                    break
    return found


def get_event(engine: Engine, event_id: int) -> FoundEvent | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(events_table).where(events_table.c.id == event_id)).mappings().first()
    return None if row is None else FoundEvent(row["id"], event_from_row(row), dict(row))


@dataclass
class FeedCursor:
    """Follows the events table by row id for the live feed, oldest first.

    Row ids are handed out when a row is inserted, not when it commits: with several collectors on
    one PostgreSQL, a row whose id was taken earlier can commit after a higher one was already
    read. So the ids a poll skips over stay looked for (`gaps`) for `GAP_SECONDS`, after which they
    are taken for rolled back or deleted; at most `MAX_GAPS` of them, the newest.
    """

    GAP_SECONDS = 30.0
    MAX_GAPS = 64  # each poll looks them up: on PostgreSQL, in every day's table

    last: int
    gaps: dict[int, float] = field(default_factory=dict)  # row id -> when it was first missed (monotonic)

    def poll(self, engine: Engine, now: float, limit: int = 100) -> list[FoundEvent]:
        """Rows after `last`, and rows that filled a gap, not sent before."""
        self.gaps = {i: t for i, t in self.gaps.items() if now - t <= self.GAP_SECONDS}
        wanted = events_table.c.id > self.last
        if self.gaps:
            wanted = sa.or_(wanted, events_table.c.id.in_(sorted(self.gaps)))
        stmt = sa.select(events_table).where(wanted).order_by(events_table.c.id).limit(limit)
        with engine.connect() as conn:
            found = [FoundEvent(r["id"], event_from_row(r), dict(r)) for r in conn.execute(stmt).mappings()]
        for event in found:
            if self.gaps.pop(event.id, None) is None and event.id > self.last:
                skipped = range(max(self.last + 1, event.id - self.MAX_GAPS), event.id)
                self.gaps.update(dict.fromkeys(skipped, now))
                self.last = event.id
        if len(self.gaps) > self.MAX_GAPS:
            self.gaps = dict(sorted(self.gaps.items())[-self.MAX_GAPS :])
        return found


def last_event_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.select(sa.func.max(events_table.c.id))).scalar() or 0)


def counts_since(engine: Engine, since: float) -> dict[str, int]:
    """Events per camera first seen at or after `since`."""
    stmt = (
        sa.select(events_table.c.camera_id, sa.func.count())
        .where(events_table.c.first_seen >= since)
        .group_by(events_table.c.camera_id)
    )
    with engine.connect() as conn:
        return {str(camera): int(n) for camera, n in conn.execute(stmt)}


def fuzzy_events(
    url: str, plate: str | None, fuzzy: int, since: float | None = None, device: str | None = None,
    state: str | None = None, last: int | None = None,
) -> list[PlateEvent]:  # fmt: skip
    """`platepilot reads --plate X --fuzzy N`: events whose plate is within `fuzzy` edits of `plate` (of
    `device` and `state`), oldest first; only the newest `last` when given."""
    if not plate or not normalize(plate):
        raise PlatepilotError("--fuzzy goes with --plate (the plate to look for)")
    engine = open_engine(url)
    try:
        with contextlib.suppress(sa.exc.SQLAlchemyError):  # a read-only database is searched without it
            ensure_search_index(engine)
        try:
            query = EventQuery(plate, fuzzy, since=since, limit=last, newest_first=last is not None, device=device,
                               state=state)  # fmt: skip
        except ValueError as exc:
            raise PlatepilotError(f"--plate: {exc}") from None
        found = search_events(engine, query)
    finally:
        engine.dispose()
    ordered = sorted(found, key=_stored_order) if last is not None else found
    return [f.event for f in ordered]


def _stored_order(found: FoundEvent) -> tuple[float, int]:
    """Oldest first, as `reads` lists: by first sighting, then row id."""
    return found.event.first_seen, found.id
