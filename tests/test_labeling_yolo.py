"""Plate crops from YOLO datasets: layouts, padding, small boxes, stable names, the guide's command line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from platepilot.errors import PlatepilotError
from platepilot.labeling.yolo import (
    ExtractOptions,
    YoloBox,
    crop_box,
    extract_crops,
    find_splits,
    parse_label_line,
)
from platepilot.training.datasets import write_scenes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 4-scene synthetic YOLO dataset (images/ + labels/ + data.yaml), made once."""
    out = tmp_path_factory.mktemp("yolo") / "plate_training"
    write_scenes(out, 4, seed=3)
    return out


def _boxes(dataset: Path) -> int:
    return sum(len(p.read_text().splitlines()) for p in (dataset / "labels").glob("*.txt"))


@pytest.mark.parametrize(
    ("line", "box"),
    [
        ("0 0.5 0.5 0.2 0.1", YoloBox(0, 0.5, 0.5, 0.2, 0.1)),
        ("1 0.1 0.2 0.3 0.2 0.3 0.4 0.1 0.4", YoloBox(1, 0.2, 0.3, 0.2, 0.2)),
        ("0 0.5 0.5", None),
        ("plate 0.5 0.5 0.2 0.1", None),
        ("0 302 231.5 76 25", None),  # pixels: clipped to 0-1, the plate became a box of no size
        ("0 1.02 0.5 0.2 0.1", YoloBox(0, 1.02, 0.5, 0.2, 0.1)),  # a centre just past the edge
    ],
)
def test_parse_label_line(line: str, box: YoloBox | None) -> None:
    parsed = parse_label_line(line)
    if box is None:
        assert parsed is None
    else:
        assert parsed is not None and parsed.class_id == box.class_id
        assert (parsed.cx, parsed.cy, parsed.w, parsed.h) == pytest.approx((box.cx, box.cy, box.w, box.h))


def test_crop_box_pads_and_clips() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    crop, bw, bh = crop_box(image, YoloBox(0, 0.5, 0.5, 0.2, 0.2), padding=0.1)
    assert (bw, bh) == (40, 20) and crop.shape[:2] == (24, 48)
    corner, _, _ = crop_box(image, YoloBox(0, 0.02, 0.02, 0.1, 0.1), padding=0.5)
    assert corner.shape[:2] == (12, 24)  # clipped at the image's top-left


def test_extract_writes_every_plate_once(scenes: Path, tmp_path: Path) -> None:
    out = tmp_path / "crops"
    first = extract_crops([scenes], out, ExtractOptions(min_width=1, min_height=1))
    assert len(first.written) == _boxes(scenes) > 0
    assert all(p.parent == out / "plate_training" for p in first.written)
    assert all(cv2.imread(str(p)) is not None for p in first.written)
    again = extract_crops([scenes], out, ExtractOptions(min_width=1, min_height=1))
    assert again.written == [] and again.existing == len(first.written)
    assert len(list(out.rglob("*.jpg"))) == len(first.written)


def test_two_datasets_with_the_same_folder_name_are_not_mixed(scenes: Path, tmp_path: Path) -> None:
    other = tmp_path / "elsewhere" / scenes.name  # another dataset, its folder named alike
    shutil.copytree(scenes, other)
    out = tmp_path / "crops"
    with pytest.raises(PlatepilotError, match="has the same folder name"):
        extract_crops([scenes, other], out, ExtractOptions(min_width=1, min_height=1))
    with pytest.raises(PlatepilotError, match=f"holds the crops of {scenes.resolve()}"):  # in a later run too
        extract_crops([other], out, ExtractOptions(min_width=1, min_height=1))
    assert len(extract_crops([other], tmp_path / "apart", ExtractOptions(min_width=1, min_height=1)).written) > 0


