"""Scene evaluation of a detector, alone and with a reader, on labelled photos (MANIFEST.tsv).

It lives in `pipeline/` because it runs the runtime's chain on still images: detect, cut each box
as the pilot cuts it (`cut_crop`), read. The rules:
- a plate is *found* when a detection covers at least half of its box (`covers`);
- it is *read* when the reader reads one covering detection's crop as its label: `read` compares
  exactly, `read_folded` after folding O->0 and I->1 on both sides (`plates.charset.fold`);
- a *false detection* covers no labelled plate of its image by that rule.
`ms_per_image` is the detector's time alone (the reader's time depends on how many boxes it gets).
Every plate not read exactly is kept as a `PlateMiss`; `write_scene_report` shows them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.console import Console
from rich.progress import Progress

from platepilot.config import DetectorConfig
from platepilot.detect import PlateDetector
from platepilot.detect.textdet import TextDetPlateDetector
from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.levels import stretched
from platepilot.ocr.base import OCREngine
from platepilot.ocr.evaluate import write_report_tiles
from platepilot.pipeline.text_check import plate_detector
from platepilot.plates.charset import fold
from platepilot.plates.manifest import LabelledPlate, LabelledScene
from platepilot.track.quality import cut_crop
from platepilot.types import BoxXYXY, Detection

COVER_SHARE = 0.5
"""Share of a plate's box a detection must cover for that plate to count as found."""

DETECTOR_NAMES = ("auto", "platenet", "fast", "textdet")


def covers(box: BoxXYXY, plate_xywh: tuple[float, float, float, float], share: float = COVER_SHARE) -> bool:
    """Whether the detection `box` (x1, y1, x2, y2) covers at least `share` of the plate's (x, y, w, h) box.

    Covering, not IoU: a whole-plate box and a serial-line box both cover the plate they found, and a
    box much larger than the plate still counts (the reader then has to cope with it)."""
    return covered_share(box, plate_xywh) >= share


def covered_share(box: BoxXYXY, plate_xywh: tuple[float, float, float, float]) -> float:
    """The share of the plate's (x, y, w, h) box that the box (x1, y1, x2, y2) covers, 0 to 1."""
    x, y, w, h = plate_xywh
    iw = max(0.0, min(box[2], x + w) - max(box[0], x))
    ih = max(0.0, min(box[3], y + h) - max(box[1], y))
    return iw * ih / (w * h)


def detector_label(detector: PlateDetector) -> str:
    """A detector as results name it: `ppocr-textdet@640` (its size), `platenet:<model file>`."""
    if isinstance(detector, TextDetPlateDetector):
        return f"{detector.name}@{detector.params.max_side}"
    path = getattr(detector, "model_path", None)
    return f"{detector.name}:{path}" if path is not None else detector.name


def named_detector(
    name: str,
    config: DetectorConfig,
    textdet_side: int | None = None,
    threads: int | None = None,
    still: bool = False,
) -> PlateDetector:
    """The detector `name` means: `auto` is the configured one (`config`), `platenet` the bundled plate
    detector, `fast` its bundled student, `textdet` the text detector at `textdet_side` (default: the
    config's size), anything else the path of an ONNX detector; each at its video size or, `still`, at
    its still-image size, as the runtime reads a folder of photos (`plate_detector`)."""
    if textdet_side is not None and name != "textdet":
        raise PlatepilotError(f"a text detector side ({textdet_side}) goes with detector textdet, not {name!r}")
    if name == "auto":
        return plate_detector(config, threads, still)
    if name in ("platenet", "fast"):
        return plate_detector(config.model_copy(update={"kind": name, "model_path": None}), threads, still)
    if name == "textdet":
        sides = (
            {} if textdet_side is None else {"textdet_max_side": textdet_side, "textdet_still_max_side": textdet_side}
        )
        return plate_detector(config.model_copy(update={"kind": "textdet", **sides}), threads, still)
    path = Path(name)
    if not path.is_file():
        names = f"{', '.join(DETECTOR_NAMES[:-1])} or {DETECTOR_NAMES[-1]}"
        raise PlatepilotError(f"detector {name!r}: not {names}, and no such model file")
    return plate_detector(config.model_copy(update={"kind": "auto", "model_path": path}), threads, still)


@dataclass(frozen=True, slots=True)
class PlateMiss:
    """A labelled plate the chain did not read exactly: the texts read from the detections covering it
    (`reads`, none when it was not found) and the boxes of every detection touching it (`boxes`)."""

    image: Path
    box_xywh: tuple[float, float, float, float]
    text: str
    reads: tuple[str, ...]
    boxes: tuple[BoxXYXY, ...]

    @property
    def found(self) -> bool:
        return bool(self.reads)

    def caption(self) -> str:
        """`LABEL / read` (several reads joined by commas; `not found` when none)."""
        return f"{self.text} / {', '.join(r or '-' for r in self.reads) if self.reads else 'not found'}"


