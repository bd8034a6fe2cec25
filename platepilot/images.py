"""Image files, kinds and scaling. Reading an image file as the readers read it (`read_image`). Which
file names are images: those OpenCV reads (`IMAGE_SUFFIXES`), and
of them those a browser page can show (`WEB_IMAGE_SUFFIXES`: no TIFF). Any image handed to a reader or a
detector as BGR uint8 (`as_bgr`). Scaling by a factor without losing a
side: one that would round to 0 px stays 1 px (OpenCV refuses an empty size, and a 2 x 1,300 strip scaled
to a 320 px sample has a side of 0.5 px)."""

from __future__ import annotations

import os
import re
from pathlib import Path

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


def read_image(path: Path) -> np.ndarray:
    """A crop from disk as BGR uint8 (H, W, 3); PlatepilotError saying why when it cannot be read."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise PlatepilotError(f"{path}: image not found") from None
    except IsADirectoryError:
        raise PlatepilotError(f"{path}: is a folder, not an image") from None
    except OSError as exc:
        raise PlatepilotError(f"{path}: cannot read image: {exc.strerror}") from None
    if not data:
        raise PlatepilotError(f"{path}: image file is empty (0 bytes)")
    try:
        image = _decode(np.frombuffer(data, np.uint8), has_alpha=_png_with_alpha(data))
    except cv2.error as exc:  # over OpenCV's pixel limit (a 210 KB PNG can be 40000 x 30000), ...
        too_big = "MAX_IMAGE_PIXELS" in str(exc)
        reason = "more pixels than OpenCV reads" if too_big else str(exc).strip().splitlines()[-1][:160]
        raise PlatepilotError(f"{path}: not a readable image ({reason})") from None
    if image is None or image.size == 0:
        raise PlatepilotError(f"{path}: not a readable image (corrupt, or not JPEG/PNG/BMP/...)")
    return image


def _png_with_alpha(data: bytes) -> bool:
    """Whether `data` is a PNG with transparency: an alpha channel (colour type 4 or 6 in its IHDR), or
    a `tRNS` chunk before its pixels (a palette or grey PNG, as optimisers such as pngquant write)."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or len(data) <= 25:
        return False
    return data[25] in (4, 6) or b"tRNS" in data[: data.find(b"IDAT")]


def _decode(buffer: np.ndarray, has_alpha: bool) -> np.ndarray | None:
    """BGR uint8; a transparent image on white, as a viewer shows it (its colour alone was black text
    on a black transparent ground)."""
    if not has_alpha:
        return cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    image = cv2.imdecode(buffer, cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        return None if image is None else cv2.imdecode(buffer, cv2.IMREAD_COLOR)
    scale = 65535.0 if image.dtype == np.uint16 else 255.0  # PNG holds 8 or 16 bits a channel
    colour, alpha = image[..., :3].astype(np.float32) / scale, image[..., 3:].astype(np.float32) / scale
    return np.round((colour * alpha + (1 - alpha)) * 255).astype(np.uint8)


_NUMBERS = re.compile(r"(\d+)")


def natural_key(name: str) -> tuple[object, ...]:
    """Sort key that puts `track2` before `track10` and `9.jpg` before `10.jpg` (ffmpeg's `%d` frames)."""
    return tuple(int(part) if part.isdigit() else part for part in _NUMBERS.split(name))


def image_files(folder: Path) -> list[Path]:
    """Every image file (IMAGE_SUFFIXES) under `folder` and its subfolders, links to files followed,
    hidden ones left out, in natural order (`platepilot ocr FOLDER`: any name, unlike the labeling page)."""
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = sorted(name for name in folders if not name.startswith("."))
        found += [Path(root) / name for name in files
                  if not name.startswith(".") and os.path.splitext(name)[1].lower() in IMAGE_SUFFIXES]  # fmt: skip
    return sorted(found, key=lambda path: natural_key(path.relative_to(folder).as_posix()))
