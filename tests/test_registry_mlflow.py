"""Issue 8's acceptance against a real `mlflow server` on 127.0.0.1 (one per module, stopped by PID).

Train a tiny model with `--register`, promote it, the sync agent deploys it, a second version is
promoted and replaces it, rollback restores the first; the server is stopped mid-run and the agent
keeps the current model and recovers when it returns; a tampered artifact is refused.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.ocr.spec import file_sha256, load_card
from platepilot.registry.common import client
from platepilot.registry.models import alias_history, list_versions
from platepilot.registry.server import ServerInfo, free_port, start_server, stop_server
from platepilot.registry.sync import SyncAgent, SyncSettings
from platepilot.registry.tracking import log_training_run, register_version
from platepilot.training.train import TrainOptions

pytestmark = pytest.mark.mlflow

NAME = "alpr-florida-ocr-crnn"
TINY_ARCH = {"channels": [8, 8, 16, 16, 16], "hidden": 16}


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HOME", str(home))
        mp.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # what `platepilot sync` sets for itself
        mp.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")
        yield home


class LiveServer:
    """The module's server; a test that restarts it swaps in the new PID so teardown stops that one."""

    def __init__(self, info: ServerInfo) -> None:
        self.info = info

    @property
    def url(self) -> str:
        return self.info.url

    def stop(self) -> None:
        stop_server(self.info.pid)

    def restart(self) -> None:
        self.info = start_server(self.info.data_dir, int(self.url.rsplit(":", 1)[1]))


@pytest.fixture(scope="module")
def server(env: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = LiveServer(start_server(tmp_path_factory.mktemp("mlflow"), free_port()))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def versions(server: LiveServer, tmp_path_factory: pytest.TempPathFactory, tiny_model: Path) -> dict[int, Path]:
    """v1: trained by `platepilot train ... --register`; v2: the random tiny model, logged and registered."""
    out1 = tmp_path_factory.mktemp("run1")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("platepilot.training.records.DEFAULT_ARCH", TINY_ARCH)
        args = ["train", "--synthetic", "64", "--epochs", "1", "--batch-size", "16", "--workers", "0"]
        args += ["--output-dir", str(out1), "--register", "--tracking-uri", server.url]
        result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "registered alpr-florida-ocr-crnn version 1" in result.output
    # the deploy hint names the registry it registered in, so it works as printed
    hint = f"models promote --version 1 --tracking-uri {server.url} --model-name alpr-florida-ocr-crnn"
    assert hint in " ".join(result.output.split())  # the console wraps long lines
    out2 = tmp_path_factory.mktemp("run2")
    model2 = out2 / tiny_model.name
    shutil.copy2(tiny_model, model2)
    shutil.copy2(tiny_model.with_suffix(".json"), model2.with_suffix(".json"))
    opts = TrainOptions(labels=None, output_dir=out2, epochs=1, synthetic=64, arch=TINY_ARCH)
    record = log_training_run(opts, _Result(model2), server.url, NAME, register=True, say=lambda s: None)
    assert record.version == 2
    return {1: out1 / "florida_plate_ocr.onnx", 2: model2}


class _Result:
    """A TrainResult-shaped record for a model that was not trained here (the random tiny model)."""

    def __init__(self, model_path: Path) -> None:
        self.model_path = model_path
        self.best = {"epoch": 1.0, "exact": 0.0, "cer": 1.0}
        self.history = [{"epoch": 1.0, "loss": 20.0, "val_loss": 19.0, "exact": 0.0, "cer": 1.0}]
        self.stopped, self.collapse_detected, self.seconds = "completed", False, 1.0


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args))


def _agent(server: LiveServer, target: Path, lines: list[str], device: str = "edge-1") -> SyncAgent:
    return SyncAgent(SyncSettings(server.url, NAME, target, device, interval=5), log=lines.append)


def test_register_logs_run_with_metadata(server: LiveServer, versions: dict[int, Path]) -> None:
    c = client(server.url)
    card = load_card(versions[1])
    mv = c.get_model_version(NAME, "1")
    assert card.run_id == mv.run_id  # the sidecar names its run, and its sha256 still holds
    run = c.get_run(mv.run_id)
    assert run.data.params["epochs"] == "1" and run.data.params["synthetic"] == "64"
    assert [m.step for m in c.get_metric_history(mv.run_id, "val_loss")] == [1]
    files = {a.path for folder in ("model", "plots") for a in c.list_artifacts(mv.run_id, folder)}
    assert {"model/florida_plate_ocr.onnx", "model/florida_plate_ocr.json"} <= files
    assert {"plots/training_curves.png", "plots/val_predictions.png"} <= files
    assert mv.tags["sha256"] == card.sha256 and "val.exact_folded" in mv.tags and "data.val" in mv.tags
    assert len(json.loads(mv.tags["golden.reads"])) == 32
    assert "git_commit" in mv.tags


