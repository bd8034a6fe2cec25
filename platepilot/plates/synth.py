"""Synthetic plate crops: unlimited labelled training data, deterministic by (seed, index).

`synth_sample(seed, i)` is the whole recipe: design -> front-on render -> camera. It is pure and
torch-free, so training can generate on the fly in DataLoader workers, and `training.datasets.write_plates` can fan
out over processes while staying byte-identical whatever the worker count.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from platepilot.plates.camera import CameraModel
from platepilot.plates.designs import Family, sample_design
from platepilot.plates.render import render_plate
from platepilot.plates.templates import Template, pick_template, render_template


@dataclass(frozen=True)
class SynthSample:
    """One synthetic crop: `image` BGR uint8, `text` its A-Z0-9 label, `family` the plate design."""

    image: np.ndarray
    text: str
    family: Family


@cache
def _camera() -> CameraModel:
    return CameraModel()


def synth_sample(seed: int, index: int, camera: bool = True) -> SynthSample:
    """Sample `index` of the stream `seed`; `camera=False` returns the clean front-on plate."""
    rng = np.random.default_rng([seed, index])
    design = sample_design(rng)
    plate = render_plate(design, rng)
    image = _camera().apply(plate, rng) if camera else plate.image
    return SynthSample(image, design.text, design.family)


def template_sample(templates: Sequence[Template], seed: int, index: int) -> SynthSample:
    """Sample `index` of the stream `seed` drawn on a real design (`plates.templates`) instead of a
    generated one, then through the same camera. A design whose serial the orange splits is Florida's
    standard plate; the others are its specialty plates."""
    rng = np.random.default_rng([seed, index])
    template = pick_template(templates, rng)
    plate = render_template(template, rng)
    family = Family.FL_STANDARD if template.orange else Family.FL_SPECIALTY
    return SynthSample(_camera().apply(plate, rng), plate.text, family)


def iter_samples(seed: int, start: int = 0, count: int | None = None) -> Iterator[SynthSample]:
    """Samples start, start+1, ... of stream `seed` (endless when `count` is None)."""
    index = start
    while count is None or index < start + count:
        yield synth_sample(seed, index)
        index += 1
