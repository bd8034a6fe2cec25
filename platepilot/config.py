"""Every setting of the edge runtime: frozen pydantic models, one YAML file, defaults that run as is.

The file is `platepilot.yaml` in the working directory, or the file named by `$PLATEPILOT_CONFIG`.
Keys mirror the models below (`ocr.ocr_min_confidence`, `cameras[0].source`, ...); anything left out
keeps its default, and an unknown key is an error rather than silently ignored.
"""

from __future__ import annotations

import importlib
import os
import re
import socket
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import ErrorDetails

from platepilot.errors import PlatepilotError
from platepilot.plates.charset import normalize
from platepilot.plates.states import state_code

CONFIG_ENV = "PLATEPILOT_CONFIG"
DEFAULT_CONFIG_FILE = Path("platepilot.yaml")
_MAX_REPORTED_ERRORS = 3

OCREngineName = Literal["auto", "cascade", "crnn", "plateocr", "paddle", "easyocr"]
PlateOCRMember = Literal["paddle", "easyocr", "crnn"]


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CameraConfig(_Model):
    """One camera; its id prefixes crop file names (`CAM1_track7.jpg`) and events."""

    id: str = Field(default="CAM1", description="Camera id: letters, digits, '-'.", pattern=r"^[A-Za-z0-9-]{1,32}$")
    source: str = Field(
        default="demo",
        description="Video file, image folder, RTSP/HTTP URL, USB camera index ('0'), or 'demo'.",
        min_length=1,
    )
    fps_limit: float | None = Field(
        default=None,
        description="Frames per second to process at most, by frame time (the others are skipped before "
        "detection, to spare the CPU); null processes every frame. A folder of photos (stills) is always read whole.",
        gt=0,
        le=240,
    )
    queue_size: int = Field(
        default=4, description="Frames buffered between capture and detection; older ones are dropped.", ge=1, le=1000
    )
    stills: bool = Field(
        default=True,
        description="An image folder holds separate photos (gate or lot snapshots, one car after another at the "
        "same spot): each plate of each image is read on its own and makes its own event. false: the images are "
        "consecutive frames of one camera, tracked across images as video is. Other sources ignore it.",
    )
    follow: bool = Field(
        default=False,
        description="An image folder is a camera's upload folder (snapshots sent by FTP): after the photos in it, "
        "keep watching it and read each photo that arrives, until the run stops. Any other source is refused with it.",
    )


class DetectorConfig(_Model):
    """The plate detector: PP-OCRv6 text lines, the bundled plate detector, or your own ONNX."""

    kind: Literal["auto", "platenet", "fast", "textdet"] = Field(
        default="auto",
        description="auto: model_path when set, else the best measured built-in detector (today the bundled "
        "platenet, which finds and reads more real plates than textdet, docs/detector.md); platenet: the bundled plate "
        "detector (whole plates, trained by `platepilot detector train`), or model_path's; fast: the bundled "
        "student of platenet, 2-3x faster, finding about one plate in a hundred fewer in close-ups but far fewer where "
        "plates are small in the frame (68% of UCSD's plates set in 720p frames); textdet: PP-OCRv6 "
        "text detection + a plate-shape filter (serial lines).",
    )
    model_path: Path | None = Field(
        default=None,
        description="ONNX detector: one trained by `platepilot detector train` (a .json sidecar beside it) or "
        "a YOLO export; null uses the bundled default.",
    )
    confidence_threshold: float | None = Field(
        default=None,
        description="Minimum detection score; null uses the model's own (its sidecar), 0.25 for YOLO.",
        ge=0,
        le=1,
    )
    iou_threshold: float = Field(
        default=0.45, description="IoU above which non-max suppression merges boxes.", ge=0, le=1
    )
    text_check_below: float = Field(
        default=0.5,
        description="Plate detectors (not textdet): a box scoring below this counts only if the bundled CRNN reads "
        "at least text_check_chars characters in it (0: every box counts). Most false boxes on real scenes were "
        "lamps, emblems and foliage scored below 0.5, with no text.",
        ge=0,
        le=1,
    )
    text_check_chars: int = Field(
        default=3, description="Characters a box scoring below text_check_below must hold.", ge=1, le=8
    )
    input_size: int = Field(
        default=640, description="YOLO models: square input side in pixels.", ge=32, le=4096, multiple_of=32
    )
    yolo_layout: Literal["auto", "v5", "v8", "nms"] = Field(
        default="auto", description="YOLO output layout: v5, v8 (also v9/v11), nms (NMS in graph), or auto."
    )
    textdet_max_side: int = Field(
        default=640,
        description="kind textdet, on video, streams and the demo: longest frame side as the network sees "
        "it, in pixels.",
        ge=128,
        le=4096,
        multiple_of=32,
    )
    textdet_still_max_side: int = Field(
        default=960,
        description="kind textdet, on folders of photos (cameras[].stills), which have no frame rate to keep: "
        "small plates need the larger view (UCSD scenes: 98% found at 960, 91% at 640).",
        ge=128,
        le=4096,
        multiple_of=32,
    )


