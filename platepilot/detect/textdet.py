"""The default detector: PaddleOCR's PP-OCRv6 text detector (ONNX, shipped in the `rapidocr` wheel)
run zero-shot on a downscaled frame, plus a plate-shape filter.

A text detector finds every line of text; a plate's serial is one short, roughly horizontal line of
large characters. So: text lines from a DB (differentiable binarisation) probability map, lines side
by side at the same height merged (Florida plates print a graphic between the character groups),
lines of plate-like aspect kept, each grown from the serial to the whole plate (plates are ~2:1 and
the serial fills most of the width), and a small line inside a bigger plate (the FLORIDA header, the
county or slogan) dropped. Signs and banners pass too: the OCR stage and the format prior reject them.

The box reported is the serial line with a small margin (`crop_grow`), not the grown plate: readers
read the characters best without the plate frame, the dealer's name and the state caption around
them (measured on the UCSD scenes: 66% read end to end from serial boxes, 43-50% from whole plates).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from platepilot.errors import PlatepilotError
from platepilot.images import as_bgr
from platepilot.sessions import open_session, rapidocr_model
from platepilot.types import BoxXYXY, Detection

log = logging.getLogger(__name__)

MODEL_FILE = "PP-OCRv6_det_small.onnx"


@dataclass(frozen=True, slots=True)
class TextDetParams:
    """`max_side`: longest side of the frame as the network sees it (pixels, multiple of 32);
    `thresh`/`box_thresh`: DB pixel and box probability floors; `unclip`: DB's box growth ratio;
    `aspect`: allowed (min, max) width/height of a serial line; `min_height`: in frame pixels."""

    max_side: int = 960
    thresh: float = 0.3
    box_thresh: float = 0.5
    unclip: float = 1.6
    aspect: tuple[float, float] = (1.2, 9.0)
    min_height: float = 6.0
    max_tilt_deg: float = 25.0
    plate_grow: tuple[float, float] = (1.1, 1.7)  # serial line -> plate, width and height factors
    crop_grow: tuple[float, float] = (1.05, 1.3)  # serial line -> reported box, width and height factors


def bundled_model_path() -> Path:
    """The PP-OCRv6 small text detector inside the installed `rapidocr` wheel."""
    return rapidocr_model(MODEL_FILE)


class TextDetPlateDetector:
    """PP-OCRv6 text lines filtered to plate shape. Thread-safe (one shared InferenceSession)."""

    name = "ppocr-textdet"
    whole_plates = False
    box_margin = (0.0, 0.0)  # serial-line boxes: no plate box to cut out

    def __init__(
        self, model_path: Path | None = None, params: TextDetParams | None = None, threads: int | None = None
    ) -> None:
        self.params = params or TextDetParams()
        if self.params.max_side % 32:
            raise PlatepilotError(f"TextDetParams.max_side must be a multiple of 32, got {self.params.max_side}")
        path = model_path or bundled_model_path()
        self._session = open_session(path, "detector", threads=threads)
        self._input = self._session.get_inputs()[0].name

    def detect(self, image: np.ndarray) -> list[Detection]:
        image = as_bgr(0, image)
        return plates_from_lines(self.lines(image), image.shape[1], image.shape[0], self.params)

    def lines(self, image: np.ndarray, max_side: int | None = None) -> np.ndarray:
        """(N, 6) text lines (x1, y1, x2, y2, score, tilt_deg) of `image`, in its pixels (`text_lines`),
        found at `max_side` (default: the params')."""
        prob, (scale_x, scale_y) = self.probability_map(image, max_side)
        lines = text_lines(prob, self.params)
        lines[:, [0, 2]] /= scale_x
        lines[:, [1, 3]] /= scale_y
        return lines

    def probability_map(self, image: np.ndarray, max_side: int | None = None) -> tuple[np.ndarray, tuple[float, float]]:
        """The DB text probability map (h, w) of the frame scaled to `max_side` (default: the params'),
        and the scales frame -> map along x and y (each side is rounded to a multiple of 32 on its own: on
        a small, wide crop the two differ by 10-30%, and one mean scale cut a plate's line short)."""
        height, width = image.shape[:2]
        scale = (max_side or self.params.max_side) / max(height, width)
        new_w = max(round(width * scale / 32) * 32, 32)
        new_h = max(round(height * scale / 32) * 32, 32)
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
        blob = (resized.astype(np.float32) * (2.0 / 255.0) - 1.0).transpose(2, 0, 1)[None]
        prob = self._session.run(None, {self._input: blob})[0][0, 0]
        return prob, (new_w / width, new_h / height)


def text_lines(prob: np.ndarray, p: TextDetParams) -> np.ndarray:
    """DB post-processing: (N, 6) rows (x1, y1, x2, y2, score, tilt_deg) of text lines, map pixels.

    Boxes are the axis-aligned bounds of each unclipped min-area rectangle.
    """
    bitmap = cv2.dilate((prob > p.thresh).astype(np.uint8), np.ones((2, 2), np.uint8))
    contours, _ = cv2.findContours(bitmap, cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
    rows = []
    for contour in contours:
        if len(contour) < 4:
            continue
        (cx, cy), (w, h), angle = cv2.minAreaRect(contour)
        if min(w, h) < 2:
            continue
        x, y, bw, bh = cv2.boundingRect(contour)
        mask = np.zeros((bh, bw), np.uint8)
        cv2.fillPoly(mask, [contour - [x, y]], 1)
        score = cv2.mean(prob[y : y + bh, x : x + bw], mask)[0]
        if score < p.box_thresh:
            continue
        grow = w * h * p.unclip / (2 * (w + h))  # DB's unclip distance for a rectangle
        if w < h:  # make w the long side, angle its tilt from horizontal
            w, h, angle = h, w, angle - 90
        tilt = (angle + 90) % 180 - 90
        box = cv2.boxPoints(((cx, cy), (w + 2 * grow, h + 2 * grow), tilt))
        rows.append([*box.min(axis=0), *box.max(axis=0), score, tilt])
    return np.asarray(rows, np.float32).reshape(-1, 6)


def merge_side_by_side(lines: np.ndarray) -> np.ndarray:
    """Merge lines at the same height whose horizontal gap is under one line height (plate groups)."""
    rows = [list(r) for r in lines[np.argsort(lines[:, 0])]] if len(lines) else []
    merged = True
    while merged:
        merged = False
        for i in range(len(rows)):
            for j in range(i + 1, len(rows)):
                a, b = rows[i], rows[j]
                ha, hb = a[3] - a[1], b[3] - b[1]
                same_height = min(ha, hb) > 0.7 * max(ha, hb)
                overlap_y = min(a[3], b[3]) - max(a[1], b[1]) > 0.6 * min(ha, hb)
                gap = max(a[0], b[0]) - min(a[2], b[2])
                if same_height and overlap_y and gap < 1.0 * max(ha, hb):
                    rows[i] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]),
                               max(a[4], b[4]), (a[5] + b[5]) / 2]  # fmt: skip
                    del rows[j]
                    merged = True
                    break
            if merged:
                break
    return np.asarray(rows, np.float32).reshape(-1, 6)


