"""The events store (SQLite WAL + JSONL), its query, the `reads` command, the best-crop store."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sqlite3
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.errors import PlatepilotError
from platepilot.labeling.crops import crop_meta
from platepilot.pipeline.report import events_csv, parse_since
from platepilot.store.crops import CropStore, crop_path, parse_crop_stem
from platepilot.store.events import EventStore, PlateEvent, query_events
from platepilot.store.splits import group_key
from platepilot.types import PlateCrop


def _event(track: int, text: str, first: float) -> PlateEvent:
    return PlateEvent("CAM1", track, first, first + 2, text, 0.91, ((text, 0.8), ("X", 0.1)),
                      f"output/crops/2026-11-23/CAM1_track{track}.jpg", "crnn", "v1", 3, "fl_standard")  # fmt: skip


def _site_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> EventStore:
    """`tmp_path` as a site's folder (its platepilot.yaml names e.db) and that events store, for `reads`."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "platepilot.yaml").write_text(f"output:\n  events_db_url: sqlite:///{tmp_path}/e.db\n")
    return EventStore(f"sqlite:///{tmp_path}/e.db")


def test_events_round_trip_in_wal_mode_and_jsonl(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/events.db"
    store = EventStore(url, tmp_path / "events.jsonl")
    for i, (text, t) in enumerate([("ABC1234", 100.0), ("XYZ987", 200.0), ("ABC1299", 300.0)]):
        store.add(_event(i + 1, text, t))
    store.close()
    assert sqlite3.connect(tmp_path / "events.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert [e.text for e in query_events(url)] == ["ABC1234", "XYZ987", "ABC1299"]
    assert [e.track_id for e in query_events(url, since=150.0)] == [2, 3]
    assert [e.text for e in query_events(url, plate="abc-12")] == ["ABC1234", "ABC1299"]
    assert query_events(url)[0] == _event(1, "ABC1234", 100.0)
    lines = (tmp_path / "events.jsonl").read_text().splitlines()
    assert json.loads(lines[1])["text"] == "XYZ987" and json.loads(lines[1])["candidates"][0] == ["XYZ987", 0.8]


def test_an_event_after_a_torn_jsonl_line_is_a_line_of_its_own(tmp_path: Path) -> None:
    """A power cut mid-append left a fragment; the next event was glued onto it and lost too."""
    jsonl = tmp_path / "events.jsonl"
    store = EventStore(f"sqlite:///{tmp_path}/events.db", jsonl)
    store.add(_event(1, "ABC1234", 100.0))
    with jsonl.open("a") as handle:
        handle.write('{"camera_id": "CAM1", "track_id": 2, "fir')
    store.add(_event(3, "XYZ987", 300.0))
    store.close()
    lines = jsonl.read_text().splitlines()
    assert len(lines) == 3 and [json.loads(lines[i])["track_id"] for i in (0, 2)] == [1, 3]


def test_reads_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _site_store(tmp_path, monkeypatch)
    store.add(_event(4, "GHK555", 1.0e9))
    store.close()
    runner = CliRunner()
    plain = runner.invoke(app, ["reads", "--plate", "GHK"])
    assert plain.exit_code == 0 and "GHK555" in plain.output and "track 4" in plain.output
    as_csv = runner.invoke(app, ["reads", "--csv"])
    assert as_csv.output.splitlines()[0].startswith("camera_id,track_id") and "GHK555" in as_csv.output
    assert runner.invoke(app, ["reads", "--since", "1d"]).output == ""
    bad = runner.invoke(app, ["reads", "--since", "yesterday"])
    assert bad.exit_code != 0


def test_reads_last_lists_the_newest_matching_events_oldest_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _site_store(tmp_path, monkeypatch)
    texts = ["ABC101", "ABC102", "XYZ900", "ABC103", "ABC104", "XYZ901"]
    for i, text in enumerate(texts):  # stored out of time order: the newest is by first_seen, not by row
        store.add(dataclasses.replace(_event(i + 1, text, 1.0e9 + (i * 5) % 6), state="FL" if i % 2 else "GA"))
    store.close()
    runner = CliRunner()

    def listed(*args: str) -> list[str]:
        done = runner.invoke(app, ["reads", *args])
        assert done.exit_code == 0, done.output
        return [text for line in done.output.splitlines() for text in texts if text in line]

    by_time = [t for _, t in sorted(((i * 5) % 6, t) for i, t in enumerate(texts))]
    florida = [t for t in by_time if texts.index(t) % 2]
    assert listed() == by_time
    assert listed("--last", "2") == by_time[-2:]
    assert listed("--plate", "ABC", "--last", "2") == [t for t in by_time if "ABC" in t][-2:]
    assert by_time[-1] == "ABC102" and listed("--state", "FL", "--last", "2") == florida[-2:]
    assert listed("--plate", "ABC10", "--fuzzy", "1", "--last", "3") == [t for t in by_time if "ABC" in t][-3:]
    assert listed("--plate", "ABC104", "--fuzzy", "1", "--state", "FL") == ["ABC103", "ABC102"]
    assert runner.invoke(app, ["reads", "--last", "0"]).exit_code == 2


def test_reads_plate_is_letters_and_digits_never_a_wildcard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--plate %` or `_` listed every event, `A_C` matched ABC123 and `-` (cleaned to nothing) everything;
    ABC.123 found nothing though ABC123 was stored."""
    store = _site_store(tmp_path, monkeypatch)
    for i, text in enumerate(["ABC123", "XYZ987"]):
        store.add(_event(i + 1, text, 1.0e9 + i))
    store.close()
    runner = CliRunner()
    assert "ABC123" in runner.invoke(app, ["reads", "--plate", "abc.123"]).output
    assert runner.invoke(app, ["reads", "--plate", "A_C"]).output == ""  # `_` is dropped: AC is in neither
    for wildcard in ("%", "_", "-"):
        refused = runner.invoke(app, ["reads", "--plate", wildcard])
        assert refused.exit_code == 1 and "holds no letter or digit" in str(refused.exception)
    long = runner.invoke(app, ["reads", "--plate", "ABCDEFGHIJKLMNOPQRS", "--fuzzy", "1"])
    assert isinstance(long.exception, PlatepilotError) and "at most 16" in str(long.exception)


def test_reads_in_the_wrong_folder_says_so_and_creates_no_database(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["reads"])
    assert result.exit_code == 1 and "no events database at output/events.db" in str(result.exception)
    assert not (tmp_path / "output").exists()


def test_a_locked_database_is_one_error_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`prune` while another writer held the database printed a 74-line traceback."""
    import subprocess
    import sys

    url = f"sqlite:///{tmp_path}/e.db"
    EventStore(url).close()
    (tmp_path / "platepilot.yaml").write_text(
        f"output:\n  events_db_url: {url}\n  crops_dir: {tmp_path}/crops\n  retention:\n    max_age_days: 1\n"
    )
    holder = sqlite3.connect(tmp_path / "e.db", isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        done = subprocess.run(
            [sys.executable, "-c", "from platepilot.cli import main; main(['prune'])"],
            cwd=tmp_path, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
    finally:
        holder.rollback()
        holder.close()
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: database error: database is locked"), done.stderr


def test_csv_times_carry_their_utc_offset() -> None:
    """Naive local times made the hour repeated when clocks go back two events at the same time."""
    line = events_csv([_event(1, "ABC123", 1_000_000_000.0)]).splitlines()[1]
    stamp = line.split(",")[2]
    assert datetime.fromisoformat(stamp).timestamp() == 1_000_000_000.0 and datetime.fromisoformat(stamp).tzinfo


def test_a_track_never_overwrites_an_earlier_runs_crop(tmp_path: Path) -> None:
    """A run whose first frame was days earlier (a clock set back) numbered its tracks from 1 again and
    wrote over the crops an earlier run had in today's folder."""
    earlier = CropStore(tmp_path / "crops")
    first = earlier.offer(_crop(1, 0.5, 100))
    assert first is not None and first.path is not None
    before = first.path.read_bytes()
    later = CropStore(tmp_path / "crops")
    second = later.offer(_crop(1, 0.5, 200))
    assert second is not None and second.path is not None and second.path.name == "CAM1_track1_2.jpg"
    assert first.path.read_bytes() == before
    assert later.offer(_crop(1, 0.9, 250)).path == second.path  # type: ignore[union-attr]  # its own file from then on
    assert parse_crop_stem(second.path.stem) == ("CAM1", 1)


@pytest.mark.parametrize(("text", "expected"), [("30m", 10_000 - 1800), ("2h", 10_000 - 7200), ("45s", 9955)])
def test_parse_since(text: str, expected: float) -> None:
    assert parse_since(text, now=10_000) == expected


def _crop(track: int, quality: float, value: int, t: float = 1_764_000_000.0) -> PlateCrop:
    image = np.full((20, 40, 3), value, np.uint8)
    return PlateCrop("CAM1", track, 0, t, image, quality, (0.0, 0.0, 40.0, 20.0))


def test_crop_store_replaces_only_with_better(tmp_path: Path) -> None:
    store = CropStore(tmp_path / "crops")
    first = store.offer(_crop(3, 0.5, 100))
    assert first is not None and first.path.name == "CAM1_track3.jpg"
    assert first.path.parent.name.count("-") == 2 and first.path.parent.parent == tmp_path / "crops"
    before = first.path.read_bytes()
    assert store.offer(_crop(3, 0.4, 200)) is None and first.path.read_bytes() == before
    assert store.offer(_crop(3, 0.7, 200)) is not None and first.path.read_bytes() != before
    assert [p.name for p in first.path.parent.iterdir()] == ["CAM1_track3.jpg"]  # no temp files left
    assert store.next_track_id("CAM1", 1_764_000_000.0) == 4
    assert store.next_track_id("CAM2", 1_764_000_000.0) == 1


@pytest.mark.parametrize(
    ("stem", "parsed"),
    [
        ("CAM1_track7", ("CAM1", 7)),
        ("GATE-2_track12", ("GATE-2", 12)),  # a camera id with '-', as the config allows
        ("CAM2_track3_b", ("CAM2", 3)),  # a crop cut from one track elsewhere
        ("CAM1_track", None),
        ("0001_cars026", None),
        ("CAM_1_track2", None),
    ],
)
def test_one_parse_for_crop_file_names(stem: str, parsed: tuple[str, int] | None) -> None:
    """The crop store's names, as the store, the labeler and training's track groups read them."""
    assert parse_crop_stem(stem) == parsed
    if parsed is not None and "_b" not in stem:
        written = crop_path(Path("crops"), parsed[0], parsed[1], 1_764_000_000.0)
        assert written.stem == stem and parse_crop_stem(written.stem) == parsed
    meta = crop_meta(f"2026-11-24/{stem}.jpg")
    assert (meta.camera, meta.track) == (parsed or (None, None))
    assert group_key(f"crops/{stem}.jpg", "ABC123") == (f"track:{parsed[0]}_{parsed[1]}" if parsed else "text:ABC123")


def test_csv_export_quotes_cells_a_spreadsheet_would_run() -> None:
    hostile = dataclasses.replace(_event(1, "ABC123", 1.0), crop_path='=HYPERLINK("http://x")', model_version="@SUM(1)")
    rows = list(csv.reader(io.StringIO(events_csv([hostile, _event(2, "XYZ9", 5.0)]))))
    assert rows[1][rows[0].index("crop_path")] == '\'=HYPERLINK("http://x")'
    assert rows[1][rows[0].index("model_version")] == "'@SUM(1)"
    assert rows[2][rows[0].index("text")] == "XYZ9" and rows[1][rows[0].index("track_id")] == "1"
    fleet = dataclasses.replace(_event(3, "FLT1", 9.0), device_id="pi1", event_id="pi1/CAM1/r1/3")
    last = list(csv.reader(io.StringIO(events_csv([fleet]))))  # a fleet export tells devices apart
    assert last[1][last[0].index("device_id")] == "pi1" and last[1][last[0].index("event_id")] == "pi1/CAM1/r1/3"


def test_reads_last_lists_events_of_one_moment_in_the_order_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = _site_store(tmp_path, monkeypatch)
    for track in range(1, 5):  # one photo, four plates: one first_seen
        store.add(_event(track, f"ABC10{track}", 1.0e9))
    store.close()
    runner = CliRunner()
    plain = runner.invoke(app, ["reads", "--last", "3"]).output
    fuzzy = runner.invoke(app, ["reads", "--plate", "ABC101", "--fuzzy", "1", "--last", "3"]).output
    assert [f"track {t}" in line for t, line in zip((2, 3, 4), plain.splitlines(), strict=True)] == [True] * 3
    assert [f"track {t}" in line for t, line in zip((2, 3, 4), fuzzy.splitlines(), strict=True)] == [True] * 3
