"""MQTT publishing of events against a real mosquitto broker: delivery, broker down, reconnect, login, TLS."""

from __future__ import annotations

import json
import logging
import re
import subprocess
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
from platepilot.store.wire import SCHEMA


class Subscriber:
    """A paho client recording (topic, payload text) of everything under `topic/#`."""

    def __init__(
        self, port: int, topic: str, *, login: tuple[str, str] | None = None, ca_file: Path | None = None
    ) -> None:
        self.messages: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2)
        if login is not None:
            self.client.username_pw_set(*login)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
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
    expected = {e.track_id: {**json.loads(json.dumps(e.to_json())), "schema": SCHEMA} for e in stored}
    assert received == expected  # every field, and the message format's version
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


def test_a_long_run_keeps_only_unacknowledged_events(mosquitto: int, subscriber: Subscriber) -> None:
    """A publisher sending for weeks must not hold every event it ever sent (it did, about 1.5 KB each)."""
    publisher = MQTTPublisher(MQTTConfig(enabled=True, port=mosquitto, topic="pp", qos=1))
    assert publisher.wait_delivered(5)
    for track in range(1, 3001):
        publisher.send(_event(track))
        if track % 500 == 0:  # as a camera does: events trickle, the broker keeps up
            assert len(subscriber.wait_for("pp/events", track)) == track
    assert len(publisher._pending) < 1000, "acknowledged events were kept"
    publisher.close()
    assert (publisher.delivered, publisher.failed) == (3000, 0)


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


USER, PASSWORD, PASSWORD_ENV = "reader", "s3cret pass", "PP_TEST_MQTT_PASSWORD"


@pytest.fixture()
def login_broker(tmp_path: Path) -> Iterator[int]:
    """A mosquitto that lets in only USER with PASSWORD (no anonymous clients); yields its port."""
    password_file = tmp_path / "passwords"
    subprocess.run(["mosquitto_passwd", "-b", "-c", str(password_file), USER, PASSWORD], check=True)
    port = free_port()
    proc = start_mosquitto(tmp_path, port, password_file=password_file)
    try:
        yield port
    finally:
        stop_process(proc)


def _make_certs(folder: Path, san: str, name: str = "server") -> tuple[Path, Path, Path]:
    """A throwaway CA and a broker certificate it signed for `san` (openssl CLI): (CA, certificate, key)."""
    ca, ca_key, cert, key = (folder / f"{name}-{leaf}" for leaf in ("ca.pem", "ca.key", "cert.pem", "key.pem"))
    csr, ext = folder / f"{name}.csr", folder / f"{name}.ext"
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]

    def openssl(*args: str | Path) -> None:
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)

    ca_ext = ["-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign"]
    openssl(
        "req", "-x509", *ec, *ca_ext, "-keyout", ca_key, "-out", ca, "-days", "1", "-subj", "/CN=platepilot test CA"
    )
    openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=platepilot test broker")
    ext.write_text(f"subjectAltName={san}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")
    signing = ["-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-extfile", ext]
    openssl("x509", "-req", "-in", csr, *signing, "-out", cert, "-days", "1")
    return ca, cert, key


