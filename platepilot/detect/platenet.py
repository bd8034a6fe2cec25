"""The bundled plate detector: a small CenterNet-style network trained by `platepilot detector train`.

The network sees the frame resized so its longer side is `input_size` (half the frame's own for
frames over twice that, three quarters for a photo, `input_side`; keeping its aspect, padded right and
bottom to a multiple of `pad_multiple`) and outputs, every `output_stride` pixels, a plate
centre heatmap (sigmoid), the centre's sub-cell offset and the plate's log width and height in input
pixels: (1, 5, H / stride, W / stride). A plate is a local maximum of the heatmap above the score
threshold. Boxes are whole plates (frame and caption included), grown by `box_margin` on each side.

Everything the runtime needs to feed the network and read its output lives in the JSON sidecar
(`DetectorCard`) next to the ONNX file, with the ONNX file's sha256, so a model and its sidecar
cannot be mixed up silently.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal, Protocol

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from platepilot.detect.base import clip_boxes, nms, suppress_contained, to_detections
from platepilot.errors import PlatepilotError
from platepilot.images import as_bgr
from platepilot.sessions import load_sidecar, open_session, save_sidecar, sidecar_path
from platepilot.types import Detection

ASSETS = Path(__file__).resolve().parents[1] / "assets"
BUNDLED_MODEL = ASSETS / "plate_detector.onnx"
FAST_MODEL = ASSETS / "plate_detector_fast.onnx"  # a student of BUNDLED_MODEL: ~3x faster, fewer plates read
OUTPUT_CHANNELS = 5  # heat, offset x, offset y, log w, log h
# Shrinking by at most 2x, bilinear sampling still sees every source pixel, and OpenCV's area
# averaging at a fractional factor (720p -> 800 px) cost 5 ms against bilinear's 0.8, more than
# half the fast detector's network.
AREA_BELOW = 0.5


class DetectorCard(BaseModel):
    """The sidecar of a plate detector ONNX file: how to feed it, how to read it, where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["platenet"] = "platenet"
    input_size: int = Field(description="Longer side of the network input, pixels.", ge=32, le=4096)
    pad_multiple: int = Field(default=32, description="Input height and width are padded to a multiple of this.")
    output_stride: int = Field(default=4, description="Input pixels per output cell.")
    channel_order: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    score_threshold: float = Field(default=0.3, ge=0, le=1)
    nms_iou: float = Field(default=0.5, ge=0, le=1)
    contained_share: float = Field(
        default=0.6,
        ge=0,
        le=1,
        description="After NMS, a box overlapping a better one by this share of the smaller one's area is dropped "
        "(`suppress_contained`); at 1 only a box wholly inside a better one is.",
    )
    box_margin: tuple[float, float] = Field(
        default=(0.04, 0.08), description="Growth of each side, as a share of the box width and height."
    )
    max_detections: int = Field(default=50, ge=1)
    min_width: float = Field(
        default=32, ge=0, description="Boxes narrower than this many frame pixels are dropped: too small to read."
    )
    zoom_below: float = Field(
        default=80,
        ge=0,
        description="In a frame the network sees shrunk, a box narrower than this many input pixels gets a second "
        "look at `zoom_box` px (`PlateNetDetector.second_look`); 0: never.",
    )
    zoom_threshold: float = Field(
        default=0.2, ge=0, le=1, description="First-pass score a small box needs for a second look."
    )
    zoom_box: float = Field(default=96, gt=0, description="Width, input pixels, a small box is zoomed to.")
    zoom_window: tuple[int, int] = Field(
        default=(192, 128),
        description="Width and height of the zoomed window, input pixels (multiples of pad_multiple).",
    )
    onnx_sha256: str = ""
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _window_fits_the_network(self) -> DetectorCard:
        if any(side < self.pad_multiple or side % self.pad_multiple for side in self.zoom_window):
            raise ValueError(f"zoom_window {self.zoom_window}: each side must be a multiple of {self.pad_multiple}")
        return self


