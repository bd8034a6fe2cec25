"""The edge runtime: sources -> detect -> track -> best crops -> async OCR -> one event per vehicle.

Threads: one capture thread per camera fills a bounded queue (a live camera's oldest frame is
dropped, and counted, when the queue is full; a recorded source waits instead); one processing
thread per camera detects, tracks and stores better crops; a shared ThreadPoolExecutor reads
crops with the reader in the `ReaderSlot` at that moment (hot reload swaps it; see `reload.py`).
A track is re-read, one read in flight at a time, on each better crop until `ocr.agree_reads`
accepted reads agree on its text and one of them reaches `ocr_max_confidence_target` (a far or
blurred plate can read confidently wrong once: on real approach clips, single confident reads such as
LXEK968 for 4XEK968 made most misread events); reads under `ocr_min_confidence`, caption runs
(MYFLOR) and fragments shorter than `ocr.min_plate_chars` are not accepted. When the track ends its
best crop is read once more if it is much better (`FINAL_READ_GAIN`) than any crop read; a track whose
reads never agreed also reads the best crops it passed over while a read was in flight (`END_READS`).
Then its reads are fused into one event, each weighed by its crop's quality. A camera that fails is
reported in its stats; the others go on. `stop()` (SIGINT/SIGTERM) ends capture, flushes every
track, waits for in-flight reads and writes the last events.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import sqlalchemy as sa

from platepilot.config import Settings, TrackerConfig
from platepilot.detect.base import PlateDetector
from platepilot.errors import PlatepilotError
from platepilot.levels import stretched
from platepilot.ocr.state import StateClassifier, with_state
from platepilot.pipeline.fusion import fuse
from platepilot.pipeline.reload import LoadedReader, ReaderSlot
from platepilot.pipeline.stats import CameraStats
from platepilot.plates.formats import MAX_PLATE_CHARS, is_plate_surround
from platepilot.sources.base import FrameSource, RateLimit
from platepilot.sources.files import ImageFolderSource
from platepilot.store.crops import CropStore, StoredCrop
from platepilot.store.events import EventStore, PlateEvent, photos_read
from platepilot.track.quality import crop_quality, cut_crop, plate_within, touches_edge
from platepilot.track.tracker import PlateTracker
from platepilot.types import Frame, PlateCrop, PlateRead, Track, TrackState

log = logging.getLogger(__name__)

_END = object()  # end-of-stream marker in a camera queue
IDLE_SECONDS = 0.5
"""How long a camera's processing waits for a frame before it ends the tracks of a live camera gone quiet
(those not seen for `tracker.max_gap_seconds` of frame time, counted on from its last frame)."""


# Quality ratio over every crop read that earns a satisfied track one more read at its end (a plate
# seen at twice the width scores about twice the quality; see track/quality.py).
FINAL_READ_GAIN = 1.5
# Share of its quality a crop keeps once its read gave nothing usable. Quality is judged from the box
# (its size, the crop's sharpness, the detector's score), and a far plate's box can hold the whole
# trunk: a large, sharp box with a plate too small to read in it, which no later crop of the real plate
# would otherwise beat (approach clips ended with no read at all). Each failed read halves the bar.
FAILED_READ_DISCOUNT = 0.5
# Crops a track passed over (a better one came while a read was in flight) that are read when it ends with
# no two reads agreeing: more votes where the reads disagree, at no cost to tracks that were satisfied.
END_READS = 2


def _photos_read(events: EventStore, camera_id: str) -> dict[str, float]:
    """`photos_read`, or none (logged) when the database does not answer: then photos may be read twice,
    but none is lost."""
    try:
        return photos_read(events.engine, camera_id)
    except sa.exc.SQLAlchemyError as exc:
        log.warning("%s: photos read before unknown (%s); the folder is read from the start", camera_id, exc)
        return {}


def _reconnect_counter(source: FrameSource) -> Callable[[], int]:
    """Reads a live stream's `reconnects` counter (sources without one never reconnect)."""
    return lambda: int(getattr(source, "reconnects", 0))


