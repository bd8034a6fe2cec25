"""The registered reader's versions and its `champion` alias: list, promote (gated), roll back.

MLflow 3.x has no CLI command to set an alias (the guide's `mlflow models set-model-alias` does not
exist), so these are the working equivalent. Every alias change is kept as a registered-model tag
`alias_history.n<count>.<UTC timestamp>` holding `{"alias", "from", "to", "who", "when", "action"}`: one small tag
per change, so the history never hits MLflow's tag-size limit and shows in the MLflow UI.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from platepilot.errors import PlatepilotError
from platepilot.registry.common import CHAMPION, actor, import_mlflow, utc_now

HISTORY_PREFIX = "alias_history."
HISTORY_COUNTED = "n"
"""Keys `alias_history.n<count>.<time>` order the history by a counter: the clocks of the machines that
promote differ, and ordered by time a rollback went back to the wrong version. Keys of the time alone
(before the counter) sort first, as they are older."""
DEPLOYED_PREFIX = "deployed."

Evaluator = Callable[[Path], float]
"""Scores a downloaded model (its .onnx path): exact (O/I-folded) reads in [0, 1]; higher is better."""


@dataclass(frozen=True)
class VersionRow:
    """One registered version: its aliases, validation metrics (version tags) and devices running it."""

    version: int
    aliases: tuple[str, ...]
    created: datetime
    run_id: str
    metrics: dict[str, str]
    devices: tuple[str, ...]


@dataclass(frozen=True)
class AliasChange:
    """One move of an alias: `from_version` None when the alias was new."""

    alias: str
    from_version: int | None
    to_version: int
    who: str
    when: str
    action: str

    def to_json(self) -> str:
        return json.dumps(
            {"alias": self.alias, "from": self.from_version, "to": self.to_version, "who": self.who,
             "when": self.when, "action": self.action}
        )  # fmt: skip


def list_versions(mlflow_client: Any, name: str) -> list[VersionRow]:
    """Every version of `name`, newest first."""
    model = _registered(mlflow_client, name)
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    rows = []
    for mv in mlflow_client.search_model_versions(f"name='{name}'"):
        tags = dict(mv.tags or {})
        rows.append(
            VersionRow(
                version=int(mv.version),
                aliases=tuple(sorted(aliases.get(str(mv.version), []))),
                created=datetime.fromtimestamp(mv.creation_timestamp / 1000),
                run_id=mv.run_id or "",
                metrics={k.removeprefix("val."): v for k, v in tags.items() if k.startswith("val.")},
                devices=tuple(sorted(k.removeprefix(DEPLOYED_PREFIX) for k in tags if k.startswith(DEPLOYED_PREFIX))),
            )
        )
    return sorted(rows, key=lambda r: -r.version)


def alias_history(mlflow_client: Any, name: str, alias: str = CHAMPION) -> list[AliasChange]:
    """The recorded changes of `alias`, oldest first."""
    tags = _registered(mlflow_client, name).tags or {}
    changes = []
    for key in _history_keys(tags):
        entry = json.loads(tags[key])
        if entry.get("alias") == alias:
            changes.append(
                AliasChange(alias, entry.get("from"), int(entry["to"]), entry.get("who", "?"),
                            entry.get("when", "?"), entry.get("action", "?"))
            )  # fmt: skip
    return changes


def _history_keys(tags: dict[str, str]) -> list[str]:
    """The history's keys, oldest change first: counted ones by their count; one of only a time (written by
    an older platepilot, before or after the counted ones) before the first counted one of a later time."""
    counted = sorted(k for k in tags if k.startswith(HISTORY_PREFIX + HISTORY_COUNTED))
    timed = sorted(k for k in tags if k.startswith(HISTORY_PREFIX) and k not in counted)
    ordered: list[str] = []
    for key in counted:
        when = key.split(".", 2)[2]
        while timed and timed[0].removeprefix(HISTORY_PREFIX) < when:
            ordered.append(timed.pop(0))
        ordered.append(key)
    return ordered + timed


def current_version(mlflow_client: Any, name: str, alias: str = CHAMPION) -> int | None:
    """The version `alias` points to, or None when it is not set."""
    return _alias_map(mlflow_client, name).get(alias)


def promote(
    mlflow_client: Any, name: str, version: int, evaluator: Evaluator | None = None, force: bool = False,
    alias: str = CHAMPION, who: str | None = None, now: Callable[[], datetime] = utc_now,
) -> AliasChange:  # fmt: skip
    """Point `alias` at `version`; with an evaluator, only if it reads no worse than the current holder."""
    model_version(mlflow_client, name, version)
    current = current_version(mlflow_client, name, alias)
    if current == version:
        raise PlatepilotError(f"{name} version {version} already is the {alias}")
    if evaluator is not None and current is not None and not force:
        candidate, incumbent = (_score(mlflow_client, name, v, evaluator) for v in (version, current))
        if candidate < incumbent:
            raise PlatepilotError(
                f"version {version} reads {candidate:.1%} exact (folded), worse than the {alias} version "
                f"{current} at {incumbent:.1%}: not promoted (--force promotes anyway)"
            )
    action = "promote --force" if force else "promote"
    return _move(mlflow_client, name, alias, current, version, action, who, now)


def rollback(
    mlflow_client: Any, name: str, alias: str = CHAMPION, who: str | None = None,
    now: Callable[[], datetime] = utc_now,
) -> AliasChange:  # fmt: skip
    """Point `alias` back at the version that held it before the current one (from the recorded history).

    Promotions push onto a stack and rollbacks pop it, so repeated rollbacks walk further back.
    """
    current = current_version(mlflow_client, name, alias)
    stack: list[int] = []
    for change in alias_history(mlflow_client, name, alias):
        if change.action == "rollback" and stack:
            stack.pop()
        else:
            stack.append(change.to_version)
    if current is not None and current in stack[:-1] and stack[-1] != current:
        # a move whose record was lost (the server dropped between the two): the stack stands as it was when
        # `current` last held the alias; a retried rollback must not go back to the version it left
        del stack[len(stack) - stack[::-1].index(current) :]
    elif current is not None and (not stack or stack[-1] != current):
        stack.append(current)  # moved outside platepilot (MLflow UI): go back to what we last recorded
    if len(stack) < 2:
        raise PlatepilotError(f"no earlier {alias} of {name} recorded to roll back to")
    target = stack[-2]
    model_version(mlflow_client, name, target)
    return _move(mlflow_client, name, alias, current, target, "rollback", who, now)


def download_version(mlflow_client: Any, name: str, version: int, dest: Path) -> Path:
    """Download a version's `model/` artifacts (ONNX + sidecar) into `dest`; returns the .onnx path."""
    mv = model_version(mlflow_client, name, version)
    source = str(mv.source)
    if source.startswith("runs:/"):
        run_id, _, path = source.removeprefix("runs:/").partition("/")
        folder = Path(mlflow_client.download_artifacts(run_id, path, str(dest)))
    else:
        mlflow = import_mlflow()
        uri = mlflow_client.get_model_version_download_uri(name, str(version))
        folder = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dest)))
    models = sorted(folder.rglob("*.onnx"))
    if len(models) != 1:
        raise PlatepilotError(
            f"{name} version {version}: expected one .onnx file in its artifacts, found {len(models)}"
        )
    return models[0]


