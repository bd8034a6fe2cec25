"""The fleet against a real mosquitto and a real PostgreSQL: `platepilot collect` stores every device's
events exactly once (replays, QoS 1 redeliveries, a broker restart, a collector killed with -9, a
database outage), the edge backlog re-sends what was never acknowledged, crops land on disk, bad
messages are counted and skipped, `reads --device` reads PostgreSQL."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import paho.mqtt.client as mqtt
import pytest
import sqlalchemy as sa
import yaml
from alembic import command
from brokers import start_mosquitto, stop_process
from fleet_helpers import Device, collect_process, plate_event
from paho.mqtt.enums import CallbackAPIVersion
from pg import PgCluster, new_database
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.config import (
    CollectorConfig,
    FleetConfig,
    MQTTConfig,
    OutputConfig,
    RetentionConfig,
    Settings,
    WatchConfig,
    WatchlistFile,
)
from platepilot.fleet.collector import Collector, crop_file
from platepilot.registry.server import free_port
from platepilot.store.backlog import Backlog
from platepilot.store.events import EventIds, EventStore, open_engine
from platepilot.store.mqtt import MQTTPublisher
from platepilot.store.partitions import DAY_SECONDS, day_table, drop_days_before, make_days_ahead, partitioned
from platepilot.store.retention import prune
from platepilot.store.schema import _config
from platepilot.store.search import EventQuery, ensure_search_index, search_events
from platepilot.store.wire import BadMessage, event_message, parse_alert, parse_event
from platepilot.watch.alerts import Alerter, alert_json
from platepilot.watch.lists import LiveWatchlists, save_watchlists

TOPIC = "fleet"


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    cluster = PgCluster()
    cluster.start()
    yield cluster
    cluster.remove()


@pytest.fixture()
def pg_url(pg_cluster: PgCluster) -> str:
    """A new empty database in the session's cluster."""
    return new_database(pg_cluster, f"t{uuid.uuid4().hex[:12]}")


def _settings(pg: str, port: int, folder: Path, **collector: object) -> Settings:
    return Settings(
        output=OutputConfig(events_db_url=pg, mqtt=MQTTConfig(enabled=True, port=port, topic=TOPIC)),
        fleet=FleetConfig(collector=CollectorConfig(crops_dir=folder / "central", client_id=f"c{uuid.uuid4().hex[:8]}",
                                                    **collector)),  # type: ignore[arg-type]
    )  # fmt: skip


class Running:
    """A collector in this process, writing on its own thread."""

    def __init__(self, settings: Settings) -> None:
        self.collector = Collector(settings)
        self.collector.connect()
        assert self.collector.subscribed.wait(10), "the collector never subscribed"  # else early messages are lost
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.collector.run, args=(self.stop,))
        self.thread.start()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.collector.close()