def is_platenet(model_path: Path) -> bool:
    """Whether `model_path` has a plate-detector sidecar (else it is taken for a YOLO export)."""
    sidecar = sidecar_path(model_path)
    if not sidecar.is_file():
        return False
    try:
        return json.loads(sidecar.read_text(encoding="utf-8")).get("kind") == "platenet"
    except (OSError, ValueError, AttributeError):
        return True  # a broken sidecar: let load_card say what is wrong with it


def load_card(model_path: Path) -> DetectorCard:
    """The sidecar of `model_path`, checked against the file; one clear PlatepilotError when it does not fit."""
    return load_sidecar(model_path, DetectorCard, "detector")


def save_card(model_path: Path, card: DetectorCard) -> None:
    """Write the sidecar of `model_path` (stamping the file's sha256) via a temp file and rename."""
    save_sidecar(model_path, card)


LARGE_FRAME_SHARE = 0.5
"""A frame whose longer side is over 1 / LARGE_FRAME_SHARE x the card's `input_size` is seen at this share
of its longer side (at most MAX_INPUT_FACTOR x `input_size`), so a 1080p camera's plates reach the
network at the size a 720p camera's do with the same view. UCSD's photos set in a 1920x1080 frame at
their own size (the plates 3x smaller at a 640 input than in the photo) were found 90.2% and read
85.8% end to end at 640, 98.4% and 92.7% at 960 (docs/detector.md)."""

STILL_FRAME_SHARE = 0.75
"""A photo (a folder of stills, `eval --scenes --stills`) has no frame rate to keep, so a frame over the card's
`input_size` is seen at this share of its longer side (capped likewise): UCSD's photos set in 1280x720 frames,
their plates 55 px wide, were found 99.6% and read 91.9% end to end at 960 against 96.3% and 88.6% at 640, for
1.6x the detector's time; at 1280, no more (docs/detector.md)."""

MAX_INPUT_FACTOR = 2  # a 4K frame is seen at 1280, not 1920: the detector's time grows with the square

ZOOM_SCORE_SHARE = 0.5
"""A zoomed look's box replaces a first-pass box when it scores at least this share of it: it fits a far plate
better even when scored a little lower, but a far lower score is a piece of a plate the first pass found."""
MAX_SECOND_LOOKS = 8
"""Small boxes looked at again per frame, best first (`PlateNetDetector.second_look`): the demo's 720p frames
had 1.6 on average (at most 3), UCSD's photos set in 720p frames 2.6-5."""


def input_side(long_side: int, card: DetectorCard, still: bool = False) -> int:
    """The longer side of the network input for a frame whose longer side is `long_side` pixels: the
    card's `input_size`, or for a large frame `LARGE_FRAME_SHARE` (a `still` photo: `STILL_FRAME_SHARE`) of
    its side (capped)."""
    share = round(long_side * (STILL_FRAME_SHARE if still else LARGE_FRAME_SHARE))
    return max(card.input_size, min(share, MAX_INPUT_FACTOR * card.input_size))


