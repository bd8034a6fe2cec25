"""Evaluation on a labels file, its report, and the `ocr` / `eval` commands."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.errors import PlatepilotError
from platepilot.ocr.evaluate import evaluate, write_report
from platepilot.plates.formats import is_standard_label
from platepilot.types import PlateRead

SUMMARY_KEYS = {"n", "exact", "exact_folded", "cer", "cer_folded", "plates_per_s"}


class ScriptedEngine:
    """An OCREngine that reads each crop as the text its mean pixel value was mapped to."""

    name = "scripted"

    def __init__(self, texts: dict[int, str]) -> None:
        self.texts = texts
        self.batches: list[int] = []

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        self.batches.append(len(images))
        return [PlateRead(self.texts[int(image[0, 0, 0])], 0.9, engine=self.name) for image in images]

    def warmup(self, iterations: int = 1) -> None:
        pass


def _write_set(folder: Path, rows: list[tuple[int, str]]) -> Path:
    """Crops whose pixel value is their key, and labels.txt with their true texts."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (value, truth) in enumerate(rows):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((20, 60, 3), value, np.uint8))
        lines.append(f"{i}.png\t{truth}\n")
    labels = folder / "labels.txt"
    labels.write_text("".join(lines))
    return labels


def test_scores_are_counted_right(tmp_path: Path) -> None:
    labels = _write_set(tmp_path, [(1, "ABC123"), (2, "XYZ789"), (3, "DEF456"), (4, "GH0123")])
    engine = ScriptedEngine({1: "ABC123", 2: "XYZ789", 3: "DEF456", 4: "GHO123"})  # O for 0 on the last
    result = evaluate(engine, labels)
    s = result.scores
    assert (s.n, s.exact, s.exact_folded) == (4, 0.75, 1.0)
    assert s.cer == pytest.approx(1 / 24)
    assert s.cer_folded == 0.0
    assert result.confusions == (("0", "O", 1),)
    assert [(e.truth, e.pred, e.distance) for e in result.errors] == [("GH0123", "GHO123", 1)]
    assert result.plates_per_s > 0


@pytest.mark.parametrize(
    ("text", "standard"),
    [("ABC1234", True), ("800002", True), ("2368", True), ("NTGUILTY", False), ("0", False), ("548", False)],
)
def test_standard_labels_are_serials_with_a_digit(text: str, standard: bool) -> None:
    assert is_standard_label(text) is standard


def test_standard_serials_are_scored_apart_when_some_labels_are_not(tmp_path: Path) -> None:
    labels = _write_set(tmp_path, [(1, "ABC123"), (2, "XYZ789"), (3, "NTGUILTY"), (4, "0")])
    engine = ScriptedEngine({1: "ABC123", 2: "XYZ780", 3: "NTGUILTY", 4: "0"})
    result = evaluate(engine, labels)
    assert result.scores.exact == 0.75
    assert result.standard is not None and (result.standard.n, result.standard.exact) == (2, 0.5)
    assert (result.to_json()["n_standard"], result.to_json()["exact_standard"]) == (2, 0.5)
    every = evaluate(engine, _write_set(tmp_path / "std", [(1, "ABC123"), (2, "XYZ789")]))
    assert every.standard is None and "n_standard" not in every.to_json()  # nothing left out: one score


def test_batches_of_64_skip_and_latest_label(tmp_path: Path) -> None:
    labels = _write_set(tmp_path, [(1, "A1")] * 70 + [(2, "B2")])
    with labels.open("a") as fh:
        fh.write("0.png\t__SKIP__\n1.png\tC3\n")  # later lines win: 0 skipped, 1 relabelled
    engine = ScriptedEngine({1: "A1", 2: "B2"})
    result = evaluate(engine, labels)
    assert engine.batches == [64, 6]
    assert result.scores.n == 70
    assert result.scores.exact == pytest.approx(69 / 70)
    assert evaluate(ScriptedEngine({1: "A1", 2: "B2"}), labels, limit=5).scores.n == 5


def test_unreadable_crops_are_counted_not_fatal(tmp_path: Path) -> None:
    labels = _write_set(tmp_path, [(1, "A1"), (2, "B2")])
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "junk.jpg").write_bytes(b"not a jpeg")
    with labels.open("a") as fh:
        fh.write("empty.jpg\tC3\njunk.jpg\tD4\nmissing.jpg\tE5\n")
    result = evaluate(ScriptedEngine({1: "A1", 2: "B2"}), labels)
    assert result.scores.n == 2
    assert [p.name for p in result.unreadable] == ["empty.jpg", "junk.jpg", "missing.jpg"]
    assert result.to_json()["unreadable"] == 3


