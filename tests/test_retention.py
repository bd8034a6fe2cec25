"""Retention: which crops go (age, disk cap, labeled and recent ones kept), events marked or deleted
consistently in SQLite and JSONL, `platepilot prune [--dry-run]`, the pruner thread."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.config import OutputConfig, RetentionConfig
from platepilot.store.events import EventStore, PlateEvent, query_events
from platepilot.store.labels import append_labels
from platepilot.store.retention import RECENT_SECONDS, CropFile, Pruner, plan_prune, prune

NOW = 1_764_000_000.0
DAY = 86_400.0


def _files(*ages_days: float, size: int = 1000) -> list[CropFile]:
    return [CropFile(Path(f"/c/d/CAM1_track{i}.jpg"), NOW - age * DAY, size) for i, age in enumerate(ages_days)]


@pytest.mark.parametrize(
    ("retention", "ages", "events_bytes", "keep", "deleted", "over"),
    [
        (RetentionConfig(), (40, 20, 1), 0, (), [], 0),  # no limits: nothing goes
        (RetentionConfig(max_age_days=30), (40, 31, 20, 1), 0, (), [0, 1], 0),
        (RetentionConfig(max_age_days=30), (40, 31, 20), 0, (0,), [1], 0),  # labeled crops stay
        # 3 crops of 1000 bytes + 500 of events under a 2500-byte cap: the oldest goes
        (RetentionConfig(max_disk_gb=2.5e-6), (40, 20, 1), 500, (), [0], 0),
        (RetentionConfig(max_disk_gb=2.5e-6), (40, 20, 1), 500, (0,), [1], 0),
        # events alone over the cap: every crop goes but the labeled one, the rest is reported
        (RetentionConfig(max_disk_gb=1e-6), (40, 20), 1500, (1,), [0], 1500),
        # age first, then the cap on what is left
        (RetentionConfig(max_age_days=30, max_disk_gb=1.5e-6), (40, 20, 10, 5), 0, (), [0, 1, 2], 0),
    ],
)
def test_plan_prune(
    retention: RetentionConfig,
    ages: tuple[float, ...],
    events_bytes: int,
    keep: tuple[int, ...],
    deleted: list[int],
    over: int,
) -> None:
    crops = _files(*ages)
    plan = plan_prune(crops, retention, events_bytes, NOW, {crops[i].path.resolve() for i in keep})
    assert [crops.index(crop) for crop, _ in plan.crops] == deleted
    assert plan.over_cap == over


def test_recent_crops_are_never_deleted() -> None:
    crops = [CropFile(Path("/c/d/a.jpg"), NOW - RECENT_SECONDS / 2, 10**9)]
    plan = plan_prune(crops, RetentionConfig(max_disk_gb=0.1), 0, NOW, set())
    assert plan.crops == () and plan.over_cap == 10**9 - 10**8


def _seed(tmp_path: Path, ages_days: dict[int, float]) -> OutputConfig:
    """Crops of tracks aged as given (file time and event time), their events in SQLite and JSONL."""
    output = OutputConfig(
        crops_dir=tmp_path / "crops",
        events_db_url=f"sqlite:///{tmp_path}/events.db",
        events_jsonl=tmp_path / "events.jsonl",
        retention=RetentionConfig(max_age_days=30, max_disk_gb=1.0),
    )
    store = EventStore(output.events_db_url, output.events_jsonl)
    for track, age in ages_days.items():
        when = time.time() - age * DAY
        day = time.strftime("%Y-%m-%d", time.localtime(when))
        path = output.crops_dir / day / f"CAM1_track{track}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.full((20, 40, 3), 100, np.uint8))
        os.utime(path, (when, when))
        store.add(PlateEvent("CAM1", track, when, when + 2, "ABC1234", 0.9, (), str(path), "crnn", "v1", 1))
    store.close()
    return output


def test_prune_deletes_old_crops_and_events_and_marks_the_rest(tmp_path: Path) -> None:
    output = _seed(tmp_path, {1: 45.0, 2: 40.0, 3: 10.0, 4: 5.0})
    labels = tmp_path / "labels.txt"
    kept = sorted(output.crops_dir.glob("*/CAM1_track2.jpg"))[0]
    append_labels(labels, [(str(kept), "ABC1234")])  # a labeled crop is training data
    old_day = sorted(output.crops_dir.glob("*/CAM1_track1.jpg"))[0].parent

    dry = prune(output, labels, time.time(), dry_run=True)
    assert (len(dry.plan.crops), dry.events_deleted, dry.jsonl_deleted) == (1, 2, 2)
    assert len(query_events(output.events_db_url)) == 4 and len(list(output.crops_dir.rglob("*.jpg"))) == 4

    # a cap nothing meets: every unlabeled crop goes (the old one by age, the others by the cap, their
    # events marked); the labeled one stays, and what is still over the cap is reported
    capped = output.model_copy(update={"retention": RetentionConfig(max_age_days=30, max_disk_gb=1e-9)})
    report = prune(capped, labels, time.time())
    assert report.events_deleted == 2 and report.jsonl_deleted == 2 and report.plan.over_cap > 0
    assert sorted(p.name for p in output.crops_dir.rglob("*.jpg")) == ["CAM1_track2.jpg"]
    assert not old_day.exists() or old_day == kept.parent  # an emptied day folder goes
    events = {e.track_id: e for e in query_events(output.events_db_url)}
    assert sorted(events) == [3, 4]  # tracks 1 and 2 were older than 30 days
    for event in events.values():
        assert (
            event.crop_path == "" and event.crop_note.startswith("crop deleted ") and "max_disk_gb" in event.crop_note
        )
    lines = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    assert [(e["track_id"], e["crop_path"], e["crop_note"]) for e in lines] == [
        (e.track_id, "", e.crop_note) for e in events.values()
    ]
    assert "deleted 3 crops" in report.line() and "3 events marked" in report.line()


def test_prune_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    assert "nothing to prune" in runner.invoke(app, ["prune"]).output
    output = _seed(tmp_path, {1: 45.0, 2: 3.0})
    (tmp_path / "platepilot.yaml").write_text(
        f"output:\n  crops_dir: {output.crops_dir}\n  events_db_url: {output.events_db_url}\n"
        f"  events_jsonl: {output.events_jsonl}\n  retention:\n    max_age_days: 30\n"
    )
    dry = runner.invoke(app, ["prune", "--dry-run"])
    assert dry.exit_code == 0 and "would delete 1 crops" in dry.output and "CAM1_track1.jpg" in dry.output
    assert len(list(output.crops_dir.rglob("*.jpg"))) == 2
    done = runner.invoke(app, ["prune"])
    assert done.exit_code == 0 and "deleted 1 crops" in done.output and "1 events" in done.output
    assert [p.name for p in output.crops_dir.rglob("*.jpg")] == ["CAM1_track2.jpg"]


def test_the_pruner_thread_prunes_while_the_runtime_runs(tmp_path: Path) -> None:
    output = _seed(tmp_path, {1: 45.0})
    fast = output.model_copy(update={"retention": RetentionConfig(max_age_days=30, interval_minutes=0.001)})
    pruner = Pruner(fast, tmp_path / "labels.txt")
    pruner.start()
    deadline = time.monotonic() + 10
    while list(output.crops_dir.rglob("*.jpg")) and time.monotonic() < deadline:
        time.sleep(0.02)
    pruner.stop()
    assert not list(output.crops_dir.rglob("*.jpg")) and query_events(output.events_db_url) == []


def test_a_full_disk_frees_the_crops_even_when_the_events_file_cannot_be_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Rewriting events.jsonl needs as much free space as the file: it ran before the crops were
    deleted, so on a full disk every prune failed there and no crop was ever freed."""
    import errno

    import platepilot.store.retention as retention

    output = _seed(tmp_path, {1: 45.0, 2: 3.0})

    def disk_full(path: Path, data: bytes, mode: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(retention, "replace_atomically", disk_full)
    capped = output.model_copy(update={"retention": RetentionConfig(max_disk_gb=1e-9)})
    with pytest.raises(OSError, match="No space left"):
        prune(capped, tmp_path / "labels.txt", time.time())
    assert list(output.crops_dir.rglob("*.jpg")) == []  # freed before the events file was tried
    assert all(e.crop_path == "" for e in query_events(output.events_db_url))  # marked before


def test_events_are_found_by_crop_through_an_index(tmp_path: Path) -> None:
    """Without it, each batch of 500 crops scanned the table under the write lock (20 s on 1M rows)."""
    import sqlalchemy as sa

    output = _seed(tmp_path, {1: 3.0})
    engine = sa.create_engine(output.events_db_url)
    with engine.connect() as conn:
        plan = conn.execute(
            sa.text("EXPLAIN QUERY PLAN UPDATE plate_events SET crop_note = 'x' WHERE crop_path IN ('a', 'b')")
        )
        assert "ix_plate_events_crop_path" in " ".join(str(row[-1]) for row in plan)
    engine.dispose()


def test_pruning_as_another_user_leaves_the_events_file_to_its_owner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`sudo platepilot prune` left events.jsonl owned by root: the service user could no longer append.
    Here the pruning process takes itself for another user (its euid), so any user can run the test."""
    output = _seed(tmp_path, {1: 45.0, 2: 3.0})
    assert output.events_jsonl is not None
    owner = output.events_jsonl.stat()
    given: list[tuple[int, int]] = []
    real_fchown = os.fchown

    def fchown(fd: int, uid: int, gid: int) -> None:
        given.append((uid, gid))
        real_fchown(fd, uid, gid)

    monkeypatch.setattr(os, "geteuid", lambda: owner.st_uid + 1)
    monkeypatch.setattr(os, "fchown", fchown)
    prune(output, tmp_path / "labels.txt", time.time())
    assert given == [(owner.st_uid, owner.st_gid)]  # the rewritten file given back to its owner
    assert len(output.events_jsonl.read_text().splitlines()) == 1


def test_the_collectors_crops_go_with_their_events(tmp_path: Path) -> None:
    """The collector keeps crops under <fleet crops>/<device>/<day>/: their rows were pruned, the files
    stayed for good (and never counted against max_disk_gb)."""
    output = _seed(tmp_path, {})
    store = EventStore(output.events_db_url)
    fleet = tmp_path / "fleet_crops"
    for track, age in ((1, 45.0), (2, 3.0)):
        when = time.time() - age * DAY
        path = fleet / "pi1" / time.strftime("%Y-%m-%d", time.localtime(when)) / f"CAM1_track{track}.jpg"
        path.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(path), np.full((20, 40, 3), 100, np.uint8))
        os.utime(path, (when, when))
        store.add(PlateEvent("CAM1", track, when, when + 2, "ABC1234", 0.9, (), str(path), "crnn", "v1", 1))
    store.close()
    report = prune(output, tmp_path / "labels.txt", time.time(), fleet_crops=fleet)
    assert len(report.plan.crops) == 1 and report.events_deleted == 1
    assert [p.name for p in fleet.rglob("*.jpg")] == ["CAM1_track2.jpg"]
    assert [e.track_id for e in query_events(output.events_db_url)] == [2]
    assert sorted(p.name for p in fleet.iterdir()) == ["pi1"] and len(list((fleet / "pi1").iterdir())) == 1