class OCRConfig(_Model):
    """The plate reader; `auto` is the best measured reader (see `platepilot config show`)."""

    engine: OCREngineName = Field(
        default="auto",
        description="auto, cascade, crnn, plateocr, paddle or easyocr. cascade: the CRNN reads every crop and "
        "PlateOCR only those it reads less surely than cascade_sure. auto: the cascade with the bundled CRNN, unless "
        "the CRNN deployed at model_path beat PlateOCR at its promotion gate (then it reads alone); a deployed CRNN "
        "that did not but helped PlateOCR there becomes its crnn member, and reads first in their cascade if that "
        "cascade read as well at the gate (else PlateOCR reads every crop).",
    )
    model_path: Path = Field(
        default=Path("models/crnn_florida/florida_plate_ocr.onnx"),
        description="CRNN ONNX model (with JSON sidecar).",
    )
    ocr_min_confidence: float = Field(default=0.50, description="Reads below this are dropped.", ge=0, le=1)
    ocr_max_confidence_target: float = Field(
        default=0.80, description="A track stops being re-read once a read reaches this.", ge=0, le=1
    )
    agree_reads: int = Field(
        default=2,
        description="A track stops being re-read once this many accepted reads agree on its text and one of them "
        "reaches ocr_max_confidence_target (one confident read of a far or blurred plate can be wrong).",
        ge=1,
        le=100,
    )
    min_plate_chars: int = Field(
        default=3,
        description="Reads shorter than this make no event: on real scenes 2-character reads were fragments of "
        "badges, dealer frames and tail lights, not vanity plates (set 2 to keep those).",
        ge=1,
        le=8,
    )
    workers: int = Field(default=2, description="OCR worker threads shared by all cameras.", ge=1, le=64)
    format_prior: bool = Field(default=True, description="Prefer candidate texts that match a known plate format.")
    site_state: str | None = Field(
        default=None,
        description="The state nearly all of this site's plates come from (a postal code or name). The format "
        "prior then takes a plate whose state was not identified for one of its, and may change one character the "
        "reader was unsure of to fit that state's formats (LVAH764 -> 4VAH764 in California). null: Florida's and "
        "the common US formats, no such change.",
    )
    plateocr_members: tuple[PlateOCRMember, ...] = Field(
        default=("paddle", "crnn"),
        description="PlateOCR ensemble members: paddle (PP-OCRv6), easyocr (needs the ensemble extra), crnn "
        "(the trained model at model_path, else the bundled one).",
        min_length=1,
    )
    plateocr_lines: bool = Field(
        default=True, description="PlateOCR: in crops with several lines of text, read only the plate line."
    )
    deblur_below: float = Field(
        default=0.95,
        description="A CRNN read (alone, or as PlateOCR's member) less confident than this has its crop's motion "
        "smear estimated (blur_model_path); a crop smeared 3 px or more is read again deconvolved along it, and "
        "the most confident read wins (platepilot.ocr.deblur). 0: never.",
        ge=0,
        le=1,
    )
    blur_model_path: Path | None = Field(
        default=None,
        description="The blur estimator deblurring uses (`platepilot blur train`); null: the bundled one.",
    )
    cascade_sure: float = Field(
        default=0.999,
        description="engine cascade (and auto, but for a deployed CRNN that reads alone or only as PlateOCR's "
        "member): a read of the CRNN alone at least this "
        "confident is final; the others are read by PlateOCR. On the dev sets 0.999 read as many plates as PlateOCR "
        "with 42-45% of the crops sent to it, 0.995 one crop fewer with 26-27% (benchmarks/cascade_sweep.py "
        "--labels measures your own).",
        ge=0,
        le=1,
    )
    band_sure: float | None = Field(
        default=0.99,
        description="Whole-plate crops from a plate detector: the CRNN first reads the plate's middle band, cut "
        "twice, and two reads of the same text at least this confident are final; only the other crops have their "
        "text lines searched (PP-OCRv6's text detector, most of a read's cost). In the cascade such a read is final "
        "too, even below cascade_sure: it never reaches PlateOCR (platepilot.ocr.band). null: search every crop's "
        "lines.",
        ge=0,
        le=1,
    )
    views_below: float = Field(
        default=0.99,
        description="A read of the CRNN alone (engine crnn, or auto with a deployed CRNN that beat PlateOCR) less "
        "confident than this is read again from the crop grown and cut by a few percent, and the three reads vote "
        "(platepilot.ocr.views). 0: never.",
        ge=0,
        le=1,
    )

    @field_validator("site_state")
    @classmethod
    def _postal_code(cls, state: str | None) -> str | None:
        return None if state is None else state_code(state)

    @field_validator("plateocr_members")
    @classmethod
    def _unique_members(cls, members: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(members)) != len(members):
            raise ValueError(f"plateocr_members must not repeat a member, got {list(members)}")
        return members

    @model_validator(mode="after")
    def _min_below_target(self) -> OCRConfig:
        if self.ocr_min_confidence > self.ocr_max_confidence_target:
            raise ValueError(
                f"ocr_min_confidence ({self.ocr_min_confidence}) must not exceed "
                f"ocr_max_confidence_target ({self.ocr_max_confidence_target})"
            )
        return self


