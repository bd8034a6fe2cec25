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

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch

from platepilot.detect.textdet import bundled_model_path
from platepilot.sessions import file_sha256
from platepilot.training.ppocr_backbone import cut_ppocr_det

# The outputs of PP-OCRv6 det's stride-8 and stride-16 stages (the inputs of its own feature pyramid).
FEATURES = {"s8": "p2o.pd_op.add.27.0", "s16": "p2o.pd_op.add.50.0"}
CHANNELS = {"s8": 96, "s16": 192}
INPUT = "x"
MEAN, STD = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)  # PP-OCR's normalisation, BGR order
PROBE_SIZE = (352, 640)  # explicit pads for it hold for any input whose sides are multiples of 32


def build_backbone(dest: Path) -> Path:
    """Write the frozen backbone (PP-OCRv6 det to stride 16, outputs s8 and s16) to `dest`; returns it."""
    model = cut_ppocr_det(bundled_model_path(), list(FEATURES.values()), PROBE_SIZE)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.stem}.tmp.onnx")
    onnx.save(model, str(tmp))
    tmp.replace(dest)
    return dest


def backbone_source() -> dict[str, str]:
    """Where the backbone's weights come from, for the model card."""
    source = bundled_model_path()
    return {"file": f"rapidocr/models/{source.name}", "sha256": file_sha256(source), "licence": "Apache-2.0",
            "layers": "stem to the end of the stride-16 stage, frozen"}  # fmt: skip


class OrtBackbone:
    """A frozen, cut PP-OCR graph through onnxruntime: (N, 3, H, W) float tensor -> its `outputs` as float
    tensors (the detector's: [s8, s16])."""

    def __init__(self, path: Path, threads: int = 2, outputs: tuple[str, ...] = tuple(FEATURES.values())) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.path, self.outputs = path, list(outputs)
        self._session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def __call__(self, images: torch.Tensor) -> list[torch.Tensor]:
        batch = np.ascontiguousarray(images.detach().numpy(), dtype=np.float32)
        outputs = self._session.run(self.outputs, {INPUT: batch})
        return [torch.from_numpy(o) for o in outputs]
