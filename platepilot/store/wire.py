"""The fleet's MQTT messages, one home for both sides: an event on `<topic>/events` (what the edge
publishes, what `platepilot collect` parses), a watchlist alert on `<topic>/alerts` and an
acknowledgement on `<topic>/ack`.

An event message is `PlateEvent.to_json()` plus `schema` (this format's version) and, with
`output.mqtt.send_crops`, `crop_jpeg`: the best crop's JPEG bytes in base64. An acknowledgement is
`{"schema": 1, "device_id": ..., "event_ids": [...]}`: the events of that device the collector holds.
An alert is `watch.alerts.alert_json`: `{"schema", "event", "list", "kind", "entry", "reason",
"matched_text"}`, its event as in an event message (so it has the event's id: one alert per event).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError

from platepilot.config import DEVICE_ID_PATTERN
from platepilot.store.events import PlateEvent, alerts_table, events_table

SCHEMA = 1
ALERTS_LEAF = "alerts"
_EVENT = TypeAdapter(PlateEvent)
MAX_EPOCH_S = 1e11  # the year 5138: a larger time is no time a camera saw
MAX_INT = 2**63 - 1  # the largest BIGINT; SQLite's INTEGER too


def _limits(table: sa.Table) -> dict[str, int]:
    return {c.name: c.type.length for c in table.columns if isinstance(c.type, sa.String) and c.type.length}


_LIMITS, _ALERT_LIMITS = _limits(events_table), _limits(alerts_table)


class BadMessage(ValueError):
    """A message that is not a valid event or acknowledgement (says why in one line)."""


@dataclass(frozen=True, slots=True)
class EventMessage:
    event: PlateEvent  # its event_id and device_id set
    crop_jpeg: bytes | None = None


def event_message(event: PlateEvent, crop_jpeg: bytes | None = None) -> bytes:
    message: dict[str, Any] = {**event.to_json(), "schema": SCHEMA}
    if crop_jpeg is not None:
        message["crop_jpeg"] = base64.b64encode(crop_jpeg).decode("ascii")
    return json.dumps(message).encode("utf-8")


@dataclass(frozen=True, slots=True)
class AlertMessage:
    event: PlateEvent  # the event that matched, its event_id and device_id set
    list_name: str
    kind: str
    entry: dict[str, Any]  # the watchlist entry, as the device had it
    reason: str
    matched_text: str


def parse_event(payload: bytes) -> EventMessage:
    """The event in `payload`, checked whole (types, column lengths, an id, a device) before anything is
    written; BadMessage otherwise."""
    data = _object(payload)
    crop = data.pop("crop_jpeg", None)
    event = _event(data)
    if crop is None:
        return EventMessage(event)
    try:
        return EventMessage(event, base64.b64decode(crop, validate=True))
    except (binascii.Error, TypeError, ValueError):
        raise BadMessage("crop_jpeg: not base64") from None


def parse_alert(payload: bytes) -> AlertMessage:
    """The watchlist alert in `payload`, checked whole like an event; BadMessage otherwise."""
    data = _object(payload)
    event = data.get("event")
    if not isinstance(event, dict):
        raise BadMessage("event: an alert needs its event (a JSON object)")
    entry = data.get("entry")
    if not isinstance(entry, dict):
        raise BadMessage("entry: an alert needs its watchlist entry (a JSON object)")
    list_name, kind, reason, matched = (_text(data, key) for key in ("list", "kind", "reason", "matched_text"))
    alert = AlertMessage(_event(event), list_name, kind, entry, reason, matched)
    _fits(alert_row(alert), _ALERT_LIMITS)
    return alert


def alert_row(alert: AlertMessage) -> dict[str, Any]:
    """The `alerts_table` row of `alert` (without `id` and `received_at`)."""
    event = alert.event
    return {
        "event_id": event.event_id, "device_id": event.device_id, "camera_id": event.camera_id,
        "first_seen": event.first_seen, "text": event.text, "list_name": alert.list_name, "kind": alert.kind,
        "entry": json.dumps(alert.entry), "reason": alert.reason, "matched_text": alert.matched_text,
    }  # fmt: skip


def _text(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise BadMessage(f"{key}: an alert needs it as a string")
    return value


def _event(data: dict[str, Any]) -> PlateEvent:
    try:
        event = _EVENT.validate_python(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise BadMessage(f"{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
    if not event.event_id or not re.fullmatch(DEVICE_ID_PATTERN, event.device_id):
        raise BadMessage(
            f"no event_id, or device_id {event.device_id!r} is not 1-64 letters, digits, '.', '_', '-' "
            "starting with a letter, digit or '_'"
        )
    if not all(math.isfinite(t) and 0 <= t < MAX_EPOCH_S for t in (event.first_seen, event.last_seen)):
        raise BadMessage("first_seen, last_seen: an event needs both as epoch seconds")
    if not all(0 <= n <= MAX_INT for n in (event.track_id, event.reads)):
        raise BadMessage("track_id, reads: an event needs both as counts a database column holds")
    _fits({name: getattr(event, name, None) for name in _LIMITS}, _LIMITS)
    return event


def _fits(values: dict[str, Any], limits: dict[str, int]) -> None:
    """BadMessage when a string is longer than its column."""
    for name, length in limits.items():
        value = values.get(name)
        if isinstance(value, str) and len(value) > length:
            raise BadMessage(f"{name}: longer than {length} characters")


def ack_message(device_id: str, event_ids: list[str]) -> bytes:
    return json.dumps({"schema": SCHEMA, "device_id": device_id, "event_ids": event_ids}).encode("utf-8")


def parse_ack(payload: bytes) -> tuple[str, list[str]]:
    """(device_id, event ids) of an acknowledgement; BadMessage otherwise."""
    data = _object(payload)
    device, ids = data.get("device_id"), data.get("event_ids")
    if not isinstance(device, str) or not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadMessage("an acknowledgement needs device_id and a list of event_ids")
    return device, ids


def _object(payload: bytes) -> dict[str, Any]:
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadMessage(f"not JSON ({exc})") from None
    if not isinstance(data, dict):
        raise BadMessage(f"not a JSON object but {type(data).__name__}")
    schema = data.pop("schema", None)
    if schema != SCHEMA:
        raise BadMessage(f"unknown schema version {schema!r} (this version reads {SCHEMA})")
    return data
