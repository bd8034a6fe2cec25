"""Detectors: YOLO ONNX output layouts on tiny graphs built here, the text detector's plate filter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from platepilot.detect.base import box_iou, letterbox, nms, suppress_contained
from platepilot.detect.textdet import TextDetParams, TextDetPlateDetector, plates_from_lines
from platepilot.detect.yolo import YoloOnnxDetector, guess_layout
from platepilot.errors import PlatepilotError
from platepilot.sources.demo import DemoScene


def _constant_model(
    path: Path, output: np.ndarray, size: int = 64, half: bool = False, names: str | None = None
) -> Path:
    """An ONNX graph (1, 3, size, size) -> `output`: the constant plus 0 x mean(input); `half`: float16
    input and output (a half-precision export); `names`: ultralytics' class names metadata."""
    dtype, kind = (np.float16, TensorProto.FLOAT16) if half else (np.float32, TensorProto.FLOAT)
    const = numpy_helper.from_array(output.astype(dtype), "pred")
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["mean"], keepdims=0),
        helper.make_node("Mul", ["mean", "zero"], ["nothing"]),
        helper.make_node("Add", ["pred", "nothing"], ["output0"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fixed",
        [helper.make_tensor_value_info("images", kind, [1, 3, size, size])],
        [helper.make_tensor_value_info("output0", kind, list(output.shape))],
        [const, numpy_helper.from_array(np.zeros((), dtype), "zero")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if names is not None:
        onnx.helper.set_model_props(model, {"names": names})
    onnx.save(model, path)
    return path


# two overlapping boxes on one plate and one other plate, in a 64x64 network input
# (padded to 100 rows with empty predictions: real models have thousands, far more than 4 + classes)
_BOXES_CXCYWH = np.zeros((100, 4), np.float32)
_BOXES_CXCYWH[:3] = [[20, 32, 16, 8], [21, 32, 16, 8], [48, 16, 8, 4]]
_SCORES = np.zeros(100, np.float32)
_SCORES[:3] = [0.9, 0.8, 0.6]


def test_yolov8_layout_with_letterbox_and_nms(tmp_path: Path) -> None:
    pred = np.concatenate([_BOXES_CXCYWH, _SCORES[:, None]], axis=1).T[None]  # (1, 4 + 1, 3)
    detector = YoloOnnxDetector(_constant_model(tmp_path / "v8.onnx", pred), score_threshold=0.5)
    frame = np.zeros((64, 128, 3), np.uint8)  # letterboxed into 64x64: scale 0.5, pad y 16
    dets = detector.detect(frame)
    assert len(dets) == 2 and dets[0].score == pytest.approx(0.9)
    assert dets[0].box_xyxy == pytest.approx((24.0, 24.0, 56.0, 40.0))
    assert dets[1].box_xyxy == pytest.approx((88.0, 0.0, 104.0, 4.0))  # clipped at the top edge


def test_yolov5_layout_multiplies_objectness(tmp_path: Path) -> None:
    objectness = np.where(np.arange(100) == 2, 0.5, 1.0)[:, None]
    rows = np.concatenate([_BOXES_CXCYWH, objectness, _SCORES[:, None]], axis=1)
    detector = YoloOnnxDetector(_constant_model(tmp_path / "v5.onnx", rows[None]), layout="v5", score_threshold=0.5)
    dets = detector.detect(np.zeros((64, 64, 3), np.uint8))
    assert [round(d.score, 2) for d in dets] == [0.9]  # 0.6 x 0.5 = 0.3 falls under the threshold


def test_nms_in_graph_layout(tmp_path: Path) -> None:
    rows = np.zeros((1, 300, 6), np.float32)
    rows[0, 0] = [10, 20, 30, 28, 0.95, 0]
    rows[0, 1] = [40, 10, 56, 18, 0.55, 1]
    detector = YoloOnnxDetector(_constant_model(tmp_path / "nms.onnx", rows))
    dets = detector.detect(np.zeros((64, 64, 3), np.uint8))
    assert [(d.box_xyxy, d.class_id) for d in dets] == [((10, 20, 30, 28), 0), ((40, 10, 56, 18), 1)]


def test_a_one_class_v8_export_transposed_or_in_half_precision_reads(tmp_path: Path) -> None:
    """(1, N, 5) was taken for v5 (no class column: a traceback on every frame), and a float16 input was an
    onnxruntime error on every frame."""
    rows = np.concatenate([_BOXES_CXCYWH, _SCORES[:, None]], axis=1)[None]  # (1, 100, 4 + 1)
    for name, half in (("rows.onnx", False), ("half.onnx", True)):
        detector = YoloOnnxDetector(_constant_model(tmp_path / name, rows, half=half), score_threshold=0.5)
        dets = detector.detect(np.zeros((64, 64, 3), np.uint8))
        assert [round(d.score, 2) for d in dets] == [0.9, 0.6]


def test_a_model_that_cannot_be_decoded_stops_at_load_with_one_line(tmp_path: Path) -> None:
    path = _constant_model(tmp_path / "odd.onnx", np.zeros((1, 100, 5), np.float32))
    with pytest.raises(PlatepilotError, match=r"odd.onnx: YOLO output .* \(layout nms\)") as failed:
        YoloOnnxDetector(path, layout="nms")
    assert "\n" not in str(failed.value)


def test_a_car_and_plate_model_gives_only_its_plates(tmp_path: Path) -> None:
    """Every class was taken for a plate: the car's box went to the reader."""
    scores = np.zeros((100, 2), np.float32)
    scores[0] = [0.9, 0.0]  # a car
    scores[2] = [0.0, 0.8]  # a plate
    pred = np.concatenate([_BOXES_CXCYWH, scores], axis=1).T[None]  # (1, 4 + 2, 100)
    named = _constant_model(tmp_path / "named.onnx", pred, names="{0: 'car', 1: 'license_plate'}")
    assert [
        (d.class_id, round(d.score, 2)) for d in YoloOnnxDetector(named).detect(np.zeros((64, 64, 3), np.uint8))
    ] == [(1, 0.8)]
    unnamed = YoloOnnxDetector(_constant_model(tmp_path / "unnamed.onnx", pred))  # no names: every class
    assert len(unnamed.detect(np.zeros((64, 64, 3), np.uint8))) == 2


@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        ((1, 8400, 5), "v8"),
        ((1, 5, 8400), "v8"),
        ((1, 84, 8400), "v8"),
        ((1, 25200, 6), "v5"),
        ((1, 25200, 85), "v5"),
        ((1, 300, 6), "nms"),
    ],
)
def test_guess_layout(shape: tuple[int, int, int], layout: str) -> None:
    assert guess_layout(shape) == layout


def test_letterbox_maps_back() -> None:
    image = np.zeros((100, 200, 3), np.uint8)
    square, fit = letterbox(image, 64)
    assert square.shape == (64, 64, 3) and fit.scale == pytest.approx(0.32)
    back = fit.to_frame(np.array([[0, 16, 64, 48]], np.float32))
    assert back[0] == pytest.approx([0, 0, 200, 100], abs=0.5)


def test_nms_and_iou() -> None:
    boxes = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30]], np.float32)
    assert nms(boxes, np.array([0.5, 0.9, 0.7]), 0.1, 0.5).tolist() == [1, 2]
    assert box_iou(boxes[:1], boxes[2:])[0, 0] == 0.0


