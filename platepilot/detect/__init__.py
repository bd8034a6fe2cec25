"""Plate detectors: the `PlateDetector` protocol, the bundled plate detector, text lines, your own ONNX."""

from __future__ import annotations

from platepilot.config import DetectorConfig
from platepilot.detect.base import PlateDetector


def make_detector(config: DetectorConfig, threads: int | None = None, still: bool = False) -> PlateDetector:
    """The configured detector. `kind: auto` runs `model_path` when set (a detector trained by
    `platepilot detector train`, known by its sidecar, or a YOLO export), else the bundled plate
    detector; `kind: textdet` runs PP-OCRv6 text detection + a plate-shape filter at the video or,
    with `still`, the still-image size."""
    if config.kind == "textdet":
        from platepilot.detect.textdet import TextDetParams, TextDetPlateDetector

        max_side = config.textdet_still_max_side if still else config.textdet_max_side
        return TextDetPlateDetector(params=TextDetParams(max_side=max_side), threads=threads)
    from platepilot.detect.platenet import PlateNetDetector, is_platenet

    if config.model_path is not None and not is_platenet(config.model_path):
        from platepilot.detect.yolo import YoloOnnxDetector

        threshold = 0.25 if config.confidence_threshold is None else config.confidence_threshold
        return YoloOnnxDetector(
            config.model_path, config.input_size, threshold, config.iou_threshold, config.yolo_layout, threads
        )
    return PlateNetDetector(config.model_path, config.confidence_threshold, threads)


__all__ = ["PlateDetector", "make_detector"]
