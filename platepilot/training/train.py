"""The CTC training run behind `train_crnn.py` / `platepilot train`: resumable, early-stopping, watched."""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch import nn

from platepilot.errors import PlatepilotError
from platepilot.ocr.ctc import greedy_decode
from platepilot.ocr.metrics import score
from platepilot.ocr.spec import ModelCard, ModelSpec, file_sha256, load_card
from platepilot.plates.templates import Template, design_images
from platepilot.store.atomic import write_text_atomically
from platepilot.store.labels import resolve_crop_path
from platepilot.store.provenance import pseudo_labels, sidecar_path
from platepilot.store.splits import FINETUNE_ADVICE, SCRATCH_SYNTHETIC, is_held_out, validation_plan
from platepilot.training.checkpoints import check_plan, check_run_folder, load_saved, save_atomic
from platepilot.training.data import LabelledSet, load_crops, load_labelled, split_by_group, synthetic_batch
from platepilot.training.data_loading import EpochSampler, MixedPlates, collate, make_loader
from platepilot.training.design_templates import load_templates
from platepilot.training.export import export_onnx
from platepilot.training.model import CRNN, build_model
from platepilot.training.plots import prediction_grid, training_curves
from platepilot.training.records import TrainOptions, TrainResult
from platepilot.training.widen import widen

MODEL_NAME = "florida_plate_ocr"
COLLAPSE_EPOCHS = 5  # consecutive epochs of all-empty validation reads that count as blank collapse
MIN_LABELS = 10
FEW_LABELS = 500  # the guide: below this a CRNN trained from scratch collapses to blanks
SYNTH_VAL = 512
PSEUDO_VAL_MIN = 200  # with fewer human labels than a validation split needs, validate on pseudo-labels from here


@dataclass
class _State:
    epoch: int = 0
    best_key: tuple[float, float] = (-1.0, -math.inf)
    best: dict[str, float] = field(default_factory=dict)
    bad_epochs: int = 0
    empty_streak: int = 0
    collapse_detected: bool = False
    history: list[dict[str, float]] = field(default_factory=list)


def _templates(opts: TrainOptions, console: Console) -> list[Template]:
    """The real designs of `opts.designs` with their sample serials painted out (none without designs)."""
    if not opts.designs:
        return []
    if not opts.synthetic:
        raise PlatepilotError("--designs draws a share of the synthetic plates on the designs: add --synthetic N")
    paths = [path for folder in opts.designs for path in design_images(folder)]
    with console.status(f"painting the sample serials out of {len(paths)} plate designs"):
        templates = load_templates(paths)
    if not templates:
        raise PlatepilotError(f"{opts.designs[0]}: no design had a serial that could be painted out")
    console.print(f"{len(templates)} of {len(paths)} designs usable, {opts.designs_share:.0%} of synthetic plates")
    return templates


