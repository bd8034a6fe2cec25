"""Motion blur: the smear of a plate that moves across the frame while the shutter is open.

One model of it for the three places that need one: the reader's training (`camera_motion`), the
runtime's deblurring (`platepilot.ocr.deblur`, which undoes it) and the approach clips of
`benchmarks/real_clips.py` (which put it in).
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np


@cache
def motion_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised `length` px line at `angle` degrees (0: horizontal), as a (length, length) kernel."""
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(line, rotation, (length, length))
    return np.asarray(kernel / float(kernel.sum()), np.float32)


def motion_blur(image: np.ndarray, length: int, angle: float) -> np.ndarray:
    """`image` (H, W) or (H, W, 3) smeared along a `length` px line at `angle` degrees (1: unchanged)."""
    return image if length <= 1 else cv2.filter2D(image, -1, motion_kernel(length, angle))


CAMERA_MOTION_PX = (3, 9)
"""Blur lengths `camera_motion` draws at the reader's input (128 px wide): a road camera's 2-5 px smear
on a plate 70-100 px wide in the frame, scaled up to the input."""


def camera_motion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A model-sized crop ((H, W) or (C, H, W)) smeared by a camera's motion blur: 3-9 px, within 30
    degrees of horizontal, the way vehicles and panning cameras move across a road frame."""
    length = int(rng.integers(CAMERA_MOTION_PX[0], CAMERA_MOTION_PX[1] + 1))
    angle = float(rng.uniform(-30, 30))
    planes = image.reshape(-1, *image.shape[-2:])
    return np.stack([motion_blur(p, length, angle) for p in planes]).reshape(image.shape)
