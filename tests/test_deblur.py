"""Motion deblurring of unsure reads: Wiener undoes a known smear, blurred plates read better, sure reads
are never touched, and the setting reaches the readers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from platepilot.config import OCRConfig, Settings
from platepilot.ocr import crnn_service
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.deblur import KERNELS, deblurred
from platepilot.ocr.models import BUNDLED_MODEL
from platepilot.ocr.plate_ocr import build_plate_ocr
from platepilot.plates.blur import motion_kernel
from platepilot.plates.synth import synth_sample


def _plates(count: int, width: int, blur: int) -> tuple[list[np.ndarray], list[str]]:
    """Clean synthetic plates `width` px wide, smeared by a horizontal `blur` px motion (1: sharp)."""
    crops, texts = [], []
    for i in range(count):
        sample = synth_sample(11, i, camera=False)
        crop = cv2.resize(sample.image, (width, width // 2), interpolation=cv2.INTER_AREA)
        crops.append(cv2.filter2D(crop, -1, motion_kernel(blur, 0.0)) if blur > 1 else crop)
        texts.append(sample.text)
    return crops, texts


def test_wiener_undoes_a_known_motion_blur() -> None:
    sharp = cv2.resize(synth_sample(11, 0, camera=False).image, (160, 80), interpolation=cv2.INTER_AREA)
    blurred = cv2.filter2D(sharp, -1, motion_kernel(5, 0.0))
    versions = deblurred(blurred)
    assert len(versions) == len(KERNELS)
    restored = versions[KERNELS.index((5, 0.0))]  # the version deconvolved with the true smear
    assert restored.shape == sharp.shape and restored.dtype == np.uint8
    error_blurred = np.abs(blurred.astype(float) - sharp).mean()
    assert np.abs(restored.astype(float) - sharp).mean() < 0.7 * error_blurred
    assert deblurred(blurred[..., 0])[0].shape == blurred.shape[:2]  # grey crops too


def test_blurred_plates_read_better_with_deblurring() -> None:
    crops, texts = _plates(60, 96, 7)
    plain = CRNNOCRService(BUNDLED_MODEL, deblur_below=0.0).read(crops)
    deblur = CRNNOCRService(BUNDLED_MODEL, deblur_below=0.8).read(crops)
    right_plain = sum(r.text == t for r, t in zip(plain, texts, strict=True))
    right_deblur = sum(r.text == t for r, t in zip(deblur, texts, strict=True))
    assert right_deblur >= right_plain + 10, (right_plain, right_deblur)


def test_sure_reads_and_reads_of_no_serial_are_never_deblurred(monkeypatch: pytest.MonkeyPatch) -> None:
    crops, _ = _plates(20, 160, 1)
    expected = CRNNOCRService(BUNDLED_MODEL, deblur_below=0.0).read(crops)
    sure = [crop for crop, read in zip(crops, expected, strict=True) if read.confidence >= 0.8]
    assert len(sure) >= 15
    # A caption's or a badge's read (here: a blank crop's) is unsure and no serial: deconvolution
    # would sharpen its noise into one.
    blank = np.full((40, 120, 3), 128, np.uint8)
    assert CRNNOCRService(BUNDLED_MODEL, deblur_below=0.0).read([blank])[0].text == ""
    sure.append(blank)
    expected.append(CRNNOCRService(BUNDLED_MODEL, deblur_below=0.0).read([blank])[0])

    def refuse(_: np.ndarray) -> list[np.ndarray]:
        raise AssertionError("a sure read was deblurred")

    monkeypatch.setattr(crnn_service, "deblurred", refuse)
    reads = CRNNOCRService(BUNDLED_MODEL, deblur_below=0.8).read(sure)
    assert [r.text for r in reads] == [r.text for r in expected if r.confidence >= 0.8 or not r.text]


def test_plateocr_crnn_member_deblurs_too() -> None:
    crops, texts = _plates(12, 96, 7)
    reader = build_plate_ocr(("crnn",), BUNDLED_MODEL, lines=False, deblur_below=0.8)
    plain = build_plate_ocr(("crnn",), BUNDLED_MODEL, lines=False, deblur_below=0.0)
    with_deblur = sum(r.text == t for r, t in zip(reader.read(crops), texts, strict=True))
    without = sum(r.text == t for r, t in zip(plain.read(crops), texts, strict=True))
    assert with_deblur > without, (without, with_deblur)


def test_the_setting_is_validated_and_on_by_default() -> None:
    assert Settings().ocr.deblur_below == 0.8
    with pytest.raises(ValidationError):
        OCRConfig(deblur_below=1.5)