def train(opts: TrainOptions, console: Console | None = None) -> TrainResult:
    """Run (or resume) a training run; returns where the exported model is and how it went."""
    console = console or Console()
    torch.manual_seed(opts.seed)
    out = opts.output_dir
    check_run_folder(out / "last.pt", opts.resume)
    spec, arch, init_weights = _resumed_point(out) if opts.resume else _starting_point(opts)
    train_set, val_images, val_texts, summary = _prepare_data(opts, spec, console)
    out.mkdir(parents=True, exist_ok=True)  # only now: a run refused for its input leaves no empty folder
    model = build_model(spec.channels, spec.num_classes, spec.height, arch)
    if init_weights is not None:
        model.load_state_dict(init_weights)
    weights = [1.0] * (len(train_set.texts) - summary["pseudo"]) + [opts.pseudo_weight] * summary["pseudo"]
    dataset = MixedPlates(
        train_set.images, train_set.texts, spec, opts.synthetic, opts.seed, weights=weights, degrade=opts.degrade_real,
        templates=_templates(opts, console), template_share=opts.designs_share, motion=opts.motion_blur,
    )  # fmt: skip
    sampler = EpochSampler(len(dataset), opts.seed)
    loader = make_loader(dataset, spec, opts.batch_size, sampler, opts.workers)
    steps_per_epoch = len(loader)
    optimizer = torch.optim.AdamW(model.parameters(), lr=opts.lr, weight_decay=1e-4)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(steps_per_epoch * opts.epochs))
    state = _State()
    last_ckpt = out / "last.pt"
    # the network asked for: a resume takes its own from best.pt, so another --conv-widths would go unseen
    plan = _plan(opts, arch if opts.init_from is not None else opts.arch, steps_per_epoch, len(train_set.texts))
    if opts.resume:
        state = _load_checkpoint(last_ckpt, model, optimizer, scheduler, plan)
        console.print(f"resuming after epoch {state.epoch} (best exact {state.best.get('exact', 0):.1%})")
    started = time.perf_counter()
    stopped = "completed"
    try:
        for epoch in range(state.epoch + 1, opts.epochs + 1):
            sampler.set_epoch(epoch)
            loss = _train_epoch(model, loader, optimizer, scheduler, epoch, opts.epochs)
            val = _validate(model, spec, val_images, val_texts, opts.batch_size)
            record = {"epoch": float(epoch), "loss": loss, **{k: v for k, v in val.items() if k != "preds"}}
            state.history.append(record)
            state.epoch = epoch
            _report_epoch(console, record, val["preds"], val_texts, opts.epochs)
            _watch_collapse(console, state, val["preds"], summary)
            key = (record["exact"], -record["cer"])
            if key > state.best_key:
                state.best_key, state.best, state.bad_epochs = key, record, 0
                _save_weights(out / "best.pt", model, spec, arch)
            else:
                state.bad_epochs += 1
            _save_checkpoint(last_ckpt, model, optimizer, scheduler, state, plan)
            if state.bad_epochs >= opts.patience:
                console.print(f"early stop: no better validation for {opts.patience} epochs")
                stopped = "early_stop"
                break
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted: checkpoint of epoch {state.epoch} kept; continue with --resume[/yellow]")
        stopped = "interrupted"
    seconds = time.perf_counter() - started
    model_path = _finish(opts, spec, arch, state, val_images, val_texts, summary, seconds, console)
    return TrainResult(model_path, state.best, state.history, stopped, state.collapse_detected, seconds)


def _resumed_point(out: Path) -> tuple[ModelSpec, dict[str, Any], None]:
    """Spec and architecture of the run being resumed, from its best.pt: its checkpoint replaces the
    weights, so `--init-from` is not read again (that model may have been replaced meanwhile)."""
    best = load_saved(out / "best.pt", WEIGHTS_KEYS, "CRNN weights")
    return ModelSpec.model_validate(best["spec"]), best["arch"], None


def _starting_point(opts: TrainOptions) -> tuple[ModelSpec, dict[str, Any], dict[str, torch.Tensor] | None]:
    """Spec, architecture and initial weights: fresh, or those of `--init-from` (an .onnx or .pt)."""
    if opts.init_from is None:
        return ModelSpec(), opts.arch, None
    weights = init_weights_file(opts.init_from)
    saved = load_saved(weights, WEIGHTS_KEYS, "CRNN weights (a run's last.pt is its checkpoint: pass its best.pt)")
    spec, arch, state = ModelSpec.model_validate(saved["spec"]), saved["arch"], saved["state_dict"]
    grown = arch | opts.grow
    if grown == arch:
        return spec, arch, state
    parent = build_model(spec.channels, spec.num_classes, spec.height, arch)
    parent.load_state_dict(state)
    return spec, grown, widen(parent, spec.channels, spec.num_classes, spec.height, arch, grown).state_dict()