def _counts(url: str) -> tuple[int, int]:
    """(rows, distinct event ids) in the database at `url`."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT count(*), count(DISTINCT event_id) FROM plate_events")).one()
    finally:
        engine.dispose()
    return int(row[0]), int(row[1])


def _until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def _raw_publish(port: int, topic: str, payloads: list[bytes]) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.connect("127.0.0.1", port)
    client.loop_start()
    for payload in payloads:
        client.publish(topic, payload, qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_replays_and_redeliveries_never_double_a_row(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    running = Running(_settings(pg_url, mosquitto, tmp_path))
    device = Device(tmp_path, mosquitto, "box1")
    try:
        events = device.emit(range(1, 201))
        _until(lambda: device.backlog.waiting() == 0, 30, "every event acknowledged")
        assert _counts(pg_url) == (200, 200)
        for event in events:  # the device replays all of them
            device.publisher.send(event)
        _raw_publish(mosquitto, f"{TOPIC}/box1/events", [event_message(events[0])] * 3)  # the same message again
        _until(lambda: running.collector.received >= 403, 30, "the replays")
        assert _counts(pg_url) == (200, 200)
        assert (running.collector.stored, running.collector.rejected) == (200, 0)
        assert running.collector.duplicates >= 203  # the replays, and any event the backlog sent again
    finally:
        device.close()
        running.close()


def test_collectors_in_a_share_group_split_the_stream(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    pair = [Running(_settings(pg_url, mosquitto, tmp_path, share_group="central")) for _ in range(2)]
    device = Device(tmp_path, mosquitto, "box1")
    try:
        device.emit(range(1, 201))
        _until(lambda: device.backlog.waiting() == 0, 30, "every event acknowledged")
        received = [running.collector.received for running in pair]
        stored = [running.collector.stored for running in pair]
    finally:
        device.close()
        for running in pair:
            running.close()
    assert _counts(pg_url) == (200, 200)
    assert sum(stored) == 200 and min(stored) > 0  # both worked, and no event was written twice
    assert max(received) < 200  # neither saw the whole stream


def test_two_devices_with_the_same_camera_and_reads_device(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    running = Running(_settings(pg_url, mosquitto, tmp_path))
    devices = [Device(tmp_path, mosquitto, name) for name in ("north", "south")]
    try:
        for device in devices:
            device.emit(range(1, 51))  # same camera id, same track ids
        _until(lambda: all(d.backlog.waiting() == 0 for d in devices), 30, "both devices acknowledged")
    finally:
        for device in devices:
            device.close()
        running.close()
    assert _counts(pg_url) == (100, 100)
    config = tmp_path / "central.yaml"
    config.write_text(yaml.safe_dump({"output": {"events_db_url": pg_url}}))
    result = CliRunner().invoke(app, ["reads", "--device", "north", "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert len(result.output.splitlines()) == 50
    fuzzy = CliRunner().invoke(
        app, ["reads", "--device", "south", "--plate", "ABC1Z34", "--fuzzy", "1", "-c", str(config)]
    )
    assert fuzzy.exit_code == 0 and len(fuzzy.output.splitlines()) == 50, fuzzy.output
    engine = open_engine(pg_url)  # the dashboard's search, on PostgreSQL
    try:
        ensure_search_index(engine)
        found = search_events(engine, EventQuery("ABCI234", fuzzy=0, camera="CAM1", limit=None))
        assert len(found) == 100 and {f.event.device_id for f in found} == {"north", "south"}
        assert {f.event.source_file for f in found} == {f"gate/{track}.jpg" for track in range(1, 51)}  # travelled
        assert len(search_events(engine, EventQuery(camera="CAM1", limit=None, device="north"))) == 50
    finally:
        engine.dispose()


def test_a_backlog_no_one_acknowledges_backs_off_then_drains(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    """With the broker up and the collector down, every box sent its whole backlog again every interval."""
    device = Device(tmp_path, mosquitto, "box1", resend_seconds=0.2)
    try:
        device.emit(range(1, 6))
        time.sleep(4.0)  # 20 intervals: rounds after 0.2, 0.4, 0.8, 1.6 s of silence, then 3.2 s
        rounds = device.backlog.resent // 5
        assert 2 <= rounds <= 6, rounds
        running = Running(_settings(pg_url, mosquitto, tmp_path))  # the collector is back
        try:
            _until(lambda: device.backlog.waiting() == 0, 30, "the backlog acknowledged")
        finally:
            running.close()
    finally:
        device.close()
    assert _counts(pg_url) == (5, 5)


@pytest.mark.slow
def test_broker_down_then_back_every_backlog_event_arrives_once(tmp_path: Path, pg_url: str) -> None:
    """The device goes on while the broker is down (its MQTT queue holds only 20): the backlog sends the rest."""
    port = free_port()
    broker = start_mosquitto(tmp_path, port)
    running = Running(_settings(pg_url, port, tmp_path))
    device = Device(tmp_path, port, "box1", max_queued=20)
    try:
        device.emit(range(1, 101))
        _until(lambda: device.backlog.waiting() == 0, 30, "the first events acknowledged")
        stop_process(broker)
        device.emit(range(101, 401))
        assert device.publisher.failed > 0, "events beyond the MQTT queue are dropped there, kept in SQLite"
        time.sleep(2)
        broker = start_mosquitto(tmp_path, port)
        _until(lambda: device.backlog.waiting() == 0, 90, "the backlog acknowledged")
        assert _counts(pg_url) == (400, 400)
        assert device.backlog.resent > 0
    finally:
        device.close()
        running.close()
        stop_process(broker)


@pytest.mark.slow
def test_collector_killed_mid_stream_loses_and_doubles_nothing(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    config = tmp_path / "collect.yaml"
    settings = _settings(pg_url, mosquitto, tmp_path, batch_size=50)
    config.write_text(yaml.safe_dump(settings.model_dump(mode="json", include={"output", "fleet"})))
    collector = collect_process(config)
    devices = [Device(tmp_path, mosquitto, f"box{i}") for i in range(2)]
    try:
        emitters = [threading.Thread(target=d.emit, args=(range(1, 1001),)) for d in devices]
        for thread in emitters:
            thread.start()
        _until(lambda: _rows(pg_url) >= 200, 30, "the collector writing")
        collector.send_signal(signal.SIGKILL)
        collector.wait()
        for thread in emitters:
            thread.join()
        collector = collect_process(config)  # same client id: the broker's session is waiting for it
        _until(lambda: all(d.backlog.waiting() == 0 for d in devices), 120, "every event acknowledged")
        assert _counts(pg_url) == (2000, 2000)
    finally:
        for device in devices:
            device.close()
        collector.send_signal(signal.SIGTERM)
        assert collector.wait(20) == 0


def _benchmark(tmp_path: Path, *args: str) -> dict[str, Any]:
    """Run benchmarks/fleet_durability.py (its own broker and database); its JSON."""
    result = tmp_path / "result.json"
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "fleet_durability.py"
    done = subprocess.run([sys.executable, str(script), *args, "--results", str(result)], capture_output=True,
                          text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return dict(json.loads(result.read_text()))


@pytest.mark.slow
def test_device_offline_then_back_every_backlog_event_arrives_once(tmp_path: Path) -> None:
    """The offline benchmark, short: the device makes 20 events/s; 60 of them while the broker is down."""
    args = ["--offline-seconds", "3", "--rate", "20", "--online-seconds", "2", "--max-queued", "10"]
    result = _benchmark(tmp_path, "offline", *args, "--resend-seconds", "1")
    assert (result["events_while_offline"], result["backlog_when_broker_back"]) == (60, 60)
    assert result["mqtt_sends_refused_while_offline"] > 0  # only in SQLite: the backlog had to send them
    assert (result["events_on_devices"], result["rows"], result["distinct_event_ids"]) == (140, 140, 140)
    assert (result["lost"], result["doubled"], result["unknown"]) == (0, 0, 0)


@pytest.mark.slow
def test_broker_restart_kill9_and_replay_in_one_stream(tmp_path: Path) -> None:
    """The combined benchmark, small: each failure lands while the devices are still producing."""
    result = _benchmark(tmp_path, "combined", "--devices", "2", "--events", "400", "--rate", "40")
    assert 0 < result["emitted_then"] < result["emitted_at_kill9"] < 800
    assert result["replayed_events"] == 400 and result["replay_resent"] >= 400
    assert (result["events_on_devices"], result["rows"], result["distinct_event_ids"]) == (800, 800, 800)
    assert (result["lost"], result["doubled"], result["unknown"]) == (0, 0, 0)


def _rows(url: str) -> int:
    try:
        return _counts(url)[0]
    except sa.exc.SQLAlchemyError:
        return 0  # the table is not there yet


@pytest.mark.slow
def test_a_database_outage_holds_events_and_loses_none(
    tmp_path: Path, mosquitto: int, pg_url: str, pg_cluster: PgCluster
) -> None:
    running = Running(_settings(pg_url, mosquitto, tmp_path))
    device = Device(tmp_path, mosquitto, "box1")
    try:
        device.emit(range(1, 51))
        _until(lambda: device.backlog.waiting() == 0, 30, "the first events acknowledged")
        pg_cluster.stop()
        try:
            device.emit(range(51, 151))
            _until(lambda: running.collector.db.failed > 0, 30, "a failed write")
            assert device.backlog.waiting() == 100
        finally:
            pg_cluster.start()
        _until(lambda: device.backlog.waiting() == 0, 60, "the held events acknowledged")
        assert _counts(pg_url) == (150, 150) and running.collector.rejected == 0
    finally:
        device.close()
        running.close()


def test_crops_land_on_disk_by_device_and_date(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    crop = tmp_path / "edge_crop.jpg"
    assert cv2.imwrite(str(crop), np.full((40, 120, 3), 200, np.uint8))
    running = Running(_settings(pg_url, mosquitto, tmp_path))
    device = Device(tmp_path, mosquitto, "box1", send_crops=True)
    try:
        events = device.emit(range(1, 4), crop=str(crop))
        _until(lambda: device.backlog.waiting() == 0, 30, "acknowledged")
    finally:
        device.close()
        running.close()
    central = tmp_path / "central"
    for event in events:
        path = crop_file(central, event)
        assert path.read_bytes() == crop.read_bytes()
        assert path.parent.parent.name == "box1" and path.parent.name == time.strftime(
            "%Y-%m-%d", time.localtime(event.first_seen)
        )
    engine = open_engine(pg_url)
    with engine.connect() as conn:
        paths = {r[0] for r in conn.execute(sa.text("SELECT crop_path FROM plate_events"))}
    engine.dispose()
    assert paths == {str(crop_file(central, e)) for e in events}


def _crop_rows(url: str) -> list[tuple[str, str]]:
    """(crop_path, crop_note) of every event, by track."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT crop_path, crop_note FROM plate_events ORDER BY track_id")).all()
    finally:
        engine.dispose()
    return [(str(path), str(note)) for path, note in rows]