def test_a_box_mostly_inside_a_better_one_is_dropped() -> None:
    boxes = np.array(
        [
            [100, 100, 260, 180],  # the best: a whole plate
            [90, 95, 190, 185],  # its left half, a little taller than it (IoU 0.49: NMS keeps it)
            [300, 100, 460, 180],  # a plate beside it
            [240, 90, 330, 190],  # a box across the gap between them, mostly in neither
        ],
        np.float32,
    )
    assert nms(boxes, np.array([0.9, 0.8, 0.7, 0.6]), 0.3, 0.5).tolist() == [0, 1, 2, 3]
    assert suppress_contained(boxes, 0.6).tolist() == [0, 2, 3]
    assert suppress_contained(boxes, 1.0).tolist() == [0, 1, 2, 3]
    assert suppress_contained(np.zeros((0, 4), np.float32), 0.6).tolist() == []


def test_plate_filter_merges_groups_and_drops_nested_lines() -> None:
    lines = np.array(
        [
            [100, 100, 150, 130, 0.9, 0.0],  # "ABC"
            [160, 101, 210, 131, 0.8, 0.0],  # "D12", beside it: one serial
            [130, 85, 180, 95, 0.7, 0.0],  # the FLORIDA header inside the plate
            [400, 100, 410, 160, 0.9, 0.0],  # a vertical line: not a plate
        ],
        np.float32,
    )
    dets = plates_from_lines(lines, 640, 480, TextDetParams())
    assert len(dets) == 1
    x1, y1, x2, y2 = dets[0].box_xyxy
    # the reported box is the serial with a small margin: it leaves out the header above it
    assert 90 < x1 < 100 and 210 < x2 < 220 and 90 < y1 < 100 and 131 < y2 < 140


