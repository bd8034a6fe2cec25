"""Export a trained state classifier (StateNet, or a fine-tuned backbone + head) to ONNX with its sidecar."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from platepilot.ocr.state import StateCard, save_state_card
from platepilot.sessions import sidecar_path
from platepilot.training.parity import max_abs_difference, random_batches, replace_if_close


def export_state_model(model: nn.Module, card: StateCard, path: Path) -> float:
    """Write `path` + sidecar via temp files; returns the max abs logit difference torch vs onnxruntime.

    A difference above PARITY_TOLERANCE fails the export and leaves any previous model in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.onnx")
    model = model.eval()
    torch.onnx.export(
        model, (torch.zeros(1, 3, card.height, card.width),), str(tmp), input_names=["image"],
        output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}},
        opset_version=17, dynamo=False,
    )  # fmt: skip
    diff = max_abs_difference(model, tmp, random_batches((n, 3, card.height, card.width) for n in (1, 5, 64)))
    replace_if_close(tmp, path, diff, "logit difference")
    sidecar_path(path).unlink(missing_ok=True)
    save_state_card(path, card.model_copy(update={"training": {**card.training, "export_parity_max_abs": diff}}))
    return diff
