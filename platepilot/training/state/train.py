"""The training run behind `platepilot state train`: real photos + designs + rendered plates -> ONNX.

An epoch is every training photo of the manifest's `train` split (one in HOLDOUT_EVERY held out and
scored clean each epoch), a draw of the design images (Florida's published designs), a draw of
rendered plates, and generated non-plates (the `unknown` class), each degraded into a camera crop.
Sources are not balanced by count: the loss adds the log of each class's share of the epoch to its
logit (logit adjustment), so the exported network scores as if every class were equally common.
The last epoch is exported; then, if the manifest has `valid`/`test` rows (never trained on), the
exported model is scored on them through onnxruntime and the numbers go into its sidecar.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from platepilot.errors import PlatepilotError
from platepilot.ocr.state import StateCard, StateClassifier, load_state_card, save_state_card
from platepilot.ocr.state_eval import evaluate_states, write_state_report
from platepilot.plates.state_manifest import StatePhoto, read_state_manifest
from platepilot.plates.states import STATE_NAMES, UNKNOWN
from platepilot.sessions import rapidocr_model
from platepilot.store.atomic import write_text_atomically
from platepilot.training.checkpoints import (
    RESUMABLE,
    check_run_folder,
    jsonable,
    resume_checkpoint,
    run_plan,
    save_atomic,
    save_checkpoint,
)
from platepilot.training.detector.backbone import OrtBackbone
from platepilot.training.detector.train import feature_loss
from platepilot.training.plots import plot_curves
from platepilot.training.state.backbones import BACKBONES, cut_backbone, pretrained_state_net
from platepilot.training.state.data import Pool, Sources, StateCrops, training_sources
from platepilot.training.state.export import export_state_model
from platepilot.training.state.model import WIDTHS, StateNet, StudentStateNet

MODEL_FILE = "plate_state.onnx"
CHECKPOINT = "checkpoint.pt"  # the last finished epoch, for --resume
EVAL_SPLITS = ("valid", "test")
EVAL_REPORT = "valid_test"  # folder of the valid+test errors: report.json, worst_errors.png
TEMPERATURE = 2.0  # softens a teacher's scores so the student learns its second and third choices too
CURVES = [("loss (logit-adjusted)", ("loss",), False), ("top-1", ("train_top1", "holdout_top1"), False),
          ("held-out top-3", ("holdout_top3",), False)]  # fmt: skip


@dataclass
class StateTrainOptions:
    """Everything a run needs; `platepilot state train` fills it from its flags."""

    data: Path
    output_dir: Path
    designs: list[Path] = field(default_factory=list)
    cache_dir: Path = Path.home() / ".cache" / "platepilot" / "state"
    epochs: int = 30
    batch_size: int = 64
    lr: float = 3e-3
    height: int = 64
    width: int = 128
    rendered: int = 2400
    rendered_per_epoch: int = 400
    designs_per_epoch: int = 120
    non_plates_per_epoch: int = 200
    seed: int = 0
    workers: int = 1
    sources: list[str] = field(default_factory=list)
    backbone: str | None = None  # a BACKBONES key: fine-tune that pretrained backbone + a head, not StateNet
    backbone_lr: float = 3e-4  # its peak learning rate (the head's is `lr`)
    resume: bool = False  # continue the run in output_dir from its last finished epoch
    teacher: Path | None = None  # a state classifier's ONNX file: the trained network learns to score as it does
    distill: float = 1.0  # with a teacher: weight of matching its softened scores and the backbone's map


@dataclass
class StateTrainResult:
    model_path: Path
    best: dict[str, float]
    history: list[dict[str, float]]
    seconds: float
    evaluation: dict[str, Any] | None


def train_state(opts: StateTrainOptions, console: Console | None = None) -> StateTrainResult:
    """Train, export to `<output_dir>/plate_state.onnx` (+ sidecar, weights, history), score valid+test."""
    console = console or Console()
    started = time.monotonic()
    torch.manual_seed(opts.seed)
    check_run_folder(opts.output_dir / CHECKPOINT, opts.resume)
    model, card, groups = _model(opts)  # first: a bad --backbone fails before the photos are decoded
    teacher = _teacher(opts, card) if opts.teacher else None
    scored = eval_photos(opts.data)  # first too: a bad valid/test row fails now, not after training
    sources = training_sources(opts.data, opts.designs, opts.rendered, opts.seed, opts.cache_dir)
    check_classes(card, sources.pool.states, opts.teacher)
    console.print(f"{sources.describe()}; classes {len(card.classes)}")
    optimizer = torch.optim.AdamW(groups, weight_decay=5e-4)
    rng = np.random.default_rng(opts.seed)
    steps = max(1, len(_epoch_items(rng, opts, sources)) // opts.batch_size)  # a batch over the epoch: one step
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, [g["lr"] for g in groups], total_steps=opts.epochs * steps, pct_start=0.1
    )
    checkpoint, plan = opts.output_dir / CHECKPOINT, run_plan(opts, (*RESUMABLE, "cache_dir"))
    history = (
        resume_checkpoint(checkpoint, model, optimizer, scheduler, opts.epochs, console, plan, rng)
        if opts.resume
        else []
    )
    for epoch in range(len(history) + 1, opts.epochs + 1):
        items = _epoch_items(rng, opts, sources)
        prior = _log_prior(sources.pool, items, card)
        crops = teacher.card if teacher is not None else card  # a teacher reads them at its own size
        data = StateCrops(sources.pool, items, crops, augment=True, seed=opts.seed * 10_000 + epoch)
        loss, acc = _train_epoch(model, teacher, optimizer, scheduler, data, prior, card, opts, epoch, steps)
        held_top1, held_top3 = _score(model, StateCrops(sources.pool, sources.held, card, augment=False, seed=0))
        history.append({"epoch": epoch, "loss": loss, "train_top1": acc, "holdout_top1": held_top1,
                        "holdout_top3": held_top3})  # fmt: skip
        save_checkpoint(checkpoint, model, optimizer, scheduler, opts.epochs, history, plan, rng)
        console.print(
            f"epoch {epoch}/{opts.epochs}  loss {loss:.3f}  train top1 {acc:.3f}  "
            f"held-out top1 {held_top1:.3f} top3 {held_top3:.3f}"
        )
        plot_curves(history, CURVES, opts.output_dir / "training_curves.png")
    return _finish(model, card, opts, history, started, scored, console)


def check_classes(card: StateCard, states: Sequence[str], teacher: Path | None) -> None:
    """PlatepilotError when the network's classes (a teacher's, with --teacher) lack a state of the
    training data, or `unknown` (the non-plates' class)."""
    missing = sorted({*states, UNKNOWN} - set(card.classes))
    if missing:
        whose = f"--teacher {teacher}: its" if teacher is not None else "the network's"
        raise PlatepilotError(f"{whose} classes lack {', '.join(missing)}, which the training data has")


def _model(opts: StateTrainOptions) -> tuple[nn.Module, StateCard, list[dict[str, Any]]]:
    """The network to train, its sidecar (input size, normalisation) and its optimizer's parameter groups."""
    classes = (*STATE_NAMES, UNKNOWN)
    taught = load_state_card(opts.teacher) if opts.teacher is not None else None
    taught_by = {"teacher": f"distilled from {opts.teacher} (sha256 {taught.onnx_sha256[:12]})"} if taught else {}
    if opts.backbone is not None:
        pretrained, spec = pretrained_state_net(opts.backbone, opts.height, opts.width, len(classes))
        wanted = (spec.channel_order, spec.mean, spec.std)
        if taught is not None and (taught.channel_order, taught.mean, taught.std) != wanted:
            raise PlatepilotError(f"--teacher {opts.teacher}: crops normalised otherwise than {opts.backbone}'s")
        training = {"backbone_source": f"{spec.source}, fine-tuned end to end", **taught_by}
        card = StateCard(classes=classes, height=opts.height, width=opts.width, channel_order=spec.channel_order,
                         mean=spec.mean, std=spec.std, training=training)  # fmt: skip
        groups = [
            {"params": list(pretrained.backbone.parameters()), "lr": opts.backbone_lr},
            {"params": list(pretrained.head.parameters()), "lr": opts.lr},
        ]
        return pretrained, card, groups
    if taught is not None:  # the student sees the crops exactly as its teacher does
        student = StudentStateNet(len(taught.classes), taught.height, taught.width)
        card = StateCard(classes=taught.classes, height=taught.height, width=taught.width,
                         channel_order=taught.channel_order, mean=taught.mean, std=taught.std,
                         training=taught_by)  # fmt: skip
        return student, card, [{"params": list(student.parameters()), "lr": opts.lr}]
    net = StateNet(len(classes), WIDTHS)
    return (
        net,
        StateCard(classes=classes, height=opts.height, width=opts.width),
        [{"params": list(net.parameters()), "lr": opts.lr}],
    )


def _epoch_items(rng: np.random.Generator, opts: StateTrainOptions, sources: Sources) -> np.ndarray:
    parts = [sources.real, np.full(opts.non_plates_per_epoch, -1)]
    if len(sources.designs):
        parts.append(rng.choice(sources.designs, opts.designs_per_epoch))
    if len(sources.rendered):
        parts.append(rng.choice(sources.rendered, opts.rendered_per_epoch))
    return rng.permutation(np.concatenate(parts))


def _log_prior(pool: Pool, items: np.ndarray, card: StateCard) -> torch.Tensor:
    counts = np.ones(len(card.classes))  # one pseudo-count: no class has a zero prior
    index = {c: i for i, c in enumerate(card.classes)}
    for item in items:
        counts[index[pool.states[item]] if item >= 0 else index[UNKNOWN]] += 1
    return torch.from_numpy(np.log(counts / counts.sum())).float()


@dataclass
class Teacher:
    """What a student learns from: a classifier's scores on crops at its own input size, and for the
    from-scratch StudentStateNet also the stride-16 map of the PP-OCR det backbone that the fine-tuned
    classifiers start from (a dense signal: 192 x 8 x 14 numbers a crop at 128 x 224 against 57 scores;
    a student taught the scores alone did not learn in 5 epochs). A pretrained student (`--backbone`)
    needs no map; it may take smaller crops than its teacher, scaled down from the teacher's."""

    scores: StateClassifier
    backbone: OrtBackbone | None

    @property
    def card(self) -> StateCard:
        return self.scores.card

    def student_loss(
        self, model: nn.Module, images: torch.Tensor, weight: float, size: tuple[int, int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The student's logits on `images` (teacher-sized) scaled to `size`, and `weight` x (its distance
        to the teacher's scores, + to the backbone map for a StudentStateNet)."""
        with torch.no_grad():
            taught = torch.from_numpy(self.scores.logits(images.numpy()))
        if tuple(images.shape[-2:]) != size:
            images = F.interpolate(images, size=size, mode="bilinear", align_corners=False, antialias=True)
        if not isinstance(model, StudentStateNet) or self.backbone is None:
            logits = model(images)
            return logits, weight * distillation_loss(logits, taught)
        features = model.features(images)
        logits = model.head(features)
        with torch.no_grad():
            (target,) = self.backbone(images)
        return logits, weight * (distillation_loss(logits, taught) + feature_loss(features, target))


def _teacher(opts: StateTrainOptions, card: StateCard) -> Teacher:
    """The classifier at `opts.teacher`; for a from-scratch student, the PP-OCR det backbone cut at
    stride 16 for the card's size too (written to the run folder)."""
    threads = torch.get_num_threads()
    scores = StateClassifier(opts.teacher, threads=threads)
    if opts.backbone is not None:
        return Teacher(scores, None)
    spec = BACKBONES["ppocr-det"]
    path = opts.output_dir / "backbone.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(cut_backbone(rapidocr_model(spec.file), spec.outputs, card.height, card.width), str(path))
    return Teacher(scores, OrtBackbone(path, threads, spec.outputs))


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Hinton's soft-target loss: KL from the teacher's to the student's scores, both softened by
    TEMPERATURE, scaled by its square so its gradients keep their size."""
    soft = F.log_softmax(teacher / TEMPERATURE, dim=1)
    kl = F.kl_div(F.log_softmax(student / TEMPERATURE, dim=1), soft, log_target=True, reduction="batchmean")
    return kl * TEMPERATURE**2


def _train_epoch(
    model: nn.Module, teacher: Teacher | None, optimizer: torch.optim.Optimizer, scheduler: Any,
    data: StateCrops, prior: torch.Tensor, card: StateCard, opts: StateTrainOptions, epoch: int, steps: int,
) -> tuple[float, float]:  # fmt: skip
    loader = DataLoader(data, opts.batch_size, shuffle=False, num_workers=opts.workers, drop_last=True)
    model.train()
    total = correct = seen = 0.0
    columns = (TextColumn(f"epoch {epoch}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("train", total=steps, loss=0.0)
        for step, (images, labels) in enumerate(loader, 1):
            if step > steps:
                break
            if teacher is not None:
                logits, taught = teacher.student_loss(model, images, opts.distill, (card.height, card.width))
            else:
                logits, taught = model(images), torch.zeros(())
            loss = F.cross_entropy(logits + prior, labels, label_smoothing=0.05) + taught
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
            correct += float((logits.argmax(1) == labels).sum())
            seen += len(labels)
            progress.update(task, advance=1, loss=total / step)
    return total / max(steps, 1), correct / max(seen, 1)


@torch.no_grad()
def _score(model: nn.Module, data: StateCrops) -> tuple[float, float]:
    """Top-1 and top-3 on clean held-out photos, by the network alone."""
    if not len(data):
        return 0.0, 0.0
    model.eval()
    top1 = top3 = 0
    for images, labels in DataLoader(data, 128):
        best = model(images).topk(3, dim=1).indices
        top1 += int((best[:, 0] == labels).sum())
        top3 += int((best == labels[:, None]).any(dim=1).sum())
    return top1 / len(data), top3 / len(data)


def _finish(
    model: nn.Module, card: StateCard, opts: StateTrainOptions, history: list[dict[str, float]], started: float,
    scored: tuple[StatePhoto, ...], console: Console,
) -> StateTrainResult:  # fmt: skip
    if not history:
        raise PlatepilotError("training produced no model (no epoch completed)")
    model_path = opts.output_dir / MODEL_FILE
    training = {
        "sources": opts.sources or [*card.training.values(), str(opts.data), *map(str, opts.designs),
                                    "platepilot synthetic plates"],
        "data": str(opts.data), "designs": [str(d) for d in opts.designs], "options": jsonable(asdict(opts)),
        "epochs_run": len(history), "seconds": round(time.monotonic() - started, 1),
    }  # fmt: skip
    card = card.model_copy(update={"training": {**card.training, **training}, "metrics": {"holdout": history[-1]}})
    export_state_model(model, card, model_path)
    weights = {"model": model.state_dict(), "widths": WIDTHS, "backbone": opts.backbone}
    save_atomic(weights, model_path.with_suffix(".pt"))
    write_text_atomically(opts.output_dir / "history.json", json.dumps(history, indent=2) + "\n")
    evaluation = score_eval_splits(model_path, scored, console)
    best = max(history, key=lambda h: h["holdout_top1"])
    return StateTrainResult(model_path, best, history, time.monotonic() - started, evaluation)


def eval_photos(manifest: Path) -> tuple[StatePhoto, ...]:
    """The manifest's valid/test rows, never trained on (PlatepilotError for a bad one; none: ())."""
    return read_state_manifest(manifest, set(EVAL_SPLITS), allow_empty=True)


def score_eval_splits(
    model_path: Path, photos: tuple[StatePhoto, ...], console: Console, threads: int | None = None
) -> dict[str, Any] | None:
    """Score the exported model on `photos` (`eval_photos`), add the numbers to its sidecar's metrics as
    `valid_test` and write its errors beside it (EVAL_REPORT); None when there are none."""
    if not photos:
        return None
    result = evaluate_states(list(photos), StateClassifier(model_path, threads=threads), console)
    write_state_report(result, model_path.parent / EVAL_REPORT)
    evaluation = {k: v for k, v in result.to_json().items() if k not in ("confusions", "worst_states")}
    card = load_state_card(model_path)
    save_state_card(model_path, card.model_copy(update={"metrics": {**card.metrics, "valid_test": evaluation}}))
    return evaluation
