"""The pilot end to end: fusion, async OCR until the target, crops on disk, events, stop."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from pipeline_fakes import ScriptedEngine, TruthDetector, make_pilot, pipeline_settings, write_demo_video
from pipeline_fakes import plate_read as _read

from platepilot.config import CameraConfig, RetentionConfig
from platepilot.detect.textdet import TextDetParams, TextDetPlateDetector
from platepilot.errors import PlatepilotError
from platepilot.pipeline.fusion import fuse, vote
from platepilot.pipeline.pilot import Pilot
from platepilot.pipeline.report import event_line
from platepilot.pipeline.run import score_demo
from platepilot.pipeline.stats import CameraStats
from platepilot.pipeline.stats_file import StatsFile
from platepilot.sources import open_source
from platepilot.sources.demo import DemoSource
from platepilot.sources.files import VideoFileSource
from platepilot.store.events import PlateEvent, query_events
from platepilot.store.retention import prune
from platepilot.types import Detection, Frame, PlateRead


def test_vote_weighs_characters_by_confidence() -> None:
    reads = [_read("ABC123", 0.9, [0.9, 0.9, 0.2, 0.9, 0.9, 0.9]), _read("ABD123", 0.7), _read("ABO123", 0.1)]
    assert vote(reads)[0] == "ABD123"


@pytest.mark.parametrize(
    ("reads", "expected"),
    [
        ([], None),
        ([_read("ABC1234", 0.9)], "ABC1234"),
        # the majority length wins; a dropped character cannot out-vote two full reads
        ([_read("ABC1234", 0.6), _read("ABC1234", 0.6), _read("ABC124", 0.95)], "ABC1234"),
        # a character-level vote fixes each read's one mistake
        ([_read("ABC1284", 0.7, [0.9, 0.9, 0.9, 0.9, 0.9, 0.2, 0.9]), _read("A8C1234", 0.7, [0.9, 0.2] + [0.9] * 5),
          _read("ABC1234", 0.6)], "ABC1234"),
        # format prior: near-equal support, only one text is a Florida/US plate format
        ([_read("ABC12X4", 0.62), _read("ABC1234", 0.6)], "ABC1234"),
        # a read sure of nothing (0, or NaN) carries no vote: it divided by zero, or won as NaN
        ([_read("ABC1234", 0.0)], None),
        ([_read("XYZ9876", float("nan")), _read("ABC1234", 0.9)], "ABC1234"),
    ],
)  # fmt: skip
def test_fuse(reads: list[PlateRead], expected: str | None) -> None:
    fused = fuse(reads)
    assert (fused.text if fused else None) == expected


def test_fuse_shapes_the_vote_to_a_plate_format_from_characters_the_reads_gave() -> None:
    # most frames read a blurred California 4 as L (LRAR512 fits no US format), one reads 4
    reads = [_read("LRAR512", 0.8), _read("LRAR512", 0.8), _read("LRAR512", 0.8), _read("4RAR512", 0.8)]
    assert fuse(reads).text == "4RAR512"  # type: ignore[union-attr]
    assert fuse(reads, format_prior=False).text == "LRAR512"  # type: ignore[union-attr]
    assert fuse(reads[:3]).text == "LRAR512"  # type: ignore[union-attr]  # no read gave a 4: never invented
    # each position from the reads that fit it: a text no single read produced
    mixed = [_read("5A0G2Q0", 0.9), _read("5A0G2Q0", 0.9), _read("5AOG2Q0", 0.5), _read("5A0G200", 0.5)]
    fused = fuse(mixed)
    assert fused is not None and fused.text == "5AOG200" and fused.format_match == "us-1abc234"
    assert 0.5 < fused.confidence < 0.9


def test_fuse_keeps_sure_reads_of_a_vanity_plate_against_a_shape_from_a_far_reads_characters() -> None:
    # two sure reads of a vanity plate (no digit: no named format) and a far, unsure read giving digits
    # where the plate has letters: `MAR59A` fits a format but borrows two characters from that read alone
    reads = [_read("UM1591", 0.5), _read("MARETA", 0.999), _read("MARETA", 0.994)]
    fused = fuse(reads, weights=[0.035, 0.272, 0.348])
    assert fused is not None and fused.text == "MARETA"
    assert "MAR59A" not in dict(fused.candidates)


def test_fuse_never_reshapes_a_vote_that_fits_a_states_format() -> None:
    # three sure near reads of a California commercial plate (#@#####, no default format) and one far
    # read with an L: the shaped #@@#### text `6ML8575` would take the L from the far read alone
    reads = [_read("6KL9575", 0.7), _read("6M28575", 0.98), _read("6M28575", 1.0), _read("6M28575", 1.0)]
    fused = fuse(reads, weights=[0.08, 0.12, 0.2, 0.38])
    assert fused is not None and fused.text == "6M28575"
    assert "6ML8575" not in dict(fused.candidates)


def test_fuse_shapes_the_vote_to_the_plates_state() -> None:
    # a California commercial plate (#@#####): of unknown state, the vote stands (the one frame's K
    # would make the only text fitting a default format); known as Californian, it is named the state's
    reads = [_read("6F55687", 0.8), _read("6F55687", 0.8), _read("KF55687", 0.8)]
    unknown = fuse(reads)
    assert unknown is not None and (unknown.text, unknown.format_match) == ("6F55687", "us-generic")
    californian = [replace(r, state="CA", state_confidence=0.9) for r in reads]
    fused = fuse(californian)
    assert fused is not None and (fused.text, fused.state, fused.format_match) == ("6F55687", "CA", "ca-#@#####")


def test_fuse_shapes_a_plate_of_unknown_state_to_the_sites_formats() -> None:
    # the California commercial plate above, its state not identified, at a site set to California
    reads = [_read("6F55687", 0.8), _read("6F55687", 0.8), _read("KF55687", 0.8)]
    fused = fuse(reads, site_state="CA")
    assert fused is not None and (fused.text, fused.state, fused.format_match) == ("6F55687", "unknown", "ca-#@#####")
    assert fuse(reads, site_state="FL").format_match == "us-generic"  # type: ignore[union-attr]


def test_fuse_weighs_reads_by_crop_quality() -> None:
    reads = [_read("FAR123", 0.9), _read("FAR123", 0.9), _read("NEAR12", 0.97)]
    assert fuse(reads).text == "FAR123"  # type: ignore[union-attr]
    fused = fuse(reads, weights=[0.2, 0.25, 0.8])
    assert fused is not None and (fused.text, fused.confidence) == ("NEAR12", 0.97)
    assert fuse(reads, weights=[0.0, 0.0, 0.0]).text == "FAR123"  # type: ignore[union-attr]


def test_demo_run_stores_one_crop_and_one_event_per_vehicle(tmp_path: Path) -> None:
    settings = pipeline_settings(tmp_path)
    source = DemoSource("CAM1", seed=0, realtime=False, max_frames=300, clock=lambda: 1_764_000_000.0)
    engine = ScriptedEngine("ABC1234", [0.3, 0.6, 0.85, 0.99])
    pilot = make_pilot(settings, [source], TruthDetector(source.scene), engine)
    pilot.run()
    vehicles = {p.vehicle for i in range(300) for p in source.scene.render(i)[1]}
    events = query_events(settings.output.events_db_url)
    assert len(events) == len(vehicles) >= 3
    assert {e.text for e in events} == {"ABC1234"}
    assert len({e.track_id for e in events}) == len(events)  # (a plate sliding in at the edge may
    # start a tentative track that never confirms, so ids need not be consecutive)
    # every track was read until a read reached the target (0.85, the 3rd read), plus at most one read
    # of a much better crop at its end; the 0.3 was dropped
    assert all(e.reads <= 3 for e in events) and engine.calls <= 4 * len(events) + 1
    crops = sorted(p.name for p in (tmp_path / "crops").rglob("*.jpg"))
    assert crops == sorted(f"CAM1_track{e.track_id}.jpg" for e in events)
    assert all(Path(e.crop_path).is_file() for e in events)
    assert {Path(e.crop_path).stat().st_mode & 0o777 for e in events} == {0o644}  # the dashboard's user reads them
    assert len((tmp_path / "ev.jsonl").read_text().splitlines()) == len(events)
    assert pilot.stats["CAM1"].dropped == 0 and pilot.stats["CAM1"].processed == 300


@pytest.mark.parametrize(
    ("text", "conf"),
    [("ABC1234", 0.3), ("MYFLORIDACOM", 0.99), ("E", 0.99), ("EB", 0.99), ("TOYOTA", 0.99), ("NEWYORK", 0.99)],
)  # low confidence, too long for a plate, fragments shorter than ocr.min_plate_chars (3), a badge, a state name
def test_low_confidence_too_long_or_fragment_reads_make_no_event(tmp_path: Path, text: str, conf: float) -> None:
    settings = pipeline_settings(tmp_path)
    source = DemoSource("CAM1", seed=0, realtime=False, max_frames=120)
    pilot = make_pilot(settings, [source], TruthDetector(source.scene), ScriptedEngine(text, [conf]))
    pilot.run()
    assert pilot.stats["CAM1"].tracks >= 1 and query_events(settings.output.events_db_url) == []


def test_stop_finishes_in_flight_work(tmp_path: Path) -> None:
    settings = pipeline_settings(tmp_path)
    source = DemoSource("CAM1", seed=0, realtime=True)  # endless live camera
    pilot = make_pilot(settings, [source], TruthDetector(source.scene), ScriptedEngine("ABC1234", [0.9]))
    pilot.start()
    assert not pilot.wait(3.0)
    pilot.close()  # what SIGINT/SIGTERM do
    events = query_events(settings.output.events_db_url)
    assert len(events) >= 1 and all(Path(e.crop_path).is_file() for e in events)


def test_score_demo_matches_text_and_time(tmp_path: Path) -> None:
    source = DemoSource("CAM1", seed=0, realtime=False, max_frames=450)
    list(source.frames(threading.Event()))
    passed = source.scene.passed(450)
    from platepilot.store.events import PlateEvent

    def ev(text: str, t0: float, t1: float, state: str = "unknown") -> PlateEvent:
        return PlateEvent("CAM1", 1, t0, t1, text, 0.9, (), "", "x", "", 1, state=state)

    v, u, w = passed[0], passed[2], passed[-1]
    wrong = "TX" if u.state != "TX" else "GA"
    events = [ev(v.text, v.enter_time + 1, v.enter_time + 2, v.state), ev("ZZZ999", 0, 1),
              ev(passed[1].text, 1e6, 1e6 + 1), ev(u.text, u.enter_time + 1, u.enter_time + 2, wrong),
              ev("MISREAD", w.exit_time() - 0.1, w.exit_time())]  # fmt: skip
    score = score_demo(source, events, 0.0)
    assert (score.vehicles, score.exact, score.false_events) == (len(passed), 2, 2)
    assert [truth for truth, _ in score.missed] == [p.text for p in passed if p not in (v, u)]
    assert dict(score.missed)[w.text] == "MISREAD"
    assert (score.states_right, score.states_unknown, score.states_wrong) == (1, 0, 1)
    assert {p.state for p in passed} >= {"FL"} and all(len(p.state) == 2 for p in passed)


@pytest.mark.slow
def test_video_file_with_the_real_detector(tmp_path: Path) -> None:
    video = tmp_path / "road.mp4"
    scene = write_demo_video(video, 75)
    settings = pipeline_settings(tmp_path)
    detector = TextDetPlateDetector(params=TextDetParams(max_side=640))
    engine = ScriptedEngine("ABC1234", [0.9])
    pilot = make_pilot(settings, [VideoFileSource(video, "CAM1")], detector, engine)
    pilot.run()
    vehicles = {p.vehicle for i in range(75) for p in scene.render(i)[1]}
    events = query_events(settings.output.events_db_url)
    assert len(vehicles) <= len(events) <= len(vehicles) + 1  # at most one spurious track
    crops = list((tmp_path / "crops").rglob("*.jpg"))
    assert len(crops) == pilot.stats["CAM1"].tracks and pilot.stats["CAM1"].processed == 75


class _EdgeScene:
    """A 320x240 camera: plate 1 slides in over the left edge (dark while cut off, bright once whole);
    plate 2 stays parked against the right edge (always cut off). Reads say which crop was read."""

    camera_id, live, stills = "CAM1", False, False
    dark, bright = 60, 200

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        rng = np.random.default_rng(0)
        for index in range(16):
            image = rng.integers(0, 40, (240, 320, 3), dtype=np.uint8)  # texture: crops need sharpness
            image[:120] += np.uint8(self.dark if index < 6 else self.bright)
            image[120:] += np.uint8(self.dark)
            yield Frame(self.camera_id, index, 1_764_000_000.0 + index / 10, image)

    @staticmethod
    def detect(image: np.ndarray) -> list[Detection]:
        x = 0.0 if image[:120].mean() < 128 else 40.0
        return [Detection((x, 40.0, x + 80.0, 80.0), 0.9), Detection((260.0, 160.0, 320.0, 190.0), 0.9)]


class _BrightnessReader:
    name = "brightness"

    def __init__(self, cut_text: str) -> None:
        self.cut_text = cut_text
        self.seen: list[float] = []

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        self.seen += [float(i.mean()) for i in images]
        return [_read(self.cut_text if i.mean() < 128 else "WHOLE1", 0.95) for i in images]

    def warmup(self, iterations: int = 1) -> None:
        pass


@pytest.mark.parametrize(
    ("cut_text", "expected"),
    [("CUT123", ["WHOLE1", "CUT123"]), ("RIDACOM", ["WHOLE1"])],  # a caption is no plate
)
def test_crops_cut_off_by_the_frame_edge_are_read_only_as_a_last_resort(
    tmp_path: Path, cut_text: str, expected: list[str]
) -> None:
    scene, reader = _EdgeScene(), _BrightnessReader(cut_text)
    settings = pipeline_settings(tmp_path)
    detector = SimpleNamespace(name="edge", detect=scene.detect)
    pilot = make_pilot(settings, [scene], detector, reader)  # type: ignore[arg-type]
    pilot.run()
    events = {e.track_id: e for e in query_events(settings.output.events_db_url)}
    assert [e.text for _, e in sorted(events.items())] == expected
    assert events[min(events)].reads == sum(m >= 128 for m in reader.seen)  # only its whole crops were read
    assert sum(m < 128 for m in reader.seen) == 1  # the parked plate's best cut-off crop, once, as a last resort


class _ApproachScene:
    """A 320x240 camera: one plate drives towards it, from 40 to 184 px wide, over 16 frames."""

    camera_id, live, stills = "CAM1", False, False
    box_margin = (0.0, 0.0)

    def __init__(self) -> None:
        self.boxes = [(160 - w / 2, 120 - w / 4, 160 + w / 2, 120 + w / 4) for w in range(40, 200, 9)]

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        rng = np.random.default_rng(0)
        for index in range(len(self.boxes)):
            image = rng.integers(0, 255, (240, 320, 3), dtype=np.uint8)  # texture: crops need sharpness
            yield Frame(self.camera_id, index, 1_764_000_000.0 + index / 10, image)

    def detect(self, image: np.ndarray) -> list[Detection]:
        self.index = getattr(self, "index", -1) + 1
        return [Detection(self.boxes[self.index], 0.9)]


class _WidthReader:
    """Reads a crop narrower than `width` as `narrow`, a wider one as `wide`; records the widths read.
    By default a far (narrow) plate reads confidently wrong and a near one right, as small crops do."""

    name = "width"

    def __init__(
        self, width: int = 100, narrow: PlateRead = _read("FAR123", 0.9), wide: PlateRead = _read("NEAR12", 0.97)
    ) -> None:
        self.width, self.narrow, self.wide = width, narrow, wide
        self.widths: list[int] = []

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        self.widths += [i.shape[1] for i in images]
        return [self.narrow if i.shape[1] < self.width else self.wide for i in images]

    def warmup(self, iterations: int = 1) -> None:
        pass


@pytest.mark.parametrize("agree_reads", [1, 2])
def test_a_satisfied_track_reads_its_much_better_last_crop_once_more(tmp_path: Path, agree_reads: int) -> None:
    scene, reader = _ApproachScene(), _WidthReader()
    settings = pipeline_settings(tmp_path)
    settings = settings.model_copy(update={"ocr": settings.ocr.model_copy(update={"agree_reads": agree_reads})})
    pilot = make_pilot(settings, [scene], SimpleNamespace(name="approach", detect=scene.detect), reader)  # type: ignore[arg-type]
    pilot.run()
    [event] = query_events(settings.output.events_db_url)
    # `agree_reads` confident far reads satisfied the track; its best crop came last, was read once more
    # and outweighs them in the fusion (crop quality)
    assert (event.text, event.reads) == ("NEAR12", agree_reads + 1)
    assert all(w < 100 for w in reader.widths[:agree_reads]) and reader.widths[agree_reads:] == [max(reader.widths)]
    assert reader.widths[-1] >= 150


class _SlowReader:
    """Takes 0.2 s a crop, so that better crops come while a read is in flight; reads each crop as the next
    of `texts` (the last one from then on) and records the widths read."""

    name = "slow"

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.widths: list[int] = []

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        time.sleep(0.2)
        out = [_read(self.texts[min(len(self.widths) + i, len(self.texts) - 1)], 0.97) for i in range(len(images))]
        self.widths += [i.shape[1] for i in images]
        return out

    def warmup(self, iterations: int = 1) -> None:
        pass


@pytest.mark.parametrize(
    ("texts", "reads"),
    [(["ABC1234", "ABC1284", "ABC1234"], 3), (["ABC1234", "ABC1284", "ABD1234", "ABC1234"], 4), (["ABC1234"], 2)],
)
def test_a_track_whose_reads_disagree_reads_the_crops_it_passed_over(
    tmp_path: Path, texts: list[str], reads: int
) -> None:
    # every frame comes while the first crop is read: the track reads that crop, then the best one; its
    # reads disagree, so when it ends it reads the next best crops it passed over until two agree
    # (END_READS at most); a track whose two reads agree reads no more
    scene, reader = _ApproachScene(), _SlowReader(texts)
    settings = pipeline_settings(tmp_path)
    pilot = make_pilot(settings, [scene], SimpleNamespace(name="approach", detect=scene.detect), reader)  # type: ignore[arg-type]
    pilot.run()
    [event] = query_events(settings.output.events_db_url)
    assert (event.text, event.reads) == ("ABC1234", reads)
    best = max(reader.widths)
    assert reader.widths[1] == best and reader.widths[2:] == sorted(reader.widths[2:], reverse=True)
    assert all(reader.widths[0] < w < best for w in reader.widths[2:])


def test_a_crop_whose_read_failed_no_longer_blocks_the_tracks_later_crops(tmp_path: Path) -> None:
    # a wide crop (a far plate boxed with the whole trunk around it) reads nothing, a narrower one the plate
    scene, reader = _ApproachScene(), _WidthReader(150, narrow=_read("ABC1234", 0.97), wide=_read("", 0.0))
    scene.boxes.reverse()  # the best-looking box comes first, and reads nothing
    settings = pipeline_settings(tmp_path)
    pilot = make_pilot(settings, [scene], SimpleNamespace(name="trunk", detect=scene.detect), reader)  # type: ignore[arg-type]
    pilot.run()
    [event] = query_events(settings.output.events_db_url)
    assert event.text == "ABC1234"
    assert reader.widths[0] >= 150 and min(reader.widths) < 150  # read narrower crops after the failed one


@pytest.mark.slow
def test_the_runtime_imports_neither_torch_nor_mlflow(tmp_path: Path) -> None:
    """An edge device installs onnxruntime and OpenCV only: a whole run must not need the training stack."""
    script = (
        "import sys\n"
        "from platepilot.cli import main\n"
        "sys.argv = ['platepilot', 'run', '--duration', '2']\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "heavy = sorted(m for m in ('torch', 'torchvision', 'mlflow', 'easyocr') if m in sys.modules)\n"
        "print('heavy:', heavy)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True
    )
    assert "heavy: []" in done.stdout, done.stdout + done.stderr


class _GrayLevelReader:
    """Reads a crop as the plate its grey level stands for (`PLATE1` for level 1, ...)."""

    name = "grey-level"

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        return [_read(f"PLATE{round(float(i.mean()) / 40)}", 0.95) for i in images]

    def warmup(self, iterations: int = 1) -> None:
        pass


@pytest.mark.parametrize("stills", [True, False])
def test_a_folder_of_snapshots_reads_every_car_though_each_stops_at_the_same_spot(tmp_path: Path, stills: bool) -> None:
    """A gate camera's snapshots: four cars, one photo each, their plates in the same place. As stills
    (the default) each photo's plate makes its own event; tracked as video frames they would be one car."""
    folder = tmp_path / "snapshots"
    folder.mkdir()
    for car in range(1, 5):
        image = 40 * car + np.random.default_rng(car).integers(0, 3, (240, 320, 3), np.uint8)  # texture: sharpness
        assert cv2.imwrite(str(folder / f"gate_{car:03d}.png"), image)
    settings = pipeline_settings(tmp_path)
    source = open_source(CameraConfig(source=str(folder), stills=stills))
    # the fourth box is weak (under tracker.start_score): in video it would only extend a track, but in a
    # photo it is the plate's one chance
    score = lambda image: 0.3 if image.mean() > 150 else 0.9  # noqa: E731
    detector = SimpleNamespace(
        name="gate", detect=lambda image: [Detection((110.0, 100.0, 210.0, 140.0), score(image))]
    )
    make_pilot(settings, [source], detector, _GrayLevelReader()).run()  # type: ignore[arg-type]
    events = query_events(settings.output.events_db_url)
    if stills:  # each event names its photo, in the database and the JSON lines
        expected = [(f"PLATE{car}", 1, str(folder / f"gate_{car:03d}.png")) for car in range(1, 5)]
        assert sorted((e.text, e.reads, e.source_file) for e in events) == expected
        lines = [json.loads(line) for line in (tmp_path / "ev.jsonl").read_text().splitlines()]
        assert sorted((e["text"], e["source_file"]) for e in lines) == [(t, f) for t, _, f in expected]
        assert event_line(events[0]).endswith(f"  from gate_{events[0].text[-1].zfill(3)}.png")
    else:  # one track through the four photos: one event for four cars
        assert len(events) == 1


