"""Issue 15 against a real `mlflow server`: the promotion gate refuses a worse reader (with the numbers,
recorded on the version) and accepts a better one; a forced, worse CRNN deployed by sync does not
replace PlateOCR under `auto` but joins it as its crnn member; `models deploy` goes through the gate."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_registry_mlflow import NAME, LiveServer, _Result, env, server  # noqa: F401  (module fixtures)
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.config import load_config
from platepilot.errors import PlatepilotError
from platepilot.ocr.cascade import CascadeOCR
from platepilot.ocr.gate_record import read_gate_record
from platepilot.ocr.models import BUNDLED_MODEL, choose_reader, make_engine
from platepilot.ocr.plate_ocr import CRNNMember, PlateOCR
from platepilot.ocr.spec import file_sha256, load_card
from platepilot.registry.common import client
from platepilot.registry.gate import record_from_tags
from platepilot.registry.sync import SyncAgent, SyncSettings
from platepilot.registry.tracking import log_training_run
from platepilot.training.train import TrainOptions

pytestmark = pytest.mark.mlflow
TINY_ARCH = {"channels": [8, 8, 16, 16, 16], "hidden": 16}


def _register(live: LiveServer, model: Path, folder: Path) -> int:
    """Register a copy of `model` (ONNX + sidecar) as a new version; returns its number."""
    folder.mkdir(parents=True)
    copy = folder / "florida_plate_ocr.onnx"
    for suffix in (".onnx", ".json"):
        shutil.copy2(model.with_suffix(suffix), copy.with_suffix(suffix))
    opts = TrainOptions(labels=None, output_dir=folder, epochs=1, synthetic=64, arch=TINY_ARCH)
    record = log_training_run(opts, _Result(copy), live.url, NAME, register=True, say=lambda s: None)
    assert record.version is not None
    return record.version


@pytest.fixture()
def site(tmp_path: Path, labelled_crops: Path) -> Path:
    """A config whose default reader is PlateOCR with only its (bundled) crnn member: fast and offline."""
    config = {
        "ocr": {"model_path": str(tmp_path / "edge" / "crnn_florida" / "florida_plate_ocr.onnx"),
                "plateocr_members": ["crnn"], "plateocr_lines": False},
        "gate": {"labels": str(labelled_crops), "holdout_fraction": 0.5},
    }  # fmt: skip
    path = tmp_path / "platepilot.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def test_gate_refuses_worse_accepts_better_and_auto_keeps_the_bundled_cascade(
    server: LiveServer,  # noqa: F811  (the module-scoped fixture imported above)
    tmp_path: Path,
    tiny_model: Path,
    site: Path,
) -> None:
    worse = _register(server, tiny_model, tmp_path / "worse")  # random weights: reads nothing right
    better = _register(server, BUNDLED_MODEL, tmp_path / "better")
    cfg = ("--tracking-uri", server.url, "--config", str(site))
    c = client(server.url)

    refused = _cli("models", "promote", "--version", str(worse), *cfg)
    assert refused.exit_code == 1 and isinstance(refused.exception, PlatepilotError)
    message = str(refused.exception)
    assert "not promoted" in message and "exact (folded)" in message and "cascade (built-in)" in message
    assert "golden 0/32" in message and "\n" not in message
    tags = c.get_model_version(NAME, str(worse)).tags
    assert tags["gate.decision"] == "refused" and tags["gate.beats_default"] == "false"
    assert c.get_registered_model(NAME).aliases.get("champion") is None

    forced = _cli("models", "promote", "--version", str(worse), "--force", *cfg)
    assert forced.exit_code == 0 and "forced:" in forced.output, forced.output
    assert c.get_model_version(NAME, str(worse)).tags["gate.decision"] == "forced"

    settings = load_config(site)
    target = settings.ocr.model_path
    agent = SyncAgent(SyncSettings(server.url, NAME, target, "edge-1", interval=5), log=lambda s: None)
    assert agent.poll_once().status == "deployed"
    assert read_gate_record(target, file_sha256(target)) is not None
    choice = choose_reader("auto", None, settings)
    assert choice.engine == "cascade" and "did not beat PlateOCR" in choice.reason
    engine = make_engine("auto", None, settings)
    assert isinstance(engine, CascadeOCR) and isinstance(engine.then, PlateOCR)
    assert engine.first.model_path == BUNDLED_MODEL  # type: ignore[attr-defined]
    members = [m for m in engine.then.members if isinstance(m, CRNNMember)]
    # PlateOCR read worse with it as its member at the gate, so the bundled member stays
    assert "made it read worse as its crnn member" in choice.reason
    assert c.get_model_version(NAME, str(worse)).tags["gate.member_helps"] == "false"
    assert [m._service.model_path for m in members] == [BUNDLED_MODEL]
    shown = _cli("config", "show", "--config", str(site))
    assert "# live reader: cascade (the deployed CRNN did not beat PlateOCR" in shown.output
    assert "PlateOCR with the bundled CRNN as its crnn member for the reads it is less sure of" in shown.output

    accepted = _cli("models", "promote", "--version", str(better), *cfg)
    assert accepted.exit_code == 0 and "accepted:" in accepted.output, accepted.output
    assert f"champion: v{worse} -> v{better}" in accepted.output
    assert c.get_model_version(NAME, str(better)).tags["gate.decision"] == "accepted"
    record = record_from_tags(c.get_model_version(NAME, str(better)).tags, load_card(BUNDLED_MODEL).sha256)
    assert record is not None and record.cascade is not None and "cascade of" in accepted.output
    # the bundled CRNN's cascade is the built-in default reader, built the other way: the same reads
    assert [s.exact_folded for s in record.cascade.sets] == [s.exact_folded for s in record.default.sets]
    assert record.cascade.n == record.default.n > 0


def test_models_deploy_a_run_folder_through_the_gate(tmp_path: Path, tiny_model: Path, site: Path) -> None:
    run = tmp_path / "models" / "runs" / "20260408T120000Z"
    run.mkdir(parents=True)
    for suffix in (".onnx", ".json"):
        shutil.copy2(tiny_model.with_suffix(suffix), run / f"florida_plate_ocr{suffix}")
    target = load_config(site).ocr.model_path
    refused = _cli("models", "deploy", str(run), "--config", str(site))
    assert refused.exit_code == 1 and "not deployed: refused" in str(refused.exception)
    assert not target.exists()
    forced = _cli("models", "deploy", str(run), "--force", "--config", str(site))
    assert forced.exit_code == 0, forced.output
    assert file_sha256(target) == load_card(run / "florida_plate_ocr.onnx").sha256
    assert "live reader: cascade" in forced.output  # the tiny model helps PlateOCR in no way