def plates_from_lines(lines: np.ndarray, width: int, height: int, p: TextDetParams) -> list[Detection]:
    """Text lines (frame pixels) -> plate detections: merge, shape filter, grow, drop nested lines."""
    lines = merge_side_by_side(lines)
    candidates = []
    for x1, y1, x2, y2, score, tilt in lines.tolist():
        w, h = x2 - x1, y2 - y1
        if h < p.min_height or abs(tilt) > p.max_tilt_deg or not p.aspect[0] <= w / h <= p.aspect[1]:
            continue
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        pw = w * p.plate_grow[0]
        ph = min(max(h * p.plate_grow[1], pw * 0.38), pw * 0.6)
        plate = _box(cx, cy, pw, ph, width, height)
        reported = _box(cx, cy, w * p.crop_grow[0], h * p.crop_grow[1], width, height)
        candidates.append((h, plate, reported, score))
    kept: list[tuple[BoxXYXY, Detection]] = []
    for _, plate, reported, score in sorted(candidates, key=lambda c: -c[0]):  # tallest serial first
        cx, cy = (plate[0] + plate[2]) / 2, (plate[1] + plate[3]) / 2
        if not any(k[0] < cx < k[2] and k[1] < cy < k[3] for k, _ in kept):
            kept.append((plate, Detection(reported, float(score))))
    return sorted((d for _, d in kept), key=lambda d: -d.score)


def _box(cx: float, cy: float, w: float, h: float, width: int, height: int) -> BoxXYXY:
    """A w x h box centred at (cx, cy), clipped to a width x height frame."""
    return (max(cx - w / 2, 0.0), max(cy - h / 2, 0.0), min(cx + w / 2, width), min(cy + h / 2, height))
