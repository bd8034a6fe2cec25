"""Camera realism: turn a clean rendered plate into what a roadside camera and our detector hand the reader.

Geometry is done here in one warp (crop framing, perspective, rotation, resolution), because it must
know where the plate and its characters are; the photometric side (blur, noise, exposure, shadows,
JPEG, night IR greyscale) is albumentations, seeded per sample so output is reproducible.

Crop framings follow the two kinds of real crop we measure against: tight boxes that hug the
characters (UCSD-style, cutting into the state name and slogan) and whole plates with a margin of car
around them (detector-style, OpenALPR seg_ocr-style), with loose/tight jitter and clipped edges.
"""

from __future__ import annotations

import os
from functools import cached_property

import cv2
import numpy as np

from platepilot.plates.render import RenderedPlate

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")  # never phone home (air-gapped sites)
import albumentations as A

_MARGIN = 0.6  # car around the plate, as a fraction of plate size on each side
_BAND_CHARS = "ABCDEFGHIJKLMNOPRSTUVWY0123456789"


class CameraModel:
    """Seeded camera effects; `apply(plate, rng)` returns a BGR uint8 crop, 48-200 px wide."""

    def __init__(self, strength: float = 1.0) -> None:
        self.strength = strength

    @cached_property
    def _photometric(self) -> A.Compose:
        s = self.strength
        return A.Compose(
            [
                A.OneOf(
                    [
                        A.GaussianBlur(sigma_limit=(0.2, 1.0), blur_limit=0, p=1.0),
                        A.MotionBlur(blur_limit=(3, 5), p=1.0),
                        A.Defocus(radius=(1, 2), alias_blur=(0.1, 0.3), p=1.0),
                    ],
                    p=0.5 * s,
                ),
                A.RandomBrightnessContrast((-0.35, 0.3), (-0.5, 0.3), p=0.8 * s),
                A.RandomGamma(gamma_limit=(60, 160), p=0.4 * s),
                A.RandomShadow(shadow_roi=(0, 0, 1, 1), num_shadows_limit=(1, 1), shadow_dimension=4,
                               shadow_intensity_range=(0.1, 0.4), p=0.15 * s),
                A.RGBShift(r_shift_limit=15, g_shift_limit=12, b_shift_limit=25, p=0.4 * s),
                A.ToGray(p=0.15 * s),
                A.GaussNoise(std_range=(0.01, 0.06), p=0.4 * s),
                A.ImageCompression(quality_range=(50, 95), p=0.5 * s),
            ]
        )  # fmt: skip

    def apply(self, plate: RenderedPlate, rng: np.random.Generator) -> np.ndarray:
        scene, offset = _place_on_car(plate.image, rng)
        crop = _warp_crop(scene, plate, offset, rng)
        crop = _glare_and_dirt(crop, rng)
        if rng.random() < 0.1 * self.strength:
            crop = _night_ir(crop, rng)
        self._photometric.set_random_seed(int(rng.integers(2**31)))
        return self._photometric(image=crop)["image"]


def _place_on_car(plate: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int]]:
    """The plate on a car-coloured surround with a bumper-ish band and some clutter."""
    h, w = plate.shape[:2]
    mh, mw = int(h * _MARGIN), int(w * _MARGIN)
    height, width = h + 2 * mh, w + 2 * mw
    car = rng.integers(0, 256, 3).astype(np.float32) * float(rng.uniform(0.3, 1.0))
    # Until the clutter, every row is one colour: shade one column in float32 (the same steps as a
    # full-size float canvas, so the same bytes) and broadcast it as uint8, ~10x cheaper.
    column = np.empty((height, 1, 3), np.float32)
    column[:] = car
    ramp = np.linspace(float(rng.uniform(0.5, 1.2)), float(rng.uniform(0.5, 1.2)), height, dtype=np.float32)
    column *= ramp[:, None, None]
    if rng.random() < 0.5:  # bumper edge or recess below/above the plate
        y = int(rng.integers(mh + h, height))
        column[y:] *= float(rng.uniform(0.2, 0.7))
    column8 = np.clip(column, 0, 255).astype(np.uint8)
    scene = cv2.resize(column8, (width, height), interpolation=cv2.INTER_NEAREST)  # a pure copy, fast
    for _ in range(int(rng.integers(0, 4))):  # clutter: lights, badges, text-like bars
        x0, y0 = int(rng.integers(0, width)), int(rng.integers(0, height))
        color = tuple(float(c) for c in rng.integers(0, 256, 3))  # whole numbers: exact in uint8
        cv2.rectangle(scene, (x0, y0), (x0 + int(rng.integers(5, 60)), y0 + int(rng.integers(3, 20))), color, -1)
    scene[mh : mh + h, mw : mw + w] = plate
    if rng.random() < 0.5:
        _holder(scene, (mw, mh, mw + w, mh + h), rng)
    return scene, (mw, mh)


