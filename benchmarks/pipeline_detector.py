"""Plate detectors side by side in one run: recall and end-to-end reads on the real UCSD scenes, false
detections, and speed on UCSD images and on 720p demo frames.

The rules are `platepilot eval --scenes` (platepilot/pipeline/scene_eval.py): a plate is found when a
detection covers at least half of its box, read when the reader (`--engine`) reads one such
detection's crop (cut as the runtime cuts it) as the label, strict and O/0 I/1 folded; a false
detection covers no plate. `--detectors` takes `platenet` (the bundled detector), `auto`, `textdet:SIDE` (the
text detector at that longest side; 640 is the video default) or the path of an ONNX detector.
The speed column compares the median ms per 720p frame with `textdet:640`'s, the detectors timed in
turns round after round in the same run.
Prints a table and writes benchmarks/results/pipeline_detector.json.
Usage: python benchmarks/pipeline_detector.py [--detectors platenet textdet:640 textdet:960] [--engine auto]
    [--limit N] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable, Sequence
from functools import cache, partial
from pathlib import Path
from typing import Any

import numpy as np
from realdata import DEFAULT_DATA
from rich.console import Console
from rich.table import Table

from platepilot.config import DetectorConfig, Settings
from platepilot.detect import PlateDetector
from platepilot.errors import PlatepilotError
from platepilot.ocr.base import OCREngine
from platepilot.ocr.models import make_engine
from platepilot.pipeline.scene_eval import evaluate_scenes, named_detector
from platepilot.plates.manifest import LabelledScene, read_manifest
from platepilot.sources.demo import DemoScene

UCSD = DEFAULT_DATA / "ucsd_sandiego_ca" / "MANIFEST.tsv"
RESULTS = Path(__file__).parent / "results" / "pipeline_detector.json"
REFERENCE = "textdet:640"
DEFAULT_DETECTORS = ["platenet", REFERENCE, "textdet:960"]


def detector_for(spec: str, config: DetectorConfig, still: bool = False) -> PlateDetector:
    """`textdet:SIDE` -> the text detector at SIDE; `NAME:raw` -> NAME without the text check
    (`detector.text_check_below: 0`); `NAME:stills` -> NAME at its still-image size (`eval --stills`);
    anything else as `eval --detector` takes it."""
    if spec.endswith(":raw"):
        return detector_for(spec.removesuffix(":raw"), config.model_copy(update={"text_check_below": 0.0}), still)
    if spec.endswith(":stills"):
        return detector_for(spec.removesuffix(":stills"), config, still=True)
    name, _, side = spec.partition(":") if spec.startswith("textdet:") else (spec, "", "")
    if side and not side.isdigit():
        raise PlatepilotError(f"detector {spec!r}: the side after 'textdet:' must be pixels, e.g. textdet:640")
    return named_detector(name, config, int(side) if side else None, still=still)


def demo_frames(frames: int = 20) -> list[np.ndarray]:
    """1280x720 demo frames, a vehicle in each."""
    scene = DemoScene(seed=0)
    return [scene.render(i * 7)[0] for i in range(frames)]


def speed_720p(detectors: dict[str, PlateDetector], images: list[np.ndarray], rounds: int) -> dict[str, float]:
    """Median milliseconds per 720p frame of each detector, all of them timed in turns round after round
    (after one warm-up frame each), so a busy spell of the machine weighs on every one alike."""
    for detector in detectors.values():
        detector.detect(images[0])
    times: dict[str, list[float]] = {spec: [] for spec in detectors}
    for _ in range(rounds):
        for spec, detector in detectors.items():
            start = time.perf_counter()
            for image in images:
                detector.detect(image)
            times[spec].append(1000 * (time.perf_counter() - start) / len(images))
    return {spec: statistics.median(values) for spec, values in times.items()}


def measure(
    detector: PlateDetector,
    spec: str,
    scenes: Sequence[LabelledScene],
    readers: Callable[[bool, tuple[float, float]], OCREngine],
    console: Console,
) -> dict[str, Any]:
    """One detector's row: its `eval --scenes` summary on the scenes; `readers` gives the reader for the
    detector's crops (whole plates or serial lines), as the runtime builds it."""
    result = evaluate_scenes(scenes, detector, readers(detector.whole_plates, detector.box_margin), console=console)
    return {"spec": spec, **result.to_json()}


def table(rows: list[dict[str, Any]]) -> Table:
    """The side-by-side table of the detectors that ran (a model path shows as its file name)."""
    out = Table(title="Plate detectors on UCSD (real scenes) and 720p demo frames")
    columns = ("detector", "recall", "read e2e", "folded", "as labelled", "false/img", "ms/UCSD img", "ms/720p",
               "vs textdet:640")  # fmt: skip
    for column in columns:
        out.add_column(column, justify="left" if column == "detector" else "right")
    for row in rows:
        if "error" not in row:
            ratio = row.get("speed_vs_textdet_640")
            out.add_row(
                Path(row["spec"]).name, f"{row['recall']:.1%}", f"{row['read_e2e']:.1%}",
                f"{row['read_e2e_folded']:.1%}", f"{row.get('read_e2e_as_labelled', row['read_e2e']):.1%}",
                f"{row['fp_per_image']:.2f}", f"{row['ms_per_image']:.0f}",
                f"{row['ms_per_720p_frame']:.0f}", "-" if ratio is None else f"{ratio:.2f}x",
            )  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--detectors",
        nargs="+",
        default=DEFAULT_DETECTORS,
        help="platenet, fast, auto, textdet:SIDE or ONNX paths; NAME:raw without the text check, "
        "NAME:stills at the still-image size",
    )
    parser.add_argument("--engine", default="auto", help="reader for the end-to-end columns")
    parser.add_argument("--limit", type=int, default=None, help="only the first N UCSD images (a quick check)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of 20 720p frames per detector, in turns")
    args = parser.parse_args()
    if args.rounds < 1 or (args.limit is not None and args.limit < 1):
        parser.error("--rounds and --limit must be at least 1")
    console = Console(width=max(Console().width, 110))  # the table's width even when piped to a file
    if not UCSD.is_file():
        console.print(f"no UCSD scenes at {UCSD}: nothing to measure (set PLATEPILOT_REAL_DATA)")
        return
    scenes = read_manifest(UCSD)[: args.limit]
    readers = cache(partial(make_engine, args.engine, None, Settings()))
    console.print(f"{len(scenes)} UCSD images, reader {args.engine}")
    rows, detectors = [], {}
    for spec in args.detectors:
        try:
            detector = detector_for(spec, DetectorConfig())
            rows.append(measure(detector, spec, scenes, readers, console))
            detectors[spec] = detector
        except PlatepilotError as exc:
            rows.append({"spec": spec, "error": str(exc)})
    speeds = speed_720p(detectors, demo_frames(), args.rounds)
    for row in rows:
        if row["spec"] in speeds:
            row["ms_per_720p_frame"] = round(speeds[row["spec"]], 1)
    reference = next((r for r in rows if r["spec"] == REFERENCE and "error" not in r), None)
    for row in rows:
        if reference is not None and "error" not in row:
            row["speed_vs_textdet_640"] = round(row["ms_per_720p_frame"] / reference["ms_per_720p_frame"], 3)
    console.print(table(rows))
    for row in rows:
        if "error" in row:
            console.print(f"{row['spec']}: not measured: {row['error']}", highlight=False, emoji=False, markup=False)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    data = {"manifest": str(UCSD), "limit": args.limit, "engine": args.engine, "rounds": args.rounds, "results": rows}
    RESULTS.write_text(json.dumps(data, indent=2) + "\n")
    console.print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
