"""Detector training samples from a YOLO dataset (the synthetic scenes, or a user's own labelled frames).

A sample is a random square crop of a frame that was first scaled as the runtime scales it (longer
side = the model's input size) and then zoomed by a random factor, so one frame teaches plates of
many sizes; the crop is biased towards plates. Targets are CenterNet's: a Gaussian peak per plate
centre on the stride-4 heatmap, and at the peak cell the centre's offset in the cell and the plate's
log width and height in input pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from platepilot.detect.platenet import DetectorCard, input_side, normalise
from platepilot.errors import PlatepilotError
from platepilot.images import IMAGE_SUFFIXES
from platepilot.labeling.yolo import label_lines, parse_label_line, split_folders

MIN_BOX_PX = 3.0  # plates narrower than this in the network input are left out of the targets
MAX_OBJECTS = 64


@dataclass(frozen=True)
class Frame:
    image: Path
    boxes: np.ndarray  # (N, 4) xyxy, normalised 0..1


def _label_path(image: Path) -> Path:
    """YOLO's convention: .../images/x.jpg -> .../labels/x.txt."""
    parts = list(image.parts)
    idx = len(parts) - 1 - parts[::-1].index("images")
    return Path(*parts[:idx], "labels", *parts[idx + 1 :]).with_suffix(".txt")


def read_yolo_boxes(label: Path) -> np.ndarray:
    """Box lines `cls cx cy w h` and polygon lines `cls x1 y1 x2 y2 ...` (boxed; every class a plate)
    -> (N, 4) normalised xyxy."""
    rows = []
    for number, line in enumerate(label_lines(label), 1):
        if not line.strip():
            continue
        box = parse_label_line(line)
        if box is None:
            raise PlatepilotError(
                f"{label}:{number}: not a YOLO label line ('cls cx cy w h', or a polygon 'cls x1 y1 x2 y2 ...', "
                "as fractions 0-1 of the image, not pixels)"
            )
        rows.append((box.cx - box.w / 2, box.cy - box.h / 2, box.cx + box.w / 2, box.cy + box.h / 2))
    return np.array(rows, np.float32).reshape(-1, 4).clip(0, 1)


@dataclass(frozen=True)
class DatasetFrames:
    """A dataset's labelled frames: `val` is its own validation split (None: the trainer holds some of
    `train` out), `skipped` the images left out because OpenCV cannot read them."""

    train: list[Frame]
    val: list[Frame] | None
    skipped: list[Path]


def yolo_frames(root: Path) -> DatasetFrames:
    """The frames of a YOLO dataset folder: those of the `train` (and `val`) folders its data.yaml names,
    else every image under it (`synth scenes` names `images` for both: the same frames)."""
    if not root.is_dir():
        raise PlatepilotError(f"{root}: no such dataset folder")
    splits = split_folders(root)
    train_folders, val_folders = splits.get("train", [root]), splits.get("val", [])
    train, skipped = _labelled_frames(train_folders)
    if {p.resolve() for p in val_folders} <= {p.resolve() for p in train_folders}:  # none, or the same
        return DatasetFrames(train, None, skipped)
    val, val_skipped = _labelled_frames(val_folders)
    return DatasetFrames(train, val, skipped + val_skipped)


def _labelled_frames(folders: list[Path]) -> tuple[list[Frame], list[Path]]:
    """Every image under `folders` whose label file exists (no label = still writing), and those of them
    left out as unreadable; PlatepilotError when none is labelled, or none of those readable."""
    images = sorted(
        p for folder in folders for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and "images" in p.parts
    )
    labelled = [p for p in images if _label_path(p).is_file()]
    where = ", ".join(str(f) for f in folders)
    if not labelled:
        raise PlatepilotError(f"{where}: no labelled images (expected images/*.jpg with labels/*.txt beside)")
    skipped = [p for p in labelled if not readable(p)]
    if len(skipped) == len(labelled):
        raise PlatepilotError(f"{where}: none of its {len(labelled)} labelled images can be read, e.g. {skipped[0]}")
    left_out = set(skipped)
    return [Frame(p, read_yolo_boxes(_label_path(p))) for p in labelled if p not in left_out], skipped


def readable(image: Path) -> bool:
    """Whether OpenCV recognises the file as an image: not empty, and a header it has a reader for (a
    cheap check, as the folders are listed again each epoch; a frame cut short is only found when read)."""
    try:
        return image.stat().st_size > 0 and cv2.haveImageReader(str(image))
    except OSError:
        return False


def draw_targets(boxes: np.ndarray, size: tuple[int, int], stride: int) -> dict[str, np.ndarray]:
    """(N, 4) xyxy boxes in input pixels of an input (h, w) -> heat (1, h/s, w/s), geometry (4, ..), mask."""
    out_h, out_w = size[0] // stride, size[1] // stride
    heat = np.zeros((out_h, out_w), np.float32)
    geometry = np.zeros((4, out_h, out_w), np.float32)
    mask = np.zeros((out_h, out_w), np.float32)
    ys, xs = np.mgrid[0:out_h, 0:out_w].astype(np.float32)
    for x1, y1, x2, y2 in boxes[:MAX_OBJECTS]:
        w, h = x2 - x1, y2 - y1
        cx, cy = (x1 + x2) / 2 / stride, (y1 + y2) / 2 / stride
        ix, iy = int(cx), int(cy)
        if not (0 <= ix < out_w and 0 <= iy < out_h):
            continue
        sx, sy = max(w / stride / 6, 0.6), max(h / stride / 6, 0.6)
        peak = np.exp(-(((xs - ix) / sx) ** 2 + ((ys - iy) / sy) ** 2) / 2)
        np.maximum(heat, peak, out=heat)
        geometry[:, iy, ix] = (cx - ix, cy - iy, np.log(max(w, 1.0)), np.log(max(h, 1.0)))
        mask[iy, ix] = 1.0
    return {"heat": heat[None], "geometry": geometry, "mask": mask[None]}


