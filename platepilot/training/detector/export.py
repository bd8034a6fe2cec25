"""Export a trained PlateNet to ONNX (dynamic height and width) with its sidecar, after a parity check."""

from __future__ import annotations

from pathlib import Path

import onnx
import torch

from platepilot.detect.platenet import DetectorCard, save_card, sidecar_path
from platepilot.errors import PlatepilotError
from platepilot.training.detector.backbone import CHANNELS, FEATURES, OrtBackbone
from platepilot.training.detector.model import DetectorNet, PretrainedPlateNet
from platepilot.training.onnx_merge import merge_behind
from platepilot.training.parity import max_abs_difference, random_batches, replace_if_close

PARITY_SHAPES = ((1, 3, 352, 640), (1, 3, 480, 640), (1, 3, 640, 384))


def export_detector(model: DetectorNet, card: DetectorCard, path: Path) -> float:
    """Write `path` + sidecar via temp files; returns the max abs parity difference.

    A difference above PARITY_TOLERANCE fails the export and leaves any previous model in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.onnx")
    model = model.eval()
    if isinstance(model, PretrainedPlateNet):
        _export_pretrained(model, tmp)
    else:
        torch.onnx.export(
            model, (torch.zeros(PARITY_SHAPES[0]),), str(tmp), input_names=["image"], output_names=["maps"],
            dynamic_axes={"image": {2: "height", 3: "width"}, "maps": {2: "rows", 3: "cols"}},
            opset_version=17, dynamo=False,
        )  # fmt: skip
    diff = max_abs_difference(model, tmp, random_batches(PARITY_SHAPES))
    replace_if_close(tmp, path, diff, "difference")
    sidecar_path(path).unlink(missing_ok=True)
    save_card(path, card.model_copy(update={"training": {**card.training, "export_parity_max_abs": diff}}))
    return diff


def _export_pretrained(model: PretrainedPlateNet, path: Path) -> None:
    """The head merged behind the frozen backbone's graph: one ONNX file whose input is the image."""
    if not isinstance(model.backbone, OrtBackbone):
        raise PlatepilotError("only a detector whose backbone is an ONNX file can be exported")
    height, width = PARITY_SHAPES[0][2:]
    features = (torch.zeros(1, CHANNELS["s8"], height // 8, width // 8),
                torch.zeros(1, CHANNELS["s16"], height // 16, width // 16))  # fmt: skip
    axes = {2: "rows", 3: "cols"}
    names = list(FEATURES)
    merged = merge_behind(onnx.load(str(model.backbone.path)), model.head, features, names, "maps",
                          {"s8": axes, "s16": axes, "maps": axes})  # fmt: skip
    onnx.save(merged, str(path))
