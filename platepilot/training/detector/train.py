"""The training run behind `platepilot detector train`: resumable, validated each epoch, exported to ONNX.

An epoch is `samples_per_epoch` random crops from every dataset folder given (they are re-listed each
epoch, so training can start while `platepilot synth scenes` is still writing). One frame in 50 (by
a hash of its name, stable as the folder grows) is held out and scored as the runtime scores it:
whole frames at the model's input size, decoded by the runtime's own `decode`. A dataset whose
data.yaml names `train` and `val` folders trains on the first and is scored on the second; its `test`
folder is never read.
"""

from __future__ import annotations

import json
import math
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.nn import functional as F
from torch.utils.data import DataLoader

from platepilot.detect.base import box_iou
from platepilot.detect.platenet import DetectorCard, decode
from platepilot.errors import PlatepilotError
from platepilot.store.atomic import write_text_atomically
from platepilot.training.checkpoints import (
    RESUMABLE,
    check_plan,
    check_run_folder,
    jsonable,
    load_saved,
    run_plan,
    save_atomic,
)
from platepilot.training.detector.backbone import MEAN, STD, OrtBackbone, backbone_source, build_backbone
from platepilot.training.detector.data import Frame, SceneCrops, yolo_frames
from platepilot.training.detector.export import export_detector
from platepilot.training.detector.model import (
    NECK,
    WIDTHS,
    DetectorNet,
    PlateNet,
    PretrainedPlateNet,
    StudentPlateNet,
)
from platepilot.training.plots import plot_curves

MODEL_FILE = "plate_detector.onnx"
BUNDLED_WEIGHTS = Path(__file__).resolve().parents[2] / "assets" / "plate_detector.pt"
FAST_WEIGHTS = BUNDLED_WEIGHTS.with_name("plate_detector_fast.pt")  # the bundled student
CHECKPOINT = "checkpoint.pt"
BACKBONE_FILE = "backbone.onnx"
Arch = Literal["ppocr", "scratch", "student"]
# The card fields that say how to read the network's output: a student takes them from its teacher.
RUNTIME_FIELDS = (
    "score_threshold", "nms_iou", "contained_share", "box_margin", "max_detections", "min_width", "zoom_below",
    "zoom_threshold", "zoom_box", "zoom_window",
)  # fmt: skip
HEAD_LR_SHARE = 0.1  # a student's head starts as its teacher's and moves slower than the new backbone
VAL_EVERY = 50  # one frame in this many is held out
MATCH_IOU = 0.5


@dataclass
class DetectorTrainOptions:
    """Everything a run needs; `platepilot detector train` fills it from its flags."""

    data: list[Path]
    output_dir: Path
    epochs: int = 30
    samples_per_epoch: int = 4000
    batch_size: int = 24
    crop: int = 384
    input_size: int = 640
    lr: float = 3e-3
    init_from: Path | None = None
    resume: bool = False
    seed: int = 0
    workers: int = 1
    max_val: int = 150
    widths: tuple[int, ...] = WIDTHS
    neck: int = NECK
    arch: Arch = "ppocr"
    teacher: Path | None = None  # --arch student: a ppocr detector's weights (default: the bundled one)
    distill: float = 1.0  # --arch student: weight of the feature-matching loss
    distill_output: float = 0.0  # --arch student: weight of matching the teacher's output maps
    sources: list[str] = field(default_factory=list)


@dataclass
class DetectorTrainResult:
    model_path: Path
    best: dict[str, float]
    history: list[dict[str, float]]
    seconds: float


def is_val(frame: Frame) -> bool:
    return zlib.crc32(frame.image.name.encode()) % VAL_EVERY == 0


