"""Image files, kinds and scaling. Which file names are images: those OpenCV reads (`IMAGE_SUFFIXES`), and
of them those a browser page can show (`WEB_IMAGE_SUFFIXES`: no TIFF). Any image handed to a reader or a
detector as BGR uint8 (`as_bgr`). Scaling by a factor without losing a
side: one that would round to 0 px stays 1 px (OpenCV refuses an empty size, and a 2 x 1,300 strip scaled
to a 320 px sample has a side of 0.5 px)."""

from __future__ import annotations

import cv2
import numpy as np

from platepilot.errors import PlatepilotError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
WEB_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def scaled(image: np.ndarray, scale: float, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
    """`image` resized by `scale` on both sides, each at least 1 px."""
    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=interpolation)


def at_most_wide(image: np.ndarray, width: int) -> np.ndarray:
    """`image`, scaled down to `width` px wide when it is wider."""
    return image if image.shape[1] <= width else scaled(image, width / image.shape[1])


def as_bgr(index: int, image: np.ndarray) -> np.ndarray:
    """Image `index` of a call (a crop to read, a frame to search) as BGR uint8 (H, W, 3): grey and BGRA
    are converted; anything else (another dtype, an empty array, other shapes) is a PlatepilotError
    naming the image and what it was."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.size == 0:
        what = f"{image.dtype} array of shape {image.shape}" if isinstance(image, np.ndarray) else type(image)
        raise PlatepilotError(f"image {index}: expected a non-empty uint8 array, got {what}")
    if image.ndim == 3 and image.shape[2] == 3:
        return image
    if image.ndim == 2 or (image.ndim == 3 and image.shape[2] == 1):
        return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.ndim == 3 and image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2BGR)
    raise PlatepilotError(f"image {index}: expected (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