def test_a_gate_cameras_upload_folder_is_read_as_photos_arrive(tmp_path: Path) -> None:
    folder = tmp_path / "ftp"
    folder.mkdir()
    settings = pipeline_settings(tmp_path)
    source = open_source(CameraConfig(source=str(folder), follow=True))
    detector = SimpleNamespace(name="gate", detect=lambda image: [Detection((110.0, 100.0, 210.0, 140.0), 0.9)])
    emitted: list[PlateEvent] = []
    pilot = make_pilot(settings, [source], detector, _GrayLevelReader(), emitted.append)  # type: ignore[arg-type]
    pilot.start()
    try:
        for car in range(1, 4):  # one snapshot uploaded at a time, each read before the next arrives
            image = 40 * car + np.random.default_rng(car).integers(0, 3, (240, 320, 3), np.uint8)
            assert cv2.imwrite(str(folder / f"gate_{car:03d}.jpg"), image)
            os.utime(folder / f"gate_{car:03d}.jpg", (time.time() - 5, time.time() - 5))  # the upload is done
            deadline = time.monotonic() + 10
            while len(emitted) < car and time.monotonic() < deadline:
                time.sleep(0.05)
        assert [e.text for e in emitted] == ["PLATE1", "PLATE2", "PLATE3"]
        assert not pilot.wait(0.1)  # still watching the folder
    finally:
        pilot.close()
    # restarted, it goes on where it stopped: the photos that gave events are not read again
    image = 160 + np.random.default_rng(4).integers(0, 3, (240, 320, 3), np.uint8)
    assert cv2.imwrite(str(folder / "gate_004.jpg"), image)
    os.utime(folder / "gate_004.jpg", (time.time() - 5, time.time() - 5))
    source = open_source(CameraConfig(source=str(folder), follow=True))
    emitted_again: list[PlateEvent] = []
    again = make_pilot(settings, [source], detector, _GrayLevelReader(), emitted_again.append)  # type: ignore[arg-type]
    again.start()
    try:
        deadline = time.monotonic() + 10
        while not emitted_again and time.monotonic() < deadline:
            time.sleep(0.05)
        again.wait(1.0)  # time to read anything else it would
    finally:
        again.close()
    assert [e.text for e in emitted_again] == ["PLATE4"]
    assert len(query_events(settings.output.events_db_url)) == 4


