"""Resumable training runs: a checkpoint after every epoch, restored exactly by `--resume`.

The state classifier's and the blur estimator's trainers keep the same things: weights, optimizer and
schedule, torch's random stream (and the trainer's numpy stream, when it draws one), the epoch plan
and the history so far.
"""

from __future__ import annotations

import os
import pickle
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from platepilot.errors import PlatepilotError


def check_run_folder(checkpoint: Path, resume: bool) -> None:
    """`--resume` needs the run's checkpoint, and a new run never overwrites one: PlatepilotError (one
    line) otherwise, before anything is written."""
    if resume and not checkpoint.is_file():
        raise PlatepilotError(f"--resume: no checkpoint at {checkpoint}; start without --resume")
    if not resume and checkpoint.is_file():
        raise PlatepilotError(
            f"{checkpoint.parent} holds a run already ({checkpoint.name}): --resume continues it; a new run needs "
            "another --output-dir (or none: a new run folder)"
        )


RESUMABLE = ("output_dir", "resume", "workers", "sources")  # options a resumed run may change


def jsonable(options: dict[str, Any]) -> dict[str, Any]:
    """A run's options as JSON values (paths as strings), for sidecars and plans."""
    return {k: (str(v) if isinstance(v, Path) else [str(x) for x in v] if isinstance(v, list) else v)
            for k, v in options.items()}  # fmt: skip


def run_plan(opts: Any, may_change: tuple[str, ...] = RESUMABLE) -> dict[str, Any]:
    """What a resumed run must share with the run it continues: every option of the dataclass `opts`
    but those in `may_change` (its data, schedule, network and recipe)."""
    return {k: v for k, v in jsonable(asdict(opts)).items() if k not in may_change}


def check_plan(checkpoint: Path, started: dict[str, Any], plan: dict[str, Any]) -> None:
    """PlatepilotError naming the options of a resumed run that differ from those its run `started` with
    (options the checkpoint did not record are not compared): its schedule and data depend on them."""
    changed = [
        f"{key} {started[key]!r} -> {value!r}"
        for key, value in plan.items()
        if not _same_option(started.get(key, value), value)
    ]
    if changed:
        raise PlatepilotError(
            f"{checkpoint}: --resume continues the run with the options it started with, and these differ: "
            f"{'; '.join(changed)}; resume with its options, or start a new run in another --output-dir"
        )


def _same_option(started: Any, now: Any) -> bool:
    """Equal, or the same paths spelt otherwise (`imgs` and `/abs/imgs`, from the folder the run is in)."""
    if isinstance(started, list) and isinstance(now, list) and len(started) == len(now):
        return all(_same_option(a, b) for a, b in zip(started, now, strict=True))
    if isinstance(started, str) and isinstance(now, str) and started != now:
        return os.path.abspath(started) == os.path.abspath(now)
    return bool(started == now)


def load_saved(path: Path, needs: tuple[str, ...] = (), kind: str = "a checkpoint of this run's kind") -> Any:
    """`torch.load` of a checkpoint or weights file, or PlatepilotError (one line) when it is none: cut
    short by a crash or a copy, another kind of file, or one without every key in `needs` (a training
    checkpoint where weights go, another trainer's checkpoint)."""
    if not path.is_file():
        raise PlatepilotError(f"{path}: no such checkpoint")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=False)
    except (OSError, RuntimeError, pickle.UnpicklingError, EOFError, ValueError, AttributeError, KeyError) as exc:
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise PlatepilotError(f"{path}: not a readable checkpoint ({why[:120]}); it is corrupt or cut short") from None
    missing = [key for key in needs if not isinstance(saved, dict) or key not in saved]
    if missing:
        raise PlatepilotError(f"{path}: not {kind} (no {', '.join(missing)} in it)")
    return saved


def save_atomic(obj: Any, path: Path) -> None:
    """`torch.save` via a temp file: an interrupted write never leaves half a file at `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def save_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, epochs: int,
    history: list[dict[str, float]], plan: dict[str, Any], rng: np.random.Generator | None = None,
) -> None:  # fmt: skip
    """Write the run's state after an epoch (`save_atomic`), with its plan (`run_plan`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "torch_rng": torch.get_rng_state(), "epochs": epochs, "history": history, "plan": plan}  # fmt: skip
    if rng is not None:
        state["rng"] = rng.bit_generator.state
    save_atomic(state, path)


def resume_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, epochs: int, console: Console,
    plan: dict[str, Any], rng: np.random.Generator | None = None,
) -> list[dict[str, float]]:  # fmt: skip
    """Restore an interrupted run's last finished epoch into the given objects; its history. PlatepilotError
    when it was planned otherwise (`check_plan`; a checkpoint from before plans were kept is checked by its
    epochs and schedule length) or holds another network (`check_run_folder` tells a missing one)."""
    saved = load_saved(path, ("model", "optimizer", "scheduler", "torch_rng", "epochs", "history"))
    check_plan(path, saved.get("plan", {}), plan)
    if saved["epochs"] != epochs or saved["scheduler"]["total_steps"] != scheduler.total_steps:
        raise PlatepilotError(
            f"{path}: this run was planned for {saved['epochs']} epochs with other data or batch size; resume it "
            "with the options it started with, or start a new run in another --output-dir"
        )
    try:
        model.load_state_dict(saved["model"])
    except RuntimeError:
        raise PlatepilotError(
            f"{path}: its network differs from this run's; resume with the options it started with"
        ) from None
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    if rng is not None:
        rng.bit_generator.state = saved["rng"]
    console.print(f"resuming after epoch {len(saved['history'])}")
    return list(saved["history"])
