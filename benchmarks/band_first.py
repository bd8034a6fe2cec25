"""Reading whole-plate crops with and without the middle band first (`ocr.band_sure`, `platepilot.ocr.band`).

    python benchmarks/band_first.py --scenes MANIFEST.tsv [--detector auto] [--engine cascade]
        [--sure 0.999 --sure 0.995 ...] [--rounds 3] [--limit N] [--out JSON]

Cuts the crop of every labelled plate of the scenes as the runtime cuts it (the detection covering most
of the plate, `cut_crop`), then reads all the crops with the engine built once per setting: without
the band (every crop's lines searched) and with each `--sure` (default: the config's). For each it
gives the share read right (folded), the share of crops whose lines were searched, and the median
milliseconds per crop over `--rounds` rounds taken in turns (crops read one at a time, as the runtime's
OCR worker does; the line finder's memory cleared before each). Prints a table and writes
benchmarks/results/band_first.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np
from pipeline_detector import detector_for
from realdata import ROOT, at_least_one, fail, one_line_errors
from rich.console import Console
from rich.progress import track
from rich.table import Table

from platepilot.config import DetectorConfig, Settings
from platepilot.detect import PlateDetector
from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.ocr.base import OCREngine
from platepilot.ocr.cascade import CascadeOCR
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.lines import PixelKey, PlateLineFinder, pixel_key
from platepilot.ocr.models import engine_for
from platepilot.pipeline.scene_eval import COVER_SHARE, covered_share
from platepilot.plates.charset import fold
from platepilot.plates.manifest import read_manifest
from platepilot.track.quality import cut_crop


def labelled_crops(manifest: Path, detector: PlateDetector, limit: int | None) -> list[tuple[np.ndarray, str]]:
    """(crop, label) of every labelled plate some detection covers, cut from its best-covering detection."""
    out = []
    for scene in track(read_manifest(manifest)[:limit], description="detecting"):
        image = read_image(scene.image)
        detections = detector.detect(image)
        for plate in scene.plates:
            best = max(detections, key=lambda d: covered_share(d.box_xyxy, plate.box_xywh), default=None)
            if best is not None and covered_share(best.box_xyxy, plate.box_xywh) >= COVER_SHARE:
                out.append((cut_crop(image, best.box_xyxy), plate.text))
    return out


def finder_of(engine: OCREngine) -> PlateLineFinder:
    """The line finder of the engine's CRNN (alone or first in the cascade)."""
    crnn = engine.first if isinstance(engine, CascadeOCR) else engine
    finder = crnn.line_finder if isinstance(crnn, CRNNOCRService) else None
    if finder is None:
        raise PlatepilotError(f"engine {engine.name!r} has no CRNN reading whole plates first; use cascade or crnn")
    return finder


def one_round(engine: OCREngine, crops: list[tuple[np.ndarray, str]]) -> tuple[float, int, int]:
    """(ms per crop, crops read right (folded), crops whose lines were searched) of one pass."""
    finder = finder_of(engine)
    finder.forget()
    searched: set[PixelKey] = set()  # crops whose lines were asked for at the first scale, by either reader
    lines = finder.lines

    def counted(crop: np.ndarray, max_side: int | None = None) -> np.ndarray:
        if max_side is None:
            searched.add(pixel_key(crop))
        return lines(crop, max_side)

    finder.lines = counted  # type: ignore[method-assign]
    try:
        start = time.perf_counter()
        reads = [engine.read([crop])[0] for crop, _ in crops]
        ms = 1e3 * (time.perf_counter() - start) / len(crops)
    finally:
        del finder.lines
    right = sum(fold(read.text) == fold(text) for read, (_, text) in zip(reads, crops, strict=True))
    return ms, right, len(searched)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenes", type=Path, required=True, help="MANIFEST.tsv of labelled scenes")
    parser.add_argument("--detector", default="auto", help="a whole-plate detector, as eval --detector takes it")
    parser.add_argument("--engine", default="cascade", help="cascade or crnn")
    parser.add_argument("--sure", type=float, action="append", default=None, help="ocr.band_sure; repeatable")
    parser.add_argument("--rounds", type=at_least_one, default=3)
    parser.add_argument("--limit", type=int, default=None, help="the first N scenes only")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "band_first.json")
    args = parser.parse_args()
    console = Console()
    base = Settings()
    settings: list[float | None] = [None, *(args.sure or [base.ocr.band_sure])]
    try:
        detector = detector_for(args.detector, DetectorConfig())
        if not detector.whole_plates:
            raise PlatepilotError(f"detector {args.detector!r} does not box whole plates: there is no band to read")
        crops = labelled_crops(args.scenes, detector, args.limit)
        if not crops:
            raise PlatepilotError(f"{args.scenes}: the detector covered no labelled plate")
        engines = {
            sure: engine_for(args.engine, None, Settings(ocr=base.ocr.model_copy(update={"band_sure": sure})), detector)
            for sure in settings
        }
        for engine in engines.values():
            finder_of(engine)
            engine.warmup(1)
        rounds: dict[float | None, list[tuple[float, int, int]]] = {sure: [] for sure in settings}
        for _ in track(range(args.rounds), description="reading in turns"):
            for sure, engine in engines.items():
                rounds[sure].append(one_round(engine, crops))
    except PlatepilotError as exc:
        fail(exc)
    rows: list[dict[str, Any]] = []
    for sure, runs in rounds.items():
        ms = statistics.median(r[0] for r in runs)
        rows.append({"band_sure": sure, "read_folded": runs[0][1] / len(crops), "searched": runs[0][2] / len(crops),
                     "ms_per_crop": round(ms, 1), "ms_rounds": [round(r[0], 1) for r in runs],
                     "vs_no_band": round(ms / statistics.median(r[0] for r in rounds[None]), 3)})  # fmt: skip
    table = Table(title=f"{args.engine} on {len(crops)} whole-plate crops of {args.scenes.parent.name}")
    for column in ("ocr.band_sure", "read (folded)", "lines searched", "ms per crop", "vs no band"):
        table.add_column(column, justify="right")
    for row in rows:
        sure = "null (no band)" if row["band_sure"] is None else f"{row['band_sure']:g}"
        table.add_row(sure, f"{row['read_folded']:.1%}", f"{row['searched']:.0%}", f"{row['ms_per_crop']:.1f}",
                      f"{row['vs_no_band']:.2f}x")  # fmt: skip
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {"scenes": str(args.scenes), "detector": args.detector, "engine": args.engine, "crops": len(crops),
              "rounds": args.rounds, "rows": rows}  # fmt: skip
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"written {args.out}")


if __name__ == "__main__":
    one_line_errors(main)()
