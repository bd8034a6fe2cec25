"""Plates far from the camera: every scene of a MANIFEST shrunk and set in a video frame, detectors side by side.

Road cameras see plates smaller than close-up photos show them: a plate 40 px wide in a 1280x720
frame reaches a detector with a 640 px input 20 px wide. Each photo is scaled by each `--shares`
value (INTER_AREA, as a farther camera sees it) and set in the middle of a `--frame` frame (1280x720)
with its edge pixels replicated (no mirrored copies of plates); the labelled boxes move with it. Then
each `--detectors` entry is scored by `platepilot eval --scenes`' rules (recall, end-to-end reads
strict and folded, false boxes per image, ms per image; `pipeline_detector.py`). The labels are the
manifest's own (a KNOWN_LABEL_ERRORS.tsv beside it is applied). Share 1 is the photo at its own size
in the frame. Prints a table and writes benchmarks/results/far_scenes.json.
Usage: python benchmarks/far_scenes.py --scenes MANIFEST.tsv [--shares 1 0.7 0.5] [--frame 1280x720]
    [--detectors platenet platenet:stills fast] [--engine auto] [--config platepilot.yaml] [--limit N]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from dataclasses import replace
from functools import cache, partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pipeline_detector import detector_for
from realdata import in_temp_folder
from rich.console import Console
from rich.table import Table

from platepilot.config import DetectorConfig, Settings, load_config
from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.ocr.models import make_engine
from platepilot.pipeline.scene_eval import evaluate_scenes
from platepilot.plates.manifest import LabelledPlate, LabelledScene, read_manifest
from platepilot.plates.scenes import seen_farther

RESULTS = Path(__file__).parent / "results" / "far_scenes.json"


def parse_frame(text: str) -> tuple[int, int]:
    """`1280x720` -> (1280, 720)."""
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit()) or int(width) < 16 or int(height) < 16:
        raise argparse.ArgumentTypeError(f"frame size must be WIDTHxHEIGHT, e.g. 1280x720, got {text!r}")
    return int(width), int(height)


def far_view(
    photo: np.ndarray, plates: Sequence[LabelledPlate], share: float, frame: tuple[int, int]
) -> tuple[np.ndarray, tuple[LabelledPlate, ...]]:
    """`photo` as `seen_farther` sets it in a `frame` (width, height) frame, and its `plates` moved with it."""
    xyxy = [(x, y, x + w, y + h) for x, y, w, h in (p.box_xywh for p in plates)]
    image, boxes = seen_farther(photo, np.array(xyxy, np.float32), share, frame)
    moved = tuple(
        replace(p, box_xywh=(float(x1), float(y1), float(x2 - x1), float(y2 - y1)))
        for p, (x1, y1, x2, y2) in zip(plates, boxes, strict=True)
    )
    return image, moved


def far_scene(scene: LabelledScene, share: float, frame: tuple[int, int], folder: Path) -> LabelledScene:
    """`scene` as `far_view` sets it, its image written under `folder`."""
    image, plates = far_view(read_image(scene.image), scene.plates, share, frame)
    path = folder / f"{share:g}" / scene.image.name
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 95]):
        raise PlatepilotError(f"{path}: cannot write the shrunk scene")
    return LabelledScene(path, plates)


def table(rows: Sequence[dict[str, Any]], frame: tuple[int, int]) -> Table:
    out = Table(title=f"Scenes shrunk into {frame[0]}x{frame[1]} frames")
    columns = ("share", "median plate px", "detector", "recall", "read e2e", "folded", "false/img", "ms/img")
    for column in columns:
        out.add_column(column, justify="left" if column == "detector" else "right")
    for row in rows:
        out.add_row(
            f"{row['share']:g}", f"{row['median_plate_width']:.0f}", Path(row["spec"]).name, f"{row['recall']:.1%}",
            f"{row['read_e2e']:.1%}", f"{row['read_e2e_folded']:.1%}", f"{row['fp_per_image']:.2f}",
            f"{row['ms_per_image']:.0f}",
        )  # fmt: skip
    return out


def measure(args: argparse.Namespace, folder: Path, console: Console) -> list[dict[str, Any]]:
    """One row per share and detector; each detector and reader is loaded once."""
    scenes = read_manifest(args.scenes)[: args.limit]
    readers = cache(partial(make_engine, args.engine, None, load_config(args.config) if args.config else Settings()))
    detectors = {spec: detector_for(spec, DetectorConfig()) for spec in args.detectors}
    rows = []
    for share in args.shares:
        far = [far_scene(scene, share, args.frame, folder) for scene in scenes]
        widths = [p.box_xywh[2] for scene in far for p in scene.plates]
        for spec, detector in detectors.items():
            reader = readers(detector.whole_plates, detector.box_margin)
            result = evaluate_scenes(far, detector, reader, console=console)
            rows.append({"share": share, "median_plate_width": float(np.median(widths)) if widths else 0.0,
                         **result.to_json(), "spec": spec})  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=Path, required=True, help="MANIFEST.tsv (image_relpath x y w h plate_text)")
    parser.add_argument("--shares", type=float, nargs="+", default=[1.0, 0.7, 0.5], help="photo scale factors")
    parser.add_argument("--frame", type=parse_frame, default=(1280, 720), help="frame size WIDTHxHEIGHT")
    parser.add_argument(
        "--detectors",
        nargs="+",
        default=["platenet"],
        help="platenet, fast, auto, textdet:SIDE or ONNX paths; NAME:stills at the still-image size",
    )
    parser.add_argument("--engine", default="auto", help="reader for the end-to-end columns")
    parser.add_argument("--config", type=Path, default=None, help="a platepilot.yaml (its reader settings)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N scenes (a quick check)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON to write (default: %(default)s)")
    args = parser.parse_args()
    if any(not 0 < share <= 4 for share in args.shares):
        parser.error("--shares must be in (0, 4]")
    console = Console(width=max(Console().width, 110))
    rows = in_temp_folder("far_scenes_", lambda folder: measure(args, folder, console))
    console.print(table(rows, args.frame))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = {"manifest": str(args.scenes), "frame": list(args.frame), "engine": args.engine, "limit": args.limit,
            "config": str(args.config or ""), "results": rows}  # fmt: skip
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