def test_small_boxes_and_other_classes_are_skipped(scenes: Path, tmp_path: Path) -> None:
    huge = extract_crops([scenes], tmp_path / "a", ExtractOptions(min_width=10_000))
    assert huge.written == [] and huge.too_small == _boxes(scenes)
    with pytest.raises(PlatepilotError, match="no class named 'car'"):
        extract_crops([scenes], tmp_path / "b", ExtractOptions(classes=("car",)))
    with pytest.raises(PlatepilotError, match="no class 5; classes: 0=plate"):  # wrote 0 crops, exit 0
        extract_crops([scenes], tmp_path / "b", ExtractOptions(classes=("5",)))
    named = extract_crops([scenes], tmp_path / "c", ExtractOptions(min_width=1, min_height=1, classes=("plate",)))
    assert len(named.written) == _boxes(scenes)
    cars = tmp_path / "cars"  # the same scenes in a dataset that names a second class
    shutil.copytree(scenes, cars)
    (cars / "data.yaml").write_text(yaml.safe_dump({"names": {0: "plate", 1: "car"}}))
    other = extract_crops([cars], tmp_path / "d", ExtractOptions(classes=("1",)))
    assert other.written == [] and other.other_class == _boxes(scenes)


def _split_layouts(scenes: Path, root: Path) -> tuple[Path, Path]:
    """The same scenes as an ultralytics split dataset and a Roboflow export (with a list of names)."""
    ultra, robo = root / "ultra", root / "robo"
    images = sorted((scenes / "images").glob("*.jpg"))
    for i, image in enumerate(images):
        split = "train" if i % 2 == 0 else "val"
        for kind, src in (("images", image), ("labels", scenes / "labels" / f"{image.stem}.txt")):
            (ultra / kind / split).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, ultra / kind / split / src.name)
            (robo / split / kind).mkdir(parents=True, exist_ok=True)
            shutil.copy(src, robo / split / kind / src.name)
    (robo / "data.yaml").write_text(yaml.safe_dump({"names": ["license_plate"]}))
    return ultra, robo


def test_split_layouts(scenes: Path, tmp_path: Path) -> None:
    ultra, robo = _split_layouts(scenes, tmp_path / "ds")
    assert [s for s, _, _ in find_splits(ultra)] == ["train", "val"]
    assert [s for s, _, _ in find_splits(robo)] == ["train", "val"]
    opts = ExtractOptions(min_width=1, min_height=1, classes=("license_plate",))
    result = extract_crops([robo], tmp_path / "out", opts)
    assert len(result.written) == _boxes(scenes)
    assert {p.parent.name for p in result.written} <= {"train", "val"}
    with pytest.raises(PlatepilotError, match="no YOLO layout"):
        find_splits(tmp_path)


def test_guide_command_line(scenes: Path, tmp_path: Path) -> None:
    ultra, _ = _split_layouts(scenes, tmp_path / "datasets")
    out = tmp_path / "data" / "ocr_training" / "extracted_crops"
    cmd = [
        sys.executable, str(ROOT / "scripts/ocr/extract_crops_from_yolo.py"),
        "--datasets", str(ultra), str(scenes), "--out", str(out), "--min-width", "1", "--min-height", "1",
    ]  # fmt: skip
    env = {**os.environ, "COLUMNS": "200"}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"{2 * _boxes(scenes)} crops written" in done.stdout
    assert {p.name for p in out.iterdir()} == {"ultra", "plate_training"}
    first = sorted((ultra / "labels" / "train").glob("*.txt"))[0]
    first.write_text("0 302 231.5 76 25\n" + first.read_text())  # a line in pixels, silently dropped before
    again = subprocess.run([*cmd[:4], "--out", str(tmp_path / "again")], capture_output=True, text=True,
                           env=env, timeout=120, check=False)  # fmt: skip
    assert again.returncode == 0 and "1 label lines skipped" in again.stderr and f"{first}:1" in again.stderr
    missing = subprocess.run(
        [*cmd[:2], "--datasets", str(tmp_path / "nope")], capture_output=True, text=True, env=env, check=False
    )
    assert missing.returncode == 1
    assert "dataset folder not found" in missing.stderr and "Traceback" not in missing.stderr