@pytest.mark.slow
def test_default_detector_finds_demo_plates() -> None:
    scene = DemoScene(seed=0)
    detector = TextDetPlateDetector(params=TextDetParams(max_side=640))
    found = total = 0
    for index in (30, 60, 90, 120):
        image, truth = scene.render(index)
        boxes = np.array([d.box_xyxy for d in detector.detect(image)], np.float32).reshape(-1, 4)
        for plate in truth:
            if plate.box[0] <= 0 or plate.box[2] >= 1280:
                continue
            total += 1
            found += bool((box_iou(np.array([plate.box], np.float32), boxes) > 0.3).any())
    # the far lane's plates are ~60 px wide at this input size: one may be missed in a frame (the
    # tracker bridges it), so the floor is 80% of the unclipped plates
    assert total >= 4 and found >= 0.8 * total


def test_textdet_gives_folders_of_photos_the_still_image_size_and_cameras_of_a_kind_share_it(tmp_path: Path) -> None:
    import cv2

    from platepilot.config import DetectorConfig
    from platepilot.pipeline.run import camera_detectors
    from platepilot.sources.demo import DemoSource
    from platepilot.sources.files import ImageFolderSource

    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((48, 64, 3), np.uint8))
    sources = [
        DemoSource("CAM1"),
        ImageFolderSource(tmp_path, "CAM2"),
        DemoSource("CAM3"),
        ImageFolderSource(tmp_path, "CAM4"),
        ImageFolderSource(tmp_path, "CAM5", stills=False),  # a video's frames: the video size
    ]
    config = DetectorConfig(kind="textdet", textdet_max_side=512, textdet_still_max_side=1024)
    detectors = camera_detectors(config, sources)
    assert [d.params.max_side for d in detectors.values()] == [512, 1024, 512, 1024, 512]  # type: ignore[attr-defined]
    assert detectors["CAM1"] is detectors["CAM3"] is detectors["CAM5"] and detectors["CAM2"] is detectors["CAM4"]


def test_the_plate_detector_sees_folders_of_photos_larger(tmp_path: Path) -> None:
    import cv2

    from platepilot.config import DetectorConfig
    from platepilot.detect.platenet import PlateNetDetector
    from platepilot.pipeline.run import camera_detectors
    from platepilot.sources.demo import DemoSource
    from platepilot.sources.files import ImageFolderSource

    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((48, 64, 3), np.uint8))
    sources = [
        DemoSource("CAM1"),
        ImageFolderSource(tmp_path, "CAM2"),
        ImageFolderSource(tmp_path, "CAM3", stills=False),
    ]
    detectors = camera_detectors(DetectorConfig(kind="platenet", text_check_below=0), sources)
    assert all(isinstance(d, PlateNetDetector) for d in detectors.values())
    assert [d.still for d in detectors.values()] == [False, True, False]  # type: ignore[attr-defined]
    frame = np.zeros((720, 1280, 3), np.uint8)
    widths = [d.raw(frame)[0].shape[2] for d in detectors.values()]  # type: ignore[attr-defined]
    assert widths == [80, 120, 80]  # 640 and 960 input px at stride 8
