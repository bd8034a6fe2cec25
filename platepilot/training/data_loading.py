"""Torch datasets over labelled crops and on-the-fly synthetic plates, mixed into one epoch."""

from __future__ import annotations

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from platepilot.ocr.spec import ModelSpec, to_input
from platepilot.plates.synth import synth_sample
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


class MixedPlates(Dataset):
    """One epoch: every labelled crop (jittered) plus `synthetic` fresh synthetic plates.

    Sample i of epoch e is a pure function of (seed, e, i), so a resumed run sees the same data.
    """

    def __init__(
        self,
        images: np.ndarray,
        texts: list[str],
        spec: ModelSpec,
        synthetic: int,
        seed: int,
        epoch: int,
        augment: bool = True,
    ) -> None:
        self.images, self.texts, self.spec = images, texts, spec
        self.synthetic, self.seed, self.epoch, self.augment = synthetic, seed, epoch, augment

    def __len__(self) -> int:
        return len(self.texts) + self.synthetic

    def __getitem__(self, i: int) -> tuple[np.ndarray, str]:
        if i < len(self.texts):
            image = self.images[i]
            if self.augment:
                image = jitter(image, np.random.default_rng([self.seed, self.epoch, i]))
            return image, self.texts[i]
        index = self.epoch * self.synthetic + (i - len(self.texts))
        sample = synth_sample(self.seed + 7919, index)
        return to_input(sample.image, self.spec), sample.text


def collate(
    spec: ModelSpec, batch: list[tuple[np.ndarray, str]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[str]]:
    """-> (normalised float (N,C,H,W), flat CTC targets, target lengths, texts)."""
    images = np.stack([b[0] for b in batch]).astype(np.float32)
    images = images.reshape(len(batch), spec.channels, spec.height, spec.width)
    images = (images / 255.0 - spec.mean) / spec.std
    texts = [b[1] for b in batch]
    flat, lengths = encode(texts, spec.charset)
    return torch.from_numpy(images), torch.from_numpy(flat), torch.from_numpy(lengths), texts


def _worker_init(_: int) -> None:
    cv2.setNumThreads(1)
    torch.set_num_threads(1)


def make_loader(
    dataset: Dataset, spec: ModelSpec, batch_size: int, shuffle_seed: int | None, workers: int
) -> DataLoader:
    generator = None
    if shuffle_seed is not None:
        generator = torch.Generator()
        generator.manual_seed(shuffle_seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle_seed is not None,
        generator=generator,
        num_workers=workers,
        worker_init_fn=_worker_init if workers else None,
        collate_fn=lambda b: collate(spec, b),
        drop_last=False,
    )
