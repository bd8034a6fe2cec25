"""ByteTrack-style plate tracking, one `PlateTracker` per camera.

Each track predicts its box with a constant-velocity model (pixels per second of frame time, so
dropped frames do not break the prediction). Association follows ByteTrack: confident detections
are matched to predicted boxes first, then the weak ones to the tracks still unmatched, so a plate
that blurs for a frame keeps its id instead of starting a new track; only confident leftovers start
tracks. Matching is greedy by IoU, best pair first: with the few plates of one frame it picks the
same pairs as the Hungarian method in practice, and needs no solver on the edge device.
A track ends when unmatched for `max_age` processed frames or `max_gap_seconds` of frame time.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from platepilot.config import TrackerConfig
from platepilot.detect.base import box_iou
from platepilot.types import BoxXYXY, Detection, Track, TrackState

_VELOCITY_SMOOTHING = 0.5  # weight of the newest velocity measurement
# Velocity is measured over at least this much frame time: a stream's buffered frames, handed over a
# millisecond or two apart after a hiccup, turned 2 px of box jitter into 1000 px/s, and the next
# prediction missed the plate (one parked car became 13 tracks in 4 s).
_VELOCITY_BASELINE_S = 0.03
_MAX_BOXES_KEPT = 64  # boxes remembered per track (the newest)


@dataclass
class _Live:
    track_id: int
    boxes: list[BoxXYXY]
    first_seen: float
    last_seen: float
    hits: int = 1
    misses: int = 0
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(4, np.float32))
    confirmed: bool = False
    measured: bool = False  # the velocity has been measured once
    since: tuple[BoxXYXY, float] | None = None  # the box and time the next velocity is measured from

    def predict(self, t: float) -> np.ndarray:
        return np.asarray(self.boxes[-1], np.float32) + self.velocity * (t - self.last_seen)

    def update(self, box: BoxXYXY, t: float, min_hits: int) -> None:
        since_box, since_t = self.since or (self.boxes[0], self.first_seen)
        if t - since_t >= _VELOCITY_BASELINE_S:
            measured = (np.asarray(box, np.float32) - np.asarray(since_box, np.float32)) / (t - since_t)
            w = _VELOCITY_SMOOTHING if self.measured else 1.0
            self.velocity = w * measured + (1 - w) * self.velocity
            self.measured, self.since = True, (box, t)
        self.boxes = [*self.boxes[-(_MAX_BOXES_KEPT - 1) :], box]
        self.last_seen, self.hits, self.misses = t, self.hits + 1, 0
        self.confirmed = self.confirmed or self.hits >= min_hits

    def snapshot(self, camera_id: str, state: TrackState | None = None) -> Track:
        if state is None:
            state = TrackState.CONFIRMED if self.confirmed else TrackState.TENTATIVE
        return Track(self.track_id, camera_id, tuple(self.boxes), self.first_seen, self.last_seen, state)


@dataclass(frozen=True, slots=True)
class TrackUpdate:
    """One frame's outcome: `matched` pairs each detection kept with its track (ids stable per
    camera); `ended` tracks were last seen earlier and are now over (state LOST)."""

    matched: tuple[tuple[Track, Detection], ...]
    ended: tuple[Track, ...]


class PlateTracker:
    """Tracks the plates of one camera; call `update` once per processed frame, in time order."""

    def __init__(
        self,
        camera_id: str,
        config: TrackerConfig | None = None,
        low_score: float = 0.1,
        first_id: int = 1,
    ) -> None:
        self.camera_id = camera_id
        self.config = config or TrackerConfig()
        self.low_score = low_score
        self._live: list[_Live] = []
        self._next_id = first_id
        self._last_frame: float | None = None  # the time of the previous frame

    def update(self, detections: list[Detection], timestamp: float) -> TrackUpdate:
        """Associate this frame's detections (taken at `timestamp`, seconds) with the live tracks."""
        if self._last_frame is not None and timestamp < self._last_frame:
            self._shift(timestamp - self._last_frame)
        self._last_frame = timestamp
        start = self.config.start_score  # confident: matched first, and may start a track
        high = [d for d in detections if d.score >= start]
        low = [d for d in detections if self.low_score <= d.score < start]
        pairs, unmatched = self._match(list(range(len(self._live))), high, timestamp)
        low_pairs, _ = self._match(unmatched, low, timestamp)
        matched_ids = set()
        out: list[tuple[Track, Detection]] = []
        for index, det in [*pairs, *low_pairs]:
            track = self._live[index]
            track.update(det.box_xyxy, timestamp, self.config.min_hits)
            matched_ids.add(index)
            out.append((track.snapshot(self.camera_id), det))
        ended = self._age(matched_ids, timestamp)
        matched_high = {id(d) for _, d in pairs}
        for det in high:
            if id(det) not in matched_high:
                track = _Live(self._next_id, [det.box_xyxy], timestamp, timestamp)
                track.confirmed = self.config.min_hits <= 1
                self._next_id += 1
                self._live.append(track)
                out.append((track.snapshot(self.camera_id), det))
        return TrackUpdate(tuple(out), tuple(ended))

    def expire(self, t: float) -> list[Track]:
        """End the live tracks not seen for `max_gap_seconds` at time `t`, with no frame (a camera gone quiet)."""
        gone = [track for track in self._live if t - track.last_seen > self.config.max_gap_seconds]
        self._live = [track for track in self._live if t - track.last_seen <= self.config.max_gap_seconds]
        return [track.snapshot(self.camera_id, TrackState.LOST) for track in gone]

    def _shift(self, seconds: float) -> None:
        """Move the live tracks' times by `seconds` (< 0): the clock went back (a recording joined at a
        reconnect, the system clock set back), so the previous frame counts as just now. Predicting over
        a negative time moved boxes backwards and split vehicles, and tracks ended before they began."""
        for track in self._live:
            track.first_seen += seconds
            track.last_seen += seconds
            if track.since is not None:
                track.since = (track.since[0], track.since[1] + seconds)

    def flush(self) -> list[Track]:
        """End every live track (the stream is over)."""
        ended = [t.snapshot(self.camera_id, TrackState.LOST) for t in self._live]
        self._live = []
        return ended

    @property
    def live_tracks(self) -> list[Track]:
        return [t.snapshot(self.camera_id) for t in self._live]

    def _match(
        self, candidates: list[int], detections: list[Detection], t: float
    ) -> tuple[list[tuple[int, Detection]], list[int]]:
        """Greedy IoU matching of live track indices to detections; returns pairs and unmatched tracks."""
        if not candidates or not detections:
            return [], candidates
        predicted = np.stack([self._live[i].predict(t) for i in candidates])
        boxes = np.asarray([d.box_xyxy for d in detections], np.float32)
        iou = box_iou(predicted, boxes)
        pairs: list[tuple[int, Detection]] = []
        used_t: set[int] = set()
        used_d: set[int] = set()
        for flat in np.argsort(-iou, axis=None):
            ti, di = divmod(int(flat), len(detections))
            if iou[ti, di] < self.config.iou_threshold:
                break
            if ti in used_t or di in used_d:
                continue
            used_t.add(ti)
            used_d.add(di)
            pairs.append((candidates[ti], detections[di]))
        return pairs, [c for k, c in enumerate(candidates) if k not in used_t]

    def _age(self, matched: set[int], t: float) -> list[Track]:
        ended, keep = [], []
        for index, track in enumerate(self._live):
            if index not in matched:
                track.misses += 1
            gone = track.misses > self.config.max_age or t - track.last_seen > self.config.max_gap_seconds
            if gone:
                ended.append(track.snapshot(self.camera_id, TrackState.LOST))
            else:
                keep.append(track)
        self._live = keep
        return ended
