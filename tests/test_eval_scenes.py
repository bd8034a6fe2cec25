"""Scene evaluation: MANIFEST.tsv reading, the covering rule, the counts, and `eval --scenes`."""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from platepilot.cli import app, main
from platepilot.errors import PlatepilotError
from platepilot.pipeline.scene_eval import covers, evaluate_scenes, write_scene_report
from platepilot.plates.manifest import LabelledPlate, read_manifest
from platepilot.plates.scenes import render_scene
from platepilot.types import BoxXYXY, Detection, PlateRead

HEADER = "image_relpath\tx\ty\tw\th\tplate_text\tregion\n"
JSON_KEYS = {"n", "recall", "read_e2e", "read_e2e_folded", "fp_per_image", "ms_per_image", "ms_per_read", "detector",
             "engine"}  # fmt: skip


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ((0, 0, 10, 10), True),  # exactly the plate
        ((5, 0, 10, 10), True),  # half of it: the floor counts
        ((5.1, 0, 10, 10), False),  # just under half
        ((-50, -50, 60, 60), True),  # a box much larger than the plate
        ((2, 3, 8, 7), False),  # inside, 6x4 of 10x10
        ((20, 20, 30, 30), False),  # elsewhere
    ],
)
def test_covers(box: BoxXYXY, expected: bool) -> None:
    assert covers(box, (0, 0, 10, 10)) is expected


class KeyedDetector:
    """Detections looked up by the image's top-left pixel value (each test image has its own)."""

    name = "keyed"
    whole_plates = False
    box_margin = (0.0, 0.0)

    def __init__(self, boxes: dict[int, list[BoxXYXY]]) -> None:
        self.boxes = boxes

    def detect(self, image: np.ndarray) -> list[Detection]:
        return [Detection(box, 0.9) for box in self.boxes[int(image[0, 0, 0])]]


