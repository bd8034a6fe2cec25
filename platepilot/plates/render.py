"""Draw a plate design onto a clean, front-on canvas and report where its characters are.

The canvas is 2:1 like a US plate (12 x 6 in). Characters are monospaced: every glyph sits centred in
a cell of one pitch, and glyphs are scaled to one cap height whatever the font's own metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import cv2
import numpy as np
from PIL import Image, ImageDraw

from platepilot.plates.designs import Color, PlateDesign, Separator
from platepilot.plates.fonts import FontFace, load_font

PLATE_W, PLATE_H = 240, 120
_GLYPH_PX = 96  # reference cap height of cached glyph masks


@dataclass(frozen=True)
class RenderedPlate:
    """`image` BGR uint8 (PLATE_H, PLATE_W, 3); boxes (x1, y1, x2, y2) in canvas pixels."""

    image: np.ndarray
    text: str
    chars_box: tuple[float, float, float, float]
    plate_box: tuple[float, float, float, float]


@cache
def glyph_mask(face: FontFace, char: str) -> np.ndarray:
    """A float32 coverage mask of `char`, cropped to its ink, about _GLYPH_PX high."""
    font = load_font(face, int(_GLYPH_PX * 1.45))
    left, top, right, bottom = font.getbbox(char)
    img = Image.new("L", (int(right - left) + 4, int(bottom - top) + 4), 0)
    ImageDraw.Draw(img).text((2 - left, 2 - top), char, font=font, fill=255)
    mask = np.asarray(img, dtype=np.float32) / 255.0
    ys, xs = np.nonzero(mask > 0.05)
    return np.ascontiguousarray(mask[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


# California-style stroke glyphs, three variants: (4's stem top, 4's bar, W's middle apex), as fractions
# of the cap height from the top. Real plates draw the 4 open at the top with a short stem, and the W
# with a middle vertex that stops halfway, which readers trained on font glyphs take for L and H.
_STROKE_VARIANTS: tuple[tuple[float, float, float], ...] = ((0.14, 0.68, 0.50), (0.38, 0.73, 0.58), (0.5, 0.77, 0.42))


@cache
def stroke_glyph_mask(face: FontFace, char: str, variant: int) -> np.ndarray:
    """An open-top 4 or a low-middle W in `face`'s stroke and size (other characters: the font's glyph)."""
    glyph = glyph_mask(face, char)
    if char not in "4W":
        return glyph
    h, w = glyph.shape
    big_h, big_w = h * 4, w * 4
    t = min(max(glyph_mask(face, "I").shape[1], 4) * 4, big_w // (6 if char == "W" else 5))
    big = np.zeros((big_h, big_w), np.uint8)
    stem_top, bar, apex = _STROKE_VARIANTS[variant]
    if char == "4":
        bar_y = int(big_h * bar)
        cv2.rectangle(big, (0, 0), (t, bar_y + t // 2), 255, -1)
        cv2.rectangle(big, (0, bar_y - t // 2), (big_w, bar_y + t // 2), 255, -1)
        stem_x = int(big_w * 0.7)
        cv2.rectangle(big, (stem_x - t // 2, int(big_h * stem_top)), (stem_x + t // 2, big_h), 255, -1)
    else:
        points = [(t // 2, 0), (int(big_w * 0.2), big_h - t // 2), (big_w // 2, int(big_h * apex)),
                  (int(big_w * 0.8), big_h - t // 2), (big_w - t // 2, 0)]  # fmt: skip
        cv2.polylines(big, [np.array(points, np.int32)], False, 255, t, lineType=cv2.LINE_AA)
    return cv2.resize(big, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0


def blend(canvas: np.ndarray, mask: np.ndarray, x: int, y: int, color: Color, alpha: float = 1.0) -> None:
    """Paint `color` through `mask` (0..1) with its top-left at (x, y), clipped to the canvas."""
    h, w = mask.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, canvas.shape[1]), min(y + h, canvas.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    m = mask[y0 - y : y1 - y, x0 - x : x1 - x] * alpha
    m3 = cv2.merge((m, m, m))  # same-shape operands: numpy's fast path, ~2x a broadcast (h, w, 1)
    region = canvas[y0:y1, x0:x1]
    # region * (1 - m) + color * m, in the same float32 steps (so the same bytes), without temporaries.
    keep = 1 - m3
    np.multiply(region, keep, out=keep)
    np.multiply(m3, np.array(color, dtype=np.float32), out=m3)
    np.add(keep, m3, out=region)


def _background(design: PlateDesign, rng: np.random.Generator) -> np.ndarray:
    t = np.linspace(0, 1, PLATE_H, dtype=np.float32)[:, None, None] ** float(rng.uniform(0.6, 2.5))
    if rng.random() < 0.5:
        t = t[::-1]
    canvas = np.array(design.background, np.float32) * (1 - t) + np.array(design.background_2, np.float32) * t
    canvas = np.broadcast_to(canvas, (PLATE_H, PLATE_W, 3)).copy()
    for _ in range(design.blobs):  # specialty artwork: soft coloured shapes
        blob = np.zeros((PLATE_H, PLATE_W), np.float32)
        center = (int(rng.integers(0, PLATE_W)), int(rng.integers(0, PLATE_H)))
        axes = (int(rng.integers(15, 105)), int(rng.integers(8, 52)))
        cv2.ellipse(blob, center, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
        sigma = float(rng.uniform(2, 10))
        soft = cv2.GaussianBlur(blob, (0, 0), sigma)
        # Blend only where the blob can be non-zero (ellipse + blur radius): outside it the blend is
        # an exact identity, so the bytes are the same and a full-canvas blend costs ~4x more.
        reach = max(axes) + _blur_radius(sigma) + 2
        x0, y0 = max(center[0] - reach, 0), max(center[1] - reach, 0)
        window = soft[y0 : center[1] + reach + 1, x0 : center[0] + reach + 1]
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        blend(canvas, window, x0, y0, color, float(rng.uniform(0.3, 0.8)))  # type: ignore[arg-type]
    return canvas


def _blur_radius(sigma: float) -> int:
    """Half the kernel OpenCV's GaussianBlur picks for a float image: ksize = round(8 sigma + 1) | 1."""
    return (round(sigma * 8 + 1) | 1) // 2


