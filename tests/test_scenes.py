"""Synthetic detection scenes: plate boxes, unlabelled distractors, the YOLO dataset and determinism."""

from __future__ import annotations

import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.errors import PlatepilotError
from platepilot.plates.charset import is_valid_text
from platepilot.plates.scenes import Scene, real_plate_photos, render_scene, scene_size, seen_farther
from platepilot.training.datasets import write_scenes, yolo_lines

SIZE = (1280, 720)
N_SCENES = 20


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return [render_scene(4, i) for i in range(N_SCENES)]


def _digest(scene: Scene) -> str:
    return hashlib.sha256(scene.image.tobytes() + repr(scene.boxes_xyxy).encode()).hexdigest()


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    w = max(min(a[2], b[2]) - max(a[0], b[0]), 0.0)
    h = max(min(a[3], b[3]) - max(a[1], b[1]), 0.0)
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
    return w * h / union


def test_plate_boxes_lie_inside_the_image_at_plate_sizes(scenes: list[Scene]) -> None:
    counts = [len(s.boxes_xyxy) for s in scenes]
    assert max(counts) <= 6 and len(set(counts)) >= 3  # 0-6 plates, not always the same number
    for scene in scenes:
        assert scene.image.shape == (SIZE[1], SIZE[0], 3) and scene.image.dtype == np.uint8
        assert len(scene.texts) == len(scene.boxes_xyxy)
        assert all(is_valid_text(t) for t in scene.texts)
        for x1, y1, x2, y2 in scene.boxes_xyxy:
            assert 0 <= x1 < x2 <= SIZE[0] and 0 <= y1 < y2 <= SIZE[1]
            assert 14 <= x2 - x1 <= 340 and 0.25 <= (y2 - y1) / (x2 - x1) <= 1.0


def test_plate_boxes_cover_the_plate(scenes: list[Scene]) -> None:
    """A plate is busy (characters, captions, rim); the same box moved up onto the car's trunk is not."""
    ratios, contrast = [], []
    for scene in scenes:
        grey = cv2.cvtColor(scene.image, cv2.COLOR_BGR2GRAY)
        edges = np.abs(cv2.Laplacian(grey, cv2.CV_32F))
        for x1, y1, x2, y2 in scene.boxes_xyxy:
            x1, y1, x2, y2 = int(x1), int(y1), int(x2), int(y2)
            above = max(y1 - int(1.6 * (y2 - y1)), 0)
            on_trunk = edges[above : above + y2 - y1, x1:x2].mean()
            ratios.append(edges[y1:y2, x1:x2].mean() / (on_trunk + 1e-3))
            contrast.append(grey[y1:y2, x1:x2].std())
    # night, infrared, blur and 20 px plates lower the contrast of some plates, never of most
    assert len(ratios) >= 15 and np.mean(np.array(ratios) > 1.5) >= 0.85
    assert np.mean(np.array(contrast) > 20) >= 0.8 and min(contrast) > 5


def test_distractors_are_present_and_unlabelled(scenes: list[Scene]) -> None:
    with_distractors = [s for s in scenes if s.distractor_boxes]
    assert len(with_distractors) >= N_SCENES // 2
    for scene in with_distractors:
        for d in scene.distractor_boxes:
            assert all(_iou(d, p) < 0.05 for p in scene.boxes_xyxy), d


def test_same_seed_same_scene_other_seed_other_scene() -> None:
    assert _digest(render_scene(8, 3)) == _digest(render_scene(8, 3))
    assert _digest(render_scene(8, 3)) != _digest(render_scene(9, 3))
    small = render_scene(8, 3, size=(640, 360))
    assert small.image.shape == (360, 640, 3)


def _read_yolo(path: Path, width: int, height: int) -> list[tuple[float, float, float, float]]:
    boxes = []
    for line in path.read_text().splitlines():
        cls, cx, cy, w, h = line.split()
        assert cls == "0" and all(len(v.split(".")[1]) == 6 for v in (cx, cy, w, h))
        fx, fy, fw, fh = (float(v) for v in (cx, cy, w, h))
        assert fx - fw / 2 >= 0 and fx + fw / 2 <= 1 + 1e-6 and fy - fh / 2 >= 0 and fy + fh / 2 <= 1 + 1e-6
        boxes.append(((fx - fw / 2) * width, (fy - fh / 2) * height, (fx + fw / 2) * width, (fy + fh / 2) * height))
    return boxes


