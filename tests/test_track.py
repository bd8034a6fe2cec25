"""The tracker stepped frame by frame, and the crop quality score."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from platepilot.config import TrackerConfig
from platepilot.plates.designs import sample_design
from platepilot.plates.render import render_plate
from platepilot.track.quality import crop_quality, cut_crop, plate_within
from platepilot.track.tracker import PlateTracker
from platepilot.types import Detection, Track, TrackState


def _det(x: float, y: float, score: float = 0.9, w: float = 100, h: float = 50) -> Detection:
    return Detection((x, y, x + w, y + h), score)


def test_two_plates_keep_their_ids_while_moving() -> None:
    tracker = PlateTracker("CAM1", TrackerConfig(min_hits=2))
    ids_a, ids_b = set(), set()
    for step in range(10):
        t = step / 10
        update = tracker.update([_det(100 + 30 * step, 100), _det(800 - 40 * step, 400)], t)
        by_x = sorted(update.matched, key=lambda m: m[1].box_xyxy[1])
        ids_a.add(by_x[0][0].track_id)
        ids_b.add(by_x[1][0].track_id)
        assert not update.ended
    assert ids_a == {1} and ids_b == {2}
    assert all(t.state == TrackState.CONFIRMED for t in tracker.live_tracks)


def test_velocity_bridges_dropped_frames() -> None:
    tracker = PlateTracker("CAM1", TrackerConfig(min_hits=1, iou_threshold=0.3))
    tracker.update([_det(0, 0)], 0.0)
    tracker.update([_det(40, 0)], 0.1)
    # 0.4 s later the plate moved 160 px: no IoU with its last box, but the predicted one matches
    update = tracker.update([_det(200, 0)], 0.5)
    assert [m[0].track_id for m in update.matched] == [1]


def test_frames_handed_over_in_a_burst_keep_one_track() -> None:
    """A stream's buffered frames came a millisecond apart: 2 px of jitter became 1000 px/s of speed, and a
    parked car became a new track every few frames."""
    tracker = PlateTracker("CAM1", TrackerConfig(min_hits=1))
    rng = np.random.default_rng(0)
    t, ids = 0.0, set()
    for step in range(60):
        t += 0.001 if step % 5 == 4 else 1 / 15  # every fifth frame right after the one before
        jitter = rng.uniform(-2, 2, 2)
        ids |= {track.track_id for track, _ in tracker.update([_det(300 + jitter[0], 200 + jitter[1])], t).matched}
    assert ids == {1}


def test_a_clock_going_back_keeps_the_track_and_its_times_in_order() -> None:
    """A recording joined at a reconnect (its timestamps start again at 0), or the clock set back: boxes
    were predicted backwards over the negative time, and tracks ended before they began."""
    tracker = PlateTracker("CAM1", TrackerConfig(min_hits=1))
    times = [100 + k / 15 for k in range(10)] + [50 + k / 15 for k in range(10)]
    ids = set()
    for k, t in enumerate(times):
        ids |= {track.track_id for track, _ in tracker.update([_det(100 + 6 * k, 200)], t).matched}
    (track,) = tracker.flush()
    assert ids == {1} and track.first_seen <= track.last_seen == times[-1]
    assert track.last_seen - track.first_seen == pytest.approx(18 / 15)  # the frames' own spacing


@pytest.mark.parametrize("back", [0.07, 0.3, 0.9, 1.5])
def test_a_clock_stepping_back_a_little_or_more_keeps_one_track(back: float) -> None:
    """An NTP step of under a second pinned frames to the previous time, and the velocity measured after it
    overshot: one car became two tracks."""
    tracker = PlateTracker("CAM1", TrackerConfig(min_hits=1))
    times = [10 + k / 15 for k in range(15)] + [10 + k / 15 - back for k in range(15, 40)]
    ids = set()
    for k, t in enumerate(times):
        ids |= {track.track_id for track, _ in tracker.update([_det(100 + 12 * k, 200)], t).matched}
    (track,) = tracker.flush()
    assert ids == {1} and track.last_seen == times[-1]
    assert track.last_seen - track.first_seen == pytest.approx(39 / 15 - 1 / 15)  # the frames' own spacing


def test_weak_detection_keeps_a_track_but_starts_none() -> None:
    tracker = PlateTracker("CAM1", TrackerConfig(min_hits=1))
    tracker.update([_det(0, 0)], 0.0)
    update = tracker.update([_det(2, 0, score=0.2), _det(500, 0, score=0.2)], 0.1)
    assert [m[0].track_id for m in update.matched] == [1]
    assert len(tracker.live_tracks) == 1


def test_tracks_end_after_the_gap_and_ids_continue() -> None:
    tracker = PlateTracker("CAM3", TrackerConfig(max_age=3, max_gap_seconds=100), first_id=7)
    tracker.update([_det(0, 0)], 0.0)
    ended: list[Track] = []
    for step in range(1, 6):
        ended += tracker.update([], step * 0.1).ended
    assert [(t.track_id, t.camera_id, t.state) for t in ended] == [(7, "CAM3", TrackState.LOST)]
    assert tracker.update([_det(0, 0)], 1.0).matched[0][0].track_id == 8


def test_time_gap_ends_a_track() -> None:
    tracker = PlateTracker("CAM1", TrackerConfig(max_age=1000, max_gap_seconds=1.0))
    tracker.update([_det(0, 0)], 0.0)
    assert not tracker.update([], 0.9).ended
    assert len(tracker.update([], 1.5).ended) == 1


def test_tentative_until_min_hits() -> None:
    tracker = PlateTracker("CAM1", TrackerConfig(min_hits=3))
    states = [tracker.update([_det(0, 0)], i * 0.1).matched[0][0].state for i in range(3)]
    assert states == [TrackState.TENTATIVE, TrackState.TENTATIVE, TrackState.CONFIRMED]


def _plate_image(width: int = 200, height: int = 100, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.random((height, width, 3)) * 255).astype(np.uint8)


def test_quality_prefers_sharp_large_unclipped_frontal() -> None:
    frame = np.zeros((720, 1280, 3), np.uint8)
    frame[300:400, 500:700] = _plate_image()
    box = (500.0, 300.0, 700.0, 400.0)
    crop = cut_crop(frame, box, pad=0.0)
    base = crop_quality(crop, box, 0.9, (1280, 720))
    blurred = crop_quality(np.full_like(crop, 128), box, 0.9, (1280, 720))
    clipped = crop_quality(crop, (0.0, 300.0, 200.0, 400.0), 0.9, (1280, 720))
    oblique = crop_quality(crop, (500.0, 300.0, 600.0, 400.0), 0.9, (1280, 720))
    small = crop_quality(crop[::4, ::4], (500.0, 300.0, 550.0, 325.0), 0.9, (1280, 720))
    assert 0 < base <= 1
    assert blurred < base and clipped == pytest.approx(base * 0.3) and oblique < base and small < base


@pytest.mark.parametrize("seed", range(4))
def test_quality_prefers_an_approaching_plates_near_crop(seed: int) -> None:
    """A soft plate shrunk to a far camera's few pixels looks sharper pixel by pixel than near, where the
    same softness spreads over more pixels; measured at the reader's scale the near crop ranks well above
    the 2.4x its width alone gives (pixel by pixel it ranked 1.2-2.4x)."""
    rng = np.random.default_rng(seed)
    plate = render_plate(sample_design(rng), rng).image
    near = cv2.resize(plate, (120, 120 * plate.shape[0] // plate.shape[1]), interpolation=cv2.INTER_AREA)
    near = cv2.GaussianBlur(near, (0, 0), 3.0)  # a soft photo
    qualities = []
    for width in (50, 120):
        image = cv2.resize(near, (width, width * near.shape[0] // near.shape[1]), interpolation=cv2.INTER_AREA)
        frame = np.full((360, 640, 3), 90, np.uint8)
        frame[100 : 100 + image.shape[0], 200 : 200 + width] = image
        frame = np.clip(frame + rng.normal(0, 3, frame.shape), 0, 255).astype(np.uint8)
        box = (200.0, 100.0, 200.0 + width, 100.0 + image.shape[0])
        qualities.append(crop_quality(cut_crop(frame, box), box, 0.8, (640, 360)))
    assert qualities[1] > 3 * qualities[0]


def test_cut_crop_clips_to_the_frame() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    assert cut_crop(frame, (-10.0, 90.0, 20.0, 120.0), pad=0.0).shape == (10, 20, 3)


@pytest.mark.parametrize("box", [(40.0, 30.0, 160.0, 90.0), (1.0, 2.0, 121.0, 62.0), (215.5, 151.25, 299.5, 199.75)])
def test_the_plate_is_cut_out_of_a_whole_plate_crop_again(box: tuple[float, float, float, float]) -> None:
    """A detector's box grown by its margin, cut by the pilot: `plate_within` gives back the plate."""
    frame = np.zeros((200, 300, 3), np.uint8)
    margin = (0.12, 0.2)
    x1, y1, x2, y2 = box
    inset_x, inset_y = (x2 - x1) * 0.12 / 1.24, (y2 - y1) * 0.2 / 1.4
    plate = (round(x1 + inset_x), round(y1 + inset_y), round(x2 - inset_x), round(y2 - inset_y))
    frame[plate[1] : plate[3], plate[0] : plate[2]] = 255  # the plate white, the rest (margin, car) black
    inner = plate_within(cut_crop(frame, box), box, margin)
    assert inner.shape[:2] == (plate[3] - plate[1], plate[2] - plate[0])
    assert (inner == 255).all()
    assert plate_within(cut_crop(frame, box), box, (0.0, 0.0)).shape[:2] == (
        round(y2) - round(y1),
        round(x2) - round(x1),
    )