@lru_cache(maxsize=4096)
def _caption_ink(face: FontFace, text: str, size: int) -> np.ndarray:
    """`text` drawn in `face` at `size` px as uint8 coverage (read-only; cached: font rendering is slow
    and plates repeat the same few state names, slogans and counties at a dozen sizes)."""
    font = load_font(face, size)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (int(right - left) + 2, int(bottom - top) + 2), 0)
    ImageDraw.Draw(img).text((1 - left, 1 - top), text, font=font, fill=255)
    ink = np.asarray(img, dtype=np.uint8).copy()
    ink.setflags(write=False)
    return ink


def _caption(canvas: np.ndarray, design: PlateDesign, text: str, y_center: float, height: float) -> None:
    if not text:
        return
    mask: np.ndarray = _caption_ink(design.caption_face, text, max(int(height * 1.35), 6)).astype(np.float32) / 255.0
    if mask.shape[1] > PLATE_W * 0.9:
        scale = PLATE_W * 0.9 / mask.shape[1]
        mask = cv2.resize(mask, (int(mask.shape[1] * scale), max(int(mask.shape[0] * scale), 1)))
    x = (PLATE_W - mask.shape[1]) // 2
    blend(canvas, mask, x, int(y_center - mask.shape[0] / 2), design.caption_ink)


