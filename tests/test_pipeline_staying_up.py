"""Staying up: a failing camera leaves the others running, an unreachable stream is retried, and
SIGTERM to `platepilot run` finishes in-flight reads, flushes every event (SQLite, JSONL, MQTT), exits 0."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from pipeline_fakes import ScriptedEngine, TruthDetector, make_pilot, pipeline_settings
from test_mqtt import Subscriber

from platepilot.registry.server import free_port
from platepilot.sources.base import FrameSource
from platepilot.sources.demo import DemoSource
from platepilot.sources.files import VideoFileSource
from platepilot.sources.stream import Backoff, StreamSource
from platepilot.store.events import query_events
from platepilot.types import Frame


class _UnpluggedCamera:
    """A live camera that delivers `good` blank frames, then fails the way a pulled USB cable does."""

    live = True
    stills = False

    def __init__(self, camera_id: str, good: int) -> None:
        self.camera_id, self.good = camera_id, good

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        for index in range(self.good):
            yield Frame(self.camera_id, index, 1000.0 + index, np.zeros((72, 128, 3), np.uint8))
        raise OSError("camera unplugged")


def test_failing_cameras_leave_the_others_running(tmp_path: Path) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    settings = pipeline_settings(tmp_path, cameras=("CAM1", "CAM2", "CAM3"))
    demo = DemoSource("CAM1", seed=0, realtime=False, max_frames=200)
    sources: list[FrameSource] = [demo, VideoFileSource(corrupt, "CAM2"), _UnpluggedCamera("CAM3", good=10)]
    pilot = make_pilot(settings, sources, TruthDetector(demo.scene), ScriptedEngine("ABC1234", [0.9]))
    pilot.run()
    stats = pilot.stats
    assert "OpenCV cannot open" in (stats["CAM2"].error or "") and stats["CAM2"].processed == 0
    cam3 = stats["CAM3"]  # a live camera: frames the pipeline could not keep up with are dropped
    assert cam3.error == "OSError: camera unplugged" and cam3.captured == cam3.processed + cam3.dropped == 10
    assert stats["CAM1"].error is None and stats["CAM1"].processed == 200
    shown = Counter(p.vehicle for i in range(200) for p in demo.scene.render(i)[1])
    tracked = [v for v, frames in shown.items() if frames >= settings.tracker.min_hits]  # not one frame at the end
    events = query_events(settings.output.events_db_url)
    assert len(events) == len(tracked) >= 3 and {e.camera_id for e in events} == {"CAM1"}


def test_a_failing_event_callback_loses_no_event(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """Printing an event to a terminal that is gone (EIO) must not cost the other tracks ending in that frame
    their events, nor leave tracks behind."""

    def gone(_event: object) -> None:
        raise OSError(5, "Input/output error")

    runs = {}
    for name, on_event in (("printing", None), ("terminal gone", gone)):
        settings = pipeline_settings(tmp_path / name)
        demo = DemoSource("CAM1", seed=0, realtime=False, max_frames=200)
        pilot = make_pilot(settings, [demo], TruthDetector(demo.scene), ScriptedEngine("ABC1234", [0.9]), on_event)
        pilot.run()
        runs[name] = (len(query_events(settings.output.events_db_url)), len(pilot._tracks))
    assert runs["printing"][0] >= 3
    assert runs["terminal gone"] == (runs["printing"][0], 0)
    assert "passing the event on failed" in caplog.text


def test_unreachable_stream_is_retried_while_another_camera_goes_on(tmp_path: Path) -> None:
    settings = pipeline_settings(tmp_path, cameras=("CAM1", "CAM2"))
    demo = DemoSource("CAM1", seed=0, realtime=False, max_frames=150)
    stream = StreamSource(f"rtsp://127.0.0.1:{free_port()}/stream1", "CAM2", backoff=Backoff(0.05, 0.2))
    pilot = make_pilot(settings, [demo, stream], TruthDetector(demo.scene), ScriptedEngine("ABC1234", [0.9]))
    pilot.start()
    deadline = time.monotonic() + 30
    while pilot.stats["CAM1"].processed < 150 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # the demo's last tracks end; the stream keeps retrying meanwhile
    pilot.close()
    assert stream.reconnects >= 4 and pilot.stats["CAM2"].error is None  # retrying is not failing
    assert f"{stream.reconnects} reconnects" in pilot.stats["CAM2"].line()
    assert "reconnects" not in pilot.stats["CAM1"].line()
    assert pilot.stats["CAM1"].processed == 150
    assert {e.camera_id for e in query_events(settings.output.events_db_url)} == {"CAM1"}


def _track_ids(lines: list[str]) -> list[int]:
    return [json.loads(line)["track_id"] for line in lines if line.strip()]


@pytest.mark.slow
def test_sigterm_finishes_reads_and_flushes_every_event(tmp_path: Path, mosquitto: int) -> None:
    """`platepilot run` on the endless demo is stopped by SIGTERM while a vehicle's track is open (its
    crop is on disk, its whole plate in view, its event not yet): that vehicle still gets its event,
    everywhere."""
    config = {
        "cameras": [{"id": "CAM1", "source": "demo:3"}],
        # every non-empty read is accepted, so every track that showed its whole plate ends as an event
        "ocr": {"engine": "crnn", "model_path": str(tmp_path / "none.onnx"), "ocr_min_confidence": 0.0},
        "output": {
            "crops_dir": str(tmp_path / "crops"),
            "events_db_url": f"sqlite:///{tmp_path}/events.db",
            "events_jsonl": str(tmp_path / "events.jsonl"),
            "mqtt": {"enabled": True, "host": "127.0.0.1", "port": mosquitto, "topic": "pp"},
        },
    }
    (tmp_path / "platepilot.yaml").write_text(yaml.safe_dump(config))
    subscriber = Subscriber(mosquitto, "pp")
    jsonl = tmp_path / "events.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "platepilot.cli", "run", "--config", "platepilot.yaml"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        open_track = _wait_for_open_track(tmp_path / "crops", jsonl, proc)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    stored = query_events(f"sqlite:///{tmp_path}/events.db")
    ids = sorted(e.track_id for e in stored)
    assert open_track in ids
    crops = sorted(int(p.stem.split("track")[1]) for p in (tmp_path / "crops").rglob("CAM1_track*.jpg"))
    assert set(ids) <= set(crops) and len(ids) == len(set(ids)), "one event per vehicle, each with its crop"
    assert sorted(_track_ids(jsonl.read_text().splitlines())) == ids
    assert len([line for line in out.splitlines() if " CAM1 track " in line]) == len(ids)
    assert sorted(_track_ids(subscriber.wait_for("pp/events", len(ids)))) == ids
    subscriber.close()


WHOLE_AFTER = 2.0  # seconds: a demo plate is wholly in view within ~1 s of its first crop


def _wait_for_open_track(crops: Path, jsonl: Path, proc: subprocess.Popen[str], timeout: float = 90.0) -> int:
    """The id of a track with no event yet whose first crop is `WHOLE_AFTER` seconds old, as soon as
    there is one: a plate first shows sliding in over the frame edge, and such crops alone may make
    no event (a caption beside a plate is cut off the same way)."""
    deadline = time.monotonic() + timeout
    first_seen: dict[int, float] = {}
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"platepilot run exited early: {proc.communicate()[1]}"
        done = set(_track_ids(jsonl.read_text().splitlines())) if jsonl.is_file() else set()
        for path in crops.rglob("CAM1_track*.jpg"):
            track = int(path.stem.split("track")[1])
            seen = first_seen.setdefault(track, time.monotonic())
            if track not in done and time.monotonic() - seen >= WHOLE_AFTER:
                return track
        time.sleep(0.05)
    raise AssertionError("no track opened within the time limit")


class _StalledCamera:
    """A live camera that shows the demo for `good` frames at 15 fps, then sends nothing until stopped."""

    live = True
    stills = False

    def __init__(self, demo: DemoSource, good: int) -> None:
        self.camera_id, self.demo, self.good = demo.camera_id, demo, good

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        for frame in self.demo.frames(stop):
            if frame.index >= self.good:
                break
            yield frame
            stop.wait(1 / 15)  # paced: no frame dropped (TruthDetector counts the frames it is shown)
        stop.wait()


def test_a_camera_gone_quiet_ends_its_tracks_without_waiting_for_a_frame(tmp_path: Path) -> None:
    """Tracks ended only when the next frame came: a stalled stream held its vehicles' events until it
    came back or the run stopped (and a power cut meanwhile lost them)."""
    settings = pipeline_settings(tmp_path)
    demo = DemoSource("CAM1", seed=0, realtime=False, max_frames=60)
    events: list[str] = []
    pilot = make_pilot(settings, [_StalledCamera(demo, 60)], TruthDetector(demo.scene),
                       ScriptedEngine("ABC1234", [0.9]), on_event=lambda e: events.append(e.text))  # fmt: skip
    pilot.start()
    try:
        deadline = time.monotonic() + 60
        while not events and time.monotonic() < deadline:
            time.sleep(0.1)
        assert events, "no event while the camera is quiet"  # before any stop or flush
        assert not pilot.stopping
    finally:
        pilot.close()


def test_a_crops_folder_that_cannot_be_read_leaves_the_events_going(tmp_path: Path) -> None:
    """An OSError listing the day's crops (EACCES, EIO, a name too long) killed the processing thread: the run
    hung for ever and ignored SIGTERM."""
    settings = pipeline_settings(tmp_path)
    crops = settings.output.crops_dir / ("x" * 300)  # ENAMETOOLONG for every path below it
    settings = settings.model_copy(update={"output": settings.output.model_copy(update={"crops_dir": crops})})
    demo = DemoSource("CAM1", seed=0, realtime=False, max_frames=120)
    pilot = make_pilot(settings, [demo], TruthDetector(demo.scene), ScriptedEngine("ABC1234", [0.9]))
    pilot.start()
    assert pilot.wait(60), "the run did not finish"
    pilot.close()
    assert pilot.stats["CAM1"].processed == 120 and query_events(settings.output.events_db_url)


def test_a_flapping_stream_backs_off_and_a_recording_over_http_is_read_once(tmp_path: Path) -> None:
    from platepilot.sources import stream

    class Capture:
        def __init__(self, frames: int, count: float) -> None:
            self.left, self.count = frames, count

        def isOpened(self) -> bool:
            return True

        def get(self, prop: int) -> float:
            return self.count

        def read(self) -> tuple[bool, np.ndarray | None]:
            self.left -= 1
            return (True, np.zeros((8, 8, 3), np.uint8)) if self.left >= 0 else (False, None)

        def release(self) -> None:
            pass

    waits: list[float] = []
    stop = threading.Event()

    class Recorded(StreamSource):
        def _wait(self, failures: int, stop_event: threading.Event, why: str) -> None:
            waits.append(self.backoff.delay(failures))
            if len(waits) == 5:
                stop.set()

    flapping = Recorded("http://cam/v.mjpg", "CAM1", opener=lambda t: Capture(2, 0.0), max_bad_reads=1)
    assert len(list(flapping.frames(stop))) == 10 and waits == [1.0, 2.0, 4.0, 8.0, 16.0]  # not 1 s for ever
    recording = StreamSource("http://nas/clip.avi", "CAM1", opener=lambda t: Capture(30, 30.0))
    assert len(list(recording.frames(threading.Event()))) == 30  # then it ends: no replay from the start
    assert not recording.live  # and no frame of it is dropped
    assert stream.STABLE_SECONDS > 0


def test_a_photo_that_fails_still_ends_its_tracks(tmp_path: Path) -> None:
    """The stills flush sat inside the frame's try: a photo whose crop failed kept its tracks live, and the
    next photo's cars at the same spots joined them and lost their events."""
    import cv2

    from platepilot.sources.files import ImageFolderSource
    from platepilot.track.quality import cut_crop
    from platepilot.types import Detection, PlateRead

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        cv2.imwrite(str(photos / f"{i}.png"), np.random.default_rng(i).integers(0, 256, (240, 320, 3), np.uint8))

    def bays(photo: int) -> list[tuple[float, float, float, float]]:  # two parking bays; each car its own width
        return [(20, 100, 100 - 20 * photo, 140), (200, 100, 290 - 20 * photo, 140)]

    class Bays:
        name, whole_plates, box_margin = "bays", False, (0.0, 0.0)

        def __init__(self) -> None:
            self.photo = 0

        def detect(self, image: np.ndarray) -> list[Detection]:
            self.photo += 1
            return [Detection(box, 0.9) for box in bays(self.photo - 1)]

    class ByWidth:  # a car's read says which car it is: its crop's width
        name = "width"

        def read(self, images: list[np.ndarray]) -> list[PlateRead]:
            return [PlateRead(f"W{image.shape[1]}", 0.9, (0.9,) * 4, "width") for image in images]

    blank = np.zeros((240, 320, 3), np.uint8)
    later = {f"W{cut_crop(blank, box).shape[1]}" for photo in (1, 2) for box in bays(photo)}
    assert len(later) == 4
    events: list[str] = []
    pilot = make_pilot(pipeline_settings(tmp_path), [ImageFolderSource(photos, "CAM1")], Bays(), ByWidth(),  # type: ignore[arg-type]
                       on_event=lambda e: events.append(e.text))  # fmt: skip
    real_offer, calls = pilot.crops.offer, []

    def failing_second(crop: object) -> object:  # photo 0: bay A's crop kept, bay B's write fails
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk error")
        return real_offer(crop)  # type: ignore[arg-type]

    pilot.crops.offer = failing_second  # type: ignore[method-assign]
    pilot.run()
    assert later <= set(events), events
