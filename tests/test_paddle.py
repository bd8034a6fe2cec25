"""The PaddleOCR recogniser member (PP-OCRv6 via rapidocr): real model, offline, thread-safe."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np

from platepilot.ocr.paddle import REC_MAX_WIDTH, PaddleRecognizer, rec_blob


def _text_crop(text: str) -> np.ndarray:
    image = np.full((64, 260, 3), 255, np.uint8)
    cv2.putText(image, text, (12, 48), cv2.FONT_HERSHEY_SIMPLEX, 1.6, (20, 20, 20), 4, cv2.LINE_AA)
    return image


def test_reads_printed_plate_text_from_four_threads() -> None:
    engine = PaddleRecognizer()
    engine.warmup()
    crops = [_text_crop(t) for t in ("ABC123", "7KX 402", "FL-8821")]
    with ThreadPoolExecutor(4) as pool:
        reads = list(pool.map(lambda c: engine.read([c])[0], crops * 4))
    assert [r.text for r in reads[:3]] == ["ABC123", "7KX402", "FL8821"]
    assert [r.text for r in reads] == [r.text for r in reads[:3]] * 4
    assert all(0.5 < r.confidence <= 1.0 and r.engine == "paddle" for r in reads)
    assert reads[0].format_match is not None


def test_a_thin_strip_is_not_blown_up_to_a_huge_line() -> None:
    """A 1 x 1,000 px strip became a 45,000 px wide line: 2 GB and 10 s in the recogniser."""
    for shape in ((1, 1000, 3), (2, 4000, 3)):
        assert rec_blob(np.full(shape, 200, np.uint8)).shape[-1] <= REC_MAX_WIDTH
