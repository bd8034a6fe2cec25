"""A contact sheet of labeled crops: each crop with its label underneath, flagged ones framed in red."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from platepilot.errors import PlatepilotError
from platepilot.imagegrid import grid, save_picture
from platepilot.images import read_image
from platepilot.labeling.checks import check_labels
from platepilot.store.labels import resolve_crop_path, scan_labels
from platepilot.types import SKIP

CELL = (200, 64)
CAPTION_H = 38
BORDER = 4
RED = (40, 40, 220)
GREY = (150, 150, 150)


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """`image` scaled to fit (width, height) keeping its aspect, centred on light grey."""
    canvas = np.full((height, width, 3), 235, np.uint8)
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    nw, nh = max(1, round(w * scale)), max(1, round(h * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_NEAREST
    top, left = (height - nh) // 2, (width - nw) // 2
    canvas[top : top + nh, left : left + nw] = cv2.resize(image, (nw, nh), interpolation=interp)
    return canvas


def tile(image: np.ndarray | None, text: str, note: str, flagged: bool) -> np.ndarray:
    """One cell: crop (or a 'missing' placeholder), its label in bold, a small note (reason) below."""
    w, h = CELL
    cell = np.full((h + CAPTION_H + 2 * BORDER, w + 2 * BORDER, 3), 255, np.uint8)
    if flagged:
        cell[:] = RED
        cell[BORDER:-BORDER, BORDER:-BORDER] = 255
    if image is None:
        body = np.full((h, w, 3), 200, np.uint8)
        cv2.putText(body, "missing", (w // 2 - 38, h // 2 + 6), cv2.FONT_HERSHEY_SIMPLEX, 0.6, GREY, 1, cv2.LINE_AA)
    else:
        body = _fit(image, w, h)
    cell[BORDER : BORDER + h, BORDER : BORDER + w] = body
    label = "SKIP" if text == SKIP else text
    color = GREY if text == SKIP else (RED if flagged else (20, 20, 20))
    y = BORDER + h + 17
    cv2.putText(cell, label, (BORDER + 4, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, color, 2, cv2.LINE_AA)
    if note:
        cv2.putText(cell, note[:30], (BORDER + 4, y + 15), cv2.FONT_HERSHEY_SIMPLEX, 0.38, RED, 1, cv2.LINE_AA)
    return cell


def render_sheet(
    labels_file: Path, flagged_only: bool = False, limit: int = 240, columns: int = 6
) -> tuple[np.ndarray, int, int]:
    """The sheet as BGR uint8, with how many crops it shows and how many of those are flagged.

    Flagged crops come first, so a `limit` cut drops unflagged ones.
    """
    report = check_labels(labels_file)
    reasons = {f.path: f.reasons for f in report.flags}
    latest = scan_labels(labels_file).latest
    paths = [f.path for f in report.flags] + [p for p in latest if p not in reasons]  # worst first
    if flagged_only:
        paths = [p for p in paths if p in reasons]
    paths = paths[:limit]
    if not paths:
        raise PlatepilotError(f"{labels_file}: no {'flagged ' if flagged_only else ''}labels to draw")
    tiles = []
    for path in paths:
        try:
            image = read_image(resolve_crop_path(path, labels_file))
        except PlatepilotError:
            image = None
        why = reasons.get(path, ())
        tiles.append(tile(image, latest[path].text, why[0].code.replace("_", " ") if why else "", bool(why)))
    return grid(tiles, columns), len(paths), sum(1 for p in paths if p in reasons)


def write_sheet(labels_file: Path, out: Path, flagged_only: bool = False, limit: int = 240) -> tuple[int, int]:
    """Write the sheet to `out` (.png or .jpg); returns (crops shown, flagged among them)."""
    if out.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise PlatepilotError(f"--out {out}: use a .png (or .jpg) file name")
    sheet, shown, flagged = render_sheet(labels_file, flagged_only, limit)
    save_picture(out, sheet)
    return shown, flagged