def split_frames(folders: list[Path]) -> tuple[list[Frame], list[Frame], list[Path]]:
    """Training and held-out frames of every dataset (its own `val` split, else one frame in VAL_EVERY, at
    least one: a held-out recall of no frame read 0.000), and the images left out as unreadable."""
    train: list[Frame] = []
    val: list[Frame] = []
    skipped: list[Path] = []
    for folder in folders:
        listed = yolo_frames(folder)
        if listed.val is None:
            held = [f for f in listed.train if is_val(f)]
            if not held and len(listed.train) >= 2:  # a small set no name of which hashes to the held-out share
                held = [min(listed.train, key=lambda f: zlib.crc32(f.image.name.encode()))]
            train += [f for f in listed.train if all(f is not h for h in held)]
            val += held
        else:
            train, val = train + listed.train, val + listed.val
        skipped += listed.skipped
    return train, val, skipped


def _warn_skipped(console: Console, skipped: list[Path]) -> None:
    console.print(
        escape(f"warning: {len(skipped)} frame(s) left out: empty, or not an image OpenCV reads (e.g. {skipped[0]})"),
        style="yellow", highlight=False, soft_wrap=True,
    )  # fmt: skip


def focal_loss(pred: torch.Tensor, heat: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, per plate."""
    pred = pred.clamp(1e-4, 1 - 1e-4)
    pos = heat.eq(1).float()
    pos_loss = torch.log(pred) * (1 - pred) ** 2 * pos
    neg_loss = torch.log(1 - pred) * pred**2 * (1 - heat) ** 4 * (1 - pos)
    return -(pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


def detection_loss(output: torch.Tensor, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    mask = batch["mask"]
    geometry = F.l1_loss(output[:, 1:] * mask, batch["geometry"] * mask, reduction="sum") / mask.sum().clamp(min=1)
    return focal_loss(output[:, :1], batch["heat"]) + geometry


def feature_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """Mean squared difference to the teacher's features, in units of their variance."""
    return F.mse_loss(student, teacher) / teacher.var().clamp(min=1e-6)


def output_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """How far the student's output maps are from the teacher's, per plate the teacher sees: the
    teacher's heat as soft targets (binary cross-entropy) and the geometry (L1) weighted by it."""
    heat = teacher[:, :1]
    plates = heat.sum().clamp(min=1)
    soft = F.binary_cross_entropy(student[:, :1].clamp(1e-4, 1 - 1e-4), heat, reduction="sum")
    geometry = ((student[:, 1:] - teacher[:, 1:]).abs() * heat).sum()
    return (soft + geometry) / plates


def card_for(opts: DetectorTrainOptions) -> DetectorCard:
    """The new model's sidecar; a student reads its boxes as its teacher does (the teacher's runtime fields)."""
    if opts.arch == "scratch":
        return DetectorCard(input_size=opts.input_size)
    card = DetectorCard(input_size=opts.input_size, output_stride=8, channel_order="BGR", mean=MEAN, std=STD)
    taught = (opts.teacher or BUNDLED_WEIGHTS).with_suffix(".json")
    if opts.arch == "ppocr" or not taught.is_file():
        return card
    fields = json.loads(taught.read_text(encoding="utf-8"))
    return DetectorCard.model_validate({**card.model_dump(), **{k: fields[k] for k in RUNTIME_FIELDS if k in fields}})


def build_model(opts: DetectorTrainOptions) -> DetectorNet:
    """`ppocr`: a head on PP-OCRv6 det's frozen stages (written to the run folder); `scratch`: PlateNet;
    `student`: a small backbone under the teacher's head."""
    if opts.arch == "ppocr":
        return PretrainedPlateNet(OrtBackbone(build_backbone(opts.output_dir / BACKBONE_FILE)))
    if opts.arch == "student":
        return StudentPlateNet()
    return PlateNet(tuple(opts.widths), opts.neck)


def build_teacher(opts: DetectorTrainOptions) -> PretrainedPlateNet:
    """The `ppocr` detector a student learns from: the frozen backbone and the head of `opts.teacher`."""
    teacher = PretrainedPlateNet(OrtBackbone(build_backbone(opts.output_dir / BACKBONE_FILE)))
    teacher.load_state_dict(_load_weights(opts.teacher or BUNDLED_WEIGHTS, "ppocr"))
    return teacher.eval()


def _teacher_source(opts: DetectorTrainOptions) -> dict[str, Any]:
    """What a student learnt from, for its model card."""
    weights = opts.teacher or BUNDLED_WEIGHTS
    card = weights.with_suffix(".json")
    sources = json.loads(card.read_text()).get("training", {}).get("sources", []) if card.is_file() else []
    return {"weights": str(weights), "backbone": backbone_source(), "teacher_sources": sources}


def _optimizer(model: DetectorNet, lr: float) -> tuple[torch.optim.Optimizer, list[float]]:
    """AdamW and each parameter group's peak learning rate (a student's head slower than the rest)."""
    if not isinstance(model, StudentPlateNet):
        return torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4), [lr]
    head = list(model.head.parameters())
    rest = [p for name, p in model.named_parameters() if not name.startswith("head.")]
    peaks = [lr, lr * HEAD_LR_SHARE]
    groups = [{"params": rest, "lr": peaks[0]}, {"params": head, "lr": peaks[1]}]
    return torch.optim.AdamW(groups, weight_decay=1e-4), peaks


