"""`platepilot state train-head`: a state head on a frozen, pretrained PaddleOCR backbone -> one ONNX file.

The from-scratch StateNet learns from ~5.6k photos only. Here the backbone is PaddleOCR's PP-OCRv6
small text detector (shipped as ONNX in the rapidocr wheel, Apache-2.0, trained on large real
image sets), cut after its last backbone stages (`training.ppocr_backbone`, as the detector's is) and
fixed to the head's input size. Its feature maps of every training image are computed once, for a
clean copy and several camera-like degraded copies, and cached as float16 outside the repository;
only a small head is trained on them (per map: 1x1 convolution + average pooling to a coarse grid,
then an MLP). The head is exported with torch and merged behind the cut backbone
(`onnx.compose.merge_models`) into one ONNX file the runtime's StateClassifier runs unchanged; the
parity of the merged file with backbone + torch head is checked before it replaces anything.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from rich.console import Console
from rich.progress import track
from torch.nn import functional as F

from platepilot.errors import PlatepilotError
from platepilot.ocr.state import StateCard, save_state_card
from platepilot.plates.state_manifest import StatePhoto
from platepilot.plates.states import STATE_NAMES, UNKNOWN
from platepilot.sessions import rapidocr_model, sidecar_path
from platepilot.store.atomic import write_text_atomically
from platepilot.training.checkpoints import jsonable, save_atomic
from platepilot.training.onnx_merge import merge_behind
from platepilot.training.parity import PARITY_TOLERANCE, random_batches
from platepilot.training.plots import plot_curves
from platepilot.training.state.backbones import BACKBONES, Backbone, FeatureHead, cut_backbone
from platepilot.training.state.data import Pool, StateCrops, load_cached, save_cached, training_sources
from platepilot.training.state.train import MODEL_FILE, check_classes, eval_photos, score_eval_splits


@dataclass
class HeadTrainOptions:
    """Everything `platepilot state train-head` needs."""

    data: Path
    output_dir: Path
    designs: list[Path] = field(default_factory=list)
    cache_dir: Path = Path.home() / ".cache" / "platepilot" / "state"
    backbone: str = "ppocr-det"
    height: int = 96
    width: int = 192
    copies: int = 4
    epochs: int = 12
    batch_size: int = 256
    lr: float = 2e-3
    reduce: int = 96
    hidden: int = 512
    rendered: int = 2400
    rendered_per_copy: int = 600
    extra_rendered: int = 0  # more degraded renders per copy, cached apart (`rendered<copy>-<n>`)
    non_plates_per_copy: int = 400
    seed: int = 0
    sources: list[str] = field(default_factory=list)


@dataclass
class HeadTrainResult:
    model_path: Path
    history: list[dict[str, float]]
    seconds: float
    evaluation: dict[str, Any] | None


def _session(model: onnx.ModelProto | Path, threads: int = 1) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    data = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _features(
    session: ort.InferenceSession, pool: Pool, items: np.ndarray, card: StateCard, augment: bool, seed: int,
    path: Path, label: str,
) -> tuple[list[np.ndarray], np.ndarray]:  # fmt: skip
    """Backbone maps (float16) and class indices of `items` (as StateCrops makes them), cached at `path`."""
    cached = load_cached(path, _load_features, len(items))
    if cached is not None:
        return cached.maps, cached.labels
    crops = StateCrops(pool, items, card, augment=augment, seed=seed)
    name = session.get_inputs()[0].name
    maps: list[list[np.ndarray]] = []
    labels = []
    for start in track(range(0, len(crops), 64), description=f"features {label}", transient=True):
        batch = [crops[j] for j in range(start, min(start + 64, len(crops)))]
        outs = session.run(None, {name: np.stack([b[0].numpy() for b in batch])})
        maps = maps or [[] for _ in outs]
        for acc, out in zip(maps, outs, strict=True):
            acc.append(out.astype(np.float16))
        labels += [b[1] for b in batch]
    arrays = [np.concatenate(m) for m in maps]
    save_cached(path, lambda f: np.savez(f, *arrays, labels=np.array(labels)))  # maps as arr_0, arr_1, ...
    return arrays, np.array(labels)


@dataclass(frozen=True)
class _Features:
    maps: list[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)


def _load_features(path: Path) -> _Features:
    with np.load(path) as saved:
        return _Features([saved[f"arr_{i}"] for i in range(len(saved.files) - 1)], saved["labels"])


def _feature_key(opts: HeadTrainOptions, spec: Backbone, pool: Pool) -> str:
    """The cache key of a run's backbone features: every image and label of the pool, and every option
    that changes which crops are made from them."""
    images = hashlib.sha1(np.ascontiguousarray(pool.images).data).hexdigest()
    wanted = [spec.file, spec.outputs, opts.height, opts.width, opts.seed, opts.rendered, opts.rendered_per_copy,
              opts.non_plates_per_copy, images, pool.states]  # fmt: skip
    return hashlib.sha1(json.dumps(wanted).encode()).hexdigest()[:12]


def train_head(opts: HeadTrainOptions, console: Console | None = None) -> HeadTrainResult:
    """Cache backbone features, train the head, merge both into `<output_dir>/plate_state.onnx` (+ sidecar)."""
    console = console or Console()
    started = time.monotonic()
    torch.manual_seed(opts.seed)
    if opts.backbone not in BACKBONES:
        raise PlatepilotError(f"--backbone: one of {', '.join(BACKBONES)}, got {opts.backbone!r}")
    spec = BACKBONES[opts.backbone]
    source = rapidocr_model(spec.file)
    backbone = cut_backbone(source, spec.outputs, opts.height, opts.width)
    session = _session(backbone)
    card = StateCard(
        classes=(*STATE_NAMES, UNKNOWN), height=opts.height, width=opts.width, channel_order=spec.channel_order,
        mean=spec.mean, std=spec.std,
    )  # fmt: skip
    scored = eval_photos(opts.data)  # a bad valid/test row fails now, not after training
    sources = training_sources(opts.data, opts.designs, opts.rendered, opts.seed, opts.cache_dir)
    check_classes(card, sources.pool.states, None)
    pool, real, designs, rendered = sources.pool, sources.real, sources.designs, sources.rendered
    console.print(f"{sources.describe()}; backbone {spec.file} cut at {', '.join(spec.outputs)}")
    folder = opts.cache_dir / f"features-{opts.backbone}-{_feature_key(opts, spec, pool)}"

    def feats(name: str, items: np.ndarray, augment: bool, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
        return _features(session, pool, items, card, augment, seed, folder / f"{name}.npz", name)

    parts = [feats("clean", np.concatenate([real, designs]), False, 0)]
    rng = np.random.default_rng(opts.seed)
    for copy in range(opts.copies):
        extra = [rng.choice(rendered, opts.rendered_per_copy)] if len(rendered) else []
        items = np.concatenate([real, designs, designs, *extra, np.full(opts.non_plates_per_copy, -1)])
        parts.append(feats(f"aug{copy}", items, True, 1000 + copy + 100 * opts.seed))
    more = np.random.default_rng(opts.seed + 1)  # its own stream: the aug copies' items stay as cached
    for copy in range(opts.copies if opts.extra_rendered and len(rendered) else 0):
        items = more.choice(rendered, opts.extra_rendered)
        parts.append(feats(f"rendered{copy}-{opts.extra_rendered}", items, True, 2000 + copy + 100 * opts.seed))
    maps = [torch.from_numpy(np.concatenate([p[0][i] for p in parts])) for i in range(len(parts[0][0]))]
    labels = torch.from_numpy(np.concatenate([p[1] for p in parts])).long()
    held_maps, held_labels = feats("holdout", sources.held, False, 0)
    grid = (opts.height // 32, opts.width // 32)  # the stride-32 map's size
    head = FeatureHead([tuple(m.shape[1:]) for m in maps], len(card.classes), opts.reduce, opts.hidden, grid)  # type: ignore[misc]
    history = _fit(head, maps, labels, held_maps, held_labels, card, opts, console)
    return _finish(head, backbone, card, opts, spec, history, started, scored, console)


def _fit(
    head: FeatureHead, maps: list[torch.Tensor], labels: torch.Tensor, held_maps: list[np.ndarray],
    held_labels: np.ndarray, card: StateCard, opts: HeadTrainOptions, console: Console,
) -> list[dict[str, float]]:  # fmt: skip
    counts = torch.bincount(labels, minlength=len(card.classes)).float() + 1
    prior = (counts / counts.sum()).log()  # logit adjustment: scores as if every class were equally common
    optimizer = torch.optim.AdamW(head.parameters(), lr=opts.lr, weight_decay=0.05)
    steps = max(1, len(labels) // opts.batch_size)  # a batch over the epoch: one step
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, opts.lr, total_steps=opts.epochs * steps, pct_start=0.1)
    generator = torch.Generator().manual_seed(opts.seed)
    history = []
    for epoch in range(1, opts.epochs + 1):
        head.train()
        order = torch.randperm(len(labels), generator=generator)
        total = 0.0
        for step in range(steps):
            idx = order[step * opts.batch_size : (step + 1) * opts.batch_size]
            logits = head(*(m[idx].float() for m in maps))
            loss = F.cross_entropy(logits + prior, labels[idx], label_smoothing=0.1)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            total += float(loss.detach())
        top1, top3 = _score(head, held_maps, held_labels)
        history.append({"epoch": epoch, "loss": total / max(steps, 1), "holdout_top1": top1, "holdout_top3": top3})
        console.print(
            f"epoch {epoch}/{opts.epochs}  loss {total / max(steps, 1):.3f}  held-out top1 {top1:.3f} top3 {top3:.3f}"
        )
    return history


@torch.no_grad()
def _score(head: FeatureHead, maps: list[np.ndarray], labels: np.ndarray) -> tuple[float, float]:
    if not len(labels):
        return 0.0, 0.0
    head.eval()
    logits = head(*(torch.from_numpy(m).float() for m in maps))[:, :-1]  # states only (unknown is last)
    best = logits.topk(3, dim=1).indices
    truth = torch.from_numpy(labels)
    return float((best[:, 0] == truth).float().mean()), float((best == truth[:, None]).any(dim=1).float().mean())


def merge_head(backbone: onnx.ModelProto, head: FeatureHead, shapes: list[tuple[int, ...]]) -> onnx.ModelProto:
    """One model: the cut backbone's maps feed the exported head; input `image`, output `logits`."""
    names = [f"f{i}" for i in range(len(shapes))]
    axes = {**{n: {0: "batch"} for n in names}, "logits": {0: "batch"}}
    return merge_behind(backbone, head, tuple(torch.zeros(1, *s) for s in shapes), names, "logits", axes)


