"""Reading a whole-plate crop's middle band before searching its lines (`platepilot.ocr.band`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from platepilot.config import OCRConfig, Settings
from platepilot.ocr.band import BAND_ROWS, BAND_WIDEN, Band, agreed, band_cuts
from platepilot.ocr.cascade import CascadeOCR
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.lines import PlateLineFinder
from platepilot.ocr.models import BUNDLED_MODEL, choose_reader, engine_for, make_engine
from platepilot.plates.synth import synth_sample
from platepilot.track.quality import cut_crop, plate_in_crop, plate_within
from platepilot.types import PlateRead

MARGIN = (0.12, 0.2)


def _detected(plate: np.ndarray, seed: int) -> np.ndarray:
    """`plate` on a car in a frame, cut as the runtime cuts a whole-plate detector's box grown by MARGIN."""
    rng = np.random.default_rng(seed)
    frame = np.full((240, 320, 3), rng.integers(40, 90, 3), np.uint8)
    h, w = plate.shape[:2]
    x, y = int(rng.integers(60, 320 - w - 60)), int(rng.integers(60, 240 - h - 60))
    frame[y : y + h, x : x + w] = plate
    grow_x, grow_y = MARGIN[0] * w, MARGIN[1] * h
    return cut_crop(frame, (x - grow_x, y - grow_y, x + w + grow_x, y + h + grow_y))


def test_the_plate_is_found_in_the_crop_the_runtime_cut() -> None:
    frame = np.zeros((300, 400, 3), np.uint8)
    plate = (100.0, 120.0, 220.0, 180.0)
    box = (100 - 0.12 * 120, 120 - 0.2 * 60, 220 + 0.12 * 120, 180 + 0.2 * 60)
    crop = cut_crop(frame, box)
    left, top = int(box[0] - 0.05 * (box[2] - box[0])), int(box[1] - 0.05 * (box[3] - box[1]))
    expected = (plate[0] - left, plate[1] - top, plate[2] - left, plate[3] - top)
    assert np.allclose(plate_in_crop(crop.shape, MARGIN), expected, atol=1.5)
    within = plate_within(crop, box, MARGIN)  # the frame-box version agrees
    x1, y1, x2, y2 = plate_in_crop(crop.shape, MARGIN)
    assert abs(within.shape[1] - (x2 - x1)) <= 2 and abs(within.shape[0] - (y2 - y1)) <= 2


def test_the_band_keeps_the_plates_width_and_cuts_its_height() -> None:
    crop = np.zeros((100, 200, 3), np.uint8)
    plate, wider = band_cuts(crop, MARGIN)
    x1, y1, x2, y2 = plate_in_crop(crop.shape, MARGIN)
    assert plate.shape[1] == pytest.approx(x2 - x1, abs=1)
    assert wider.shape[1] == pytest.approx((1 + 2 * BAND_WIDEN[1]) * (x2 - x1), abs=1)  # past the plate's sides
    assert plate.shape[0] == pytest.approx((BAND_ROWS[0][1] - BAND_ROWS[0][0]) * (y2 - y1), abs=1)
    assert wider.shape[0] < plate.shape[0]
    assert band_cuts(crop[:12], MARGIN) == []  # too thin to read: the lines are searched


def test_a_cut_that_clips_the_first_character_disagrees_with_the_wider_one() -> None:
    sample = synth_sample(13, 0, camera=False)
    crop = _detected(cv2.resize(sample.image, (160, 80), interpolation=cv2.INTER_AREA), 0)
    crnn = CRNNOCRService(BUNDLED_MODEL)
    shift = round(0.09 * crop.shape[1])  # the detector's box a little right of its plate
    off = np.concatenate([crop[:, shift:], np.repeat(crop[:, -1:], shift, axis=1)], axis=1)
    plate, wider = crnn.read(band_cuts(off, MARGIN))
    assert plate.text != sample.text and wider.text == sample.text, (sample.text, plate.text, wider.text)
    assert agreed([plate, wider], 0.0) is None  # so the crop goes to the line search


def test_only_reads_that_agree_surely_on_a_plate_format_are_taken() -> None:
    sure, unsure = PlateRead("ABC123", 0.9995), PlateRead("ABC123", 0.99)
    assert agreed([sure, PlateRead("ABC123", 0.9999)], 0.999) is sure
    assert agreed([sure, unsure], 0.999) is None
    assert agreed([sure, PlateRead("ABC128", 0.9999)], 0.999) is None
    assert agreed([PlateRead("", 1.0), PlateRead("", 1.0)], 0.0) is None
    clipped = PlateRead("DRM13", 0.9999)  # a partial serial, read surely from a band the box clipped
    assert agreed([clipped, clipped], 0.999) is None


