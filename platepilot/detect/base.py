"""The plate detector protocol, and the pure box helpers every detector shares (letterbox, NMS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from platepilot.types import Detection


class PlateDetector(Protocol):
    """Finds plates in one BGR uint8 frame (H, W, 3); boxes in that frame's pixels, best score first.

    `detect` must be safe to call from several threads at once. `whole_plates`: the boxes are whole
    plates (frame and caption, a plate detector's) rather than the serial line (the text detector's);
    the runtime's reader then cuts each crop to its plate line (`PlateOCR.line_crop`). `box_margin`:
    the share of the plate's width and height each box is grown by on every side ((0, 0): the box is
    the plate), so the runtime can cut the plate itself out again for the state classifier.
    """

    name: str
    whole_plates: bool
    box_margin: tuple[float, float]

    def detect(self, image: np.ndarray) -> list[Detection]: ...


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was fitted into a square network input: `scale` then `pad` (x, y) in pixels."""

    scale: float
    pad: tuple[float, float]

    def to_frame(self, boxes: np.ndarray) -> np.ndarray:
        """(N, 4) xyxy boxes in network-input pixels -> frame pixels."""
        out = boxes.astype(np.float32).copy()
        out[:, [0, 2]] -= self.pad[0]
        out[:, [1, 3]] -= self.pad[1]
        return out / self.scale


def letterbox(image: np.ndarray, size: int, fill: int = 114) -> tuple[np.ndarray, Letterbox]:
    """Resize `image` to fit a size x size square keeping its aspect, centred on a `fill` border."""
    height, width = image.shape[:2]
    scale = min(size / height, size / width)
    new_w, new_h = max(round(width * scale), 1), max(round(height * scale), 1)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (size - new_w) / 2, (size - new_h) / 2
    top, left = round(pad_y - 0.1), round(pad_x - 0.1)
    out = cv2.copyMakeBorder(
        resized, top, size - new_h - top, left, size - new_w - left, cv2.BORDER_CONSTANT, value=(fill,) * 3
    )
    return out, Letterbox(scale, (float(left), float(top)))


def nms(boxes: np.ndarray, scores: np.ndarray, score_threshold: float, iou_threshold: float) -> np.ndarray:
    """Indices kept by non-max suppression (cv2.dnn.NMSBoxes) of (N, 4) xyxy boxes, best first."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    xywh = np.column_stack([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]).astype(np.float32)
    kept = cv2.dnn.NMSBoxes(xywh.tolist(), scores.astype(np.float32).tolist(), score_threshold, iou_threshold)
    keep = np.asarray(kept, np.int64).reshape(-1)
    return keep[np.argsort(-scores[keep], kind="stable")]


def suppress_contained(boxes: np.ndarray, share: float) -> np.ndarray:
    """Indices of (N, 4) xyxy boxes, ordered best first, kept when they overlap no better kept box by
    `share` or more of the smaller box's area (one box inside the other). IoU-based NMS keeps two
    boxes of different sizes on one plate (its two halves either side of a Florida plate's orange, or
    a half and the whole), and each starts a track of its own."""
    area = np.prod(np.clip(boxes[:, 2:] - boxes[:, :2], 0, None), axis=1)
    kept: list[int] = []
    for i in range(len(boxes)):
        top_left = np.maximum(boxes[kept, :2], boxes[i, :2])
        bottom_right = np.minimum(boxes[kept, 2:], boxes[i, 2:])
        inter = np.prod(np.clip(bottom_right - top_left, 0, None), axis=1)
        if not np.any(inter >= share * np.minimum(area[kept], area[i])):
            kept.append(i)
    return np.asarray(kept, np.int64)


def clip_boxes(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """(N, 4) xyxy boxes clipped to a width x height frame."""
    out = boxes.astype(np.float32).copy()
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
    return out


def to_detections(boxes: np.ndarray, scores: np.ndarray, classes: np.ndarray | None = None) -> list[Detection]:
    """Parallel arrays -> Detections, dropping empty boxes."""
    out = []
    for i, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        if x2 - x1 >= 1 and y2 - y1 >= 1:
            cls = int(classes[i]) if classes is not None else 0
            out.append(Detection((x1, y1, x2, y2), float(scores[i]), cls))
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M)."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = (x2 - x1).clip(0) * (y2 - y1).clip(0)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return (inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9)).astype(np.float32)