def merged_parity(merged: onnx.ModelProto, backbone: onnx.ModelProto, head: FeatureHead, card: StateCard) -> float:
    """Max abs logit difference: merged ONNX vs backbone (onnxruntime) + torch head, on random inputs."""
    whole, part = _session(merged), _session(backbone)
    worst = 0.0
    with torch.no_grad():
        for batch in random_batches((n, 3, card.height, card.width) for n in (1, 5, 64)):
            maps = part.run(None, {part.get_inputs()[0].name: batch})
            expected = head.eval()(*(torch.from_numpy(m) for m in maps)).numpy()
            got = whole.run(None, {whole.get_inputs()[0].name: batch})[0]
            worst = max(worst, float(np.abs(expected - got).max()))
    return worst


def _finish(
    head: FeatureHead, backbone: onnx.ModelProto, card: StateCard, opts: HeadTrainOptions, spec: Backbone,
    history: list[dict[str, float]], started: float, scored: tuple[StatePhoto, ...], console: Console,
) -> HeadTrainResult:  # fmt: skip
    shapes = [tuple(d.dim_value for d in out.type.tensor_type.shape.dim[1:]) for out in backbone.graph.output]
    merged = merge_head(backbone, head, shapes)
    diff = merged_parity(merged, backbone, head, card)
    if diff > PARITY_TOLERANCE:
        raise PlatepilotError(f"merged ONNX disagrees with backbone + head: max abs logit difference {diff:.2e}")
    model_path = opts.output_dir / MODEL_FILE
    model_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = model_path.with_name(f".{model_path.stem}.tmp.onnx")
    onnx.save(merged, str(tmp))
    tmp.replace(model_path)
    training = {
        "sources": opts.sources or [f"{spec.source}, frozen", f"{opts.data} (train split)",
                                    *map(str, opts.designs), "platepilot synthetic plates"],
        "command": "platepilot state train-head", "backbone": opts.backbone, "backbone_file": spec.file,
        "backbone_outputs": list(spec.outputs), "data": str(opts.data), "designs": [str(d) for d in opts.designs],
        "options": jsonable(asdict(opts)), "epochs_run": len(history),
        "seconds": round(time.monotonic() - started, 1), "export_parity_max_abs": diff,
    }  # fmt: skip
    sidecar_path(model_path).unlink(missing_ok=True)
    save_state_card(model_path, card.model_copy(update={"training": training, "metrics": {"holdout": history[-1]}}))
    save_atomic({"head": head.state_dict(), "shapes": shapes}, opts.output_dir / "head.pt")
    write_text_atomically(opts.output_dir / "history.json", json.dumps(history, indent=2) + "\n")
    panels = [("loss (logit-adjusted)", ("loss",), False), ("held-out", ("holdout_top1", "holdout_top3"), False)]
    plot_curves(history, panels, opts.output_dir / "training_curves.png")
    evaluation = score_eval_splits(model_path, scored, console, threads=1)
    console.print(f"{model_path}: {model_path.stat().st_size / 1e6:.1f} MB, parity {diff:.1e}")
    return HeadTrainResult(model_path, history, time.monotonic() - started, evaluation)
