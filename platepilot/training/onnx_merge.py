"""One ONNX file from a frozen ONNX backbone and a head trained in torch (the detector's and the state
classifier's heads on PP-OCRv6 det's stages): the head is exported alone at the backbone's opset and
merged behind it, the backbone's outputs feeding the head's inputs in order."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn


def merge_behind(
    backbone: onnx.ModelProto, head: nn.Module, examples: tuple[torch.Tensor, ...], input_names: list[str],
    output_name: str, dynamic_axes: dict[str, dict[int, str]],
) -> onnx.ModelProto:  # fmt: skip
    """`backbone` followed by `head` (its inputs `input_names`, example tensors `examples`) as one model
    whose input is the backbone's and whose output is the head's `output_name` (prefixed `head/`)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "head.onnx"
        options: dict[str, Any] = {"opset_version": backbone.opset_import[0].version, "dynamo": False}
        torch.onnx.export(
            head.eval(), examples, str(path), input_names=input_names, output_names=[output_name],
            dynamic_axes=dynamic_axes, **options,
        )  # fmt: skip
        head_model = onnx.load(str(path))
    head_model.ir_version = backbone.ir_version
    head_model = onnx.compose.add_prefix(head_model, "head/")
    io_map = [(out.name, f"head/{name}") for out, name in zip(backbone.graph.output, input_names, strict=True)]
    merged = onnx.compose.merge_models(backbone, head_model, io_map=io_map)
    onnx.checker.check_model(merged)
    return merged
