"""The training run behind `platepilot blur train`: sharp plate images -> a motion-blur estimator in ONNX.

Each epoch draws `samples_per_epoch` fresh smears of the training images (`data.SmearedPlates`); the
held-out images (one in HOLDOUT_EVERY) are smeared once, with a fixed seed, and scored after every
epoch: how far the estimated length is from the true one, and the angle's error on smears of
MEASURED_FROM px or more (shorter ones barely hurt a read, and their angle hardly shows). A
checkpoint after every epoch lets `--resume` continue exactly; the last epoch is exported.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from platepilot.errors import PlatepilotError
from platepilot.ocr.blur_estimate import BlurCard, save_blur_card, smears
from platepilot.sessions import sidecar_path
from platepilot.store.atomic import write_text_atomically
from platepilot.training.blur import WIDTHS
from platepilot.training.blur.data import SmearedPlates, plate_pool
from platepilot.training.blur.model import BlurNet
from platepilot.training.checkpoints import (
    check_run_folder,
    jsonable,
    resume_checkpoint,
    run_plan,
    save_atomic,
    save_checkpoint,
)
from platepilot.training.parity import export_checked
from platepilot.training.plots import plot_curves

MODEL_FILE = "plate_blur.onnx"
CHECKPOINT = "checkpoint.pt"
HELD_OUT_SAMPLES = 1024
MEASURED_FROM = 3  # px: the smears whose angle is scored (and which the runtime deblurs)
CURVES = [("loss", ("loss",), True), ("held-out length error, px", ("length_mae", "length_mae_3px_up"), False),
          ("held-out angle error, degrees (>= 3 px)", ("angle_median_3px_up",), False)]  # fmt: skip


@dataclass
class BlurTrainOptions:
    """Everything a run needs; `platepilot blur train` fills it from its flags."""

    output_dir: Path
    images: list[Path] = field(default_factory=list)
    rendered: int = 1000
    epochs: int = 12
    samples_per_epoch: int = 16_000
    batch_size: int = 64
    lr: float = 3e-3
    height: int = 48
    width: int = 96
    max_length: int = 9
    widths: tuple[int, ...] = WIDTHS
    seed: int = 0
    workers: int = 1
    sources: list[str] = field(default_factory=list)
    resume: bool = False


@dataclass
class BlurTrainResult:
    model_path: Path
    best: dict[str, float]
    history: list[dict[str, float]]
    seconds: float


def train_blur(opts: BlurTrainOptions, console: Console | None = None) -> BlurTrainResult:
    """Train, export to `<output_dir>/plate_blur.onnx` (+ sidecar, weights, history, curves)."""
    console = console or Console()
    started = time.monotonic()
    torch.manual_seed(opts.seed)
    check_run_folder(opts.output_dir / CHECKPOINT, opts.resume)
    card = BlurCard(height=opts.height, width=opts.width, max_length=opts.max_length)
    pool = plate_pool(opts.images, opts.rendered, opts.seed)
    console.print(pool.describe())
    model = BlurNet(opts.widths)
    optimizer = torch.optim.AdamW(model.parameters(), weight_decay=1e-4)
    steps = max(1, opts.samples_per_epoch // opts.batch_size)  # a batch larger than the epoch: one step
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, opts.lr, total_steps=opts.epochs * steps, pct_start=0.1)
    checkpoint, plan = opts.output_dir / CHECKPOINT, run_plan(opts)
    history = (
        resume_checkpoint(checkpoint, model, optimizer, scheduler, opts.epochs, console, plan) if opts.resume else []
    )
    held = SmearedPlates(pool, pool.held, HELD_OUT_SAMPLES, card, seed=opts.seed + 1)
    for epoch in range(len(history) + 1, opts.epochs + 1):
        data = SmearedPlates(pool, pool.train, steps * opts.batch_size, card, seed=opts.seed * 10_000 + epoch)
        loss = _train_epoch(model, optimizer, scheduler, data, opts, epoch, steps)
        history.append({"epoch": epoch, "loss": loss, **score(model, held, card)})
        save_checkpoint(checkpoint, model, optimizer, scheduler, opts.epochs, history, plan)
        console.print("  ".join(f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in history[-1].items()))
        plot_curves(history, CURVES, opts.output_dir / "training_curves.png")
    return _finish(model, card, opts, history, started)


def smear_loss(outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Smooth L1 on the length, plus the squared error of the doubled angle where there is a smear."""
    moving = (targets[:, 0] >= 2).float()
    angle = ((outputs[:, 1:] - targets[:, 1:]) ** 2).sum(dim=1)
    return F.smooth_l1_loss(outputs[:, 0], targets[:, 0]) + (moving * angle).mean()