def _wait_for_connect_failure(publisher: MQTTPublisher, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while publisher.connect_failures == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert publisher.connect_failures >= 1, publisher.line()


def test_login_with_the_password_from_the_environment(login_broker: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    sub = Subscriber(login_broker, "pp", login=(USER, PASSWORD))
    config = MQTTConfig(enabled=True, port=login_broker, topic="pp", username=USER, password_env=PASSWORD_ENV)
    publisher = MQTTPublisher(config)
    try:
        publisher.publish(_event(1))
        publisher.publish(_event(2))
        assert publisher.wait_delivered(5), publisher.line()
        assert [json.loads(p)["track_id"] for p in sub.wait_for("pp/events", 2)] == [1, 2]
        assert publisher.connected and (publisher.delivered, publisher.failed, publisher.connect_failures) == (2, 0, 0)
    finally:
        publisher.close()
        sub.close()


@pytest.mark.parametrize(
    ("username", "password", "hint"),
    [
        (USER, "wrong", f"check output.mqtt.username ({USER}) and ${PASSWORD_ENV} (set)"),
        (USER, None, f"check output.mqtt.username ({USER}) and ${PASSWORD_ENV} (not set)"),
        (None, PASSWORD, "the broker wants a login: set output.mqtt.username"),
    ],
)
def test_a_refused_login_delivers_nothing_and_is_counted(
    login_broker: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    username: str | None,
    password: str | None,
    hint: str,
) -> None:
    if password is None:
        monkeypatch.delenv(PASSWORD_ENV, raising=False)
    else:
        monkeypatch.setenv(PASSWORD_ENV, password)
    sub = Subscriber(login_broker, "pp", login=(USER, PASSWORD))
    config = MQTTConfig(enabled=True, port=login_broker, topic="pp", username=username, password_env=PASSWORD_ENV)
    with caplog.at_level(logging.WARNING, logger="platepilot.store.mqtt"):
        publisher = MQTTPublisher(config)
        _wait_for_connect_failure(publisher)
        publisher.publish(_event(1))
        publisher.publish(_event(2))
        publisher.close(timeout=0.3)
    time.sleep(0.2)  # anything the broker had accepted would have reached the subscriber by now
    sub.close()
    assert not publisher.connected
    assert (publisher.delivered, publisher.failed) == (0, 2)
    assert sub.on("pp/events") == [] and sub.on("pp/available") == []
    warnings = [r.getMessage() for r in caplog.records if r.name == "platepilot.store.mqtt"]
    assert any("broker refused the connection (Not authorized)" in m and hint in m for m in warnings), warnings
    assert all(PASSWORD not in m for m in warnings)


def test_events_go_out_over_tls(tmp_path: Path) -> None:
    ca, cert, key = _make_certs(tmp_path, "IP:127.0.0.1")
    port = free_port()
    broker = start_mosquitto(tmp_path, port, tls=(ca, cert, key))
    try:
        sub = Subscriber(port, "pp", ca_file=ca)
        publisher = MQTTPublisher(
            MQTTConfig(enabled=True, host="127.0.0.1", port=port, topic="pp", tls=True, ca_file=ca)
        )
        assert publisher.where == f"mqtts://127.0.0.1:{port}"
        publisher.publish(_event(1))
        publisher.publish(_event(2))
        assert publisher.wait_delivered(5), publisher.line()
        assert [json.loads(p)["track_id"] for p in sub.wait_for("pp/events", 2)] == [1, 2]
        assert sub.wait_for("pp/available", 1) == ["online"]
        publisher.close()
        assert (publisher.delivered, publisher.failed, publisher.connect_failures) == (2, 0, 0)
        assert publisher.line().startswith(f"MQTT mqtts://127.0.0.1:{port} (not connected): 2 events delivered")
        sub.close()
    finally:
        stop_process(broker)


@pytest.mark.parametrize(
    ("san", "trusted_ca", "insecure", "why"),
    [
        ("DNS:broker.invalid", True, False, "IP address mismatch"),  # the certificate names another host
        ("DNS:broker.invalid", True, True, None),  # tls_insecure skips the name check only...
        ("IP:127.0.0.1", False, True, "certificate verify failed"),  # ...never the CA check
    ],
)
def test_tls_verifies_the_broker(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, san: str, trusted_ca: bool, insecure: bool, why: str | None
) -> None:
    ca, cert, key = _make_certs(tmp_path, san)
    ca_file = ca if trusted_ca else _make_certs(tmp_path, san, "other")[0]
    port = free_port()
    broker = start_mosquitto(tmp_path, port, tls=(ca, cert, key))
    config = MQTTConfig(enabled=True, host="127.0.0.1", port=port, tls=True, ca_file=ca_file, tls_insecure=insecure)
    try:
        with caplog.at_level(logging.WARNING, logger="platepilot.store.mqtt"):
            publisher = MQTTPublisher(config)
            if why is not None:
                _wait_for_connect_failure(publisher)
            publisher.publish(_event(1))
            delivered = publisher.wait_delivered(2 if why is None else 0.3)
            publisher.close(timeout=0)
    finally:
        stop_process(broker)
    if why is None:
        assert delivered and (publisher.delivered, publisher.failed, publisher.connect_failures) == (1, 0, 0)
    else:
        assert not delivered and (publisher.delivered, publisher.failed) == (0, 1)
        warnings = [r.getMessage() for r in caplog.records if r.name == "platepilot.store.mqtt"]
        assert any("cannot connect" in m and "certificate verify failed" in m and why in m for m in warnings), warnings


def test_a_bad_ca_file_at_start_is_one_clear_error(tmp_path: Path) -> None:
    """The config checks ca_file exists; the publisher still fails cleanly if it vanished or is not PEM."""
    ca_file = tmp_path / "ca.pem"
    ca_file.write_text("not a certificate\n")
    config = MQTTConfig(enabled=True, port=free_port(), tls=True, ca_file=ca_file)
    with pytest.raises(PlatepilotError, match=r"^output\.mqtt\.ca_file: cannot load CA file .*ca\.pem: ") as info:
        MQTTPublisher(config)
    assert "\n" not in str(info.value)
    ca_file.unlink()
    with pytest.raises(PlatepilotError, match=rf"^output\.mqtt\.ca_file: CA file {re.escape(str(ca_file))} not found$"):
        MQTTPublisher(config)


@pytest.mark.parametrize(
    ("yaml_text", "error"),
    [
        ("output: {mqtt: {topic: 'plates/#'}}", "output.mqtt.topic: String should match pattern"),
        ("output: {mqtt: {topic: 'plates/'}}", "output.mqtt.topic: String should match pattern"),
        ("output: {mqtt: {qos: 3}}", "output.mqtt.qos"),
        ("output: {mqtt: {brokr: x}}", "output.mqtt.brokr: unknown key (allowed: enabled, host, port, topic"),
        (
            "output: {mqtt: {tls: true, ca_file: /nonexistent/ca.pem}}",
            "output.mqtt.ca_file: CA file not found (got '/nonexistent/ca.pem')",
        ),
        ("output: {mqtt: {tls: true, ca_file: .}}", "output.mqtt.ca_file: CA file is not a file (got '.')"),
        ("output: {mqtt: {tls_insecure: true}}", "output.mqtt: ca_file and tls_insecure apply only with tls: true"),
        ("output: {mqtt: {username: ''}}", "output.mqtt.username: String should have at least 1 character"),
        ("output: {mqtt: {password_env: 'my pass'}}", "output.mqtt.password_env: String should match pattern"),
    ],
)
def test_mqtt_config_is_off_by_default_and_checked(tmp_path: Path, yaml_text: str, error: str) -> None:
    assert Settings().output.mqtt == MQTTConfig() and not MQTTConfig().enabled
    path = tmp_path / "c.yaml"
    path.write_text(yaml_text)
    with pytest.raises(PlatepilotError, match=re.escape(error)) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)
