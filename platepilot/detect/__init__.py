"""Plate detectors: the `PlateDetector` protocol, the bundled plate detector, text lines, your own ONNX."""

from __future__ import annotations

from platepilot.config import DetectorConfig
from platepilot.detect.base import PlateDetector

# What `kind: auto` runs without a model_path: the built-in detector that reads more real plates end
# to end (benchmarks/pipeline_detector.py on the UCSD scenes; docs/detector.md has the numbers).
AUTO_KIND = "platenet"


def make_detector(config: DetectorConfig, threads: int | None = None, still: bool = False) -> PlateDetector:
    """The configured detector. `model_path` (with `kind` auto or platenet) is a detector trained by
    `platepilot detector train`, known by its sidecar, or else a YOLO export; `platenet` without it is
    the bundled plate detector; `fast` its bundled student (FAST_MODEL); `textdet` is PP-OCRv6 text
    detection + a plate-shape filter. Each sees a frame at its video size or, with `still` (a photo), its
    still-image size (a YOLO export: its fixed input). `auto` without a model_path is AUTO_KIND. The
    runtime's detector also drops boxes it is unsure of that hold no text: `pipeline.text_check`, which
    reads them (`text_check_below` is ignored here)."""
    kind = resolved_kind(config)
    if kind == "textdet":
        from platepilot.detect.textdet import TextDetParams, TextDetPlateDetector

        max_side = config.textdet_still_max_side if still else config.textdet_max_side
        return TextDetPlateDetector(params=TextDetParams(max_side=max_side), threads=threads)
    from platepilot.detect.platenet import FAST_MODEL, PlateNetDetector, is_platenet

    if kind == "fast":
        return PlateNetDetector(FAST_MODEL, config.confidence_threshold, threads, still)

    if config.model_path is not None and not is_platenet(config.model_path):
        from platepilot.detect.yolo import YoloOnnxDetector

        threshold = 0.25 if config.confidence_threshold is None else config.confidence_threshold
        return YoloOnnxDetector(
            config.model_path, config.input_size, threshold, config.iou_threshold, config.yolo_layout, threads
        )
    return PlateNetDetector(config.model_path, config.confidence_threshold, threads, still)


def resolved_kind(config: DetectorConfig) -> str:
    """The kind `make_detector` builds: `auto` without a model_path is AUTO_KIND."""
    return AUTO_KIND if config.kind == "auto" and config.model_path is None else config.kind


def boxes_whole_plates(config: DetectorConfig) -> bool:
    """Whether the configured detector's boxes are whole plates (`PlateDetector.whole_plates`), without
    loading it: every kind but the text detector (serial lines) boxes whole plates."""
    return resolved_kind(config) != "textdet"


__all__ = ["AUTO_KIND", "PlateDetector", "boxes_whole_plates", "make_detector", "resolved_kind"]
