"""Label checks on a crafted labels file, the `labels check` and `labels sheet` commands, readiness."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.labeling.checks import check_labels, readiness, text_reasons
from platepilot.labeling.sheet import render_sheet, write_sheet
from platepilot.store.labels import scan_labels
from platepilot.store.provenance import append_records, make_record
from platepilot.types import SKIP

Crops = list[tuple[np.ndarray, str]]


@pytest.mark.parametrize(
    ("text", "codes"),
    [
        ("ABCD12", []),
        ("1713NBS", []),
        (SKIP, []),
        ("RESERVED", ["sign_word", "no_digits"]),
        ("SUITE200", ["sign_word"]),
        ("EXIT12", ["sign_word"]),
        ("PARKING", ["sign_word", "no_digits"]),
        ("ABCDEF", ["no_digits"]),
        ("ABC123456", ["too_long"]),
        ("7", ["too_short"]),
        ("A1B2C3D", ["no_format"]),
    ],
)
def test_text_reasons(text: str, codes: list[str]) -> None:
    assert [r.code for r in text_reasons(text)] == codes


@pytest.fixture()
def crafted(tmp_path: Path, synth_crops: Crops) -> Path:
    """labels.txt (paths relative to its folder) with one crop for each problem the checks know."""
    folder = tmp_path / "set"
    folder.mkdir()
    for i in range(6):
        cv2.imwrite(str(folder / f"c{i}.jpg"), synth_crops[i][0])
    shutil.copy(folder / "c0.jpg", folder / "copy_of_c0.jpg")  # identical bytes, another label below
    (folder / "broken.jpg").write_bytes(b"not a jpeg")
    (folder / "empty.jpg").write_bytes(b"")
    lines = [
        "c0.jpg\tABC1234",
        "copy_of_c0.jpg\tABC1284",
        "c1.jpg\tRESERVED",
        "c2.jpg\tABC123456",
        "c3.jpg\tOLD111",
        "c3.jpg\tXYZ789",  # corrected later: not a conflict
        "./c4.jpg\tDEF456",
        "c4.jpg\tDEF458",  # the same file under another spelling: corrected later, as c3
        "c5.jpg\t__SKIP__",
        "missing.jpg\tGHI789",
        "broken.jpg\tJKL012",
        "empty.jpg\tMNO345",
        "bad line without tab",
    ]
    labels = folder / "labels.txt"
    labels.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return labels


def _codes(report_json: dict[str, object]) -> dict[str, set[str]]:
    flags = report_json["flags"]
    assert isinstance(flags, list)
    return {f["path"]: {r["code"] for r in f["reasons"]} for f in flags}


def test_check_crafted_file(crafted: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(crafted.parent.parent)  # paths resolve beside the labels file, not from here
    report = check_labels(crafted)
    assert (report.lines, report.crops, report.labeled, report.skipped) == (12, 10, 9, 1)
    assert len(report.bad_lines) == 1 and "no tab" in report.bad_lines[0]
    codes = _codes(report.to_json())
    assert codes["c1.jpg"] == {"sign_word", "no_digits"}
    assert codes["c2.jpg"] == {"too_long"}
    assert codes["missing.jpg"] == {"missing_image"}
    assert codes["broken.jpg"] == {"unreadable_image"}
    assert codes["empty.jpg"] == {"unreadable_image"}
    assert codes["c0.jpg"] == codes["copy_of_c0.jpg"] == {"identical_images_different_labels"}
    assert "c3.jpg" not in codes and "c4.jpg" not in codes and "./c4.jpg" not in codes and "c5.jpg" not in codes
    assert scan_labels(crafted).latest["./c4.jpg"].text == "DEF458"  # one crop, its later line wins
    assert report.duplicate_images == 1
    assert report.coverage["A"] >= 1 and report.coverage["Q"] == 0
    assert "Q" in report.few_examples
    assert report.readiness.level == "too few"
    assert not report.ok


def test_unverified_and_pending_prelabels_are_counted(crafted: Path) -> None:
    from datetime import UTC, datetime

    now = datetime(2024, 5, 1, tzinfo=UTC)
    append_records(
        crafted,
        [
            make_record("c3.jpg", "XYZ789", "crnn", 0.97, False, now),  # accepted into labels.txt unseen
            make_record("c0.jpg", "ABC1234", "human", None, True, now),
            make_record("new.jpg", "PQR123", "crnn", 0.5, False, now),  # only a suggestion
        ],
    )
    report = check_labels(crafted, check_images=False)
    assert (report.unverified, report.pending_prelabels) == (1, 1)


def test_readiness_levels_grow_with_labels() -> None:
    levels = [readiness(n).level for n in (0, 50, 200, 600, 1500, 5000)]
    assert levels == ["none", "too few", "starter", "good", "solid", "production"]
    assert readiness(1000).val_crops == 150
    assert readiness(1000).val_margin == pytest.approx(0.048, abs=1e-3)


def test_cli_check_json_strict_and_text(crafted: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["labels", "check", str(crafted), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["labeled"] == 9 and data["skipped"] == 1 and data["ok"] is False
    assert data["flag_counts"]["sign_word"] == 1
    strict = runner.invoke(app, ["labels", "check", str(crafted), "--strict"])
    assert strict.exit_code == 1
    assert "labeled: 9   skipped: 1" in strict.output
    assert "readiness: too few" in strict.output
    assert "RESERVED" in strict.output and "looks like sign text" in strict.output


def test_cli_check_clean_file_passes_strict(labelled_crops: Path) -> None:
    result = CliRunner().invoke(app, ["labels", "check", str(labelled_crops), "--strict"])
    assert result.exit_code == 0, result.output
    assert "flagged: 0" in result.output


def test_cli_check_missing_file_is_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["labels", "check", str(tmp_path / "nope.txt")])
    assert result.exit_code == 1
    assert "labels file not found" in str(result.exception)


def test_sheet_marks_flagged_crops_first(crafted: Path, tmp_path: Path) -> None:
    sheet, shown, flagged = render_sheet(crafted)
    assert (shown, flagged) == (10, 7)
    assert sheet.ndim == 3 and sheet.shape[1] == 6 * (200 + 8)
    first = sheet[: 64 + 38 + 8, : 200 + 8]
    assert tuple(first[1, 1]) == (40, 40, 220)  # red frame on the first (flagged) tile
    out = tmp_path / "sheet.png"
    result = CliRunner().invoke(app, ["labels", "sheet", str(crafted), "--out", str(out), "--flagged-only"])
    assert result.exit_code == 0, result.output
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] == 2 * (64 + 38 + 8)
    with pytest.raises(Exception, match=r"\.png"):
        write_sheet(crafted, tmp_path / "sheet.gif")
