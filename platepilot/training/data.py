"""Training data: labelled crops from labels.txt, synthetic plates on the fly, a track-aware split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from rich.progress import track

from platepilot.errors import PlatepilotError
from platepilot.ocr.spec import ModelSpec, to_input
from platepilot.plates.charset import CHARSET
from platepilot.plates.synth import synth_sample
from platepilot.store.labels import resolve_crop_path, scan_labels
from platepilot.store.splits import group_key, split_group

__all__ = [
    "LabelledSet",
    "LoadReport",
    "encode",
    "group_key",
    "load_crops",
    "load_labelled",
    "split_by_group",
    "synthetic_batch",
]


@dataclass
class LabelledSet:
    """Crops already resized to the model input (uint8), their texts and split-group keys."""

    images: np.ndarray
    texts: list[str]
    groups: list[str]
    paths: list[str]


@dataclass(frozen=True)
class LoadReport:
    used: int
    skipped: int
    unreadable: list[str]
    bad_lines: int


def load_labelled(labels: Path, spec: ModelSpec, day_scoped: bool = True) -> tuple[LabelledSet, LoadReport]:
    """Read labels.txt (latest line per crop wins) and every readable crop it names."""
    if not labels.is_file():
        raise PlatepilotError(f"labels file not found: {labels}")
    report = scan_labels(labels)  # read once: the problems are counted in the LoadReport
    entries = {key: label.text for key, label in report.latest.items() if not label.skipped}
    skipped = len(report.latest) - len(entries)
    data, unreadable = load_crops(entries, labels, spec, day_scoped)
    return data, LoadReport(len(data.texts), skipped, unreadable, len(report.problems))


def load_crops(
    entries: dict[str, str], labels: Path, spec: ModelSpec, day_scoped: bool = True
) -> tuple[LabelledSet, list[str]]:
    """The crops `entries` names (paths as written in `labels`' folder -> text), and those unreadable."""
    images, texts, groups, paths, unreadable = [], [], [], [], []
    for key, text in track(entries.items(), description="loading crops", transient=True):
        path = resolve_crop_path(key, labels)
        image = cv2.imread(str(path), cv2.IMREAD_COLOR) if path.is_file() and path.stat().st_size else None
        if image is None:
            unreadable.append(key)
            continue
        images.append(to_input(image, spec))
        texts.append(text)
        groups.append(split_group(key, text, day_scoped))
        paths.append(key)
    shape = (0, spec.height, spec.width) if spec.channels == 1 else (0, spec.channels, spec.height, spec.width)
    stacked = np.stack(images) if images else np.zeros(shape, np.uint8)
    return LabelledSet(stacked, texts, groups, paths), unreadable


def split_by_group(groups: list[str], val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, val): whole groups go to one side, about `val_fraction` of crops to val, and never
    every group (60 crops of one track gave validation all 60 and training none)."""
    unique = sorted(set(groups))
    rng = np.random.default_rng(seed)
    rng.shuffle(unique)
    target = round(len(groups) * val_fraction)
    val_groups: set[str] = set()
    count = 0
    sizes = {g: 0 for g in unique}
    for g in groups:
        sizes[g] += 1
    for g in unique[:-1]:
        if count >= target:
            break
        val_groups.add(g)
        count += sizes[g]
    is_val = np.array([g in val_groups for g in groups], bool)
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def synthetic_batch(seed: int, start: int, count: int, spec: ModelSpec) -> tuple[np.ndarray, list[str]]:
    """`count` synthetic crops of stream `seed` from index `start`, resized to the model input."""
    samples = [synth_sample(seed, start + i) for i in range(count)]
    return np.stack([to_input(s.image, spec) for s in samples]), [s.text for s in samples]


def encode(texts: list[str], charset: str = CHARSET) -> tuple[np.ndarray, np.ndarray]:
    """Texts -> (flat targets with class = charset index + 1, lengths) for CTC."""
    lookup = {c: i + 1 for i, c in enumerate(charset)}
    flat = np.array([lookup[c] for t in texts for c in t], np.int64)
    return flat, np.array([len(t) for t in texts], np.int64)