class StateConfig(_Model):
    """State identification of each read (which state issued the plate)."""

    enabled: bool = Field(default=True, description="Classify the state of every read plate.")
    model_path: Path | None = Field(
        default=None,
        description="State classifier ONNX (a .json sidecar beside it), from `platepilot state train`; "
        "null uses the bundled one.",
    )
    min_confidence: float = Field(
        default=0.5, description="Reads whose best state is less likely than this say `unknown`.", ge=0, le=1
    )
    min_sharpness: float = Field(
        default=1500.0,
        description="Crops softer than this (variance of the Laplacian at 48 px high, as the crop quality measures "
        "it) get no state from the classifier, only from a name read on the plate: it learnt sharp photos (99% of "
        "its training photos are sharper than 1,700) and named wrong states on soft camera crops (docs/states.md). "
        "0 trusts it on every crop.",
        ge=0,
    )
    read_names: bool = Field(
        default=True,
        description="Also read the state name printed on the plate (PaddleOCR det + rec, fuzzy-matched) where "
        "the classifier is unsure (read_names_below); a name read overrides the classifier. Far more accurate "
        "on legible plates; ~15x the classifier's time per plate read.",
    )
    name_min_score: float = Field(
        default=85.0, description="Fuzzy-match score (0-100) a line needs to count as a state name.", ge=50, le=100
    )
    read_names_below: float = Field(
        default=0.8,
        description="With read_names: read the name only on crops whose best classified state is less likely "
        "than this (1: on every crop). Sure classifications skip the slow name reading (docs/states.md).",
        ge=0,
        le=1,
    )


class TrackerConfig(_Model):
    """Multi-object tracking of plates, per camera; ages and hits count frames."""

    max_age: int = Field(
        default=30, description="Frames a track survives without a matching detection.", ge=1, le=10_000
    )
    min_hits: int = Field(default=3, description="Matched frames before a track is confirmed.", ge=1, le=1_000)
    start_score: float = Field(
        default=0.4,
        description="Detector score a detection needs to start a track; weaker ones only extend one (ByteTrack). "
        "The bundled plate detector scores large, close plates 0.35-0.5.",
        ge=0,
        le=1,
    )
    iou_threshold: float = Field(default=0.3, description="Minimum IoU to match a detection to a track.", ge=0, le=1)
    max_gap_seconds: float = Field(
        default=2.0, description="A track ends when unseen this long (seconds, frame timestamps).", gt=0, le=3600
    )


