"""What `detector train` and `extract-yolo` make of the datasets users bring: unreadable frames, polygon
labels, malformed data.yaml and label files, train/val/test splits, and a resume with other options."""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner, Result

from platepilot.cli import app
from platepilot.errors import PlatepilotError
from platepilot.training.detector.data import Frame, read_yolo_boxes, yolo_frames
from platepilot.training.detector.train import is_val

TINY_RUN = ["--arch", "scratch", "--epochs", "1", "--samples", "16", "--batch-size", "8", "--crop", "64",
            "--input-size", "128", "--workers", "0"]  # fmt: skip


def _frames(images: Path, count: int, prefix: str = "f") -> None:
    """`count` 160x120 frames with a bright plate-like box each, labelled `0 cx cy w h` in ../labels/."""
    labels = images.parent / "labels"
    images.mkdir(parents=True, exist_ok=True)
    labels.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(count)
    for i in range(count):
        frame = rng.integers(0, 80, (120, 160, 3), dtype=np.uint8)
        cv2.rectangle(frame, (50, 50), (110, 70), (255, 255, 255), -1)
        assert cv2.imwrite(str(images / f"{prefix}{i}.jpg"), frame)
        (labels / f"{prefix}{i}.txt").write_text("0 0.5 0.5 0.375 0.1667\n")


def _no_mlflow(patch: pytest.MonkeyPatch) -> None:
    """Runs are not logged to MLflow here (seconds per run, and not what these tests are about)."""
    patch.setattr("platepilot.registry.tracking.log_detector_run", lambda *a, **k: "")


@pytest.fixture(autouse=True)
def _runs_not_logged(monkeypatch: pytest.MonkeyPatch) -> None:
    _no_mlflow(monkeypatch)


def _train(*args: str) -> Result:
    return CliRunner().invoke(app, ["detector", "train", *args])


def _counts(output: str) -> tuple[int, int]:
    """(training frames, held-out frames) from the epoch line."""
    found = re.search(r"\((\d+) frames, (\d+) held out\)", output)
    assert found, output
    return int(found[1]), int(found[2])


def _one_line_error(result: Result, *names: object) -> str:
    assert isinstance(result.exception, PlatepilotError), result.output
    message = str(result.exception)
    assert "\n" not in message and all(str(name) in message for name in names), message
    return message


@pytest.mark.slow
def test_frames_opencv_cannot_read_are_left_out_with_one_warning(tmp_path: Path) -> None:
    _frames(tmp_path / "ds" / "images", 3)
    (tmp_path / "ds" / "images" / "zero.jpg").write_bytes(b"")
    (tmp_path / "ds" / "images" / "text.jpg").write_text("not an image")
    for name in ("zero", "text"):
        (tmp_path / "ds" / "labels" / f"{name}.txt").write_text("0 0.5 0.5 0.2 0.1\n")
    out = tmp_path / "run"
    result = _train("--data", str(tmp_path / "ds"), "-o", str(out), *TINY_RUN[:-1], "1")  # a DataLoader worker
    assert result.exit_code == 0, result.output
    assert result.output.count("warning: 2 frame(s) left out") == 1 and sum(_counts(result.output)) == 3


def test_a_dataset_of_unreadable_frames_is_refused_in_one_line(tmp_path: Path) -> None:
    (tmp_path / "ds" / "images").mkdir(parents=True)
    (tmp_path / "ds" / "labels").mkdir()
    (tmp_path / "ds" / "images" / "zero.jpg").write_bytes(b"")
    (tmp_path / "ds" / "labels" / "zero.txt").write_text("0 0.5 0.5 0.2 0.1\n")
    result = _train("--data", str(tmp_path / "ds"), "-o", str(tmp_path / "run"), *TINY_RUN)
    assert "can be read" in _one_line_error(result, tmp_path / "ds", "zero.jpg")


def test_polygon_label_lines_give_the_polygons_box(tmp_path: Path) -> None:
    label = tmp_path / "a.txt"
    label.write_text("0 0.1 0.2 0.5 0.2 0.5 0.4 0.1 0.4\n\n0 0.5 0.5 0.2 0.1\n")
    assert read_yolo_boxes(label) == pytest.approx(np.array([[0.1, 0.2, 0.5, 0.4], [0.4, 0.45, 0.6, 0.55]]))


@pytest.mark.parametrize(
    ("data_yaml", "why"),
    [("names:\n  plate: 0\n", "names must be"), ("- a\n- b\n", "not a list")],
)
def test_extract_yolo_names_a_malformed_data_yaml(tmp_path: Path, data_yaml: str, why: str) -> None:
    _frames(tmp_path / "ds" / "images", 1)
    (tmp_path / "ds" / "data.yaml").write_text(data_yaml)
    result = CliRunner().invoke(app, ["extract-yolo", str(tmp_path / "ds"), "--out", str(tmp_path / "crops")])
    assert why in _one_line_error(result, tmp_path / "ds" / "data.yaml")


