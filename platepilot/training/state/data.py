"""Training data of the state classifier: real photos, published design images, rendered plates, non-plates.

Every source is decoded and resized once to PHOTO_H x PHOTO_W and kept in a `.npy` cache outside
the repository (the photos are not ours to ship). Each epoch draws from these pools and degrades
every image into a camera crop: loose or tight framing on a car-coloured surround, perspective,
rotation, low resolution, blur, night (dark and noisy, or infrared grey), JPEG, partial occlusion.
"""

from __future__ import annotations

import hashlib
import os
import sys
import zipfile
import zlib
from collections.abc import Callable, Sequence, Sized
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import cv2
import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, track
from torch.utils.data import Dataset

from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.ocr.state import StateCard, state_input
from platepilot.plates.designs import Family, sample_design
from platepilot.plates.render import render_plate
from platepilot.plates.state_manifest import StatePhoto, read_state_manifest
from platepilot.plates.states import FLORIDA, UNKNOWN
from platepilot.plates.templates import design_images

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # never phone home (air-gapped sites)
import itertools

import albumentations as A

T = TypeVar("T", bound=Sized)
PHOTO_H, PHOTO_W = 128, 224  # us_plates_by_state's own size; design images and renders are resized to it
HOLDOUT_EVERY = 20  # one training photo in this many is held out for per-epoch validation
CLEAN_SHARE = 0.25  # images only framed, not degraded: the first run (all degraded) underfit, train ~ held-out


@dataclass(frozen=True)
class Pool:
    """Images (N, PHOTO_H, PHOTO_W, 3) BGR uint8 and their postal codes."""

    images: np.ndarray
    states: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.states)


@dataclass(frozen=True)
class Sources:
    """Every training source in one pool, and each source's indices in it."""

    pool: Pool
    real: np.ndarray  # the train split's photos, less the held-out ones
    held: np.ndarray  # the held-out train photos (one in HOLDOUT_EVERY), scored each epoch
    designs: np.ndarray  # design images, labelled Florida
    rendered: np.ndarray  # rendered plates

    def describe(self) -> str:
        return (
            f"{len(self.real)} training photos ({len(self.held)} held out), {len(self.designs)} design images, "
            f"{len(self.rendered)} rendered plates"
        )


def training_sources(manifest: Path, designs: Sequence[Path], rendered: int, seed: int, cache_dir: Path) -> Sources:
    """The train rows of `manifest`, the design images of the `designs` folders and `rendered` rendered
    plates (`seed`), decoded once into `cache_dir` and merged into one pool."""
    photos = read_state_manifest(manifest, {"train"})
    train = [p for p in photos if not is_holdout(p)]
    held = [p for p in photos if is_holdout(p)]
    if not train:
        raise PlatepilotError(
            f"{manifest}: its {len(photos)} train row(s) are all held out for validation (one in {HOLDOUT_EVERY}); "
            "add train rows"
        )
    design_paths = [p for folder in designs for p in design_images(folder)]
    pool, (real_ids, held_ids, design_ids, rendered_ids) = merge([
        cached_pool([p.image for p in train], [p.state for p in train], cache_dir, "photos"),
        cached_pool([p.image for p in held], [p.state for p in held], cache_dir, "holdout"),
        cached_pool(design_paths, [FLORIDA] * len(design_paths), cache_dir, "designs"),
        rendered_pool(rendered, seed, cache_dir),
    ])  # fmt: skip
    return Sources(pool, real_ids, held_ids, design_ids, rendered_ids)


def is_holdout(photo: StatePhoto) -> bool:
    return zlib.crc32(str(photo.image).encode()) % HOLDOUT_EVERY == 0


def cached_pool(images: Sequence[Path], states: Sequence[str], cache_dir: Path, name: str) -> Pool:
    """Decode and resize `images` once; later runs load `<cache_dir>/<name>-<hash of the list>.npy` (the
    hash covers each file's path, size and modification time: a replaced photo is decoded again)."""
    listing = "\n".join(f"{p}\t{p.stat().st_size}\t{p.stat().st_mtime_ns}" for p in images)
    path = cache_dir / f"{name}-{hashlib.sha1(listing.encode()).hexdigest()[:12]}.npy"
    if not images:
        return Pool(np.zeros((0, PHOTO_H, PHOTO_W, 3), np.uint8), ())
    cached = load_cached(path, lambda f: np.load(f), len(images))
    if cached is not None:
        return Pool(cached, tuple(states))
    array = np.stack([_fit(read_image(p)) for p in track(images, description=f"decoding {name}", transient=True)])
    save_cached(path, lambda f: np.save(f, array))
    return Pool(array, tuple(states))


def load_cached(path: Path, load: Callable[[Path], T], count: int) -> T | None:
    """What `load` reads from the cache file `path`, or None to build it again: no such file, or one that
    is unreadable (cut short, another program's) or holds other than `count` items."""
    if not path.is_file():
        return None
    try:
        loaded = load(path)
        if len(loaded) == count:
            return loaded
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile):
        pass
    print(f"{path}: unreadable or stale cache, built again", file=sys.stderr)
    return None


def save_cached(path: Path, save: Callable[[Path], None]) -> None:
    """`save` to a temp file of this process's own, then rename it to `path`: runs sharing a cache
    folder never write into each other's file, and a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    save(tmp)
    tmp.replace(path)


def rendered_pool(count: int, seed: int, cache_dir: Path) -> Pool:
    """`count` plates from the generator, half Florida families, half out-of-state labelled by their
    state name; cached by (count, seed)."""
    rng = np.random.default_rng(seed)
    path = cache_dir / f"rendered-{count}-{seed}.npz"
    if count == 0:
        return Pool(np.zeros((0, PHOTO_H, PHOTO_W, 3), np.uint8), ())
    cached = load_cached(path, _load_rendered, count)
    if cached is not None:
        return cached
    images, states = [], []
    wanted = {True: count // 2, False: count - count // 2}  # florida?
    with Progress(TextColumn("rendering plates"), BarColumn(), MofNCompleteColumn(), transient=True) as progress:
        task = progress.add_task("render", total=count)
        while any(wanted.values()):
            design = sample_design(rng)
            florida = design.family is not Family.OUT_OF_STATE
            if wanted[florida]:
                wanted[florida] -= 1
                images.append(_fit(render_plate(design, rng).image))
                states.append(design.state)
                progress.advance(task)
    save_cached(path, lambda f: np.savez(f, images=np.stack(images), states=np.array(states)))
    return Pool(np.stack(images), tuple(states))


def _load_rendered(path: Path) -> Pool:
    with np.load(path) as saved:
        return Pool(saved["images"], tuple(str(s) for s in saved["states"]))


def _fit(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (PHOTO_W, PHOTO_H), interpolation=cv2.INTER_AREA)


def camera_degradation() -> A.Compose:
    """What a roadside camera and the detector's box do to a clean plate photo (after `frame`)."""
    blur = A.OneOf(
        [A.GaussianBlur(sigma_limit=(0.3, 1.6), blur_limit=0), A.MotionBlur(blur_limit=(3, 9)),
         A.Defocus(radius=(1, 3), alias_blur=(0.1, 0.3))],
        p=0.5,
    )  # fmt: skip
    night = A.OneOf(
        [A.Sequential([A.ToGray(p=1), A.RandomBrightnessContrast((0.0, 0.3), (0.2, 0.6), p=1)]),  # IR
         A.Sequential([A.RandomBrightnessContrast((-0.45, -0.2), (-0.3, 0.0), p=1),
                       A.GaussNoise(std_range=(0.04, 0.12), p=1)])],  # dark, noisy
        p=0.12,
    )  # fmt: skip
    return A.Compose(
        [
            A.Affine(scale=(0.9, 1.05), rotate=(-7, 7), shear=(-6, 6), border_mode=cv2.BORDER_REPLICATE, p=0.7),
            A.Perspective(scale=(0.02, 0.07), p=0.5),
            A.Downscale(scale_range=(0.22, 0.8), p=0.6),
            blur,
            A.RandomBrightnessContrast((-0.35, 0.3), (-0.4, 0.3), p=0.6),
            A.RandomGamma(gamma_limit=(60, 160), p=0.3),
            A.HueSaturationValue(hue_shift_limit=5, sat_shift_limit=25, val_shift_limit=10, p=0.3),
            A.RandomShadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 1), shadow_intensity_range=(0.2, 0.5),
                           p=0.15),
            night,
            A.CoarseDropout(num_holes_range=(1, 2), hole_height_range=(0.1, 0.4), hole_width_range=(0.05, 0.25),
                            fill="random_uniform", p=0.25),
            A.GaussNoise(std_range=(0.01, 0.06), p=0.3),
            A.ImageCompression(quality_range=(25, 90), p=0.6),
        ]
    )  # fmt: skip


