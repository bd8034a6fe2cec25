"""`plate_events` partitioned by day on PostgreSQL: one table per UTC day of `first_seen`.

A central database of many devices grows by day and is thinned by day, so a day's rows live in a table
of their own (`plate_events_20261207`): each day's indexes stay small, and retention drops a whole day
at once instead of deleting its rows one by one. PostgreSQL requires a partitioned table's unique
indexes to hold the partition key, so the primary key is (id, first_seen) and the event id's unique
index (event_id, first_seen); an event always carries the same `first_seen`, so a replay still
conflicts with its row and inserts stay idempotent.

Making or dropping a day's table locks the whole of `plate_events` for a moment, and waits for any
query running on it. So the collector makes the coming days' tables ahead, in short transactions that
give up after LOCK_TIMEOUT (`make_days_ahead`); an insert makes its rows' day only when it is missing
(`ensure_days`: a late backlog, a clock far off). Retention drops one day per transaction.

The rows of a database partitioned after it had some go to one table, `plate_events_before`, so that
the migration takes a handful of locks however many days they span (PostgreSQL holds a lock per table
and index until the transaction ends). Retention drops it too once all its events are old enough.
SQLite (the edge's database) is not partitioned.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

TABLE = "plate_events"
BEFORE = f"{TABLE}_before"
DAY_SECONDS = 86_400
DAYS_AHEAD = 2
LOCK_TIMEOUT = "2s"
LOCK_KEY = 0x706C6174  # one advisory lock for making day tables, so racing collectors wait, not fail
_LOWER_BOUND = re.compile(r"FROM \('?(-?[\d.e+]+)'?\)")  # MINVALUE does not match: no lower bound
_UPPER_BOUND = re.compile(r"TO \('?(-?[\d.e+]+)'?\)")

log = logging.getLogger(__name__)


def partitioned(conn: Connection) -> bool:
    """Whether this database is PostgreSQL and its `plate_events` is partitioned."""
    if conn.dialect.name != "postgresql":
        return False
    query = sa.text("SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(:table)")
    return conn.execute(query, {"table": TABLE}).first() is not None


def day_table(day: int) -> str:
    """The name of the table holding the UTC day `day` (days since 1970-01-01)."""
    return f"{TABLE}_{time.strftime('%Y%m%d', time.gmtime(day * DAY_SECONDS))}"


def ensure_days(conn: Connection, stamps: Iterable[float], parent: str = TABLE) -> None:
    """Make the day tables of `parent` that rows first seen at `stamps` (epoch seconds) go to, where no
    table takes them yet; nothing on SQLite. Runs in the caller's transaction, so the tables commit with
    the rows (and a lock that times out fails the insert, which the collector retries)."""
    if conn.dialect.name != "postgresql":
        return
    days = {int(stamp // DAY_SECONDS) for stamp in stamps}
    names = {day_table(day): day for day in days}
    found = conn.execute(
        sa.text("SELECT name FROM unnest(CAST(:names AS text[])) AS name WHERE to_regclass(name) IS NOT NULL"),
        {"names": list(names)},
    )
    missing = sorted(set(names) - set(found.scalars()))
    if not missing:
        return
    conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    bounds = _upper_bounds(conn, parent)
    for name in missing:
        start = names[name] * DAY_SECONDS
        if any(lower <= start < upper for lower, upper in bounds.values()):
            continue  # another table (plate_events_before) takes that day
        conn.execute(
            sa.text(
                f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{parent}" '
                f"FOR VALUES FROM ({start}) TO ({start + DAY_SECONDS})"
            )
        )


def make_days_ahead(engine: Engine, now: float) -> None:
    """Make the tables of today and the next DAYS_AHEAD days where missing, each in a short transaction
    that gives up (logged; tried again next time) when a long query holds `plate_events`."""
    today = int(now // DAY_SECONDS)
    for day in range(today, today + DAYS_AHEAD + 1):
        try:
            with engine.begin() as conn:
                if not partitioned(conn):
                    return
                ensure_days(conn, [day * DAY_SECONDS])
        except sa.exc.SQLAlchemyError as exc:  # a lock not got in time, or the database away: the insert makes it
            log.info("day table %s not made yet (%s); tried again later", day_table(day), str(exc).splitlines()[0])
            return


def drop_days_before(engine: Engine, cutoff: float) -> int:
    """Drop each day table (and `plate_events_before`) whose every event was last seen before `cutoff`
    (epoch seconds), one per transaction: retention's delete of a whole day at once. The rows dropped; 0
    on a database not partitioned. A table some query holds longer than LOCK_TIMEOUT is left for the
    row-by-row delete."""
    with engine.connect() as conn:
        if not partitioned(conn):
            return 0
        bounds = _upper_bounds(conn, TABLE)
    dropped = 0
    for name, (_, upper) in sorted(bounds.items()):
        if upper > cutoff:
            continue
        try:
            with engine.begin() as conn:
                conn.execute(sa.text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                # the parent first, as inserts take it: no insert can then reach the table between the
                # check and the drop, and the two locks are taken in the order inserts take them
                conn.execute(sa.text(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE'))
                rows, latest = conn.execute(sa.text(f"SELECT count(*), max(last_seen) FROM {name}")).one()
                if latest is None or latest < cutoff:
                    conn.execute(sa.text(f"DROP TABLE {name}"))
                    dropped += rows
        except sa.exc.OperationalError as exc:
            log.info("retention: %s not dropped (%s); its rows are deleted one by one", name, exc.orig or exc)
    return dropped


def partition_by_day(conn: Connection, now: float) -> None:
    """Turn the unpartitioned `plate_events` into one partitioned by day, keeping every row, its id, the id
    sequence and every index (unique ones extended by first_seen). Rows first seen before today go to
    `plate_events_before` (made only when there are such rows), later ones to their days' tables."""
    conn.execute(sa.text(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE'))  # no write may slip past the copy
    indexes = _index_definitions(conn)
    sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": TABLE}).scalar_one()
    new = f"{TABLE}_by_day"
    conn.execute(
        sa.text(
            f'CREATE TABLE "{new}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS) '
            "PARTITION BY RANGE (first_seen)"
        )
    )
    conn.execute(sa.text(f'ALTER TABLE "{new}" ADD PRIMARY KEY (id, first_seen)'))
    today = int(now // DAY_SECONDS) * DAY_SECONDS
    if conn.execute(sa.text(f'SELECT 1 FROM "{TABLE}" WHERE first_seen < {today} LIMIT 1')).first() is not None:
        conn.execute(sa.text(f'CREATE TABLE "{BEFORE}" PARTITION OF "{new}" FOR VALUES FROM (MINVALUE) TO ({today})'))
    later = conn.execute(sa.text(f'SELECT DISTINCT first_seen FROM "{TABLE}" WHERE first_seen >= {today}'))
    ensure_days(conn, [row[0] for row in later], parent=new)
    conn.execute(sa.text(f'INSERT INTO "{new}" SELECT * FROM "{TABLE}"'))
    _swap(conn, new, sequence)
    for definition in indexes:
        conn.execute(sa.text(_with_partition_key(definition)))


def unpartition(conn: Connection) -> None:
    """The reverse of `partition_by_day`: one plain table again, rows, ids and indexes kept."""
    conn.execute(sa.text(f'LOCK TABLE "{TABLE}" IN ACCESS EXCLUSIVE MODE'))
    indexes = _index_definitions(conn)
    sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": TABLE}).scalar_one()
    new = f"{TABLE}_flat"
    conn.execute(sa.text(f'CREATE TABLE "{new}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'))
    conn.execute(sa.text(f'ALTER TABLE "{new}" ADD PRIMARY KEY (id)'))
    conn.execute(sa.text(f'INSERT INTO "{new}" SELECT * FROM "{TABLE}"'))
    _swap(conn, new, sequence)
    for definition in indexes:
        plain = definition.replace(" ON ONLY ", " ON ")
        conn.execute(sa.text(plain.replace(", first_seen)", ")") if " UNIQUE " in plain else plain))


def _upper_bounds(conn: Connection, parent: str) -> dict[str, tuple[float, float]]:
    """Each partition of `parent`: (lower, upper) bounds of first_seen (MINVALUE as -inf)."""
    rows = conn.execute(
        sa.text(
            "SELECT c.oid::regclass::text, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
            "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(:parent)"
        ),
        {"parent": parent},
    )
    bounds = {}
    for name, bound in rows:
        upper = _UPPER_BOUND.search(bound)
        lower = _LOWER_BOUND.search(bound)
        if upper is not None:
            bounds[name] = (float(lower[1]) if lower else float("-inf"), float(upper[1]))
    return bounds


def _index_definitions(conn: Connection) -> list[str]:
    """`CREATE INDEX` statements of the table's indexes, but its primary key."""
    query = "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = to_regclass(:t) AND NOT indisprimary"
    return list(conn.execute(sa.text(query), {"t": TABLE}).scalars())


def _with_partition_key(definition: str) -> str:
    """A unique index's definition with first_seen added to its columns, as partitioning requires."""
    if not definition.startswith("CREATE UNIQUE INDEX") or "first_seen" in definition:
        return definition
    return definition[: definition.rindex(")")] + ", first_seen)"


def _swap(conn: Connection, new: str, sequence: str) -> None:
    """Replace the table by `new` (its copy), the id sequence moving over to it."""
    conn.execute(sa.text(f"ALTER SEQUENCE {sequence} OWNED BY NONE"))
    conn.execute(sa.text(f'DROP TABLE "{TABLE}"'))  # no CASCADE: a view on it fails the migration, loudly
    conn.execute(sa.text(f'ALTER TABLE "{new}" RENAME TO "{TABLE}"'))
    conn.execute(sa.text(f'ALTER TABLE "{TABLE}" RENAME CONSTRAINT "{new}_pkey" TO "{TABLE}_pkey"'))
    conn.execute(sa.text(f'ALTER SEQUENCE {sequence} OWNED BY "{TABLE}".id'))
