"""Fault injection with real failing filesystems and real processes: the disk can fail, events never do.

Full and read-only disks are real: a small tmpfs (remounted read-only mid-run where needed) in a private
mount namespace (`unshare --map-root-user --mount`), which vanishes with the process, so no mount is ever
left behind. A crops folder under a regular file and a read-only SQLite database need no mount at all.
"""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from pipeline_fakes import ScriptedEngine, TruthDetector, make_pilot, pipeline_settings, write_demo_video
from test_mqtt import Subscriber

from platepilot.registry.server import free_port
from platepilot.sources.demo import DemoSource
from platepilot.store.crops import CropStore
from platepilot.store.events import EventStore, PlateEvent, query_events
from platepilot.types import PlateCrop

CLIP_FRAMES = 60  # 4 s of the demo road at 15 fps: two vehicles


def _crop(track: int, quality: float = 0.5) -> PlateCrop:
    image = np.full((20, 40, 3), 90, np.uint8)
    return PlateCrop("CAM1", track, 0, 1_764_000_000.0, image, quality, (0.0, 0.0, 40.0, 20.0))


def _outage_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "platepilot.store.outage"]


def test_crops_under_a_regular_file_still_give_every_event(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "blocker").write_text("a file where a folder should be")
    settings = pipeline_settings(tmp_path)
    output = settings.output.model_copy(update={"crops_dir": tmp_path / "blocker" / "crops"})
    settings = settings.model_copy(update={"output": output})
    source = DemoSource("CAM1", seed=0, realtime=False, max_frames=300, clock=lambda: 1_764_000_000.0)
    pilot = make_pilot(settings, [source], TruthDetector(source.scene), ScriptedEngine("ABC1234", [0.9]))
    with caplog.at_level(logging.INFO, logger="platepilot"):
        pilot.run()
    vehicles = {p.vehicle for i in range(300) for p in source.scene.render(i)[1]}
    events = query_events(settings.output.events_db_url)
    assert len(events) == len(vehicles) >= 3  # as many as on a healthy disk
    assert all(e.crop_path == "" and e.crop_note.startswith("crop not written: Not a directory (") for e in events), (
        events[0]
    )
    lines = (tmp_path / "ev.jsonl").read_text().splitlines()
    assert [json.loads(line)["crop_note"] for line in lines] == [e.crop_note for e in events]
    assert pilot.crops.failed == pilot.stats["CAM1"].crops_failed > len(events)
    assert f"{pilot.crops.failed} crops_failed" in pilot.stats["CAM1"].line()
    assert len(_outage_lines(caplog)) == 1, _outage_lines(caplog)  # one line for the outage, not one per frame


