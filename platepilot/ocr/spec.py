"""A reader model's metadata: the one place its charset, input size and normalisation are written.

The JSON sidecar beside every ONNX file (`florida_plate_ocr.json` next to `florida_plate_ocr.onnx`)
holds this spec plus training metrics and provenance; training writes it, everything else reads it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from platepilot.errors import PlatepilotError
from platepilot.plates.charset import CHARSET
from platepilot.sessions import checked_sidecar, file_sha256, sidecar_path
from platepilot.store.atomic import write_text_atomically


class ModelSpec(BaseModel):
    """Input contract of a CTC plate reader: grey or BGR images resized to height x width."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    charset: str = Field(CHARSET, description="Output classes 1..len(charset); class 0 is the CTC blank")
    height: int = Field(32, ge=8, le=256, description="Input height in pixels")
    width: int = Field(128, ge=16, le=1024, description="Input width in pixels")
    channels: int = Field(1, description="1 = greyscale, 3 = BGR")
    mean: float = Field(0.5, description="Subtracted after scaling pixels to [0, 1]")
    std: float = Field(0.5, gt=0, description="Divides after subtracting mean")

    @property
    def num_classes(self) -> int:
        return len(self.charset) + 1


class ModelCard(BaseModel):
    """The sidecar: spec + what the model is and how it was made."""

    model_config = ConfigDict(extra="forbid")

    spec: ModelSpec
    architecture: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, float] = Field(default_factory=dict)
    training: dict[str, Any] = Field(default_factory=dict)
    run_id: str | None = None
    sha256: str = ""
    weights_sha256: str = Field(default="", description="sha256 of the torch checkpoint (.pt) exported with it")


def load_card(model_path: Path, verify: bool = True) -> ModelCard:
    """Read and check a model's sidecar; PlatepilotError naming the file on any problem."""
    side = sidecar_path(model_path)
    return checked_sidecar(
        model_path, _parse_card, "sha256", verify, no_model=f"model not found: {model_path}",
        no_sidecar=f"{side} is missing: every model needs its metadata sidecar (charset, input size)",
        mismatch=f"{model_path}: sha256 does not match its sidecar (corrupt or replaced file)",
    )  # fmt: skip


def _parse_card(side: Path) -> ModelCard:
    try:
        return ModelCard.model_validate(json.loads(side.read_text()))
    except (ValueError, TypeError) as exc:
        raise PlatepilotError(f"{side}: not a valid model sidecar ({str(exc).splitlines()[0]})") from exc


def save_card(model_path: Path, card: ModelCard) -> None:
    """Write the sidecar atomically, with the model file's sha256 filled in."""
    card = card.model_copy(update={"sha256": file_sha256(model_path)})
    write_text_atomically(sidecar_path(model_path), card.model_dump_json(indent=2))


def preprocess(images: list[np.ndarray], spec: ModelSpec) -> np.ndarray:
    """BGR uint8 crops -> float32 (N, C, H, W) normalised as the spec says."""
    out = np.empty((len(images), spec.channels, spec.height, spec.width), np.float32)
    for i, image in enumerate(images):
        out[i] = to_input(image, spec).astype(np.float32).reshape(spec.channels, spec.height, spec.width)
    out /= 255.0
    out -= spec.mean
    out /= spec.std
    return out


def to_input(image: np.ndarray, spec: ModelSpec) -> np.ndarray:
    """One BGR (or grey) uint8 crop resized to the spec: uint8 (H, W) or (C, H, W)."""
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    resized = cv2.resize(image, (spec.width, spec.height), interpolation=cv2.INTER_AREA)
    if spec.channels == 1:
        return cv2.cvtColor(resized, cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(resized.transpose(2, 0, 1))
