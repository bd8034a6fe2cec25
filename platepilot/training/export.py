"""Export a trained CRNN to ONNX with its sidecar, and prove onnxruntime reads like torch does."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from platepilot.errors import PlatepilotError
from platepilot.ocr.spec import ModelCard, preprocess, save_card
from platepilot.training.model import CRNN

PARITY_TOLERANCE = 1e-3  # max abs logit difference allowed between torch and onnxruntime


def export_onnx(model: CRNN, card: ModelCard, path: Path, real_inputs: list[np.ndarray] | None = None) -> float:
    """Write `path` (.onnx, dynamic batch) + sidecar atomically; returns the max abs parity difference.

    Parity is checked on random tensors and, when given, on real crops (BGR uint8); a difference above
    PARITY_TOLERANCE fails the export and leaves any previous model in place.
    """
    spec = card.spec
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".onnx.tmp")
    model = model.eval()
    dummy = torch.zeros(1, spec.channels, spec.height, spec.width)
    with warnings.catch_warnings():
        # The tracer warns that LSTM state shapes are traced as constants; parity below proves batch N works.
        warnings.simplefilter("ignore")
        _export(model, dummy, tmp)
    diff = parity(model, tmp, card, real_inputs)
    if diff > PARITY_TOLERANCE:
        tmp.unlink(missing_ok=True)
        raise PlatepilotError(f"ONNX export disagrees with torch: max abs logit difference {diff:.2e}")
    tmp.replace(path)
    save_card(path, card.model_copy(update={"training": {**card.training, "export_parity_max_abs": diff}}))
    return diff


def _export(model: CRNN, dummy: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        model,
        (dummy,),
        str(path),
        input_names=["image"],
        output_names=["logits"],
        dynamic_axes={"image": {0: "batch"}, "logits": {1: "batch"}},
        opset_version=17,
        dynamo=False,
    )


def parity(model: CRNN, onnx_path: Path, card: ModelCard, real_inputs: list[np.ndarray] | None) -> float:
    spec = card.spec
    rng = np.random.default_rng(0)
    batches = [rng.normal(0, 1, (5, spec.channels, spec.height, spec.width)).astype(np.float32)]
    if real_inputs:
        batches.append(preprocess(real_inputs, spec))
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    worst = 0.0
    with torch.no_grad():
        for batch in batches:
            expected = model(torch.from_numpy(batch)).numpy()
            got = session.run(None, {"image": batch})[0]
            worst = max(worst, float(np.abs(expected - got).max()))
    return worst
