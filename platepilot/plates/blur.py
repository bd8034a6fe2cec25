"""Motion blur: the smear of a plate that moves across the frame while the shutter is open.

One model of it for the three places that need one: the reader's training (`camera_motion`), the
runtime's deblurring (`platepilot.ocr.deblur`, which undoes it) and the approach clips of
`benchmarks/real_clips.py` (which put it in).
"""

from __future__ import annotations

import cv2
import numpy as np

from platepilot.errors import PlatepilotError


def motion_kernel(length: int, angle: float) -> np.ndarray:
    """A normalised `length` px line at `angle` degrees (0: horizontal), as a (length, length) kernel.
    Not cached here: training and the clips draw a new angle for every crop."""
    line = np.zeros((length, length), np.float32)
    line[length // 2, :] = 1.0
    rotation = cv2.getRotationMatrix2D(((length - 1) / 2, (length - 1) / 2), angle, 1.0)
    kernel = cv2.warpAffine(line, rotation, (length, length))
    return np.asarray(kernel / float(kernel.sum()), np.float32)


def motion_blur(image: np.ndarray, length: int, angle: float) -> np.ndarray:
    """`image` (H, W) or (H, W, 3) smeared along a `length` px line at `angle` degrees (1: unchanged)."""
    return image if length <= 1 else cv2.filter2D(image, -1, motion_kernel(length, angle))


def exposed(
    image: np.ndarray, length: int, angle: float, sigma: float, quality: int, rng: np.random.Generator
) -> np.ndarray:
    """`image` (H, W) or (H, W, 3) uint8 as a moving camera records it, in the order it happens: the
    motion blur (`motion_blur`), then sensor noise of `sigma`, then JPEG at `quality`. Blurring last would
    smooth the noise and the JPEG blocks away, which no camera does."""
    smeared = motion_blur(image, length, angle).astype(np.float32)
    noisy = (smeared + rng.normal(0.0, sigma, image.shape).astype(np.float32)).clip(0, 255).astype(np.uint8)
    ok, jpg = cv2.imencode(".jpg", noisy, [cv2.IMWRITE_JPEG_QUALITY, quality])
    recorded = cv2.imdecode(jpg, cv2.IMREAD_UNCHANGED) if ok else None
    if recorded is None:
        raise PlatepilotError("JPEG encoding failed")
    return recorded


CAMERA_MOTION_PX = (3, 9)
"""Blur lengths `camera_motion` draws at the reader's input (128 px wide): a road camera's 2-5 px smear
on a plate 70-100 px wide in the frame, scaled up to the input."""
CAMERA_NOISE_SIGMA = (1.0, 4.0)
CAMERA_JPEG_QUALITY = (55, 90)
"""The sensor noise and JPEG quality ranges a road camera's frames get (here and in the approach clips)."""


def camera_motion(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A model-sized crop ((H, W) grey or (3, H, W) colour) as a moving camera records it (`exposed`): a
    3-9 px blur within 30 degrees of horizontal, the way vehicles and panning cameras move across a road
    frame, then sensor noise and JPEG."""
    length = int(rng.integers(CAMERA_MOTION_PX[0], CAMERA_MOTION_PX[1] + 1))
    angle, sigma = float(rng.uniform(-30, 30)), float(rng.uniform(*CAMERA_NOISE_SIGMA))
    quality = int(rng.integers(CAMERA_JPEG_QUALITY[0], CAMERA_JPEG_QUALITY[1] + 1))
    if image.ndim == 2:
        return exposed(image, length, angle, sigma, quality, rng)
    frame = np.ascontiguousarray(np.moveaxis(image, 0, -1))
    return np.ascontiguousarray(np.moveaxis(exposed(frame, length, angle, sigma, quality, rng), -1, 0))
