"""Training data of the blur estimator: sharp plate images, smeared by a known line, as a camera records them.

Needs no label at all: any folder of plate photos or crops (the bundled model: the train split of
us_plates_by_state) and the generator's rendered plates. Each sample scales an image to a camera's
plate size (a sharp plate 60-250 px wide), softens it a little as optics do, tilts it, smears it by a
random line (`plates.blur.exposed`: the smear, then sensor noise, then JPEG) and cuts the window the
network sees (`ocr.blur_estimate.window`, never resized). The target is the line: its length in
pixels and its angle, doubled (a line has no head or tail).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from rich.progress import track
from torch.utils.data import Dataset

from platepilot.errors import PlatepilotError
from platepilot.images import IMAGE_SUFFIXES
from platepilot.ocr.blur_estimate import BlurCard, blur_input, window
from platepilot.plates.blur import exposed
from platepilot.plates.designs import sample_design
from platepilot.plates.render import render_plate

POOL_WIDTH = 224  # every image is kept grey at this width (us_plates_by_state's own), aspect kept
SCALES = (0.3, 1.1)  # of POOL_WIDTH: plates 67-246 px wide, as the deblurrer sees them (at most 256)
SOFTEN_SIGMA = (0.0, 1.0)  # optics' own softness, which is not motion and must not read as motion
TILT_DEGREES = 6.0
NOISE_SIGMA = (0.5, 5.0)
JPEG_QUALITY = (40, 95)
HOLDOUT_EVERY = 20  # one image in 20 is held out and scored each epoch


@dataclass(frozen=True)
class Pool:
    """Grey uint8 images POOL_WIDTH wide; `held` the indices scored, never trained on."""

    images: tuple[np.ndarray, ...]
    train: np.ndarray
    held: np.ndarray

    def describe(self) -> str:
        return f"{len(self.images)} plate images ({len(self.train)} trained on, {len(self.held)} held out)"


def image_paths(folders: Sequence[Path]) -> list[Path]:
    """Every image under `folders` (recursively), sorted; PlatepilotError for a missing or empty folder."""
    paths: list[Path] = []
    for folder in folders:
        if not folder.is_dir():
            raise PlatepilotError(f"--images {folder}: no such folder")
        found = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not found:
            raise PlatepilotError(f"--images {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in it")
        paths += found
    return paths


def plate_pool(folders: Sequence[Path], rendered: int, seed: int) -> Pool:
    """The images of `folders` (unreadable files skipped) and `rendered` generator plates, grey, POOL_WIDTH wide."""
    images = []
    for path in track(image_paths(folders), description="reading plate images", transient=True):
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
        if image is not None and min(image.shape) >= 16:
            images.append(_fit(image))
    rng = np.random.default_rng(seed)
    for _ in track(range(rendered), description="rendering plates", transient=True):
        images.append(_fit(cv2.cvtColor(render_plate(sample_design(rng), rng).image, cv2.COLOR_BGR2GRAY)))
    if len(images) < 2:
        raise PlatepilotError("too few plate images to train on (one is held out): pass --images DIR or --rendered N")
    ids = np.arange(len(images))
    held = ids[::HOLDOUT_EVERY]  # the first of every HOLDOUT_EVERY: at least one image
    return Pool(tuple(images), np.setdiff1d(ids, held), held)


def _fit(image: np.ndarray) -> np.ndarray:
    height = max(16, round(image.shape[0] * POOL_WIDTH / image.shape[1]))
    shrink = image.shape[1] > POOL_WIDTH
    return cv2.resize(image, (POOL_WIDTH, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def smeared(image: np.ndarray, rng: np.random.Generator, card: BlurCard) -> tuple[np.ndarray, int, float]:
    """A window of `image` as a moving camera records it, with the smear's length (1: none) and angle."""
    scale = rng.uniform(*SCALES)
    plate = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    sigma = rng.uniform(*SOFTEN_SIGMA)
    if sigma > 0.3:
        plate = cv2.GaussianBlur(plate, (0, 0), sigma)
    centre = (plate.shape[1] / 2, plate.shape[0] / 2)
    tilt = cv2.getRotationMatrix2D(centre, rng.uniform(-TILT_DEGREES, TILT_DEGREES), 1)
    plate = cv2.warpAffine(plate, tilt, (plate.shape[1], plate.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    length, angle = int(rng.integers(1, card.max_length + 1)), float(rng.uniform(-90, 90))
    noise, quality = float(rng.uniform(*NOISE_SIGMA)), int(rng.integers(JPEG_QUALITY[0], JPEG_QUALITY[1] + 1))
    recorded = exposed(plate, length, angle, noise, quality, rng)
    # The window is the crop's middle at run time; here it wanders a little, as crops are cut unevenly
    h, w = recorded.shape
    dy, dx = (max(0, h - card.height) // 4, max(0, w - card.width) // 4)
    y0, x0 = int(rng.integers(-dy, dy + 1)), int(rng.integers(-dx, dx + 1))
    shifted = recorded[max(0, y0) : h + min(0, y0), max(0, x0) : w + min(0, x0)]
    return window(shifted, card.height, card.width), length, angle


def target(length: int, angle: float) -> tuple[float, float, float]:
    """What the network learns to output for a smear: (length, cos 2a, sin 2a)."""
    doubled = math.radians(2 * angle)
    return float(length), math.cos(doubled), math.sin(doubled)


class SmearedPlates(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """`count` samples of `ids` in `pool`; sample i is a pure function of (seed, i), so a resumed run
    draws what the interrupted one would have."""

    def __init__(self, pool: Pool, ids: np.ndarray, count: int, card: BlurCard, seed: int) -> None:
        self.pool, self.ids, self.count, self.card, self.seed = pool, ids, count, card, seed

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng((self.seed, i))
        image = self.pool.images[int(self.ids[int(rng.integers(len(self.ids)))])]
        view, length, angle = smeared(image, rng, self.card)
        return torch.from_numpy(blur_input([view])[0]), torch.tensor(target(length, angle), dtype=torch.float32)