def test_a_finished_tracks_crop_is_synced_before_its_event(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = CropStore(tmp_path / "crops")
    stored = store.offer(_crop(1, 0.5))
    assert stored is not None and stored.path is not None and stored.path.stat().st_size > 0
    assert store.persist(stored) is None  # on disk: nothing to say
    assert "cannot sync" not in caplog.text
    stored.path.unlink()  # the crop is gone (pruned meanwhile): the event goes out without it, saying why
    assert "deleted" in (store.persist(stored) or "")


def test_an_outage_is_logged_once_and_its_end_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    blocked = tmp_path / "crops"
    blocked.write_text("not a folder")
    store = CropStore(blocked)
    with caplog.at_level(logging.INFO, logger="platepilot"):
        failed = [store.offer(_crop(track)) for track in (1, 2, 3)]
        blocked.unlink()
        written = store.offer(_crop(4))
    assert all(s is not None and s.path is None and s.note.startswith("crop not written: ") for s in failed)
    assert written is not None and written.path is not None and written.path.is_file() and written.note == ""
    first, recovered = _outage_lines(caplog)
    assert "crops_failed" in first and "working again (3 failed during the outage)" in recovered
    assert store.line().endswith("1 written, 3 crops_failed")


def test_crops_stop_at_the_free_disk_floor(tmp_path: Path) -> None:
    store = CropStore(tmp_path / "crops", min_free_bytes=2**62)
    stored = store.offer(_crop(1))
    assert stored is not None and stored.path is None and "min_free_gb" in stored.note
    assert not (tmp_path / "crops").exists() and store.failed == 1


def _event(track: int) -> PlateEvent:
    return PlateEvent("CAM1", track, 100.0, 101.0, "ABC1234", 0.9, (("ABC1234", 0.9),), "", "crnn", "v1", 2)


def test_a_read_only_database_leaves_the_events_in_the_jsonl_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    EventStore(f"sqlite:///{tmp_path}/ev.db").close()
    read_only = f"sqlite:///file:{tmp_path}/ev.db?mode=ro&uri=true"  # SQLite itself refuses every write
    store = EventStore(read_only, tmp_path / "ev.jsonl")
    with caplog.at_level(logging.INFO, logger="platepilot"):
        assert all(store.add(_event(track)) for track in (1, 2, 3))
    assert len((tmp_path / "ev.jsonl").read_text().splitlines()) == 3
    assert (store.stored, store.lost, store.db.failed) == (3, 0, 3)
    assert len(_outage_lines(caplog)) == 1 and "readonly database" in _outage_lines(caplog)[0]
    nowhere = EventStore(read_only, tmp_path / "blocker" / "ev.jsonl")
    (tmp_path / "blocker").rmdir()
    (tmp_path / "blocker").write_text("a file where a folder should be")
    assert not nowhere.add(_event(4)) and nowhere.lost == 1
    assert "1 stored nowhere" in nowhere.line()


# real processes ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "road.mp4"
    write_demo_video(path, CLIP_FRAMES)
    return path


def _config(folder: Path, clip: Path, **output: object) -> Path:
    """A config reading `clip` with the bundled CRNN, every non-empty read accepted (each track whose
    whole plate showed makes an event), outputs under `folder/out` unless overridden."""
    out = folder / "out"
    config = {
        "cameras": [{"id": "CAM1", "source": str(clip)}],
        "ocr": {"engine": "crnn", "model_path": str(folder / "none.onnx"), "ocr_min_confidence": 0.0},
        "output": {
            "crops_dir": str(out / "crops"),
            "events_db_url": f"sqlite:///{out}/events.db",
            "events_jsonl": str(out / "events.jsonl"),
            "retention": {"min_free_gb": 0},
            **output,
        },
    }
    path = folder / "platepilot.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _in_tmpfs(mount: Path, size_kb: int, script: str = "") -> list[str]:
    """A command prefix running the rest in a private mount namespace with a `size_kb` tmpfs at `mount`;
    `script` (sh) runs in the background once it is mounted."""
    mount.mkdir(parents=True, exist_ok=True)
    setup = f'mount -t tmpfs -o size={size_kb}k tmpfs "{mount}" || exit 99; ({script or ":"}) & exec "$@"'
    return ["unshare", "--map-root-user", "--mount", "sh", "-c", setup, "sh"]


def _run(config: Path, prefix: Sequence[str] = (), timeout: float = 180) -> subprocess.CompletedProcess[str]:
    command = [*prefix, sys.executable, "-m", "platepilot.cli", "run", "--stats", "--config", str(config)]
    done = subprocess.run(command, cwd=config.parent, capture_output=True, text=True, timeout=timeout)
    assert done.returncode != 99, f"cannot mount a tmpfs here: {done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done


def _event_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if " CAM1 track " in line]


def _tracks(stderr: str) -> int:
    last = [line for line in stderr.splitlines() if line.startswith("CAM1: ")][-1]
    return int(last.split(" tracks")[0].rsplit(" ", 1)[1])


@pytest.mark.slow
def test_run_with_crops_on_a_full_disk_keeps_every_event(tmp_path: Path, clip: Path) -> None:
    config = _config(tmp_path, clip)
    done = _run(config, _in_tmpfs(tmp_path / "out" / "crops", 12))
    assert done.returncode == 0, done.stderr
    events = query_events(f"sqlite:///{tmp_path}/out/events.db")
    assert len(events) == _tracks(done.stderr) >= 2  # every track an event, as on a healthy disk
    assert (
        len(_event_lines(done.stdout)) == len(events) == len((tmp_path / "out/events.jsonl").read_text().splitlines())
    )
    lost = [e for e in events if not e.crop_path]
    assert lost and all("No space left on device" in e.crop_note for e in lost)
    outages = [line for line in done.stderr.splitlines() if "No space left" in line]
    ended = [line for line in done.stderr.splitlines() if "working again" in line]
    failed = int(done.stderr.split(" crops_failed")[-2].rsplit(" ", 1)[1])
    assert len(outages) == len(ended) + 1 and failed > len(outages), "one line per outage, not per crop"


def _fill_once_started(folder: Path) -> str:
    """sh: once the run has created its events database, fill the disk of `folder` to the last byte."""
    wal = folder / "events.db-wal"
    return f'while [ ! -e "{wal}" ]; do sleep 0.05; done; sleep 1; cat /dev/zero > "{folder}/filler" 2>/dev/null'


