"""Image grids for previews and reports: equal tiles in rows, a contact sheet of captioned crops, and
saving such a picture."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from platepilot.errors import PlatepilotError
from platepilot.store.atomic import replace_atomically


def grid(tiles: Sequence[np.ndarray], columns: int, fill: int = 255) -> np.ndarray:
    """Equal-sized BGR tiles in rows of `columns`, the last row padded with tiles of `fill`; BGR uint8."""
    padded = list(tiles) + [np.full_like(tiles[0], fill)] * (-len(tiles) % columns)
    return np.vstack([np.hstack(padded[i : i + columns]) for i in range(0, len(padded), columns)])


def contact_sheet(
    images: list[np.ndarray], captions: list[str], columns: int = 6, cell: tuple[int, int] = (192, 64)
) -> np.ndarray:
    """A grid of crops resized to `cell` (w, h), each with its caption underneath; BGR uint8."""
    w, h = cell
    tiles = []
    for image, caption in zip(images, captions, strict=True):
        tile = np.full((h + 18, w, 3), 255, np.uint8)
        tile[:h] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, caption, (3, h + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    return grid(tiles, columns)


def save_picture(path: Path, image: np.ndarray) -> None:
    """Write a BGR picture as PNG or JPEG (by `path`'s suffix), whole or not at all (temp + rename);
    PlatepilotError naming `path` when it cannot be written."""
    suffix = path.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise PlatepilotError(f"{path}: use a .png (or .jpg) file name")
    ok, data = cv2.imencode(suffix, image)
    try:
        if not ok:
            raise OSError(f"cannot encode a {image.shape} image")
        path.parent.mkdir(parents=True, exist_ok=True)
        replace_atomically(path, data.tobytes(), 0o644)
    except OSError as exc:
        raise PlatepilotError(f"{path}: cannot write the picture: {exc.strerror or exc}") from None
