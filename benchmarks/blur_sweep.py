"""What motion blur costs the reader, one blur length at a time, side by side for several readers.

Every scene of a MANIFEST.tsv is recorded as a moving camera records it (`plates.blur.exposed`: a
`--blur` px line within 30 degrees of horizontal, then sensor noise and JPEG drawn from the approach
clips' ranges; one draw per scene and length, the same for every reader), then:
- found / read end to end: the detector and PlateOCR with that CRNN as its member, by `eval --scenes`'
  rules (a box covering half the plate; its crop read as the label);
- true box: the labelled plate box (grown 5%, as the runtime cuts) read by PlateOCR and by the CRNN alone.
All reads are folded (O/0, I/1). The approach clips (`real_clips.py`) report the same blur lengths per
vehicle; this separates the reader from tracking and fusion.
Every (model, `--deblur-below` value) pair is a reader, so deblurring is measured side by side too.
Usage: python benchmarks/blur_sweep.py --scenes MANIFEST.tsv [--blur 1 3 5] [--model PATH ...]
    [--deblur-below 0 0.99] [--limit N] [--seed S] [--out JSON]
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pipeline_detector import detector_for
from realdata import in_temp_folder
from rich.console import Console
from rich.table import Table

from platepilot.config import DetectorConfig, Settings
from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.ocr.base import OCREngine
from platepilot.ocr.models import BUNDLED_MODEL, engine_for, make_engine
from platepilot.pipeline.scene_eval import evaluate_scenes
from platepilot.plates.blur import CAMERA_JPEG_QUALITY, CAMERA_NOISE_SIGMA, exposed
from platepilot.plates.charset import fold
from platepilot.plates.manifest import LabelledScene, read_manifest
from platepilot.track.quality import cut_crop

RESULTS = Path(__file__).parent / "results" / "blur_sweep.json"


def blurred_scene(scene: LabelledScene, index: int, blur: int, seed: int, folder: Path) -> LabelledScene:
    """`scene` recorded with a `blur` px motion blur (draws seeded by scene and length), written losslessly
    under `folder` (the JPEG of the recording is already in its pixels)."""
    rng = np.random.default_rng([seed, index, blur])
    angle, sigma = float(rng.uniform(-30, 30)), float(rng.uniform(*CAMERA_NOISE_SIGMA))
    quality = int(rng.integers(CAMERA_JPEG_QUALITY[0], CAMERA_JPEG_QUALITY[1] + 1))
    image = exposed(read_image(scene.image), blur, angle, sigma, quality, rng)
    path = folder / str(blur) / f"{index:05d}_{scene.image.stem}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), image):
        raise PlatepilotError(f"{path}: cannot write the blurred scene")
    return LabelledScene(path, scene.plates)


def true_box_reads(scenes: Sequence[LabelledScene], reader: OCREngine) -> float:
    """Share of plates `reader` reads (folded) from the crops of their labelled boxes."""
    plates = [(read_image(s.image), p) for s in scenes for p in s.plates]
    crops = [cut_crop(image, (x, y, x + w, y + h)) for image, p in plates for x, y, w, h in [p.box_xywh]]
    reads = reader.read(crops) if crops else []
    right = sum(r is not None and fold(r.text) == fold(p.text) for r, (_, p) in zip(reads, plates, strict=True))
    return right / len(plates) if plates else 0.0


def measure(args: argparse.Namespace, folder: Path, console: Console) -> list[dict[str, Any]]:
    """One row per blur length and model; the detector is loaded once, each model's readers once."""
    scenes = read_manifest(args.scenes)[: args.limit]
    detector = detector_for("auto", DetectorConfig())
    readers = {}
    for model in args.model:
        for below in args.deblur_below:
            settings = Settings()
            settings = settings.model_copy(update={"ocr": settings.ocr.model_copy(update={"deblur_below": below})})
            readers[model, below] = {
                "e2e": engine_for("plateocr", model, settings, detector),
                "plateocr": make_engine("plateocr", model, settings),
                "crnn": make_engine("crnn", model, settings),
            }
    rows = []
    for blur in args.blur:
        blurred = [blurred_scene(scene, i, blur, args.seed, folder) for i, scene in enumerate(scenes)]
        for (model, below), reader in readers.items():
            result = evaluate_scenes(blurred, detector, reader["e2e"], console=console).to_json()
            rows.append({
                "blur_px": blur, "model": str(model), "deblur_below": below, "n": result["n"],
                "found": result["recall"],
                "read_e2e_folded": result["read_e2e_folded"],
                "true_box_plateocr": round(true_box_reads(blurred, reader["plateocr"]), 4),
                "true_box_crnn": round(true_box_reads(blurred, reader["crnn"]), 4),
            })  # fmt: skip
    return rows


def table(rows: Sequence[dict[str, Any]]) -> Table:
    out = Table(title="Motion blur: plates found and read (folded)")
    columns = ("blur px", "CRNN model", "deblur below", "plates", "found", "read e2e", "true box: PlateOCR",
               "true box: CRNN")  # fmt: skip
    for column in columns:
        out.add_column(column, justify="left" if column == "CRNN model" else "right")
    for row in rows:
        out.add_row(
            str(row["blur_px"]), Path(row["model"]).parent.name + "/" + Path(row["model"]).name,
            str(row["deblur_below"]), str(row["n"]),
            f"{row['found']:.1%}", f"{row['read_e2e_folded']:.1%}", f"{row['true_box_plateocr']:.1%}",
            f"{row['true_box_crnn']:.1%}",
        )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=Path, required=True, help="MANIFEST.tsv (image_relpath x y w h plate_text)")
    parser.add_argument("--blur", type=int, nargs="+", default=[1, 3, 5], help="motion blur lengths in px (1: none)")
    parser.add_argument(
        "--model", type=Path, action="append", default=None, help="CRNN ONNX model (repeatable; default: bundled)"
    )
    parser.add_argument(
        "--deblur-below", type=float, nargs="+", default=[Settings().ocr.deblur_below],
        help="ocr.deblur_below values read side by side (0: no deblurring; default: the default setting)",
    )  # fmt: skip
    parser.add_argument("--limit", type=int, default=None, help="only the first N scenes (a quick check)")
    parser.add_argument("--seed", type=int, default=0, help="blur angle, noise and JPEG draws")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON to write (default: %(default)s)")
    args = parser.parse_args()
    args.model = args.model or [BUNDLED_MODEL]
    if any(not 1 <= blur <= 31 for blur in args.blur):
        parser.error("--blur lengths must be 1-31 px")
    if any(not 0 <= below <= 1 for below in args.deblur_below):
        parser.error("--deblur-below values must be 0-1")
    console = Console(width=max(Console().width, 110))
    rows = in_temp_folder("blur_sweep_", lambda folder: measure(args, folder, console))
    console.print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = {"manifest": str(args.scenes), "seed": args.seed, "limit": args.limit, "results": rows}
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
