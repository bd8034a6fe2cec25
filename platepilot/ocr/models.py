"""Which reader model to load, and which engine to build for a configured engine name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import platepilot
from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.ocr.base import OCREngine
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.lines import PlateLineFinder
from platepilot.ocr.plate_ocr import MODEL_THREADS

BUNDLED_MODEL = Path(platepilot.__file__).parent / "assets" / "florida_plate_ocr.onnx"
"""The default CRNN shipped in the package, trained on synthetic plates only."""


def resolve_model(path: Path | None, settings: Settings) -> Path:
    """The CRNN model to load: `path` if given (it must exist), else the config's `ocr.model_path`
    (where the guide's training command writes) if it exists, else the bundled default."""
    if path is not None:
        if not path.is_file():
            raise PlatepilotError(f"{path}: model not found")
        return path
    trained = settings.ocr.model_path
    if trained.is_file():
        return trained
    if BUNDLED_MODEL.is_file():
        return BUNDLED_MODEL
    raise PlatepilotError(
        f"no CRNN model: neither {trained} (train one with scripts/ocr/train_crnn.py) nor the bundled "
        f"{BUNDLED_MODEL} exists; pass --model PATH"
    )


def _crnn(model_path: Path | None, settings: Settings) -> OCREngine:
    return CRNNOCRService(resolve_model(model_path, settings), format_prior=settings.ocr.format_prior)


def _lines(settings: Settings) -> PlateLineFinder | None:
    return PlateLineFinder(threads=MODEL_THREADS) if settings.ocr.plateocr_lines else None


def _paddle(model_path: Path | None, settings: Settings) -> OCREngine:
    from platepilot.ocr.paddle import PaddleRecognizer

    return PaddleRecognizer(_lines(settings), format_prior=settings.ocr.format_prior, threads=MODEL_THREADS)


def _easyocr(model_path: Path | None, settings: Settings) -> OCREngine:
    from platepilot.ocr.easy import EasyOCRReader

    return EasyOCRReader(_lines(settings), threads=MODEL_THREADS)


def _plateocr(model_path: Path | None, settings: Settings) -> OCREngine:
    from platepilot.ocr.plate_ocr import build_plate_ocr

    members = settings.ocr.plateocr_members
    crnn = resolve_model(model_path, settings) if "crnn" in members else None
    return build_plate_ocr(members, crnn, settings.ocr.plateocr_lines, settings.ocr.format_prior)


def _auto(model_path: Path | None, settings: Settings) -> OCREngine:
    """A CRNN the user trained or named wins (the project's goal is to replace the ensemble);
    otherwise the PlateOCR ensemble, which reads real plates better than the bundled synthetic-only CRNN."""
    if model_path is not None or settings.ocr.model_path.is_file():
        return _crnn(model_path, settings)
    return _plateocr(model_path, settings)


_ENGINES: dict[str, Callable[[Path | None, Settings], OCREngine]] = {
    "auto": _auto,
    "plateocr": _plateocr,
    "paddle": _paddle,
    "easyocr": _easyocr,
    "crnn": _crnn,
}


def make_engine(engine_name: str, model_path: Path | None, settings: Settings) -> OCREngine:
    """Build the engine called `engine_name` (`_ENGINES`); PlatepilotError for any other name."""
    factory = _ENGINES.get(engine_name)
    if factory is None:
        raise PlatepilotError(f"unknown OCR engine {engine_name!r}; use one of: {', '.join(_ENGINES)}")
    return factory(model_path, settings)
