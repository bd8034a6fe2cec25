"""Export a trained CRNN to ONNX with its sidecar, and prove onnxruntime reads like torch does."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch

from platepilot.ocr.spec import ModelCard, preprocess, save_card
from platepilot.training.model import CRNN
from platepilot.training.parity import max_abs_difference, random_batches, replace_if_close


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
    batches = random_batches([(5, spec.channels, spec.height, spec.width)])
    if real_inputs:
        batches.append(preprocess(real_inputs, spec))
    diff = max_abs_difference(model, tmp, batches)
    replace_if_close(tmp, path, diff, "logit difference")
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
