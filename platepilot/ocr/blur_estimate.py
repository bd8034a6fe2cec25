"""How far and which way a crop is smeared by motion: a small CNN through onnxruntime.

Wiener deconvolution undoes a motion blur only with the right line: on UCSD's plates blurred 5 px,
the CRNN read 41% plain, 67% deconvolved with the true line, 45% with the true length but a
horizontal line, and 9% with a line one pixel too long (2026-12-06, a scratch script). So the line
is estimated, not guessed: a network trained by `platepilot blur train` (platepilot/training/blur/)
looks at the middle of the crop, at the scale the deconvolution works at, and returns the smear's
length in pixels and its angle. Everything needed to feed it lives in its JSON sidecar (`BlurCard`),
with the ONNX file's sha256.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from platepilot.sessions import check_input_shape, load_sidecar, open_session, save_sidecar

BUNDLED_BLUR_MODEL = Path(__file__).resolve().parents[1] / "assets" / "plate_blur.onnx"


class BlurCard(BaseModel):
    """The sidecar of a blur estimator: its window, the lengths it learnt, where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["blur"] = "blur"
    height: int = Field(description="Window height, pixels: the middle of a grey crop, not resized.", ge=16, le=256)
    width: int = Field(description="Window width, pixels.", ge=16, le=512)
    max_length: int = Field(description="Longest smear trained on, pixels; longer estimates are clamped.", ge=2)
    onnx_sha256: str = ""
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Smear:
    """A motion blur: `length` px along a line at `angle` degrees (0 horizontal, in [-90, 90))."""

    length: float
    angle: float


def load_blur_card(model_path: Path) -> BlurCard:
    return load_sidecar(model_path, BlurCard, "blur estimator")


def save_blur_card(model_path: Path, card: BlurCard) -> None:
    save_sidecar(model_path, card)


def window(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """The middle `height` x `width` of a grey uint8 image, edges replicated where it is smaller.
    Never resized: resizing would change the smear's length."""
    h, w = image.shape[:2]
    pad_y, pad_x = max(0, height - h), max(0, width - w)
    if pad_y or pad_x:
        image = cv2.copyMakeBorder(
            image, pad_y // 2, pad_y - pad_y // 2, pad_x // 2, pad_x - pad_x // 2, cv2.BORDER_REPLICATE
        )
        h, w = image.shape[:2]
    y, x = (h - height) // 2, (w - width) // 2
    return image[y : y + height, x : x + width]


def blur_input(windows: list[np.ndarray]) -> np.ndarray:
    """Grey uint8 windows -> (N, 1, H, W) float32 in [-1, 1], as training and serving feed them."""
    return (np.stack(windows)[:, None].astype(np.float32) / 127.5 - 1.0).astype(np.float32)


def smears(outputs: np.ndarray, max_length: int) -> list[Smear]:
    """The network's (N, 3) outputs (length, cos 2a, sin 2a) -> smears; a line has no head or tail, so
    its angle is learnt doubled."""
    return [
        Smear(float(np.clip(length, 0.0, max_length)), math.degrees(math.atan2(s, c)) / 2) for length, c, s in outputs
    ]


class BlurEstimator:
    """The bundled (or a user-trained) blur estimator through onnxruntime. Thread-safe."""

    def __init__(self, model_path: Path | None = None, threads: int | None = None) -> None:
        self.path = model_path or BUNDLED_BLUR_MODEL
        self.card = load_blur_card(self.path)
        self._session = open_session(self.path, "blur estimator", threads=threads)
        check_input_shape(self._session, self.path, (1, self.card.height, self.card.width))
        self._input = self._session.get_inputs()[0].name

    def estimate(self, images: list[np.ndarray]) -> list[Smear]:
        """Grey (or BGR) uint8 crops of any size, at the scale they will be deconvolved at -> their smears."""
        if not images:
            return []
        greys = [cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image for image in images]
        batch = blur_input([window(grey, self.card.height, self.card.width) for grey in greys])
        (outputs,) = self._session.run(None, {self._input: batch})
        return smears(np.asarray(outputs), self.card.max_length)