@dataclass
class _TrackReads:
    """OCR state of one track (guarded by the pilot's lock). A crop cut off by the frame edge may
    miss characters yet read with high confidence, so it is not read while the track lives; the
    best one (`edge_crop`) is read when the track ends with no whole-plate read, and its read makes an
    event only if it matches a plate format (a caption or county line beside a plate sliding into
    view is also cut off, and reads as text)."""

    reads: list[PlateRead] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)  # of each read's crop: its weight in the fusion
    read_quality: float = 0.0  # the best quality of a crop read so far
    final: PlateCrop | None = None  # once satisfied: a much better crop, read when the track ends
    edge_crop: PlateCrop | None = None
    edge_only: bool = False
    in_flight: bool = False
    pending: PlateCrop | None = None
    passed: list[PlateCrop] = field(default_factory=list)  # the END_READS best crops replaced before read
    satisfied: bool = False
    ended: Track | None = None
    stored: StoredCrop | None = None  # what the crop store holds of the track (its file, or why none)
    reader: LoadedReader | None = None  # the reader of the latest accepted read
    source_file: str = ""  # the photo (or video file) the track was seen in

    def agreed(self, text: str, count: int, target: float) -> bool:
        """Whether `count` reads say `text` and one of them reaches the confidence `target`."""
        same = [r.confidence for r in self.reads if r.text == text]
        return len(same) >= count and max(same) >= target

    def pass_over(self, crop: PlateCrop) -> None:
        """Keep `crop`, replaced by a better one before it was read, if it is among the best passed over."""
        self.passed = sorted([*self.passed, crop], key=lambda c: -c.quality)[:END_READS]

    def keep_if_much_better(self, crop: PlateCrop) -> None:
        """Keep a crop that came after the track was satisfied, to read at its end, if it is much better."""
        if not crop.clipped and crop.quality > FINAL_READ_GAIN * self.read_quality:
            self.final = crop


