"""Build the pilot from settings, run it, and score a demo run against the demo's ground truth."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from platepilot.config import DetectorConfig, Settings
from platepilot.detect import PlateDetector
from platepilot.errors import PlatepilotError
from platepilot.ocr.band import Margin
from platepilot.ocr.base import OCREngine
from platepilot.ocr.models import make_engine
from platepilot.ocr.state import state_classifier
from platepilot.pipeline.pilot import Pilot
from platepilot.pipeline.reload import (
    RELOAD_POLL_SECONDS,
    ModelWatcher,
    ReaderSlot,
    load_verified,
    model_signature,
    model_version,
)
from platepilot.pipeline.stats_file import StatsFile
from platepilot.pipeline.text_check import plate_detector
from platepilot.plates.states import UNKNOWN
from platepilot.signals import stop_on_signals
from platepilot.sources import FrameSource, open_source
from platepilot.sources.demo import DemoSource
from platepilot.store.backlog import Backlog
from platepilot.store.crops import CropStore
from platepilot.store.events import EventIds, EventStore, PlateEvent
from platepilot.store.mqtt import MQTTPublisher
from platepilot.store.retention import GB, Pruner
from platepilot.watch.alerts import Alerter
from platepilot.watch.lists import LiveWatchlists

HOT_RELOAD_ENGINES = ("crnn", "auto", "cascade", "plateocr")
"""Engines that read the CRNN at `ocr.model_path` (alone, first or as PlateOCR's member): a replaced (or
newly deployed) model is swapped in."""


@dataclass(frozen=True, slots=True)
class DemoScore:
    """Vehicles that drove through during the run, how many got an event with their exact text,
    events whose text matched no vehicle, each missed plate with the nearest read while it passed,
    and of the vehicles read exactly, how many events named their plate's state or said `unknown`."""

    vehicles: int
    exact: int
    false_events: int
    missed: list[tuple[str, str | None]] = field(default_factory=list)
    states_right: int = 0
    states_unknown: int = 0

    @property
    def states_wrong(self) -> int:
        return self.exact - self.states_right - self.states_unknown

    @property
    def accuracy(self) -> float:
        return self.exact / self.vehicles if self.vehicles else 0.0


def score_demo(source: DemoSource, events: list[PlateEvent], start: float) -> DemoScore:
    """Match events to the vehicles that passed: same camera, overlapping in stream time, same text.

    `start` is the timestamp of the source's frame 0 (stream time = timestamp - start).
    """
    passed = source.scene.passed(source.produced)
    mine = [e for e in events if e.camera_id == source.camera_id]
    exact = 0
    missed = []
    states: list[tuple[str, str]] = []  # (plate's state, event's state) of each vehicle read exactly
    for vehicle in passed:
        lo, hi = start + vehicle.enter_time, start + vehicle.exit_time()
        during = [e for e in mine if e.first_seen <= hi and e.last_seen >= lo]
        read = next((e for e in during if e.text == vehicle.text), None)
        if read is not None:
            exact += 1
            states.append((vehicle.state, read.state))
        else:
            reads = [e.text for e in during]
            nearest = min(reads, key=lambda text: Levenshtein.distance(text, vehicle.text), default=None)
            missed.append((vehicle.text, nearest))
    texts = {v.text for v in source.scene.vehicles[: len(passed) + 4]}
    right, unknown = sum(t == s for t, s in states), sum(s == UNKNOWN for _, s in states)
    return DemoScore(len(passed), exact, sum(e.text not in texts for e in mine), missed, right, unknown)


@dataclass
class RunResult:
    pilot: Pilot
    demo_scores: dict[str, DemoScore]
    seconds: float
    watcher: ModelWatcher | None = None
    mqtt: MQTTPublisher | None = None
    alerter: Alerter | None = None

    @property
    def lost_events(self) -> int:
        """Events no output kept: the database and the JSON-lines file both refused them, and MQTT was
        off or lost events too (which ones it lost is not known, so all such events count)."""
        lost = self.pilot.events.lost
        return lost if self.mqtt is None or self.mqtt.failed else 0