def _separator(canvas: np.ndarray, design: PlateDesign, cx: float, cy: float, h: float) -> None:
    r = max(int(h * 0.18), 2)
    if design.separator is Separator.ORANGE:  # two oranges and leaves: the Florida graphic
        r = max(int(h * 0.28), 2)
        cv2.ellipse(canvas, (int(cx), int(cy - r * 0.9)), (r, int(r * 0.6)), -20, 0, 360, (40, 120, 40), -1)
        cv2.circle(canvas, (int(cx - r * 0.5), int(cy + r * 0.3)), r, (20, 130, 240), -1)
        cv2.circle(canvas, (int(cx + r * 0.6), int(cy + r * 0.5)), int(r * 0.9), (30, 150, 250), -1)
    elif design.separator is Separator.DASH:
        cv2.rectangle(canvas, (int(cx - r), int(cy - r * 0.2)), (int(cx + r), int(cy + r * 0.2)), design.ink, -1)
    elif design.separator is Separator.DOT:
        cv2.circle(canvas, (int(cx), int(cy)), max(r // 2, 1), design.ink, -1)
    elif design.separator is Separator.EMBLEM:
        cv2.circle(canvas, (int(cx), int(cy)), int(r * 1.4), design.caption_ink, -1)
        cv2.circle(canvas, (int(cx), int(cy)), int(r * 0.8), design.background, -1)


def _characters(canvas: np.ndarray, design: PlateDesign, rng: np.random.Generator) -> tuple[float, ...]:
    """Draw the serial; return the box (x1, y1, x2, y2) around all its glyphs."""
    cap = design.char_height * PLATE_H
    scale = cap / _GLYPH_PX
    masks = [
        stroke_glyph_mask(design.face, ch, design.stroke_glyphs - 1)
        if design.stroke_glyphs
        else glyph_mask(design.face, ch)
        for ch in design.text
    ]
    pitch = max(m.shape[1] for m in masks) * scale * design.squeeze * float(rng.uniform(1.05, 1.25))
    gap_cells = (0.9, 1.5) if design.separator is Separator.ORANGE else (0.5, 1.0)
    gap = pitch * float(rng.uniform(*gap_cells)) if len(design.groups) > 1 else 0.0
    total = pitch * len(design.text) + gap * (len(design.groups) - 1)
    art = cap * float(rng.uniform(0.6, 1.3)) if design.artwork else 0.0  # margin kept for the art
    art_left = rng.random() < 0.5
    room = PLATE_W - art
    shrink = min(room * 0.94 / total, 1.0)  # long serials: narrower cells and glyphs, as plates do
    pitch, gap, total = pitch * shrink, gap * shrink, total * shrink
    slack = max(room * 0.97 - total, 0.0) / 2
    x = (art if art_left else 0.0) + (room - total) / 2 + float(rng.uniform(-1, 1)) * min(slack, 0.03 * PLATE_W)
    y_top = PLATE_H * 0.54 - cap / 2 + float(rng.uniform(-0.04, 0.04)) * PLATE_H
    boundaries = np.cumsum(design.groups)[:-1]
    x_start = x
    if art:
        _artwork(canvas, x_start - art if art_left else x_start + total, art, y_top, cap, rng)
    for i, mask in enumerate(masks):
        if i in boundaries:
            _separator(canvas, design, x + gap / 2, y_top + cap / 2, min(cap, gap * 1.1))
            x += gap
        w = max(round(mask.shape[1] * scale * design.squeeze * shrink), 1)  # never wider than a cell
        glyph = cv2.resize(mask, (w, max(round(cap), 1)), interpolation=cv2.INTER_AREA)
        gx = round(x + (pitch - w) / 2)
        if design.emboss:
            blend(canvas, glyph, gx + 1, int(y_top) + 2, (40, 40, 40), 0.35)
        blend(canvas, glyph, gx, int(y_top), design.ink)
        x += pitch
    _decoys(canvas, design, x_start, x, y_top, cap, rng)
    return (x_start, y_top, x, y_top + cap)


def _decoys(
    canvas: np.ndarray, design: PlateDesign, x1: float, x2: float, y_top: float, cap: float, rng: np.random.Generator
) -> None:
    """Small stacked characters just outside the serial: real plates have them, readers must ignore them."""
    if not design.decoys:
        return
    size = cap * float(rng.uniform(0.22, 0.5))  # up to two stacked letters as tall as the serial
    ink, face = (design.ink, design.face) if rng.random() < 0.5 else (design.caption_ink, design.caption_face)
    left = rng.random() < 0.5
    x = x1 - size * float(rng.uniform(0.9, 1.5)) if left else x2 + size * float(rng.uniform(0.3, 0.8))
    alphabet = "ABCDEFGHJKLMNPRSTUVWXYZ0123456789"
    for k in range(design.decoys):
        mask = glyph_mask(face, alphabet[int(rng.integers(len(alphabet)))])
        w = max(round(mask.shape[1] * size / mask.shape[0]), 1)
        glyph = cv2.resize(mask, (w, max(round(size), 1)), interpolation=cv2.INTER_AREA)
        blend(canvas, glyph, int(x), int(y_top + k * size * 1.15), ink)


def _artwork(canvas: np.ndarray, ax1: float, width: float, y_top: float, cap: float, rng: np.random.Generator) -> None:
    """Pictorial art in the margin `width` wide from `ax1` (a state seal, a bird, a flag, rings): crisp
    shapes about as tall as the characters, which readers otherwise take for an extra letter or digit."""
    width *= 0.85  # a gap before the serial
    ax1 += width * 0.05
    layer = np.zeros((PLATE_H, PLATE_W), np.float32)
    for _ in range(int(rng.integers(2, 6))):
        cx, cy = ax1 + float(rng.uniform(0, width)), y_top + float(rng.uniform(0, cap))
        size = cap * float(rng.uniform(0.15, 0.6))
        kind = rng.integers(3)
        if kind == 0:  # a filled blob of a polygon
            angles = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 8))))
            radii = size * rng.uniform(0.4, 1.0, len(angles))
            points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
            cv2.fillPoly(layer, [points.astype(np.int32)], 1.0, lineType=cv2.LINE_AA)
        elif kind == 1:  # a ring or disc
            thickness = -1 if rng.random() < 0.4 else max(int(size * rng.uniform(0.1, 0.3)), 1)
            cv2.circle(layer, (int(cx), int(cy)), max(int(size * 0.6), 2), 1.0, thickness, cv2.LINE_AA)
        else:  # a stroke: branch, wing, mountain line
            points = np.stack([cx + rng.uniform(-size, size, 4), cy + rng.uniform(-size, size, 4)], axis=1)
            cv2.polylines(layer, [points.astype(np.int32)], False, 1.0, max(int(cap * rng.uniform(0.05, 0.14)), 1),
                          cv2.LINE_AA)  # fmt: skip
    layer[:, : max(int(ax1), 0)] = 0  # the art stays in its margin, off the serial
    layer[:, max(int(ax1 + width), 0) :] = 0
    color = tuple(int(v) for v in rng.integers(0, 200, 3))
    blend(canvas, layer, 0, 0, color)  # type: ignore[arg-type]