class Pilot:
    """Runs cameras until their sources end or `stop()`; `on_event` is called for each event.

    `detectors` maps each camera id to its detector (image folders and video may differ in size);
    `states`, when given, classifies the issuing state of every crop read."""

    def __init__(
        self,
        settings: Settings,
        sources: Sequence[FrameSource],
        detectors: Mapping[str, PlateDetector],
        reader: ReaderSlot,
        crops: CropStore,
        events: EventStore,
        on_event: Callable[[PlateEvent], None] | None = None,
        states: StateClassifier | None = None,
    ) -> None:
        self.settings, self.sources, self.detectors, self.reader = settings, sources, detectors, reader
        self.crops, self.events, self.on_event, self.states = crops, events, on_event, states
        self.stats = {s.camera_id: CameraStats(s.camera_id, reconnects=_reconnect_counter(s)) for s in sources}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._tracks: dict[tuple[str, int], _TrackReads] = {}
        self._executor = ThreadPoolExecutor(settings.ocr.workers, thread_name_prefix="ocr")
        self._threads: list[threading.Thread] = []
        for source in sources:  # a followed folder goes on where the last run left it
            if isinstance(source, ImageFolderSource) and source.follow:
                source.skip_read(_photos_read(events, source.camera_id))

    def start(self) -> None:
        size = {c.id: c.queue_size for c in self.settings.cameras}
        for source in self.sources:
            frames: queue.Queue[object] = queue.Queue(maxsize=size.get(source.camera_id, 4))
            for target, name in ((self._capture, "capture"), (self._process, "process")):
                thread = threading.Thread(
                    target=target, args=(source, frames), name=f"{name}-{source.camera_id}", daemon=True
                )
                thread.start()
                self._threads.append(thread)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for every camera to finish (sources ended), at most `timeout` seconds; True if done."""
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            left = None if deadline is None else max(deadline - time.monotonic(), 0.0)
            thread.join(left)
            if thread.is_alive():
                return False
        return True

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        """Ask every camera to stop; `close()` then finishes the work in flight."""
        self._stop.set()

    def close(self) -> None:
        """Stop, flush every track, wait for in-flight reads, write the last events."""
        self.stop()
        for thread in self._threads:
            thread.join()
        self._executor.shutdown(wait=True)
        with self._lock:
            leftovers = [key for key, state in self._tracks.items() if state.ended is not None]
        for key in leftovers:
            self._finish(key)

    def run(self, duration: float | None = None) -> None:
        self.start()
        try:
            self.wait(duration)
        finally:
            self.close()

    # capture ------------------------------------------------------------------------------------
    def _capture(self, source: FrameSource, frames: queue.Queue[object]) -> None:
        stats = self.stats[source.camera_id]
        try:
            for frame in source.frames(self._stop):
                stats.captured += 1
                if source.live:
                    while True:
                        try:
                            frames.put_nowait(frame)
                            break
                        except queue.Full:
                            try:
                                frames.get_nowait()
                                stats.dropped += 1
                            except queue.Empty:
                                pass
                else:
                    while not self._stop.is_set():
                        try:
                            frames.put(frame, timeout=0.2)
                            break
                        except queue.Full:
                            continue
                stats.queue_depth = frames.qsize()
        except PlatepilotError as exc:
            stats.error = str(exc)
            log.error("%s: %s", source.camera_id, exc)
        except Exception as exc:  # one failing camera must not stop the others
            stats.error = f"{type(exc).__name__}: {exc}"
            log.exception("camera %s failed", source.camera_id)
        finally:
            frames.put(_END)

    # processing ---------------------------------------------------------------------------------
    def _process(self, source: FrameSource, frames: queue.Queue[object]) -> None:
        camera = source.camera_id
        stats = self.stats[camera]
        tracker: PlateTracker | None = None
        limit = {c.id: c.fps_limit for c in self.settings.cameras}.get(camera)
        rate = RateLimit(None if source.stills else limit)  # every photo of a folder is another car
        last: tuple[float, float] | None = None  # (timestamp, time.monotonic()) of the last frame processed
        while True:
            try:
                item = frames.get(timeout=IDLE_SECONDS)
            except queue.Empty:  # a live camera went quiet (dropped, stalled): its vehicles have driven on
                if tracker is not None and last is not None and source.live:
                    for track in tracker.expire(last[0] + time.monotonic() - last[1]):
                        self._end_safely(track)
                continue
            if item is _END:
                break
            if self._stop.is_set():
                continue  # drain without work: the frames after a stop are not processed
            assert isinstance(item, Frame)
            if not rate.passes(item.timestamp):
                stats.skipped += 1
                continue
            if tracker is None:
                first = self.crops.next_track_id(camera, item.timestamp)
                tracker = PlateTracker(camera, self._tracking(source), first_id=first)
            try:  # the thread must live to take _END from the queue, or the capture and close() wait for ever
                self._process_frame(item, tracker, stats)
                last = (item.timestamp, time.monotonic())
            except Exception as exc:  # a bad frame is skipped, the camera goes on
                log.exception("%s: frame %d failed: %s", camera, item.index, exc)
            if source.stills:  # the next photo may show another car at the same spot: no track goes on
                for track in tracker.flush():
                    self._end_safely(track)
        for track in tracker.flush() if tracker is not None else []:
            self._end_safely(track)

    def _end_safely(self, track: Track) -> None:
        """`_track_ended`, whose failure (logged) costs this track its event, never the camera's thread."""
        try:
            self._track_ended(track)
        except Exception:
            log.exception("%s: track %d could not be ended", track.camera_id, track.track_id)

    def _tracking(self, source: FrameSource) -> TrackerConfig:
        """The tracker's settings for `source`. A plate in a still photo is seen once: one sighting confirms
        it, and any box the detector reports starts a track (in video, a weak box only extends one, and a
        plate scores high enough in some frame; in a photo, the one chance is the one box: UCSD photos
        whose plates scored 0.37 and 0.40 made no event)."""
        config = self.settings.tracker
        return config.model_copy(update={"min_hits": 1, "start_score": 0.0}) if source.stills else config

    def _process_frame(self, frame: Frame, tracker: PlateTracker, stats: CameraStats) -> None:
        started = time.perf_counter()
        levelled = stretched(frame.image)  # a flat (dusk, haze) frame stretched to the full range
        detections = self.detectors[frame.camera_id].detect(levelled)
        stats.detect_seconds += time.perf_counter() - started
        stats.processed += 1
        stats.detections += len(detections)
        update = tracker.update(detections, frame.timestamp)
        for track in update.ended:  # first: a crop that fails below must not cost these their events
            self._track_ended(track)
        height, width = levelled.shape[:2]
        for track, det in update.matched:
            if track.state != TrackState.CONFIRMED:
                continue
            image = cut_crop(levelled, det.box_xyxy)
            quality = crop_quality(image, det.box_xyxy, det.score, (width, height))
            clipped = touches_edge(det.box_xyxy, (width, height))
            crop = PlateCrop(
                frame.camera_id,
                track.track_id,
                frame.index,
                frame.timestamp,
                image,
                quality,
                det.box_xyxy,
                clipped,
                frame.source_file,
            )
            stored = self.crops.offer(crop)
            if stored is not None:
                stats.crops_failed += bool(stored.note)
                self._better_crop(crop, stored, stats)

    # OCR ----------------------------------------------------------------------------------------
    def _better_crop(self, crop: PlateCrop, stored: StoredCrop, stats: CameraStats) -> None:
        key = (crop.camera_id, crop.track_id)
        with self._lock:
            state = self._tracks.get(key)
            if state is None:
                state = self._tracks[key] = _TrackReads(source_file=crop.source_file)
                stats.tracks += 1
            state.stored = stored
            if state.satisfied:
                state.keep_if_much_better(crop)
                return
            if crop.clipped:
                state.edge_crop = crop
                return
            if state.in_flight:
                if state.pending is not None:
                    state.pass_over(state.pending)
                state.pending = crop
                return
            state.in_flight = True
        self._submit(key, crop, stats)

    def _submit(self, key: tuple[str, int], crop: PlateCrop, stats: CameraStats) -> None:
        """Read `crop` on an OCR worker; an error that escapes the read is logged, not lost with its future."""
        future = self._executor.submit(self._read, key, crop, stats)
        future.add_done_callback(lambda done: _log_failure(done, key))

    def _read(self, key: tuple[str, int], crop: PlateCrop, stats: CameraStats) -> None:
        """Read `crop`, then each better crop the track got meanwhile, on this worker (one read in flight per
        track), in a loop: a track re-read on every better crop for a long time (a queue at a gate) nested one
        call per read, until a RecursionError held its event back to the end of the run."""
        follow: PlateCrop | None = crop
        while follow is not None:
            follow, finished = self._read_once(key, follow, stats)
        if finished:
            self._finish(key)

    def _read_once(self, key: tuple[str, int], crop: PlateCrop, stats: CameraStats) -> tuple[PlateCrop | None, bool]:
        """Read one crop into the track's state: (the crop to read next, if any; whether the track is done)."""
        ocr = self.settings.ocr
        reader = self.reader.current  # one model for this read, even if a reload swaps the slot meanwhile
        started = time.perf_counter()
        try:
            read: PlateRead | None = reader.engine.read([crop.image])[0]
            if read is not None and self.states is not None:
                plate = plate_within(crop.image, crop.box, self.detectors[crop.camera_id].box_margin)
                guess = self.states.classify([plate], read_names=not self._state_sure(key))[0]
                read = with_state(read, guess, ocr.format_prior, ocr.site_state)
        except Exception:
            log.exception("%s track %d: OCR failed", *key)
            read = None
        stats.ocr_seconds += time.perf_counter() - started
        stats.ocr_reads += 1
        with self._lock:
            state = self._tracks[key]
            state.read_quality = max(state.read_quality, crop.quality)
            if (
                read is not None
                and len(read.text) >= ocr.min_plate_chars
                and not is_plate_surround(read.text)
                and read.confidence >= ocr.ocr_min_confidence
            ):
                state.reads.append(read)
                state.qualities.append(crop.quality)
                state.reader = reader
                state.satisfied = state.agreed(read.text, ocr.agree_reads, ocr.ocr_max_confidence_target)
            else:
                self.crops.discount(crop, FAILED_READ_DISCOUNT)
            follow = self._next_crop(state)
            return follow, follow is None and state.ended is not None

    def _state_sure(self, key: tuple[str, int]) -> bool:
        """Whether one of the track's reads already has a sure state: its later crops skip the slow
        name reading (one name read per vehicle, not one per read, keeps the OCR worker fast)."""
        assert self.states is not None
        with self._lock:
            return any(not self.states.unsure(r.state_confidence) for r in self._tracks[key].reads)

    def _track_ended(self, track: Track) -> None:
        key = (track.camera_id, track.track_id)
        with self._lock:
            state = self._tracks.get(key)
            if state is None:  # never confirmed, or no crop: nothing to report
                self.crops.forget(*key)
                return
            state.ended = track
            busy = state.in_flight
            last = None if busy else self._next_crop(state)
        if last is not None:
            self._submit(key, last, self.stats[track.camera_id])
        elif not busy:
            self._finish(key)

    @staticmethod
    def _next_crop(state: _TrackReads) -> PlateCrop | None:
        """The crop to read next (marking it in flight), or None: the pending better crop while the
        track is unsatisfied; once it has ended, its much better final crop, or while unsatisfied the
        best crop it passed over, or with no accepted read its best edge crop."""
        follow = None if state.satisfied else state.pending
        if state.satisfied and state.pending is not None:
            state.keep_if_much_better(state.pending)
        state.pending = None
        if follow is None and state.ended is not None:
            if state.final is not None:
                follow, state.final = state.final, None
            elif not state.satisfied and state.passed:
                follow = state.passed.pop(0)
            elif not state.reads:
                follow, state.edge_crop = state.edge_crop, None
                state.edge_only = follow is not None
        state.in_flight = follow is not None
        return follow

    def _finish(self, key: tuple[str, int]) -> None:
        with self._lock:
            state = self._tracks.pop(key, None)
        try:
            self._report(state)
        finally:
            self.crops.forget(*key)  # after the event names its crop: retention spares the live tracks' crops

    def _report(self, state: _TrackReads | None) -> None:
        """The event of a finished track, stored and passed on (none for a track with no usable read)."""
        if state is None or state.ended is None or state.reader is None:
            return
        engine = state.reader.engine.name
        ocr = self.settings.ocr
        fused = fuse(
            state.reads, ocr.format_prior, engine, self.settings.state.min_confidence, state.qualities, ocr.site_state
        )
        if fused is None or len(fused.text) > MAX_PLATE_CHARS or (state.edge_only and not fused.format_match):
            return
        track = state.ended
        gone = self.crops.persist(state.stored)
        event = PlateEvent(
            camera_id=track.camera_id,
            track_id=track.track_id,
            first_seen=track.first_seen,
            last_seen=track.last_seen,
            text=fused.text,
            confidence=round(fused.confidence, 4),
            candidates=fused.candidates,
            crop_path=str(state.stored.path) if state.stored and state.stored.path and not gone else "",
            engine=engine,
            model_version=state.reader.version,
            reads=len(state.reads),
            format=fused.format_match,
            state=fused.state,
            state_confidence=fused.state_confidence,
            crop_note=gone or (state.stored.note if state.stored else ""),
            source_file=state.source_file,
        )
        self.events.add(event)
        self.stats[track.camera_id].events += 1
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # stdout gone (EIO) or full: the event is stored, and the camera's other tracks go on
                log.exception("%s track %d: passing the event on failed", track.camera_id, track.track_id)


def _log_failure(done: Future[None], key: tuple[str, int]) -> None:
    exc = None if done.cancelled() else done.exception()
    if exc is not None:
        log.error("%s track %d: reading failed", *key, exc_info=exc)
