"""A data set's KNOWN_LABEL_ERRORS.tsv: read, applied to scene manifests and labels files, reported both ways."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from test_eval import ScriptedEngine, _write_set
from test_eval_scenes import HEADER, KeyedDetector, PixelReader, _image
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.errors import PlatepilotError
from platepilot.ocr.evaluate import evaluate
from platepilot.pipeline.scene_eval import evaluate_scenes
from platepilot.plates.label_errors import ERRATA_FILE, LabelError, read_label_errors
from platepilot.plates.manifest import LabelledPlate, read_manifest

ERRATA_HEADER = "image_relpath\tlabel\tobserved\n"


def _errata(folder: Path, *rows: str) -> None:
    (folder / ERRATA_FILE).write_text(ERRATA_HEADER + "".join(f"{r}\n" for r in rows))


def test_errata_are_read_with_their_notes_dropped(tmp_path: Path) -> None:
    assert read_label_errors(tmp_path) == ()  # no file: nothing corrected
    _errata(tmp_path, "images/cars4_066.jpg\t4TXY019\t4TXY091 (digits transposed)")
    (error,) = read_label_errors(tmp_path)
    assert error == LabelError("images/cars4_066.jpg", "4TXY019", "4TXY091")
    assert error.covers("images/cars4_066.jpg") and error.covers("crops/0187_cars4_066.jpg")
    assert not error.covers("crops/0187_cars4_0666.jpg") and not error.covers("images/xcars4_066.jpg")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("image_relpath\tlabel\n", "missing column(s) observed"),
        (ERRATA_HEADER + "a.jpg\tABC123\t\n", f"{ERRATA_FILE}:2: expected an image path"),
        (ERRATA_HEADER + "a.jpg\tABC-12?\tABC123\n", f"{ERRATA_FILE}:2:"),
    ],
)
def test_bad_errata_name_the_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / ERRATA_FILE).write_text(content)
    with pytest.raises(PlatepilotError, match=re.escape(message)):
        read_label_errors(tmp_path)


def _scenes(folder: Path) -> Path:
    """Two photos, one plate each; the second is labelled DEF465 but reads DEF456."""
    (folder / "img").mkdir()
    a = _image(folder / "img", "a.png", 10, {1: (20, 20, 60, 20)})
    b = _image(folder / "img", "b.png", 20, {2: (20, 20, 60, 20)})
    manifest = folder / "MANIFEST.tsv"
    manifest.write_text(HEADER + f"img/{a}\t20\t20\t60\t20\tABC123\tus-fl\nimg/{b}\t20\t20\t60\t20\tDEF465\tus-fl\n")
    return manifest


def test_a_scene_manifest_is_scored_against_the_correction_and_as_labelled(tmp_path: Path) -> None:
    manifest = _scenes(tmp_path)
    detector = KeyedDetector({10: [(20, 20, 80, 40)], 20: [(20, 20, 80, 40)]})
    reader = PixelReader({1: "ABC123", 2: "DEF456"})
    before = evaluate_scenes(read_manifest(manifest), detector, reader).to_json()
    assert before["read_e2e"] == 0.5 and "labels_corrected" not in before

    _errata(tmp_path, "img/b.png\tDEF465\tDEF456 (digits swapped)", "img/a.png\tZZZ999\tABC124")  # 2nd: stale
    scenes = read_manifest(manifest)
    assert scenes[1].plates == (LabelledPlate((20, 20, 60, 20), "DEF456", as_labelled="DEF465"),)
    assert scenes[0].plates[0].as_labelled is None  # its label is not the one the erratum names
    after = evaluate_scenes(scenes, detector, reader).to_json()
    assert (after["read_e2e"], after["read_e2e_folded"]) == (1.0, 1.0)
    assert (after["labels_corrected"], after["read_e2e_as_labelled"]) == (1, 0.5)


def test_a_labels_file_is_scored_both_ways_and_eval_says_so(tmp_path: Path) -> None:
    labels = _write_set(tmp_path, [(1, "ABC123"), (2, "XYZ798"), (3, "DEF456"), (4, "GH0123")])
    engine = ScriptedEngine({1: "ABC123", 2: "XYZ789", 3: "DEF456", 4: "GHO123"})
    _errata(tmp_path, "photos/1.jpg\tXYZ798\tXYZ789")  # crop 1.png was cut from photo 1.jpg
    result = evaluate(engine, labels)
    assert (result.scores.exact, result.scores.exact_folded) == (0.75, 1.0)
    assert result.as_labelled is not None and (result.as_labelled.exact, result.as_labelled.exact_folded) == (0.5, 0.75)
    summary = result.to_json()
    assert (summary["labels_corrected"], summary["exact_as_labelled"]) == (1, 0.5)
    assert [(e.truth, e.pred) for e in result.errors] == [("GH0123", "GHO123")]


def test_eval_scenes_prints_the_score_as_labelled(tmp_path: Path) -> None:
    """The real command on real images with the text detector: the errata line appears under the table."""
    folder = tmp_path / "set"
    folder.mkdir()
    cv2.imwrite(str(folder / "blank.png"), np.full((120, 240, 3), 128, np.uint8))
    (folder / "MANIFEST.tsv").write_text(HEADER + "blank.png\t10\t10\t80\t30\tABC123\tus-fl\n")
    _errata(folder, "blank.png\tABC123\tABC124")
    runner = CliRunner()
    args = ["eval", "--scenes", str(folder / "MANIFEST.tsv"), "--detector", "textdet"]
    result = runner.invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert f"1 label(s) corrected by {folder / ERRATA_FILE}; scored as labelled: read e2e 0.0%" in result.output
    summary = json.loads(runner.invoke(app, [*args, "--json"]).stdout)
    assert summary["labels_corrected"] == 1 and summary["read_e2e_as_labelled"] == 0.0