@pytest.mark.parametrize(
    ("content", "hint"),
    [
        (b"", "the file is empty"),
        (
            b"\x00\x01\xff\xfe\x89PNG binary\n\x00\x00",
            "no line is <crop path><TAB><TEXT> (2 unusable; line 1: not UTF-8",
        ),
        (b"a.jpg\t__SKIP__\n", "every label is __SKIP__"),
    ],
)
def test_eval_labels_says_why_there_is_nothing_to_evaluate(tmp_path: Path, content: bytes, hint: str) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_bytes(content)
    result = CliRunner().invoke(app, ["eval", "--labels", str(labels), "--engine", "crnn"])
    assert result.exit_code == 1 and isinstance(result.exception, PlatepilotError)
    assert f"no labelled crops to evaluate: {hint}" in str(result.exception)


@pytest.mark.slow
def test_degenerate_images_read_as_unreadable_with_the_default_engine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 1x1 image or a 10000x20 strip is no plate: `-`, never a made-up plate."""
    monkeypatch.chdir(tmp_path)  # the default config
    rng = np.random.default_rng(0)
    shapes = {"one.png": (1, 1, 3), "strip.png": (20, 10_000, 3), "tall.png": (10_000, 20, 3)}
    for name, shape in shapes.items():
        cv2.imwrite(str(tmp_path / name), rng.integers(0, 256, shape, dtype=np.uint8))
    result = CliRunner().invoke(app, ["ocr", *(str(tmp_path / name) for name in shapes)])
    assert result.exit_code == 0, result.output
    assert [line.split("\t")[1] for line in result.output.splitlines()] == ["-", "-", "-"]


def test_nothing_to_evaluate_is_one_clear_error(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a.jpg\t__SKIP__\n")
    with pytest.raises(PlatepilotError, match="no labelled crops"):
        evaluate(ScriptedEngine({}), labels)
    labels.write_text("a.jpg\tA1\n")
    with pytest.raises(PlatepilotError, match="none of its 1 crops could be read"):
        evaluate(ScriptedEngine({}), labels)


def test_tiny_model_json_and_report(tiny_model: Path, labelled_crops: Path, tmp_path: Path) -> None:
    from platepilot.ocr.crnn_service import CRNNOCRService

    result = evaluate(CRNNOCRService(tiny_model), labelled_crops, model=str(tiny_model))
    summary = result.to_json()
    assert set(summary) >= SUMMARY_KEYS
    assert set(summary) - SUMMARY_KEYS <= {"unreadable", "model", "confusions"}
    assert summary["n"] == 8
    assert summary["exact"] == 0.0  # an untrained model reads no plate
    assert len(result.errors) == 8
    json.dumps(summary)
    write_report(result, tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert set(report) >= SUMMARY_KEYS
    assert len(report["errors"]) == 8
    sheet = cv2.imread(str(tmp_path / "report" / "worst_errors.png"))
    assert sheet is not None
    assert sheet.shape[0] == 2 * (64 + 18)  # 8 crops in rows of 6


def test_cli_eval_json_and_report(tiny_model: Path, labelled_crops: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["eval", "--labels", str(labelled_crops), "--model", str(tiny_model)]
    result = runner.invoke(app, [*args, "--json", "--report", str(tmp_path / "out"), "--limit", "5"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert set(summary) >= SUMMARY_KEYS
    assert summary["n"] == 5
    assert (tmp_path / "out" / "report.json").is_file()
    assert (tmp_path / "out" / "worst_errors.png").is_file()
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    assert "exact folded" in table.stdout
    assert "plates/s" in table.stdout


def test_cli_ocr(tiny_model: Path, labelled_crops: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    crops = sorted(labelled_crops.parent.glob("*.jpg"))[:3]
    result = runner.invoke(app, ["ocr", *map(str, crops), "--model", str(tiny_model), "--json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)
    assert [row["path"] for row in rows] == list(map(str, crops))
    assert all(0 <= row["confidence"] <= 1 for row in rows)
    lines = runner.invoke(app, ["ocr", str(crops[0]), "--model", str(tiny_model)])
    assert lines.exit_code == 0
    assert lines.stdout.count("\n") == 1
    assert lines.stdout.startswith(f"{crops[0]}\t")


def test_cli_ocr_reads_every_crop_below_a_folder(tiny_model: Path, labelled_crops: Path, tmp_path: Path) -> None:
    day = labelled_crops.parent / "2026-12-07"  # output/crops keeps a folder per day
    day.mkdir()
    (labelled_crops.parent / "CAM1_track0.jpg").rename(day / "CAM1_track0.jpg")
    (day / "notes.txt").write_text("not a crop")
    runner = CliRunner()
    result = runner.invoke(app, ["ocr", str(labelled_crops.parent), "--model", str(tiny_model), "--json"])
    assert result.exit_code == 0, result.output
    expected = sorted([*labelled_crops.parent.glob("*.jpg"), day / "CAM1_track0.jpg"])
    assert [row["path"] for row in json.loads(result.stdout)] == list(map(str, expected)) and len(expected) == 8
    (tmp_path / "none").mkdir()
    empty = runner.invoke(app, ["ocr", str(tmp_path / "none"), "--model", str(tiny_model)])
    assert empty.exit_code == 1 and empty.stderr.strip() == f"error: {tmp_path / 'none'}: no images in this folder"
    # an empty folder beside a folder of crops: the error was printed, the exit code said all went well
    both = runner.invoke(app, ["ocr", str(tmp_path / "none"), str(labelled_crops.parent), "--model", str(tiny_model)])
    assert both.exit_code == 1 and len(both.stdout.splitlines()) == 8
    tif = tmp_path / "tif"  # OpenCV reads TIFF: a folder of them was "no images"
    tif.mkdir()
    cv2.imwrite(str(tif / "a.tif"), cv2.imread(str(expected[0])))
    assert runner.invoke(app, ["ocr", str(tif), "--model", str(tiny_model)]).exit_code == 0
    links = tmp_path / "links"  # links to crops, and a name with a tab: the labeling page's rules left them out
    links.mkdir()
    (links / "a.jpg").symlink_to(expected[0])
    (links / "b\tc.jpg").write_bytes(expected[1].read_bytes())
    linked = runner.invoke(app, ["ocr", str(links), "--model", str(tiny_model), "--json"])
    assert linked.exit_code == 0 and len(json.loads(linked.stdout)) == 2


def test_cli_ocr_bad_image_exits_1_with_one_line(tiny_model: Path, labelled_crops: Path) -> None:
    empty = labelled_crops.parent / "empty.jpg"
    empty.write_bytes(b"")
    good = labelled_crops.parent / "CAM1_track0.jpg"
    result = CliRunner().invoke(app, ["ocr", str(good), str(empty), "--model", str(tiny_model)])
    assert result.exit_code == 1
    assert result.stderr.strip().splitlines() == [f"error: {empty}: image file is empty (0 bytes)"]
    assert result.stdout.startswith(f"{good}\t")  # the readable one is still read


def test_cli_unknown_engine_and_missing_model(labelled_crops: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    crop = str(labelled_crops.parent / "CAM1_track0.jpg")
    result = runner.invoke(app, ["ocr", crop, "--engine", "tesseract"])
    assert isinstance(result.exception, PlatepilotError)
    assert "unknown OCR engine 'tesseract'" in str(result.exception)
    result = runner.invoke(app, ["ocr", crop, "--model", str(tmp_path / "nope.onnx")])
    assert isinstance(result.exception, PlatepilotError)
    assert "model not found" in str(result.exception)


def test_cli_ocr_reads_a_big_folder_a_chunk_at_a_time(
    tiny_model: Path, labelled_crops: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every photo was decoded before the first was read: a folder of 12 MP photos held them all in memory."""
    from platepilot import cli

    monkeypatch.setattr(cli, "OCR_CHUNK", 3)
    (labelled_crops.parent / "CAM1_track99.jpg").write_bytes(b"")  # unreadable, in the middle of a chunk
    chunks: list[int] = []
    real = cli.with_states
    monkeypatch.setattr(
        cli, "with_states", lambda reads, images, settings: chunks.append(len(images)) or real(reads, images, settings)
    )
    result = CliRunner().invoke(app, ["ocr", str(labelled_crops.parent), "--model", str(tiny_model)])
    assert result.exit_code == 1 and len(result.stdout.splitlines()) == 8  # the others read, the run failed
    assert max(chunks) <= 3 and sum(chunks) == 8 and "image file is empty" in result.stderr