def _train_epoch(
    model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, data: SmearedPlates, opts: BlurTrainOptions,
    epoch: int, steps: int,
) -> float:  # fmt: skip
    loader = DataLoader(data, opts.batch_size, shuffle=False, num_workers=opts.workers, drop_last=True)
    model.train()
    total = 0.0
    columns = (TextColumn(f"epoch {epoch}/{opts.epochs}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("train", total=steps, loss=0.0)
        for step, (images, targets) in enumerate(loader, 1):
            loss = smear_loss(model(images), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
            progress.update(task, advance=1, loss=total / step)
    return total / max(steps, 1)


@torch.no_grad()
def score(model: nn.Module, data: SmearedPlates, card: BlurCard) -> dict[str, float]:
    """Length error (all smears, and those of MEASURED_FROM px or more), the share of the latter within
    half a pixel, and their median angle error in degrees."""
    model.eval()
    outputs, targets = zip(*[(model(x), y) for x, y in DataLoader(data, 256)], strict=True)
    truth = torch.cat(targets).numpy()
    found = smears(torch.cat(outputs).numpy(), card.max_length)
    length = np.array([s.length for s in found])
    angle = np.array([s.angle for s in found])
    true_angle = np.degrees(np.arctan2(truth[:, 2], truth[:, 1])) / 2
    long = truth[:, 0] >= MEASURED_FROM
    error = np.abs(length - truth[:, 0])
    angle_error = np.abs((angle - true_angle + 90) % 180 - 90)
    return {
        "length_mae": float(error.mean()),
        "length_mae_3px_up": float(error[long].mean()),
        "within_half_px_3px_up": float((error[long] <= 0.5).mean()),
        "angle_median_3px_up": float(np.median(angle_error[long])),
    }


def _finish(
    model: nn.Module, card: BlurCard, opts: BlurTrainOptions, history: list[dict[str, float]], started: float
) -> BlurTrainResult:
    if not history:
        raise PlatepilotError("training produced no model (no epoch completed)")
    model_path = opts.output_dir / MODEL_FILE
    training = {
        "sources": opts.sources or [*map(str, opts.images), "platepilot synthetic plates"],
        "options": jsonable(asdict(opts)), "epochs_run": len(history),
        "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    card = card.model_copy(update={"training": training, "metrics": {"held_out": history[-1]}})
    export_blur_model(model, card, model_path)
    save_atomic({"model": model.state_dict(), "widths": opts.widths}, model_path.with_suffix(".pt"))
    write_text_atomically(opts.output_dir / "history.json", json.dumps(history, indent=2) + "\n")
    best = min(history, key=lambda h: h["length_mae_3px_up"])
    return BlurTrainResult(model_path, best, history, time.monotonic() - started)


def export_blur_model(model: nn.Module, card: BlurCard, path: Path) -> float:
    """Write `path` + sidecar via temp files; returns the max abs output difference torch vs onnxruntime."""
    diff = export_checked(model, (1, 1, card.height, card.width), path, ("window", "smear"), (1, 7))
    sidecar_path(path).unlink(missing_ok=True)
    save_blur_card(path, card.model_copy(update={"training": {**card.training, "export_parity_max_abs": diff}}))
    return diff