def run_pilot(
    settings: Settings,
    duration: float | None = None,
    on_event: Callable[[PlateEvent], None] | None = None,
    on_tick: Callable[[Pilot], None] | None = None,
    tick_seconds: float = 5.0,
    clock: Callable[[], float] = time.time,
    realtime_demo: bool = True,
    reload_seconds: float = RELOAD_POLL_SECONDS,
) -> RunResult:
    """Run every configured camera until its source ends, `duration` seconds pass, or a signal.

    Events go to the events store, then MQTT (when `output.mqtt.enabled`), then the watchlists
    (`watch`: alerts), then `on_event`. With the `crnn` or `auto` engine the model file at
    `ocr.model_path` is watched every `reload_seconds` and hot-reloaded when replaced.
    """
    watchlists = LiveWatchlists(settings.watch, [c.id for c in settings.cameras])  # a bad file fails here
    sources = [open_source(camera, clock, realtime_demo) for camera in settings.cameras]
    detectors = camera_detectors(settings.detector, sources)
    baseline = model_signature(settings.ocr.model_path)  # before loading: a swap meanwhile is seen
    whole = [detector for detector in detectors.values() if detector.whole_plates]
    whole_plates, margin = bool(whole), whole[0].box_margin if whole else None  # one detector config: one margin
    engine = make_engine(settings.ocr.engine, None, settings, whole_plates, margin)
    engine.warmup(1)
    slot = ReaderSlot(engine, model_version(engine))
    state = settings.state
    states = state_classifier(state, threads=1) if state.enabled else None
    watcher = None
    if settings.ocr.engine in HOT_RELOAD_ENGINES:
        build = partial(reloaded_reader, settings, whole_plates=whole_plates, plate_margin=margin)
        load = partial(load_verified, build=build)
        watcher = ModelWatcher(settings.ocr.model_path, slot, load, reload_seconds, baseline)
    publisher = MQTTPublisher(settings.output.mqtt) if settings.output.mqtt.enabled else None
    alerter = Alerter(watchlists, settings.watch, publisher)
    ids = EventIds(settings.fleet.device())
    events = EventStore(settings.output.events_db_url, settings.output.events_jsonl, ids)
    backlog = None
    if publisher is not None and settings.fleet.backlog:
        backlog = Backlog(events.engine, publisher, ids.device_id, settings.fleet)
    crops = CropStore(settings.output.crops_dir, int(settings.output.retention.min_free_gb * GB))
    # the demo's events are kept to score the run; a real camera's are not held in memory
    demo_events: list[PlateEvent] | None = [] if any(isinstance(s, DemoSource) for s in sources) else None
    pilot = Pilot(settings, sources, detectors, slot, crops, events,
                  partial(_emit, events.stamp, publisher, alerter, on_event, demo_events), states)  # fmt: skip
    stats_file = None if settings.output.stats_file is None else StatsFile(settings.output.stats_file)
    pruner = Pruner(settings.output, settings.gate.labels, live=crops.live_paths)
    started = time.monotonic()
    # The signals stay caught through the final flush: a second Ctrl+C or SIGTERM while the last reads,
    # events and MQTT messages are written asks for the same stop again instead of killing the process.
    with stop_on_signals(pilot.stop):
        try:
            if watcher is not None:
                watcher.start()
            pilot.start()
            pruner.start()
            if backlog is not None:
                backlog.start()
            deadline = None if duration is None else started + duration
            while not pilot.wait(tick_seconds if deadline is None else min(tick_seconds, deadline - time.monotonic())):
                if stats_file is not None:
                    stats_file.write(pilot.stats.values(), clock())
                if on_tick is not None:
                    on_tick(pilot)
                if pilot.stopping or (deadline is not None and time.monotonic() >= deadline):
                    break
        finally:
            pilot.close()
            pruner.stop()
            if watcher is not None:
                watcher.stop()
            if backlog is not None:
                backlog.stop()
            events.close()
            alerter.close()
            if publisher is not None:
                publisher.close()
            if stats_file is not None:
                stats_file.write(pilot.stats.values(), clock())
    scores = {}
    for source in sources:
        if isinstance(source, DemoSource) and source.first_timestamp is not None:
            scores[source.camera_id] = score_demo(source, demo_events or [], source.first_timestamp)
    return RunResult(pilot, scores, time.monotonic() - started, watcher, publisher, alerter)


def reloaded_reader(
    settings: Settings, path: Path, whole_plates: bool = False, plate_margin: Margin | None = None
) -> OCREngine:
    """The reader once the model at `path` (`ocr.model_path`) was replaced: `crnn` reads it alone,
    `cascade` and `plateocr` with it; `auto` chooses again from its gate record, so a CRNN that did not
    beat PlateOCR only joins it.
    `whole_plates` and `plate_margin` as for `make_engine`."""
    model = None if settings.ocr.engine == "auto" else path
    return make_engine(settings.ocr.engine, model, settings, whole_plates, plate_margin)


def camera_detectors(config: DetectorConfig, sources: Sequence[FrameSource]) -> dict[str, PlateDetector]:
    """Each camera's detector: folders of photos (`stills`) get the still-image size, everything else the
    video size; cameras of one kind share one detector (and its onnxruntime session)."""
    by_kind: dict[bool, PlateDetector] = {}
    detectors = {}
    for source in sources:
        still = source.stills
        if still not in by_kind:
            by_kind[still] = plate_detector(config, still=still)
        detectors[source.camera_id] = by_kind[still]
    return detectors


def _emit(
    stamp: Callable[[PlateEvent], PlateEvent],
    publisher: MQTTPublisher | None,
    alerter: Alerter,
    on_event: Callable[[PlateEvent], None] | None,
    kept: list[PlateEvent] | None,
    event: PlateEvent,
) -> None:
    """Past the events store: `kept` (when a list), MQTT, then watchlist alerts (neither blocks), then the
    caller's callback; each gets the event with the id and device it is stored under (`stamp`)."""
    event = stamp(event)
    if kept is not None:
        kept.append(event)
    if publisher is not None:
        publisher.publish(event)
    alerter(event)
    if on_event is not None:
        on_event(event)


def settings_for_source(settings: Settings, source: str | None, follow: bool = False) -> Settings:
    """`settings` with its cameras replaced by its first camera reading `source` (None keeps the config), its
    other settings kept (`stills`, `fps_limit`, ...); `follow` without `source` makes every camera follow
    its folder (each must be one; `open_source` says so). An empty `source` (an unset `$CAM_URL` in a
    script) is refused: it ran the config's camera into the real database."""
    if source is not None and not source.strip():
        raise PlatepilotError("--source is empty: name a video, image folder, stream URL, USB index or demo")
    if source is None:
        if not follow:
            return settings
        return settings.model_copy(
            update={"cameras": [c.model_copy(update={"follow": True}) for c in settings.cameras]}
        )
    camera = settings.cameras[0]
    changes = {"source": source} | ({"follow": True} if follow else {})
    return settings.model_copy(update={"cameras": [camera.model_copy(update=changes)]})
