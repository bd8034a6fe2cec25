"""Which labelled crops training may see, and what it validates on: one home for the rules that
`labels check`, training and the promotion gate must agree on.

- Crops of one vehicle share a group (`group_key`); a split never cuts a group in two.
- The held-out split: a fixed fraction of groups, chosen by a hash of the group key, so a crop stays
  on its side as the labels file grows and no state file is needed. Training never sees these crops
  (neither to train nor to validate); the promotion gate reads them.
- Validation: with fewer than MIN_VALIDATION_LABELS trainable labels, a validation split of a few
  crops only measures noise, so training validates on a fixed synthetic set instead and trains on
  every trainable crop.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from platepilot.store.crops import parse_crop_stem
from platepilot.types import Label

MIN_VALIDATION_LABELS = 50
"""Below this many trainable labels, training validates on synthetic plates, not on a split of crops."""
FINETUNE_ADVICE = "--init-from bundled --synthetic 3000 --lr 3e-4"
"""The measured fine-tune recipe for a few dozen to a few hundred labels (docs/ocr_training.md)."""
SCRATCH_SYNTHETIC = 20_000
"""Synthetic plates per epoch that keep a CRNN trained from scratch on few labels from collapsing."""


def group_key(path: str, text: str) -> str:
    """Crops of one vehicle share a key: the same `CAMx_trackN` stem, else the same plate text."""
    parsed = parse_crop_stem(Path(path).stem)
    return f"track:{parsed[0]}_{parsed[1]}" if parsed else f"text:{text}"


def split_group(path: str, text: str, day_scoped: bool = True) -> str:
    """`group_key`, scoped by the crop's day folder (track numbers restart every day)."""
    key = group_key(path, text)
    return f"{Path(path).parent.name}/{key}" if day_scoped and key.startswith("track:") else key


def is_held_out(group: str, fraction: float) -> bool:
    """True for about `fraction` of all groups, the same ones on every machine and every run."""
    digest = hashlib.sha256(group.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def held_out_labels(latest: Mapping[str, Label], fraction: float) -> list[tuple[str, str]]:
    """(path as written, text) of the held-out plate labels (not `__SKIP__`), in file order."""
    return [
        (path, label.text)
        for path, label in latest.items()
        if not label.skipped and is_held_out(split_group(path, label.text), fraction)
    ]


@dataclass(frozen=True)
class ValidationPlan:
    """What a training run on `trainable` labels validates on: `val_crops` of them, or synthetic plates."""

    source: Literal["labels", "synthetic"]
    trainable: int
    val_crops: int

    def line(self) -> str:
        if self.source == "labels":
            return f"validates on ~{self.val_crops} of your {self.trainable} trainable crops (whole tracks)"
        return (
            f"only {self.trainable} trainable labels (fewer than {MIN_VALIDATION_LABELS}): training validates "
            "on a fixed set of synthetic plates for early stopping and trains on every trainable crop"
        )


def validation_plan(trainable: int, val_split: float) -> ValidationPlan:
    """The plan for `trainable` labels (held-out crops already removed) and the requested `val_split`."""
    val_crops = round(trainable * val_split)
    if trainable < MIN_VALIDATION_LABELS or val_crops == 0:
        return ValidationPlan("synthetic", trainable, 0)
    return ValidationPlan("labels", trainable, val_crops)