def init_weights_file(init_from: Path) -> Path:
    """The checkpoint `--init-from` names (an .onnx's .pt, or a .pt), refused when an ONNX beside it
    does not record that checkpoint's sha256 in its sidecar (a .pt left over from another model)."""
    onnx, weights = init_from.with_suffix(".onnx"), init_from.with_suffix(".pt")
    if not init_from.is_file():
        raise PlatepilotError(f"--init-from {init_from}: no such model (an .onnx with its .pt beside it, or 'bundled')")
    if not weights.is_file():
        raise PlatepilotError(f"--init-from {init_from}: no weights file {weights} beside it")
    if not onnx.is_file():
        return weights  # a bare checkpoint (a run's best.pt): nothing to mismatch
    recorded = load_card(onnx).weights_sha256
    if recorded != file_sha256(weights):
        why = "records no checkpoint sha256" if not recorded else "records another checkpoint's sha256"
        raise PlatepilotError(
            f"--init-from {init_from}: {weights.name} does not belong to {onnx.name} (its sidecar {why}); "
            "pass the .pt of the training run that exported it, e.g. models/runs/<run>/florida_plate_ocr.pt"
        )
    return weights


def _prepare_data(
    opts: TrainOptions, spec: ModelSpec, console: Console
) -> tuple[LabelledSet, list[np.ndarray], list[str], dict[str, Any]]:
    empty = LabelledSet(np.zeros((0, spec.height, spec.width), np.uint8), [], [], [])
    data = empty
    if opts.pseudo and opts.labels is None:
        raise PlatepilotError("--pseudo trains on the pseudo-labels beside a labels file: pass --labels labels.txt")
    if opts.labels is not None and (opts.labels.is_file() or not opts.pseudo):
        data, report = load_labelled(opts.labels, spec)
        console.print(
            f"labels: {report.used} usable, {report.skipped} skipped (__SKIP__), "
            f"{len(report.unreadable)} unreadable images, {report.bad_lines} bad lines ignored"
        )
        for path in report.unreadable[:5]:
            console.print(f"  unreadable: {path}")
    data = _without_held_out(data, opts.holdout_fraction, console)
    pseudo = (
        _without_held_out(_load_pseudo(opts, spec, console), opts.holdout_fraction, console) if opts.pseudo else empty
    )
    if len(data.texts) + len(pseudo.texts) < MIN_LABELS and opts.synthetic == 0:
        raise PlatepilotError(
            f"only {len(data.texts)} usable labels to train on: label at least {MIN_LABELS} crops, "
            f"or fine-tune with synthetic plates mixed in ({FINETUNE_ADVICE})"
        )
    if len(data.texts) < FEW_LABELS and opts.synthetic == 0 and opts.init_from is None:
        console.print(
            f"[yellow]warning: {len(data.texts)} labels is few for training from scratch (the model tends to "
            f"read nothing below ~{FEW_LABELS}); fine-tune instead ({FINETUNE_ADVICE}), or from scratch add "
            f"--synthetic {SCRATCH_SYNTHETIC}"
        )
    plan = validation_plan(len(data.texts), opts.val_split)
    train_idx, val_idx = split_by_group(data.groups, opts.val_split if plan.source == "labels" else 0.0, opts.seed)
    val_set = LabelledSet(data.images[val_idx], [data.texts[i] for i in val_idx], [], [])
    source = "labelled crops"
    if not len(val_idx) and len(pseudo.texts) >= PSEUDO_VAL_MIN:
        # Too few human labels to validate on, but plenty of the site's own crops: early-stop on real pixels.
        share = min(opts.val_split or 0.1, SYNTH_VAL / len(pseudo.texts))
        keep, held = split_by_group(pseudo.groups, share, opts.seed)
        val_set = LabelledSet(pseudo.images[held], [pseudo.texts[i] for i in held], [], [])
        pseudo = LabelledSet(pseudo.images[keep], [pseudo.texts[i] for i in keep], [], [pseudo.paths[i] for i in keep])
        source = "held-out pseudo-labels"
    if not val_set.texts:  # no real validation crops: hold out a fixed synthetic set
        images, texts = synthetic_batch(opts.seed + 104_729, 0, SYNTH_VAL, spec)
        val_set, source = LabelledSet(images, texts, [], []), "synthetic plates"
        if data.texts:
            console.print(f"[yellow]{plan.line()}[/yellow]")
    train_set = LabelledSet(
        np.concatenate([data.images[train_idx], pseudo.images]),
        [data.texts[i] for i in train_idx] + pseudo.texts,
        [],
        [],
    )
    val_images, val_texts = list(val_set.images), val_set.texts
    summary = {
        "labels": len(data.texts), "pseudo": len(pseudo.texts), "train": len(train_set.texts), "val": len(val_texts),
        "val_source": source, "sources": _sources(opts, len(data.texts), pseudo),
    }  # fmt: skip
    with_pseudo = f" ({len(pseudo.texts)} pseudo-labels, weight {opts.pseudo_weight})" if opts.pseudo else ""
    console.print(
        f"train on {summary['train']} labelled{with_pseudo} + {opts.synthetic} synthetic/epoch, "
        f"validate on {summary['val']} {source}"
    )
    return train_set, val_images, val_texts, summary