class SceneCrops(Dataset[dict[str, torch.Tensor]]):
    """Random zoomed crops of `frames` with their CenterNet targets; `augment=False` gives whole frames."""

    def __init__(self, frames: list[Frame], card: DetectorCard, crop: int, augment: bool, seed: int = 0) -> None:
        self.frames, self.card, self.crop, self.augment, self.seed = frames, card, crop, augment, seed
        self.epoch = 0
        self._undecodable: set[Path] = set()

    def _decoded(self, index: int) -> tuple[Frame, np.ndarray, list[Path]]:
        """Frame `index` and its pixels, or the next frame's when OpenCV cannot decode it (cut short or
        corrupt: the listing only checks the header), and the frames passed over; PlatepilotError when no
        frame decodes. (The trainer warns of those and leaves them out of later epochs: this runs in the
        data loader's worker processes.)"""
        passed: list[Path] = []
        for step in range(len(self.frames)):
            frame = self.frames[(index + step) % len(self.frames)]
            image = cv2.imread(str(frame.image), cv2.IMREAD_COLOR) if frame.image not in self._undecodable else None
            if image is not None:
                return frame, image, passed
            self._undecodable.add(frame.image)
            passed.append(frame.image)
        raise PlatepilotError(
            f"none of the {len(self.frames)} training frames can be decoded, e.g. {self.frames[0].image}"
        )

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        frame, image, passed = self._decoded(index)
        height, width = image.shape[:2]
        boxes = frame.boxes * np.array([width, height, width, height], np.float32)
        scale = input_side(max(height, width), self.card) / max(height, width)  # as the runtime scales it
        if self.augment:
            scale *= float(np.exp(rng.uniform(np.log(0.6), np.log(1.7))))
            image, boxes = self._crop(image, boxes, scale, rng)
            image = self._photometric(image, rng)
        else:
            image = cv2.resize(image, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
            boxes = boxes * scale
            m = self.card.pad_multiple
            ph, pw = -(-image.shape[0] // m) * m, -(-image.shape[1] // m) * m
            image = cv2.copyMakeBorder(image, 0, ph - image.shape[0], 0, pw - image.shape[1], cv2.BORDER_CONSTANT)
        keep = (boxes[:, 2] - boxes[:, 0]) >= MIN_BOX_PX
        targets = draw_targets(boxes[keep], image.shape[:2], self.card.output_stride)
        sample = {k: torch.from_numpy(v) for k, v in targets.items()}
        sample["image"] = torch.from_numpy(normalise(image, self.card))
        sample["undecodable"] = "\n".join(map(str, passed))  # type: ignore[assignment]  # batched as a list
        return sample

    def _crop(
        self, image: np.ndarray, boxes: np.ndarray, scale: float, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """A crop x crop window of the frame zoomed by `scale`, centred near a plate 70% of the time."""
        crop = self.crop
        height, width = image.shape[:2]
        zoomed_w, zoomed_h = width * scale, height * scale
        if len(boxes) and rng.random() < 0.7:
            x1, y1, x2, y2 = boxes[int(rng.integers(len(boxes)))] * scale
            cx = (x1 + x2) / 2 + rng.uniform(-0.4, 0.4) * crop
            cy = (y1 + y2) / 2 + rng.uniform(-0.4, 0.4) * crop
        else:
            cx, cy = rng.uniform(0, zoomed_w), rng.uniform(0, zoomed_h)
        left = float(np.clip(cx - crop / 2, min(0.0, zoomed_w - crop), max(0.0, zoomed_w - crop)))
        top = float(np.clip(cy - crop / 2, min(0.0, zoomed_h - crop), max(0.0, zoomed_h - crop)))
        matrix = np.array([[scale, 0, -left], [0, scale, -top]], np.float32)
        interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        if scale < 1:  # INTER_AREA only works through resize: shrink first, then shift
            small = cv2.resize(image, (max(round(zoomed_w), 1), max(round(zoomed_h), 1)), interpolation=interpolation)
            matrix = np.array([[1, 0, -left], [0, 1, -top]], np.float32)
            out = cv2.warpAffine(small, matrix, (crop, crop), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
        else:
            out = cv2.warpAffine(image, matrix, (crop, crop), flags=interpolation, borderValue=(0, 0, 0))
        moved = boxes * scale - np.array([left, top, left, top], np.float32)
        clipped = moved.clip(0, crop)
        area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
        visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        return out, clipped[visible >= 0.6 * np.maximum(area, 1e-6)]

    @staticmethod
    def _photometric(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Colour, contrast and sharpness jitter on top of what the scene generator already varies."""
        if rng.random() < 0.3:
            hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
            hsv[..., 0] = ((hsv[..., 0].astype(np.int32) + int(rng.integers(-12, 13))) % 180).astype(np.uint8)
            image = cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)
        if rng.random() < 0.1:
            image = cv2.cvtColor(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        image = cv2.convertScaleAbs(image, alpha=float(rng.uniform(0.75, 1.25)), beta=float(rng.uniform(-20, 20)))
        if rng.random() < 0.15:
            image = cv2.GaussianBlur(image, (0, 0), float(rng.uniform(0.4, 1.2)))
        return image