@pytest.mark.slow
def test_crops_whose_band_reads_surely_skip_the_line_search(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [synth_sample(11, i, camera=False) for i in range(24)]
    crops = [_detected(cv2.resize(s.image, (120, 60), interpolation=cv2.INTER_AREA), i) for i, s in enumerate(samples)]
    noise = np.random.default_rng(5).integers(0, 255, (80, 160, 3), np.uint8)
    images = [*crops, noise]
    finder = PlateLineFinder(threads=1)
    searched: list[np.ndarray] = []
    line_crops = finder.line_crops
    monkeypatch.setattr(finder, "line_crops", lambda crop, side=None: searched.append(crop) or line_crops(crop, side))
    reads = CRNNOCRService(BUNDLED_MODEL, lines=finder, band=Band(MARGIN, 0.999), views_below=0.99).read(images)
    was_searched = [any(s is image for s in searched) for image in images]  # crops >= 48 px: never enlarged
    by_band = [i for i, hit in enumerate(was_searched) if not hit]
    assert len(by_band) >= len(crops) // 4, by_band  # many crops are read from their band alone ...
    assert all(reads[i].text == samples[i].text and reads[i].confidence >= 0.999 for i in by_band)  # ... rightly
    assert was_searched[-1] and (reads[-1].text == "" or reads[-1].confidence < 0.999)  # no plate: searched
    searched.clear()
    plain = CRNNOCRService(BUNDLED_MODEL, lines=finder, views_below=0.99).read(images)
    assert len(searched) == len(images)  # without the band every crop's lines are searched
    assert all(reads[i] == plain[i] for i, hit in enumerate(was_searched) if hit)  # the others read as before


@pytest.mark.slow
def test_the_cascade_keeps_agreed_band_reads_below_its_own_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    samples = [synth_sample(12, i, camera=False) for i in range(16)]
    crops = [_detected(cv2.resize(s.image, (120, 60), interpolation=cv2.INTER_AREA), i) for i, s in enumerate(samples)]
    engine = engine_for("cascade", None, Settings(ocr=OCRConfig(band_sure=0.99, cascade_sure=1.0)),
                        SimpleNamespace(whole_plates=True, box_margin=MARGIN))  # type: ignore[arg-type]  # fmt: skip
    assert isinstance(engine, CascadeOCR) and isinstance(engine.first, CRNNOCRService)
    first, final = engine.first.read_noting_band(crops)
    asked: list[np.ndarray] = []
    then_read = engine.then.read
    monkeypatch.setattr(engine.then, "read", lambda images: asked.extend(images) or then_read(images))
    reads = engine.read(crops)
    assert sum(final) >= len(crops) // 4  # sure enough for the band, never for a threshold of 1.0 ...
    assert all(first[i].confidence < 1.0 and reads[i] == first[i] for i in range(len(crops)) if final[i])
    assert all(reads[i].text == samples[i].text for i in range(len(crops)) if final[i])  # ... and right
    assert [id(a) for a in asked] == [id(c) for c, f in zip(crops, final, strict=True) if not f]  # only the rest


def test_the_band_is_built_for_a_whole_plate_detector_with_a_known_margin() -> None:
    detector = SimpleNamespace(whole_plates=True, box_margin=(0.1, 0.15))
    engine = engine_for("cascade", None, Settings(), detector)  # type: ignore[arg-type]
    assert isinstance(engine, CascadeOCR) and engine.first._band == Band((0.1, 0.15), 0.99)  # type: ignore[attr-defined]
    assert make_engine("crnn", None, Settings(), True, MARGIN)._band == Band(MARGIN, 0.99)  # type: ignore[attr-defined]
    assert make_engine("crnn", None, Settings(), True)._band is None  # type: ignore[attr-defined]
    assert make_engine("crnn", None, Settings(), False, MARGIN)._band is None  # type: ignore[attr-defined]
    off = Settings(ocr=OCRConfig(band_sure=None))
    assert make_engine("crnn", None, off, True, MARGIN)._band is None  # type: ignore[attr-defined]
    nothing_deployed = {"model_path": Path("no/such/model.onnx")}
    on = Settings(ocr=OCRConfig(**nothing_deployed))
    assert "band it reads 0.99 sure (ocr.band_sure)" in choose_reader("auto", None, on).reason
    off = Settings(ocr=OCRConfig(band_sure=None, **nothing_deployed))
    assert "ocr.band_sure" not in choose_reader("auto", None, off).reason  # config show says which
    with pytest.raises(ValueError, match="band_sure"):
        OCRConfig(band_sure=1.5)
