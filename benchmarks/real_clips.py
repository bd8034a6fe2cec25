"""Per vehicle on real pixels: each labelled photo becomes a short clip of a camera approaching its
plate, and the whole edge pipeline runs on it.

No real video of US plates is at hand, so every scene of a MANIFEST.tsv is turned into about 2 s
at 15 fps (`--frames`, `--fps`) in which the plate grows from 0.3x to 1x its size in the photo, as
a plate does when the distance shrinks at constant speed (size ~ 1 / distance). Each frame is the
photo scaled down (INTER_AREA, as a far camera sees it) and placed in a frame of the photo's own
size, the plate centred at first, the whole photo filling the frame at the end; the edge pixels
are replicated around it (no mirrored copies of plates), with a slight pan, a motion blur, sensor
noise and JPEG. The JPEG is the camera's one lossy compression, so the clip is written losslessly
(FFV1 in .mkv, OpenCV) in a temp folder; `--codec mp4v` writes an .mp4 instead, a second, lossy
compression on top (all 246 UCSD clips read 80.5% folded with it and 80.9% without, the 5 px blurred
ones 56.9% and 58.6%; 2026-12-07). It is run through the runtime as `platepilot run --source clip.mkv`
runs it: detector, tracker, best crops, async OCR, the state classifier (when `state.enabled`, as by
default), fusion, one event per vehicle (one `Pilot` per clip; the detector, the reader and the state
classifier are loaded once).

A vehicle (a labelled plate) is read when an event of its clip has its text, strict and O/0 I/1
folded; an event matches no plate when its folded text is none of its clip's labels; a vehicle is fused
away when no event reads it but one of its events holds its text among its candidates (the texts its
reads gave, up to five): the fusion, not the reader, lost it. `--ceiling`
also runs the detector and the reader on every frame of every clip, with no tracker: the share of
vehicles that at least one frame reads (folded) is what a perfect choice of crops would reach, so
the gap to it is the runtime's (tracking, crop choice, fusion), the rest the detector's and reader's.
Each clip draws one motion blur length (1-5 px, 1 meaning none); a second table gives the share read
per length, which separates what blur costs the reader from the rest.
`--frame 1280x720` first sets each photo at its own size in the middle of a frame that large (edge
pixels replicated, `far_scenes.py`), so the clips are a 720p road camera's view of the same plates.
Prints the tables and writes benchmarks/results/real_clips.json.
Usage: python benchmarks/real_clips.py --scenes MANIFEST.tsv [--detector auto|platenet|fast|textdet:SIDE|PATH]
    [--engine auto] [--config platepilot.yaml] [--limit N] [--frame WxH] [--blur N ...] [--codec ffv1|mp4v]
    [--keep-clips DIR] [--ceiling] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from far_scenes import far_view, parse_frame
from pipeline_detector import detector_for
from realdata import at_least_one, fail, one_line_errors
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from platepilot.config import CameraConfig, Settings, load_config
from platepilot.detect import PlateDetector
from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.ocr.base import OCREngine
from platepilot.ocr.models import engine_for
from platepilot.ocr.state import StateClassifier, state_classifier
from platepilot.pipeline.pilot import Pilot
from platepilot.pipeline.reload import ReaderSlot, model_version
from platepilot.plates.blur import CAMERA_JPEG_QUALITY, CAMERA_NOISE_SIGMA, exposed
from platepilot.plates.charset import fold
from platepilot.plates.manifest import LabelledScene, read_manifest
from platepilot.sources.files import VideoFileSource
from platepilot.store.crops import CropStore
from platepilot.store.events import EventStore, PlateEvent
from platepilot.track.quality import cut_crop

RESULTS = Path(__file__).parent / "results" / "real_clips.json"
CODECS = {"ffv1": ("FFV1", ".mkv"), "mp4v": ("mp4v", ".mp4")}
"""The clip's video codec (OpenCV fourcc) and file suffix, by `--codec` name."""
CAMERA = "CLIP"


@dataclass(frozen=True, slots=True)
class ClipStyle:
    """How a photo becomes a clip: `start_scale` of the plate's photo size at frame 0 (1.0 at the last),
    pan amplitude as a share of the frame width, motion blur length, noise sigma and JPEG quality ranges
    (each clip draws its own)."""

    frames: int = 30
    fps: float = 15.0
    start_scale: float = 0.3
    pan: float = 0.015
    blur_px: tuple[int, int] = (1, 5)
    noise_sigma: tuple[float, float] = CAMERA_NOISE_SIGMA
    jpeg_quality: tuple[int, int] = CAMERA_JPEG_QUALITY


DEFAULT_STYLE = ClipStyle()


