"""Publishing plate events to an MQTT broker (paho-mqtt), without ever blocking the pipeline.

Topics, after Frigate's (what Home Assistant users already wire up): `<topic>/events` gets one JSON
object per event (`store.wire.event_message`: `PlateEvent.to_json` plus a schema version, and the crop
with `send_crops`), `<topic>/<CAM>/plate` the camera's last plate text (retained,
so a dashboard shows it after a restart), `<topic>/available` `online` / `offline` (retained; the
broker itself publishes `offline` if the device vanishes), `<topic>/alerts` watchlist alerts (`watch/alerts.py`).

`publish` only hands the message to paho's queue; paho's network thread connects, reconnects with
backoff (1 s doubling to 30 s, the first connection included) and sends. With QoS 1 or 2 an event
published while the broker is unreachable waits in that queue (at most `max_queued`) and goes out on
reconnect; with QoS 0, or when the queue is full, it is lost. Nothing is lost silently: every event
is counted as delivered or failed, failures are logged (the first of each outage, then a summary at
`close`), and every event is in the events database regardless.

Authentication and TLS are optional: `username` with the password from the environment variable
`password_env` (read when the publisher starts, never from the YAML), and `tls` with `ca_file` (or
the system CAs) verifying the broker. A refused login or a failed TLS handshake counts as a failed
connection attempt and is retried like an unreachable broker.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from platepilot.config import MQTTConfig
from platepilot.errors import PlatepilotError
from platepilot.store.events import PlateEvent
from platepilot.store.wire import ALERTS_LEAF, event_message

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
KEEPALIVE_S = 30
COLLECT_MIN = 256
"""Pending events past which `_queue` forgets those the broker acknowledged; the bar then doubles with what
is left, so a long run keeps only the unacknowledged ones at a constant cost per event."""


class MQTTPublisher:
    """Publishes events as configured; `close` waits (bounded) for queued events, then disconnects.

    Counters: `delivered` (acknowledged by the broker; for QoS 0, written to the socket), `failed`
    (dropped: not connected at QoS 0, queue full, or still unsent at `close`), `connect_failures`.
    """

    def __init__(self, config: MQTTConfig) -> None:
        self.config = config
        self.failed = 0
        self.connect_failures = 0
        # Never held while calling paho, nor taken in its callbacks: paho calls on_publish holding its own
        # message lock, which publish() takes too, so sharing a lock with both would deadlock.
        self._lock = threading.Lock()
        self._pending: list[mqtt.MQTTMessageInfo] = []  # events not yet acknowledged
        self._collect_at = COLLECT_MIN  # `_queue` drops acknowledged events once this many are pending
        self._delivered = 0
        self._warned = False  # a failure was logged since the last good connection
        self._connected = threading.Event()
        self._subscriptions: list[str] = []
        client = mqtt.Client(CallbackAPIVersion.VERSION2)  # the broker names it (clean session)
        client.max_queued_messages_set(config.max_queued)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.will_set(self._topic("available"), "offline", qos=1, retain=True)
        authenticate(client, config)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.connect_async(config.host, config.port, KEEPALIVE_S)
        client.loop_start()
        self._client = client

    @property
    def where(self) -> str:
        return broker_url(self.config)

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def pending(self) -> int:
        with self._lock:
            self._collect()
            return len(self._pending)

    @property
    def delivered(self) -> int:
        with self._lock:
            self._collect()
            return self._delivered

    def _collect(self) -> None:
        """Count the pending events the broker acknowledged since (under `_lock`)."""
        waiting = [info for info in self._pending if not info.is_published()]
        self._delivered += len(self._pending) - len(waiting)
        self._pending = waiting

    def publish(self, event: PlateEvent) -> None:
        """Queue `event` for the broker; returns at once (safe from any thread)."""
        self.send(event)
        # a state, not a record: QoS 0 keeps it out of the event queue (the next event refreshes it)
        self._client.publish(self._topic(f"{event.camera_id}/plate"), event.text, qos=0, retain=True)

    def send(self, event: PlateEvent) -> None:
        """Queue `event` on `<topic>/events` only (the edge backlog sends old events again this way)."""
        crop = _read_crop(event.crop_path) if self.config.send_crops else None
        self._queue("events", event_message(event, crop), f"event {event.camera_id} track {event.track_id}")

    def publish_alert(self, alert: dict[str, Any], what: str) -> None:
        """Queue a watchlist alert on `<topic>/alerts` like an event (same QoS, queue and counters)."""
        self._queue(ALERTS_LEAF, json.dumps(alert).encode("utf-8"), what)

    def subscribe(self, leaf: str, handler: Callable[[bytes], None]) -> None:
        """Call `handler(payload)` (on paho's thread) for each message on `<topic>/<leaf>`, QoS 1, from every
        connection on."""
        topic = self._topic(leaf)
        self._client.message_callback_add(topic, lambda _client, _userdata, message: handler(bytes(message.payload)))
        self._subscriptions.append(topic)
        if self.connected:
            self._client.subscribe(topic, qos=1)

    def _queue(self, leaf: str, payload: bytes, what: str) -> None:
        qos = self.config.qos
        info = self._client.publish(self._topic(leaf), payload, qos=qos)
        queued = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0  # kept by paho, sent on reconnect
        )
        with self._lock:
            if queued:
                info.rc = MQTTErrorCode.MQTT_ERR_SUCCESS  # queued all the same: is_published() tells when it is out
                self._pending.append(info)
                if len(self._pending) >= self._collect_at:
                    self._collect()
                    self._collect_at = max(COLLECT_MIN, 2 * len(self._pending))
            else:
                self.failed += 1
                self._warn(f"{what} not published ({mqtt.error_string(info.rc)})")

    def wait_delivered(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds until no event is pending; True if none is."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.05)
        return not self.pending

    def close(self, timeout: float = 5.0) -> None:
        """Give queued events up to `timeout` seconds to go out (a broker that is down gets that long to
        come back), count the rest as failed, disconnect."""
        self.wait_delivered(timeout)
        with self._lock:
            self._collect()
            lost, self._pending = len(self._pending), []
            self.failed += lost
        if lost:
            log.warning("MQTT %s: %d events not delivered (they are in the events database)", self.where, lost)
        if self.connected:
            info = self._client.publish(self._topic("available"), "offline", qos=1, retain=True)
            with contextlib.suppress(ValueError, RuntimeError):  # the connection dropped: the broker sent the will
                info.wait_for_publish(1.0)
        self._client.disconnect()
        self._client.loop_stop()

    def line(self) -> str:
        state = "connected" if self.connected else "not connected"
        return (
            f"MQTT {self.where} ({state}): {self.delivered} events delivered, {self.pending} queued, "
            f"{self.failed} failed, {self.connect_failures} failed connection attempts"
        )

    def _topic(self, leaf: str) -> str:
        return f"{self.config.topic}/{leaf}"

    def _login_hint(self, reason: Any) -> str:
        if reason.getName() not in ("Bad user name or password", "Not authorized"):  # paho maps v3.1.1 codes too
            return ""
        config = self.config
        if config.username is None:
            return "; the broker wants a login: set output.mqtt.username"
        password = "set" if config.password_env in os.environ else "not set"
        return f"; check output.mqtt.username ({config.username}) and ${config.password_env} ({password})"

    def _warn(self, message: str) -> None:
        """Log the first failure of each outage (the counters and `close` tell the rest)."""
        if not self._warned:
            self._warned = True
            log.warning("MQTT %s: %s", self.where, message)

    # paho callbacks, on its network thread -------------------------------------------------------
    def _on_connect(self, client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        if reason.is_failure:
            self.connect_failures += 1
            self._warn(f"broker refused the connection ({reason}){self._login_hint(reason)}")
            return
        self._connected.set()
        self._warned = False
        for topic in self._subscriptions:
            client.subscribe(topic, qos=1)
        client.publish(self._topic("available"), "online", qos=1, retain=True)
        log.info("MQTT %s: connected", self.where)

    def _on_connect_fail(self, _client: mqtt.Client, _userdata: Any) -> None:
        self.connect_failures += 1
        error = sys.exc_info()[1]  # paho calls this while handling the OSError: refused, timeout, TLS handshake
        why = f" ({error})" if isinstance(error, OSError) else ""
        self._warn(f"cannot connect{why}; retrying every {RECONNECT_MIN_S}-{RECONNECT_MAX_S} s, events are queued")

    def _on_disconnect(self, _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._connected.clear()
        if reason.is_failure:
            self._warn(f"connection lost ({reason}); reconnecting, events are queued")


def broker_url(config: MQTTConfig) -> str:
    """`mqtt://host:port` (mqtts with TLS): how log lines name the broker."""
    return f"{'mqtts' if config.tls else 'mqtt'}://{config.host}:{config.port}"


def authenticate(client: mqtt.Client, config: MQTTConfig) -> None:
    """The login (password from `password_env`) and TLS of `config` on `client`."""
    if config.username is not None:
        client.username_pw_set(config.username, os.environ.get(config.password_env))
    if config.tls:
        _set_tls(client, config)


def _read_crop(path: str) -> bytes | None:
    """The crop's JPEG bytes; None when the event has none or it is gone (the event goes without it)."""
    if not path:
        return None
    try:
        return Path(path).read_bytes()
    except OSError:
        return None


def _set_tls(client: mqtt.Client, config: MQTTConfig) -> None:
    """TLS verifying the broker against `ca_file` (None: the system CAs); a bad CA file is one clear error."""
    ca_file = config.ca_file
    if ca_file is not None and not ca_file.is_file():  # the config checked it; it may have gone since
        raise PlatepilotError(f"output.mqtt.ca_file: CA file {ca_file} not found")
    try:
        client.tls_set(ca_certs=None if ca_file is None else str(ca_file))
    except OSError as exc:  # unreadable, or not PEM certificates (ssl.SSLError)
        raise PlatepilotError(f"output.mqtt.ca_file: cannot load CA file {ca_file}: {exc}") from None
    client.tls_insecure_set(config.tls_insecure)