def _hardware(canvas: np.ndarray, design: PlateDesign, rng: np.random.Generator) -> None:
    """Border, stickers, bolts and a dealer frame: the things that crowd a real plate's edges."""
    if design.border:
        cv2.rectangle(canvas, (3, 3), (PLATE_W - 4, PLATE_H - 4), design.caption_ink, int(rng.integers(1, 4)))
    for i in range(design.stickers):
        x = 6 if i == 0 else PLATE_W - 36
        color = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.rectangle(canvas, (x, 6), (x + 30, 24), color, -1)
        cv2.putText(
            canvas,
            f"{int(rng.integers(0, 99)):02d}",
            (x + 6, 21),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45,
            (20, 20, 20),
            1,
        )
    if design.bolts:
        for bx in (PLATE_W * 0.22, PLATE_W * 0.78):
            cv2.circle(canvas, (int(bx), int(PLATE_H * 0.09)), 5, (150, 150, 155), -1)
            cv2.circle(canvas, (int(bx), int(PLATE_H * 0.09)), 5, (80, 80, 80), 1)
    if design.frame:
        color = (int(rng.integers(10, 60)),) * 3
        depth = int(PLATE_H * float(rng.uniform(0.05, 0.14)))
        cv2.rectangle(canvas, (0, 0), (PLATE_W, depth), color, -1)
        cv2.rectangle(canvas, (0, PLATE_H - int(depth * 1.4)), (PLATE_W, PLATE_H), color, -1)
        cv2.rectangle(canvas, (0, 0), (6, PLATE_H), color, -1)
        cv2.rectangle(canvas, (PLATE_W - 6, 0), (PLATE_W, PLATE_H), color, -1)


def render_plate(design: PlateDesign, rng: np.random.Generator) -> RenderedPlate:
    """The design drawn front-on on a PLATE_W x PLATE_H canvas."""
    canvas = _background(design, rng)
    _caption(
        canvas,
        design,
        design.top_text,
        PLATE_H * float(rng.uniform(0.1, 0.17)),
        PLATE_H * float(rng.uniform(0.1, 0.17)),
    )
    _caption(
        canvas,
        design,
        design.bottom_text,
        PLATE_H * float(rng.uniform(0.86, 0.91)),
        PLATE_H * float(rng.uniform(0.08, 0.13)),
    )
    chars_box = _characters(canvas, design, rng)
    image = np.clip(canvas, 0, 255).astype(np.uint8)
    _hardware(image, design, rng)
    return RenderedPlate(
        image, design.text, (chars_box[0], chars_box[1], chars_box[2], chars_box[3]), (0, 0, PLATE_W, PLATE_H)
    )