class MQTTConfig(_Model):
    """Publishing each event to an MQTT broker, in the topic style Frigate / Home Assistant users expect."""

    enabled: bool = Field(default=False, description="Publish events over MQTT.")
    host: str = Field(default="localhost", description="Broker host name or address.", min_length=1)
    port: int = Field(default=1883, description="Broker TCP port.", ge=1, le=65535)
    topic: str = Field(
        default="platepilot",
        description="Topic prefix: <topic>/events (JSON per event), <topic>/<CAM>/plate (last text, retained), "
        "<topic>/available (online/offline, retained), <topic>/alerts (watchlist alerts).",
        pattern=r"^[^#+\s/]+(/[^#+\s/]+)*$",
    )
    qos: Literal[0, 1, 2] = Field(
        default=1, description="MQTT QoS of events; 1 or 2 keep events queued while the broker is unreachable."
    )
    max_queued: int = Field(
        default=10_000,
        description="Events held while the broker is unreachable; beyond this new ones are dropped (counted).",
        ge=1,
        le=1_000_000,
    )
    username: str | None = Field(
        default=None, description="User name for the broker; null connects without authentication.", min_length=1
    )
    password_env: str = Field(
        default="PLATEPILOT_MQTT_PASSWORD",
        description="Environment variable holding the broker password, read when the run starts (never put the "
        "password in this file); unset sends the user name without a password.",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
    )
    tls: bool = Field(default=False, description="Connect over TLS (mqtts://; brokers usually listen on port 8883).")
    ca_file: Path | None = Field(
        default=None, description="TLS: PEM CA bundle to verify the broker's certificate; null uses the system CAs."
    )
    tls_insecure: bool = Field(
        default=False,
        description="TLS: skip the check that the certificate names the host (UNSAFE: anyone holding a "
        "certificate from the CA can impersonate the broker); for a LAN broker whose certificate lacks its address.",
    )
    send_crops: bool = Field(
        default=False,
        description="Put each event's best crop in its <topic>/events message (JPEG, base64) for `platepilot "
        "collect` to store centrally.",
    )

    @field_validator("ca_file")
    @classmethod
    def _ca_file_exists(cls, ca_file: Path | None) -> Path | None:
        if ca_file is not None and not ca_file.is_file():
            what = "is not a file" if ca_file.exists() else "not found"
            raise ValueError(f"CA file {what}")
        return ca_file

    @model_validator(mode="after")
    def _tls_options_need_tls(self) -> MQTTConfig:
        if not self.tls and (self.ca_file is not None or self.tls_insecure):
            raise ValueError("ca_file and tls_insecure apply only with tls: true (set it, or remove them)")
        return self


class RetentionConfig(_Model):
    """How long crops and events are kept and how much disk they may take; `run` prunes every
    `interval_minutes`, `platepilot prune` on demand. Crops listed in gate.labels are never deleted."""

    max_age_days: float | None = Field(
        default=None,
        description="Crops and events older than this (days) are deleted; null keeps them for ever.",
        gt=0,
        le=36_500,
    )
    max_disk_gb: float | None = Field(
        default=None,
        description="Crops plus the events files (database, JSON lines) are kept under this many GB: the oldest "
        "crops are deleted first and their events kept, marked (crop_path empty, crop_note says why); null: no cap.",
        gt=0,
    )
    min_free_gb: float = Field(
        default=0.5,
        description="Free space (GB) on the crops disk below which no crop is written; events go on without "
        "crops (counted as crops_failed). 0 writes until the disk is full.",
        ge=0,
    )
    interval_minutes: float = Field(
        default=10.0, description="Minutes between two prunes while `platepilot run` runs.", gt=0, le=1440
    )