def test_promote_sync_replace_rollback(
    server: LiveServer, versions: dict[int, Path], tmp_path: Path, labelled_crops: Path
) -> None:
    target = tmp_path / "edge" / "models" / "crnn_florida" / "florida_plate_ocr.onnx"
    lines: list[str] = []
    agent = _agent(server, target, lines)
    uri = ("--tracking-uri", server.url)
    assert agent.poll_once().status == "no_champion"

    promoted = _cli("models", "promote", "--version", "1", "--force", *uri)  # 1 epoch: the gate refuses it
    assert promoted.exit_code == 0, promoted.output
    assert agent.poll_once().status == "deployed"
    assert file_sha256(target) == load_card(versions[1]).sha256
    assert agent.poll_once().status == "current"

    # the gate: v2 against the champion v1 on the golden plates and the labels file, recorded on v2
    c = client(server.url)
    gated = _cli("models", "promote", "--version", "2", "--eval-labels", str(labelled_crops), *uri)
    tags = c.get_model_version(NAME, "2").tags
    assert str(labelled_crops) in tags["gate.candidate"] and "champion v1" in tags["gate.incumbent"]
    if tags["gate.decision"] == "refused":
        assert gated.exit_code == 1 and "not promoted" in str(gated.exception)
        gated = _cli("models", "promote", "--version", "2", "--force", *uri)
    assert gated.exit_code == 0, gated.output
    assert agent.poll_once().status == "deployed"
    assert file_sha256(target) == load_card(versions[2]).sha256
    assert file_sha256(target.parent / "previous" / target.name) == load_card(versions[1]).sha256
    listed = _cli("models", "list", *uri)
    assert listed.exit_code == 0 and "champion" in listed.output and "edge-1" in listed.output

    rolled = _cli("models", "rollback", *uri)
    assert rolled.exit_code == 0 and "v2 -> v1" in rolled.output, rolled.output
    assert agent.poll_once().status == "deployed"
    assert file_sha256(target) == load_card(versions[1]).sha256
    history = alias_history(c, NAME)
    assert [(h.from_version, h.to_version) for h in history][-3:] == [(None, 1), (1, 2), (2, 1)]
    assert all(h.who and h.when for h in history)
    devices = {row.version: row.devices for row in list_versions(c, NAME)}
    assert devices[1] == ("edge-1",) and devices[2] == ()


def test_server_outage_keeps_model_and_recovers(server: LiveServer, versions: dict[int, Path], tmp_path: Path) -> None:
    target = tmp_path / "crnn_florida" / "florida_plate_ocr.onnx"
    lines: list[str] = []
    agent = _agent(server, target, lines)
    _cli("models", "promote", "--version", "1", "--force", "--tracking-uri", server.url)
    assert agent.poll_once().status == "deployed"
    assert _cli("models", "promote", "--version", "2", "--force", "--tracking-uri", server.url).exit_code == 0
    running = file_sha256(target)
    delays: list[float] = []

    def sleep(seconds: float) -> None:  # the agent's clock: the server comes back after the third error
        delays.append(seconds)
        if len(delays) == 3:
            server.restart()

    server.stop()  # mid-run: the agent has v1 and the champion has just moved to v2
    agent.run(threading.Event(), sleep=sleep, max_polls=4)
    errors = [line for line in lines if "keeping" in line]
    assert len(errors) == 3 and all(line.count("\n") == 0 and "keeping v1" in line for line in errors)
    assert delays[1] > delays[0] * 1.5 and delays[2] > delays[1] * 1.5  # backoff
    assert file_sha256(target) != running and file_sha256(target) == load_card(versions[2]).sha256
    assert "deployed alpr-florida-ocr-crnn v2" in lines[-1]


def test_tampered_artifact_is_refused(server: LiveServer, versions: dict[int, Path], tmp_path: Path) -> None:
    c = client(server.url)
    experiment = c.get_experiment_by_name(NAME)
    run = c.create_run(experiment.experiment_id)
    for suffix in (".onnx", ".json"):
        c.log_artifact(run.info.run_id, str(versions[2].with_suffix(suffix)), "model")
    c.set_terminated(run.info.run_id)
    tags = {"sha256": load_card(versions[2]).sha256}
    version = register_version(c, NAME, run.info.run_id, tags)
    stored = next(server.info.data_dir.glob(f"artifacts/**/{run.info.run_id}/**/florida_plate_ocr.onnx"))

    target = tmp_path / "crnn_florida" / "florida_plate_ocr.onnx"
    lines: list[str] = []
    agent = _agent(server, target, lines, device="edge-2")
    _cli("models", "promote", "--version", "1", "--force", "--tracking-uri", server.url)
    assert agent.poll_once().status == "deployed"
    before = file_sha256(target)
    assert _cli("models", "promote", "--version", str(version), "--force", "--tracking-uri", server.url).exit_code == 0
    stored.write_bytes(stored.read_bytes()[:-64] + bytes(64))  # flipped on the artifact store after the gate
    outcome = agent.poll_once()
    assert outcome.status == "refused" and "sha256" in outcome.message
    assert file_sha256(target) == before and "keeping v1" in lines[-1]
    assert "refused.edge-2" in c.get_model_version(NAME, str(version)).tags
    assert not list(target.parent.glob(".incoming-*"))


def test_sync_command_exits_cleanly_on_sigterm(server: LiveServer, versions: dict[int, Path], tmp_path: Path) -> None:
    promoted = _cli("models", "promote", "--version", "1", "--force", "--tracking-uri", server.url)
    assert promoted.exit_code == 0, promoted.output
    target = tmp_path / "crnn_florida" / "florida_plate_ocr.onnx"
    args = [sys.executable, "-m", "platepilot.cli", "sync", "--interval", "30", "--device-id", "edge-3"]
    args += ["--tracking-uri", server.url, "--model-path", str(target)]
    env = {**os.environ, "COLUMNS": "300"}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        deadline = time.monotonic() + 120
        assert proc.stdout is not None
        seen = []
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            seen.append(line)
            if "deployed" in line or not line:
                break
        assert any("deployed" in line for line in seen), seen
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
        assert "stop signal received" in proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
