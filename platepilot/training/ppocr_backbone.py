"""Cutting PaddleOCR's PP-OCR text detector (ONNX, from the `rapidocr` wheel) after some of its stages,
for a head trained on its frozen features: the plate detector's and the state classifier's.

The cut graph's SAME_UPPER auto-padding (Conv, MaxPool) is rewritten as explicit pads, which every
converter and torch-side check understands. Those pads are computed for one probe input size; they
hold for any other size that divides the same way by every stride (for PP-OCR det: sides that are
multiples of 32), and exactly for the probe size itself.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import onnx
from onnx import helper


def cut_ppocr_det(source: Path, outputs: Sequence[str], probe: tuple[int, int]) -> onnx.ModelProto:
    """The graph at `source` from its input to the tensors `outputs`, with explicit pads computed for
    (height, width) `probe`; the input keeps the source's shape (dynamic batch, height and width)."""
    model = onnx.load(str(source))
    explicit_pads(model, probe)
    with tempfile.TemporaryDirectory() as tmp:
        full, cut = Path(tmp) / "full.onnx", Path(tmp) / "cut.onnx"
        onnx.save(model, str(full))
        onnx.utils.extract_model(str(full), str(cut), [model.graph.input[0].name], list(outputs))
        return onnx.load(str(cut))


def explicit_pads(model: onnx.ModelProto, probe: tuple[int, int]) -> None:
    """Rewrite, in place, the auto-padding of Conv and MaxPool nodes (SAME_UPPER: the only kind PP-OCR
    det uses) as the explicit pads it gives for a (1, 3, *probe) input."""
    sized = onnx.ModelProto()
    sized.CopyFrom(model)
    for dim, value in zip(sized.graph.input[0].type.tensor_type.shape.dim, (1, 3, *probe), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(sized)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    shapes[model.graph.input[0].name] = [1, 3, *probe]
    weights = {w.name: list(w.dims) for w in model.graph.initializer}
    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        if node.op_type not in ("Conv", "MaxPool") or attrs.get("auto_pad") is None:
            continue
        if attrs["auto_pad"].s in (b"NOTSET", b"VALID"):
            continue
        kernel = weights[node.input[1]][2:] if node.op_type == "Conv" else list(attrs["kernel_shape"].ints)
        strides = list(attrs["strides"].ints) if "strides" in attrs else [1, 1]
        dilations = list(attrs["dilations"].ints) if "dilations" in attrs else [1, 1]
        begins, ends = [], []
        for size, k, s, d in zip(shapes[node.input[0]][2:], kernel, strides, dilations, strict=True):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            begins.append(total // 2)
            ends.append(total - total // 2)
        node.attribute.remove(attrs["auto_pad"])
        node.attribute.append(helper.make_attribute("pads", begins + ends))