class OutputConfig(_Model):
    """Where crops and events go."""

    crops_dir: Path = Field(
        default=Path("output/crops"), description="Best crops: <dir>/YYYY-MM-DD/<CAM>_track<N>.jpg."
    )
    events_db_url: str = Field(
        default="sqlite:///output/events.db",
        description="SQLAlchemy URL of the events database.",
        min_length=1,
    )
    events_jsonl: Path | None = Field(
        default=Path("output/events.jsonl"), description="Events appended as JSON lines; null disables."
    )
    mqtt: MQTTConfig = Field(default=MQTTConfig(), description="Optional MQTT publishing of events.")
    stats_file: Path | None = Field(
        default=Path("output/stats.json"),
        description="Per-camera stats (fps, queue, detector and OCR ms), rewritten every few seconds while "
        "running, for `platepilot dashboard`; null disables.",
    )
    retention: RetentionConfig = Field(
        default=RetentionConfig(), description="Deleting old crops and events; the free-disk floor of crops."
    )


WatchKind = Literal["block", "allow"]
_HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-3]|24):([0-5]\d)$")


def parse_hours(text: str) -> tuple[int, int]:
    """`22:00-06:00` -> (1320, 360): minutes after midnight, local time; a range may wrap past midnight."""
    match = _HOURS.match(text)
    if match is None or (match[3] == "24" and match[4] != "00"):
        raise ValueError(f"active hours {text!r}: use HH:MM-HH:MM, e.g. 22:00-06:00")
    start, end = int(match[1]) * 60 + int(match[2]), int(match[3]) * 60 + int(match[4])
    if start == end:
        raise ValueError(f"active hours {text!r}: start and end are the same (leave hours out for all day)")
    return start, end


def nested_repeat(regex: str) -> bool:
    """Whether `regex` nests unbounded repetitions three deep (`((A+)+)+`): its backtracking on a text
    that fails grows so fast that a 16-character plate takes seconds (ReDoS). Two deep, as in
    `^(?:[A-Z]{2}[0-9]+)+$`, stays within milliseconds at that length."""
    sre = importlib.import_module("re._constants")  # the parser `re` itself uses; private, but 3.11-3.13 alike
    repeats = (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT)

    def parts(op: Any, arg: Any) -> list[Any]:
        if op is sre.SUBPATTERN:
            return [arg[3]]
        if op is sre.BRANCH:
            return list(arg[1])
        return [arg[1]] if op in (sre.ASSERT, sre.ASSERT_NOT) else []

    def walk(items: Any, depth: int) -> bool:
        for op, arg in items:
            if op in repeats:
                within = depth + (arg[1] == sre.MAXREPEAT)
                if within >= 3:
                    return True
                children = [arg[2]]
            else:
                children, within = parts(op, arg), depth
            if any(walk(child, within) for child in children):
                return True
        return False

    return walk(importlib.import_module("re._parser").parse(regex).data, 0)


class WatchEntry(_Model):
    """One watched plate: an exact `plate` (matched fold-aware and within `watch.match_distance`) or a `regex`."""

    plate: str | None = Field(default=None, description="Plate text; spaces and dashes are ignored.", max_length=16)
    regex: str | None = Field(
        default=None, description="Python regular expression the whole plate text must match.", max_length=200
    )
    note: str = Field(default="", description="Shown with the alert (why this plate is watched).", max_length=500)
    priority: int = Field(default=0, description="Higher first when several entries match.", ge=0, le=100)
    cameras: tuple[str, ...] = Field(default=(), description="Cameras this entry applies to; empty: every camera.")
    hours: tuple[str, ...] = Field(
        default=(), description="Local times it is active, HH:MM-HH:MM (may wrap midnight); empty: always."
    )
    kind: WatchKind | None = Field(
        default=None, description="block (alerts) or allow (known, no alert); null: the list's kind."
    )
    state: str | None = Field(
        default=None,
        description="Issuing state (FL, florida, us-fl, ...): only events of that state match, and events whose "
        "state is unknown (their alert says so); null: any state.",
        max_length=40,
    )

    @field_validator("state")
    @classmethod
    def _state_code(cls, state: str | None) -> str | None:
        return None if state is None else state_code(state)  # a postal code; ValueError names a bad one

    @field_validator("plate")
    @classmethod
    def _normal_plate(cls, plate: str | None) -> str | None:
        if plate is None:
            return None
        text = normalize(plate)
        if not text or len(text) != len(re.sub(r"[\s\-.]", "", plate)):
            raise ValueError(f"plate {plate!r}: use letters A-Z and digits only")
        return text

    @field_validator("regex")
    @classmethod
    def _compiles(cls, regex: str | None) -> str | None:
        if regex is not None:
            try:
                re.compile(regex)
            except re.error as exc:
                raise ValueError(f"bad regex {regex!r}: {exc}") from None
            if nested_repeat(regex):
                raise ValueError(
                    f"regex {regex!r} nests repetitions three deep, like ((A+)+)+: such a pattern can take seconds "
                    "per plate and would stall alerts; write it with less nesting"
                )
        return regex

    @field_validator("hours")
    @classmethod
    def _hours(cls, hours: tuple[str, ...]) -> tuple[str, ...]:
        for text in hours:
            parse_hours(text)
        return hours

    @model_validator(mode="after")
    def _plate_or_regex(self) -> WatchEntry:
        if (self.plate is None) == (self.regex is None):
            raise ValueError("give exactly one of plate or regex")
        return self

    @property
    def label(self) -> str:
        """The entry as people name it: its plate, or `/regex/`."""
        return self.plate if self.plate is not None else f"/{self.regex}/"