def _holder(scene: np.ndarray, plate: tuple[int, int, int, int], rng: np.random.Generator) -> None:
    """A plate frame or recess rim: a dark-plastic or chrome band around the plate that overlaps
    its edge, often wide at the bottom or top with a dealer's name on it. Most real plates sit in
    one; a reader that never saw one reads its vertical edge as an extra I or L and the dealer's
    name as part of the plate."""
    x1, y1, x2, y2 = plate
    h = y2 - y1
    outer = rng.uniform(0.02, 0.09, 4) * h  # band width outside the plate: left, top, right, bottom
    inner = rng.uniform(0.0, 0.04, 4) * h  # how far the band covers the plate's own edge
    for side in (1, 3):  # dealer frames: wide top or bottom bands, covering captions
        if rng.random() < 0.35:
            outer[side] += rng.uniform(0.04, 0.14) * h
            inner[side] += rng.uniform(0.0, 0.12) * h
    grey = float(rng.uniform(10, 60) if rng.random() < 0.7 else rng.uniform(150, 235))
    color = tuple(float(np.clip(grey + c, 0, 255)) for c in rng.integers(-8, 9, 3))
    band = np.zeros(scene.shape[:2], np.uint8)
    cv2.rectangle(
        band, (round(x1 - outer[0]), round(y1 - outer[1])), (round(x2 + outer[2]), round(y2 + outer[3])), 1, -1
    )
    cv2.rectangle(
        band, (round(x1 + inner[0]), round(y1 + inner[1])), (round(x2 - inner[2]), round(y2 - inner[3])), 0, -1
    )
    scene[band.astype(bool)] = color
    ink = (235.0, 235.0, 235.0) if grey < 100 else (25.0, 25.0, 25.0)
    for side, y_band in ((1, y1 - outer[1]), (3, y2 - inner[3])):
        thickness = outer[side] + inner[side]
        if thickness > 0.1 * h and rng.random() < 0.7:
            _band_text(scene, (x1 + x2) / 2, y_band + thickness / 2, 0.6 * thickness, ink, rng)


def _band_text(
    scene: np.ndarray, cx: float, cy: float, height: float, ink: tuple[float, ...], rng: np.random.Generator
) -> None:
    """A made-up dealer name or slogan centred at (cx, cy), `height` pixels tall (Hershey vector font)."""
    words = ["".join(rng.choice(list(_BAND_CHARS), int(rng.integers(3, 9)))) for _ in range(int(rng.integers(1, 3)))]
    text = " ".join(words)
    font = cv2.FONT_HERSHEY_DUPLEX if rng.random() < 0.5 else cv2.FONT_HERSHEY_SIMPLEX
    scale = cv2.getFontScaleFromHeight(font, max(round(height), 4))
    (tw, th), _ = cv2.getTextSize(text, font, scale, 1)
    origin = (round(cx - tw / 2), round(cy + th / 2))
    cv2.putText(scene, text, origin, font, scale, ink, max(round(height / 8), 1), cv2.LINE_AA)