def _load_pseudo(opts: TrainOptions, spec: ModelSpec, console: Console) -> LabelledSet:
    """The passing `labels auto` pseudo-labels beside `opts.labels` (crops a human labelled are left out)."""
    assert opts.labels is not None
    entries = pseudo_labels(opts.labels)
    if not entries:
        raise PlatepilotError(
            f"--pseudo: no pseudo-labels in {sidecar_path(opts.labels)}; make them first with "
            "`platepilot labels auto --crops-dir <crops> --labels " + str(opts.labels) + "`"
        )
    data, unreadable = load_crops(entries, opts.labels, spec)
    console.print(f"pseudo-labels: {len(data.texts)} usable, {len(unreadable)} unreadable images")
    return data


def _sources(opts: TrainOptions, labels: int, pseudo: LabelledSet) -> list[str]:
    """Every data source of the run, for the model card: the starting model's own sources carry over."""
    sources = []
    if labels:
        sources.append(f"{labels} human labels: {opts.labels}")
    if pseudo.texts and opts.labels is not None:
        crops = os.path.commonpath([str(resolve_crop_path(p, opts.labels).resolve()) for p in pseudo.paths])
        sources.append(
            f"{len(pseudo.texts)} pseudo-labels (platepilot labels auto) of the crops under {crops}, "
            f"in {sidecar_path(opts.labels)}"
        )
    if opts.synthetic:
        sources.append(f"{opts.synthetic} synthetic plates per epoch (platepilot.plates.synth)")
    if opts.synthetic and opts.designs:
        folders = ", ".join(str(folder) for folder in opts.designs)
        sources.append(
            f"{opts.designs_share:.0%} of them drawn on the real plate designs in {folders} "
            "(platepilot.plates.templates)"
        )
    if opts.init_from is not None:
        grown = f", widened to {opts.grow} (platepilot.training.widen)" if opts.grow else ""
        sources.append(f"initial weights: {opts.init_from}{grown}")
        start = opts.init_from.with_suffix(".onnx")
        inherited = load_card(start).training.get("sources", []) if start.is_file() else []
        sources += [s if " was trained on: " in s else f"{start.name} was trained on: {s}" for s in inherited]
    return sources


def _without_held_out(data: LabelledSet, fraction: float, console: Console) -> LabelledSet:
    """`data` less the crops held out for the promotion gate (`store/splits.py`)."""
    keep = [i for i, group in enumerate(data.groups) if not is_held_out(group, fraction)]
    held = len(data.texts) - len(keep)
    if held:
        console.print(f"held out {held} crops for the promotion gate (never trained or validated on)")
    return LabelledSet(
        data.images[keep], [data.texts[i] for i in keep], [data.groups[i] for i in keep], [data.paths[i] for i in keep]
    )


