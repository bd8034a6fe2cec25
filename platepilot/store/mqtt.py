"""Publishing plate events to an MQTT broker (paho-mqtt), without ever blocking the pipeline.

Topics, after Frigate's (what Home Assistant users already wire up): `<topic>/events` gets one JSON
object per event (`PlateEvent.to_json`), `<topic>/<CAM>/plate` the camera's last plate text (retained,
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
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from platepilot.config import MQTTConfig
from platepilot.errors import PlatepilotError
from platepilot.store.events import PlateEvent

log = logging.getLogger(__name__)

RECONNECT_MIN_S = 1
RECONNECT_MAX_S = 30
KEEPALIVE_S = 30


class MQTTPublisher:
    """Publishes events as configured; `close` waits (bounded) for queued events, then disconnects.

    Counters: `delivered` (acknowledged by the broker; for QoS 0, written to the socket), `failed`
    (dropped: not connected at QoS 0, queue full, or still unsent at `close`), `connect_failures`.
    """

    def __init__(self, config: MQTTConfig) -> None:
        self.config = config
        self.delivered = 0
        self.failed = 0
        self.connect_failures = 0
        self._lock = threading.Lock()
        self._pending: set[int] = set()  # message ids of events not yet acknowledged
        self._warned = False  # a failure was logged since the last good connection
        self._connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2)  # the broker names it (clean session)
        client.max_queued_messages_set(config.max_queued)
        client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        client.will_set(self._topic("available"), "offline", qos=1, retain=True)
        if config.username is not None:
            client.username_pw_set(config.username, os.environ.get(config.password_env))
        if config.tls:
            _set_tls(client, config)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.connect_async(config.host, config.port, KEEPALIVE_S)
        client.loop_start()
        self._client = client

    @property
    def where(self) -> str:
        scheme = "mqtts" if self.config.tls else "mqtt"
        return f"{scheme}://{self.config.host}:{self.config.port}"

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._pending)

    def publish(self, event: PlateEvent) -> None:
        """Queue `event` for the broker; returns at once (safe from any thread)."""
        self._queue("events", event.to_json(), f"event {event.camera_id} track {event.track_id}")
        # a state, not a record: QoS 0 keeps it out of the event queue (the next event refreshes it)
        self._client.publish(self._topic(f"{event.camera_id}/plate"), event.text, qos=0, retain=True)

    def publish_alert(self, alert: dict[str, Any], what: str) -> None:
        """Queue a watchlist alert on `<topic>/alerts` like an event (same QoS, queue and counters)."""
        self._queue("alerts", alert, what)

    def _queue(self, leaf: str, message: dict[str, Any], what: str) -> None:
        qos = self.config.qos
        payload = json.dumps(message)
        with self._lock:  # held across publish: paho may acknowledge before publish() returns the mid
            info = self._client.publish(self._topic(leaf), payload, qos=qos)
            queued = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
                info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos > 0  # kept by paho, sent on reconnect
            )
            if queued:
                self._pending.add(info.mid)
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
            lost, self._pending = len(self._pending), set()
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

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, _reason: Any, _props: Any) -> None:
        with self._lock:
            if mid in self._pending:
                self._pending.discard(mid)
                self.delivered += 1


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