def train_detector(opts: DetectorTrainOptions, console: Console | None = None) -> DetectorTrainResult:
    """Run (or, with `resume`, continue) a training run; returns the exported model and its history."""
    console = console or Console()
    torch.manual_seed(opts.seed)
    started = time.monotonic()
    checkpoint = opts.output_dir / CHECKPOINT
    check_run_folder(checkpoint, opts.resume)
    opts.output_dir.mkdir(parents=True, exist_ok=True)
    card = card_for(opts)
    model = build_model(opts)
    teacher = build_teacher(opts) if opts.arch == "student" else None
    if opts.init_from is not None:
        model.load_state_dict(_load_weights(opts.init_from, opts.arch))
    elif isinstance(model, StudentPlateNet) and teacher is not None:
        model.head.load_state_dict(teacher.head.state_dict())
    model = model.to(memory_format=torch.channels_last)  # oneDNN's fast layout for CPU convolutions
    optimizer, peaks = _optimizer(model, opts.lr)
    steps_per_epoch = max(opts.samples_per_epoch // opts.batch_size, 1)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, peaks, total_steps=opts.epochs * steps_per_epoch, pct_start=0.05
    )
    state: dict[str, Any] = {"epoch": 0, "history": [], "best": {}, "best_key": -math.inf}
    plan = _plan(opts, steps_per_epoch)
    if opts.resume:
        saved = load_saved(checkpoint)
        check_plan(
            checkpoint, saved.get("plan", {"epochs": saved["scheduler"]["total_steps"] // steps_per_epoch}), plan
        )
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = saved["state"]
        console.print(f"resuming after epoch {state['epoch']}")
    warned = 0
    undecodable: set[Path] = set()  # frames found cut short while training: warned of once, then left out
    for epoch in range(state["epoch"] + 1, opts.epochs + 1):
        train_frames, val_frames, skipped = split_frames(opts.data)
        if len(skipped) > warned:  # once, and again only if more turn up (the folders are listed each epoch)
            _warn_skipped(console, skipped)
            warned = len(skipped)
        train_frames = [f for f in train_frames if f.image not in undecodable]
        val_frames = [f for f in val_frames if f.image not in undecodable]
        loss, passed = _train_epoch(
            model, teacher, optimizer, scheduler, train_frames, card, opts, epoch, steps_per_epoch
        )
        metrics, passed_val = evaluate_frames(model, val_frames[: opts.max_val], card)
        for image in sorted((passed | passed_val) - undecodable):
            warning = f"warning: {image}: OpenCV cannot decode this frame (cut short or corrupt); training goes on"
            console.print(escape(warning), style="yellow", highlight=False, soft_wrap=True)
        undecodable |= passed | passed_val
        record = {"epoch": epoch, "loss": loss, **metrics, "train_frames": len(train_frames)}
        state["history"].append(record)
        weights = _weights(model, opts)
        (opts.output_dir / "epochs").mkdir(exist_ok=True)
        save_atomic(weights, opts.output_dir / "epochs" / f"epoch_{epoch:03d}.pt")  # for later comparisons
        key = metrics["recall"] - 0.1 * metrics["fp_per_image"]
        if key > state["best_key"]:
            state["best_key"], state["best"] = key, record
        state["epoch"] = epoch
        save_atomic(
            {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scheduler": scheduler.state_dict(), "state": state, "plan": plan},
            checkpoint,
        )  # fmt: skip
        console.print(
            f"epoch {epoch}/{opts.epochs}  loss {loss:.3f}  val recall {metrics['recall']:.3f}  "
            f"fp/img {metrics['fp_per_image']:.2f}  ({len(train_frames)} frames, {len(val_frames)} held out)"
        )
        training_curves(state["history"], opts.output_dir / "training_curves.png")
    # The last epoch is exported, not the best held-out one: the one-cycle schedule ends at a tiny
    # learning rate, and synthetic held-out scores saturate (run C: epoch 3 scored 0.967 held out
    # and found 54% of real UCSD plates, the last epoch 0.974 and 80%).
    model = model.to(memory_format=torch.contiguous_format)
    model_path = opts.output_dir / MODEL_FILE
    training = {
        "data": [str(p) for p in opts.data], "sources": opts.sources, "options": jsonable(asdict(opts)),
        **({"backbone": backbone_source()} if opts.arch == "ppocr" else {}),
        **({"teacher": _teacher_source(opts)} if opts.arch == "student" else {}),
        "epochs_run": state["epoch"], "best_held_out_epoch": state["best"].get("epoch"),
        "seconds_last_session": round(time.monotonic() - started, 1),
    }  # fmt: skip
    last = state["history"][-1] if state["history"] else {}
    card = card.model_copy(update={"training": training, "metrics": {"val_synthetic": last}})
    export_detector(model, card, model_path)
    save_atomic(_weights(model, opts), model_path.with_suffix(".pt"))
    write_text_atomically(opts.output_dir / "history.json", json.dumps(state["history"], indent=2) + "\n")
    return DetectorTrainResult(model_path, state["best"], state["history"], time.monotonic() - started)


PLAN_IGNORES = (*RESUMABLE, "max_val")  # options a resumed run may change


def _plan(opts: DetectorTrainOptions, steps_per_epoch: int) -> dict[str, Any]:
    """What a resumed run must share with the run it continues: schedule, data, crops, network, teacher."""
    return {"epochs": opts.epochs, "steps_per_epoch": steps_per_epoch, **run_plan(opts, PLAN_IGNORES)}


def _train_epoch(
    model: DetectorNet, teacher: PretrainedPlateNet | None, optimizer: torch.optim.Optimizer, scheduler: Any,
    frames: list[Frame], card: DetectorCard, opts: DetectorTrainOptions, epoch: int, steps: int,
) -> tuple[float, set[Path]]:  # fmt: skip
    """One epoch: (the mean loss, the frames found undecodable and passed over)."""
    dataset = SceneCrops(frames, card, opts.crop, augment=True, seed=opts.seed)
    dataset.epoch = epoch
    generator = torch.Generator().manual_seed(opts.seed * 1000 + epoch)
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=steps * opts.batch_size,
                                             generator=generator)  # fmt: skip
    loader = DataLoader(dataset, opts.batch_size, sampler=sampler, num_workers=opts.workers,
                        persistent_workers=False, drop_last=True)  # fmt: skip
    model.train()
    total = 0.0
    passed: set[Path] = set()
    columns = (TextColumn(f"epoch {epoch}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("loss {task.fields[loss]:.3f}"), TimeRemainingColumn())  # fmt: skip
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("train", total=steps, loss=0.0)
        for step, batch in enumerate(loader, 1):
            images = batch["image"].to(memory_format=torch.channels_last)
            if isinstance(model, StudentPlateNet) and teacher is not None:
                loss = _student_loss(model, teacher, images, batch, opts.distill, opts.distill_output)
            else:
                loss = detection_loss(model(images), batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
            passed |= {Path(name) for names in batch["undecodable"] for name in names.splitlines()}
            progress.update(task, advance=1, loss=total / step)
    return total / max(steps, 1), passed


def _student_loss(
    model: StudentPlateNet, teacher: PretrainedPlateNet, images: torch.Tensor, batch: dict[str, torch.Tensor],
    distill: float, distill_output: float,
) -> torch.Tensor:  # fmt: skip
    """The detection loss plus `distill` x how far the student's features are from the teacher's, plus
    `distill_output` x how far its output maps are from the teacher head's on the teacher's features."""
    s8, s16 = model.features(images)
    with torch.no_grad():
        t8, t16 = teacher.backbone(images)
        taught = teacher.head(t8, t16) if distill_output > 0 else None
    matching = feature_loss(s8, t8) + feature_loss(s16, t16)
    output = model.head(s8, s16)
    loss = detection_loss(output, batch) + distill * matching
    return loss if taught is None else loss + distill_output * output_loss(output, taught)


@torch.no_grad()
def evaluate_frames(model: DetectorNet, frames: list[Frame], card: DetectorCard) -> tuple[dict[str, float], set[Path]]:
    """Recall (IoU >= 0.5) and unmatched detections per frame on whole held-out frames, and the frames that
    could not be decoded (another frame was scored in their place)."""
    model.eval()
    dataset = SceneCrops(frames, card, 0, augment=False)
    found = plates = false = 0
    passed: set[Path] = set()
    for i in range(len(dataset)):
        sample = dataset[i]
        passed |= {Path(name) for name in str(sample["undecodable"]).splitlines()}
        output = model(sample["image"][None])[0].numpy()
        boxes, _ = decode(output, card, card.score_threshold)
        truth = _truth_boxes(sample, card)
        iou = box_iou(truth, boxes)
        plates += len(truth)
        found += int((iou.max(axis=1) >= MATCH_IOU).sum()) if len(boxes) else 0
        false += int((iou.max(axis=0) < MATCH_IOU).sum()) if len(truth) else len(boxes)
    metrics = {"recall": found / max(plates, 1), "fp_per_image": false / max(len(frames), 1), "val_plates": plates}
    return metrics, passed


def _truth_boxes(sample: dict[str, torch.Tensor], card: DetectorCard) -> np.ndarray:
    """The plate boxes of a target (input pixels), rebuilt from the mask cells, with the card's margin."""
    mask = sample["mask"][0].numpy()
    geometry = sample["geometry"].numpy()
    ys, xs = np.nonzero(mask)
    stride = card.output_stride
    cx, cy = (xs + geometry[0, ys, xs]) * stride, (ys + geometry[1, ys, xs]) * stride
    w, h = np.exp(geometry[2, ys, xs]), np.exp(geometry[3, ys, xs])
    grow_w, grow_h = card.box_margin
    return np.column_stack(
        [cx - w * (0.5 + grow_w), cy - h * (0.5 + grow_h), cx + w * (0.5 + grow_w), cy + h * (0.5 + grow_h)]
    ).astype(np.float32)


def _weights(model: DetectorNet, opts: DetectorTrainOptions) -> dict[str, Any]:
    return {"model": model.state_dict(), "arch": opts.arch, "widths": opts.widths, "neck": opts.neck}


def _load_weights(path: Path, arch: Arch) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise PlatepilotError(f"{path}: no such detector weights file")
    saved = load_saved(path)
    if not isinstance(saved, dict) or "model" not in saved:
        raise PlatepilotError(f"{path}: not detector weights saved by `platepilot detector train`")
    saved_arch = saved.get("arch", "scratch")
    if saved_arch != arch:
        raise PlatepilotError(f"{path}: weights of a --arch {saved_arch} detector; train with --arch {saved_arch}")
    weights: dict[str, torch.Tensor] = saved["model"]
    return weights


def training_curves(history: list[dict[str, float]], path: Path) -> None:
    """Training loss, held-out recall and false detections per frame by epoch, as a PNG."""
    plot_curves(history, [("training loss", ("loss",), False), ("held-out recall (IoU 0.5)", ("recall",), False),
                          ("false / frame", ("fp_per_image",), False)], path)  # fmt: skip
