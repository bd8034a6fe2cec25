"""Alerts: each event is matched once against the live watchlists; a block-list hit becomes one alert
to the log, MQTT (`<topic>/alerts`) and the webhook, unless the same entry alerted on that plate within
`watch.cooldown_seconds` (event time, so a car idling at a gate over many tracks alerts once).

An alert is JSON: `{"schema": 1, "event": <the event>, "list", "kind", "entry", "reason", "matched_text"}`
(`platepilot collect` reads it from MQTT: `store.wire.parse_alert`). Allow-list hits (known plates)
raise no alert; the dashboard shows them.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from platepilot.config import WatchConfig
from platepilot.store.events import PlateEvent
from platepilot.store.mqtt import MQTTPublisher
from platepilot.store.wire import SCHEMA
from platepilot.watch.lists import LiveWatchlists
from platepilot.watch.match import WatchHit
from platepilot.watch.webhook import WebhookSender

log = logging.getLogger(__name__)

_PRUNE_AT = 10_000  # cooldown keys kept before the expired ones are pruned
_TIMES_KEPT = 4  # alert times kept per key


def alert_json(event: PlateEvent, hit: WatchHit) -> dict[str, Any]:
    return {"schema": SCHEMA, "event": event.to_json(), **hit.to_json()}


class Alerter:
    """Call with each event (after fusion, once per track); thread-safe, returns without waiting on I/O.

    `alerts` counts alerts raised, `cooled` block hits held back by the cooldown.
    """

    def __init__(self, lists: LiveWatchlists, config: WatchConfig, mqtt: MQTTPublisher | None = None) -> None:
        """`lists` are loaded already (a bad file is an error at start); the webhook thread starts here."""
        self.lists, self.cooldown, self.mqtt = lists, config.cooldown_seconds, mqtt
        self.webhook = WebhookSender(config.webhook) if config.webhook.url is not None else None
        self.alerts = self.cooled = 0
        # (list, entry, plate) -> event times of its latest alerts, at most _TIMES_KEPT
        self._last: dict[tuple[str, str, str], list[float]] = {}
        self._lock = threading.Lock()

    def __call__(self, event: PlateEvent) -> list[WatchHit]:
        """Match `event`; send an alert for its best block-list hit. Returns every hit, best first."""
        hits = self.lists.matcher().match_event(event)
        block = next((h for h in hits if h.kind == "block"), None)
        if block is not None and self._due(event, block):
            self._send(event, block)
        return hits

    def _due(self, event: PlateEvent, hit: WatchHit) -> bool:
        plate = event.text if hit.entry.plate is None else ""  # a plate entry is one plate, however read
        key = (hit.list_name, hit.entry.label, plate)
        with self._lock:
            # events come out of order (two cameras, or a track that started first ending last): a cooldown
            # runs both ways from each of the latest alerts. Several are kept, so that one event dated far
            # off (a camera clock set wrong) cools only its own neighbourhood, not every event after it.
            times = self._last.get(key, [])
            if any(abs(event.first_seen - t) < self.cooldown for t in times):
                self.cooled += 1
                return False
            if len(self._last) >= _PRUNE_AT:
                self._last = {
                    k: ts for k, ts in self._last.items() if any(abs(event.first_seen - t) < self.cooldown for t in ts)
                }
            self._last[key] = [*times, event.first_seen][-_TIMES_KEPT:]
            self.alerts += 1
        return True

    def _send(self, event: PlateEvent, hit: WatchHit) -> None:
        note = f" ({hit.entry.note})" if hit.entry.note else ""
        where = f"{event.camera_id} track {event.track_id}"
        log.warning("ALERT %s on %s: list %s entry %s%s, %s", event.text, where, hit.list_name, hit.entry.label, note,
                    hit.reason)  # fmt: skip
        alert = alert_json(event, hit)
        if self.mqtt is not None:
            self.mqtt.publish_alert(alert, f"alert {where}")
        if self.webhook is not None:
            self.webhook.send(alert)

    def close(self, timeout: float = 5.0) -> None:
        if self.webhook is not None:
            self.webhook.close(timeout)

    def line(self) -> str:
        text = f"alerts: {self.alerts} raised, {self.cooled} held back by the cooldown"
        return text + (f"; {self.webhook.line()}" if self.webhook is not None else "")
