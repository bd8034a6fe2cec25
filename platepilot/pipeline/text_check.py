"""Boxes a plate detector is unsure of must hold text: the bundled CRNN reads each, and one in which it
reads fewer than a plate's fewest characters is dropped.

Why: on the UCSD scenes the bundled detector's false boxes (95 on 246 photos) were tail lights and
headlights, car makers' emblems, store signs and foliage, most of them scored below 0.5, while the
plates it found either scored higher or read as three characters or more. Reading a box costs the
CRNN about a millisecond, against 25-85 ms of PlateOCR for every read of a false track.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from platepilot.config import DetectorConfig
from platepilot.detect import make_detector, resolved_kind
from platepilot.detect.base import PlateDetector
from platepilot.ocr.base import OCREngine
from platepilot.track.quality import cut_crop
from platepilot.types import Detection


def plate_detector(config: DetectorConfig, threads: int | None = None, still: bool = False) -> PlateDetector:
    """The runtime's detector: `make_detector`'s, and for every kind but textdet (whose boxes are text
    already) with its unsure boxes read by the bundled CRNN (`text_check_below` > 0).

    Here, not in `detect/`, because it reads: a room imports only from rooms upstream of it."""
    plain = make_detector(config, threads, still)
    if resolved_kind(config) == "textdet" or config.text_check_below <= 0:
        return plain
    from platepilot.ocr.crnn_service import CRNNOCRService
    from platepilot.ocr.models import BUNDLED_MODEL

    reader = CRNNOCRService(BUNDLED_MODEL, format_prior=False, threads=threads)
    return TextCheckedDetector(plain, reader, config.text_check_below, config.text_check_chars)


class TextCheckedDetector:
    """`detector`, keeping a box that scores below `below` only if `reader` reads at least `min_chars`
    characters in its crop (cut as the pilot cuts it)."""

    def __init__(self, detector: PlateDetector, reader: OCREngine, below: float, min_chars: int) -> None:
        self.detector = detector
        self.reader = reader
        self.below = below
        self.min_chars = min_chars
        self.name = detector.name
        self.whole_plates = detector.whole_plates
        self.box_margin = detector.box_margin
        self.model_path: Path | None = getattr(detector, "model_path", None)

    def detect(self, image: np.ndarray) -> list[Detection]:
        detections = self.detector.detect(image)
        unsure = [d for d in detections if d.score < self.below]
        if not unsure:
            return detections
        reads = self.reader.read([cut_crop(image, d.box_xyxy) for d in unsure])
        textless = {id(d) for d, read in zip(unsure, reads, strict=True) if len(read.text) < self.min_chars}
        return [d for d in detections if id(d) not in textless]
