"""`platepilot collect`: the events of every device on one MQTT broker, written to one database
(PostgreSQL: `output.events_db_url: postgresql+psycopg://...`), each exactly once.

It subscribes (QoS 1) to `<topic>/events` and `<topic>/+/events` (one topic per device), and to the
watchlist alerts on `<topic>/alerts` and `<topic>/+/alerts`, with a persistent session
(`fleet.collector.client_id`), so the broker keeps QoS 1 messages while it is away. Messages are taken
in batches; each is parsed whole (`store.wire`), an event's crop written to
`<crops_dir>/<device>/<YYYY-MM-DD>/`, and the batch inserted in one transaction that skips known
event ids (`plate_events`; `plate_alerts`, one alert per event). Only then are the messages
acknowledged: to the broker (manual PUBACK, so a collector killed mid-batch gets them again) and, for
events, to the devices on `<topic>/ack` (their backlog stops re-sending them; alerts have no backlog).

A message that is not JSON, of an unknown schema or not a valid event is counted in `rejected` and
logged with its topic; it never stops the collector and is never half-written. An event message over
`max_payload_kb` (its crop too large) is stored without its crop, up to OVERSIZE_READ times that size;
a larger one is rejected. An event whose crop cannot be written here (a full disk) is stored without
it and not acknowledged to its device, so the device sends it again and its crop fills the row. While
the database is down the batch is held and retried (backoff up to 30 s), new messages wait in a
bounded queue and then at the broker: nothing is dropped.
"""

from __future__ import annotations

import logging
import math
import queue
import re
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import sqlalchemy as sa
from paho.mqtt.enums import CallbackAPIVersion

from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.signals import stop_on_signals
from platepilot.store.atomic import replace_atomically
from platepilot.store.backlog import ACK_LEAF
from platepilot.store.events import PlateEvent, alerts_table, event_row, events_table, insert_new, open_engine
from platepilot.store.mqtt import KEEPALIVE_S, RECONNECT_MAX_S, RECONNECT_MIN_S, authenticate, broker_url
from platepilot.store.outage import Outage, os_reason
from platepilot.store.partitions import make_days_ahead
from platepilot.store.retention import Pruner
from platepilot.store.wire import (
    ALERTS_LEAF,
    BadMessage,
    EventMessage,
    ack_message,
    alert_row,
    parse_alert,
    parse_event,
)

log = logging.getLogger(__name__)
RETRY_MAX_S = 30.0
DAYS_AHEAD_EVERY_S = 600.0  # how often the coming days' tables are made where missing (PostgreSQL)
_OUTAGE_ERRORS = (sa.exc.OperationalError, sa.exc.InterfaceError)  # the server, not the rows


def crop_file(crops_dir: Path, event: PlateEvent) -> Path:
    """Where the collector keeps an event's crop: `<dir>/<device>/<YYYY-MM-DD>/<event id>.jpg` (the id's
    `/` as `_`; the date is the local date the vehicle was first seen)."""
    day = datetime.fromtimestamp(event.first_seen).strftime("%Y-%m-%d")
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", event.event_id or "")
    return crops_dir / event.device_id / day / f"{name}.jpg"


@dataclass(frozen=True, slots=True)
class _Parsed:
    message: mqtt.MQTTMessage
    event: PlateEvent  # the event, or the event of the alert
    table: sa.Table  # events_table or alerts_table
    row: dict[str, Any]


CROP_NOT_WRITTEN = "central crop not written"
# An event message up to this many times fleet.collector.max_payload_kb is read, and its event kept without its
# crop; a larger one is rejected unread.
OVERSIZE_READ = 8