@dataclass(frozen=True, slots=True)
class SceneCounts:
    """What one image adds up to (see the module doc for the rules)."""

    plates: int
    found: int
    read: int
    read_folded: int
    false_detections: int
    corrected: int  # plates whose label a known label error corrected
    read_as_labelled: int  # reads that match the label as written
    crops_read: int  # detections read (those covering a plate)


def score_scene(
    image: np.ndarray, path: Path, plates: Sequence[LabelledPlate], detections: Sequence[Detection], reader: OCREngine
) -> tuple[SceneCounts, list[PlateMiss]]:
    """Count one image (at `path`) and list its misses: `reader` reads the crop of every detection that
    covers a plate, in one batch."""
    covering = [[d for d in detections if covers(d.box_xyxy, p.box_xywh)] for p in plates]
    useful = list({id(d): d for hits in covering for d in hits}.values())
    reads = reader.read([cut_crop(image, d.box_xyxy) for d in useful]) if useful else []
    text_of = {id(d): r.text for d, r in zip(useful, reads, strict=True)}
    read = read_folded = read_as_labelled = 0
    misses = []
    for plate, hits in zip(plates, covering, strict=True):
        texts = {text_of[id(d)] for d in hits}
        read += plate.text in texts
        if plate.text not in texts:
            touching = tuple(d.box_xyxy for d in detections if covered_share(d.box_xyxy, plate.box_xywh) > 0)
            misses.append(PlateMiss(path, plate.box_xywh, plate.text, tuple(text_of[id(d)] for d in hits), touching))
        read_folded += fold(plate.text) in {fold(t) for t in texts}
        read_as_labelled += plate.label in texts
    false = sum(1 for d in detections if not any(covers(d.box_xyxy, p.box_xywh) for p in plates))
    corrected = sum(1 for p in plates if p.as_labelled is not None)
    found = sum(1 for hits in covering if hits)
    counts = SceneCounts(len(plates), found, read, read_folded, false, corrected, read_as_labelled, len(useful))
    return counts, misses


@dataclass(frozen=True, slots=True)
class SceneEval:
    """Totals over a manifest; `seconds` is the detector's time over all `images`, `read_seconds` the
    reader's over all `crops_read` (cutting the crops included)."""

    detector: str
    engine: str
    images: int
    plates: int
    found: int
    read: int
    read_folded: int
    false_detections: int
    corrected: int
    read_as_labelled: int
    crops_read: int
    seconds: float
    read_seconds: float = 0.0
    misses: tuple[PlateMiss, ...] = ()

    @property
    def recall(self) -> float:
        return self.found / self.plates if self.plates else 0.0

    @property
    def read_e2e(self) -> float:
        return self.read / self.plates if self.plates else 0.0

    @property
    def read_e2e_folded(self) -> float:
        return self.read_folded / self.plates if self.plates else 0.0

    @property
    def read_e2e_as_labelled(self) -> float:
        """Strict reads against the manifest's labels as written (known label errors not corrected)."""
        return self.read_as_labelled / self.plates if self.plates else 0.0

    @property
    def fp_per_image(self) -> float:
        return self.false_detections / self.images if self.images else 0.0

    @property
    def ms_per_image(self) -> float:
        return 1000 * self.seconds / self.images if self.images else 0.0

    @property
    def ms_per_read(self) -> float:
        return 1000 * self.read_seconds / self.crops_read if self.crops_read else 0.0

    def to_json(self) -> dict[str, Any]:
        """`n` (plates), `recall`, `read_e2e`, `read_e2e_folded`, `fp_per_image`, `ms_per_image`, then
        `ms_per_read` (the reader's time per crop it read), `images`, `detector`, `engine`, and with known
        label errors corrected, `labels_corrected` and `read_e2e_as_labelled`."""
        return {
            "n": self.plates,
            "recall": round(self.recall, 4),
            "read_e2e": round(self.read_e2e, 4),
            "read_e2e_folded": round(self.read_e2e_folded, 4),
            "fp_per_image": round(self.fp_per_image, 4),
            "ms_per_image": round(self.ms_per_image, 1),
            "ms_per_read": round(self.ms_per_read, 1),
            "images": self.images,
            "detector": self.detector,
            "engine": self.engine,
            **self._errata_json(),
        }

    def _errata_json(self) -> dict[str, Any]:
        if not self.corrected:
            return {}
        return {"labels_corrected": self.corrected, "read_e2e_as_labelled": round(self.read_e2e_as_labelled, 4)}


