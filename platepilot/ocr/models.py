"""Which reader model to load, and which engine to build for a configured engine name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import platepilot
from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.ocr.base import OCREngine
from platepilot.ocr.crnn_service import CRNNOCRService

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


def _paddle(model_path: Path | None, settings: Settings) -> OCREngine:
    from platepilot.ocr.paddle import PaddleRecognizer

    return PaddleRecognizer()


_ENGINES: dict[str, Callable[[Path | None, Settings], OCREngine]] = {
    "crnn": _crnn,
    "auto": _crnn,  # the PlateOCR ensemble is not built yet, so auto means the CRNN for now
    "paddle": _paddle,
}
_NOT_YET = ("plateocr", "easyocr")


def make_engine(engine_name: str, model_path: Path | None, settings: Settings) -> OCREngine:
    """Build the engine called `engine_name` (crnn, auto); PlatepilotError for any other name."""
    factory = _ENGINES.get(engine_name)
    if factory is not None:
        return factory(model_path, settings)
    if engine_name in _NOT_YET:
        raise PlatepilotError(f"OCR engine {engine_name!r} is not available yet; use one of: {', '.join(_ENGINES)}")
    raise PlatepilotError(f"unknown OCR engine {engine_name!r}; use one of: {', '.join(_ENGINES)}")
