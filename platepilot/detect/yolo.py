"""The user's own YOLO plate detector exported to ONNX (YOLOv5, v8, v9, v11; with or without NMS).

Output layouts, for a (1, A, B) output tensor:
- `v5`: (1, N, 5 + classes) rows of cx, cy, w, h, objectness, class scores; score = obj x class.
- `v8` (also v9, v11): (1, 4 + classes, N) columns of cx, cy, w, h, class scores (no objectness).
- `nms`: NMS inside the graph (ultralytics `nms=True`, YOLOv10 end-to-end): (1, N, 6) rows of
  x1, y1, x2, y2, score, class, zero rows padding the end.
`auto` picks by shape: B == 6 with at most 1000 rows is `nms`; A < B is `v8`; B == 5 is `v8` with its
rows and columns swapped (a one-class export transposed: v5 needs 6 columns); else `v5`. A YOLOv5
model with one class also has B == 6 but thousands of rows, so it is not mistaken for `nms`.
Coordinates are network-input pixels of the letterboxed square; they are mapped back to the frame.

A model with several classes (car and plate) gives only the boxes of the classes whose names, in its
ONNX metadata (`names`, as ultralytics writes it), say `plate`; with no such names every class counts.
The model runs once on a blank frame when it is loaded, so a model this reader cannot decode stops
`run` at start with one line, not on every frame.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Literal

import numpy as np

from platepilot.detect.base import Letterbox, clip_boxes, letterbox, nms, to_detections
from platepilot.errors import PlatepilotError
from platepilot.images import as_bgr
from platepilot.sessions import open_session
from platepilot.types import Detection

YoloLayout = Literal["auto", "v5", "v8", "nms"]
_NMS_MAX_ROWS = 1000


def guess_layout(shape: tuple[int, ...]) -> Literal["v5", "v8", "nms"]:
    """The output layout of a (1, A, B) YOLO output, by shape (see the module docstring)."""
    if len(shape) != 3:
        raise PlatepilotError(f"YOLO output must be (1, A, B), got shape {shape}")
    _, a, b = shape
    if b == 6 and a <= _NMS_MAX_ROWS:
        return "nms"
    return "v8" if a < b or b == 5 else "v5"


def decode(
    output: np.ndarray,
    layout: Literal["v5", "v8", "nms"],
    score_threshold: float,
    iou_threshold: float,
    classes_kept: frozenset[int] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's raw output (A, B) -> kept (boxes xyxy (N, 4), scores (N,), classes (N,)), input pixels;
    only boxes of `classes_kept` (None: of every class)."""
    if layout == "nms":
        if output.shape[1] < 6:
            raise PlatepilotError(f"YOLO output {output.shape} has no x1 y1 x2 y2 score class rows (layout nms)")
        rows = output[output[:, 4] >= score_threshold]
        if classes_kept is not None:
            rows = rows[np.isin(rows[:, 5].astype(np.int64), list(classes_kept))]
        return rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64)
    if layout == "v8":
        output = output.T if output.shape[0] < output.shape[1] else output  # either way round: anchors outnumber
        class_scores = output[:, 4:]
    else:
        class_scores = output[:, 5:] * output[:, 4:5]
    if class_scores.shape[1] == 0:
        raise PlatepilotError(f"YOLO output has no class columns (layout {layout}, shape {output.shape})")
    if classes_kept is not None:
        class_scores = np.where(np.isin(np.arange(class_scores.shape[1]), list(classes_kept)), class_scores, 0)
    classes = class_scores.argmax(axis=1)
    scores = class_scores[np.arange(len(classes)), classes]
    mask = scores >= score_threshold
    cxcywh, scores, classes = output[mask, :4], scores[mask], classes[mask]
    boxes = np.column_stack([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2])
    keep = nms(boxes, scores, score_threshold, iou_threshold)
    return boxes[keep], scores[keep], classes[keep]


def plate_classes(names: str | None) -> frozenset[int] | None:
    """The class ids whose names (ultralytics' `names` metadata, `{0: 'car', 1: 'plate'}`) say plate; None
    (every class) when the model names no classes or none of them is a plate."""
    try:
        parsed = ast.literal_eval(names) if names else None
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(parsed, dict):
        return None
    plates = frozenset(k for k, v in parsed.items() if isinstance(k, int) and "plate" in str(v).lower())
    return plates or None


class YoloOnnxDetector:
    """A YOLO ONNX model with a (1, 3, S, S) RGB float input in [0, 1]. Thread-safe."""

    name = "yolo-onnx"
    whole_plates = True
    box_margin = (0.0, 0.0)

    def __init__(
        self,
        model_path: Path,
        input_size: int = 640,
        score_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        layout: YoloLayout = "auto",
        threads: int | None = None,
    ) -> None:
        if not model_path.is_file():
            raise PlatepilotError(f"{model_path}: detector model not found")
        self._session = open_session(model_path, "detector", threads=threads)
        inp = self._session.get_inputs()[0]
        fixed = [d for d in inp.shape[2:] if isinstance(d, int)]
        if len(inp.shape) != 4 or (fixed and any(d != fixed[0] for d in fixed)):
            raise PlatepilotError(f"{model_path}: expected a square (N, 3, S, S) input, got {inp.shape}")
        self.input_size = fixed[0] if fixed else input_size
        self._input = inp.name
        self._dtype = np.float16 if inp.type == "tensor(float16)" else np.float32  # a half-precision export
        self._path = model_path
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self._layout = layout
        self.classes_kept = plate_classes(self._session.get_modelmeta().custom_metadata_map.get("names"))
        try:
            self.detect(np.zeros((self.input_size, self.input_size, 3), np.uint8))
        except PlatepilotError as exc:
            raise PlatepilotError(f"{model_path}: {exc}") from None
        except Exception as exc:  # onnxruntime's own errors (a wrong input type or size)
            detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise PlatepilotError(f"{model_path}: this YOLO model does not run here ({detail[:200]})") from None

    def detect(self, image: np.ndarray) -> list[Detection]:
        square, fit = letterbox(as_bgr(0, image), self.input_size)
        blob = (square[:, :, ::-1].transpose(2, 0, 1)[None].astype(np.float32) / 255.0).astype(self._dtype)
        output = np.asarray(self._session.run(None, {self._input: blob})[0], np.float32)
        if output.ndim != 3:
            raise PlatepilotError(f"YOLO output must be (1, A, B), got shape {output.shape}")
        layout = guess_layout(output.shape) if self._layout == "auto" else self._layout
        boxes, scores, classes = decode(output[0], layout, self.score_threshold, self.iou_threshold, self.classes_kept)
        return self._to_frame(boxes, scores, classes, fit, image.shape)

    @staticmethod
    def _to_frame(
        boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray, fit: Letterbox, shape: tuple[int, ...]
    ) -> list[Detection]:
        frame_boxes = clip_boxes(fit.to_frame(boxes.reshape(-1, 4)), shape[1], shape[0])
        order = np.argsort(-scores, kind="stable")
        return to_detections(frame_boxes[order], scores[order], classes[order])
