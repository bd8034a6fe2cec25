"""The deployed-model folder, one home for its layout: the model at `ocr.model_path` and its sidecar,
`deployed.json` beside them (what the sync agent or `models deploy` put there: registry version,
sha256), and `previous/` holding the pair it replaced, for a local rollback.

The sync agent and `models deploy` write it (`swap_in`, `write_json`); the runtime reads it (the model
version events record, the signature hot reload watches) without importing the registry.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from platepilot.errors import PlatepilotError
from platepilot.ocr.gate_record import GateRecord, gate_path, read_gate_record, write_gate_record
from platepilot.ocr.spec import file_sha256, load_card, sidecar_path
from platepilot.store.atomic import locked, sync_to_disk, write_text_atomically

STATE_FILE = "deployed.json"
PREVIOUS_DIR = "previous"


@dataclass(frozen=True)
class Deployed:
    """The `deployed.json` beside the model: what this device runs, and whether the registry knows."""

    model_name: str
    version: int
    run_id: str
    sha256: str
    deployed_at: str
    reported: bool = False
    replaced: int | None = None  # the version it replaced: untagged when the registry hears of this one


def state_path(model_path: Path) -> Path:
    """The `deployed.json` beside the model at `model_path`."""
    return model_path.parent / STATE_FILE


def read_deployed(model_path: Path) -> Deployed | None:
    """What `deployed.json` says runs at `model_path` (None when missing or unreadable)."""
    try:
        return Deployed(**json.loads(state_path(model_path).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def restore_previous(model_path: Path) -> None:
    """Local rollback: swap the pair kept in `previous/` back into place (stop the agent first).

    The pair it replaces becomes the new `previous/`, so a second call undoes the first.
    """
    kept = model_path.parent / PREVIOUS_DIR
    if not (kept / model_path.name).is_file():
        raise PlatepilotError(f"no previous model kept in {kept}")
    card = load_card(kept / model_path.name)
    record = read_gate_record(kept / model_path.name, card.sha256)
    staging = Path(tempfile.mkdtemp(prefix=".restore-", dir=model_path.parent))
    try:
        for name in (model_path.name, sidecar_path(model_path).name, STATE_FILE):
            if (kept / name).is_file():
                shutil.copy2(kept / name, staging / name)
        swap_in(staging / model_path.name, model_path, record)
        if (staging / STATE_FILE).is_file():
            os.replace(staging / STATE_FILE, model_path.parent / STATE_FILE)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def swap_in(new_model: Path, target: Path, record: GateRecord | None) -> None:
    """Keep the current pair (and its gate record, checkpoint, state) in previous/, then rename the new
    ONNX and sidecar over the target's. The new model's gate record (None: none) is written first; a
    checkpoint `.pt` left beside the target belongs to the old model, so it moves to previous/ only.

    The new pair is copied beside the target first, under names of its own: a copy that fails (a full
    disk) leaves the live pair, previous/ and the gate record as they were, and the new model may be the
    one in previous/ (a rollback by hand). Deploys into one folder take turns (`DEPLOY_LOCK`); one of the
    model already live (two sync agents at once) changes nothing, so previous/ keeps the pair before it."""
    keep = target.parent / PREVIOUS_DIR
    weights = target.with_suffix(".pt")
    with locked(_lock_file(target.parent), "ab"):
        live = verified_sha256(target)  # None: no model, or a pair a power cut left half swapped
        if live is not None and live == file_sha256(new_model):
            if record is not None:  # the same model under another version: its own gate numbers
                write_gate_record(target, record)
            return
        _sweep_leftovers(target)
        staged: list[Path] = []
        try:
            staged.append(_staged_copy(new_model, target))
            staged.append(_staged_copy(sidecar_path(new_model), sidecar_path(target)))
            if live is not None:  # a pair a power cut left half swapped is no rollback: previous/ stays
                keep.mkdir(exist_ok=True)
                for src in (target, sidecar_path(target), target.parent / STATE_FILE, gate_path(target), weights):
                    if src.is_file():
                        _link_or_copy(src, keep / src.name)
            if record is not None:
                write_gate_record(target, record)
            else:
                gate_path(target).unlink(missing_ok=True)  # it described the model replaced
            weights.unlink(missing_ok=True)
            os.replace(staged[0], target)  # same folder as the target: the renames are atomic
            os.replace(staged[1], sidecar_path(target))
            sync_to_disk(target)  # the new names too: a power cut now leaves the new pair, not half of it
        finally:
            for path in staged:
                path.unlink(missing_ok=True)


def verified_sha256(model: Path) -> str | None:
    """The sha256 of `model` when it is there and its sidecar verifies it; None otherwise (a power cut
    between a deploy's two renames leaves the new ONNX beside the old sidecar)."""
    if not model.is_file():
        return None
    try:
        return load_card(model).sha256 or file_sha256(model)  # a sidecar that records none is not checked
    except PlatepilotError:
        return None


DEPLOY_LOCK = ".deploy.lock"
"""The lock file beside a deployed model: `swap_in`s into one folder (the sync agent and `models deploy`
at once) take turns instead of renaming each other's half-copied files."""


def _lock_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    return folder / DEPLOY_LOCK


def _staged_copy(src: Path, target: Path) -> Path:
    """A copy of `src` beside `target` under a name no other deploy uses, on disk (fsync) before it is
    renamed into place: a power cut must not leave a model cut short under the live name."""
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=STAGED_SUFFIX)
    os.close(fd)
    try:
        shutil.copy2(src, name)
        sync_to_disk(Path(name))
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


STAGED_SUFFIX = ".new"
LEFTOVER_AGE_S = 3600.0
"""A download or restore folder (`.incoming-*`, `.restore-*`) older than this was left by a killed agent."""


def _sweep_leftovers(target: Path) -> None:
    """Remove what deploys killed half way left beside `target` (called under the deploy lock): staged
    copies (made only under that lock, so none is in use) and old download and restore folders."""
    cutoff = time.time() - LEFTOVER_AGE_S
    for path in target.parent.glob(f".{target.name}.*{STAGED_SUFFIX}"):
        path.unlink(missing_ok=True)
    for pattern in (".incoming-*", ".restore-*"):
        for folder in target.parent.glob(pattern):
            with contextlib.suppress(OSError):
                if folder.is_dir() and folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)


def _link_or_copy(src: Path, dst: Path) -> None:
    tmp = dst.with_name(f".{dst.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)  # no extra disk space needed
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def write_json(path: Path, data: dict[str, Any]) -> None:
    write_text_atomically(path, json.dumps(data, indent=2))