def approach_scales(frames: int, start: float) -> np.ndarray:
    """Plate size per frame, `start` -> 1: the distance falls linearly, the size grows as 1 / distance."""
    return 1.0 / np.linspace(1.0 / start, 1.0, frames)


def aim_point(scene: LabelledScene, width: int, height: int) -> tuple[float, float]:
    """Where the camera looks at first: the centre of the scene's plates (the photo's centre if none)."""
    if not scene.plates:
        return width / 2, height / 2
    centres = [(x + w / 2, y + h / 2) for x, y, w, h in (p.box_xywh for p in scene.plates)]
    return float(np.mean([c[0] for c in centres])), float(np.mean([c[1] for c in centres]))


def camera_view(photo: np.ndarray, scale: float, centre: tuple[float, float], shift: tuple[float, float]) -> np.ndarray:
    """The photo at `scale`, its point `centre` at the frame centre moved by `shift` pixels, in a frame
    of the photo's size; the border pixels are replicated where the scaled photo does not reach."""
    height, width = photo.shape[:2]
    small_w, small_h = max(round(width * scale), 2), max(round(height * scale), 2)
    small = cv2.resize(photo, (small_w, small_h), interpolation=cv2.INTER_AREA)
    sx, sy = small_w / width, small_h / height
    tx, ty = width / 2 - sx * centre[0] + shift[0], height / 2 - sy * centre[1] + shift[1]
    matrix = np.float32([[1, 0, tx], [0, 1, ty]])
    return cv2.warpAffine(small, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def drawn_blur(style: ClipStyle, rng: np.random.Generator) -> int:
    """The motion blur length, px, a clip draws first from its generator (1: none)."""
    return int(rng.integers(style.blur_px[0], style.blur_px[1] + 1))


def make_clip(
    photo: np.ndarray, scene: LabelledScene, style: ClipStyle, rng: np.random.Generator
) -> tuple[list[np.ndarray], int]:
    """The frames of one approach clip (see the module doc), each of the photo's size cut to even sides,
    and the clip's motion blur length in pixels (1: none)."""
    photo = photo[: photo.shape[0] // 2 * 2, : photo.shape[1] // 2 * 2]  # video codecs need even sides
    height, width = photo.shape[:2]
    aim, middle = aim_point(scene, width, height), (width / 2, height / 2)
    blur = drawn_blur(style, rng)
    angle, sigma = float(rng.uniform(-30, 30)), float(rng.uniform(*style.noise_sigma))
    quality = int(rng.integers(style.jpeg_quality[0], style.jpeg_quality[1] + 1))
    phase, period = rng.uniform(0, 2 * np.pi, 2), rng.uniform(0.8, 1.6, 2) * style.frames
    frames = []
    for index, scale in enumerate(approach_scales(style.frames, style.start_scale)):
        done = (scale - style.start_scale) / (1.0 - style.start_scale)  # 0 at the start, 1 at the end
        centre = (aim[0] + (middle[0] - aim[0]) * done, aim[1] + (middle[1] - aim[1]) * done)
        wobble = np.sin(2 * np.pi * index / period + phase) * style.pan * width * np.array([1.0, 0.5])
        frame = camera_view(photo, float(scale), centre, (float(wobble[0]), float(wobble[1])))
        frames.append(exposed(frame, blur, angle, sigma, quality, rng))
    return frames, blur


def write_clip(frames: Sequence[np.ndarray], path: Path, fps: float, codec: str = "ffv1") -> Path:
    """A video of `frames` at `path` with the suffix of `codec` (`CODECS`), and its path; PlatepilotError
    when OpenCV cannot write one."""
    fourcc, suffix = CODECS[codec]
    path = path.with_suffix(suffix)
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise PlatepilotError(f"{path}: OpenCV cannot write a {codec} video here")
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


def run_clip(
    video: Path,
    settings: Settings,
    detector: PlateDetector,
    reader: ReaderSlot,
    workdir: Path,
    states: StateClassifier | None = None,
) -> list[PlateEvent]:
    """Every event of one whole pipeline run over `video` (crops and events written under `workdir`),
    each read's state from `states` as `platepilot run` classifies it."""
    settings = settings.model_copy(update={"cameras": [CameraConfig(id=CAMERA, source=str(video))]})
    events = EventStore(f"sqlite:///{workdir / 'events.db'}")
    found: list[PlateEvent] = []
    pilot = Pilot(settings, [VideoFileSource(video, CAMERA)], {CAMERA: detector}, reader, CropStore(workdir / "crops"),
                  events, found.append, states)  # fmt: skip
    try:
        pilot.run()
    finally:
        events.close()
    return found


@dataclass(frozen=True, slots=True)
class ClipResult:
    """One clip: its labels, which were read (strict, folded), and its events' texts and read counts."""

    image: str
    labels: tuple[str, ...]
    read: tuple[bool, ...]
    read_folded: tuple[bool, ...]
    events: tuple[tuple[str, int], ...]  # (text, reads)
    false_events: int
    blur_px: int
    fused_away: tuple[bool, ...]  # each label: not read, yet among an event's candidates (folded)
    any_frame: tuple[bool, ...] | None = None  # with --ceiling: whether some frame alone reads each label


def frame_reads(frames: Sequence[np.ndarray], detector: PlateDetector, engine: OCREngine) -> set[str]:
    """The folded texts the reader reads from every detection of every frame, each frame on its own."""
    texts = set()
    for frame in frames:
        crops = [cut_crop(frame, d.box_xyxy) for d in detector.detect(frame)]
        texts |= {fold(r.text) for r in (engine.read(crops) if crops else []) if r is not None}
    return texts


def score_clip(
    scene: LabelledScene, events: Sequence[PlateEvent], blur_px: int, any_frame: set[str] | None = None
) -> ClipResult:
    """Match a clip's events (and, with --ceiling, its frames' own reads) to its labelled plates."""
    labels = tuple(p.text for p in scene.plates)
    texts = {e.text for e in events}
    folded = {fold(t) for t in texts}
    false = sum(1 for e in events if fold(e.text) not in {fold(label) for label in labels})
    offered = {fold(text) for e in events for text, _ in e.candidates} - folded
    return ClipResult(
        str(scene.image), labels, tuple(label in texts for label in labels),
        tuple(fold(label) in folded for label in labels), tuple((e.text, e.reads) for e in events), false, blur_px,
        tuple(fold(label) in offered for label in labels),
        None if any_frame is None else tuple(fold(label) in any_frame for label in labels),
    )  # fmt: skip


def summary(clips: Sequence[ClipResult], seconds: float) -> dict[str, Any]:
    """Vehicles read (strict, folded), events, mean reads per event, events that match no plate, vehicles
    fused away."""
    vehicles = sum(len(c.labels) for c in clips)
    events = [reads for c in clips for _, reads in c.events]
    ceiling = [c.any_frame for c in clips if c.any_frame is not None]
    return {
        "clips": len(clips),
        "vehicles": vehicles,
        "read": round(sum(sum(c.read) for c in clips) / vehicles, 4) if vehicles else 0.0,
        "read_folded": round(sum(sum(c.read_folded) for c in clips) / vehicles, 4) if vehicles else 0.0,
        "events": len(events),
        "reads_per_event": round(float(np.mean(events)), 2) if events else 0.0,
        "false_events": sum(c.false_events for c in clips),
        "clips_without_event": sum(1 for c in clips if not c.events),
        "fused_away": sum(sum(c.fused_away) for c in clips),
        "read_any_frame": round(sum(sum(a) for a in ceiling) / vehicles, 4) if ceiling and vehicles else None,
        "by_blur": by_blur(clips),
        "seconds": round(seconds, 1),
    }


def by_blur(clips: Sequence[ClipResult]) -> dict[str, dict[str, float]]:
    """Vehicles and the share read (folded) per motion blur length: what the reader loses to blur."""
    out = {}
    for blur in sorted({c.blur_px for c in clips}):
        group = [c for c in clips if c.blur_px == blur]
        vehicles = sum(len(c.labels) for c in group)
        read = sum(sum(c.read_folded) for c in group)
        out[str(blur)] = {"vehicles": vehicles, "read_folded": round(read / vehicles, 4) if vehicles else 0.0}
    return out


def run_all(
    scenes: Sequence[LabelledScene], args: argparse.Namespace, workdir: Path, console: Console
) -> list[ClipResult]:
    """Make, write and run every clip; the detector and the reader are loaded once for all of them."""
    base = load_config(args.config) if args.config else Settings()
    settings = base.model_copy(update={"ocr": base.ocr.model_copy(update={"engine": args.engine})})
    detector = detector_for(args.detector, settings.detector)
    engine = engine_for(args.engine, None, settings, detector)
    engine.warmup(1)
    reader = ReaderSlot(engine, model_version(engine))
    states = state_classifier(settings.state, threads=1) if settings.state.enabled else None
    style = ClipStyle(frames=args.frames, fps=args.fps)
    results = []
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("clips", total=len(scenes))
        for index, scene in enumerate(scenes):
            if args.blur and drawn_blur(style, np.random.default_rng([args.seed, index])) not in args.blur:
                bar.advance(task)
                continue
            photo = read_image(scene.image)
            if args.frame is not None:  # the photo at its own size in a larger camera frame
                photo, plates = far_view(photo, scene.plates, 1.0, args.frame)
                scene = LabelledScene(scene.image, plates)
            frames, blur = make_clip(photo, scene, style, np.random.default_rng([args.seed, index]))
            video = write_clip(frames, workdir / f"clip{index:05d}_{scene.image.stem}", style.fps, args.codec)
            events = run_clip(video, settings, detector, reader, workdir / f"run{index:05d}", states)
            if args.keep_clips is None:
                video.unlink()  # lossless clips take 3 MB each at 640x480: the temp folder need not hold them all
            ceiling = frame_reads(frames, detector, engine) if args.ceiling else None
            results.append(score_clip(scene, events, blur, ceiling))
            bar.advance(task)
    console.print(f"detector {args.detector}, reader {engine.name}", highlight=False)
    return results


def table(row: dict[str, Any], title: str) -> Table:
    out = Table(title=title)
    columns = ("clips", "vehicles", "read", "read folded", "events", "reads/event", "no-plate events", "no event",
               "fused away")  # fmt: skip
    ceiling = row["read_any_frame"] is not None
    for column in columns + (("any frame (folded)",) if ceiling else ()):
        out.add_column(column, justify="right")
    out.add_row(
        str(row["clips"]), str(row["vehicles"]), f"{row['read']:.1%}", f"{row['read_folded']:.1%}", str(row["events"]),
        f"{row['reads_per_event']:.2f}", str(row["false_events"]), str(row["clips_without_event"]),
        str(row["fused_away"]), *([f"{row['read_any_frame']:.1%}"] if ceiling else []),
    )  # fmt: skip
    return out


def blur_table(row: dict[str, Any]) -> Table:
    out = Table(title="read folded by the clip's motion blur (1 px: none)")
    for column in ("blur px", "vehicles", "read folded"):
        out.add_column(column, justify="right")
    for blur, group in row["by_blur"].items():
        out.add_row(blur, str(group["vehicles"]), f"{group['read_folded']:.1%}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=Path, required=True, help="MANIFEST.tsv (image_relpath x y w h plate_text)")
    parser.add_argument(
        "--detector",
        default="auto",
        help="auto (the configured detector), platenet (the bundled one), fast (its student), textdet:SIDE or a path",
    )
    parser.add_argument("--engine", default="auto", help="reader: auto, cascade, plateocr, paddle, easyocr or crnn")
    parser.add_argument(
        "--config", type=Path, default=None, help="a platepilot.yaml (tracker, reader policy); defaults without it"
    )
    parser.add_argument("--limit", type=int, default=None, help="only the first N scenes (a quick check)")
    parser.add_argument(
        "--frame", type=parse_frame, default=None, help="WIDTHxHEIGHT: set each photo in a frame this large (edges "
        "replicated) before the approach, as a wider camera sees it (default: the photo's own size)",
    )  # fmt: skip
    parser.add_argument("--frames", type=at_least_one, default=DEFAULT_STYLE.frames, help="frames per clip")
    parser.add_argument("--fps", type=float, default=DEFAULT_STYLE.fps, help="clip frame rate")
    parser.add_argument("--seed", type=int, default=0, help="pan, blur, noise and JPEG draws")
    parser.add_argument(
        "--blur", type=int, nargs="+", default=None, help="only the clips that draw these blur lengths (px, 1-5): "
        "the same clips as in a full run, for a quicker look at the blurred ones",
    )  # fmt: skip
    parser.add_argument(
        "--codec", choices=sorted(CODECS), default="ffv1", help="the clips' video: ffv1 (lossless, the default: the "
        "frames' JPEG is the camera's compression) or mp4v (a second, lossy compression on top)",
    )  # fmt: skip
    parser.add_argument(
        "--ceiling", action="store_true", help="also read every frame alone: what a perfect crop choice would reach"
    )
    parser.add_argument("--keep-clips", type=Path, default=None, help="write the clips here instead of a temp folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON to write (default: %(default)s)")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 110))
    try:
        scenes = read_manifest(args.scenes)[: args.limit]
        start = time.monotonic()
        if args.keep_clips is not None:
            args.keep_clips.mkdir(parents=True, exist_ok=True)
            clips = run_all(scenes, args, args.keep_clips, console)
        else:
            with tempfile.TemporaryDirectory(prefix="real_clips_") as tmp:
                clips = run_all(scenes, args, Path(tmp), console)
    except PlatepilotError as exc:
        fail(exc)
    row = summary(clips, time.monotonic() - start)
    console.print(table(row, f"{args.scenes}: one clip per scene, {args.frames} frames at {args.fps:g} fps"))
    console.print(blur_table(row))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = {"manifest": str(args.scenes), "detector": args.detector, "engine": args.engine, "limit": args.limit,
            "seed": args.seed, "config": str(args.config or ""), "frame": args.frame, "blur": args.blur,
            "codec": args.codec, **row,
            "per_clip": [asdict(c) for c in clips]}  # fmt: skip
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    one_line_errors(main)()