def evaluate_scenes(
    scenes: Sequence[LabelledScene],
    detector: PlateDetector,
    reader: OCREngine,
    console: Console | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> SceneEval:
    """Detect and read every scene (see the module doc); a progress bar on `console` when given.

    The detector runs once on the first image before timing starts (session warm-up). An unreadable
    image raises PlatepilotError naming it."""
    if scenes:
        detector.detect(read_image(scenes[0].image))
    counts = []
    misses: list[PlateMiss] = []
    seconds = read_seconds = 0.0
    with Progress(console=console, transient=True, disable=console is None) as bar:
        task = bar.add_task(f"{detector_label(detector)} + {reader.name}", total=len(scenes))
        for scene in scenes:
            photo = read_image(scene.image)
            plates = _in_image(scene, photo.shape[1], photo.shape[0])
            start = timer()
            image = stretched(photo)  # as the runtime levels a flat frame
            detections = detector.detect(image)
            seconds += timer() - start
            start = timer()
            scored, missed = score_scene(image, scene.image, plates, detections, reader)
            read_seconds += timer() - start
            counts.append(scored)
            misses.extend(missed)
            bar.advance(task)
    total = {f.name: sum(getattr(c, f.name) for c in counts) for f in fields(SceneCounts)}
    return SceneEval(
        detector_label(detector), reader.name, len(scenes), seconds=seconds, read_seconds=read_seconds,
        misses=tuple(misses), **total,
    )  # fmt: skip


def _in_image(scene: LabelledScene, width: int, height: int) -> tuple[LabelledPlate, ...]:
    """The scene's plates, each box cut to the image: a plate at the photo's edge is found by a box over
    half of what the photo shows of it (its labelled box running past the edge could never be half
    covered). PlatepilotError naming the image and box when a plate lies wholly outside its image (photos
    scaled down after labelling): it would count as a plate no detector can find."""
    plates = []
    for plate in scene.plates:
        x, y, w, h = plate.box_xywh
        if x >= width or y >= height or x + w <= 0 or y + h <= 0:
            raise PlatepilotError(
                f"{scene.image}: the box of {plate.label} (x {x:g} y {y:g} w {w:g} h {h:g}) lies outside "
                f"the {width}x{height} image; was the photo resized after labelling?"
            )
        x1, y1, x2, y2 = max(x, 0.0), max(y, 0.0), min(x + w, float(width)), min(y + h, float(height))
        plates.append(replace(plate, box_xywh=(x1, y1, x2 - x1, y2 - y1)))
    return tuple(plates)


def write_scene_report(result: SceneEval, folder: Path) -> None:
    """`folder/report.json` (the summary and every plate not read exactly: label, box, reads, touching
    boxes) and `folder/worst_errors.png`: each miss in its surroundings, its labelled box in green and
    the detections touching it in red, captioned `LABEL / read` (plates not found first)."""
    misses = sorted(result.misses, key=lambda m: m.found)
    report = {
        **result.to_json(),
        "misses": [
            {
                "image": str(m.image), "box_xywh": list(m.box_xywh), "text": m.text, "found": m.found,
                "reads": list(m.reads), "boxes_xyxy": [[round(v, 1) for v in b] for b in m.boxes],
            }
            for m in misses
        ],
    }  # fmt: skip
    shown = misses[:SHEET_MISSES]
    write_report_tiles(folder, report, [_surroundings(m) for m in shown], [m.caption() for m in shown], SHEET_CELL)


SHEET_MISSES = 36
SHEET_CELL = (240, 160)  # (w, h) of one miss on the sheet


def _surroundings(miss: PlateMiss) -> np.ndarray:
    """The miss's image around its plate (a plate width each side, 1.5 heights above, 2.5 below: the
    aspect of SHEET_CELL for a 2:1 plate), the labelled box in green, touching detections in red."""
    image = read_image(miss.image).copy()
    for box in miss.boxes:
        cv2.rectangle(image, _corner(box[:2]), _corner(box[2:]), (0, 0, 255), 2)
    x, y, w, h = miss.box_xywh
    cv2.rectangle(image, _corner((x, y)), _corner((x + w, y + h)), (0, 200, 0), 1)
    return cut_crop(image, (x - w, y - 1.5 * h, x + 2 * w, y + 2.5 * h))


def _corner(point: Sequence[float]) -> tuple[int, int]:
    return round(point[0]), round(point[1])
