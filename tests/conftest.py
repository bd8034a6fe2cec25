"""Shared fixtures: a tiny random-init CRNN exported to ONNX, synthetic labelled crops, a mosquitto broker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
from brokers import start_mosquitto, stop_process

from platepilot.plates.synth import synth_sample
from platepilot.registry.server import free_port

TINY_ARCH = {"channels": [8, 8, 16, 16, 16], "hidden": 16}


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-init CRNN (seed 0, default spec: grey 32x128, 36 characters) exported with its sidecar."""
    import torch

    from platepilot.ocr.spec import ModelCard, ModelSpec
    from platepilot.training.export import export_onnx
    from platepilot.training.model import build_model

    torch.manual_seed(0)
    spec = ModelSpec()
    model = build_model(spec.channels, spec.num_classes, spec.height, TINY_ARCH)
    path = tmp_path_factory.mktemp("tiny_model") / "florida_plate_ocr.onnx"
    export_onnx(model, ModelCard(spec=spec, architecture=TINY_ARCH), path)
    return path


@pytest.fixture(scope="session")
def synth_crops() -> list[tuple[np.ndarray, str]]:
    """32 synthetic plate crops (BGR uint8) with their texts, deterministic."""
    return [(s.image, s.text) for s in (synth_sample(7, i) for i in range(32))]


@pytest.fixture()
def labelled_crops(tmp_path: Path, synth_crops: list[tuple[np.ndarray, str]]) -> Path:
    """`tmp_path/crops/labels.txt` over 8 synthetic JPEG crops named relative to the labels file."""
    folder = tmp_path / "crops"
    folder.mkdir()
    lines = []
    for i, (image, text) in enumerate(synth_crops[:8]):
        name = f"CAM1_track{i}.jpg"
        assert cv2.imwrite(str(folder / name), image)
        lines.append(f"{name}\t{text}\n")
    labels = folder / "labels.txt"
    labels.write_text("".join(lines), encoding="utf-8")
    return labels


@pytest.fixture()
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """A real mosquitto broker on 127.0.0.1 on a free port (anonymous clients allowed); yields the port."""
    port = free_port()
    proc = start_mosquitto(tmp_path_factory.mktemp("mosquitto"), port)
    try:
        yield port
    finally:
        stop_process(proc)