class Watchlist(_Model):
    """A named list of watched plates."""

    kind: WatchKind = Field(
        default="block", description="block: alert when one passes; allow: known plates (residents), no alert."
    )
    entries: list[WatchEntry] = Field(default_factory=list, description="The plates.")


class WatchlistFile(_Model):
    """The watchlists file (`watch.file`): lists by name. `platepilot dashboard` edits it; the runtime
    picks up each change while running."""

    lists: dict[str, Watchlist] = Field(default_factory=dict, description="Watchlists by name.")

    @field_validator("lists")
    @classmethod
    def _names(cls, lists: dict[str, Watchlist]) -> dict[str, Watchlist]:
        for name in lists:
            if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name):
                raise ValueError(f"list name {name!r}: use letters, digits, '-' and '_'")
        return lists


class WebhookConfig(_Model):
    """Alerts POSTed as JSON to a URL, from a background thread with a bounded queue."""

    url: str | None = Field(
        default=None, description="http(s) URL to POST each alert to; null: no webhook.", pattern=r"^https?://\S+$"
    )
    timeout_seconds: float = Field(default=5.0, description="Per attempt.", gt=0, le=120)
    max_queued: int = Field(
        default=1000,
        description="Alerts waiting to be sent; beyond this the oldest is dropped (counted).",
        ge=1,
        le=1_000_000,
    )
    expire_seconds: float = Field(
        default=3600.0,
        description="An alert not delivered this long after it was raised is dropped (counted, logged).",
        gt=0,
        le=7 * 86400,
    )


class WatchConfig(_Model):
    """Watchlists and the alerts they raise (to MQTT <topic>/alerts when output.mqtt is on, a webhook, the log)."""

    file: Path = Field(
        default=Path("watchlists.yaml"),
        description="YAML file of watchlists (`lists: {name: {kind, entries: [...]}}`); missing: no lists.",
    )
    match_distance: int = Field(
        default=1, description="Edit distance (after O/0 I/1 B/8 S/5 folding) still counted a match.", ge=0, le=2
    )
    cooldown_seconds: float = Field(
        default=300.0,
        description="One alert per plate per entry in this many seconds (event time).",
        ge=0,
        le=7 * 86400,
    )
    webhook: WebhookConfig = Field(default=WebhookConfig(), description="Optional webhook for alerts.")


DEVICE_ID_PATTERN = r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$"
"""A device id names a folder of the collector's crops: never `.` or `..` (nor a hidden name)."""


class CollectorConfig(_Model):
    """`platepilot collect`: MQTT events of many devices into the events database (PostgreSQL)."""

    client_id: str = Field(
        default="platepilot-collector",
        description="MQTT client id; the broker keeps its session (and QoS 1 events) while it is away.",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
    )
    crops_dir: Path = Field(
        default=Path("output/fleet_crops"), description="Crops sent with events: <dir>/<device>/YYYY-MM-DD/."
    )
    batch_size: int = Field(
        default=500, description="Events written per database transaction, at most.", ge=1, le=10_000
    )
    max_queued: int = Field(
        default=20_000,
        description="Messages held in memory while the database is down; beyond this the broker holds them.",
        ge=1,
        le=1_000_000,
    )
    max_payload_kb: int = Field(
        default=1024, description="Larger messages are rejected (counted and logged with their topic).", ge=1
    )
    share_group: str | None = Field(
        default=None,
        description="Collectors naming the same group split one stream between them (an MQTT shared "
        "subscription, `$share/<group>/<topic>/...`): each message goes to one of them. null: every collector "
        "gets every message (each event is still stored once).",
        pattern=r"^[A-Za-z0-9_.-]{1,64}$",
    )
    device_topics: bool = Field(
        default=False,
        description="Each box publishes under <topic>/<its device_id> (`fleet/north` for device north): an event "
        "or alert whose device_id is not its topic's is rejected, so with per-box broker ACLs no box can write "
        "another's events (or have its real ones skipped as duplicates).",
    )


