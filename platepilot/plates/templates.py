"""Real plate designs as templates: a published design with its sample serial painted out, so the
generator prints any serial on the real artwork.

The drawn designs (`designs.py`) only approximate Florida's artwork: their orange is a small blob,
while the real one is as tall as the characters, with leaves and a blossom, over a faint outline of
the state. Real Florida crops misread around it (`N788BY` as `N78BBY`, `H507VU` as `H5D7VU`). The
state publishes its designs (../shared/data/designs/florida_dmv) with `SAMPLE`-like serials; among
the text lines found on a design (by PP-OCRv6's text detector: `training.design_templates`) the
serial's pieces are picked (the plate's tallest text, in one row; Florida's orange splits it in two),
the pixels of the serial's colour inside them are inpainted, and each
piece becomes a slot that `render_template` fills with new characters in that colour, so the
orange and the artwork between and around them stay.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from platepilot.errors import PlatepilotError
from platepilot.plates.fonts import PLATE_FACES
from platepilot.plates.render import PLATE_H, PLATE_W, RenderedPlate, blend, glyph_mask

Box = tuple[int, int, int, int]  # x1, y1, x2, y2 in template pixels

MIN_SLOT_HEIGHT = 0.7
"""A text piece is part of the serial when at least this share of the tallest piece's height, in its row."""
MIN_CONTRAST = 90.0
"""The serial's colour must be at least this far (BGR distance) from its background: embossed plates
with unpainted characters are skipped, since new characters in their colour would be invisible."""
INK_SHARE = 0.25
"""A pixel is the serial's ink (painted out) when it lies at least this share of the way from the
background colour towards the ink colour, and near that line (`OFF_LINE`): anti-aliased edges and
shading go, an orange between green characters stays."""
OFF_LINE = 0.5
STANDARD_SHARE = 0.5
"""Share of the draws (`pick_template`) that go to Florida's standard designs (serial split by the
orange), when there are any: a handful among 259 designs, but most of the plates on Florida's roads."""
DIGITS, LETTERS = "0123456789", "ABCDEFGHJKLMNPQRSTUVWXYZ"


@dataclass(frozen=True)
class Template:
    """A design at PLATE_W x PLATE_H with its serial painted out; `slots` hold the serial's pieces
    (tight around the old characters, left to right) and `counts` how many characters each held."""

    image: np.ndarray
    slots: tuple[Box, ...]
    counts: tuple[int, ...]
    ink: tuple[int, int, int]
    source: str
    orange: bool = False  # the serial is split by Florida's orange (the standard plate)


def design_images(folder: Path) -> list[Path]:
    """The design images of a folder like florida_dmv (its MANIFEST.tsv's image_relpath, else every image)."""
    manifest = folder / "MANIFEST.tsv"
    if manifest.is_file():
        rows = manifest.read_text(encoding="utf-8").splitlines()[1:]
        paths = [folder / row.split("\t")[0] for row in rows if row.strip()]
    else:
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not paths:
        raise PlatepilotError(f"{folder}: no design images (a MANIFEST.tsv with image_relpath, or .jpg/.png files)")
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise PlatepilotError(f"{missing[0]}: design image not found ({len(missing)} missing)")
    return paths


def serial_pieces(lines: np.ndarray) -> list[Box]:
    """The serial's pieces among text lines (x1, y1, x2, y2, ...): the tallest line and the lines of
    about its height in its row, left to right."""
    if not len(lines):
        return []
    heights = lines[:, 3] - lines[:, 1]
    top = lines[int(np.argmax(heights))]
    t1, t2 = float(top[1]), float(top[3])
    pieces = []
    for line, height in zip(lines, heights, strict=True):
        overlap = min(float(line[3]), t2) - max(float(line[1]), t1)
        if height >= MIN_SLOT_HEIGHT * (t2 - t1) and overlap > 0.5 * height:
            pieces.append(tuple(round(float(v)) for v in line[:4]))
    return sorted(pieces)  # type: ignore[arg-type]


