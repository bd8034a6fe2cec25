"""The edge backlog: events the collector has not acknowledged are published again until it has.

Every event is in the local events database before it is published. `platepilot collect` answers each
batch it has written to PostgreSQL with an acknowledgement on `<topic>/ack` (`store.wire.ack_message`:
a device id and event ids); this sets `synced_at` on those rows. While the broker is connected, a round
every `fleet.resend_seconds` publishes again unacknowledged events (at most
`fleet.resend_batch`) among those stored before the previous round (or before the start), so a live
event has one interval to be acknowledged before it is sent again. A round acknowledged whole starts
the next one at once, so a backlog drains at the collector's pace when the broker comes back; a round
of which nothing is acknowledged (the collector is down, the broker up) doubles the wait before the
next, up to BACKOFF_MAX times `resend_seconds` (any acknowledgement ends it), so a hundred boxes do not
pile copies on the broker. Each round goes on after the previous one (from the oldest again at the end),
so events the collector keeps not acknowledging never hold back those behind them. The collector skips
events it holds, so a re-sent event is never doubled. The backlog is the database itself, bounded by
`output.retention`: an event pruned before it was acknowledged is not sent.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from platepilot.config import FleetConfig
from platepilot.store.events import PlateEvent, event_from_row, events_table
from platepilot.store.mqtt import MQTTPublisher
from platepilot.store.outage import Outage
from platepilot.store.wire import BadMessage, parse_ack

log = logging.getLogger(__name__)
ACK_LEAF = "ack"
BACKOFF_MAX = 16  # times fleet.resend_seconds between rounds nothing of which was acknowledged


class Backlog:
    """Marks acknowledged events and re-publishes the others (see the module docstring); a thread."""

    def __init__(
        self,
        engine: Engine,
        publisher: MQTTPublisher,
        device_id: str,
        config: FleetConfig,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine, self.publisher, self.device_id = engine, publisher, device_id
        self.config, self.clock = config, clock
        self.acked = self.resent = 0
        self.db = Outage("edge backlog: events database", "acknowledgements are lost; the events are sent again")
        self._lock = threading.Lock()
        self._round: set[str] = set()
        self._round_done = threading.Event()
        self._horizon = 0  # the newest row id of the previous round: newer rows are not due yet
        self._cursor = 0  # the last row id of a full round: the next round goes on after it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="backlog", daemon=True)
        publisher.subscribe(ACK_LEAF, self._on_ack)

    def start(self) -> None:
        self._horizon = self._newest_id()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._round_done.set()
        self._thread.join()

    def waiting(self) -> int:
        """Events not acknowledged yet."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(_unsynced())).scalar_one())

    def line(self) -> str:
        return f"backlog: {self.acked} events acknowledged by the collector, {self.resent} sent again"

    def _run(self) -> None:
        backoff = 1
        while not self._stop.is_set():
            if not self.publisher.connected:
                self._stop.wait(min(1.0, self.config.resend_seconds))
                continue
            events, self._horizon = self._oldest(), self._newest_id()
            if not events:
                backoff = 1
                self._stop.wait(self.config.resend_seconds)
                continue
            with self._lock:
                self._round = {e.event_id for e in events if e.event_id}
                self._round_done.clear()
            acked = self.acked
            for event in events:
                self.publisher.send(event)
            self.resent += len(events)
            self._round_done.wait(self.config.resend_seconds * backoff)
            heard = self.acked > acked  # the collector acknowledged something meanwhile (this round or live events)
            backoff = 1 if heard else min(2 * backoff, BACKOFF_MAX)

    def _oldest(self) -> list[PlateEvent]:
        """The next round: the oldest due events after the previous round's, from the oldest again once
        the end is reached. Rounds go on past events the collector keeps not acknowledging (stored without
        a crop it could not write, or refused), so those never hold back the events behind them."""
        table = events_table
        due = sa.and_(_unsynced(), table.c.id <= self._horizon)
        try:
            with self.engine.connect() as conn:
                rows = self._after(conn, due, self._cursor) or (self._after(conn, due, 0) if self._cursor else [])
        except sa.exc.SQLAlchemyError as exc:
            self.db.failure(str(exc).splitlines()[0])
            return []
        self._cursor = int(rows[-1]["id"]) if len(rows) == self.config.resend_batch else 0
        return [event_from_row(row) for row in rows]

    def _after(self, conn: sa.Connection, due: sa.ColumnElement[bool], cursor: int) -> list[sa.RowMapping]:
        table = events_table
        stmt = sa.select(table).where(due, table.c.id > cursor).order_by(table.c.id).limit(self.config.resend_batch)
        return list(conn.execute(stmt).mappings().all())

    def _newest_id(self) -> int:
        try:
            with self.engine.connect() as conn:
                return int(conn.execute(sa.select(sa.func.max(events_table.c.id))).scalar() or 0)
        except sa.exc.SQLAlchemyError:
            return self._horizon

    def _on_ack(self, payload: bytes) -> None:
        try:
            device, ids = parse_ack(payload)
        except BadMessage as exc:
            log.warning("MQTT %s/%s: ignored: %s", self.publisher.config.topic, ACK_LEAF, exc)
            return
        if device != self.device_id or not ids:
            return  # another device sharing the topic
        table = events_table
        try:
            with self.engine.begin() as conn:
                done = table.update().where(table.c.event_id.in_(ids), table.c.synced_at.is_(None))
                self.acked += conn.execute(done.values(synced_at=self.clock())).rowcount
        except sa.exc.SQLAlchemyError as exc:
            self.db.failure(str(exc).splitlines()[0])
            return
        self.db.success()
        with self._lock:
            self._round.difference_update(ids)
            if not self._round:
                self._round_done.set()


def _unsynced() -> sa.ColumnElement[bool]:
    return sa.and_(events_table.c.event_id.is_not(None), events_table.c.synced_at.is_(None))