def test_run_source_keeps_the_cameras_settings_and_follow_watches_its_folder(tmp_path: Path) -> None:
    from platepilot.config import Settings
    from platepilot.pipeline.run import settings_for_source

    settings = Settings(cameras=[CameraConfig(id="GATE", source="demo", fps_limit=5, stills=False)])
    assert settings_for_source(settings, None) is settings
    [camera] = settings_for_source(settings, str(tmp_path)).cameras
    assert (camera.id, camera.source, camera.fps_limit, camera.stills, camera.follow) == (
        "GATE", str(tmp_path), 5, False, False
    )  # fmt: skip
    assert settings_for_source(settings, str(tmp_path), follow=True).cameras[0].follow
    two = Settings(cameras=[CameraConfig(id="A", source="up/a"), CameraConfig(id="B", source="up/b")])
    assert [c.follow for c in settings_for_source(two, None, follow=True).cameras] == [True, True]  # B was dropped
    with pytest.raises(PlatepilotError, match="--source is empty"):  # an unset $CAM_URL ran the config's camera
        settings_for_source(two, "  ")


class _Approach:
    """A plate whose crop gets better in every frame (a slow approach): each read leaves a better crop
    pending for the track."""

    camera_id, live, stills = "CAM1", False, False

    def __init__(self, frames: int) -> None:
        self.count = frames

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        rng = np.random.default_rng(0)
        for i in range(self.count):
            image = np.zeros((240, 320, 3), np.uint8)
            image[100:140, 100:200] = rng.integers(0, 255, (40, 100, 3), dtype=np.uint8)
            yield Frame("CAM1", i, 1000.0 + i / 15, image)