def test_a_crop_not_written_centrally_comes_again_with_its_event(
    tmp_path: Path, mosquitto: int, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The collector stored events without their crops when it could not write them, acknowledged them, and
    the crops were lost for good (with one error line per event)."""
    crop = tmp_path / "edge_crop.jpg"
    assert cv2.imwrite(str(crop), np.full((40, 120, 3), 200, np.uint8))
    (tmp_path / "central").write_text("a file where the crops folder should be")
    running = Running(_settings(pg_url, mosquitto, tmp_path))
    device = Device(tmp_path, mosquitto, "box1", send_crops=True)
    try:
        with caplog.at_level(logging.ERROR, logger="platepilot"):
            events = device.emit(range(1, 4), crop=str(crop))
            _until(lambda: running.collector.received >= 6, 30, "the events, and their first resend")
        assert device.backlog.waiting() == 3  # stored, but not acknowledged
        assert [note.startswith("central crop not written") for _, note in _crop_rows(pg_url)] == [True] * 3
        (tmp_path / "central").unlink()  # the disk is back
        _until(lambda: device.backlog.waiting() == 0, 30, "acknowledged once the crops are written")
    finally:
        device.close()
        running.close()
    assert _crop_rows(pg_url) == [(str(crop_file(tmp_path / "central", e)), "") for e in events]
    assert _counts(pg_url) == (3, 3)
    lines = [r.getMessage() for r in caplog.records if "fleet crops" in r.getMessage()]
    assert len(lines) == 2 and "not acknowledged" in lines[0] and "working again" in lines[1]  # not one per event


def test_events_the_collector_keeps_not_acknowledging_hold_back_no_others(
    tmp_path: Path, mosquitto: int, pg_url: str
) -> None:
    """Rounds always re-sent the oldest `resend_batch` events: with the central crops unwritable, those
    stayed unacknowledged and every event behind them never reached the fleet database."""
    crop = tmp_path / "edge_crop.jpg"
    assert cv2.imwrite(str(crop), np.full((40, 120, 3), 200, np.uint8))
    (tmp_path / "central").write_text("a file where the crops folder should be")
    running = Running(_settings(pg_url, mosquitto, tmp_path))
    store = EventStore(f"sqlite:///{tmp_path}/events.db", None, EventIds("box1", "run1"))
    for track in range(1, 11):  # stored while offline, never published
        store.add(store.stamp(plate_event(track, crop=str(crop))))
    publisher = MQTTPublisher(MQTTConfig(enabled=True, port=mosquitto, topic=f"{TOPIC}/box1", send_crops=True))
    config = FleetConfig(device_id="box1", backlog=True, resend_seconds=0.3, resend_batch=3)
    backlog = Backlog(store.engine, publisher, "box1", config)
    backlog.start()
    try:
        _until(lambda: _counts(pg_url) == (10, 10), 30, "every event stored centrally")
    finally:
        backlog.stop()
        publisher.close(timeout=0.5)
        store.close()
        running.close()


def test_one_event_never_acknowledged_does_not_slow_the_rest(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    """Rounds counted only acknowledgements of their own events: one event the collector never acknowledges
    (its crop not writable there) backed the whole backlog off up to 16 intervals, while live events were
    acknowledged all along."""
    crop = tmp_path / "edge_crop.jpg"
    assert cv2.imwrite(str(crop), np.full((40, 120, 3), 200, np.uint8))
    (tmp_path / "central").write_text("a file where the crops folder should be")
    running = Running(_settings(pg_url, mosquitto, tmp_path))
    device = Device(tmp_path, mosquitto, "box1", send_crops=True, resend_seconds=0.2)
    try:
        device.emit(range(1, 2), crop=str(crop))  # never acknowledged: its crop cannot be written centrally
        for track in range(2, 22):  # live events for 3 s, each acknowledged at once
            device.emit(range(track, track + 1))
            time.sleep(0.15)
        missed = device.store.stamp(plate_event(99))
        device.store.add(missed)  # stored, its live send lost: the backlog must send it
        started = time.monotonic()
        _until(lambda: device.backlog.waiting() == 1, 10, "the lost event acknowledged")
        assert time.monotonic() - started < 1.5
    finally:
        device.close()
        running.close()


def test_an_event_whose_crop_is_too_large_is_kept_without_it(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    """Its message was rejected and never acknowledged: the device sent it again for ever."""
    crop = tmp_path / "big_crop.jpg"
    noise = np.random.default_rng(0).integers(0, 256, (400, 600, 3), np.uint8)
    assert cv2.imwrite(str(crop), noise, [cv2.IMWRITE_JPEG_QUALITY, 95]) and crop.stat().st_size > 2048
    running = Running(_settings(pg_url, mosquitto, tmp_path, max_payload_kb=crop.stat().st_size // 1024 - 1))
    device = Device(tmp_path, mosquitto, "box1", send_crops=True)
    try:
        device.emit(range(1, 3), crop=str(crop))
        _until(lambda: device.backlog.waiting() == 0, 30, "acknowledged")
    finally:
        device.close()
        running.close()
    assert _crop_rows(pg_url) == [("", "crop over fleet.collector.max_payload_kb")] * 2
    assert running.collector.rejected == 0


def test_with_device_topics_a_box_cannot_write_another_boxs_events(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    """Box south published an event in north's name: it was stored, and north's real one skipped as its duplicate."""
    real = EventIds("north", "r").stamp(plate_event(7))
    forged = replace(real, text="FAKE000")
    running = Running(_settings(pg_url, mosquitto, tmp_path, device_topics=True))
    try:
        _raw_publish(mosquitto, f"{TOPIC}/south/events", [event_message(forged)])
        _raw_publish(mosquitto, f"{TOPIC}/events", [event_message(forged)])  # no device in the topic
        named_as_prefix = EventIds(TOPIC, "r").stamp(plate_event(8, text="FAKE001"))  # device "fleet" on fleet/events
        _raw_publish(mosquitto, f"{TOPIC}/events", [event_message(named_as_prefix)])
        _raw_publish(mosquitto, f"{TOPIC}/north/events", [event_message(real)])
        _until(lambda: running.collector.received >= 4, 30, "the four messages")
    finally:
        running.close()
    engine = open_engine(pg_url)
    with engine.connect() as conn:
        texts = conn.execute(sa.text("SELECT text FROM plate_events")).scalars().all()
    engine.dispose()
    assert texts == ["ABC1234"] and running.collector.rejected == 3


def test_bad_messages_are_counted_logged_and_never_written(
    tmp_path: Path, mosquitto: int, pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = EventIds("box1", "r").stamp(plate_event(1))
    data = json.loads(event_message(good))
    bad = [
        b"\xff not json",
        b"[1, 2]",
        json.dumps({**data, "schema": 99}).encode(),
        json.dumps({**data, "text": "X" * 40}).encode(),
        json.dumps({k: v for k, v in data.items() if k != "event_id"}).encode(),
        json.dumps({**data, "device_id": "../etc"}).encode(),
        json.dumps({**data, "device_id": ".."}).encode(),
        json.dumps({**data, "first_seen": -9e10}).encode(),  # no day to file its crop under
        json.dumps({**data, "track_id": 10**30}).encode(),  # no column holds it
        json.dumps({**data, "crop_path": "y" * 9000}).encode(),  # over 8 x max_payload_kb 1: not even read
    ]
    running = Running(_settings(pg_url, mosquitto, tmp_path, max_payload_kb=1))
    try:
        with caplog.at_level(logging.WARNING, logger="platepilot.fleet.collector"):
            _raw_publish(mosquitto, f"{TOPIC}/box1/events", [*bad, event_message(good)])
            _until(lambda: running.collector.received >= len(bad) + 1, 30, "every message")
    finally:
        running.close()
    assert (running.collector.rejected, running.collector.stored) == (len(bad), 1)
    assert _counts(pg_url) == (1, 1)
    lines = [r.getMessage() for r in caplog.records if r.name == "platepilot.fleet.collector"]
    assert len(lines) == len(bad) and all(
        line.startswith(f"MQTT {TOPIC}/box1/events: message rejected") for line in lines
    )
    assert any("unknown schema version 99" in line for line in lines)


def test_a_message_no_check_foresaw_is_rejected_and_the_collector_goes_on(
    tmp_path: Path, mosquitto: int, pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One odd message used to kill the writer thread for good: the process lived on, storing nothing."""
    from platepilot.fleet import collector as collector_module

    def parse(payload: bytes) -> object:
        if b"POISON" in payload:
            raise ValueError("year 0 is out of range")
        return parse_event(payload)

    monkeypatch.setattr(collector_module, "parse_event", parse)
    events = [EventIds("box1", "r").stamp(plate_event(i)) for i in (1, 2)]
    poison = EventIds("box1", "r").stamp(plate_event(3, text="POISON"))
    running = Running(_settings(pg_url, mosquitto, tmp_path))
    try:
        _raw_publish(mosquitto, f"{TOPIC}/box1/events", [event_message(e) for e in (events[0], poison, events[1])])
        _until(lambda: running.collector.stored >= 2, 30, "both good events")
    finally:
        running.close()
    assert (running.collector.stored, running.collector.rejected, running.collector.failed) == (2, 1, False)


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"schema": 2}, "unknown schema version 2"),
        ({"track_id": "seven"}, "track_id: Input should be a valid integer"),
        ({"candidates": [["A", "x"]]}, "candidates.0.1"),
        ({"camera_id": "C" * 33}, "camera_id: longer than 32"),
        ({"device_id": ""}, "device_id ''"),
        ({"crop_jpeg": "***"}, "crop_jpeg: not base64"),
        ({"first_seen": float("nan")}, "first_seen, last_seen: an event needs both as epoch seconds"),
        ({"last_seen": 1e300}, "first_seen, last_seen"),
        ({"first_seen": -9e10}, "first_seen, last_seen"),
        ({"track_id": 10**30}, "track_id, reads"),
        ({"reads": -1}, "track_id, reads"),
        ({"device_id": ".."}, "device_id '..'"),
    ],
)
def test_parse_event_rejects_what_cannot_be_stored(change: dict[str, object], error: str) -> None:
    data = json.loads(event_message(EventIds("box1", "r").stamp(plate_event(1))))
    with pytest.raises(BadMessage, match=error):
        parse_event(json.dumps({**data, **change}).encode())