def test_yolo_dataset_round_trips_boxes_and_resumes(tmp_path: Path) -> None:
    data_yaml = write_scenes(tmp_path, 6, seed=2, workers=1)
    data = yaml.safe_load(data_yaml.read_text())
    assert data["train"] == "images" and data["val"] == "images" and data["names"] == {0: "plate"}
    assert Path(data["path"]) == tmp_path.resolve()
    labels = sorted((tmp_path / "labels").glob("*.txt"))
    assert [p.stem for p in labels] == [f"{i:07d}" for i in range(6)]
    for i, label in enumerate(labels):
        scene = render_scene(2, i, scene_size(2, i))
        image = cv2.imread(str(tmp_path / "images" / f"{label.stem}.jpg"))
        assert image is not None and image.shape == scene.image.shape
        assert label.read_text() == yolo_lines(scene)  # empty file when the scene has no plate
        boxes = _read_yolo(label, image.shape[1], image.shape[0])
        assert len(boxes) == len(scene.boxes_xyxy)
        for got, want in zip(boxes, scene.boxes_xyxy, strict=True):
            assert np.allclose(got, want, atol=1.0)
    stamp = labels[0].stat().st_mtime_ns
    write_scenes(tmp_path, 8, seed=2, workers=2)
    assert len(list((tmp_path / "labels").glob("*.txt"))) == 8
    assert labels[0].stat().st_mtime_ns == stamp  # done scenes are skipped
    assert not list(tmp_path.rglob("*.tmp"))
    with pytest.raises(PlatepilotError, match="holds synthetic scenes of seed 2"):
        write_scenes(tmp_path, 10, seed=3)  # another stream: refused, not mixed in
    assert len(list((tmp_path / "labels").glob("*.txt"))) == 8


def test_cli_synth_scenes_writes_dataset_and_preview(tmp_path: Path) -> None:
    out = tmp_path / "scenes"
    args = ["synth", "scenes", "--count", "3", "--out", str(out), "--preview", str(tmp_path / "s.png")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert len(list((out / "images").glob("*.jpg"))) == 3 and (out / "data.yaml").is_file()
    sheet = cv2.imread(str(tmp_path / "s.png"))
    assert sheet is not None and sheet.shape[1] > 1000


def test_dataset_mixes_720p_and_vga_frames() -> None:
    sizes = {scene_size(0, i) for i in range(40)}
    assert sizes == {(1280, 720), (640, 480)}


def _photo_folder(root: Path) -> Path:
    """Three magenta 'plate photos' listed in a MANIFEST with a split column, plus one held-out photo."""
    (root / "images").mkdir(parents=True)
    rows = ["image_relpath\tstate\tsplit"]
    for i, split in enumerate(("train", "train", "train", "test")):
        cv2.imwrite(str(root / "images" / f"{i}.png"), np.full((128, 224, 3), (255, 0, 255), np.uint8))
        rows.append(f"images/{i}.png\tFLORIDA\t{split}")
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    return root


def test_real_plate_photos_are_pasted_as_unlabelled_plates(tmp_path: Path) -> None:
    photos = real_plate_photos([_photo_folder(tmp_path / "photos")])
    assert len(photos) == 3 and not any(p.endswith("3.png") for p in photos)  # the test split stays unseen
    scenes = [render_scene(5, i, real_plates=photos) for i in range(16)]
    real, synthetic = [], []
    for scene in scenes:
        for (x1, y1, x2, y2), text in zip(scene.boxes_xyxy, scene.texts, strict=True):
            if x2 - x1 < 30:
                continue
            patch = scene.image[int(y1) + 3 : int(y2) - 3, int(x1) + 3 : int(x2) - 3].astype(int)
            magenta = np.mean((patch[..., 1] < patch[..., 0] - 30) & (patch[..., 1] < patch[..., 2] - 30))
            (real if text == "" else synthetic).append(magenta)
    assert len(real) >= 3 and len(synthetic) >= 3
    # infrared frames are grey and night frames dark, so not every pasted photo stays magenta; a
    # rendered design may have some pink in it, never most of its face
    assert np.mean(np.array(real) > 0.3) >= 0.6 and max(synthetic) < 0.3


def test_real_plate_photos_name_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(PlatepilotError, match="no such folder"):
        real_plate_photos([tmp_path / "nope"])


def test_real_plate_photos_take_a_state_manifests_crop_column_and_name_a_bad_header(tmp_path: Path) -> None:
    folder = _photo_folder(tmp_path / "photos")
    manifest = folder / "MANIFEST.tsv"
    manifest.write_text("\ufeff" + manifest.read_text().replace("image_relpath", "crop_relpath"))  # with a BOM
    assert len(real_plate_photos([folder])) == 3
    manifest.write_text("path\tstate\nimages/0.png\tFLORIDA\n")
    with pytest.raises(PlatepilotError, match=r"MANIFEST.tsv: bad header, no image column"):
        real_plate_photos([folder])  # was a KeyError traceback


def test_a_scene_seen_farther_keeps_its_boxes_on_its_plates() -> None:
    image = np.zeros((480, 640, 3), np.uint8)
    image[100:140, 200:300] = 255  # a white "plate"
    frame, boxes = seen_farther(image, np.array([[200, 100, 300, 140]], np.float32), 0.5, (1280, 720))
    assert frame.shape == (720, 1280, 3)
    x1, y1, x2, y2 = boxes[0].round().astype(int)
    assert (x1, y1, x2, y2) == (480 + 100, 240 + 50, 480 + 150, 240 + 70)
    assert frame[y1:y2, x1:x2].min() == 255 and frame[y1 - 3 : y2 + 3, x1 - 3].max() == 0