class FleetConfig(_Model):
    """Many devices, one central database: event ids, the edge backlog, and the collector."""

    device_id: str | None = Field(
        default=None,
        description="This device in event ids and the fleet database (and `platepilot sync`); null: the host name.",
        pattern=DEVICE_ID_PATTERN,
    )
    backlog: bool = Field(
        default=False,
        description="Expect acknowledgements from `platepilot collect` and publish again the events it has not "
        "acknowledged (needs output.mqtt.enabled).",
    )
    resend_seconds: float = Field(
        default=30.0, description="Seconds between two rounds of publishing unacknowledged events.", gt=0, le=86_400
    )
    resend_batch: int = Field(
        default=1000, description="Unacknowledged events published per round, oldest first.", ge=1, le=100_000
    )
    collector: CollectorConfig = Field(default=CollectorConfig(), description="`platepilot collect`.")

    def device(self) -> str:
        """`device_id`, or this machine's host name."""
        return self.device_id or socket.gethostname()


class MLflowConfig(_Model):
    """The MLflow tracking server and the registered plate reader."""

    tracking_uri: str = Field(default="http://localhost:5000", description="MLflow tracking URI.", min_length=1)
    model_name: str = Field(default="alpr-florida-ocr-crnn", description="Registered model name.", min_length=1)


class TrainingConfig(_Model):
    """Where CRNN training runs write; a run never writes to the deployed model's folder."""

    runs_dir: Path = Field(
        default=Path("models/runs"),
        description="Each training run writes to <runs_dir>/<UTC timestamp>/ unless --output-dir names another "
        "folder (never the folder of ocr.model_path: only `models deploy` and `sync` put a model there).",
    )


class GateConfig(_Model):
    """The promotion gate: the label sets a candidate reader must read no worse than what runs now."""

    labels: Path = Field(
        default=Path("data/ocr_training/labels.txt"),
        description="The site's labels file: training never sees its held-out split, the gate reads it "
        "(skipped when the file is missing).",
    )
    holdout_fraction: float = Field(
        default=0.15,
        description="Fraction of labelled crops held out for the gate (whole tracks, picked by a hash of the "
        "track, so a crop never changes side as labels grow); 0 holds none out.",
        ge=0,
        le=0.5,
    )
    extra_labels: tuple[Path, ...] = Field(
        default=(), description="More labels files the gate reads whole (a fixed test set, another site's crops)."
    )


class Settings(_Model):
    """The whole configuration file."""

    cameras: list[CameraConfig] = Field(
        default_factory=lambda: [CameraConfig()],
        description="Cameras to read; ids must be unique.",
        min_length=1,
    )
    detector: DetectorConfig = Field(default=DetectorConfig(), description="Plate detector.")
    ocr: OCRConfig = Field(default=OCRConfig(), description="Plate reader.")
    state: StateConfig = Field(default=StateConfig(), description="State identification.")
    tracker: TrackerConfig = Field(default=TrackerConfig(), description="Plate tracker.")
    output: OutputConfig = Field(default=OutputConfig(), description="Crop and event output.")
    mlflow: MLflowConfig = Field(default=MLflowConfig(), description="Model registry.")
    training: TrainingConfig = Field(default=TrainingConfig(), description="CRNN training runs.")
    gate: GateConfig = Field(default=GateConfig(), description="Promotion gate of reader models.")
    watch: WatchConfig = Field(default=WatchConfig(), description="Watchlists and alerts.")
    fleet: FleetConfig = Field(default=FleetConfig(), description="Fleet: event ids, edge backlog, collector.")

    @field_validator("cameras")
    @classmethod
    def _unique_camera_ids(cls, cameras: list[CameraConfig]) -> list[CameraConfig]:
        ids = [camera.id for camera in cameras]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"camera ids must be unique: {', '.join(duplicates)} repeated")
        return cameras

    @model_validator(mode="after")
    def _backlog_needs_mqtt(self) -> Settings:
        if self.fleet.backlog and not self.output.mqtt.enabled:
            raise ValueError("fleet.backlog needs output.mqtt.enabled: true (the events go to the collector over MQTT)")
        return self


