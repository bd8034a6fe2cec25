"""Gated promotion and deployment: the only ways a reader reaches `champion` or `ocr.model_path`
(besides the sync agent, which deploys the champion that got through this gate).

- `promote_gated`: the gate (`registry/gate.py`) on a registered version against the champion (or the
  default reader when there is none); the numbers and the decision become version tags either way.
- `deploy_model`: the gate on a training run's folder (or a registered version) against the CRNN
  deployed here (or the default reader), then the verified swap into `ocr.model_path` with its
  `gate.json`, the way the sync agent does it (the replaced model is kept in `previous/`).
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from pathlib import Path
from typing import Any

from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.ocr.deployed import STATE_FILE, Deployed, swap_in, verified_sha256, write_json
from platepilot.ocr.gate_record import GateRecord, Role, engine_role, read_gate_record
from platepilot.ocr.spec import load_card
from platepilot.registry.common import actor, first_line, utc_now
from platepilot.registry.gate import Contender, gate_tags, record_from_tags, run_gate, verdict_line
from platepilot.registry.models import AliasChange, current_version, download_version, model_version, promote

log = logging.getLogger(__name__)


def promote_gated(
    mlflow_client: Any, name: str, version: int, settings: Settings, force: bool = False,
    extra: Sequence[Path] = (), now: Callable[[], datetime] = utc_now,
) -> tuple[AliasChange, GateRecord]:  # fmt: skip
    """Gate `version` against the champion; record the result on the version; move `champion` unless
    the candidate is worse (PlatepilotError with the numbers) and `force` is not given."""
    current = current_version(mlflow_client, name)
    if current == version:
        raise PlatepilotError(f"{name} version {version} already is the champion")
    with tempfile.TemporaryDirectory(prefix="platepilot-gate-") as tmp:
        candidate = download_version(mlflow_client, name, version, Path(tmp) / "candidate")
        incumbent: Contender | None = None
        role: Role = "alone"
        if current is not None:
            try:
                champion = download_version(mlflow_client, name, current, Path(tmp) / "champion")
                card = load_card(champion)  # verified here: a corrupt champion is not a contender
                tags = dict(mlflow_client.get_model_version(name, str(current)).tags or {})
                incumbent = Contender(f"champion v{current}", champion)
                role = engine_role(settings.ocr.engine, record_from_tags(tags, card.sha256))
            except Exception as exc:  # a broken or lost champion must never block replacing it
                why = exc if isinstance(exc, PlatepilotError) else first_line(exc)
                log.warning("champion v%s cannot be read (%s): gating against the built-in reader", current, why)
        record = run_gate(Contender(f"v{version}", candidate), incumbent, settings, force, extra, role)
    when = now().isoformat(timespec="seconds")
    for key, value in gate_tags(record, actor(), when).items():
        mlflow_client.set_model_version_tag(name, str(version), key, value)
    if record.decision == "refused":
        raise PlatepilotError(f"{name} v{version} not promoted: {verdict_line(record)}")
    return promote(mlflow_client, name, version, force=force, now=now), record


def deploy_model(
    source: Path, settings: Settings, force: bool = False, state: Deployed | None = None,
    name: str | None = None,
) -> GateRecord:  # fmt: skip
    """Gate the model of `source` (a run folder or an .onnx) against the one deployed at
    `ocr.model_path` (or the default reader) and swap it in; `state` becomes `deployed.json`."""
    candidate = run_model(source)
    target = settings.ocr.model_path
    if verified_sha256(target) == load_card(candidate).sha256:
        raise PlatepilotError(f"{source}: this already is the deployed model at {target}")
    incumbent, role = _deployed_contender(target, settings)
    record = run_gate(Contender(name or f"run {_run_name(source)}", candidate), incumbent, settings, force,
                      incumbent_role=role)  # fmt: skip
    if record.decision == "refused":
        raise PlatepilotError(f"{source} not deployed: {verdict_line(record)}")
    target.parent.mkdir(parents=True, exist_ok=True)
    swap_in(candidate, target, record)
    state_file = target.parent / STATE_FILE
    if state is not None:
        write_json(state_file, asdict(state))
    else:
        state_file.unlink(missing_ok=True)  # it described the model just replaced
    return record


def deploy_version(
    mlflow_client: Any, name: str, version: int, settings: Settings, force: bool = False,
    now: Callable[[], datetime] = utc_now,
) -> GateRecord:  # fmt: skip
    """Download registered `version` and deploy it here through the gate (`deploy_model`)."""
    mv = model_version(mlflow_client, name, version)
    staging = Path(tempfile.mkdtemp(prefix="platepilot-deploy-"))
    try:
        onnx = download_version(mlflow_client, name, version, staging)
        card = load_card(onnx)
        state = Deployed(name, version, mv.run_id or "", card.sha256, now().isoformat())
        return deploy_model(onnx, settings, force, state, name=f"v{version}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def run_model(source: Path) -> Path:
    """The ONNX of a run folder (its only .onnx at top level), or `source` itself when it is one;
    the sidecar is verified (sha256) on the way."""
    if source.is_dir():
        found = sorted(source.glob("*.onnx"))
        if len(found) != 1:
            raise PlatepilotError(f"{source}: expected one .onnx model in this run folder, found {len(found)}")
        source = found[0]
    elif not source.is_file():
        raise PlatepilotError(f"{source}: no such run folder or model (pass models/runs/<run> or a version number)")
    load_card(source)
    return source


def _deployed_contender(target: Path, settings: Settings) -> tuple[Contender | None, Role]:
    """The CRNN deployed at `target` and how the configured engine reads it (by its gate record), if it loads;
    (None, "alone": the default reader) otherwise."""
    if not target.is_file():
        return None, "alone"
    try:
        card = load_card(target)
    except PlatepilotError:
        return None, "alone"
    role = engine_role(settings.ocr.engine, read_gate_record(target, card.sha256))
    return Contender(f"deployed {card.sha256[:12]}", target), role


def _run_name(source: Path) -> str:
    return source.name if source.is_dir() else source.parent.name
