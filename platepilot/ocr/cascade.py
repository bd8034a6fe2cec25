"""The cascade: the fast CRNN reads every crop, and PlateOCR reads only the crops it is unsure of.

The CRNN alone (with its two more framings, `ocr.views_below`) costs about a millisecond a plate here,
PlateOCR tens of milliseconds (PP-OCRv6's recogniser), and the CRNN's sure reads are its right ones: on
the dev sets a CRNN read at least 0.999 confident was final for 55-58% of the crops, and the cascade
read as many as PlateOCR (UCSD 97.2% against 97.2%, seg_ocr 97.3% against 97.0%, folded, docs/plateocr.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from platepilot.ocr.base import OCREngine
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.types import PlateRead


class CascadeOCR:
    """`first` reads every crop; a read less confident than `sure` (or empty) is replaced by `then`'s read
    of the same crop, unless it is a CRNN's agreed middle-band read (`ocr.band_sure`, its own rule). Each
    read keeps the engine that made it (`PlateRead.engine`). Thread-safe when both engines are."""

    name = "cascade"

    def __init__(self, first: OCREngine, then: OCREngine, sure: float) -> None:
        self.first = first
        self.then = then
        self.sure = sure

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        reads, final = self._first_reads(images)
        unsure = [i for i, read in enumerate(reads) if not final[i] and (not read.text or read.confidence < self.sure)]
        for i, read in zip(unsure, self.then.read([images[i] for i in unsure]) if unsure else [], strict=True):
            reads[i] = read
        return reads

    def _first_reads(self, images: Sequence[np.ndarray]) -> tuple[list[PlateRead], list[bool]]:
        """`first`'s reads, and which are final however sure: a CRNN's agreed middle-band reads (`ocr.band`)."""
        if isinstance(self.first, CRNNOCRService):
            return self.first.read_noting_band(images)
        return self.first.read(images), [False] * len(images)

    def warmup(self, iterations: int = 1) -> None:
        self.first.warmup(iterations)
        self.then.warmup(iterations)