def _watchlists(folder: Path) -> tuple[LiveWatchlists, WatchConfig]:
    """A block list with ABC1234 on it; no cooldown."""
    config = WatchConfig(file=folder / "watchlists.yaml", cooldown_seconds=0)
    stolen = {"stolen": {"entries": [{"plate": "ABC1234", "note": "reported stolen"}]}}
    save_watchlists(config.file, WatchlistFile.model_validate({"lists": stolen}))
    return LiveWatchlists(config, ["CAM1"]), config


def test_alerts_are_collected_once_each(tmp_path: Path, mosquitto: int, pg_url: str) -> None:
    running = Running(_settings(pg_url, mosquitto, tmp_path))
    device = Device(tmp_path, mosquitto, "box1")
    alerter = Alerter(*_watchlists(tmp_path), device.publisher)  # as `platepilot run` wires it
    try:
        events = device.emit(range(1, 4))
        for event in events:
            alerter(event)
        _until(lambda: running.collector.alerts == 3, 30, "three alerts stored")
        again = json.dumps(alert_json(events[0], alerter.lists.matcher().match_event(events[0])[0])).encode()
        bad = json.dumps({**json.loads(again), "schema": 99}).encode()
        _raw_publish(mosquitto, f"{TOPIC}/box1/alerts", [again, again, bad])  # redelivered, and unknown
        events += device.emit(range(4, 5))
        alerter(events[-1])  # after those at the broker: stored means they were handled
        _until(lambda: running.collector.alerts == 4, 30, "the fourth alert")
    finally:
        device.close()
        running.close()
    assert running.collector.rejected == 1 and running.collector.duplicates >= 2
    engine = open_engine(pg_url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_id, device_id, text, list_name, kind, entry FROM plate_alerts")).all()
    engine.dispose()
    assert sorted(r.event_id for r in rows) == sorted(e.event_id for e in events)
    assert {(r.device_id, r.text, r.list_name, r.kind) for r in rows} == {("box1", "ABC1234", "stolen", "block")}
    assert json.loads(rows[0].entry)["note"] == "reported stolen"
    assert _counts(pg_url) == (4, 4)  # the events themselves, once each


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"schema": 2}, "unknown schema version 2"),
        ({"event": "ABC1234"}, "event: an alert needs its event"),
        ({"entry": None}, "entry: an alert needs its watchlist entry"),
        ({"list": 7}, "list: an alert needs it as a string"),
        ({"matched_text": "X" * 65}, "matched_text: longer than 64"),
        ({"event": {"event_id": None}}, "no event_id"),
    ],
)
def test_parse_alert_rejects_what_cannot_be_stored(tmp_path: Path, change: dict[str, object], error: str) -> None:
    event = EventIds("box1", "r").stamp(plate_event(1))
    hit = _watchlists(tmp_path)[0].matcher().match_event(event)[0]
    data = alert_json(event, hit)
    if isinstance(change.get("event"), dict):
        change = {"event": {**data["event"], **change["event"]}}  # type: ignore[dict-item]
    assert parse_alert(json.dumps(data).encode()).event == event  # the alert as sent is fine
    with pytest.raises(BadMessage, match=error):
        parse_alert(json.dumps({**data, **change}).encode())


