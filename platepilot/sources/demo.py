"""The built-in demo camera: vehicles with synthetic Florida plates driving through a 1280x720 frame.

Deterministic by seed: the whole schedule (which vehicle, which plate, which lane, when) comes from
`np.random.default_rng([seed, ...])`, and frame `i` is a pure function of (seed, i), so the scene
knows its ground truth: every plate's text and box in every frame, and which vehicles have driven
through. Two lanes: the near one (bigger plates) drives left to right, the far one right to left;
the camera looks down on them steeply enough that near vehicles never hide a far plate (truth stays
"every plate fully visible").
Each vehicle is drawn once as a sprite (body, rear window, lights, bumper, plate) and then only
pasted at its position, so a frame costs a background copy and a few array copies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from platepilot.plates.designs import sample_design
from platepilot.plates.render import render_plate
from platepilot.sources.base import Clock, Pacer
from platepilot.types import BoxXYXY, Frame

WIDTH, HEIGHT = 1280, 720


@dataclass(frozen=True, slots=True)
class Lane:
    """`y`: bumper line in pixels; `plate_width`: pixels; `speed`: pixels/s, sign = direction."""

    y: float
    plate_width: float
    speed: float


HORIZON = 200
LANES = (Lane(y=710, plate_width=180, speed=240.0), Lane(y=330, plate_width=130, speed=-180.0))
CAR_COLORS = ((235, 235, 235), (190, 190, 195), (60, 60, 60), (30, 30, 30), (40, 40, 170), (140, 70, 20))


@dataclass(frozen=True, slots=True)
class SpriteGeometry:
    """A vehicle sprite's size and where its plate sits in it, pixels."""

    body_w: int
    body_h: int
    plate_x: int
    plate_y: int
    plate_w: int
    plate_h: int
    color: tuple[int, int, int]
    blur: float

    @staticmethod
    def sample(plate_width: float, rng: np.random.Generator) -> SpriteGeometry:
        pw = round(plate_width * float(rng.uniform(0.9, 1.1)))
        ph = round(pw / 2)
        body_w, body_h = round(pw * rng.uniform(3.2, 3.6)), round(pw * rng.uniform(1.7, 1.9))
        color = CAR_COLORS[int(rng.integers(len(CAR_COLORS)))]
        blur = float(rng.uniform(0.0, 0.9))
        return SpriteGeometry(body_w, body_h, (body_w - pw) // 2, round(body_h * 0.6), pw, ph, color, blur)


@dataclass(frozen=True)
class Vehicle:
    """One vehicle: enters the frame at `enter_time` (seconds from stream start) in lane `lane`."""

    number: int
    lane: int
    enter_time: float
    text: str
    geometry: SpriteGeometry
    seed: int

    @property
    def width(self) -> int:
        return self.geometry.body_w

    def draw(self) -> np.ndarray:
        """The vehicle's sprite, its plate rendered by the synthetic plate renderer (`DemoScene.sprite`
        keeps it while the vehicle is on the road)."""
        rng = self._plate_rng()
        design = sample_design(rng)
        return _sprite(render_plate(design, rng).image, self.geometry)

    @cached_property
    def state(self) -> str:
        """The postal code of the state that issued the vehicle's plate (its design's)."""
        return sample_design(self._plate_rng()).state

    def _plate_rng(self) -> np.random.Generator:
        return np.random.default_rng([self.seed, 2, self.number])

    @property
    def plate_box(self) -> BoxXYXY:
        """The plate's box in sprite pixels."""
        g = self.geometry
        return (float(g.plate_x), float(g.plate_y), float(g.plate_x + g.plate_w), float(g.plate_y + g.plate_h))

    def x_at(self, t: float) -> float:
        """Left edge of the sprite at stream time `t` (may be off-frame)."""
        lane = LANES[self.lane]
        travelled = (t - self.enter_time) * abs(lane.speed)
        return -self.width + travelled if lane.speed > 0 else WIDTH - travelled

    def exit_time(self) -> float:
        return self.enter_time + (WIDTH + self.width) / abs(LANES[self.lane].speed)


@dataclass(frozen=True, slots=True)
class TruthPlate:
    """A plate visible in a frame: the vehicle's number, its text and its box (clipped to the frame)."""

    vehicle: int
    text: str
    box: BoxXYXY


class DemoScene:
    """The deterministic demo stream `seed` at `fps` frames per second (stream time `index / fps`)."""

    def __init__(self, seed: int = 0, fps: float = 15.0, vehicles: int = 2000, noise: float = 3.0) -> None:
        self.seed, self.fps, self.noise = seed, fps, noise
        self._count = vehicles
        self._sprites: dict[int, np.ndarray] = {}  # vehicle number -> sprite, for the vehicles last in view

    @cached_property
    def background(self) -> np.ndarray:
        rng = np.random.default_rng([self.seed, 0])
        t = np.linspace(0, 1, HORIZON, dtype=np.float32)[:, None, None]
        sky = (rng.integers(150, 230, 3) * (1 - t) + rng.integers(90, 160, 3) * t).astype(np.uint8)
        image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        image[:HORIZON] = cv2.resize(sky, (WIDTH, HORIZON), interpolation=cv2.INTER_NEAREST)
        for _ in range(10):  # buildings
            x, w, h = int(rng.integers(0, WIDTH)), int(rng.integers(60, 260)), int(rng.integers(40, 160))
            color = tuple(int(c) for c in rng.integers(60, 200, 3))
            cv2.rectangle(image, (x, HORIZON - h), (x + w, HORIZON), color, -1)
        image[HORIZON:] = 95
        for y in (HORIZON, 520):  # lane markings
            for x in range(0, WIDTH, 120):
                cv2.rectangle(image, (x, y), (x + 60, y + 6), (220, 220, 220), -1)
        noise = rng.normal(0, self.noise, image.shape)
        return np.clip(image + noise, 0, 255).astype(np.uint8)

    @cached_property
    def vehicles(self) -> tuple[Vehicle, ...]:
        rng = np.random.default_rng([self.seed, 1])
        out: list[Vehicle] = []
        next_free = [0.3, 1.8]
        for number in range(self._count):
            lane = int(np.argmin(next_free))
            text = sample_design(np.random.default_rng([self.seed, 2, number])).text
            geometry = SpriteGeometry.sample(LANES[lane].plate_width, np.random.default_rng([self.seed, 3, number]))
            vehicle = Vehicle(number, lane, next_free[lane], text, geometry, self.seed)
            gap = (geometry.body_w + 150) / abs(LANES[lane].speed)
            next_free[lane] += gap + float(rng.uniform(0.5, 3.0))
            out.append(vehicle)
        return tuple(out)

    def visible(self, t: float) -> list[Vehicle]:
        return [v for v in self.vehicles if v.enter_time <= t < v.exit_time()]

    def render(self, index: int) -> tuple[np.ndarray, list[TruthPlate]]:
        """Frame `index`: the BGR image and the plates in it (boxes clipped; fully hidden ones left out)."""
        t = index / self.fps
        image = self.background.copy()
        truth = []
        visible = self.visible(t)
        sprites = {v.number: self.sprite(v) for v in visible}  # those gone are let go: a long run stays small
        self._sprites = sprites  # one dict per frame: a render on another thread (a test's truth) swaps, not edits
        for vehicle in sorted(visible, key=lambda v: -v.lane):  # far lane first
            x = round(vehicle.x_at(t))
            sprite = sprites[vehicle.number]
            y = round(LANES[vehicle.lane].y - sprite.shape[0])
            _paste(image, sprite, x, y)
            px1, py1, px2, py2 = vehicle.plate_box
            box = (max(x + px1, 0.0), y + py1, min(x + px2, float(WIDTH)), y + py2)
            if box[2] - box[0] >= 2:
                truth.append(TruthPlate(vehicle.number, vehicle.text, box))
        return image, truth

    def sprite(self, vehicle: Vehicle) -> np.ndarray:
        """`vehicle` drawn, once while it stays in view."""
        sprite = self._sprites.get(vehicle.number)
        return vehicle.draw() if sprite is None else sprite

    def passed(self, frames: int) -> list[Vehicle]:
        """Vehicles that entered and left the frame within the first `frames` frames."""
        end = (frames - 1) / self.fps
        return [v for v in self.vehicles if v.exit_time() <= end]


class DemoSource:
    """The demo scene as a camera. `realtime` paces frames at the scene's fps (a live camera, which
    drops frames when the pipeline is slower); otherwise frames come as fast as they are read.
    Timestamps are `clock()` at the first frame plus stream time. `max_frames` None runs forever."""

    def __init__(
        self,
        camera_id: str = "CAM1",
        seed: int = 0,
        fps: float = 15.0,
        realtime: bool = True,
        max_frames: int | None = None,
        clock: Clock = time.time,
    ) -> None:
        self.camera_id, self.live, self.stills = camera_id, realtime, False
        self.scene = DemoScene(seed, fps)
        self.max_frames = max_frames
        self._clock = clock
        self.produced = 0
        self.first_timestamp: float | None = None

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        pacer = Pacer(self.scene.fps)
        start = self._clock()
        self.first_timestamp = start
        index = 0
        while not stop.is_set() and (self.max_frames is None or index < self.max_frames):
            if self.live:
                pacer.wait(index, stop)
            image, _ = self.scene.render(index)
            self.produced = index + 1
            yield Frame(self.camera_id, index, start + index / self.scene.fps, image)
            index += 1


def _sprite(plate: np.ndarray, g: SpriteGeometry) -> np.ndarray:
    """A car rear (body, rear window, tail lights, bumper, plate recess) around the plate."""
    small = cv2.resize(plate, (g.plate_w, g.plate_h), interpolation=cv2.INTER_AREA)
    if g.blur > 0.3:
        small = cv2.GaussianBlur(small, (0, 0), g.blur)
    w, h = g.body_w, g.body_h
    sprite = np.full((h, w, 3), g.color, np.uint8)
    dark = tuple(int(c * 0.55) for c in g.color)
    cv2.rectangle(sprite, (round(w * 0.15), 0), (round(w * 0.85), round(h * 0.35)), (50, 45, 40), -1)
    for fx in (0.03, 0.8):  # tail lights
        cv2.rectangle(sprite, (round(w * fx), round(h * 0.42)), (round(w * (fx + 0.17)), round(h * 0.55)),
                      (20, 20, 200), -1)  # fmt: skip
    cv2.rectangle(sprite, (0, round(h * 0.82)), (w, h), dark, -1)  # bumper
    x, y = g.plate_x, g.plate_y
    cv2.rectangle(sprite, (x - 6, y - 6), (x + g.plate_w + 6, y + g.plate_h + 6), dark, -1)  # recess
    sprite[y : y + g.plate_h, x : x + g.plate_w] = small
    return sprite


def _paste(image: np.ndarray, sprite: np.ndarray, x: int, y: int) -> None:
    """Copy `sprite` into `image` with its top-left at (x, y), clipped to the image."""
    h, w = sprite.shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, image.shape[1]), min(y + h, image.shape[0])
    if x1 > x0 and y1 > y0:
        image[y0:y1, x0:x1] = sprite[y0 - y : y1 - y, x0 - x : x1 - x]
