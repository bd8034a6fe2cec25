"""Default plate detector: recall on the real UCSD scenes, end to end with the reader, and speed on
720p demo frames.

A plate counts as found when one detection covers at least half of its box, and as read end to end
when the reader (`--engine`, default the runtime's `auto`) reads one such detection's crop (cut as
the runtime cuts it) as the label, O/0 and I/1 folded. Prints a table and writes
benchmarks/results/pipeline_detector.json.
The defaults are the runtime's: 640 px for video and streams, 960 px for image folders.
Usage: python benchmarks/pipeline_detector.py [--sides 640 960] [--engine auto|crnn|plateocr|paddle]
"""

from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import cv2
from realdata import DEFAULT_DATA

from platepilot.config import DetectorConfig, Settings
from platepilot.detect.textdet import TextDetParams, TextDetPlateDetector
from platepilot.ocr.base import OCREngine
from platepilot.ocr.models import make_engine
from platepilot.plates.charset import fold
from platepilot.sources.demo import DemoScene
from platepilot.track.quality import cut_crop

UCSD = DEFAULT_DATA / "ucsd_sandiego_ca"
RESULTS = Path(__file__).parent / "results" / "pipeline_detector.json"


def covered(box: tuple[float, ...], x: float, y: float, w: float, h: float) -> bool:
    iw = max(0.0, min(box[2], x + w) - max(box[0], x))
    ih = max(0.0, min(box[3], y + h) - max(box[1], y))
    return iw * ih >= 0.5 * w * h


def ucsd_recall(detector: TextDetPlateDetector, reader: OCREngine) -> tuple[float, float, float, float, int]:
    """(recall, read end to end, detections per image, ms per image, plates) over MANIFEST.tsv."""
    rows = list(csv.DictReader((UCSD / "MANIFEST.tsv").open(encoding="utf-8"), delimiter="\t"))
    found = read = detections = 0
    seconds = 0.0
    for row in rows:
        image = cv2.imread(str(UCSD / row["image_relpath"]))
        if image is None:
            raise SystemExit(f"{UCSD / row['image_relpath']}: unreadable")
        x, y, w, h = (float(row[k]) for k in "xywh")
        start = time.perf_counter()
        dets = detector.detect(image)
        seconds += time.perf_counter() - start
        detections += len(dets)
        hits = [d for d in dets if covered(d.box_xyxy, x, y, w, h)]
        found += bool(hits)
        texts = [r.text for r in reader.read([cut_crop(image, d.box_xyxy) for d in hits])] if hits else []
        read += fold(row["plate_text"]) in {fold(t) for t in texts}
    n = len(rows)
    return found / n, read / n, detections / n, 1000 * seconds / n, n


def speed_720p(detector: TextDetPlateDetector, frames: int = 20) -> float:
    """Mean milliseconds per 1280x720 demo frame (after one warm-up frame)."""
    scene = DemoScene(seed=0)
    images = [scene.render(i * 7)[0] for i in range(frames)]
    detector.detect(images[0])
    start = time.perf_counter()
    for image in images:
        detector.detect(image)
    return 1000 * (time.perf_counter() - start) / frames


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    defaults = DetectorConfig()
    sides = [defaults.textdet_max_side, defaults.textdet_still_max_side]
    parser.add_argument("--sides", type=int, nargs="+", default=sides, help=f"default {sides}: video, stills")
    parser.add_argument("--engine", default="auto", help="reader for the end-to-end column")
    args = parser.parse_args()
    results = []
    reader = make_engine(args.engine, None, Settings())
    print(f"reader: {reader.name}")
    role = {defaults.textdet_max_side: "video", defaults.textdet_still_max_side: "stills"}
    print(f"{'max_side':>8} {'default':>7} {'UCSD recall':>11} {'read e2e':>8} {'dets/img':>8} {'ms/img 640x480':>14} "
          f"{'ms/frame 720p':>13}")  # fmt: skip
    for side in args.sides:
        detector = TextDetPlateDetector(params=TextDetParams(max_side=side))
        recall, read, per_image, ms, plates = ucsd_recall(detector, reader)
        ms_720 = speed_720p(detector)
        results.append(
            {"max_side": side, "default_for": role.get(side), "ucsd_recall": recall,
             "ucsd_read_end_to_end": read, "ucsd_plates": plates, "detections_per_image": per_image,
             "ms_per_ucsd_image": ms, "ms_per_720p_frame": ms_720}
        )  # fmt: skip
        print(f"{side:>8} {role.get(side, '-'):>7} {recall:>11.3f} {read:>8.3f} {per_image:>8.2f} "
              f"{ms:>14.0f} {ms_720:>13.0f}")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"detector": "ppocr-textdet (PP-OCRv6 small det + plate filter)",
                                   "reader": reader.name, "results": results}, indent=2) + "\n")  # fmt: skip


if __name__ == "__main__":
    main()
