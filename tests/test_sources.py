"""Frame sources: the deterministic demo, video files, image folders, reconnecting streams."""

from __future__ import annotations

import os
import struct
import threading
import time
import zlib
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from pipeline_fakes import ScriptedEngine, make_pilot, pipeline_settings

from platepilot.config import CameraConfig
from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.sources import open_source
from platepilot.sources.base import RateLimit
from platepilot.sources.demo import LANES, DemoScene, DemoSource
from platepilot.sources.files import ImageFolderSource, VideoFileSource
from platepilot.sources.stream import Backoff, StreamSource


def test_demo_is_deterministic_and_knows_its_truth() -> None:
    a, b = DemoScene(seed=3), DemoScene(seed=3)
    image_a, truth_a = a.render(40)
    image_b, truth_b = b.render(40)
    assert image_a.shape == (720, 1280, 3) and image_a.dtype == np.uint8
    assert np.array_equal(image_a, image_b) and truth_a == truth_b
    assert truth_a, "frame 40 of seed 3 shows a plate"
    texts = {v.number: v.text for v in a.vehicles[:10]}
    for plate in truth_a:
        assert plate.text == texts[plate.vehicle]
        x1, y1, x2, y2 = plate.box
        assert 0 <= x1 < x2 <= 1280 and 0 <= y1 < y2 <= 720
    assert not np.array_equal(DemoScene(seed=4).render(40)[0], image_a)


def test_demo_vehicles_pass_in_order() -> None:
    scene = DemoScene(seed=0, fps=15)
    passed = scene.passed(15 * 30)
    assert 3 <= len(passed) <= 12
    assert all(v.exit_time() <= 29.94 for v in passed)


def test_demo_plates_are_never_hidden_by_other_vehicles() -> None:
    """The truth lists every plate in view as readable, so no vehicle may be drawn over one."""
    scene = DemoScene(seed=0, fps=15)
    checked = 0
    for index in range(0, 15 * 40, 3):
        image, truth = scene.render(index)
        for plate in truth:
            vehicle = scene.vehicles[plate.vehicle]
            x = round(vehicle.x_at(index / scene.fps))
            sprite = scene.sprite(vehicle)
            y = round(LANES[vehicle.lane].y - sprite.shape[0])
            x1, y1, x2, y2 = (round(c) for c in plate.box)
            seen = image[y1:y2, x1:x2]
            drawn = sprite[y1 - y : y2 - y, x1 - x : x2 - x]
            assert np.array_equal(seen, drawn), f"frame {index}: plate {plate.text} is covered"
            checked += 1
    assert checked > 200


def test_a_long_demo_holds_only_the_vehicles_in_view() -> None:
    """Each vehicle's drawing is kept while it is on the road, not for the rest of the run (it was: a 15-minute
    demo grew by tens of MB)."""
    scene = DemoScene(seed=0, fps=15)
    last = 15 * 120
    for index in range(0, last + 1, 5):
        scene.render(index)
    assert len(scene.passed(last)) > 15
    assert 0 < len(scene._sprites) == len(scene.visible(last / 15))


def test_demo_source_timestamps_come_from_the_clock() -> None:
    source = DemoSource("CAM7", seed=1, realtime=False, max_frames=3, clock=lambda: 1000.0)
    frames = list(source.frames(threading.Event()))
    assert [f.index for f in frames] == [0, 1, 2]
    assert [f.timestamp for f in frames] == pytest.approx([1000.0, 1000 + 1 / 15, 1000 + 2 / 15])
    assert {f.camera_id for f in frames} == {"CAM7"} and source.produced == 3


def _write_video(path: Path, frames: int = 10, size: tuple[int, int] = (160, 96)) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, size)
    assert writer.isOpened()
    for i in range(frames):
        image = np.full((size[1], size[0], 3), 20 * i % 255, np.uint8)
        writer.write(image)
    writer.release()


def test_video_file_frames_and_stream_time(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_video(path)
    frames = list(VideoFileSource(path, "CAM1", clock=lambda: 500.0).frames(threading.Event()))
    assert len(frames) == 10
    assert frames[0].timestamp == pytest.approx(500.0)
    assert frames[5].timestamp == pytest.approx(500.5, abs=0.01)
    assert frames[0].image.shape == (96, 160, 3)


def test_image_folder_skips_unreadable_files(tmp_path: Path) -> None:
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"{i:02d}.png"), np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "01b.jpg").write_bytes(b"not a jpeg")
    (tmp_path / "01c.png").write_bytes(_png_header(40_000, 30_000))  # over OpenCV's pixel limit: it raised
    (tmp_path / "notes.txt").write_text("ignored")
    source = ImageFolderSource(tmp_path, "CAM2", fps=2.0, clock=lambda: 0.0)
    frames = list(source.frames(threading.Event()))
    assert [f.timestamp for f in frames] == [0.0, 0.5, 2.0]