def network_input(image: np.ndarray, card: DetectorCard, still: bool = False) -> tuple[np.ndarray, float]:
    """BGR uint8 frame (a `still` photo: `input_side`) -> (1, 3, H, W) float32 network input and the scale
    frame -> input."""
    height, width = image.shape[:2]
    scale = input_side(max(height, width), card, still) / max(height, width)
    new_w, new_h = max(round(width * scale), 1), max(round(height * scale), 1)
    resized = cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_AREA if scale <= AREA_BELOW else cv2.INTER_LINEAR
    )
    m = card.pad_multiple
    padded_h, padded_w = -(-new_h // m) * m, -(-new_w // m) * m
    padded = cv2.copyMakeBorder(resized, 0, padded_h - new_h, 0, padded_w - new_w, cv2.BORDER_CONSTANT, value=0)
    return normalise(padded, card)[None], scale


class Normalisation(Protocol):
    """What a card says about feeding pixels to its network (DetectorCard, StateCard)."""

    @property
    def channel_order(self) -> Literal["RGB", "BGR"]: ...
    @property
    def mean(self) -> tuple[float, float, float]: ...
    @property
    def std(self) -> tuple[float, float, float]: ...


def normalise(image: np.ndarray, card: Normalisation) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> (3, H, W) float32, channels and normalisation as the card says.

    OpenCV's blob maker does it in one pass: on a 640x384 frame about 15 times faster than the same
    arithmetic in numpy, which cost as much as a small detector's network."""
    params = cv2.dnn.Image2BlobParams()
    params.scalefactor = tuple(1.0 / (255.0 * s) for s in card.std)
    params.mean = tuple(255.0 * m for m in card.mean)  # in the network's channel order, as the card gives it
    params.swapRB = card.channel_order == "RGB"
    params.ddepth = cv2.CV_32F
    blob: np.ndarray = cv2.dnn.blobFromImageWithParams(image, params)[0]
    return blob


def decode(output: np.ndarray, card: DetectorCard, score_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """One image's raw output (5, h, w) -> (boxes xyxy (N, 4) in input pixels, scores (N,)), after NMS."""
    heat = output[0]
    peaks = (heat >= score_threshold) & (heat >= cv2.dilate(heat, np.ones((3, 3), np.uint8)))
    ys, xs = np.nonzero(peaks)
    scores = heat[ys, xs]
    order = np.argsort(-scores, kind="stable")[: card.max_detections * 4]
    ys, xs, scores = ys[order], xs[order], scores[order]
    stride = card.output_stride
    cx = (xs + output[1, ys, xs]) * stride
    cy = (ys + output[2, ys, xs]) * stride
    w = np.exp(np.clip(output[3, ys, xs], -2, 8))
    h = np.exp(np.clip(output[4, ys, xs], -2, 8))
    grow_w, grow_h = card.box_margin
    half_w, half_h = w * (0.5 + grow_w), h * (0.5 + grow_h)
    boxes = np.column_stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h]).astype(np.float32)
    keep = suppressed(boxes, scores, card, score_threshold)
    return boxes[keep], scores[keep]


def suppressed(boxes: np.ndarray, scores: np.ndarray, card: DetectorCard, score_threshold: float) -> np.ndarray:
    """Indices of the (N, 4) xyxy boxes kept, best first: scoring `score_threshold`, then NMS at the card's
    `nms_iou`, then no box mostly inside a better one (`contained_share`), at most `max_detections`."""
    keep = nms(boxes, scores, score_threshold, card.nms_iou)
    return keep[suppress_contained(boxes[keep], card.contained_share)][: card.max_detections]


