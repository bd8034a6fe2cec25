"""Plate detectors: the `PlateDetector` protocol, the user's YOLO ONNX models, the bundled default."""

from __future__ import annotations

from platepilot.config import DetectorConfig
from platepilot.detect.base import PlateDetector


def make_detector(config: DetectorConfig, threads: int | None = None, still: bool = False) -> PlateDetector:
    """The configured detector: the user's YOLO ONNX model when `model_path` is set, else the default
    (PP-OCRv6 text detector + plate-shape filter) at the video or, with `still`, the still-image size."""
    if config.model_path is not None:
        from platepilot.detect.yolo import YoloOnnxDetector

        return YoloOnnxDetector(
            config.model_path,
            config.input_size,
            config.confidence_threshold,
            config.iou_threshold,
            config.yolo_layout,
            threads,
        )
    from platepilot.detect.textdet import TextDetParams, TextDetPlateDetector

    max_side = config.textdet_still_max_side if still else config.textdet_max_side
    return TextDetPlateDetector(params=TextDetParams(max_side=max_side), threads=threads)


__all__ = ["PlateDetector", "make_detector"]
