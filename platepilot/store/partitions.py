"""`plate_events` partitioned by day on PostgreSQL: one table per UTC day of `first_seen`.

A central database of many devices grows by day and is thinned by day, so a day's rows live in a table
of their own (`plate_events_20261207`): each day's indexes stay small, and retention drops a whole day
at once instead of deleting its rows one by one. PostgreSQL requires a partitioned table's unique
indexes to hold the partition key, so the primary key is (id, first_seen) and the event id's unique
index (event_id, first_seen); an event always carries the same `first_seen`, so a replay still
conflicts with its row and inserts stay idempotent. A day's table is made when its first row arrives
(`ensure_days`). SQLite (the edge's database) is not partitioned.
"""

from __future__ import annotations

import calendar
import re
import time
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

TABLE = "plate_events"
DAY_SECONDS = 86_400
DAY_NAME = re.compile(rf"{TABLE}_(\d{{8}})")
LOCK_KEY = 0x706C6174  # one advisory lock for making day tables, so racing collectors wait, not fail


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
    """Make the day tables of `parent` that rows first seen at `stamps` (epoch seconds) go to, where
    missing; nothing on SQLite. Runs in the caller's transaction, so the tables commit with the rows."""
    if conn.dialect.name != "postgresql":
        return
    days = {int(stamp // DAY_SECONDS) for stamp in stamps}
    names = {day_table(day): day for day in days}
    found = conn.execute(sa.text("SELECT relname FROM pg_class WHERE relname = ANY(:names)"), {"names": list(names)})
    missing = sorted(set(names) - {row[0] for row in found})
    if not missing:
        return
    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    for name in missing:
        start = names[name] * DAY_SECONDS
        conn.execute(
            sa.text(
                f'CREATE TABLE IF NOT EXISTS "{name}" PARTITION OF "{parent}" '
                f"FOR VALUES FROM ({start}) TO ({start + DAY_SECONDS})"
            )
        )


def drop_days_before(conn: Connection, cutoff: float) -> int:
    """Drop each day table whose every event was last seen before `cutoff` (epoch seconds): retention's
    delete of a whole day at once. The rows dropped; 0 on a database not partitioned."""
    if not partitioned(conn):
        return 0
    dropped = 0
    children = sa.text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = to_regclass(:table)")
    for name in sorted(conn.execute(children, {"table": TABLE}).scalars()):
        named = DAY_NAME.fullmatch(name)
        if named is None:  # not one of ours: left alone
            continue
        day = calendar.timegm(time.strptime(named[1], "%Y%m%d"))
        if day + DAY_SECONDS > cutoff:
            continue
        rows, latest = conn.execute(sa.text(f"SELECT count(*), max(last_seen) FROM {name}")).one()
        if latest is None or latest < cutoff:
            conn.execute(sa.text(f"DROP TABLE {name}"))
            dropped += rows
    return dropped


def partition_by_day(conn: Connection) -> None:
    """Turn the unpartitioned `plate_events` into one partitioned by day, keeping every row, its id, the id
    sequence and every index (unique ones extended by first_seen)."""
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
    stamps = conn.execute(sa.text(f'SELECT DISTINCT floor(first_seen / {DAY_SECONDS}) * {DAY_SECONDS} FROM "{TABLE}"'))
    ensure_days(conn, [row[0] for row in stamps], parent=new)
    conn.execute(sa.text(f'INSERT INTO "{new}" SELECT * FROM "{TABLE}"'))
    _swap(conn, new, sequence)
    for definition in indexes:
        conn.execute(sa.text(_with_partition_key(definition)))


def unpartition(conn: Connection) -> None:
    """The reverse of `partition_by_day`: one plain table again, rows, ids and indexes kept."""
    indexes = _index_definitions(conn)
    sequence = conn.execute(sa.text("SELECT pg_get_serial_sequence(:t, 'id')"), {"t": TABLE}).scalar_one()
    new = f"{TABLE}_flat"
    conn.execute(sa.text(f'CREATE TABLE "{new}" (LIKE "{TABLE}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)'))
    conn.execute(sa.text(f'ALTER TABLE "{new}" ADD PRIMARY KEY (id)'))
    conn.execute(sa.text(f'INSERT INTO "{new}" SELECT * FROM "{TABLE}"'))
    _swap(conn, new, sequence)
    for definition in indexes:
        conn.execute(sa.text(definition.replace(", first_seen)", ")") if " UNIQUE " in definition else definition))


def _index_definitions(conn: Connection) -> list[str]:
    """`CREATE INDEX` statements of the table's indexes, but its primary key."""
    rows = conn.execute(
        sa.text("SELECT indexdef FROM pg_indexes WHERE tablename = :t AND indexname <> :pkey"),
        {"t": TABLE, "pkey": f"{TABLE}_pkey"},
    )
    return [row[0] for row in rows]


def _with_partition_key(definition: str) -> str:
    """A unique index's definition with first_seen added to its columns, as partitioning requires."""
    if not definition.startswith("CREATE UNIQUE INDEX") or "first_seen" in definition:
        return definition
    return definition[: definition.rindex(")")] + ", first_seen)"


def _swap(conn: Connection, new: str, sequence: str) -> None:
    """Replace the table by `new` (its copy), the id sequence moving over to it."""
    conn.execute(sa.text(f"ALTER SEQUENCE {sequence} OWNED BY NONE"))
    conn.execute(sa.text(f'DROP TABLE "{TABLE}" CASCADE'))
    conn.execute(sa.text(f'ALTER TABLE "{new}" RENAME TO "{TABLE}"'))
    conn.execute(sa.text(f'ALTER TABLE "{TABLE}" RENAME CONSTRAINT "{new}_pkey" TO "{TABLE}_pkey"'))
    conn.execute(sa.text(f'ALTER SEQUENCE {sequence} OWNED BY "{TABLE}".id'))
