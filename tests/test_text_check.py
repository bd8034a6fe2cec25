"""The runtime's plate detectors drop the boxes they are unsure of that hold no text (`pipeline.text_check`)."""

from __future__ import annotations

import cv2
import numpy as np

from platepilot.config import DetectorConfig
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.models import BUNDLED_MODEL
from platepilot.pipeline.text_check import TextCheckedDetector, plate_detector
from platepilot.sources.demo import DemoScene
from platepilot.types import Detection

LAMP = (1060, 600, 1180, 650)  # a red tail-light-like blob painted on a dark panel


class ScriptedBoxes:
    """A plate detector that returns the boxes it was given."""

    name = "scripted"
    whole_plates = True
    box_margin = (0.0, 0.0)

    def __init__(self, detections: list[Detection]) -> None:
        self.detections = detections

    def detect(self, image: np.ndarray) -> list[Detection]:
        return list(self.detections)


def _frame_with_a_lamp() -> tuple[np.ndarray, list[Detection]]:
    image, truth = DemoScene(seed=0).render(60)
    x1, y1, x2, y2 = LAMP
    cv2.rectangle(image, (x1 - 20, y1 - 20), (x2 + 20, y2 + 20), (40, 40, 40), -1)
    cv2.ellipse(image, ((x1 + x2) // 2, (y1 + y2) // 2), ((x2 - x1) // 2, (y2 - y1) // 2), 0, 0, 360, (30, 30, 220), -1)
    plates = [Detection(p.box, 0.4) for p in truth if p.box[2] - p.box[0] >= 90 and p.box[0] > 0 and p.box[2] < LAMP[0]]
    return image, plates


def test_an_unsure_box_without_text_is_dropped_and_plates_and_sure_boxes_are_kept() -> None:
    image, plates = _frame_with_a_lamp()
    assert plates, "the demo frame should show a near plate"
    reader = CRNNOCRService(BUNDLED_MODEL, format_prior=False, threads=1)
    unsure_lamp = Detection(LAMP, 0.45)
    checked = TextCheckedDetector(ScriptedBoxes([*plates, unsure_lamp]), reader, below=0.5, min_chars=3)
    assert checked.detect(image) == plates
    sure_lamp = Detection(LAMP, 0.8)
    checked = TextCheckedDetector(ScriptedBoxes([*plates, sure_lamp]), reader, below=0.5, min_chars=3)
    assert checked.detect(image) == [*plates, sure_lamp]
    assert (checked.name, checked.whole_plates) == ("scripted", True)


def test_plate_detectors_check_text_by_default_and_the_text_detector_does_not() -> None:
    assert isinstance(plate_detector(DetectorConfig()), TextCheckedDetector)
    assert isinstance(plate_detector(DetectorConfig(kind="fast")), TextCheckedDetector)
    assert not isinstance(plate_detector(DetectorConfig(text_check_below=0)), TextCheckedDetector)
    assert not isinstance(plate_detector(DetectorConfig(kind="textdet")), TextCheckedDetector)