class PixelReader:
    """Reads a crop as the text its centre pixel value maps to ('' for anything else); records batches."""

    name = "pixel"

    def __init__(self, texts: dict[int, str]) -> None:
        self.texts = texts
        self.batches: list[int] = []

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        self.batches.append(len(images))
        return [PlateRead(self.texts.get(int(im[im.shape[0] // 2, im.shape[1] // 2, 0]), ""), 0.9) for im in images]

    def warmup(self, iterations: int = 1) -> None:
        pass


def _image(folder: Path, name: str, background: int, plates: dict[int, tuple[int, int, int, int]]) -> str:
    """A 200x100 grey PNG whose plate boxes (x, y, w, h) are painted with their key value."""
    image = np.full((100, 200, 3), background, np.uint8)
    for value, (x, y, w, h) in plates.items():
        image[y : y + h, x : x + w] = value
    cv2.imwrite(str(folder / name), image)  # PNG: exact pixel values
    return name


@pytest.fixture
def keyed_manifest(tmp_path: Path) -> Path:
    """Three images: two plates (one found exactly, one by a box covering 60%), one plate whose only box
    covers 40% of it, and a negative (its row has no box)."""
    (tmp_path / "img").mkdir()
    a = _image(tmp_path / "img", "a.png", 10, {1: (20, 20, 60, 20), 2: (120, 50, 60, 20)})
    b = _image(tmp_path / "img", "b.png", 20, {3: (10, 10, 50, 20)})
    c = _image(tmp_path / "img", "c.png", 30, {})
    rows = [
        f"img/{a}\t20\t20\t60\t20\tABC123\tus-fl\n",
        f"img/{a}\t120\t50\t60\t20\tXY0123\tus-fl\n",  # read as XYO123: folded only
        f"img/{b}\t10\t10\t50\t20\tDEF456\tus-fl\n",
        f"img/{c}\t\t\t\t\t\t\n",
    ]
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text(HEADER + "".join(rows))
    return manifest


def test_manifest_groups_plates_by_image_and_keeps_negatives(keyed_manifest: Path) -> None:
    scenes = read_manifest(keyed_manifest)
    assert [s.image.name for s in scenes] == ["a.png", "b.png", "c.png"]
    assert scenes[0].plates == (LabelledPlate((20, 20, 60, 20), "ABC123"), LabelledPlate((120, 50, 60, 20), "XY0123"))
    assert scenes[2].plates == ()
    assert all(s.image.is_file() for s in scenes)  # relative to the manifest's folder


def test_scores_are_counted_right(keyed_manifest: Path) -> None:
    detector = KeyedDetector(
        {
            10: [(20, 20, 80, 40), (144, 50, 180, 70), (0, 80, 15, 95)],  # P1, 60% of P2, a false one
            20: [(10, 10, 30, 30)],  # 40% of P3: P3 not found, and the box is false
            30: [(50, 50, 90, 70)],  # on the negative: false
        }
    )
    reader = PixelReader({1: "ABC123", 2: "XYO123", 3: "DEF456"})
    ticks = itertools.count()
    result = evaluate_scenes(read_manifest(keyed_manifest), detector, reader, timer=lambda: next(ticks) / 100)
    assert (result.images, result.plates, result.found, result.read, result.read_folded) == (3, 3, 2, 1, 2)
    assert result.false_detections == 3
    assert result.recall == pytest.approx(2 / 3)
    assert result.read_e2e == pytest.approx(1 / 3) and result.read_e2e_folded == pytest.approx(2 / 3)
    assert result.fp_per_image == 1.0
    assert result.ms_per_image == pytest.approx(10.0)  # each timed detect is one 0.01 s tick
    assert reader.batches == [2]  # only covering boxes are read, one batch per image
    assert result.crops_read == 2 and result.ms_per_read == pytest.approx(3 * 10.0 / 2)  # 3 timed reads, 2 crops
    summary = result.to_json()
    assert summary.keys() >= JSON_KEYS
    assert (summary["n"], summary["detector"], summary["engine"]) == (3, "keyed", "pixel")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("image\tx\ty\tw\th\ttext\n", "bad header, missing column(s) image_relpath, plate_text"),
        ("", "bad header"),
        (HEADER, "no rows under the header"),
        (HEADER + "img/a.png\t1\t2\tthree\t4\tABC\t\n", "MANIFEST.tsv:2: box x y w h must be numbers"),
        (HEADER + "img/a.png\t1\t2\t0\t4\tABC\t\n", "MANIFEST.tsv:2: box width and height must be > 0"),
        (HEADER + "img/a.png\t1\t2\tnan\t4\tABC\t\n", "MANIFEST.tsv:2: box x y w h must be numbers"),
        (HEADER + "img/a.png\tinf\t2\t3\t4\tABC\t\n", "MANIFEST.tsv:2: box x y w h must be numbers"),
        (HEADER + "\nimg/a.png\t1\t2\t3\t4\tABC\t\n\nimg/a.png\t1\t2\t0\t4\tABC\t\n", "MANIFEST.tsv:5: box width"),
        (HEADER + "img/a.png\t1\t2\t3\t4\tAB?1\t\n", "plate_text 'AB?1' must be letters and digits"),
        (HEADER + "img/a.png\t1\t2\t3\t4\t\t\n", "plate_text '' must be letters and digits"),
        (HEADER + "img/a.png\t1\t2\t3\t4\tABC\tus\textra\n", "MANIFEST.tsv:2: more cells than the header"),
        (HEADER + "img/a.png\t1\t2\t3\t4\tABC\t\nimg/zz.png\t1\t2\t3\t4\tABC\t\n", "MANIFEST.tsv:3: image"),
    ],
)
def test_bad_manifests_name_the_problem(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "img").mkdir()
    _image(tmp_path / "img", "a.png", 10, {})
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text(content)
    with pytest.raises(PlatepilotError) as error:
        read_manifest(manifest)
    assert str(error.value).startswith(str(manifest)) and message in str(error.value)


def _cli_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The stderr of `platepilot ARGS` run as the console script, which must exit 1."""
    with pytest.raises(SystemExit) as exited:
        main(args, prog_name="platepilot")
    assert exited.value.code == 1
    return capsys.readouterr().err


def test_cli_bad_input_is_one_line(tmp_path: Path, keyed_manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "none.tsv"
    assert _cli_error(["eval", "--scenes", str(missing)], capsys).strip() == f"error: {missing}: manifest not found"
    bad = tmp_path / "bad.tsv"
    bad.write_text("path\tbox\n")
    err = _cli_error(["eval", "--scenes", str(bad)], capsys)
    assert err.startswith(f"error: {bad}: bad header") and len(err.strip().splitlines()) == 1
    neither = _cli_error(["eval"], capsys)
    assert neither.strip() == (
        "error: eval needs exactly one of --labels (plate crops), --scenes (a MANIFEST.tsv) "
        "or --states (a state manifest)"
    )
    assert _cli_error(["eval", "--labels", str(bad), "--scenes", str(bad)], capsys) == neither
    model = tmp_path / "x.onnx"
    err = _cli_error(["eval", "--scenes", str(keyed_manifest), "--detector", str(model)], capsys)
    assert err.strip() == f"error: detector '{model}': not auto, platenet, fast or textdet, and no such model file"
    err = _cli_error(["eval", "--scenes", str(keyed_manifest), "--textdet-side", "960"], capsys)
    assert err.strip() == "error: a text detector side (960) goes with detector textdet, not 'auto'"


def _synthetic_manifest(folder: Path) -> Path:
    """Three rendered scenes with one large plate each (true boxes), one of them again with a box where
    no plate is, and a blank image with no plate."""
    big = (s for s in (render_scene(3, i, size=(640, 480)) for i in range(60)) if _one_big_plate(s.boxes_xyxy))
    rows = []
    for index, scene in enumerate(itertools.islice(big, 3)):
        cv2.imwrite(str(folder / f"s{index}.jpg"), scene.image)
        x1, y1, x2, y2 = scene.boxes_xyxy[0]
        rows.append(f"s{index}.jpg\t{x1:.0f}\t{y1:.0f}\t{x2 - x1:.0f}\t{y2 - y1:.0f}\t{scene.texts[0]}\tsynth\n")
    x, y, w, h = _far_box(scene.boxes_xyxy[0], scene.image.shape[1], scene.image.shape[0])
    rows.append(f"s2.jpg\t{x}\t{y}\t{w}\t{h}\tWRONG1\tsynth\n")  # a second, wrongly placed plate
    cv2.imwrite(str(folder / "blank.jpg"), np.full((480, 640, 3), 128, np.uint8))
    rows.append("blank.jpg\t\t\t\t\t\t\n")
    manifest = folder / "MANIFEST.tsv"
    manifest.write_text(HEADER + "".join(rows))
    return manifest


def _one_big_plate(boxes: Sequence[BoxXYXY]) -> bool:
    return len(boxes) == 1 and boxes[0][2] - boxes[0][0] >= 60


def _far_box(plate: BoxXYXY, width: int, height: int) -> tuple[int, int, int, int]:
    """A 60x20 box in the frame corner farthest from `plate`."""
    cx, cy = (plate[0] + plate[2]) / 2, (plate[1] + plate[3]) / 2
    return (4 if cx > width / 2 else width - 64), (4 if cy > height / 2 else height - 24), 60, 20


def test_cli_scenes_json_with_the_text_detector(tmp_path: Path) -> None:
    manifest = _synthetic_manifest(tmp_path)
    args = ["eval", "--scenes", str(manifest), "--detector", "textdet", "--engine", "crnn", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary.keys() >= JSON_KEYS
    assert (summary["n"], summary["images"]) == (4, 4)
    assert (summary["detector"], summary["engine"]) == ("ppocr-textdet@640", "crnn")
    assert 0 < summary["recall"] <= 0.75  # the wrongly placed plate is never found
    assert summary["read_e2e"] <= summary["read_e2e_folded"] <= summary["recall"]
    assert summary["fp_per_image"] >= 0 and summary["ms_per_image"] > 0
    limited = CliRunner().invoke(app, ["eval", "--scenes", str(manifest), "--detector", "textdet", "--engine",
                                       "crnn", "--limit", "1"])  # fmt: skip
    assert limited.exit_code == 0, limited.output
    assert "ppocr-textdet@640, crnn" in limited.stdout and "│      1 │" in limited.stdout
    stills = CliRunner().invoke(app, [*args, "--stills", "--limit", "1"])
    assert stills.exit_code == 0, stills.output
    assert json.loads(stills.stdout)["detector"] == "ppocr-textdet@960"  # as `run` reads a folder of photos


def test_stills_go_with_scenes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("a.jpg\tABC123\n")
    err = _cli_error(["eval", "--labels", str(labels), "--stills"], capsys)
    assert err.strip() == "error: --detector, --textdet-side and --stills go with --scenes, not --labels"


def test_an_unreadable_image_is_named(keyed_manifest: Path) -> None:
    (keyed_manifest.parent / "img" / "b.png").write_bytes(b"")
    scenes = read_manifest(keyed_manifest)
    with pytest.raises(PlatepilotError, match=r"b\.png: image file is empty \(0 bytes\)"):
        evaluate_scenes(scenes, KeyedDetector({10: [], 20: [], 30: []}), PixelReader({}))


def test_a_manifest_saved_with_a_byte_order_mark_reads(keyed_manifest: Path) -> None:
    keyed_manifest.write_text("\ufeff" + keyed_manifest.read_text().replace("\n", "\r\n"))
    assert [s.image.name for s in read_manifest(keyed_manifest)] == ["a.png", "b.png", "c.png"]


def test_a_box_outside_its_image_is_named_not_scored(keyed_manifest: Path) -> None:
    """A photo scaled down after labelling: its plate was scored as missed, and `--report` crashed."""
    manifest = keyed_manifest.read_text().replace("img/b.png\t10\t10\t50\t20", "img/b.png\t500\t500\t50\t20")
    keyed_manifest.write_text(manifest)
    with pytest.raises(
        PlatepilotError, match=r"b\.png: the box of DEF456 \(x 500 y 500 w 50 h 20\) lies outside the 200x100"
    ):
        evaluate_scenes(read_manifest(keyed_manifest), KeyedDetector({10: [], 20: [], 30: []}), PixelReader({}))


def test_a_plate_past_the_image_edge_is_found_by_a_box_over_what_the_image_shows(keyed_manifest: Path) -> None:
    """Labelled 50 px past the left edge, only 10 of its 60 px show: a box over those 10 px covered 17% of
    the labelled box, so the plate could never be found, and the box counted as false."""
    manifest = keyed_manifest.read_text().replace("img/b.png\t10\t10\t50\t20", "img/b.png\t-40\t10\t50\t20")
    keyed_manifest.write_text(manifest)
    detector = KeyedDetector({10: [], 20: [(0, 10, 10, 30)], 30: []})
    result = evaluate_scenes(read_manifest(keyed_manifest), detector, PixelReader({}))
    assert (result.found, result.false_detections) == (1, 0)


def test_the_report_shows_every_plate_not_read(keyed_manifest: Path, tmp_path: Path) -> None:
    detector = KeyedDetector({10: [(20, 20, 80, 40), (144, 50, 180, 70)], 20: [(10, 10, 30, 30)], 30: []})
    reader = PixelReader({1: "ABC123", 2: "XYO123", 3: "DEF456"})
    result = evaluate_scenes(read_manifest(keyed_manifest), detector, reader)
    write_scene_report(result, tmp_path / "report")
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["n"] == 3 and report["read_e2e"] == pytest.approx(1 / 3, abs=1e-4)
    not_found, misread = report["misses"]  # the plate not found comes first
    assert not_found == {
        "image": str(keyed_manifest.parent / "img" / "b.png"), "box_xywh": [10, 10, 50, 20], "text": "DEF456",
        "found": False, "reads": [], "boxes_xyxy": [[10, 10, 30, 30]],
    }  # fmt: skip
    assert (misread["text"], misread["found"], misread["reads"]) == ("XY0123", True, ["XYO123"])
    sheet = cv2.imread(str(tmp_path / "report" / "worst_errors.png"))
    assert sheet.shape == (160 + 18, 2 * 240, 3)  # one row of two captioned misses
    left = sheet[:160, :240]
    assert (left == (0, 0, 255)).all(axis=2).any() and (left == (0, 200, 0)).all(axis=2).any()  # both boxes drawn


def test_cli_scenes_report(tmp_path: Path) -> None:
    manifest = _synthetic_manifest(tmp_path)
    args = ["eval", "--scenes", str(manifest), "--detector", "textdet", "--engine", "crnn"]
    result = CliRunner().invoke(app, [*args, "--report", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert f"report written to {tmp_path / 'r'}/" in result.stdout.replace("\n", "")
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    wrong = [m for m in report["misses"] if m["text"] == "WRONG1"]
    assert wrong and not wrong[0]["found"]  # the wrongly placed plate is never found
    assert len(report["misses"]) == report["n"] - round(report["read_e2e"] * report["n"])
    assert cv2.imread(str(tmp_path / "r" / "worst_errors.png")) is not None
