"""Log a finished training run to MLflow and, with `--register`, make it a new registered model version.

A run holds the run's options as params, the per-epoch metrics (step = epoch), the ONNX model and its
sidecar under `model/`, the torch weights under `weights/` (for a later `--init-from`) and the training
curves and validation prediction grid under `plots/`. When no server answers at an http URI, the run
goes to a local store under the output folder instead (`<output-dir>/mlruns/`), with one line saying so.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from platepilot.errors import PlatepilotError
from platepilot.ocr.spec import load_card, save_card
from platepilot.registry.common import client, first_line, import_mlflow, is_http, server_answers
from platepilot.registry.golden import read_golden
from platepilot.training.records import TrainOptions, TrainResult

MODEL_ARTIFACT_DIR = "model"
LOCAL_STORE_DIR = "mlruns"
# plots logged with a run when present; valid_test/ holds a state run's valid+test errors
_PLOTS = ("training_curves.png", "val_predictions.png", "history.json", "valid_test/worst_errors.png")
_DATA_KEYS = ("labels", "train", "val", "synthetic_per_epoch")
_BATCH = 1000  # MLflow's limit of metrics per log_batch call


@dataclass(frozen=True)
class RunRecord:
    """Where a training run was logged: its run id, the registered version (None if not registered)."""

    run_id: str
    version: int | None
    tracking_uri: str


def log_training_run(
    opts: TrainOptions, result: TrainResult, tracking_uri: str, model_name: str, register: bool,
    say: Callable[[str], None] = print,
) -> RunRecord:  # fmt: skip
    """Log a `train()` result (`TrainOptions`, `TrainResult`) to MLflow; register it when asked.

    The run id is written into the model's sidecar before the artifacts are logged, so the logged
    sidecar names its run and its sha256 still matches the ONNX file.
    """
    model_path: Path | None = result.model_path
    if model_path is None:
        raise PlatepilotError("nothing to log to MLflow: training produced no model")
    import_mlflow()
    uri = resolve_tracking_uri(tracking_uri, Path(opts.output_dir), say)
    try:
        return _log(opts, result, model_path, uri, model_name, register, say)
    except PlatepilotError:
        raise
    except Exception as exc:  # server gone mid-run, store errors: one line, the model stays on disk
        raise PlatepilotError(
            f"logging to MLflow at {uri} failed ({first_line(exc)}); the model is saved at {model_path}"
        ) from exc


def _log(
    opts: TrainOptions, result: TrainResult, model_path: Path, uri: str, model_name: str, register: bool,
    say: Callable[[str], None],
) -> RunRecord:  # fmt: skip
    mlflow_client = client(uri)
    experiment_id = _experiment(mlflow_client, model_name, uri, Path(opts.output_dir))
    card = load_card(model_path)
    run = mlflow_client.create_run(experiment_id, tags=_run_tags(card.training, result))
    run_id = run.info.run_id
    try:
        save_card(model_path, card.model_copy(update={"run_id": run_id}))
        _log_params_metrics(mlflow_client, run_id, opts, result)
        golden = read_golden(model_path)
        mlflow_client.log_metric(run_id, "golden_exact_folded", golden.exact_folded)
        _log_files(mlflow_client, run_id, model_path)
    except BaseException:
        with contextlib.suppress(Exception):  # the server may be what failed
            mlflow_client.set_terminated(run_id, "FAILED")
        raise
    mlflow_client.set_terminated(run_id, "FINISHED")
    say(f"logged MLflow run {run_id} to {uri} (experiment {model_name})")
    if not register:
        return RunRecord(run_id, None, uri)
    tags = _version_tags(load_card(model_path), golden.tags())
    version = register_version(mlflow_client, model_name, run_id, tags)
    promote = f"platepilot models promote --version {version} --tracking-uri {uri} --model-name {model_name}"
    say(f"registered {model_name} version {version} (to deploy it: {promote})")
    return RunRecord(run_id, version, uri)


DETECTOR_EXPERIMENT = "plate_detector"


def log_detector_run(
    opts: Any, result: Any, tracking_uri: str, say: Callable[[str], None] = print,
    experiment: str = DETECTOR_EXPERIMENT, task: str = "detect",
) -> str:  # fmt: skip
    """Log a `train_detector()` run (options, per-epoch metrics, ONNX + sidecar, weights, curves) to MLflow
    in the `plate_detector` experiment; returns the run id. Detectors are not registered: a trained one
    is used by pointing `detector.model_path` at it. The state classifier's runs (`platepilot state
    train`) are logged the same way, in their own `experiment` and `task` tag."""
    import_mlflow()
    uri = resolve_tracking_uri(tracking_uri, Path(opts.output_dir), say)
    try:
        mlflow_client = client(uri)
        experiment_id = _experiment(mlflow_client, experiment, uri, Path(opts.output_dir))
        commit = git_commit()
        run = mlflow_client.create_run(experiment_id, tags={"task": task} | ({"git_commit": commit} if commit else {}))
        run_id = str(run.info.run_id)
        _log_params_metrics(mlflow_client, run_id, opts, result)
        _log_files(mlflow_client, run_id, result.model_path)
        mlflow_client.set_terminated(run_id, "FINISHED")
    except Exception as exc:  # server gone mid-run, store errors: one line, the model stays on disk
        raise PlatepilotError(
            f"logging to MLflow at {uri} failed ({first_line(exc)}); the model is saved at {result.model_path}"
        ) from exc
    say(f"logged MLflow run {run_id} to {uri} (experiment {experiment})")
    return run_id


def resolve_tracking_uri(tracking_uri: str, output_dir: Path, say: Callable[[str], None] = print) -> str:
    """`tracking_uri` if it answers (or is not http), else a SQLite store under `output_dir/mlruns/`."""
    if server_answers(tracking_uri):
        return tracking_uri
    store = (output_dir / LOCAL_STORE_DIR).resolve()
    store.mkdir(parents=True, exist_ok=True)
    say(
        f"no MLflow server answers at {tracking_uri}: logging to the local store {store} instead "
        f"(browse it with: mlflow ui --backend-store-uri sqlite:///{store}/mlflow.db; "
        "start a server with: platepilot mlflow up)"
    )
    return f"sqlite:///{store}/mlflow.db"


def register_version(mlflow_client: Any, model_name: str, run_id: str, tags: dict[str, str]) -> int:
    """Register `runs:/<run_id>/model` as a new version of `model_name` (created if new)."""
    from mlflow.exceptions import MlflowException

    try:
        mlflow_client.get_registered_model(model_name)
    except MlflowException:
        mlflow_client.create_registered_model(
            model_name, description="Florida licence plate reader (CRNN + CTC, ONNX with JSON sidecar)"
        )
    version = mlflow_client.create_model_version(
        model_name,
        source=f"runs:/{run_id}/{MODEL_ARTIFACT_DIR}",
        run_id=run_id,
        tags=tags,
        await_creation_for=0,
    )
    return int(version.version)


def git_commit(cwd: Path | None = None) -> str | None:
    """The checked-out commit of the working directory's repository (`+dirty` if modified), or None."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=cwd, capture_output=True, text=True, timeout=10, check=True,
        ).stdout  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if status.strip() else "") if head else None


def _experiment(mlflow_client: Any, name: str, uri: str, output_dir: Path) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    location = None if is_http(uri) else (output_dir / LOCAL_STORE_DIR / "artifacts").resolve().as_uri()
    return str(mlflow_client.create_experiment(name, artifact_location=location))


def _run_tags(training: dict[str, Any], result: TrainResult) -> dict[str, str]:
    tags = _data_tags(training) | {
        "stopped": str(result.stopped),
        "collapse_detected": str(result.collapse_detected),
    }
    commit = git_commit()
    if commit:
        tags |= {"git_commit": commit, "mlflow.source.git.commit": commit.removesuffix("+dirty")}
    return tags


def _log_params_metrics(mlflow_client: Any, run_id: str, opts: Any, result: Any) -> None:
    from mlflow.entities import Metric, Param

    fields = asdict(opts)
    params = [Param(k, json.dumps(v) if isinstance(v, dict) else str(v)) for k, v in sorted(fields.items())]
    now = int(time.time() * 1000)
    metrics = [
        Metric(key, float(value), now, int(record["epoch"]))
        for record in result.history
        for key, value in record.items()
        if key != "epoch"
    ]
    metrics += [Metric(f"best_{k}", float(v), now, 0) for k, v in result.best.items() if k != "epoch"]
    metrics.append(Metric("train_seconds", float(result.seconds), now, 0))
    mlflow_client.log_batch(run_id, params=params)
    for start in range(0, len(metrics), _BATCH):
        mlflow_client.log_batch(run_id, metrics=metrics[start : start + _BATCH])


def _log_files(mlflow_client: Any, run_id: str, model_path: Path) -> None:
    mlflow_client.log_artifact(run_id, str(model_path), MODEL_ARTIFACT_DIR)
    mlflow_client.log_artifact(run_id, str(model_path.with_suffix(".json")), MODEL_ARTIFACT_DIR)
    weights = model_path.with_suffix(".pt")
    if weights.is_file():
        mlflow_client.log_artifact(run_id, str(weights), "weights")
    for name in _PLOTS:
        path = model_path.parent / name
        if path.is_file():
            mlflow_client.log_artifact(run_id, str(path), "plots")


def _version_tags(card: Any, golden: dict[str, str]) -> dict[str, str]:
    tags = {f"val.{k}": f"{v:.4f}" for k, v in card.metrics.items()}
    tags |= _data_tags(card.training)
    tags |= {"sha256": card.sha256, **golden}
    commit = git_commit()
    if commit:
        tags["git_commit"] = commit
    return tags


def _data_tags(training: dict[str, Any]) -> dict[str, str]:
    """The data summary of a run (`labels`, `train`, `val` crops, synthetic per epoch) as `data.*` tags."""
    return {f"data.{k}": str(v) for k, v in training.items() if k in _DATA_KEYS}