@pytest.mark.slow
def test_a_full_events_disk_still_publishes_every_event(tmp_path: Path, clip: Path, mosquitto: int) -> None:
    """The events disk fills up once the run started: MQTT and stdout carry every event, the loss is
    counted, and the run succeeds because every event reached an output."""
    events_dir = tmp_path / "out"
    mqtt = {"enabled": True, "host": "127.0.0.1", "port": mosquitto, "topic": "pp"}
    config = _config(tmp_path, clip, crops_dir=str(tmp_path / "crops"), mqtt=mqtt)
    subscriber = Subscriber(mosquitto, "pp")
    try:
        done = _run(config, _in_tmpfs(events_dir, 1024, _fill_once_started(events_dir)))
        published = subscriber.wait_for("pp/events", len(_event_lines(done.stdout)))
    finally:
        subscriber.close()
    assert done.returncode == 0, done.stderr
    shown = _event_lines(done.stdout)
    assert len(shown) == _tracks(done.stderr) >= 2 and len(published) == len(shown)
    assert f"events: 0 stored, {len(shown)} stored nowhere" in done.stderr  # the loss is counted
    assert len([line for line in done.stderr.splitlines() if "No space left" in line]) <= 2  # database, JSONL


@pytest.mark.slow
def test_when_every_output_fails_the_run_fails(tmp_path: Path, clip: Path) -> None:
    out = tmp_path / "out"
    config = _config(tmp_path, clip)
    done = _run(config, _in_tmpfs(out, 1024, _fill_once_started(out)))
    assert done.returncode == 1 and "events were stored nowhere" in done.stderr.splitlines()[-1]
    assert len(_event_lines(done.stdout)) == _tracks(done.stderr) >= 2  # stdout still shows them all


@pytest.mark.slow
def test_a_broker_down_for_the_whole_run_loses_nothing(tmp_path: Path, clip: Path) -> None:
    mqtt = {"enabled": True, "host": "127.0.0.1", "port": free_port(), "topic": "pp"}
    done = _run(_config(tmp_path, clip, mqtt=mqtt))
    assert done.returncode == 0, done.stderr
    events = query_events(f"sqlite:///{tmp_path}/out/events.db")
    assert len(events) == _tracks(done.stderr) >= 2
    assert f"{len(events)} failed" in done.stderr and "0 stored nowhere" in done.stderr
    shown = _event_lines(done.stdout)  # piped: one event per line, however long (never wrapped at 80)
    assert len(shown) == len(events) and all(len(line) > 80 and line.endswith(".jpg") for line in shown)
    assert len([line for line in done.stderr.splitlines() if "cannot connect" in line]) == 1


@pytest.mark.slow
def test_kill_9_at_random_moments_tears_nothing(tmp_path: Path, clip: Path) -> None:
    """`run` killed with SIGKILL three times at random moments, then run to the end: every JSONL line is
    whole, SQLite is intact, every event's crop decodes, and no run overwrote an earlier run's crop."""
    config = _config(tmp_path, clip)
    out = tmp_path / "out"
    rng = random.Random(16)
    crops_before: dict[Path, bytes] = {}
    for _ in range(3):
        proc = subprocess.Popen(
            [sys.executable, "-m", "platepilot.cli", "run", "--config", str(config)],
            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        _wait_for_crops(out / "crops", proc)
        time.sleep(rng.uniform(0.0, 3.0))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        _assert_intact(out, crops_before)
        crops_before = {p: p.read_bytes() for p in (out / "crops").rglob("*.jpg")}
    done = _run(config)
    assert done.returncode == 0, done.stderr
    _assert_intact(out, crops_before)


def _wait_for_crops(crops: Path, proc: subprocess.Popen[bytes], timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not any(crops.rglob("*.jpg")) and time.monotonic() < deadline:
        assert proc.poll() is None, "platepilot run ended early"
        time.sleep(0.05)


def _assert_intact(out: Path, earlier: dict[Path, bytes]) -> None:
    for path, data in earlier.items():
        assert path.read_bytes() == data, f"{path} was overwritten"
    lines = (out / "events.jsonl").read_text().splitlines() if (out / "events.jsonl").exists() else []
    events = [json.loads(line) for line in lines]  # a torn line would not parse
    with sqlite3.connect(out / "events.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        rows = db.execute("SELECT crop_path FROM plate_events").fetchall()
    assert len(events) <= len(rows) <= len(events) + 1  # a kill may fall between the two writes
    for (crop_path,) in rows:
        assert cv2.imread(str(crop_path)) is not None, crop_path