def test_detector_train_names_a_data_yaml_that_is_a_list(tmp_path: Path) -> None:
    _frames(tmp_path / "ds" / "images", 2)
    (tmp_path / "ds" / "data.yaml").write_text("- a\n- b\n")
    result = _train("--data", str(tmp_path / "ds"), "-o", str(tmp_path / "run"), *TINY_RUN)
    _one_line_error(result, tmp_path / "ds" / "data.yaml")


@pytest.mark.parametrize("command", ["extract-yolo", "detector"])
def test_a_label_file_that_is_not_utf8_is_named(tmp_path: Path, command: str) -> None:
    _frames(tmp_path / "ds" / "images", 2)
    label = tmp_path / "ds" / "labels" / "f1.txt"
    label.write_text("0 0.5 0.5 0.375 0.1667\n", encoding="utf-16")
    if command == "extract-yolo":
        result = CliRunner().invoke(app, ["extract-yolo", str(tmp_path / "ds"), "--out", str(tmp_path / "crops")])
    else:
        result = _train("--data", str(tmp_path / "ds"), "-o", str(tmp_path / "run"), *TINY_RUN)
    assert "UTF-8" in _one_line_error(result, label)


@pytest.mark.slow
def test_detector_train_learns_on_train_and_validates_on_val_never_on_test(tmp_path: Path) -> None:
    """A Roboflow export (train/, valid/, test/, its data.yaml naming them `../<split>/images`) beside a
    plain folder and `synth scenes` output (data.yaml: train: images, val: images), which keep all theirs."""
    from platepilot.training.datasets import write_scenes

    roboflow = tmp_path / "roboflow"
    for split, count in (("train", 6), ("valid", 3), ("test", 4)):
        _frames(roboflow / split / "images", count, prefix=split)
    (roboflow / "data.yaml").write_text(
        "train: ../train/images\nval: ../valid/images\ntest: ../test/images\nnc: 1\nnames: ['plate']\n"
    )
    _frames(tmp_path / "plain" / "images", 5)
    write_scenes(tmp_path / "scenes", 3, seed=3)
    # one frame in VAL_EVERY of each folder without a val split is held out, and at least one
    held_out = sum(
        max(sum(is_val(Frame(image, np.zeros((0, 4)))) for image in (tmp_path / name / "images").iterdir()), 1)
        for name in ("plain", "scenes")
    )
    folders = [arg for name in ("roboflow", "plain", "scenes") for arg in ("--data", str(tmp_path / name))]
    result = _train(*folders, "-o", str(tmp_path / "run"), *TINY_RUN)
    assert result.exit_code == 0, result.output
    assert _counts(result.output) == (6 + 8 - held_out, 3 + held_out)


def test_split_entries_that_are_no_folder_here_read_the_whole_dataset(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`train: train.txt` (a list file) or a path on the machine that made the dataset (Colab's
    /content/...) trained on every frame before splits were read; refusing them broke those datasets."""
    _frames(tmp_path / "ds" / "images", 3)
    for entry in ("train.txt", "/content/datasets/plates/images/train"):
        (tmp_path / "ds" / "data.yaml").write_text(f"train: {entry}\nval: {entry}\n")
        with caplog.at_level("WARNING"):
            listed = yolo_frames(tmp_path / "ds")
        assert len(listed.train) == 3 and listed.val is None
    assert sum("is no folder of images here" in r.getMessage() for r in caplog.records) == 1  # once per file


def test_a_label_line_with_a_confidence_after_its_box_is_a_box(tmp_path: Path) -> None:
    """`cls cx cy w h conf` (pseudo-labelling tools) aborted training as 'not a YOLO label line'."""
    label = tmp_path / "a.txt"
    label.write_text("0 0.5 0.5 0.2 0.1 0.87\n")
    assert read_yolo_boxes(label) == pytest.approx(np.array([[0.4, 0.45, 0.6, 0.55]]))


@pytest.mark.slow
def test_resume_refuses_changed_options_and_continues_with_the_same(tmp_path: Path) -> None:
    _frames(tmp_path / "ds" / "images", 3)
    args = ["--data", str(tmp_path / "ds"), "-o", str(tmp_path / "run"), *TINY_RUN, "--lr", "0.003"]
    assert _train(*args).exit_code == 0
    for option, value in (("--input-size", "160"), ("--crop", "96"), ("--lr", "0.01")):
        changed = list(args)
        changed[changed.index(option) + 1] = value
        message = _one_line_error(_train(*changed, "--resume"), tmp_path / "run" / "checkpoint.pt")
        assert f"{option.removeprefix('--').replace('-', '_')} " in message and value in message
    result = _train(*args, "--resume")
    assert result.exit_code == 0 and "resuming after epoch 1" in result.output


@pytest.mark.slow
def test_without_output_dir_the_curves_are_named_in_the_new_run_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _frames(tmp_path / "ds" / "images", 2)
    monkeypatch.chdir(tmp_path)
    result = _train("--data", str(tmp_path / "ds"), *TINY_RUN)
    assert result.exit_code == 0, result.output
    curves = re.search(r"curves in (\S+)", result.output.replace("\n", ""))
    assert curves and Path(curves[1]).is_file() and "None" not in curves[1]
