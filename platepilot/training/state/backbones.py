"""PaddleOCR's PP-OCRv6 text detector as a state classifier's backbone, and the head that reads its maps.

The detector (ONNX, shipped in the rapidocr wheel, Apache-2.0, trained on large real image sets) is
cut after a backbone stage and fixed to the classifier's input size (`cut_backbone`). Two ways use it:
`platepilot state train-head` keeps it frozen in onnxruntime and trains a `FeatureHead` on cached
features (`pretrained.py`); `platepilot state train --backbone` converts the cut graph to a trainable
torch module (onnx2torch) and fine-tunes backbone and head together on freshly degraded crops every
epoch (`PretrainedStateNet`), which the frozen features cannot follow.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnx
import torch
from torch import nn

from platepilot.errors import PlatepilotError
from platepilot.sessions import rapidocr_model
from platepilot.training.ppocr_backbone import cut_ppocr_det


@dataclass(frozen=True)
class Backbone:
    """A rapidocr model file, the tensors to cut it at, and how it wants its input."""

    file: str
    outputs: tuple[str, ...]
    source: str
    channel_order: Literal["RGB", "BGR"] = "BGR"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)


BACKBONES: dict[str, Backbone] = {
    # PPLCNetV3 backbone of the text detector, cut after its stride-16 stage (192 channels, 0.8 M
    # parameters). Measured on cached features (docs/states.md): the stride-32 stage (384 ch) alone
    # scored lower and added nothing beside the stride-16 map, for three times the file size.
    "ppocr-det": Backbone(
        "PP-OCRv6_det_small.onnx",
        ("p2o.pd_op.conv2d.32.0",),
        "PaddleOCR PP-OCRv6_det_small text detector (ONNX from the rapidocr 3.10 wheel), Apache-2.0: "
        "its backbone up to the stride-16 feature map",
    ),
    "ppocr-det-s32": Backbone(
        "PP-OCRv6_det_small.onnx",
        ("p2o.pd_op.conv2d.40.0", "p2o.pd_op.conv2d.32.0"),
        "PaddleOCR PP-OCRv6_det_small text detector (ONNX from the rapidocr 3.10 wheel), Apache-2.0: "
        "its backbone up to the stride-32 feature map (stride-16 and stride-32 maps)",
    ),
}


def cut_backbone(source: Path, outputs: tuple[str, ...], height: int, width: int) -> onnx.ModelProto:
    """`source` cut at `outputs` (explicit pads for this size), for (batch, 3, height, width) inputs: the
    outputs' sizes are then fixed, and the head is built for them."""
    model = cut_ppocr_det(source, outputs, (height, width))
    for dim, value in zip(model.graph.input[0].type.tensor_type.shape.dim, (1, 3, height, width), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    model = onnx.shape_inference.infer_shapes(model)
    for value in [*model.graph.input, *model.graph.output]:
        value.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]  # shapes inferred for batch 1; onnxruntime re-infers them
    return model


class FeatureHead(nn.Module):
    """Per feature map: 1x1 conv to `reduce` channels, average pooled to `grid` (rows, columns); then an MLP."""

    def __init__(
        self, shapes: list[tuple[int, int, int]], num_classes: int, reduce: int, hidden: int, grid: tuple[int, int]
    ) -> None:
        super().__init__()
        self.reducers = nn.ModuleList()
        for channels, h, w in shapes:
            if h % grid[0] or w % grid[1]:
                raise PlatepilotError(f"feature map {h}x{w} does not pool to the {grid[0]}x{grid[1]} grid")
            self.reducers.append(
                nn.Sequential(
                    nn.Conv2d(channels, reduce, 1), nn.BatchNorm2d(reduce), nn.GELU(),
                    nn.AvgPool2d((h // grid[0], w // grid[1])),
                )
            )  # fmt: skip
        self.mlp = nn.Sequential(
            nn.Dropout(0.4), nn.Linear(len(shapes) * reduce * grid[0] * grid[1], hidden), nn.GELU(),
            nn.Dropout(0.3), nn.Linear(hidden, num_classes),
        )  # fmt: skip

    def forward(self, *maps: torch.Tensor) -> torch.Tensor:
        pooled = [reducer(m).flatten(1) for reducer, m in zip(self.reducers, maps, strict=True)]
        return self.mlp(torch.cat(pooled, dim=1))


class PretrainedStateNet(nn.Module):
    """The cut backbone as a torch module, then a FeatureHead: (N, 3, H, W) PP-OCR-normalised BGR -> logits."""

    def __init__(self, backbone: nn.Module, head: FeatureHead) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.backbone(x)
        return self.head(*(maps if isinstance(maps, tuple | list) else (maps,)))


def pretrained_state_net(
    name: str, height: int, width: int, num_classes: int, reduce: int = 96, hidden: int = 512
) -> tuple[PretrainedStateNet, Backbone]:
    """Backbone `name` (a BACKBONES key) cut for (height, width) inputs, trainable, with a fresh head."""
    from onnx2torch import convert  # a training dependency only

    if name not in BACKBONES:
        raise PlatepilotError(f"--backbone: one of {', '.join(BACKBONES)}, got {name!r}")
    if height % 32 or width % 32:
        raise PlatepilotError(f"--height/--width: multiples of 32 for a pretrained backbone, got {height}x{width}")
    spec = BACKBONES[name]
    cut = cut_backbone(rapidocr_model(spec.file), spec.outputs, height, width)
    shapes = [tuple(d.dim_value for d in out.type.tensor_type.shape.dim[1:]) for out in cut.graph.output]
    head = FeatureHead(shapes, num_classes, reduce, hidden, (height // 32, width // 32))
    return PretrainedStateNet(convert(cut), head), spec
