"""The fleet's MQTT messages, one home for both sides: an event on `<topic>/events` (what the edge
publishes, what `platepilot collect` parses) and an acknowledgement on `<topic>/ack`.

An event message is `PlateEvent.to_json()` plus `schema` (this format's version) and, with
`output.mqtt.send_crops`, `crop_jpeg`: the best crop's JPEG bytes in base64. An acknowledgement is
`{"schema": 1, "device_id": ..., "event_ids": [...]}`: the events of that device the collector holds.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from pydantic import TypeAdapter, ValidationError

from platepilot.config import DEVICE_ID_PATTERN
from platepilot.store.events import PlateEvent, events_table

SCHEMA = 1
_EVENT = TypeAdapter(PlateEvent)
_LIMITS = {c.name: c.type.length for c in events_table.columns if isinstance(c.type, sa.String) and c.type.length}


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


def parse_event(payload: bytes) -> EventMessage:
    """The event in `payload`, checked whole (types, column lengths, an id, a device) before anything is
    written; BadMessage otherwise."""
    data = _object(payload)
    crop = data.pop("crop_jpeg", None)
    try:
        event = _EVENT.validate_python(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        raise BadMessage(f"{'.'.join(map(str, error['loc']))}: {error['msg']}") from None
    if not event.event_id or not re.fullmatch(DEVICE_ID_PATTERN, event.device_id):
        raise BadMessage(f"no event_id, or device_id {event.device_id!r} is not 1-64 letters, digits, '.', '_', '-'")
    for name, length in _LIMITS.items():
        value = getattr(event, name, None)
        if isinstance(value, str) and len(value) > length:
            raise BadMessage(f"{name}: longer than {length} characters")
    if crop is None:
        return EventMessage(event)
    try:
        return EventMessage(event, base64.b64decode(crop, validate=True))
    except (binascii.Error, TypeError, ValueError):
        raise BadMessage("crop_jpeg: not base64") from None


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
