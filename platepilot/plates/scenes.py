"""Synthetic detection scenes: whole camera frames with 0-6 labelled plates and unlabelled distractors.

A scene is a cluttered background (sky/ground gradient, buildings and trees as soft shapes, tree
crowns of small leaves against the sky, asphalt with lane and parking lines, sensor noise), a few
vehicle rears (body, cabin and rear window, lamp clusters with lenses, rims and highlights, the
maker's emblem and trim above the plate, bumper, wheels, a plate recess) each carrying one plate, and
distractors that fool plate detectors: signs (RESERVED, EXIT, PARKING, SUITE 100, NO PARKING...), text
banners with digits, logo-like shapes and bumper badges. Lamps, emblems and leaves against the sky
were the commonest false plates of the detector trained before they were drawn (on real UCSD
photos). Only plates are labelled; distractor boxes are returned so tests and previews can check that
they stay unlabelled.

Plates are drawn by the crop renderer (`sample_design` + `render_plate`, front-on) or, when real plate
photos are given (`real_plates`: tight crops of whole plates, such as the state-labelled photos and the
Florida DMV designs in ../shared/data), copied from one of them; either is warped into the frame with
a mild perspective at 20-300 px wide (log-uniform, in a 1280 px wide frame). A plate's box is its
warped quad's bounding box, clipped to the image. Vehicles never overlap and distractors avoid
vehicles, so no label is occluded. The camera then applies day, dusk, night (headlight glare, a lit
plate) or infrared (grey, bright plate), motion blur, rain streaks, sensor noise and JPEG.
Everything is deterministic per (seed, index): one `np.random.default_rng([seed, index])` drives it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw

from platepilot.errors import PlatepilotError
from platepilot.plates.designs import sample_design
from platepilot.plates.fonts import CAPTION_FACES, PLATE_FACES, FontFace, load_font
from platepilot.plates.render import render_plate
from platepilot.plates.state_manifest import IMAGE_COLUMNS
from platepilot.plates.tsv import read_tsv

Box = tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
PLATE_WIDTH = (20.0, 300.0)  # warped plate width range in a 1280 px wide frame, pixels
REAL_PLATE_SHARE = 0.5  # share of plates copied from real photos, when real photos are given
SIGN_TEXTS = (
    "RESERVED", "EXIT", "PARKING", "SUITE 100", "NO PARKING", "SUITE 204", "VISITOR", "COMPACT",
    "ONE WAY", "STOP", "ENTER", "TOW AWAY ZONE", "LOADING ZONE", "PERMIT ONLY", "RESERVED 12",
)  # fmt: skip
BANNER_TEXTS = (
    "GRAND OPENING", "OPEN 24 HRS", "CAR WASH $9.99", "CALL 555-0123", "SALE 50% OFF", "PHARMACY",
    "OIL CHANGE", "TIRES & SERVICE", "EST 1998", "ROUTE 41", "FL 33602", "LOT B3",
)  # fmt: skip
BADGE_TEXTS = (
    "HYBRID", "SPORT", "4X4", "V6", "LIMITED", "XLE", "GT", "AWD", "TURBO", "EX-L", "CAMRY", "ACCORD",
    "COROLLA", "CIVIC", "ALTIMA", "FOCUS", "JETTA", "SENTRA", "CR-V", "RAV4", "A4", "ELANTRA",
)  # fmt: skip
STICKER_TEXTS = ("PERMIT 2026", "A-1042", "STAFF 318", "RESIDENT", "VALET 77", "HONOR STUDENT", "DEALER 4411")
SIGN_COLORS = (  # (field, ink) BGR
    ((245, 245, 245), (30, 30, 200)),
    ((245, 245, 245), (20, 20, 20)),
    ((150, 70, 10), (250, 250, 250)),
    ((40, 110, 20), (250, 250, 250)),
    ((30, 30, 190), (250, 250, 250)),
    ((30, 210, 240), (15, 15, 15)),
)
CAR_COLORS = ((235, 235, 235), (190, 190, 195), (60, 60, 60), (25, 25, 25), (40, 40, 170), (140, 70, 20))


@dataclass(frozen=True)
class Scene:
    """`image` BGR uint8 (H, W, 3); plate `boxes_xyxy[i]` reads `texts[i]`; distractors are unlabelled."""

    image: np.ndarray
    boxes_xyxy: list[Box]
    texts: list[str]
    distractor_boxes: list[Box]


def render_scene(seed: int, index: int, size: tuple[int, int] = (1280, 720), real_plates: Sequence[str] = ()) -> Scene:
    """Scene `index` of stream `seed` at `size` (width, height) pixels; `real_plates` are image paths of
    whole-plate photos to copy about half the plates from."""
    rng = np.random.default_rng([seed, index])
    width, height = size
    image = _background(rng, width, height)
    vehicles = _place_vehicles(rng, width, height, int(rng.choice(7, p=[0.15, 0.3, 0.2, 0.15, 0.1, 0.05, 0.05])))
    distractors: list[Box] = []
    for _ in range(int(rng.choice(6, p=[0.15, 0.2, 0.2, 0.2, 0.15, 0.1]))):
        box = _free_spot(rng, width, height, [v[0] for v in vehicles])
        if box is not None:
            _distractor(image, box, rng)
            distractors.append(box)
    for _ in range(int(rng.choice(3, p=[0.5, 0.3, 0.2]))):
        _foliage(image, rng)
    _clutter(image, rng)
    if real_plates:
        _photo_patches(image, rng, real_plates)
    _texture(image, (0.0, 0.0, float(width), float(height)), rng)
    boxes: list[Box] = []
    texts: list[str] = []
    for body, plate_center, plate_width in vehicles:
        if rng.random() < 0.85:  # else a plate without its car: the plate itself must be what is found
            badge = _vehicle(image, body, plate_center, plate_width, rng)
            if badge is not None:
                distractors.append(badge)
        _texture(image, body, rng)
        if rng.random() < 0.08:  # a car with no plate (a bare recess): nothing to find
            continue
        design = sample_design(rng)
        plate = render_plate(design, rng).image
        text = design.text
        if real_plates and rng.random() < REAL_PLATE_SHARE:
            photo = cv2.imread(real_plates[int(rng.integers(len(real_plates)))])
            if photo is not None:
                plate, text = photo, ""  # a real plate whose text nobody labelled
        boxes.append(_paste_plate(image, plate, plate_center, plate_width, rng))
        texts.append(text)
    _camera(image, rng, boxes)
    return Scene(image, boxes, texts, distractors)


def seen_farther(
    image: np.ndarray, boxes_xyxy: np.ndarray, share: float, frame: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """`image` scaled by `share` (INTER_AREA) and set in the middle of a `frame` (width, height) frame with
    its edge pixels replicated, as a farther or wider camera sees it (an image larger than the frame is
    cut to it), and its (N, 4) xyxy boxes moved with it."""
    small = cv2.resize(image, None, fx=share, fy=share, interpolation=cv2.INTER_AREA)
    left, top = (frame[0] - small.shape[1]) // 2, (frame[1] - small.shape[0]) // 2
    shift = np.array([[1, 0, left], [0, 1, top]], np.float32)
    out = cv2.warpAffine(small, shift, frame, flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return out, np.asarray(boxes_xyxy, np.float32).reshape(-1, 4) * share + np.array([left, top, left, top], np.float32)


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Sky-to-ground gradient, buildings and trees as flat shapes, asphalt with painted lines."""
    top, bottom = rng.integers(40, 230, 3), rng.integers(20, 160, 3)
    t = np.linspace(0, 1, height, dtype=np.float32)[:, None, None]
    column = (top * (1 - t) + bottom * t).astype(np.uint8)
    image = cv2.resize(column, (width, height), interpolation=cv2.INTER_NEAREST)
    horizon = int(height * rng.uniform(0.2, 0.55))
    for _ in range(int(rng.integers(3, 12))):  # buildings, windows, trees, poles
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, horizon + 1))
        if rng.random() < 0.6:
            w, h = int(rng.integers(30, 400)), int(rng.integers(20, 300))
            cv2.rectangle(image, (x, y), (x + w, y + h), color, -1)
        else:
            cv2.circle(image, (x, y), int(rng.integers(10, 120)), color, -1, cv2.LINE_AA)
    asphalt = int(rng.integers(50, 130))
    cv2.rectangle(image, (0, horizon), (width, height), (asphalt,) * 3, -1)
    paint = (230, 230, 230) if rng.random() < 0.6 else (40, 200, 230)
    for _ in range(int(rng.integers(0, 9))):  # lane and parking-bay lines, slanted as seen from a pole
        x = int(rng.integers(-width // 4, width + width // 4))
        slant = int(rng.integers(-width // 3, width // 3))
        cv2.line(image, (x, horizon), (x + slant, height), paint, int(rng.integers(2, 9)), cv2.LINE_AA)
    if rng.random() < 0.5:  # a stop bar or crossing line
        y = int(rng.integers(horizon, height))
        cv2.line(image, (0, y), (width, y + int(rng.integers(-40, 40))), paint, int(rng.integers(3, 14)))
    return image


def _clutter(image: np.ndarray, rng: np.random.Generator) -> None:
    """Small shapes everywhere (leaves, windows, stones, litter): real frames are busy at every scale."""
    height, width = image.shape[:2]
    for _ in range(int(rng.integers(0, 100))):
        tint = rng.integers(-35, 36, 3) + int(rng.integers(0, 256))  # mostly muted, like real surfaces
        color = tuple(int(c) for c in np.clip(tint, 0, 255))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(np.exp(rng.uniform(np.log(2), np.log(40))))
        kind = rng.random()
        if kind < 0.4:
            cv2.ellipse(image, (x, y), (size, max(size // 2, 1)), float(rng.uniform(0, 180)), 0, 360, color, -1)
        elif kind < 0.7:
            cv2.rectangle(image, (x, y), (x + size, y + int(size * rng.uniform(0.3, 2))), color, -1)
        else:
            end = (x + int(rng.integers(-60, 60)), y + int(rng.integers(-60, 60)))
            cv2.line(image, (x, y), end, color, int(rng.integers(1, 4)), cv2.LINE_AA)


def _photo_patches(image: np.ndarray, rng: np.random.Generator, photos: Sequence[str]) -> None:
    """Blown-up parts of real plate photos (their art, paint and bumpers) on the background: real
    textures, at scales where no whole plate shows, so real surfaces are not mistaken for plates."""
    height, width = image.shape[:2]
    for _ in range(int(rng.choice(5, p=[0.3, 0.25, 0.2, 0.15, 0.1]))):
        photo = cv2.imread(photos[int(rng.integers(len(photos)))])
        if photo is None:
            continue
        ph, pw = photo.shape[:2]
        cw, ch = int(pw * rng.uniform(0.25, 0.5)), int(ph * rng.uniform(0.25, 0.5))
        x, y = int(rng.integers(0, pw - cw + 1)), int(rng.integers(0, ph - ch + 1))
        out_w = int(min(width * rng.uniform(0.15, 0.5), width - 1))
        out_h = int(min(out_w * ch / max(cw, 1) * rng.uniform(0.7, 1.4), height - 1))
        if out_w < 8 or out_h < 8:
            continue
        patch = cv2.resize(photo[y : y + ch, x : x + cw], (out_w, out_h), interpolation=cv2.INTER_LINEAR)
        px, py = int(rng.integers(0, width - out_w)), int(rng.integers(0, height - out_h))
        image[py : py + out_h, px : px + out_w] = patch


def _texture(image: np.ndarray, box: Box, rng: np.random.Generator) -> None:
    """Multiplicative multi-scale noise over `box` (shading, dirt, reflections), in place."""
    height, width = image.shape[:2]
    x1, y1 = max(int(box[0]), 0), max(int(box[1]), 0)
    x2, y2 = min(int(box[2]), width), min(int(box[3]), height)
    if x2 - x1 < 4 or y2 - y1 < 4 or rng.random() < 0.3:
        return
    field = np.zeros((y2 - y1, x2 - x1), np.float32)
    for cells in (2, 6, 20):
        coarse = rng.standard_normal((cells, cells)).astype(np.float32)
        field += cv2.resize(coarse, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC) / cells**0.5
    gain = 1 + float(rng.uniform(0.05, 0.3)) * field
    region = image[y1:y2, x1:x2].astype(np.float32) * gain[..., None]
    image[y1:y2, x1:x2] = np.clip(region, 0, 255).astype(np.uint8)


def _place_vehicles(
    rng: np.random.Generator, width: int, height: int, count: int
) -> list[tuple[Box, tuple[float, float], float]]:
    """Up to `count` non-overlapping vehicle bodies, each with its plate centre and plate width."""
    placed: list[tuple[Box, tuple[float, float], float]] = []
    for _ in range(count * 15):
        if len(placed) == count:
            break
        plate_w = float(np.exp(rng.uniform(np.log(PLATE_WIDTH[0]), np.log(PLATE_WIDTH[1])))) * width / 1280
        body_w = min(plate_w * float(rng.uniform(4.5, 6.0)), width * 0.98)
        body_h = body_w * float(rng.uniform(0.55, 0.8))
        margin = plate_w * 0.65
        cx = float(rng.uniform(margin, width - margin))
        cy = float(rng.uniform(max(margin, height * 0.3), height - margin))
        x0, y0 = cx - body_w / 2 + float(rng.uniform(-0.05, 0.05)) * body_w, cy - 0.68 * body_h
        body = (x0, y0, x0 + body_w, y0 + body_h)
        if all(not _overlaps(body, other[0], 4) for other in placed):
            placed.append((body, (cx, cy), plate_w))
    return placed


def _overlaps(a: Box, b: Box, margin: float = 0.0) -> bool:
    return a[0] < b[2] + margin and b[0] < a[2] + margin and a[1] < b[3] + margin and b[1] < a[3] + margin


def _free_spot(rng: np.random.Generator, width: int, height: int, avoid: list[Box]) -> Box | None:
    """A distractor-sized box (40-360 px wide) inside the image that overlaps none of `avoid`."""
    for _ in range(20):
        w = float(np.exp(rng.uniform(np.log(40), np.log(360))))
        h = w * float(rng.uniform(0.25, 0.9))
        x, y = float(rng.uniform(0, width - w)), float(rng.uniform(0, max(height - h, 1.0)))
        box = (x, y, x + w, min(y + h, float(height)))
        if all(not _overlaps(box, other, 6) for other in avoid):
            return box
    return None


def _text_mask(text: str, face: FontFace, width: int, height: int) -> np.ndarray:
    """`text` in `face` as float32 coverage (0..1), scaled to fit inside width x height pixels."""
    font = load_font(face, 48)
    left, top, right, bottom = font.getbbox(text)
    img = Image.new("L", (int(right - left) + 4, int(bottom - top) + 4), 0)
    ImageDraw.Draw(img).text((2 - left, 2 - top), text, font=font, fill=255)
    mask = np.asarray(img, dtype=np.float32) / 255.0
    scale = min(width / mask.shape[1], height / mask.shape[0])
    size = (max(int(mask.shape[1] * scale), 1), max(int(mask.shape[0] * scale), 1))
    return cv2.resize(mask, size, interpolation=cv2.INTER_AREA)


def _draw_text(image: np.ndarray, box: Box, text: str, ink: tuple[int, ...], rng: np.random.Generator) -> None:
    """Centre `text` in `box` (filling ~85% x 60%), blended with its anti-aliased coverage."""
    faces = PLATE_FACES + CAPTION_FACES
    x1, y1, x2, y2 = (int(v) for v in box)
    mask = _text_mask(text, faces[int(rng.integers(len(faces)))], int((x2 - x1) * 0.85), int((y2 - y1) * 0.6))
    h, w = mask.shape
    x, y = x1 + (x2 - x1 - w) // 2, y1 + (y2 - y1 - h) // 2
    x0, y0 = max(x, 0), max(y, 0)
    xe, ye = min(x + w, image.shape[1]), min(y + h, image.shape[0])
    if xe <= x0 or ye <= y0:
        return
    m = mask[y0 - y : ye - y, x0 - x : xe - x, None]
    region = image[y0:ye, x0:xe].astype(np.float32)
    image[y0:ye, x0:xe] = (region * (1 - m) + np.array(ink, np.float32) * m).astype(np.uint8)


def _distractor(image: np.ndarray, box: Box, rng: np.random.Generator) -> None:
    """A sign, a text banner, a logo, or a close-up of a car's lamp or emblem (the edge of a car next to
    the camera) filling `box`: plate-sized, never a plate."""
    x1, y1, x2, y2 = (int(v) for v in box)
    field, ink = SIGN_COLORS[int(rng.integers(len(SIGN_COLORS)))]
    kind = rng.random()
    if kind < 0.25:  # a lamp or an emblem on a patch of car paint
        paint = tuple(int(c) for c in np.array(CAR_COLORS[int(rng.integers(len(CAR_COLORS)))]) * rng.uniform(0.6, 1.1))
        cv2.rectangle(image, (x1, y1), (x2, y2), paint, -1)
        if kind < 0.15:
            _lamp(image, (x1 + (x2 - x1) // 10, y1 + (y2 - y1) // 8, x2, y2), _lamp_style(rng), rng.random() < 0.5, rng)
        else:
            _emblem(image, ((x1 + x2) / 2, (y1 + y2) / 2), min(x2 - x1, 2 * (y2 - y1)) * 0.8, _chrome(paint), rng)
        return
    kind = (kind - 0.25) / 0.75
    if kind < 0.5:  # a sign on a post
        post_x = (x1 + x2) // 2
        cv2.line(image, (post_x, y2), (post_x, image.shape[0]), (90, 90, 95), max((x2 - x1) // 25, 2))
        cv2.rectangle(image, (x1, y1), (x2, y2), field, -1)
        cv2.rectangle(image, (x1 + 3, y1 + 3), (x2 - 3, y2 - 3), ink, max((y2 - y1) // 20, 1))
        _draw_text(image, box, SIGN_TEXTS[int(rng.integers(len(SIGN_TEXTS)))], ink, rng)
    elif kind < 0.8:  # a shop banner or painted wall text
        if rng.random() < 0.6:
            cv2.rectangle(image, (x1, y1), (x2, y2), field, -1)
        else:
            ink = tuple(int(c) for c in rng.integers(0, 256, 3))  # type: ignore[assignment]
        _draw_text(image, box, BANNER_TEXTS[int(rng.integers(len(BANNER_TEXTS)))], ink, rng)
    elif kind < 0.9:  # a sticker or plate-shaped sign: a bordered rectangle of plate aspect with text
        y2 = min(y2, y1 + (x2 - x1) // 2)
        cv2.rectangle(image, (x1, y1), (x2, y2), field, -1)
        cv2.rectangle(image, (x1, y1), (x2, y2), ink, max((x2 - x1) // 40, 1))
        _draw_text(image, (x1, y1, x2, y2), STICKER_TEXTS[int(rng.integers(len(STICKER_TEXTS)))], ink, rng)
    else:  # a logo: ring or badge with initials
        cx, cy, r = (x1 + x2) // 2, (y1 + y2) // 2, max(min(x2 - x1, y2 - y1) // 2, 4)
        cv2.circle(image, (cx, cy), r, field, -1, cv2.LINE_AA)
        cv2.circle(image, (cx, cy), r, ink, max(r // 8, 1), cv2.LINE_AA)
        letters = "".join(chr(65 + int(c)) for c in rng.integers(0, 26, int(rng.integers(1, 4))))
        _draw_text(image, (cx - r * 0.7, cy - r * 0.7, cx + r * 0.7, cy + r * 0.7), letters, ink, rng)


def _vehicle(
    image: np.ndarray, body: Box, plate_center: tuple[float, float], plate_w: float, rng: np.random.Generator
) -> Box | None:
    """Draw a car rear around the plate position; return a bumper badge's box when one is drawn."""
    x0, y0, x1, y1 = body
    w, h = x1 - x0, y1 - y0
    color = np.array(CAR_COLORS[int(rng.integers(len(CAR_COLORS)))], np.float32) * float(rng.uniform(0.7, 1.1))
    car = tuple(int(c) for c in np.clip(color, 0, 255))
    dark = tuple(int(c * 0.6) for c in car)

    def pt(fx: float, fy: float) -> tuple[int, int]:
        return int(x0 + fx * w), int(y0 + fy * h)

    cv2.ellipse(image, pt(0.5, 0.94), (int(w * 0.5), int(h * 0.06)), 0, 0, 360, (15, 15, 15), -1)  # shadow
    for fx in (0.08, 0.72):  # wheels
        cv2.rectangle(image, pt(fx, 0.8), pt(fx + 0.2, 1.0), (20, 20, 20), -1)
    cabin = np.array([pt(0.18, 0.0), pt(0.82, 0.0), pt(0.95, 0.38), pt(0.05, 0.38)], np.int32)
    cv2.fillConvexPoly(image, cabin, car, cv2.LINE_AA)
    window = np.array([pt(0.23, 0.05), pt(0.77, 0.05), pt(0.88, 0.33), pt(0.12, 0.33)], np.int32)
    glass = tuple(int(c) for c in rng.integers(20, 90, 3))
    cv2.fillConvexPoly(image, window, glass, cv2.LINE_AA)
    radius = max(int(w * 0.05), 2)
    top, bottom = pt(0.0, 0.36), pt(1.0, 0.92)
    cv2.rectangle(image, (top[0] + radius, top[1]), (bottom[0] - radius, bottom[1]), car, -1)
    cv2.rectangle(image, (top[0], top[1] + radius), (bottom[0], bottom[1] - radius), car, -1)
    for corner in ((top[0] + radius, top[1] + radius), (bottom[0] - radius, top[1] + radius)):
        cv2.circle(image, corner, radius, car, -1, cv2.LINE_AA)
    cv2.rectangle(image, pt(0.02, 0.78), pt(0.98, 0.92), dark, -1)  # bumper
    lamp = _lamp_style(rng)
    for fx in (0.03, 0.8):  # tail lights (or, seen from the front, headlights)
        _lamp(image, (*pt(fx, 0.4), *pt(fx + 0.17, 0.58)), lamp, fx > 0.5, rng)
    cx, cy = plate_center
    recess = (
        int(cx - plate_w * 0.6),
        int(cy - plate_w * 0.32),
        int(cx + plate_w * 0.6),
        int(cy + plate_w * 0.32),
    )
    if rng.random() < 0.4:  # not every car has a dark recess: it must not be the cue
        shade = float(rng.uniform(0.4, 0.9))
        cv2.rectangle(image, recess[:2], recess[2:], tuple(int(c * shade) for c in car), -1)
    chrome = _chrome(car)
    if rng.random() < 0.6:  # the maker's emblem above the plate
        size = plate_w * float(rng.uniform(0.3, 0.7))
        _emblem(image, (cx, cy - plate_w * float(rng.uniform(0.45, 0.8))), size, chrome, rng)
    if rng.random() < 0.2:  # a chrome trunk handle or trim bar above the plate
        half, y = plate_w * float(rng.uniform(0.3, 0.6)), int(cy - plate_w * float(rng.uniform(0.35, 0.5)))
        cv2.line(image, (int(cx - half), y), (int(cx + half), y), chrome, max(int(plate_w * 0.05), 1), cv2.LINE_AA)
    if rng.random() < 0.3:  # a model badge: text on the car that is not a plate
        bw = plate_w * float(rng.uniform(0.4, 0.8))
        bx = x0 + w * (0.62 if rng.random() < 0.5 else 0.1)
        badge = (bx, y0 + h * 0.6, bx + bw, y0 + h * 0.6 + bw * 0.35)
        if not _overlaps(badge, recess):
            _draw_text(image, badge, BADGE_TEXTS[int(rng.integers(len(BADGE_TEXTS)))], chrome, rng)
            return badge
    return None


def _chrome(paint: tuple[int, ...]) -> tuple[int, int, int]:
    """Chrome as it shows on `paint`: dark on light cars, bright on dark ones."""
    return (60, 60, 60) if sum(paint) > 450 else (200, 200, 205)


def _lamp_style(rng: np.random.Generator) -> tuple[tuple[int, int, int], int, float]:
    """One car's lamp look: lens colour (red tail light, or clear headlight), shape kind, inner segment share."""
    lens = (int(rng.integers(10, 60)), int(rng.integers(10, 60)), int(rng.integers(140, 255)))
    if rng.random() < 0.25:
        lens = (int(rng.integers(170, 235)),) * 3
    return lens, int(rng.integers(3)), float(rng.uniform(0.2, 0.5))


def _lamp(
    image: np.ndarray, box: tuple[int, int, int, int], style: tuple[tuple[int, int, int], int, float], mirror: bool,
    rng: np.random.Generator,
) -> None:  # fmt: skip
    """A lamp cluster in `box`: a rounded or wedge-shaped lens with a brighter and darker side, an amber
    or clear inner segment, a chrome rim and a specular highlight. Real tail lights, lenses and their
    reflections were the commonest false plates on real parking-lot photos."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    if w < 4 or h < 4:
        return
    lens, kind, inner = style
    mask = np.zeros((h, w), np.uint8)
    if kind == 0:
        cv2.ellipse(mask, (w // 2, h // 2), (w // 2, h // 2), 0, 0, 360, 255, -1)
    elif kind == 1:
        cv2.rectangle(mask, (0, 0), (w - 1, h - 1), 255, -1)
    else:
        wedge = np.array([[0, 0], [w - 1, h // 3], [w - 1, h - 1], [0, h - 1]], np.int32)
        cv2.fillConvexPoly(mask, np.c_[w - 1 - wedge[:, 0], wedge[:, 1]] if mirror else wedge, 255)
    shade = np.linspace(1.25, 0.6, w, dtype=np.float32)[None, :, None]
    lamp = np.ones((h, w, 3), np.float32) * np.array(lens, np.float32) * (shade[:, ::-1] if mirror else shade)
    seg = int(w * inner)
    sx = w - seg if mirror else 0
    lamp[h // 4 : 3 * h // 4, sx : sx + seg] = (0, 140, 250) if rng.random() < 0.5 else (225, 225, 230)
    if sum(lens) > 450:  # a headlight: chrome reflector bowls behind the clear lens
        for i in range(int(rng.integers(1, 4))):
            r = max(min(h // 3, w // 6), 2)
            centre = (int(w * (0.25 + 0.25 * i)), h // 2)
            cv2.circle(lamp, centre, r, (150, 150, 155), -1, cv2.LINE_AA)
            cv2.circle(lamp, centre, max(r // 3, 1), (245, 245, 250), -1, cv2.LINE_AA)
    spot = np.zeros((h, w), np.float32)
    cv2.ellipse(
        spot, (int(w * rng.uniform(0.2, 0.8)), int(h * 0.3)), (max(w // 6, 1), max(h // 8, 1)), 0, 0, 360, 1.0, -1
    )
    lamp += cv2.GaussianBlur(spot, (0, 0), max(w / 20, 1.0))[..., None] * 200
    cv2.rectangle(mask, (0, 0), (w - 1, h - 1), 0, 1)
    region = image[y1:y2, x1:x2]
    m = mask[: region.shape[0], : region.shape[1], None] > 0
    region[:] = np.where(m, np.clip(lamp[: region.shape[0], : region.shape[1]], 0, 255).astype(np.uint8), region)
    contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    cv2.drawContours(region, contours, -1, (170, 170, 175), max(w // 40, 1), cv2.LINE_AA)


def _emblem(
    image: np.ndarray, center: tuple[float, float], size: float, chrome: tuple[int, int, int], rng: np.random.Generator
) -> None:
    """A maker's emblem `size` px wide at `center`: concentric ovals, a ring with a bar, an oval badge
    with a script name, linked rings or a letter in a rounded frame; chrome on the car's paint."""
    cx, cy, r = int(center[0]), int(center[1]), max(int(size / 2), 3)
    thick = max(r // 6, 1)
    kind = int(rng.integers(6))
    if kind == 5:  # a bowtie
        pts = np.array([[-1, -0.2], [-0.3, -0.2], [-0.2, -0.45], [0.3, -0.45], [0.3, -0.2], [1, -0.2],
                        [1, 0.2], [0.3, 0.2], [0.2, 0.45], [-0.3, 0.45], [-0.3, 0.2], [-1, 0.2]])  # fmt: skip
        poly = (pts * r + [cx, cy]).astype(np.int32)
        cv2.fillPoly(image, [poly], (40, 170, 210), cv2.LINE_AA)
        cv2.polylines(image, [poly], True, chrome, thick, cv2.LINE_AA)
    elif kind == 0:  # concentric ovals
        cv2.ellipse(image, (cx, cy), (r, int(r * 0.7)), 0, 0, 360, chrome, thick, cv2.LINE_AA)
        cv2.ellipse(image, (cx, cy - r // 5), (r // 2, int(r * 0.3)), 0, 0, 360, chrome, thick, cv2.LINE_AA)
        cv2.ellipse(image, (cx, cy + r // 8), (r // 5, int(r * 0.5)), 0, 0, 360, chrome, thick, cv2.LINE_AA)
    elif kind == 1:  # a ring crossed by a bar with a name
        cv2.circle(image, (cx, cy), r, chrome, thick, cv2.LINE_AA)
        cv2.rectangle(image, (cx - int(r * 1.2), cy - r // 4), (cx + int(r * 1.2), cy + r // 4), chrome, thick)
    elif kind == 2:  # an oval badge with a script name
        cv2.ellipse(image, (cx, cy), (r, int(r * 0.45)), 0, 0, 360, (110, 40, 10), -1, cv2.LINE_AA)
        cv2.ellipse(image, (cx, cy), (r, int(r * 0.45)), 0, 0, 360, chrome, thick, cv2.LINE_AA)
        _draw_text(image, (cx - r, cy - r * 0.45, cx + r, cy + r * 0.45), "Ford", (235, 235, 235), rng)
    elif kind == 3:  # linked rings
        for i in range(4):
            cv2.circle(image, (cx - r + i * r * 2 // 3, cy), r // 3, chrome, max(thick // 2, 1), cv2.LINE_AA)
    else:  # a letter in a rounded frame
        cv2.ellipse(image, (cx, cy), (r, int(r * 0.75)), 0, 0, 360, chrome, thick, cv2.LINE_AA)
        _draw_text(
            image, (cx - r * 0.7, cy - r * 0.6, cx + r * 0.7, cy + r * 0.6), "HNT"[int(rng.integers(3))], chrome, rng
        )


def _foliage(image: np.ndarray, rng: np.random.Generator) -> None:
    """A tree crown: hundreds of small leaves in greens and browns, with sky showing through. Sunlit
    leaves against the sky were, with lamps, the commonest false plates on real photos."""
    height, width = image.shape[:2]
    cw, ch = int(width * rng.uniform(0.15, 0.6)), int(height * rng.uniform(0.15, 0.5))
    x0, y0 = int(rng.integers(0, width - cw)), int(rng.integers(0, max(height // 2 - ch // 2, 1)))
    sky = (int(rng.integers(200, 256)), int(rng.integers(180, 250)), int(rng.integers(150, 240)))
    cv2.ellipse(image, (x0 + cw // 2, y0 + ch // 2), (cw // 2, ch // 2), 0, 0, 360, sky, -1)
    base = np.array([int(rng.integers(20, 90)), int(rng.integers(60, 160)), int(rng.integers(30, 110))])
    for _ in range(int(cw * ch / 25)):
        x, y = int(x0 + rng.normal(0.5, 0.22) * cw), int(y0 + rng.normal(0.5, 0.22) * ch)
        color = tuple(int(c) for c in np.clip(base * rng.uniform(0.3, 1.8), 0, 255))
        a = int(rng.integers(2, 9))
        cv2.ellipse(image, (x, y), (a, max(a // 2, 1)), float(rng.uniform(0, 180)), 0, 360, color, -1)


def _paste_plate(
    image: np.ndarray,
    plate: np.ndarray,
    center: tuple[float, float],
    plate_w: float,
    rng: np.random.Generator,
) -> Box:
    """Warp the front-on plate into the frame with a mild perspective; return the quad's box, clipped."""
    plate_h = plate_w * 0.5 * float(rng.uniform(0.9, 1.1))
    quad = np.array([[-0.5, -0.5], [0.5, -0.5], [0.5, 0.5], [-0.5, 0.5]], np.float32) * [plate_w, plate_h]
    yaw = float(rng.uniform(-0.12, 0.12))  # one side nearer the camera: taller
    quad[:, 1] *= np.where(quad[:, 0] < 0, 1 + yaw, 1 - yaw)
    angle = np.deg2rad(float(np.clip(rng.normal(0, 3), -8, 8)))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    quad = quad @ rot.T + rng.normal(0, 0.015, (4, 2)) * [plate_w, plate_h] + center
    height, width = image.shape[:2]
    x1, y1 = max(int(np.floor(quad[:, 0].min())) - 1, 0), max(int(np.floor(quad[:, 1].min())) - 1, 0)
    x2, y2 = min(int(np.ceil(quad[:, 0].max())) + 2, width), min(int(np.ceil(quad[:, 1].max())) + 2, height)
    if plate_w < plate.shape[1]:  # shrink first: a linear warp alone would alias the small print
        plate = cv2.resize(plate, (round(plate_w), round(plate_h)), interpolation=cv2.INTER_AREA)
    ph, pw = plate.shape[:2]
    src = np.array([[0, 0], [pw, 0], [pw, ph], [0, ph]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, (quad - [x1, y1]).astype(np.float32))
    size = (x2 - x1, y2 - y1)
    warped = cv2.warpPerspective(plate, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpPerspective(np.ones((ph, pw), np.float32), matrix, size, flags=cv2.INTER_LINEAR)[..., None]
    region = image[y1:y2, x1:x2].astype(np.float32)
    image[y1:y2, x1:x2] = (region * (1 - alpha) + warped.astype(np.float32) * alpha).astype(np.uint8)
    return (
        float(max(quad[:, 0].min(), 0.0)),
        float(max(quad[:, 1].min(), 0.0)),
        float(min(quad[:, 0].max(), width)),
        float(min(quad[:, 1].max(), height)),
    )


def _camera(image: np.ndarray, rng: np.random.Generator, plates: Sequence[Box] = ()) -> None:
    """Light (day, dusk, night with glare and lit plates, infrared), motion blur, rain, noise, JPEG; in place."""
    light = rng.choice(4, p=[0.55, 0.15, 0.2, 0.1])  # day, dusk, night, infrared
    out: np.ndarray = image
    if light == 3:
        out = cv2.cvtColor(cv2.cvtColor(out, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    if light >= 1:
        dark = {1: (0.45, 0.8), 2: (0.12, 0.35), 3: (0.25, 0.5)}[int(light)]
        lit = out.astype(np.float32)
        out = (out.astype(np.float32) * float(rng.uniform(*dark))).astype(np.float32)
        for x1, y1, x2, y2 in plates:  # plate lights and IR retro-reflection keep plates readable
            y1i, y2i, x1i, x2i = int(y1), int(y2), int(x1), int(x2)
            out[y1i:y2i, x1i:x2i] = lit[y1i:y2i, x1i:x2i] * float(rng.uniform(0.5, 1.1))
        if light == 2:
            for _ in range(int(rng.integers(0, 5))):  # headlights and street lamps
                glow: np.ndarray = np.zeros(out.shape[:2], np.float32)
                x, y = int(rng.integers(0, out.shape[1])), int(rng.integers(0, out.shape[0]))
                cv2.circle(glow, (x, y), int(rng.integers(4, 30)), 1.0, -1)
                glow = cv2.GaussianBlur(glow, (0, 0), float(rng.uniform(8, 40)))
                out += glow[..., None] * float(rng.uniform(200, 600))
        out = np.clip(out, 0, 255).astype(np.uint8)
    gain, bias = float(rng.uniform(0.7, 1.2)), float(rng.uniform(-25, 25))
    out = cv2.convertScaleAbs(out, alpha=gain, beta=bias)
    if rng.random() < 0.25:  # motion blur along a random direction
        length = int(rng.integers(3, 12))
        kernel: np.ndarray = np.zeros((length, length), np.float32)
        kernel[length // 2] = 1.0 / length
        rot = cv2.getRotationMatrix2D((length / 2 - 0.5, length / 2 - 0.5), float(rng.uniform(-30, 30)), 1.0)
        kernel = cv2.warpAffine(kernel, rot, (length, length))
        out = cv2.filter2D(out, -1, (kernel / max(float(kernel.sum()), 1e-6)).astype(np.float32))
    elif rng.random() < 0.3:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.5, 1.3)))
    if rng.random() < 0.1:  # rain: thin bright streaks
        streaks = np.zeros(out.shape[:2], np.uint8)
        for _ in range(int(rng.integers(100, 400))):
            x, y = int(rng.integers(0, out.shape[1])), int(rng.integers(0, out.shape[0]))
            cv2.line(streaks, (x, y), (x + int(rng.integers(-4, 5)), y + int(rng.integers(8, 25))), 255, 1)
        out = cv2.addWeighted(out, 1.0, cv2.cvtColor(cv2.blur(streaks, (2, 2)), cv2.COLOR_GRAY2BGR), 0.3, 0)
    if rng.random() < 0.5:
        sigma = np.float32(rng.uniform(2, 10 if light >= 2 else 8))
        noise = np.multiply(rng.standard_normal(out.shape, dtype=np.float32), sigma)
        out = cv2.add(out, noise, dtype=cv2.CV_8U)
    if rng.random() < 0.5:  # a camera's own compression before ours
        quality = int(rng.integers(25, 85))
        decoded = cv2.imdecode(cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_COLOR)
        out = out if decoded is None else decoded
    image[:] = out


def scene_size(seed: int, index: int) -> tuple[int, int]:
    """The frame size of dataset scene `index`: mostly 720p video, a fifth 640x480 cameras."""
    return (640, 480) if np.random.default_rng([seed, index, 1]).random() < 0.2 else (1280, 720)


def real_plate_photos(folders: Sequence[Path]) -> tuple[str, ...]:
    """Whole-plate photos to paste into scenes: each folder's MANIFEST.tsv images (its `train` split
    when it has a split column: valid and test stay unseen), else every image in the folder."""
    paths: list[str] = []
    for folder in folders:
        manifest = folder / "MANIFEST.tsv"
        if manifest.is_file():
            rows = read_tsv(manifest)
            column = next((c for c in IMAGE_COLUMNS if c in (rows.fieldnames or [])), None)
            if column is None:
                raise PlatepilotError(f"{manifest}: bad header, no image column ({' or '.join(IMAGE_COLUMNS)})")
            paths += [str(folder / r[column]) for r in rows if r.get("split", "train") == "train" and r[column]]
        elif folder.is_dir():
            paths += sorted(str(p) for p in folder.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})
        else:
            raise PlatepilotError(f"{folder}: no such folder of plate photos")
    if folders and not paths:
        raise PlatepilotError(f"no plate photos found in {', '.join(map(str, folders))}")
    return tuple(paths)
