"""Motion deblurring of unsure reads: the bundled estimator names a plate's smear, Wiener undoes it,
blurred plates read better, sure and sharp crops are never touched, and the settings reach the readers."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from platepilot.config import OCRConfig, Settings
from platepilot.errors import PlatepilotError
from platepilot.ocr import deblur
from platepilot.ocr.blur_estimate import BUNDLED_BLUR_MODEL, BlurEstimator, Smear, window
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.deblur import MIN_SMEAR_PX, VERSIONS, deblurred
from platepilot.ocr.models import BUNDLED_MODEL
from platepilot.ocr.plate_ocr import build_plate_ocr
from platepilot.plates.blur import exposed, motion_kernel
from platepilot.plates.synth import synth_sample


def _plates(count: int, width: int, blur: int, angle: float = 0.0) -> tuple[list[np.ndarray], list[str]]:
    """Clean synthetic plates `width` px wide, smeared by a `blur` px motion at `angle` (1: sharp)."""
    crops, texts = [], []
    for i in range(count):
        sample = synth_sample(11, i, camera=False)
        crop = cv2.resize(sample.image, (width, width // 2), interpolation=cv2.INTER_AREA)
        crops.append(cv2.filter2D(crop, -1, motion_kernel(blur, angle)) if blur > 1 else crop)
        texts.append(sample.text)
    return crops, texts


def _grey(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)


def test_wiener_undoes_a_known_motion_blur() -> None:
    sharp = cv2.resize(synth_sample(11, 0, camera=False).image, (160, 80), interpolation=cv2.INTER_AREA)
    blurred = cv2.filter2D(sharp, -1, motion_kernel(5, 0.0))
    versions = deblurred(blurred, Smear(5.4, 0.0))
    assert len(versions) == VERSIONS  # 5 px (the estimate rounded down) and 6 px
    restored = versions[0]
    assert restored.shape == sharp.shape and restored.dtype == np.uint8
    error_blurred = np.abs(blurred.astype(float) - sharp).mean()
    assert np.abs(restored.astype(float) - sharp).mean() < 0.7 * error_blurred
    assert deblurred(blurred[..., 0], Smear(5.4, 0.0))[0].shape == blurred.shape[:2]  # grey crops too
    # The wrong line undoes far less: the reason the line is estimated, not guessed
    across = deblurred(blurred, Smear(5.4, 90.0))[0]
    assert np.abs(across.astype(float) - sharp).mean() > np.abs(restored.astype(float) - sharp).mean() + 3


def test_the_bundled_estimator_names_a_plates_smear() -> None:
    estimator = BlurEstimator()
    rng = np.random.default_rng(5)
    truth, views = [], []
    for i in range(48):
        length, angle = int(rng.integers(3, 8)), float(rng.uniform(-60, 60))
        width = int(rng.integers(90, 200))
        plate = _grey(synth_sample(12, i, camera=False).image)
        grey = cv2.resize(plate, (width, width // 2), interpolation=cv2.INTER_AREA)
        views.append(exposed(grey, length, angle, 2.0, 85, rng))
        truth.append((length, angle))
    found = estimator.estimate(views)
    length_error = [abs(s.length - t[0]) for s, t in zip(found, truth, strict=True)]
    angle_error = [abs((s.angle - t[1] + 90) % 180 - 90) for s, t in zip(found, truth, strict=True)]
    assert np.median(length_error) < 0.8, length_error
    assert np.median(angle_error) < 10, angle_error
    sharp = [_grey(c) for c in _plates(24, 150, 1)[0]]
    assert sum(s.length < MIN_SMEAR_PX for s in estimator.estimate(sharp)) >= 22  # sharp plates are left alone


def test_the_window_is_the_middle_never_resized() -> None:
    image = np.arange(100 * 200, dtype=np.uint32).reshape(100, 200).astype(np.uint8)
    assert np.array_equal(window(image, 48, 96), image[26:74, 52:148])
    small = window(image[:20, :30], 48, 96)  # smaller crops are edge-replicated around, not stretched
    assert small.shape == (48, 96) and np.array_equal(small[14:34, 33:63], image[:20, :30])


def test_blurred_plates_read_better_with_deblurring() -> None:
    crops, texts = _plates(60, 96, 7, angle=15.0)
    plain = CRNNOCRService(BUNDLED_MODEL, deblur_below=0.0).read(crops)
    deblurring = CRNNOCRService(BUNDLED_MODEL, deblur_below=Settings().ocr.deblur_below).read(crops)
    right_plain = sum(r.text == t for r, t in zip(plain, texts, strict=True))
    right_deblur = sum(r.text == t for r, t in zip(deblurring, texts, strict=True))
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

    def refuse(_: deblur.Deblurrer, views: list[np.ndarray]) -> list[list[np.ndarray]]:
        raise AssertionError("a sure read was deblurred")

    monkeypatch.setattr(deblur.Deblurrer, "versions", refuse)
    reads = CRNNOCRService(BUNDLED_MODEL, deblur_below=0.8).read(sure)
    assert [r.text for r in reads] == [r.text for r in expected if r.confidence >= 0.8 or not r.text]


def test_unsure_sharp_crops_are_not_deconvolved(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every unsure read gets its smear estimated; only smeared crops are deconvolved and read again."""
    crops, _ = _plates(16, 120, 1)
    calls: list[int] = []
    real = deblur.deblurred

    def counted(image: np.ndarray, smear: Smear) -> list[np.ndarray]:
        calls.append(1)
        return real(image, smear)

    monkeypatch.setattr(deblur, "deblurred", counted)
    CRNNOCRService(BUNDLED_MODEL, deblur_below=1.0).read(crops)  # every read is below 1.0
    assert len(calls) <= 2, calls
    smeared, _ = _plates(16, 120, 6, angle=-10.0)
    CRNNOCRService(BUNDLED_MODEL, deblur_below=1.0).read(smeared)
    assert len(calls) >= 12, calls


@pytest.mark.parametrize("member", ["crnn", "paddle"])
def test_plateocr_members_deblur_too(member: str) -> None:
    """Both CTC members: the ensemble scores every text by both, so one deblurred member is not enough."""
    crops, texts = _plates(24, 96, 7, angle=15.0)
    reader = build_plate_ocr((member,), BUNDLED_MODEL, lines=False, deblur_below=Settings().ocr.deblur_below)
    plain = build_plate_ocr((member,), BUNDLED_MODEL, lines=False, deblur_below=0.0)
    with_deblur = sum(r.text == t for r, t in zip(reader.read(crops), texts, strict=True))
    without = sum(r.text == t for r, t in zip(plain.read(crops), texts, strict=True))
    assert with_deblur >= without + 4, (without, with_deblur)  # 11 -> 17 and 6 -> 13 here


def test_the_settings_are_validated_and_on_by_default(tmp_path: Path) -> None:
    assert Settings().ocr.deblur_below == 0.95
    assert Settings().ocr.blur_model_path is None and BUNDLED_BLUR_MODEL.is_file()
    with pytest.raises(ValidationError):
        OCRConfig(deblur_below=1.5)
    with pytest.raises(PlatepilotError, match=r"plate_blur\.onnx"):
        CRNNOCRService(BUNDLED_MODEL, deblur_below=0.9, blur_model=tmp_path / "plate_blur.onnx")
    CRNNOCRService(BUNDLED_MODEL, deblur_below=0.0, blur_model=tmp_path / "plate_blur.onnx")  # never deblurs: not read