class _ImprovingDetector:
    name, whole_plates, box_margin = "fixed", False, (0.0, 0.0)

    def __init__(self) -> None:
        self.calls = 0

    def detect(self, image: np.ndarray) -> list[Detection]:
        self.calls += 1
        time.sleep(0.004)
        return [Detection((100.0, 100.0, 200.0, 140.0), min(0.4 + 0.005 * self.calls, 0.99))]


class _DepthReader:
    """Reads every crop as an accepted but unsure read (the track is never satisfied) and notes the stack depth."""

    name = "depth"

    def __init__(self) -> None:
        self.depths: list[int] = []

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        frame, depth = sys._getframe(), 0
        while frame is not None:
            depth, frame = depth + 1, frame.f_back
        self.depths.append(depth)
        time.sleep(0.008)
        return [_read("ABC1234", 0.7) for _ in images]

    def warmup(self, iterations: int = 1) -> None:
        pass


def test_a_track_read_again_and_again_does_not_nest_its_reads(tmp_path: Path) -> None:
    """Each better crop was read by a nested call: a long approach ran into a RecursionError and its event
    was held back until the run ended."""
    reader, events = _DepthReader(), []
    pilot = make_pilot(pipeline_settings(tmp_path), [_Approach(100)], _ImprovingDetector(), reader, events.append)
    pilot.start()
    assert pilot.wait(60)
    pilot.close()
    assert len(reader.depths) >= 10 and max(reader.depths) == min(reader.depths)
    assert [e.text for e in events] == ["ABC1234"]


