"""Opening onnxruntime sessions the same way for every model the project runs (reader, detectors),
and finding the PaddleOCR models shipped as ONNX inside the `rapidocr` wheel."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import onnxruntime as ort
from pydantic import BaseModel, ValidationError

from platepilot.errors import PlatepilotError
from platepilot.store.atomic import write_text_atomically

log = logging.getLogger(__name__)


CardT = TypeVar("CardT", bound=BaseModel)


def open_session(
    path: Path, what: str = "model", use_gpu: bool = False, threads: int | None = None, sha256: str | None = None
) -> ort.InferenceSession:
    """A thread-safe InferenceSession; a file onnxruntime cannot load is one clear PlatepilotError. With
    `sha256` (its sidecar's), the file is read once and loaded only if those bytes have that sha256: a model
    replaced between its sidecar's check and its loading is refused, not paired with the old sidecar."""
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
    source: str | bytes = str(path)
    if sha256 is not None:
        source = _read_model(path, what)
        if hashlib.sha256(source).hexdigest() != sha256:
            raise PlatepilotError(f"{path}: sha256 does not match its sidecar (replaced while it was loaded)")
    try:
        return ort.InferenceSession(source, options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own pybind types (InvalidProtobuf, Fail, ...)
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PlatepilotError(f"{path}: onnxruntime cannot load this {what} ({detail[:200]})") from None


def check_input_shape(session: ort.InferenceSession, path: Path, expected: tuple[int, ...]) -> None:
    """PlatepilotError when the graph's one input is not (N, *expected) (a named, dynamic axis passes):
    the sidecar beside `path` belongs to another model."""
    inputs = session.get_inputs()
    if len(inputs) != 1:
        raise PlatepilotError(f"{path}: expected one image input, the model has {len(inputs)}")
    got = tuple(inputs[0].shape[1:])
    if len(got) != len(expected) or any(isinstance(g, int) and g != e for g, e in zip(got, expected, strict=True)):
        raise PlatepilotError(
            f"{path}: model input is (N, {', '.join(map(str, got))}) but its sidecar says (N, C, H, W) = "
            f"(N, {', '.join(map(str, expected))}); the sidecar belongs to another model"
        )


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


def _read_model(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise PlatepilotError(f"{path}: cannot read this {what} ({exc.strerror})") from None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def checked_sidecar(
    model_path: Path, parse: Callable[[Path], CardT], sha_field: str, verify: bool, *, no_model: str,
    no_sidecar: str, mismatch: str,
) -> CardT:  # fmt: skip
    """The sidecar of `model_path` as `parse` reads it (parse raises its own PlatepilotError), after checking
    that both files exist, and checked against the file's sha256 when `verify` and the card's `sha_field`
    records one. The three messages are the caller's: each card kind words its errors its own way."""
    if not model_path.is_file():
        raise PlatepilotError(no_model)
    sidecar = sidecar_path(model_path)
    if not sidecar.is_file():
        raise PlatepilotError(no_sidecar)
    card = parse(sidecar)
    recorded = getattr(card, sha_field, "")
    if verify and recorded and recorded != file_sha256(model_path):
        raise PlatepilotError(mismatch)
    return card


def load_sidecar(model_path: Path, card_type: type[CardT], what: str) -> CardT:
    """The `card_type` sidecar of `model_path` (a `what` model), checked against the file's sha256 when it
    records one; one clear PlatepilotError when the model, its sidecar or the match is wrong."""

    def parse(sidecar: Path) -> CardT:
        try:
            return card_type.model_validate_json(sidecar.read_text(encoding="utf-8"))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"]) or "file"
            raise PlatepilotError(f"{sidecar}: not a valid {what} sidecar ({where}: {error['msg'][:160]})") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise PlatepilotError(f"{sidecar}: not a valid {what} sidecar ({str(exc)[:160]})") from None

    return checked_sidecar(
        model_path, parse, "onnx_sha256", True, no_model=f"{model_path}: {what} model not found",
        no_sidecar=f"{sidecar_path(model_path)}: the {what}'s sidecar is missing (it belongs beside {model_path.name})",
        mismatch=f"{model_path}: does not match its sidecar's sha256 (mixed-up or corrupt model file)",
    )  # fmt: skip


def save_sidecar(model_path: Path, card: BaseModel) -> None:
    """Write the sidecar of `model_path` (stamping the file's sha256 as `onnx_sha256`) via a temp file."""
    card = card.model_copy(update={"onnx_sha256": file_sha256(model_path)})
    write_text_atomically(sidecar_path(model_path), card.model_dump_json(indent=2) + "\n")