def eval_labels_evaluator(labels_file: Path) -> Evaluator:
    """An Evaluator reading `labels_file` (labels.txt format) with CRNNOCRService."""
    if not labels_file.is_file():
        raise PlatepilotError(f"--eval-labels {labels_file}: file not found")

    def evaluate_model(model_path: Path) -> float:
        from platepilot.ocr.crnn_service import CRNNOCRService
        from platepilot.ocr.evaluate import evaluate

        return evaluate(CRNNOCRService(model_path), labels_file).scores.exact_folded

    return evaluate_model


def _score(mlflow_client: Any, name: str, version: int, evaluator: Evaluator) -> float:
    with tempfile.TemporaryDirectory(prefix="platepilot-eval-") as tmp:
        return evaluator(download_version(mlflow_client, name, version, Path(tmp)))


def _move(
    mlflow_client: Any, name: str, alias: str, current: int | None, target: int, action: str,
    who: str | None, now: Callable[[], datetime],
) -> AliasChange:  # fmt: skip
    when = now()
    change = AliasChange(alias, current, target, who or actor(), when.isoformat(timespec="seconds"), action)
    holder = current_version(mlflow_client, name, alias)
    if holder != current:  # another promote or rollback landed while this one was gated: it was not gated against it
        raise PlatepilotError(
            f"the {alias} of {name} moved to version {holder} meanwhile (another promote or rollback); "
            "nothing changed: run it again"
        )
    mlflow_client.set_registered_model_alias(name, alias, str(target))
    recorded = sum(1 for k in _registered(mlflow_client, name).tags or {} if k.startswith(HISTORY_PREFIX))
    key = f"{HISTORY_PREFIX}{HISTORY_COUNTED}{recorded + 1:06d}.{when.strftime('%Y%m%dT%H%M%S.%f')}"
    mlflow_client.set_registered_model_tag(name, key, change.to_json())
    mlflow_client.set_model_version_tag(name, str(target), f"{alias}.since", change.when)
    return change


def _alias_map(mlflow_client: Any, name: str) -> dict[str, int]:
    return {alias: int(v) for alias, v in (_registered(mlflow_client, name).aliases or {}).items()}


def _registered(mlflow_client: Any, name: str) -> Any:
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise PlatepilotError(
                f"no registered model {name!r} at this tracking URI (register one: train ... --register)"
            ) from exc
        raise


def model_version(mlflow_client: Any, name: str, version: int) -> Any:
    """The registered `version` of `name`, or PlatepilotError (one line) when there is none."""
    from mlflow.exceptions import MlflowException

    try:
        return mlflow_client.get_model_version(name, str(version))
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            raise PlatepilotError(f"{name} has no version {version} (see: platepilot models list)") from exc
        raise