def test_the_stats_file_is_readable_by_the_dashboards_user(tmp_path: Path) -> None:
    """It was written 0600 (mkstemp's mode), so a dashboard running as another user could not read it."""
    path = tmp_path / "stats.json"
    StatsFile(path).write([CameraStats("CAM1", processed=3)], time.time())
    assert path.stat().st_mode & 0o777 == 0o644 and json.loads(path.read_text())["cameras"][0]["processed"] == 3


def test_the_frame_rate_is_that_of_the_last_minute() -> None:
    """A whole-run mean said 14 fps for a camera dead for half an hour after ten good hours."""
    first = CameraStats("CAM1", started=0.0, processed=48)
    assert first.fps(5.0) == pytest.approx(9.6) and first.fps(5.001) == pytest.approx(9.6, rel=1e-3)  # stats
    # file, then the --stats line: the second said 0.0 from a sample taken a moment before
    stats = CameraStats("CAM1", started=0.0)
    for minute in range(1, 601):  # ten hours at 15 fps, looked at every minute
        stats.processed = minute * 60 * 15
        assert stats.fps(minute * 60.0) == pytest.approx(15.0)
    for minute in range(601, 631):  # then no frame for half an hour
        stats.fps(minute * 60.0)
    assert stats.fps(631 * 60.0) == 0.0


