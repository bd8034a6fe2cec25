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