def load_config(path: Path | None = None) -> Settings:
    """Settings from a YAML file, defaults for everything it leaves out.

    With `path` None: `$PLATEPILOT_CONFIG` if set (it must exist), else `platepilot.yaml` in the working
    directory if present, else pure defaults. Every problem raises PlatepilotError with one line.
    """
    if path is not None:
        return _load_file(path, "")
    env = os.environ.get(CONFIG_ENV)
    if env:
        return _load_file(Path(env), f" (named by ${CONFIG_ENV})")
    if DEFAULT_CONFIG_FILE.is_file():
        return _load_file(DEFAULT_CONFIG_FILE, "")
    return Settings()


def dump_config(settings: Settings) -> str:
    """The settings as YAML, every key present, in model order; `load_config` reads it back unchanged."""
    return yaml.safe_dump(settings.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


def _load_file(path: Path, origin: str) -> Settings:
    if not path.is_file():
        what = "is not a file" if path.exists() else "not found"
        raise PlatepilotError(f"{path}: config file {what}{origin}")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PlatepilotError(f"{path}: cannot read config file: {exc}") from None
    data = read_yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise PlatepilotError(f"{path}: the top level must be a mapping of keys, not {type(data).__name__}")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise PlatepilotError(f"{path}: {_validation_summary(exc)}") from None


class _UniqueKeyLoader(yaml.SafeLoader):
    """YAML's safe loader, refusing a key given twice in one mapping (it kept the last silently: a second
    `ocr:` dropped the first one's settings, a second `stolen:` list its plates)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *anchor`: its keys may be overridden here
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:  # `? [a, b]`: a key YAML allows and no setting has
                raise yaml.constructor.ConstructorError(
                    None, None, "a key that is a list or mapping", key_node.start_mark
                ) from None
            if repeated:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def read_yaml(text: str, path: Path) -> Any:
    """The YAML document `text` (of `path`), or PlatepilotError naming the line: invalid, or a key twice."""
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as exc:
        raise PlatepilotError(_yaml_error(path, exc)) from None


def _yaml_error(path: Path, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
    return f"{path}{where}: invalid YAML: {problem}"


def _validation_summary(exc: ValidationError) -> str:
    """All errors on one line: `ocr.workers: Input should be ... (got 0); ...`."""
    errors = exc.errors()
    parts = [_describe(error) for error in errors[:_MAX_REPORTED_ERRORS]]
    if len(errors) > _MAX_REPORTED_ERRORS:
        parts.append(f"and {len(errors) - _MAX_REPORTED_ERRORS} more")
    return "; ".join(parts)


def _describe(error: ErrorDetails) -> str:
    loc = error["loc"]
    key = _dotted(loc) or "(top level)"
    if error["type"] == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        return f"{key}: unknown key" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
    message = error["msg"].removeprefix("Value error, ")
    value = error.get("input")
    got = "" if isinstance(value, dict | list) else f" (got {value!r})"
    return f"{key}: {message}{got}"


def _dotted(loc: tuple[int | str, ...]) -> str:
    """('cameras', 0, 'id') -> 'cameras[0].id'."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _allowed_keys(loc: tuple[int | str, ...]) -> list[str]:
    """The keys the model at `loc` (inside Settings) accepts; empty when `loc` leads to no model."""
    model: type[BaseModel] = Settings
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        if field is None:
            return []
        inner: list[Any] = [field.annotation, *get_args(field.annotation)]
        found = [t for t in inner if isinstance(t, type) and issubclass(t, BaseModel)]
        if not found:
            return []
        model = found[0]
    return list(model.model_fields)