def _png_header(width: int, height: int) -> bytes:
    """A PNG of a 1-bit grey image of `width` x `height` with no pixel data (a 'pixel bomb' is one that
    small on disk)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


def test_read_image_names_a_pixel_bomb_and_puts_a_transparent_crop_on_white(tmp_path: Path) -> None:
    """A PNG over OpenCV's pixel limit was a cv2.error traceback; a transparent PNG's black text on its
    transparent (black) ground read as nothing."""
    bomb = tmp_path / "bomb.png"
    bomb.write_bytes(_png_header(40_000, 30_000))
    with pytest.raises(PlatepilotError, match=r"bomb\.png: not a readable image \(more pixels than OpenCV reads\)"):
        read_image(bomb)
    rgba = np.zeros((20, 40, 4), np.uint8)
    rgba[5:15, 10:30, 3] = 255  # opaque black text, the rest transparent black
    cv2.imwrite(str(tmp_path / "t.png"), rgba)
    image = read_image(tmp_path / "t.png")
    assert (
        image.shape == (20, 40, 3) and image[0, 0].tolist() == [255, 255, 255] and image[10, 20].tolist() == [0, 0, 0]
    )
    from PIL import Image

    palette = Image.new("P", (40, 20), 0)  # a palette PNG whose colour 0 is transparent (tRNS), as pngquant writes
    palette.putpalette([0, 0, 0, 0, 0, 0])
    palette.paste(1, (10, 5, 30, 15))
    palette.save(tmp_path / "p.png", transparency=0)
    image = read_image(tmp_path / "p.png")
    assert image[0, 0].tolist() == [255, 255, 255] and image[10, 20].tolist() == [0, 0, 0]


class _FakeCapture:
    """A capture that yields `good` frames then fails (a dropped stream), or never opens."""

    def __init__(self, good: int, opens: bool = True) -> None:
        self.good, self.opens = good, opens

    def isOpened(self) -> bool:
        return self.opens

    def get(self, prop: int) -> float:
        return 0.0  # a live stream counts no frames

    def read(self) -> tuple[bool, np.ndarray | None]:
        if self.good <= 0:
            return False, None
        self.good -= 1
        return True, np.zeros((4, 4, 3), np.uint8)

    def release(self) -> None:
        pass


def test_stream_reconnects_with_backoff_until_stopped() -> None:
    captures = [_FakeCapture(2), _FakeCapture(0, opens=False), _FakeCapture(3)]
    opened: list[object] = []

    def opener(target: str | int) -> _FakeCapture:
        opened.append(target)
        return captures[len(opened) - 1] if len(opened) <= len(captures) else _FakeCapture(0, opens=False)

    stop = threading.Event()
    source = StreamSource("rtsp://cam/1", "CAM1", clock=lambda: 7.0, backoff=Backoff(0.001, 0.002),
                          opener=opener, max_bad_reads=2)  # type: ignore[arg-type]  # fmt: skip
    frames = []
    for frame in source.frames(stop):
        frames.append(frame)
        if len(frames) == 5:
            stop.set()
    assert [f.index for f in frames] == [0, 1, 2, 3, 4]
    assert source.reconnects == 2 and len(opened) == 3


@pytest.mark.parametrize(("failures", "delay"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 30.0), (50, 30.0), (5000, 30.0)])
def test_backoff_doubles_up_to_a_cap(failures: int, delay: float) -> None:
    assert Backoff(1.0, 30.0).delay(failures) == delay


def test_open_source_dispatch(tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    _write_video(video, frames=2)
    assert isinstance(open_source(CameraConfig(source="demo:5")), DemoSource)
    assert isinstance(open_source(CameraConfig(source=str(video))), VideoFileSource)
    assert isinstance(open_source(CameraConfig(source="0")), StreamSource)
    assert isinstance(open_source(CameraConfig(source="rtsp://10.0.0.2/stream")), StreamSource)
    with pytest.raises(PlatepilotError, match="not a file"):
        open_source(CameraConfig(source=str(tmp_path / "missing.mp4")))
    (tmp_path / "2024").mkdir()  # a folder of photos named for its year was opened as USB camera 2024
    cv2.imwrite(str(tmp_path / "2024" / "a.jpg"), np.zeros((8, 8, 3), np.uint8))
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        assert isinstance(open_source(CameraConfig(source="2024")), ImageFolderSource)
    finally:
        os.chdir(cwd)
    with pytest.raises(PlatepilotError, match="is one photo: pass its folder"):  # a 1-frame video: never a track
        open_source(CameraConfig(source=str(tmp_path / "2024" / "a.jpg")))


@pytest.mark.parametrize(("name", "content", "why"), [
    ("broken.avi", b"\xff\xd8 not a jpeg", "cannot open this video|no frame of this video can be decoded"),
    ("random.mp4", bytes(range(256)) * 40, "cannot open this video|no frame of this video can be decoded"),
    ("empty.mp4", b"", "empty"),
])  # fmt: skip
def test_a_file_no_frame_decodes_from_is_refused_before_the_run(
    tmp_path: Path, name: str, content: bytes, why: str
) -> None:
    bad = tmp_path / name
    bad.write_bytes(content)
    with pytest.raises(PlatepilotError, match=why):
        open_source(CameraConfig(source=str(bad)))
    photo = tmp_path / "photo.jpg"  # read as a one-frame video it never made a track: refused, saying what to do
    assert cv2.imwrite(str(photo), np.full((48, 64, 3), 90, np.uint8))
    with pytest.raises(PlatepilotError, match="is one photo: pass its folder"):
        open_source(CameraConfig(source=str(photo)))


@pytest.mark.parametrize(
    ("fps", "limit", "kept"), [(30, 10, 10), (25, 10, 10), (15, 5, 5), (10, 30, 10), (30, None, 30)]
)
def test_rate_limit_keeps_at_most_its_frames_a_second(fps: int, limit: float | None, kept: int) -> None:
    rate = RateLimit(limit)
    start = 1_764_000_000.0  # a live camera's epoch stamps
    passed = [t for t in (start + i / fps for i in range(fps)) if rate.passes(t)]
    assert len(passed) == kept and passed[0] == start
    if limit is not None:  # the clock set back an hour: limited again from there
        assert rate.passes(start - 3600) and not rate.passes(start - 3600 + 0.001)


def test_a_followed_folder_waits_for_a_stalled_upload_and_reads_a_reused_name_again(tmp_path: Path) -> None:
    def jpeg(level: int) -> bytes:
        return cv2.imencode(".jpg", np.full((32, 48, 3), level, np.uint8))[1].tobytes()

    def put(name: str, data: bytes) -> None:  # the upload's last byte came 5 s ago
        (tmp_path / name).write_bytes(data)
        os.utime(tmp_path / name, (time.time() - 5, time.time() - 5))

    stop = threading.Event()
    give_up = threading.Timer(20, stop.set)  # a photo never read ends the frames: a failure, not a hang
    give_up.start()
    frames = ImageFolderSource(tmp_path, "GATE", follow=True).frames(stop)
    put("snap.jpg", jpeg(200))
    assert Path(next(frames).source_file).name == "snap.jpg"
    put("late.jpg", jpeg(120)[:300])  # an upload stalled half-way: OpenCV would read a half-grey photo
    put("snap.jpg", jpeg(40))  # the camera reuses its file name for its next photo
    again = next(frames)
    assert Path(again.source_file).name == "snap.jpg" and abs(float(again.image.mean()) - 40) < 3
    put("late.jpg", jpeg(120))  # the upload resumes and ends
    late = next(frames)
    assert Path(late.source_file).name == "late.jpg" and abs(float(late.image.mean()) - 120) < 3
    give_up.cancel()
    stop.set()
    assert next(frames, None) is None


def test_fps_limit_skips_a_videos_frames_before_detection(tmp_path: Path) -> None:
    video = tmp_path / "road.mp4"
    _write_video(video, frames=30)  # 3 s at 10 fps
    seen: list[int] = []
    settings = pipeline_settings(tmp_path)
    settings = settings.model_copy(update={"cameras": [CameraConfig(id="CAM1", fps_limit=5)]})
    detector = SimpleNamespace(name="count", detect=lambda image: seen.append(1) or [])
    pilot = make_pilot(settings, [VideoFileSource(video, "CAM1")], detector, ScriptedEngine("ABC123", [0.9]))  # type: ignore[arg-type]
    pilot.run()
    stats = pilot.stats["CAM1"]
    assert stats.captured == 30 and stats.processed == len(seen) and stats.skipped == 30 - len(seen)
    assert len(seen) == 15  # 3 s, 5 frames a second
    assert "skipped (fps_limit)" in stats.line()


def test_a_followed_folder_reads_each_photo_once_its_upload_has_settled(tmp_path: Path) -> None:
    def photo(name: str, age: float) -> None:  # written `age` seconds ago (negative: still being written)
        assert cv2.imwrite(str(tmp_path / name), np.full((32, 48, 3), 100, np.uint8))
        os.utime(tmp_path / name, (time.time() - age, time.time() - age))

    ticks = iter(range(100, 200))
    source = ImageFolderSource(tmp_path, "GATE", clock=lambda: float(next(ticks)), follow=True)  # empty: waits
    stop = threading.Event()
    frames = source.frames(stop)
    photo("a.jpg", 60)
    assert next(frames).index == 0
    photo("b.jpg", -60)  # an upload in progress
    photo("c.jpg", 60)
    later = next(frames)  # after a poll: c, not b
    photo("b.jpg", 60)
    last = next(frames)
    assert (later.index, last.index) == (1, 2) and later.timestamp < last.timestamp  # stamped when read
    assert last.image.shape == (32, 48, 3)
    stop.set()
    assert next(frames, None) is None
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(PlatepilotError, match="no images"):  # a folder read once, not followed, needs photos
        ImageFolderSource(empty, "GATE")
    for source in ("demo", str(tmp_path / "a.jpg"), str(tmp_path / "not_yet")):
        with pytest.raises(PlatepilotError, match="follow watches an image folder"):
            open_source(CameraConfig(source=source, follow=True))


def test_a_followed_folder_that_vanishes_for_a_while_is_read_again_once_back(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A remount or an FTP server recreating the folder raised out of the camera: it stopped for good."""
    folder = tmp_path / "uploads"
    folder.mkdir()

    def photo(name: str) -> None:
        assert cv2.imwrite(str(folder / name), np.full((32, 48, 3), 100, np.uint8))
        os.utime(folder / name, (time.time() - 60, time.time() - 60))

    photo("a.jpg")
    stop = threading.Event()
    read: list[str] = []
    source = ImageFolderSource(folder, "GATE", follow=True)
    camera = threading.Thread(target=lambda: read.extend(Path(f.source_file or "").name for f in source.frames(stop)))
    camera.start()
    try:
        deadline = time.monotonic() + 20
        while not read and time.monotonic() < deadline:
            time.sleep(0.05)
        folder.rename(tmp_path / "away")
        while "cannot list" not in caplog.text and time.monotonic() < deadline:  # a poll without the folder
            time.sleep(0.05)
        (tmp_path / "away").rename(folder)
        photo("b.jpg")
        deadline = time.monotonic() + 20
        while len(read) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stop.set()
        camera.join()
    assert read == ["a.jpg", "b.jpg"]
    assert caplog.text.count("cannot list") == 1 and "back; reading its new photos" in caplog.text


def test_a_followed_folder_under_another_spelling_skips_what_was_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "up").mkdir()
    assert cv2.imwrite(str(tmp_path / "up" / "a.jpg"), np.full((32, 48, 3), 100, np.uint8))
    os.utime(tmp_path / "up" / "a.jpg", (time.time() - 60, time.time() - 60))
    source = ImageFolderSource(tmp_path / "up", "GATE", follow=True)  # an absolute path, this time
    source.skip_read({"up/a.jpg": time.time()})  # read by an earlier run given `up`
    stop = threading.Event()
    threading.Timer(1.5, stop.set).start()
    assert list(source.frames(stop)) == []


def test_frames_named_without_padding_come_in_number_order(tmp_path: Path) -> None:
    for n in (1, 2, 10, 9, 100):  # ffmpeg's `%d.jpg`
        assert cv2.imwrite(str(tmp_path / f"{n}.jpg"), np.full((32, 48, 3), n, np.uint8))
    names = [Path(f.source_file or "").name for f in ImageFolderSource(tmp_path, "CAM1").frames(threading.Event())]
    assert names == ["1.jpg", "2.jpg", "9.jpg", "10.jpg", "100.jpg"]
