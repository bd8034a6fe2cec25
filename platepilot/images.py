"""Image files and scaling. Which file names are images: those OpenCV reads (`IMAGE_SUFFIXES`), and of
them those a browser page can show (`WEB_IMAGE_SUFFIXES`: no TIFF). Scaling by a factor without losing a
side: one that would round to 0 px stays 1 px (OpenCV refuses an empty size, and a 2 x 1,300 strip scaled
to a 320 px sample has a side of 0.5 px)."""

from __future__ import annotations

import cv2
import numpy as np

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
