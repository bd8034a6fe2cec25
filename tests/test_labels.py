"""labels.txt: reading, appending, crash recovery, compaction, path resolution, concurrent writers."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest

from platepilot.errors import PlatepilotError
from platepilot.store.labels import (
    append_labels,
    compact_labels,
    latest_labels,
    read_labels,
    rejects_path,
    resolve_crop_path,
    scan_labels,
)
from platepilot.types import SKIP, Label


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ocr_training" / "labels.txt"
    written = append_labels(path, [("crops/a.jpg", "ABC123"), (Path("crops/b.jpg"), SKIP)])
    assert written == 2
    assert path.read_text(encoding="utf-8") == "crops/a.jpg\tABC123\ncrops/b.jpg\t__SKIP__\n"
    labels = read_labels(path)
    assert labels == [Label(Path("crops/a.jpg"), "ABC123"), Label(Path("crops/b.jpg"), SKIP)]
    assert [label.line_no for label in labels] == [1, 2]
    assert [label.skipped for label in labels] == [False, True]


def test_later_lines_win_whatever_the_spelling_and_keys_are_first_spellings(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    for crop in ("a.jpg", "b.jpg"):
        (tmp_path / crop).write_bytes(b"")  # the crops, beside the labels file: paths point to them
    path.write_text("a.jpg\tAAA111\n\nb.jpg\tBBB222\n./a.jpg\tDOT000\na.jpg\t__SKIP__\r\na.jpg\tAAA999\n")
    latest = latest_labels(path)
    assert list(latest) == ["a.jpg", "b.jpg"]
    assert latest["a.jpg"] == Label(Path("a.jpg"), "AAA999")
    assert latest["a.jpg"].line_no == 6
    with path.open("a") as labels:
        labels.write(f"{tmp_path / 'b.jpg'}\tABS333\n./a.jpg\tDOT000\n")  # the same two crops, spelled otherwise
    latest = latest_labels(path)
    assert list(latest) == ["a.jpg", "b.jpg"] and latest["b.jpg"].text == "ABS333" and latest["a.jpg"].text == "DOT000"
    assert len(read_labels(path)) == 7


def test_bad_lines_in_the_middle_are_reported_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    lines = [
        b"a.jpg\tABC123",
        b"no-tab-here",
        b"b.jpg\tabc123",
        b"c.jpg\tAB-12",
        b"d.jpg\tA\tB",
        b"\tABC123",
        b"e.jpg\t",
        b"f\xff.jpg\tABC123",
        b"g.jpg\tXYZ789",
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = scan_labels(path)
    assert [label.text for label in report.labels] == ["ABC123", "XYZ789"]
    assert [p.line_no for p in report.problems] == [2, 3, 4, 5, 6, 7, 8]
    reasons = [p.reason for p in report.problems]
    assert reasons[0] == "no tab between path and text"
    assert "'abc123'" in reasons[1]
    assert reasons[3] == "more than one tab"
    assert reasons[4] == "empty path"
    assert reasons[6] == "not UTF-8"
    assert str(report.problems[0]) == "line 2: no tab between path and text: 'no-tab-here'"


@pytest.mark.parametrize("tail", [b"crops/c.jpg\tAB", b"crops/c.jp", b"crops/c.jpg\t", b"crops/\xc3"])
def test_crash_cut_last_line_is_reported_then_quarantined_by_the_next_append(tmp_path: Path, tail: bytes) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes(b"crops/a.jpg\tABC123\ncrops/b.jpg\tXYZ789\n" + tail)
    report = scan_labels(path)
    assert [label.text for label in report.labels] == ["ABC123", "XYZ789"]
    assert len(report.problems) == 1
    assert report.problems[0].line_no == 3
    assert "incomplete last line" in report.problems[0].reason

    append_labels(path, [("crops/d.jpg", "D12EFG")])
    assert path.read_bytes() == b"crops/a.jpg\tABC123\ncrops/b.jpg\tXYZ789\ncrops/d.jpg\tD12EFG\n"
    note, cut = rejects_path(path).read_bytes().splitlines()
    assert cut == tail and b"no newline (cut by a crash?)" in note and note.startswith(b"# ")
    latest = latest_labels(path)
    assert latest["crops/d.jpg"].text == "D12EFG" and latest["crops/d.jpg"].line_no == 3
    assert sorted(latest) == ["crops/a.jpg", "crops/b.jpg", "crops/d.jpg"]


@pytest.mark.parametrize(
    ("crop", "text", "named"),
    [
        ("crops/a.jpg", "abc123", "'abc123'"),
        ("crops/a.jpg", "AB-12", "'AB-12'"),
        ("crops/a.jpg", "ÄB1", "'ÄB1'"),
        ("crops/a.jpg", "", "''"),
        ("crops/a.jpg", "ABC 123", "'ABC 123'"),
        ("crops/a.jpg", "__skip__", "'__skip__'"),
        ("crops/a\tb.jpg", "ABC123", "'\\t'"),
        ("crops/a\nb.jpg", "ABC123", "'\\n'"),
        ("crops/a\rb.jpg", "ABC123", "'\\r'"),
        ("", "ABC123", "is empty"),
    ],
)
def test_bad_labels_are_rejected_and_nothing_is_written(tmp_path: Path, crop: str, text: str, named: str) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes(b"crops/x.jpg\tKLM111\n")
    before = path.read_bytes()
    with pytest.raises(PlatepilotError) as info:
        append_labels(path, [("crops/ok.jpg", "OK1234"), (crop, text)])
    assert named in str(info.value)
    assert path.read_bytes() == before


def test_rejected_batch_creates_no_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "labels.txt"
    with pytest.raises(PlatepilotError):
        append_labels(path, [("a.jpg", "lower")])
    assert not path.parent.exists()


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PlatepilotError, match="labels file not found"):
        read_labels(tmp_path / "nope.txt")


def test_compaction_keeps_latest_per_path_in_first_appearance_order(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("a.jpg\tAAA111\nb.jpg\tBBB222\n\na.jpg\tAAA999\nc.jpg\t__SKIP__\nb.jpg\tBBB333\n")
    path.chmod(0o640)
    before = latest_labels(path)
    assert compact_labels(path) == 2
    assert path.read_text() == "a.jpg\tAAA999\nb.jpg\tBBB333\nc.jpg\t__SKIP__\n"
    assert {k: v.text for k, v in latest_labels(path).items()} == {k: v.text for k, v in before.items()}
    assert path.stat().st_mode & 0o777 == 0o640
    assert sorted(os.listdir(tmp_path)) == ["labels.txt"]
    assert compact_labels(path) == 0


def test_compaction_refuses_files_with_problems(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    path.write_bytes(b"a.jpg\tAAA111\na.jpg\tAAA222\nb.jpg\tAB")
    before = path.read_bytes()
    with pytest.raises(PlatepilotError, match="line 3: incomplete last line"):
        compact_labels(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["labels.txt"]


def test_compaction_is_atomic_when_the_write_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("a.jpg\tAAA111\na.jpg\tAAA222\n")
    before = path.read_bytes()

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        compact_labels(path)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["labels.txt"]


@pytest.mark.parametrize(
    ("exists", "expected"),
    [
        ({"work/crops/a.jpg", "data/crops/a.jpg"}, "work/crops/a.jpg"),
        ({"data/crops/a.jpg"}, "data/crops/a.jpg"),
        (set(), "work/crops/a.jpg"),
    ],
)  # the same image in both places: the working folder's copy (no ambiguity)
def test_resolve_crop_path_order(tmp_path: Path, exists: set[str], expected: str) -> None:
    for rel in exists:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"jpg")
    labels_file = tmp_path / "data" / "labels.txt"
    resolved = resolve_crop_path("crops/a.jpg", labels_file, cwd=tmp_path / "work")
    assert resolved == tmp_path / expected


def test_a_path_naming_two_different_images_is_refused(tmp_path: Path) -> None:
    """`cd synth2 && train --labels ../synth/labels.txt`: synth2's 0000000.jpg was paired with synth's text."""
    for folder, content in (("work", b"one"), ("data", b"two")):
        (tmp_path / folder / "crops").mkdir(parents=True)
        (tmp_path / folder / "crops" / "a.jpg").write_bytes(content)
    with pytest.raises(PlatepilotError, match=r"crops/a\.jpg names both .* which differ"):
        resolve_crop_path("crops/a.jpg", tmp_path / "data" / "labels.txt", cwd=tmp_path / "work")


def test_resolve_crop_path_absolute_and_default_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    absolute = tmp_path / "x.jpg"
    assert resolve_crop_path(str(absolute), Path("labels.txt")) == absolute
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "b.jpg").write_bytes(b"jpg")
    assert resolve_crop_path("b.jpg", Path("data/labels.txt")) == Path("data/b.jpg")
    assert resolve_crop_path("missing.jpg", Path("data/labels.txt")) == Path("missing.jpg")


def _append_many(path: str, worker: int, count: int) -> None:
    for i in range(count):
        append_labels(Path(path), [(f"crops/w{worker}/{'x' * 200}_{i}.jpg", f"W{worker}N{i}")])


def test_concurrent_appends_never_interleave(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), w, 200)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0, 0, 0, 0]
    report = scan_labels(path)
    assert report.problems == ()
    assert len(report.labels) == 800
    texts = {label.text for label in report.labels}
    assert texts == {f"W{w}N{i}" for w in range(4) for i in range(200)}


def test_appends_during_compaction_are_not_lost(tmp_path: Path) -> None:
    path = tmp_path / "labels.txt"
    append_labels(path, [("seed.jpg", "SEED00"), ("seed.jpg", "SEED01")])
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(str(path), w, 100)) for w in range(2)]
    for process in workers:
        process.start()
    while any(process.is_alive() for process in workers):
        compact_labels(path)
    for process in workers:
        process.join(timeout=120)
    assert [process.exitcode for process in workers] == [0, 0]
    latest = latest_labels(path)
    assert len(latest) == 201
    assert latest["seed.jpg"].text == "SEED01"


def test_a_labels_file_saved_with_a_byte_order_mark_keeps_its_first_label(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_bytes("\ufeffcrops/a.jpg\tABC123\r\ncrops/b.jpg\tXYZ9\n".encode())
    assert {k: v.text for k, v in latest_labels(labels).items()} == {"crops/a.jpg": "ABC123", "crops/b.jpg": "XYZ9"}