class Collector:
    """See the module docstring. `connect()`, then `run(stop)` until `stop` is set, then `close()`.

    Counters: `received` (messages), `stored` (new event rows), `alerts` (new alert rows), `duplicates`
    (known event ids, skipped), `rejected`, `crops` (written); `db.failed` counts failed writes of a batch
    (each retried)."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.config, self.clock = settings, settings.fleet.collector, clock
        self.mqtt = settings.output.mqtt
        self.engine = open_engine(settings.output.events_db_url)  # an unreachable database fails here
        self.received = self.stored = self.alerts = self.duplicates = self.rejected = self.crops = 0
        self.failed = False  # the writer stopped on an error (`serve` then returns, and `collect` exits 1)
        self.write_seconds: deque[float] = deque(maxlen=10_000)  # per batch: crops + insert + commit
        self.db = Outage(f"fleet database {self.engine.url!r}", "events are held and written when it is back")
        self.crop_store = Outage(
            f"fleet crops {self.config.crops_dir}",
            "events are stored without their crops and not acknowledged, so the devices send them again",
        )
        self._queue: queue.Queue[mqtt.MQTTMessage] = queue.Queue(maxsize=self.config.max_queued)
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=self.config.client_id, clean_session=False, manual_ack=True
        )
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        authenticate(client, self.mqtt)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_message = self._on_message
        self._client = client
        self.subscribed = threading.Event()
        """Set once the broker has acknowledged every subscription: from then on no message is missed."""
        self._pending_subscriptions: set[int | None] = set()
        self._days_made_at = -math.inf

    @property
    def topics(self) -> list[str]:
        """What the collector subscribes to: every device's events and alerts, through the share group's
        shared subscription when it has one."""
        leaves = ("events", "+/events", ALERTS_LEAF, f"+/{ALERTS_LEAF}")
        shared = f"$share/{self.config.share_group}/" if self.config.share_group else ""
        return [f"{shared}{self.mqtt.topic}/{leaf}" for leaf in leaves]

    def connect(self) -> None:
        """Connect to the broker (an unreachable one is one clear error), then keep reconnecting."""
        try:
            self._client.connect(self.mqtt.host, self.mqtt.port, KEEPALIVE_S)
        except (OSError, ValueError) as exc:
            raise PlatepilotError(
                f"MQTT broker {broker_url(self.mqtt)}: cannot connect ({exc}); check output.mqtt.host and port"
            ) from None
        self._client.loop_start()

    def run(self, stop: threading.Event) -> None:
        """Write batches until `stop` is set; a batch not yet written then is left to the broker."""
        while not stop.is_set():
            batch = self._take()
            if not batch:
                continue
            try:
                self._write(batch, stop)
            except Exception:  # stop the service (exit 1, so it is restarted) rather than run on storing nothing
                log.exception("collect: writing a batch failed; stopping (the broker keeps what was not acknowledged)")
                self.failed = True
                stop.set()

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
        self.engine.dispose()

    def line(self) -> str:
        times = sorted(self.write_seconds)
        p95 = 1000 * times[int(0.95 * (len(times) - 1))] if times else 0.0
        mean = 1000 * statistics.fmean(times) if times else 0.0
        return (
            f"collect: {self.received} received, {self.stored} stored, {self.alerts} alerts stored, "
            f"{self.duplicates} duplicates skipped, "
            f"{self.rejected} rejected, {self.crops} crops; {self._queue.qsize()} waiting; batch write "
            f"{mean:.1f} ms mean, {p95:.1f} ms p95; database {self.db.failed} failed writes"
        )

    # paho's network thread --------------------------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: object, _flags: object, reason: object, _p: object) -> None:
        if getattr(reason, "is_failure", False):
            log.warning("MQTT %s: broker refused the connection (%s)", broker_url(self.mqtt), reason)
            return
        self.subscribed.clear()
        self._pending_subscriptions = {client.subscribe(topic, qos=1)[1] for topic in self.topics}
        log.info("MQTT %s: subscribed to %s", broker_url(self.mqtt), ", ".join(self.topics))

    def _on_subscribe(self, _client: mqtt.Client, _userdata: object, mid: int, _codes: object, _p: object) -> None:
        self._pending_subscriptions.discard(mid)
        if not self._pending_subscriptions:
            self.subscribed.set()

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        self._queue.put(message)  # full (database down): waits, and the broker holds the rest

    # the writer -------------------------------------------------------------------------------------
    def _take(self) -> list[mqtt.MQTTMessage]:
        try:
            batch = [self._queue.get(timeout=0.2)]
        except queue.Empty:
            return []
        while len(batch) < self.config.batch_size:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        return batch

    def _write(self, batch: list[mqtt.MQTTMessage], stop: threading.Event) -> None:
        started = time.perf_counter()
        parsed = [p for p in map(self._parse, batch) if p is not None]
        if self.clock() - self._days_made_at >= DAYS_AHEAD_EVERY_S:
            self._days_made_at = self.clock()
            make_days_ahead(self.engine, self._days_made_at)
        delay = 1.0
        while True:
            try:
                with self.engine.begin() as conn:
                    inserted = _insert(conn, parsed)
                break
            except _OUTAGE_ERRORS as exc:
                self.db.failure(str(exc.orig or exc).splitlines()[0])
                if stop.wait(delay):
                    return  # not acknowledged: the broker sends the batch to the next session
                delay = min(2 * delay, RETRY_MAX_S)
            except sa.exc.SQLAlchemyError:
                inserted, parsed = self._one_by_one(parsed)
                break
        self.db.success()
        self.write_seconds.append(time.perf_counter() - started)
        self.received += len(batch)
        self.stored += sum(p.table is events_table for p in inserted)
        self.alerts += sum(p.table is alerts_table for p in inserted)
        self.duplicates += len(parsed) - len(inserted)
        for message in batch:
            self._client.ack(message.mid, message.qos)
        # an event whose crop could not be written here is not acknowledged to its device, which sends it
        # again: its crop then fills the stored row (`_insert`)
        self._acknowledge([p for p in parsed if p.table is events_table and not _crop_failed(p.event)])

    def _parse(self, message: mqtt.MQTTMessage) -> _Parsed | None:
        """The message's event (its crop written) or alert, with its row; None (counted, logged) for a bad
        message."""
        limit = self.config.max_payload_kb * 1024
        size = len(message.payload)
        try:
            alert_topic = message.topic.endswith(f"/{ALERTS_LEAF}")
            if size > (1 if alert_topic else OVERSIZE_READ) * limit:
                raise BadMessage(f"{size} bytes, over fleet.collector.max_payload_kb")
            if alert_topic:
                alert = parse_alert(bytes(message.payload))
                self._check_device(message.topic, alert.event)
                return _Parsed(message, alert.event, alerts_table, alert_row(alert) | {"received_at": self.clock()})
            parsed = parse_event(bytes(message.payload))
            self._check_device(message.topic, parsed.event)
            if size > limit:  # its crop is too large: the event is kept without it (else it comes back for ever)
                log.warning("MQTT %s: %d bytes, over fleet.collector.max_payload_kb: its crop is not kept",
                            message.topic, size)  # fmt: skip
                parsed = EventMessage(replace(parsed.event, crop_note="crop over fleet.collector.max_payload_kb"))
            event = self._store_crop(parsed)
        except BadMessage as exc:
            self._reject(message.topic, str(exc))
            return None
        except Exception as exc:  # a message no check foresaw must not stop the writer: it is rejected
            log.exception("MQTT %s: message not understood", message.topic)
            self._reject(message.topic, f"{type(exc).__name__}: {exc}")
            return None
        return _Parsed(message, event, events_table, event_row(event) | {"synced_at": self.clock()})

    def _check_device(self, topic: str, event: PlateEvent) -> None:
        """With `device_topics`, BadMessage unless the event's device is the one its topic names
        (`<topic>/<device>/events`) and its id is that device's."""
        if not self.config.device_topics:
            return
        prefix, _, rest = topic.partition(f"{self.mqtt.topic}/")
        named = rest.rpartition("/")[0] if not prefix and "/" in rest else None
        if named != event.device_id or not (event.event_id or "").startswith(f"{event.device_id}/"):
            raise BadMessage(
                f"device {event.device_id!r} (event {event.event_id}) on the topic of device {named!r} "
                "(fleet.collector.device_topics)"
            )

    def _store_crop(self, parsed: EventMessage) -> PlateEvent:
        """The event as the collector stores it: `crop_path` its crop here (written now), or '' with a note."""
        event = parsed.event
        if parsed.crop_jpeg is None:
            return replace(event, crop_path="", crop_note=event.crop_note or "no crop sent")
        if not parsed.crop_jpeg.startswith(b"\xff\xd8"):
            return replace(event, crop_path="", crop_note="the crop sent is not a JPEG")
        path = crop_file(self.config.crops_dir, event)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            replace_atomically(path, parsed.crop_jpeg, 0o644)
        except OSError as exc:
            self.crop_store.failure(os_reason(exc))
            return replace(event, crop_path="", crop_note=f"{CROP_NOT_WRITTEN}: {os_reason(exc)}")
        self.crop_store.success()
        self.crops += 1
        return replace(event, crop_path=str(path), crop_note="")

    def _one_by_one(self, parsed: list[_Parsed]) -> tuple[list[_Parsed], list[_Parsed]]:
        """After a batch the database refused for its rows: each row alone; the refused ones rejected."""
        inserted, kept = [], []
        for item in parsed:
            try:
                with self.engine.begin() as conn:
                    inserted += _insert(conn, [item])
                kept.append(item)
            except sa.exc.SQLAlchemyError as exc:
                self._reject(item.message.topic, f"database refused it: {str(exc).splitlines()[0]}")
        return inserted, kept

    def _reject(self, topic: str, why: str) -> None:
        self.rejected += 1
        log.warning("MQTT %s: message rejected: %s", topic, why)

    def _acknowledge(self, parsed: list[_Parsed]) -> None:
        """One acknowledgement per device and topic: the event ids now in the database."""
        by_device: dict[tuple[str, str], list[str]] = {}
        for item in parsed:
            ack_topic = item.message.topic.removesuffix("events") + ACK_LEAF
            by_device.setdefault((ack_topic, item.event.device_id), []).append(item.event.event_id or "")
        for (topic, device), ids in by_device.items():
            self._client.publish(topic, ack_message(device, ids), qos=1)