def make_template(image: np.ndarray, lines: np.ndarray, source: str = "") -> Template | None:
    """`image` (PLATE_W x PLATE_H BGR) with the serial found among `lines` painted out; None when no
    serial piece holds ink distinct from its background."""
    h, w = image.shape[:2]
    pieces = [(max(x1, 0), max(y1, 0), min(x2, w), min(y2, h)) for x1, y1, x2, y2 in serial_pieces(lines)]
    pieces = [p for p in pieces if p[2] - p[0] >= 4 and p[3] - p[1] >= 4]
    if not pieces:
        return None
    colours = _ink_colour(image, pieces)
    if colours is None:
        return None
    ink, background = colours
    orange = orange_mask(image)
    near_ink = _ink_mask(image, ink, background) & ~orange
    split = [part for piece in pieces for part in _split_at_orange(piece, orange)]
    split_by_orange, pieces = len(split) > len(pieces), split
    mask = np.zeros((h, w), np.uint8)
    slots, counts = [], []
    for x1, y1, x2, y2 in pieces:
        piece = near_ink[y1:y2, x1:x2]
        ys, xs = np.nonzero(piece)
        if len(ys) < 10:
            continue
        tight = (x1 + int(xs.min()), y1 + int(ys.min()), x1 + int(xs.max()) + 1, y1 + int(ys.max()) + 1)
        mask[y1:y2, x1:x2] |= piece.astype(np.uint8)
        slots.append(tight)
        counts.append(_characters_in(piece, tight[3] - tight[1]))
    if not slots or min(s[3] - s[1] for s in slots) < 8:
        return None
    grown = cv2.dilate(mask * 255, np.ones((3, 3), np.uint8), iterations=2)
    painted = cv2.inpaint(image, grown, 5, cv2.INPAINT_TELEA)
    return Template(painted, tuple(slots), tuple(counts), ink, source, split_by_orange)


def _ink_colour(image: np.ndarray, pieces: list[Box]) -> tuple[tuple[int, int, int], np.ndarray] | None:
    """(the serial's colour, its background's): the median of the pieces' pixels farthest from the
    median of their borders, and that median; None when they are too alike (`MIN_CONTRAST`)."""
    far, borders = [], []
    for x1, y1, x2, y2 in pieces:
        piece = image[y1:y2, x1:x2].reshape(-1, 3).astype(np.float32)
        border = np.concatenate(
            [image[y1, x1:x2], image[y2 - 1, x1:x2], image[y1:y2, x1], image[y1:y2, x2 - 1]]
        ).astype(np.float32)
        distance = np.linalg.norm(piece - np.median(border, axis=0), axis=1)
        far.append(piece[distance >= np.percentile(distance, 85)])
        borders.append(border)
    background = np.median(np.concatenate(borders), axis=0)
    colour = np.median(np.concatenate(far), axis=0)
    if np.linalg.norm(colour - background) < MIN_CONTRAST:
        return None
    return (int(colour[0]), int(colour[1]), int(colour[2])), background


def _characters_in(ink: np.ndarray, height: int) -> int:
    """How many characters a slot held: its ink's blobs at least half the slot's height (the sample
    serial's characters stand apart), 1 to 7; a thin stroke along the slot's left or right side is the
    plate's border or frame caught by the line's box, no character."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(ink.astype(np.uint8), connectivity=8)
    left, width, tall_px = stats[1:, cv2.CC_STAT_LEFT], stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT]
    border = ((left == 0) | (left + width >= ink.shape[1])) & (width < 0.06 * height) & (tall_px >= 0.9 * height)
    tall = int(np.sum((tall_px >= 0.5 * height) & ~border))
    return int(np.clip(tall, 1, 7))


def orange_mask(image: np.ndarray) -> np.ndarray:
    """Florida's orange (saturated, bright, orange hue), grown a little: kept, never painted over."""
    hsv = cv2.cvtColor(image, cv2.COLOR_BGR2HSV)
    mask = ((hsv[..., 0] >= 5) & (hsv[..., 0] <= 25) & (hsv[..., 1] > 120) & (hsv[..., 2] > 120)).astype(np.uint8)
    return cv2.dilate(mask, np.ones((3, 3), np.uint8), iterations=2).astype(bool)


