"""What a CRNN training run takes and gives, as typed records. Torch-free: the registry, which logs runs to
MLflow, types against them without importing the training stack."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_ARCH: dict[str, Any] = {"channels": [16, 32, 48, 48, 80], "hidden": 64}
"""The CRNN's default shape: conv channels per block, BiLSTM hidden size."""


@dataclass
class TrainOptions:
    """Everything a run needs; the CLI and scripts/ocr/train_crnn.py fill it from the guide's flags."""

    labels: Path | None
    output_dir: Path
    epochs: int = 300
    batch_size: int = 16
    val_split: float = 0.15
    patience: int = 100
    lr: float = 1e-3
    synthetic: int = 0
    init_from: Path | None = None
    resume: bool = False
    holdout_fraction: float = 0.15  # crops (whole tracks) kept for the promotion gate: never trained on
    pseudo: bool = False  # also train on the pseudo-labels of `labels`' sidecar (`platepilot labels auto`)
    pseudo_weight: float = 0.5  # their loss weight; human labels and synthetic plates weigh 1
    degrade_real: float = 0.0  # share of real crops drawn that also get a camera degradation (plates.camera.degrade)
    motion_blur: float = 0.0  # share of all crops drawn that get a camera's motion blur (plates.blur.camera_motion)
    designs: list[Path] = field(default_factory=list)  # folders of real plate designs (`plates.templates`)
    designs_share: float = 0.2  # share of the synthetic plates drawn on those designs
    seed: int = 0
    workers: int = 0
    arch: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_ARCH))
    grow: dict[str, Any] = field(default_factory=dict)  # with init_from: widen its network to these channels/hidden


@dataclass(frozen=True)
class TrainResult:
    """What a run gave: the exported model (None when no epoch completed), the best epoch's metrics, every
    epoch's metrics (`history.json`), why it stopped (completed, early_stop, interrupted), its seconds."""

    model_path: Path | None
    best: dict[str, float]
    history: list[dict[str, float]]
    stopped: str
    collapse_detected: bool
    seconds: float