def _warmup_cosine(total_steps: int) -> Callable[[int], float]:
    warmup = max(1, min(500, total_steps // 20))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _train_epoch(model: CRNN, loader: Any, optimizer: Any, scheduler: Any, epoch: int, epochs: int) -> float:
    model.train()
    total, count = 0.0, 0
    columns = (
        TextColumn(f"epoch {epoch}/{epochs}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[loss]}"),
        TimeRemainingColumn(),
    )
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("train", total=len(loader), loss="")
        for images, targets, lengths, weights in loader:
            log_probs = model(images).log_softmax(2)
            loss = weighted_ctc(log_probs, targets, lengths, weights)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            optimizer.step()
            scheduler.step()
            total += loss.item() * images.shape[0]
            count += images.shape[0]
            progress.update(task, advance=1, loss=f"loss={total / count:.3f}")
    return total / max(count, 1)


def weighted_ctc(
    log_probs: torch.Tensor, targets: torch.Tensor, lengths: torch.Tensor, weights: torch.Tensor
) -> torch.Tensor:
    """CTC loss per plate (over its length, as CTCLoss's "mean"), averaged with each plate's weight: with
    every weight 1 it is CTCLoss's own mean; a pseudo-label at 0.5 pulls half as hard as a human label."""
    input_lengths = torch.full((log_probs.shape[1],), log_probs.shape[0], dtype=torch.long)
    per_plate = nn.functional.ctc_loss(log_probs, targets, input_lengths, lengths, reduction="none", zero_infinity=True)
    per_plate = per_plate / lengths.clamp(min=1)
    return (per_plate * weights).sum() / weights.sum().clamp(min=1e-8)


@torch.no_grad()
def _validate(
    model: CRNN, spec: ModelSpec, images: list[np.ndarray], texts: list[str], batch_size: int
) -> dict[str, Any]:
    model.eval()
    ctc = nn.CTCLoss(blank=0, zero_infinity=True)
    preds: list[str] = []
    total = 0.0
    size = max(batch_size, 64)
    for i in range(0, len(texts), size):
        batch = [(image, text, 1.0) for image, text in zip(images[i : i + size], texts[i : i + size], strict=True)]
        x, targets, lengths, _ = collate(spec, batch)
        logits = model(x)
        log_probs = logits.log_softmax(2)
        input_lengths = torch.full((x.shape[0],), logits.shape[0], dtype=torch.long)
        total += float(ctc(log_probs, targets, input_lengths, lengths)) * x.shape[0]
        probs = log_probs.exp().permute(1, 0, 2).numpy()
        preds.extend(greedy_decode(p, spec.charset)[0] for p in probs)
    s = score(preds, texts)
    return {
        "val_loss": total / max(len(texts), 1),
        "cer": s.cer,
        "exact": s.exact,
        "exact_folded": s.exact_folded,
        "preds": preds,
    }


def _report_epoch(console: Console, record: dict[str, float], preds: list[str], truths: list[str], epochs: int) -> None:
    sample = next((i for i, (p, t) in enumerate(zip(preds, truths, strict=True)) if p != t), 0)
    console.print(
        f"Epoch {int(record['epoch']):>3}/{epochs}  loss={record['loss']:.2f}  val_loss={record['val_loss']:.2f}  "
        f"CER={record['cer']:.2f}  exact={record['exact']:.0%}  pred={preds[sample] or '-'} true={truths[sample]}",
        highlight=False,
    )


def _watch_collapse(console: Console, state: _State, preds: list[str], summary: dict[str, Any]) -> None:
    """Blank collapse: the model learnt that predicting nothing minimises CTC loss on too little data."""
    state.empty_streak = state.empty_streak + 1 if not any(preds) else 0
    if state.empty_streak == COLLAPSE_EPOCHS:
        state.collapse_detected = True
        console.print(
            f"[red]blank collapse: for {COLLAPSE_EPOCHS} epochs the model has read every validation plate as empty. "
            f"It has learnt that 'no characters' is the safest answer, which happens when there is too little "
            f"data ({summary['labels']} labels). Fix: label more crops (500+), fine-tune the bundled reader "
            f"({FINETUNE_ADVICE}), or from scratch add --synthetic {SCRATCH_SYNTHETIC}.[/red]"
        )


WEIGHTS_KEYS = ("state_dict", "spec", "arch")
"""What a CRNN weights file (best.pt, a model's .pt) holds (`_save_weights`)."""


def _save_weights(path: Path, model: CRNN, spec: ModelSpec, arch: dict[str, Any]) -> None:
    save_atomic({"state_dict": model.state_dict(), "spec": spec.model_dump(), "arch": arch}, path)


def _plan(opts: TrainOptions, arch: dict[str, Any], steps_per_epoch: int, crops: int) -> dict[str, Any]:
    """What a resumed run must share with the run it continues: its schedule, data and network."""
    return {
        "epochs": opts.epochs, "batch_size": opts.batch_size, "steps_per_epoch": steps_per_epoch, "lr": opts.lr,
        "labels": str(opts.labels), "labelled_crops": crops, "synthetic": opts.synthetic, "seed": opts.seed,
        "val_split": opts.val_split, "pseudo": opts.pseudo, "arch": arch,
        # how crops are drawn and degraded, and what the weights started from: a resume that changed them
        # would train a mix of two recipes and record one
        "pseudo_weight": opts.pseudo_weight, "degrade_real": opts.degrade_real, "motion_blur": opts.motion_blur,
        "designs": [str(d) for d in opts.designs], "designs_share": opts.designs_share,
        "holdout_fraction": opts.holdout_fraction, "init_from": str(opts.init_from), "grow": opts.grow,
    }  # fmt: skip


def _save_checkpoint(
    path: Path, model: CRNN, optimizer: Any, scheduler: Any, state: _State, plan: dict[str, Any]
) -> None:
    save_atomic(
        {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
         "state": asdict(state), "torch_rng": torch.get_rng_state(), "plan": plan},
        path,
    )  # fmt: skip


def _load_checkpoint(path: Path, model: CRNN, optimizer: Any, scheduler: Any, plan: dict[str, Any]) -> _State:
    saved = load_saved(path, ("model", "optimizer", "scheduler", "torch_rng", "state"), "a CRNN training checkpoint")
    check_plan(path, saved.get("plan", {}), plan)  # a checkpoint from before plans were kept: trusted as before
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    torch.set_rng_state(saved["torch_rng"])
    fields = saved["state"]
    fields["best_key"] = tuple(fields["best_key"])
    return _State(**fields)


def _finish(
    opts: TrainOptions, spec: ModelSpec, arch: dict[str, Any], state: _State, val_images: list[np.ndarray],
    val_texts: list[str], summary: dict[str, Any], seconds: float, console: Console,
) -> Path | None:  # fmt: skip
    """Export the best weights to ONNX + sidecar, and draw the run's pictures."""
    out = opts.output_dir
    write_text_atomically(out / "history.json", json.dumps(state.history, indent=1))
    if not state.history:
        return None
    training_curves(state.history, out / "training_curves.png")
    best = load_saved(out / "best.pt")
    model = build_model(spec.channels, spec.num_classes, spec.height, arch)
    model.load_state_dict(best["state_dict"])
    preds = _validate(model, spec, val_images, val_texts, 64)["preds"]
    prediction_grid(val_images, preds, val_texts, out / "val_predictions.png")
    metrics = {k: v for k, v in state.best.items() if k != "epoch"} | {"best_epoch": state.best.get("epoch", 0)}
    training = {
        **summary, "synthetic_per_epoch": opts.synthetic, "epochs_run": state.epoch, "seed": opts.seed,
        "lr": opts.lr, "batch_size": opts.batch_size, "init_from": str(opts.init_from or ""),
        "seconds": round(seconds, 1), "pseudo_weight": opts.pseudo_weight if opts.pseudo else 0.0,
        "degrade_real": opts.degrade_real, "motion_blur": opts.motion_blur,
    }  # fmt: skip
    model_path = out / f"{MODEL_NAME}.onnx"
    weights = model_path.with_suffix(".pt")
    _save_weights(weights, model, spec, arch)  # first: the sidecar ties this checkpoint to the ONNX
    card = ModelCard(
        spec=spec, architecture=arch, metrics=metrics, training=training, weights_sha256=file_sha256(weights)
    )
    parity_inputs = [_as_bgr(img) for img in val_images[:16]]
    diff = export_onnx(model, card, model_path, parity_inputs)
    console.print(
        f"best epoch {int(state.best.get('epoch', 0))}: exact={state.best.get('exact', 0):.1%} "
        f"CER={state.best.get('cer', 0):.3f}; exported {model_path} (torch/onnxruntime max abs diff {diff:.1e})"
    )
    load_card(model_path)  # the written model must be loadable by everyone else
    return model_path


def _as_bgr(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if image.ndim == 2 else image.transpose(1, 2, 0)
