"""Resumable training runs: a checkpoint after every epoch, restored exactly by `--resume`.

The state classifier's and the blur estimator's trainers keep the same things: weights, optimizer and
schedule, torch's random stream (and the trainer's numpy stream, when it draws one), the epoch plan
and the history so far.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from platepilot.errors import PlatepilotError


def save_atomic(obj: Any, path: Path) -> None:
    """`torch.save` via a temp file: an interrupted write never leaves half a file at `path`."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(obj, tmp)
    tmp.replace(path)


def save_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, epochs: int,
    history: list[dict[str, float]], rng: np.random.Generator | None = None,
) -> None:  # fmt: skip
    """Write the run's state after an epoch (`save_atomic`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
             "torch_rng": torch.get_rng_state(), "epochs": epochs, "history": history}  # fmt: skip
    if rng is not None:
        state["rng"] = rng.bit_generator.state
    save_atomic(state, path)


def resume_checkpoint(
    path: Path, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, epochs: int, console: Console,
    rng: np.random.Generator | None = None,
) -> list[dict[str, float]]:  # fmt: skip
    """Restore an interrupted run's last finished epoch into the given objects; its history. PlatepilotError
    when there is no checkpoint, or it was planned for other epochs, data or batch size."""
    if not path.is_file():
        raise PlatepilotError(f"--resume: no checkpoint at {path}; start without --resume")
    saved = torch.load(path, map_location="cpu", weights_only=False)
    if saved["epochs"] != epochs or saved["scheduler"]["total_steps"] != scheduler.total_steps:
        raise PlatepilotError(
            f"{path}: this run was planned for {saved['epochs']} epochs with other data or batch size; resume it "
            "with the options it started with, or start a new run in another --output-dir"
        )
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    if rng is not None:
        rng.bit_generator.state = saved["rng"]
    console.print(f"resuming after epoch {len(saved['history'])}")
    return list(saved["history"])