class _Parked:
    """A parked car's plate; `during` runs once, mid-track (a prune while the track is live)."""

    camera_id, live, stills = "CAM1", False, False

    def __init__(self, during: Callable[[], None]) -> None:
        self.during = during

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        image = np.random.default_rng(0).integers(0, 255, (240, 320, 3), dtype=np.uint8)
        for i in range(40):
            if i == 20:
                self.during()
            yield Frame("CAM1", i, 1000.0 + i / 15, image)


class _FixedBox:
    name, whole_plates, box_margin = "fixed", False, (0.0, 0.0)

    def detect(self, image: np.ndarray) -> list[Detection]:
        return [Detection((100.0, 100.0, 200.0, 140.0), 0.9)]


@pytest.mark.parametrize("in_process", [True, False])
def test_retention_leaves_a_live_tracks_crop_or_its_event_says_it_is_gone(tmp_path: Path, in_process: bool) -> None:
    """A car parked longer than retention's 10 min grace: its crop was deleted while its track lived, and the
    event then named a file that was not there, with no note."""
    base = pipeline_settings(tmp_path)
    output = base.output.model_copy(update={"retention": RetentionConfig(max_disk_gb=1e-6)})  # every crop must go
    settings = base.model_copy(update={"output": output})
    events: list[PlateEvent] = []
    box: list[Pilot] = []

    def prune_now() -> None:  # 11 minutes into the track, as the runtime's pruner (or a cron's `prune`) runs
        live = box[0].crops.live_paths if in_process else None
        prune(settings.output, tmp_path / "labels.txt", time.time() + 660, live=live)

    pilot = make_pilot(settings, [_Parked(prune_now)], _FixedBox(), ScriptedEngine("ABC1234", [0.95]), events.append)
    box.append(pilot)
    pilot.run()
    (event,) = events
    if in_process:
        assert Path(event.crop_path).is_file() and event.crop_note == ""
    else:
        assert event.crop_path == "" and "deleted" in event.crop_note