class PlateNetDetector:
    """The bundled (or a user-trained) plate detector through onnxruntime, for video frames or `still`
    photos (`input_side`). Thread-safe."""

    name = "platenet"
    whole_plates = True

    def __init__(
        self,
        model_path: Path | None = None,
        score_threshold: float | None = None,
        threads: int | None = None,
        still: bool = False,
    ) -> None:
        self.model_path = model_path or BUNDLED_MODEL
        self.still = still
        self.card = load_card(self.model_path)
        self.box_margin = self.card.box_margin
        self._session = open_session(self.model_path, "detector", threads=threads)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 1:
            raise PlatepilotError(f"{self.model_path}: not a plate detector (expected one (1, 3, H, W) input)")
        channels = outputs[0].shape[1]
        if channels != OUTPUT_CHANNELS:
            raise PlatepilotError(f"{self.model_path}: expected {OUTPUT_CHANNELS} output channels, got {channels}")
        self._input = inputs[0].name
        self._batched = not isinstance(inputs[0].shape[0], int)  # the fast student takes one image at a time
        self.score_threshold = self.card.score_threshold if score_threshold is None else score_threshold

    def raw(self, image: np.ndarray) -> tuple[np.ndarray, float]:
        """The network's output (5, h, w) for a BGR frame, and the scale frame -> input."""
        blob, scale = network_input(image, self.card, self.still)
        return self._session.run(None, {self._input: blob})[0][0], scale

    def detect(self, image: np.ndarray) -> list[Detection]:
        if image.ndim < 2 or image.shape[0] < 2 or image.shape[1] < 2:
            return []
        image = as_bgr(0, image)  # grey found nothing; 16-bit gave a whole-frame box at score 1
        output, scale = self.raw(image)
        card = self.card
        look_again = card.zoom_below > 0 and scale < 1  # the frame has pixels the network did not see
        boxes, scores = decode(
            output, card, min(card.zoom_threshold, self.score_threshold) if look_again else self.score_threshold
        )
        if look_again:
            boxes, scores = self.second_look(image, boxes / scale, scores, boxes[:, 2] - boxes[:, 0] < card.zoom_below)
        else:
            boxes = boxes / scale
        frame_boxes = clip_boxes(boxes, image.shape[1], image.shape[0])
        wide = frame_boxes[:, 2] - frame_boxes[:, 0] >= card.min_width
        return to_detections(frame_boxes[wide], scores[wide])

    def second_look(
        self, image: np.ndarray, boxes: np.ndarray, scores: np.ndarray, small: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Frame boxes (best first) and scores after the small ones (`small`, scored from the card's
        `zoom_threshold`) are looked at again, zoomed: each is replaced by the best plate the zoomed view
        finds with its centre inside it, if that scores at least `ZOOM_SCORE_SHARE` of it; else it is kept
        if it scored the threshold. Boxes not looked at (large ones, and small ones past
        `MAX_SECOND_LOOKS`) are kept if they scored the threshold.

        Why: a plate 40 px wide in a 720p frame is 20 px wide at a 640 input, where the network scores it
        low and draws its box two or three times too large (the reader then finds no line in the crop);
        at 96 px it scores and fits it as it does a near plate. Of UCSD's photos scaled to half in 720p
        frames, 70% of the plates were found without it and 91% with it (docs/detector.md)."""
        looked = np.nonzero(small)[0][:MAX_SECOND_LOOKS]
        unlooked = np.ones(len(boxes), bool)
        unlooked[looked] = False
        kept = [
            (box, float(score))
            for box, score in zip(boxes[unlooked], scores[unlooked], strict=True)
            if score >= self.score_threshold
        ]
        for index, hit in zip(looked, self._zoomed(image, boxes[looked]), strict=True):
            first = (boxes[index], float(scores[index]))
            if hit is not None and hit[1] >= ZOOM_SCORE_SHARE * first[1]:
                kept.append(hit)
            elif first[1] >= self.score_threshold:
                kept.append(first)
        if not kept:
            return np.zeros((0, 4), np.float32), np.zeros(0, np.float32)
        merged = np.array([box for box, _ in kept], np.float32)
        merged_scores = np.array([score for _, score in kept], np.float32)
        order = suppressed(merged, merged_scores, self.card, 0.0)
        return merged[order], merged_scores[order]

    def _zoomed(self, image: np.ndarray, boxes: np.ndarray) -> list[tuple[np.ndarray, float] | None]:
        """For each frame box, the best plate (frame box, score) found in a `zoom_window` view centred on
        it, scaled so the box is `zoom_box` px wide, whose centre lies inside the box; None where none."""
        if len(boxes) == 0:
            return []
        card = self.card
        width, height = card.zoom_window
        centre = np.array([width / 2, height / 2] * 2, np.float32)
        views, zooms = [], []
        for x0, y0, x1, y1 in boxes:
            zoom = card.zoom_box / max(float(x1 - x0), 1.0)
            cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
            matrix = np.array([[zoom, 0, width / 2 - zoom * cx], [0, zoom, height / 2 - zoom * cy]], np.float32)
            view = cv2.warpAffine(
                image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
            )
            views.append(normalise(view, card))
            zooms.append(zoom)
        if self._batched:
            outputs = list(self._session.run(None, {self._input: np.stack(views)})[0])
        else:
            outputs = [self._session.run(None, {self._input: view[None]})[0][0] for view in views]
        found: list[tuple[np.ndarray, float] | None] = []
        for output, zoom, (x0, y0, x1, y1) in zip(outputs, zooms, boxes, strict=True):
            seen, scores = decode(output, card, self.score_threshold)
            seen = (seen - centre) / zoom + np.array([(x0 + x1) / 2, (y0 + y1) / 2] * 2, np.float32)
            mid = (seen[:, :2] + seen[:, 2:]) / 2
            inside = (mid[:, 0] >= x0) & (mid[:, 0] <= x1) & (mid[:, 1] >= y0) & (mid[:, 1] <= y1)
            best = int(np.argmax(inside)) if inside.any() else -1  # decode's boxes come best first
            found.append((seen[best], float(scores[best])) if best >= 0 else None)
        return found