def _database_at_0003(url: str) -> None:
    """The events database as the runtime left it before fleets (revision 0003), with two rows."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        command.upgrade(_config(conn), "0003")
        for track in (1, 2):
            conn.execute(sa.text(
                "INSERT INTO plate_events (camera_id, track_id, first_seen, last_seen, text, confidence, candidates, "
                "crop_path, engine, model_version, reads) "
                "VALUES ('CAM1', :t, 1.0, 2.0, 'OLD1', 0.9, '[]', '', 'crnn', 'v1', 1)"
            ), {"t": track})  # fmt: skip
    engine.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_migration_keeps_rows_and_inserts_are_idempotent(tmp_path: Path, pg_url: str, kind: str) -> None:
    url = f"sqlite:///{tmp_path}/old.db" if kind == "sqlite" else pg_url
    _database_at_0003(url)
    store = EventStore(url, None, EventIds("box1", "r"))
    try:
        assert store.add(plate_event(7)) and store.add(plate_event(7))  # the second is skipped
        with store.engine.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT text, event_id, device_id, synced_at FROM plate_events ORDER BY id")
            ).all()
    finally:
        store.close()
    assert [tuple(r) for r in rows] == [("OLD1", None, "", None)] * 2 + [("ABC1234", "box1/CAM1/r/7", "box1", None)]


def _day_tables(conn: sa.Connection) -> dict[str, int]:
    """Each table holding a day of plate_events, with its row count."""
    names = conn.execute(sa.text(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'plate_events'::regclass ORDER BY c.relname"
    )).scalars().all()  # fmt: skip
    return {name: conn.execute(sa.text(f'SELECT count(*) FROM "{name}"')).scalar_one() for name in names}


def test_postgresql_keeps_each_day_of_events_in_a_table_of_its_own(pg_url: str) -> None:
    first = plate_event(1)
    offsets = (0, DAY_SECONDS, DAY_SECONDS + 3600, 3 * DAY_SECONDS)
    days = [replace(first, track_id=k, first_seen=first.first_seen + dt) for k, dt in enumerate(offsets)]
    fleet, old = EventStore(pg_url, None, EventIds("box1", "r")), EventStore(pg_url)  # old: events without ids
    try:
        assert all(fleet.add(event) for event in [*days, days[0]])  # the replay of the first is skipped
        assert old.add(replace(first, track_id=9))
        with fleet.engine.connect() as conn:
            assert partitioned(conn)
            tables = _day_tables(conn)
            total = conn.execute(sa.text("SELECT count(*) FROM plate_events")).scalar_one()
    finally:
        fleet.close()
        old.close()
    day = int(first.first_seen // DAY_SECONDS)
    assert tables == {day_table(day): 2, day_table(day + 1): 2, day_table(day + 3): 1}
    assert total == 5


def test_coming_days_are_made_ahead_and_a_busy_table_is_not_waited_for(pg_url: str) -> None:
    engine = open_engine(pg_url)
    today = int(time.time() // DAY_SECONDS)
    try:
        make_days_ahead(engine, today * DAY_SECONDS)
        with engine.connect() as conn:
            assert _day_tables(conn) == {day_table(today + k): 0 for k in range(3)}
        with engine.connect() as reader:  # a long query holds the table: making a day would wait for it
            reader.execute(sa.text("SELECT count(*) FROM plate_events"))
            started = time.monotonic()
            make_days_ahead(engine, (today + 5) * DAY_SECONDS)  # gives up after LOCK_TIMEOUT, quietly
            waited = time.monotonic() - started
            with engine.connect() as conn:
                while_busy = set(_day_tables(conn))
            reader.rollback()
        make_days_ahead(engine, (today + 5) * DAY_SECONDS)
        with engine.connect() as conn:
            tables = set(_day_tables(conn))
    finally:
        engine.dispose()
    assert 1 < waited < 10 and day_table(today + 5) not in while_busy
    assert tables == {day_table(today + k) for k in (0, 1, 2, 5, 6, 7)}


def test_retention_drops_the_days_it_empties(tmp_path: Path, pg_url: str) -> None:
    now = time.time()
    store = EventStore(pg_url, None, EventIds("box1", "r"))
    try:
        for track, age_days in ((1, 45), (2, 40), (3, 40), (4, 10)):
            store.add(replace(plate_event(track), first_seen=now - age_days * DAY_SECONDS, last_seen=now))
        output = OutputConfig(events_db_url=pg_url, crops_dir=tmp_path / "crops", events_jsonl=None,
                              retention=RetentionConfig(max_age_days=30))  # fmt: skip
        assert prune(output, tmp_path / "labels.txt", now).events_deleted == 0  # all were last seen now
        with store.engine.begin() as conn:
            conn.execute(sa.text("UPDATE plate_events SET last_seen = first_seen + 2"))
        assert prune(output, tmp_path / "labels.txt", now).events_deleted == 3
        with store.engine.connect() as conn:
            tables = _day_tables(conn)
            tracks = conn.execute(sa.text("SELECT track_id FROM plate_events")).scalars().all()
    finally:
        store.close()
    assert tables == {day_table(int((now - 10 * DAY_SECONDS) // DAY_SECONDS)): 1} and tracks == [4]


def test_migrating_to_days_and_back_keeps_rows_ids_and_idempotence(pg_url: str) -> None:
    _database_at_0003(pg_url)
    store = EventStore(pg_url, None, EventIds("box1", "r"))  # migrated to the newest: partitioned by day
    try:
        assert store.add(plate_event(7))
        engine = store.engine
        with engine.begin() as conn:
            # the rows from before the migration's day stay in one table, and so does a late one of those days
            assert partitioned(conn) and _day_tables(conn) == {"plate_events_before": 3}
            command.downgrade(_config(conn), "0006")
            assert not partitioned(conn)
            flat = conn.execute(sa.text("SELECT id, text, event_id FROM plate_events ORDER BY id")).all()
            command.upgrade(_config(conn), "head")
        assert store.add(plate_event(7)) and store.add(plate_event(8))  # the replay is skipped, the new one kept
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, text, event_id FROM plate_events ORDER BY id")).all()
            assert partitioned(conn)
        dropped = drop_days_before(engine, time.time())  # every event was last seen long ago
        with engine.connect() as conn:
            left = _day_tables(conn)
    finally:
        store.close()
    assert [tuple(r) for r in flat] == [(1, "OLD1", None), (2, "OLD1", None), (3, "ABC1234", "box1/CAM1/r/7")]
    assert [tuple(r) for r in rows[:3]] == [tuple(r) for r in flat]
    assert dropped == 4 and left == {}  # the one table of the days before the migration went whole
    assert rows[3][0] > 3 and tuple(rows[3][1:]) == ("ABC1234", "box1/CAM1/r/8") and len(rows) == 4


def test_row_ids_go_past_32_bits_on_postgresql(pg_url: str) -> None:
    """A 32-bit serial id ran out (a fleet's few years of events and replays): every event was refused."""
    store = EventStore(pg_url, None, EventIds("box1", "r"))
    try:
        with store.engine.begin() as conn:
            for table in ("plate_events", "plate_alerts"):
                conn.execute(sa.text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), 2147483646)"))
        assert all(store.add(plate_event(i)) for i in (1, 2, 3))
        with store.engine.connect() as conn:
            ids = conn.execute(sa.text("SELECT id FROM plate_events ORDER BY id")).scalars().all()
            alert_id = conn.execute(sa.text("SELECT nextval(pg_get_serial_sequence('plate_alerts', 'id'))")).scalar()
    finally:
        store.close()
    assert ids == [2**31 - 1, 2**31, 2**31 + 1] and alert_id == 2**31 - 1


def _cli(tmp_path: Path, output: dict[str, object]) -> subprocess.CompletedProcess[str]:
    config = tmp_path / "bad.yaml"
    config.write_text(yaml.safe_dump({"output": output}))
    return subprocess.run([sys.executable, "-m", "platepilot.cli", "collect", "-c", str(config)],
                          capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "300"})  # fmt: skip


@pytest.mark.parametrize(
    ("what", "message"),
    [
        ("database down", "events database postgresql+psycopg://platepilot@127.0.0.1:"),
        ("bad url", "events database URL 'nonsense' is not a SQLAlchemy URL"),
        ("broker down", "MQTT broker mqtt://127.0.0.1:"),
    ],
)
def test_collect_bad_input_is_one_line(tmp_path: Path, pg_url: str, what: str, message: str) -> None:
    url = {"database down": f"postgresql+psycopg://platepilot@127.0.0.1:{free_port()}/x", "bad url": "nonsense"}
    output = {"events_db_url": url.get(what, pg_url), "mqtt": {"host": "127.0.0.1", "port": free_port()}}
    done = _cli(tmp_path, output)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr
