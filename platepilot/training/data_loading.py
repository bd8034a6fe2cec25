"""Torch datasets over labelled crops and on-the-fly synthetic plates, mixed into one epoch."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import partial

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from platepilot.ocr.spec import ModelSpec, to_input
from platepilot.plates.blur import camera_motion
from platepilot.plates.camera import degrade
from platepilot.plates.synth import synth_sample, template_sample
from platepilot.plates.templates import Template
from platepilot.training.data import encode


def jitter(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cheap augmentation of a model-sized crop: shift/zoom a few pixels, contrast and brightness."""
    h, w = image.shape[-2:]
    scale = rng.uniform(0.92, 1.08)
    tx, ty = rng.uniform(-0.04, 0.04) * w, rng.uniform(-0.08, 0.08) * h
    matrix = np.array([[scale, 0, (1 - scale) * w / 2 + tx], [0, scale, (1 - scale) * h / 2 + ty]], np.float32)
    planes = image.reshape(-1, h, w)
    out = np.stack([cv2.warpAffine(p, matrix, (w, h), borderMode=cv2.BORDER_REPLICATE) for p in planes])
    out = out.astype(np.float32) * rng.uniform(0.7, 1.3) + rng.uniform(-30, 30)
    return np.clip(out, 0, 255).astype(np.uint8).reshape(image.shape)


REAL_SHARE = 0.25  # a few real crops among many synthetic ones are repeated up to this share of an epoch


class MixedPlates(Dataset):
    """One epoch: every labelled crop (jittered, repeated when few) plus `synthetic` fresh synthetic plates.

    Repeating the real crops keeps 43 real labels from drowning among 2,000 synthetic plates; each
    repeat gets its own jitter. Items are keyed (epoch, i) and each is a pure function of
    (seed, epoch, i), so a resumed run sees the same data and workers live across epochs.
    """

    def __init__(
        self, images: np.ndarray, texts: list[str], spec: ModelSpec, synthetic: int, seed: int, augment: bool = True,
        weights: list[float] | None = None, degrade: float = 0.0, templates: Sequence[Template] = (),
        template_share: float = 0.0, motion: float = 0.0,
    ) -> None:  # fmt: skip
        self.images, self.texts, self.spec = images, texts, spec
        self.synthetic, self.seed, self.augment = synthetic, seed, augment
        self.weights = weights or [1.0] * len(texts)
        """Loss weight of each real crop (pseudo-labels below human labels); synthetic plates weigh 1."""
        self.degrade = degrade
        """Share of the real crops drawn that also go through `degrade` (with `augment`)."""
        self.templates, self.template_share = tuple(templates), template_share
        """Real designs (`plates.templates`) and the share of synthetic plates drawn on them."""
        self.motion = motion
        """Share of all crops, real and synthetic, given a camera's motion blur (`camera_motion`, with `augment`)."""
        wanted = REAL_SHARE / (1 - REAL_SHARE) * synthetic
        self.real = max(len(texts), int(wanted)) if texts else 0

    def __len__(self) -> int:
        return self.real + self.synthetic

    def __getitem__(self, key: tuple[int, int]) -> tuple[np.ndarray, str, float]:
        epoch, i = key
        if i < self.real:
            k = i % len(self.texts)
            image = self.images[k]
            if self.augment:
                rng = np.random.default_rng([self.seed, epoch, i])
                image = jitter(image, rng)
                if rng.random() < self.degrade:
                    image = degrade(image, rng)
                if rng.random() < self.motion:
                    image = camera_motion(image, rng)
            return image, self.texts[k], self.weights[k]
        index = epoch * self.synthetic + (i - self.real)
        if self.templates and np.random.default_rng([self.seed, index, 1]).random() < self.template_share:
            sample = template_sample(self.templates, self.seed + 7919, index)
        else:
            sample = synth_sample(self.seed + 7919, index)
        image = to_input(sample.image, self.spec)
        rng = np.random.default_rng([self.seed, index, 2])
        if self.augment and rng.random() < self.motion:
            image = camera_motion(image, rng)
        return image, sample.text, 1.0


def collate(
    spec: ModelSpec, batch: list[tuple[np.ndarray, str, float]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(image, text, loss weight) items -> (normalised float (N,C,H,W), flat CTC targets, target lengths,
    weights)."""
    images = np.stack([b[0] for b in batch]).astype(np.float32)
    images = images.reshape(len(batch), spec.channels, spec.height, spec.width)
    images = (images / 255.0 - spec.mean) / spec.std
    flat, lengths = encode([b[1] for b in batch], spec.charset)
    weights = torch.tensor([b[2] for b in batch], dtype=torch.float32)
    return torch.from_numpy(images), torch.from_numpy(flat), torch.from_numpy(lengths), weights


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


class EpochSampler(Sampler[tuple[int, int]]):
    """Yields (epoch, i) keys in an order shuffled by (seed, epoch); `set_epoch` before each epoch."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.size

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = np.random.default_rng([self.seed, self.epoch]).permutation(self.size)
        return ((self.epoch, int(i)) for i in order)


def make_loader(
    dataset: MixedPlates, spec: ModelSpec, batch_size: int, sampler: EpochSampler, workers: int
) -> DataLoader:
    """One loader for the whole run; its worker processes (if any) live across epochs."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=_worker_init if workers else None,
        # spawn, not fork: a forked child deadlocks in OpenCV's thread pool once the parent has used it.
        multiprocessing_context="spawn" if workers else None,
        persistent_workers=workers > 0,
        collate_fn=partial(collate, spec),
        drop_last=False,
    )