def _split_at_orange(piece: Box, orange: np.ndarray) -> list[Box]:
    """A serial piece the detector ran across the orange (`SAM`, orange, `PLE` as one line) -> the
    pieces left and right of it; the piece itself when no orange sits inside it."""
    x1, y1, x2, y2 = piece
    columns = np.flatnonzero(orange[y1:y2, x1:x2].sum(axis=0) > 0.3 * (y2 - y1))
    if not len(columns) or columns[-1] - columns[0] < 0.3 * (y2 - y1):
        return [piece]
    left, right = x1 + int(columns[0]), x1 + int(columns[-1]) + 1
    parts = [(x1, y1, left, y2), (right, y1, x2, y2)]
    return [p for p in parts if p[2] - p[0] >= 0.4 * (y2 - y1)]


def _ink_mask(image: np.ndarray, ink: tuple[int, int, int], background: np.ndarray) -> np.ndarray:
    """Pixels on the way from `background` to `ink` (`INK_SHARE`, `OFF_LINE`): the serial and its edges."""
    axis = np.array(ink, np.float32) - background
    length2 = float(axis @ axis)
    offset = image.astype(np.float32) - background
    along = offset @ axis / length2
    off = np.linalg.norm(offset - along[..., None] * axis, axis=2) / np.sqrt(length2)
    return (along > INK_SHARE) & (off < OFF_LINE)


def random_serial(counts: Sequence[int], rng: np.random.Generator) -> list[str]:
    """One group of characters per slot: letters and digits, each group all letters, all digits or mixed."""
    groups = []
    for count in counts:
        kind = rng.random()
        pool = LETTERS if kind < 0.35 else DIGITS if kind < 0.7 else LETTERS + DIGITS
        groups.append("".join(rng.choice(list(pool), count)))
    return groups


def render_template(template: Template, rng: np.random.Generator) -> RenderedPlate:
    """`template` with a random serial printed in its slots (a slot may take one character more or
    less than it held), front-on, ready for the camera model."""
    counts = [max(1, c + int(rng.choice([-1, 0, 0, 0, 1]))) for c in template.counts]
    groups = random_serial(counts, rng)
    face = PLATE_FACES[int(rng.integers(len(PLATE_FACES)))]
    canvas = template.image.astype(np.float32)
    for (x1, y1, x2, y2), group in zip(template.slots, groups, strict=True):
        height, width = y2 - y1, x2 - x1
        masks = [glyph_mask(face, ch) for ch in group]
        scale = height / max(m.shape[0] for m in masks)
        scaled = [cv2.resize(m, (max(int(m.shape[1] * scale), 1), height)) for m in masks]
        natural = sum(m.shape[1] for m in scaled)
        gap = max((width - natural) / max(len(scaled) - 1, 1), 1.0) if len(scaled) > 1 else 0.0
        squeeze = min(1.0, (width - gap * (len(scaled) - 1)) / natural) if natural else 1.0
        x = x1 + max((width - (natural * squeeze + gap * (len(scaled) - 1))) / 2, 0.0)
        for mask in scaled:
            glyph = cv2.resize(mask, (max(int(mask.shape[1] * squeeze), 1), height))
            blend(canvas, glyph, int(x), y1, template.ink)
            x += glyph.shape[1] + gap
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    xs1, ys1, xs2, ys2 = zip(*template.slots, strict=True)
    chars_box = (float(min(xs1)), float(min(ys1)), float(max(xs2)), float(max(ys2)))
    return RenderedPlate(image, "".join(groups), chars_box, (0, 0, PLATE_W, PLATE_H))


def pick_template(templates: Sequence[Template], rng: np.random.Generator) -> Template:
    """A random template, Florida's standard designs drawn `STANDARD_SHARE` of the time."""
    standard = [t for t in templates if t.orange]
    pool = standard if standard and rng.random() < STANDARD_SHARE else templates
    return pool[int(rng.integers(len(pool)))]
