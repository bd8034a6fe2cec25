"""Export a trained state classifier (StateNet, or a fine-tuned backbone + head) to ONNX with its sidecar."""

from __future__ import annotations

from pathlib import Path

from torch import nn

from platepilot.ocr.state import StateCard, save_state_card
from platepilot.sessions import sidecar_path
from platepilot.training.parity import export_checked


def export_state_model(model: nn.Module, card: StateCard, path: Path) -> float:
    """Write `path` + sidecar via temp files; returns the max abs logit difference torch vs onnxruntime.

    A difference above PARITY_TOLERANCE fails the export and leaves any previous model in place.
    """
    shape = (1, 3, card.height, card.width)
    diff = export_checked(model, shape, path, ("image", "logits"), (1, 5, 64))
    sidecar_path(path).unlink(missing_ok=True)
    save_state_card(path, card.model_copy(update={"training": {**card.training, "export_parity_max_abs": diff}}))
    return diff