def _insert(conn: sa.Connection, parsed: list[_Parsed]) -> list[_Parsed]:
    """Insert the rows of `parsed` whose event ids their table does not hold; those inserted. A known
    event sent again with its crop gives the crop to a row stored without it (`CROP_NOT_WRITTEN`)."""
    inserted: list[_Parsed] = []
    for table in (events_table, alerts_table):
        items = [p for p in parsed if p.table is table]
        if items:
            new = set(insert_new(conn, [p.row for p in items], table))
            for item in items:  # a message twice in one batch: the first inserted, the other a duplicate
                if item.event.event_id in new:
                    new.discard(item.event.event_id)
                    inserted.append(item)
                elif table is events_table and item.event.crop_path:
                    _fill_crop(conn, item.event)
    return inserted


def _fill_crop(conn: sa.Connection, event: PlateEvent) -> None:
    """The crop of a stored event whose crop this collector failed to write before."""
    t = events_table.c
    conn.execute(
        events_table.update()
        .where(t.event_id == event.event_id, t.first_seen == event.first_seen, t.crop_path == "")
        .where(t.crop_note.startswith(CROP_NOT_WRITTEN))
        .values(crop_path=event.crop_path, crop_note="")
    )


def _crop_failed(event: PlateEvent) -> bool:
    return event.crop_note.startswith(CROP_NOT_WRITTEN)


def serve(settings: Settings, say: Callable[[str], None], report_seconds: float = 60.0) -> Collector:
    """`platepilot collect`: collect until SIGTERM or Ctrl+C, saying the counters every `report_seconds`."""
    collector = Collector(settings)
    collector.connect()
    say(
        f"collecting {', '.join(collector.topics)} from {broker_url(collector.mqtt)} into {collector.engine.url!r}, "
        f"crops in {collector.config.crops_dir}"
    )
    stop = threading.Event()
    writer = threading.Thread(target=collector.run, args=(stop,), name="collector")
    pruner = Pruner(settings.output, settings.gate.labels, fleet_crops=collector.config.crops_dir)
    with stop_on_signals(stop.set):
        writer.start()
        pruner.start()
        while not stop.wait(report_seconds):
            say(collector.line())
    writer.join()
    pruner.stop()
    collector.close()
    say(collector.line())
    return collector