def _crop_box(plate: RenderedPlate, offset: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Four corners (TL, TR, BR, BL) of the framed region in scene pixels, before perspective."""
    ox, oy = offset
    r = rng.random()
    if r < 0.45:  # tight: hugs the characters, like boxes drawn around the text
        x1, y1, x2, y2 = plate.chars_box
        w, h = x2 - x1, y2 - y1
        dx = rng.uniform(-0.015, 0.10, 2) * w  # real boxes hug the text, sometimes shaving an edge
        dy = rng.uniform(-0.06, 0.35, 2) * h
    elif r < 0.9:  # the whole plate with a margin: what a plate detector returns
        x1, y1, x2, y2 = plate.plate_box
        w, h = x2 - x1, y2 - y1
        dx = rng.uniform(-0.04, 0.15, 2) * w
        dy = rng.uniform(-0.08, 0.20, 2) * h
    else:  # in between: characters plus part of the captions
        x1, y1, x2, y2 = plate.chars_box
        w, h = x2 - x1, y2 - y1
        dx = rng.uniform(0.05, 0.2, 2) * w
        dy = rng.uniform(0.3, 0.9, 2) * h
    bx1, by1, bx2, by2 = x1 - dx[0] + ox, y1 - dy[0] + oy, x2 + dx[1] + ox, y2 + dy[1] + oy
    return np.array([[bx1, by1], [bx2, by1], [bx2, by2], [bx1, by2]], np.float32)


def _warp_crop(
    scene: np.ndarray, plate: RenderedPlate, offset: tuple[int, int], rng: np.random.Generator
) -> np.ndarray:
    src = _crop_box(plate, offset, rng)
    bw, bh = src[1, 0] - src[0, 0], src[2, 1] - src[1, 1]
    # Perspective and rotation: move the source corners, so the plate looks turned inside the crop.
    center = src.mean(axis=0)
    angle = np.deg2rad(rng.normal(0, 3.0))
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], np.float32)
    src = (src - center) @ rot.T + center
    src += rng.normal(0, 0.02, src.shape).astype(np.float32) * np.array([bw, bh], np.float32)
    out_w = int(np.exp(rng.uniform(np.log(48), np.log(200))))
    out_h = max(int(out_w * bh / bw * rng.uniform(0.85, 1.15)), 10)
    # Warp at 2x then area-downsample: a camera integrates light, it does not point-sample.
    dst = np.array([[0, 0], [2 * out_w, 0], [2 * out_w, 2 * out_h], [0, 2 * out_h]], np.float32)
    matrix = cv2.getPerspectiveTransform(src, dst)
    big = cv2.warpPerspective(
        scene, matrix, (2 * out_w, 2 * out_h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return cv2.resize(big, (out_w, out_h), interpolation=cv2.INTER_AREA)


def _glare_and_dirt(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = crop.shape[:2]
    out = crop.astype(np.float32)
    if rng.random() < 0.15:  # specular glare: a soft bright spot
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(0.2, 0.6) * w
        spot = np.exp(-(((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
        out += spot[..., None] * float(rng.uniform(60, 160))
    if rng.random() < 0.2:  # dirt and grime: dark speckles
        n = int(rng.integers(3, 30))
        ys, xs = rng.integers(0, h, n), rng.integers(0, w, n)
        out[ys, xs] *= rng.uniform(0.2, 0.7, (n, 1)).astype(np.float32)
    return np.clip(out, 0, 255).astype(np.uint8)


def _night_ir(crop: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Infrared night look: greyscale, retroreflective plate bright, contrast pushed."""
    gray = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY).astype(np.float32)
    gray = np.clip((gray - gray.mean()) * float(rng.uniform(1.2, 2.0)) + float(rng.uniform(110, 170)), 0, 255)
    return cv2.cvtColor(gray.astype(np.uint8), cv2.COLOR_GRAY2BGR)


# What a roadside camera does to a plate that a sharp photo does not show: fewer pixels across the plate
# (the UCSD plates are 50-110 px wide, the model's input 128), blur, sensor noise and JPEG.
_CAMERA_DEGRADATION = A.Compose(
    [
        A.Downscale(scale_range=(0.35, 0.8), p=0.8,
                    interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}),
        A.OneOf([A.GaussianBlur(sigma_limit=(0.4, 1.2), blur_limit=0, p=1.0), A.MotionBlur(blur_limit=(3, 5), p=1.0)],
                p=0.6),
        A.GaussNoise(std_range=(0.01, 0.05), p=0.4),
        A.ImageCompression(quality_range=(25, 85), p=0.7),
    ]
)  # fmt: skip


def degrade(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A model-sized crop as a worse camera would have caught it (Noisy-Student-style: the label, read
    from the sharp photo, stays; the student learns to read it from fewer, blurrier pixels)."""
    _CAMERA_DEGRADATION.set_random_seed(int(rng.integers(2**31)))
    planes = image.reshape(-1, *image.shape[-2:])
    channels_last = np.ascontiguousarray(np.moveaxis(planes, 0, -1))
    out = _CAMERA_DEGRADATION(image=channels_last)["image"]
    return np.moveaxis(out.reshape(*image.shape[-2:], -1), -1, 0).reshape(image.shape)
