"""PaddleOCR's recogniser (PP-OCRv6 small, shipped as ONNX inside the `rapidocr` wheel) as an OCREngine.

Reads the whole crop with the recogniser only: the baseline every CRNN is measured against. The
PaddleOCR + EasyOCR ensemble (line picking with the detector, voting) builds on this member.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from platepilot.errors import missing_extra
from platepilot.plates.charset import normalize
from platepilot.plates.formats import match_format
from platepilot.types import PlateRead


class PaddleRecognizer:
    """`read` is safe from many threads: rapidocr's pipeline object is not, so calls are serialised."""

    name = "paddle"

    def __init__(self) -> None:
        try:
            from rapidocr import RapidOCR
        except ImportError as exc:
            raise missing_extra("rapidocr", "ensemble") from exc
        self._engine = RapidOCR()
        self._lock = threading.Lock()

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        return [self._read_one(image) for image in images]

    def _read_one(self, image: np.ndarray) -> PlateRead:
        with self._lock:
            out = self._engine(image, use_det=False, use_cls=False, use_rec=True)
        txts, scores = getattr(out, "txts", None), getattr(out, "scores", None)  # a TextRecOutput
        raw = txts[0] if txts else ""
        confidence = float(scores[0]) if scores else 0.0
        text = normalize(raw)
        return PlateRead(
            text=text,
            confidence=confidence if text else 0.0,
            engine=self.name,
            candidates=((text, confidence),),
            format_match=match_format(text),
        )

    def warmup(self, iterations: int = 1) -> None:
        blank = np.full((48, 160, 3), 255, np.uint8)
        for _ in range(iterations):
            self._read_one(blank)
