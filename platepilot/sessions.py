"""Opening onnxruntime sessions the same way for every model the project runs (reader, detectors),
and finding the PaddleOCR models shipped as ONNX inside the `rapidocr` wheel."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import onnxruntime as ort

from platepilot.errors import PlatepilotError

log = logging.getLogger(__name__)


def open_session(
    path: Path, what: str = "model", use_gpu: bool = False, threads: int | None = None
) -> ort.InferenceSession:
    """A thread-safe InferenceSession; a file onnxruntime cannot load is one clear PlatepilotError."""
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only: the rest is onnxruntime's chatter, not the user's
    if threads is not None:
        options.intra_op_num_threads = threads
    providers = ["CPUExecutionProvider"]
    if use_gpu:
        if "CUDAExecutionProvider" in ort.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            log.warning("use_gpu: this onnxruntime has no CUDA provider; running on the CPU")
    try:
        return ort.InferenceSession(str(path), options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PlatepilotError(f"{path}: onnxruntime cannot load this {what} ({detail[:200]})") from None


def rapidocr_model(name: str) -> Path:
    """A model file inside the installed `rapidocr` wheel (a core dependency); PlatepilotError when absent."""
    try:
        import rapidocr
    except ImportError:
        raise PlatepilotError("rapidocr is not installed: reinstall platepilot (pip install platepilot)") from None
    path = Path(rapidocr.__file__).parent / "models" / name
    if not path.is_file():
        raise PlatepilotError(f"{path}: the rapidocr wheel has no {name}; reinstall rapidocr>=3.10")
    return path


def sidecar_path(model_path: Path) -> Path:
    """Every model's JSON sidecar sits beside it: `x.onnx` -> `x.json`."""
    return model_path.with_suffix(".json")


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