def frame(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A detector-style box around the plate: a margin of car colour (or edges cut off), re-fitted."""
    h, w = image.shape[:2]
    margins = rng.uniform(-0.06, 0.18, 4) if rng.random() < 0.7 else rng.uniform(-0.1, 0.04, 4)
    top, bottom = (margins[:2] * h).astype(int)
    left, right = (margins[2:] * w).astype(int)
    color = tuple(int(c) for c in rng.integers(0, 256, 3) * rng.uniform(0.2, 1.0))
    padded = cv2.copyMakeBorder(image, max(top, 0), max(bottom, 0), max(left, 0), max(right, 0),
                                cv2.BORDER_CONSTANT, value=color)  # fmt: skip
    ph, pw = padded.shape[:2]
    cut = padded[max(-top, 0) : ph - max(-bottom, 0), max(-left, 0) : pw - max(-right, 0)]
    return cv2.resize(cut, (w, h), interpolation=cv2.INTER_AREA)


def non_plate(rng: np.random.Generator, pool: np.ndarray) -> np.ndarray:
    """Something that is not a plate: noise, paint, clutter, or a plate cut in tiles and shuffled."""
    kind = int(rng.integers(4))
    if kind == 0:
        return rng.integers(0, 256, (PHOTO_H, PHOTO_W, 3), dtype=np.uint8)
    if kind == 1:
        a, b = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
        t = np.linspace(0, 1, PHOTO_H)[:, None, None]
        return np.broadcast_to(a * (1 - t) + b * t, (PHOTO_H, PHOTO_W, 3)).astype(np.uint8)
    if kind == 2:
        image = np.full((PHOTO_H, PHOTO_W, 3), rng.integers(0, 256, 3), np.uint8)
        for _ in range(int(rng.integers(2, 12))):
            x, y = int(rng.integers(0, PHOTO_W)), int(rng.integers(0, PHOTO_H))
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            size = (x + int(rng.integers(5, 90)), y + int(rng.integers(3, 50)))
            cv2.rectangle(image, (x, y), size, color, -1) if rng.random() < 0.6 else cv2.line(
                image, (x, y), size, color, 3
            )
        return image
    tiles = pool[int(rng.integers(len(pool)))].reshape(4, PHOTO_H // 4, 4, PHOTO_W // 4, 3).swapaxes(1, 2)
    tiles = tiles.reshape(16, PHOTO_H // 4, PHOTO_W // 4, 3)[rng.permutation(16)]
    return tiles.reshape(4, 4, PHOTO_H // 4, PHOTO_W // 4, 3).swapaxes(1, 2).reshape(PHOTO_H, PHOTO_W, 3)


class StateCrops(Dataset[tuple[torch.Tensor, int]]):
    """Items of one epoch: (pool index, or -1 for a non-plate) -> (normalised input, class index)."""

    def __init__(self, pool: Pool, items: np.ndarray, card: StateCard, augment: bool, seed: int) -> None:
        self.pool, self.items, self.card, self.augment, self.seed = pool, items, card, augment, seed
        self.index = {c: i for i, c in enumerate(card.classes)}
        self._degrade = camera_degradation() if augment else None

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        rng = np.random.default_rng((self.seed, i))
        item = int(self.items[i])
        if item < 0:
            image, label = non_plate(rng, self.pool.images), self.index[UNKNOWN]
        else:
            image, label = self.pool.images[item], self.index[self.pool.states[item]]
        if self._degrade is not None:
            image = frame(image, rng)
            if rng.random() >= CLEAN_SHARE:
                self._degrade.set_random_seed(int(rng.integers(2**31)))
                image = self._degrade(image=image)["image"]
        return torch.from_numpy(state_input([image], self.card)[0]), label


def merge(pools: Sequence[Pool]) -> tuple[Pool, list[np.ndarray]]:
    """One pool of all images, and each source's index range in it."""
    images = np.concatenate([p.images for p in pools])
    states = tuple(s for p in pools for s in p.states)
    starts = np.cumsum([0] + [len(p.states) for p in pools])
    return Pool(images, states), [np.arange(a, b) for a, b in itertools.pairwise(starts)]
