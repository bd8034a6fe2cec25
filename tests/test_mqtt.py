"""MQTT publishing of events against a real mosquitto broker: delivery, broker down, reconnect."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from brokers import start_mosquitto, stop_process
from paho.mqtt.enums import CallbackAPIVersion
from pipeline_fakes import ScriptedEngine, TruthDetector, make_pilot, pipeline_settings

from platepilot.config import MQTTConfig, Settings, load_config
from platepilot.errors import PlatepilotError
from platepilot.registry.server import free_port
from platepilot.sources.demo import DemoSource
from platepilot.store.events import PlateEvent, query_events
from platepilot.store.mqtt import MQTTPublisher


class Subscriber:
    """A paho client recording (topic, payload text) of everything under `topic/#`."""

    def __init__(self, port: int, topic: str) -> None:
        self.messages: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        self.client.on_connect = lambda c, *_: c.subscribe(f"{topic}/#", qos=1)
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        assert self._subscribed.wait(5), "subscriber could not subscribe"

    def _on_message(self, _client: mqtt.Client, _userdata: object, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append((message.topic, message.payload.decode()))

    def on(self, topic: str) -> list[str]:
        with self._lock:
            return [payload for t, payload in self.messages if t == topic]

    def wait_for(self, topic: str, count: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while len(self.on(topic)) < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.on(topic)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture()
def subscriber(mosquitto: int) -> Iterator[Subscriber]:
    sub = Subscriber(mosquitto, "pp")
    yield sub
    sub.close()


def _event(track: int, text: str = "ABC1234") -> PlateEvent:
    return PlateEvent("CAM1", track, 100.0 + track, 101.0 + track, text, 0.9, ((text, 0.9),), "x.jpg", "crnn", "v1", 2)


def test_pipeline_events_reach_a_real_broker(tmp_path: Path, mosquitto: int, subscriber: Subscriber) -> None:
    publisher = MQTTPublisher(MQTTConfig(enabled=True, port=mosquitto, topic="pp"))
    settings = pipeline_settings(tmp_path)
    source = DemoSource("CAM1", seed=0, realtime=False, max_frames=150, clock=lambda: 1_764_000_000.0)
    pilot = make_pilot(settings, [source], TruthDetector(source.scene), ScriptedEngine("ABC1234", [0.9]),
                       publisher.publish)  # fmt: skip
    pilot.run()
    stored = query_events(settings.output.events_db_url)
    assert len(stored) >= 2
    received = {e["track_id"]: e for e in map(json.loads, subscriber.wait_for("pp/events", len(stored)))}
    assert received == {e.track_id: json.loads(json.dumps(e.to_json())) for e in stored}  # every field
    assert subscriber.wait_for("pp/CAM1/plate", len(stored))[-1] == "ABC1234"
    publisher.close()
    assert (publisher.delivered, publisher.failed) == (len(stored), 0)
    assert subscriber.wait_for("pp/available", 2) == ["online", "offline"]


def test_events_wait_while_the_broker_is_down_and_go_out_on_reconnect(tmp_path: Path) -> None:
    port = free_port()
    publisher = MQTTPublisher(MQTTConfig(enabled=True, port=port, topic="pp", qos=1))
    started = time.monotonic()
    for track in (1, 2, 3):
        publisher.publish(_event(track))
    assert time.monotonic() - started < 0.5, "publishing must not wait for the broker"
    assert not publisher.connected and publisher.pending == 3
    broker = start_mosquitto(tmp_path, port)
    try:
        sub = Subscriber(port, "pp")  # subscribed before the publisher's next retry (1 s after its first)
        assert publisher.wait_delivered(10), publisher.line()
        assert [json.loads(p)["track_id"] for p in sub.wait_for("pp/events", 3)] == [1, 2, 3]
        assert publisher.connect_failures >= 1 and publisher.failed == 0
        sub.close()
        publisher.close()
    finally:
        stop_process(broker)


@pytest.mark.parametrize(("qos", "failed_at_publish"), [(0, 2), (1, 0)])
def test_undeliverable_events_are_counted_and_logged_once(
    qos: int, failed_at_publish: int, caplog: pytest.LogCaptureFixture
) -> None:
    """QoS 0 events are lost at once while disconnected; QoS 1 ones are lost only if still queued at close."""
    publisher = MQTTPublisher(MQTTConfig(enabled=True, port=free_port(), qos=qos))  # nobody listens there
    with caplog.at_level(logging.WARNING, logger="platepilot.store.mqtt"):
        deadline = time.monotonic() + 5
        while publisher.connect_failures == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        publisher.publish(_event(1))
        publisher.publish(_event(2))
        assert publisher.failed == failed_at_publish
        publisher.close(timeout=0.2)
    assert publisher.failed == 2 and publisher.delivered == 0
    assert "2 failed" in publisher.line()
    mqtt_lines = [r.getMessage() for r in caplog.records if r.name == "platepilot.store.mqtt"]
    outage = [m for m in mqtt_lines if "not delivered" not in m]
    assert len(outage) == 1, mqtt_lines  # the first failure of the outage, not one line per event
    assert any("2 events not delivered" in m for m in mqtt_lines) == (qos == 1)


@pytest.mark.parametrize(
    ("yaml_text", "error"),
    [
        ("output: {mqtt: {topic: 'plates/#'}}", "output.mqtt.topic: String should match pattern"),
        ("output: {mqtt: {topic: 'plates/'}}", "output.mqtt.topic: String should match pattern"),
        ("output: {mqtt: {qos: 3}}", "output.mqtt.qos"),
        ("output: {mqtt: {brokr: x}}", "output.mqtt.brokr: unknown key (allowed: enabled, host, port, topic"),
    ],
)
def test_mqtt_config_is_off_by_default_and_checked(tmp_path: Path, yaml_text: str, error: str) -> None:
    assert Settings().output.mqtt == MQTTConfig() and not MQTTConfig().enabled
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(PlatepilotError, match=re.escape(error)):
        load_config(path)
