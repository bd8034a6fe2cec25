"""The export gate of every trainer (reader, detector, state classifier): a fresh ONNX file replaces
the model only when onnxruntime computes what torch computes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import nn

from platepilot.errors import PlatepilotError

PARITY_TOLERANCE = 1e-3  # max abs output difference allowed between torch and onnxruntime


def random_batches(shapes: Iterable[tuple[int, ...]]) -> list[np.ndarray]:
    """Standard-normal float32 inputs of `shapes`, the same on every call (seed 0)."""
    rng = np.random.default_rng(0)
    return [rng.normal(0, 1, shape).astype(np.float32) for shape in shapes]


def max_abs_difference(model: nn.Module, onnx_path: Path, batches: Sequence[np.ndarray]) -> float:
    """Max abs difference between the output of `model` (torch) and the first output of `onnx_path`
    (onnxruntime, CPU) over `batches`."""
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for batch in batches:
            expected = model(torch.from_numpy(batch)).numpy()
            got = session.run(None, {session.get_inputs()[0].name: batch})[0]
            worst = max(worst, float(np.abs(expected - got).max()))
    return worst


def replace_if_close(tmp: Path, path: Path, diff: float, what: str) -> None:
    """Move the fresh export `tmp` over `path` when `diff` is within PARITY_TOLERANCE; else delete it and
    fail (PlatepilotError naming the max abs `what`), leaving any previous model in place."""
    if diff > PARITY_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise PlatepilotError(f"ONNX export disagrees with torch: max abs {what} {diff:.2e}")
    tmp.replace(path)


def export_checked(
    model: nn.Module, shape: tuple[int, ...], path: Path, names: tuple[str, str], batch_sizes: Sequence[int]
) -> float:
    """Export `model` (input `shape` with any batch size; `names` its input and output) to `path` through a
    temp file, checked on random batches of `batch_sizes` (`replace_if_close`); the max abs difference."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.onnx")
    model = model.eval()
    torch.onnx.export(
        model, (torch.zeros(1, *shape[1:]),), str(tmp), input_names=[names[0]], output_names=[names[1]],
        dynamic_axes={names[0]: {0: "batch"}, names[1]: {0: "batch"}}, opset_version=17, dynamo=False,
    )  # fmt: skip
    diff = max_abs_difference(model, tmp, random_batches((n, *shape[1:]) for n in batch_sizes))
    replace_if_close(tmp, path, diff, "output difference")
    return diff
