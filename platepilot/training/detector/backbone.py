"""A pretrained, frozen backbone for the plate detector: the first stages of PP-OCRv6's text detector.

The detector trained from scratch on synthetic scenes generalised poorly to real ones (78% of UCSD
plates found, 4 false boxes per image): its features learned cartoon textures. PaddleOCR's text
detector (shipped as ONNX in the `rapidocr` wheel, Apache-2.0) was trained on large sets of real
photos, and plates are text. Its stages to stride 16 become the detector's backbone, kept frozen;
only a small head is trained (`platepilot.training.detector.model.PlateHead`). The backbone runs
through onnxruntime while training (about 6x faster than the same graph converted to torch here),
and the export merges it with the head into one ONNX file, so the edge still needs onnxruntime only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnx import helper

from platepilot.detect.textdet import bundled_model_path
from platepilot.sessions import file_sha256

# The outputs of PP-OCRv6 det's stride-8 and stride-16 stages (the inputs of its own feature pyramid).
FEATURES = {"s8": "p2o.pd_op.add.27.0", "s16": "p2o.pd_op.add.50.0"}
CHANNELS = {"s8": 96, "s16": 192}
INPUT = "x"
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # PP-OCR's normalisation, BGR order
PROBE_SIZE = (352, 640)  # any size whose sides are multiples of 32 gives the same explicit pads


def _explicit_pads(model: onnx.ModelProto) -> None:
    """Rewrite SAME_UPPER auto-padding (Conv, MaxPool) as explicit pads, which every converter and
    torch-side check understands. For stride-1 kernels (all of them here) and sides that are
    multiples of 32 for the strided ones, the pads do not depend on the input size."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for dim, value in zip(probe.graph.input[0].type.tensor_type.shape.dim, (1, 3, *PROBE_SIZE), strict=True):
        dim.ClearField("dim_param")
        dim.dim_value = value
    inferred = onnx.shape_inference.infer_shapes(probe)
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in inferred.graph.value_info}
    shapes[INPUT] = [1, 3, *PROBE_SIZE]
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


def build_backbone(dest: Path) -> Path:
    """Write the frozen backbone (PP-OCRv6 det to stride 16, outputs s8 and s16) to `dest`; returns it."""
    source = bundled_model_path()
    model = onnx.load(str(source))
    _explicit_pads(model)
    dest.parent.mkdir(parents=True, exist_ok=True)
    full = dest.with_name(f".{dest.stem}.full.onnx")
    onnx.save(model, str(full))
    tmp = dest.with_name(f".{dest.stem}.tmp.onnx")
    onnx.utils.extract_model(str(full), str(tmp), [INPUT], list(FEATURES.values()))
    full.unlink()
    tmp.replace(dest)
    return dest


def backbone_source() -> dict[str, str]:
    """Where the backbone's weights come from, for the model card."""
    source = bundled_model_path()
    return {"file": f"rapidocr/models/{source.name}", "sha256": file_sha256(source), "licence": "Apache-2.0",
            "layers": "stem to the end of the stride-16 stage, frozen"}  # fmt: skip


class OrtBackbone:
    """The frozen backbone through onnxruntime: (N, 3, H, W) float tensor -> [s8, s16] float tensors."""

    def __init__(self, path: Path, threads: int = 2) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.path = path
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        batch = np.ascontiguousarray(images.detach().numpy(), dtype=np.float32)
        outputs = self._session.run(list(FEATURES.values()), {INPUT: batch})
        return [torch.from_numpy(o) for o in outputs]
