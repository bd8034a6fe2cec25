"""`platepilot state ...` and `platepilot eval --states`: the state classifier's commands (thin)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape

from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.training.runs import SEED_MAX
from platepilot.types import PlateRead

_DATA_HELP = "State manifest (image_relpath, state, split); its train rows are trained on."
_DESIGNS_HELP = "Folder of Florida plate design images (e.g. florida_dmv), labelled FL; repeatable."
_CACHE_DIR = Path.home() / ".cache" / "platepilot" / "state"

state_app = typer.Typer(help="State identification: which state issued a plate.", no_args_is_help=True)


def _consoles() -> tuple[Console, Console]:
    """The CLI's own consoles (stdout, stderr), looked up at call time: cli.py imports this module."""
    from platepilot import cli

    return cli.console, cli.err_console


@state_app.command("train")
def state_train(
    data: Path = typer.Option(..., "--data", "-d", help=_DATA_HELP),
    designs: list[Path] = typer.Option([], "--designs", help=_DESIGNS_HELP),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Run folder (default: a new models/state_runs/<UTC time>/)."
    ),
    cache_dir: Path = typer.Option(_CACHE_DIR, "--cache-dir", help="Decoded photos and renders (reused)."),
    epochs: int = typer.Option(30, "--epochs", min=1),
    batch_size: int = typer.Option(64, "--batch-size", min=2),
    lr: float = typer.Option(3e-3, "--lr", min=1e-6, max=1.0, help="Peak learning rate (one-cycle)."),
    rendered: int = typer.Option(2400, "--rendered", min=0, help="Rendered plates in the pool (half Florida)."),
    threads: int = typer.Option(1, "--threads", min=1, max=64, help="Torch threads."),
    workers: int = typer.Option(1, "--workers", min=0, max=16, help="Data-loading processes."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    source: list[str] = typer.Option([], "--source", help="Name a data source for the model card; repeatable."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    backbone: str | None = typer.Option(
        None, "--backbone", help="Fine-tune a pretrained backbone end to end (ppocr-det) instead of StateNet."
    ),
    backbone_lr: float = typer.Option(3e-4, "--backbone-lr", min=1e-7, max=1.0, help="The backbone's peak rate."),
    height: int | None = typer.Option(None, "--height", min=32, max=256, help="Input height (64; 96 with --backbone)."),
    width: int | None = typer.Option(None, "--width", min=32, max=512, help="Input width (128; 192 with --backbone)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUTPUT_DIR after its last epoch."),
    teacher: Path | None = typer.Option(
        None,
        "--teacher",
        help="Learn to score crops as this state classifier ONNX does ('bundled' for the shipped one): a small, "
        "fast student at its input size, or with --backbone a pretrained one at --height/--width.",
    ),
    distill: float = typer.Option(1.0, "--distill", min=0.0, help="With --teacher: weight of its soft scores."),
) -> None:
    """Train the state classifier (CPU) and export it to OUTPUT_DIR/plate_state.onnx with its sidecar.

    With --backbone, PaddleOCR's text detector (from the rapidocr wheel) is cut, converted to torch and
    fine-tuned together with a new head: the bundled model's recipe (docs/states.md). With --teacher,
    a network about ten times faster learns to score crops as the teacher does, beside the labels; with
    both, the pretrained network learns from the teacher at a smaller input size (docs/states.md).
    Use it with `state.model_path: OUTPUT_DIR/plate_state.onnx` in platepilot.yaml.
    """
    import torch

    from platepilot.ocr.state import BUNDLED_STATE_MODEL
    from platepilot.training.runs import run_output
    from platepilot.training.state.train import StateTrainOptions, train_state

    console, _ = _consoles()
    if teacher is not None and str(teacher) == "bundled":
        teacher = BUNDLED_STATE_MODEL
    if teacher is not None and not teacher.is_file():
        raise PlatepilotError(f"{teacher}: no such teacher model")
    torch.set_num_threads(threads)
    opts = StateTrainOptions(
        data=data, output_dir=run_output(output_dir, Path("models/state_runs"), resume), designs=designs,
        cache_dir=cache_dir, epochs=epochs, batch_size=batch_size, lr=lr, rendered=rendered, seed=seed,
        workers=workers, sources=source,
        backbone=backbone, backbone_lr=backbone_lr, height=height or (96 if backbone else 64),
        width=width or (192 if backbone else 128), resume=resume, teacher=teacher, distill=distill,
    )  # fmt: skip
    result = train_state(opts, console)
    log_training_run(console, opts, result, tracking_uri, "plate_state", "state")
    _print_run(console, result.model_path, result.evaluation, result.seconds)


@state_app.command("train-head")
def state_train_head(
    data: Path = typer.Option(..., "--data", "-d", help=_DATA_HELP),
    designs: list[Path] = typer.Option([], "--designs", help=_DESIGNS_HELP),
    output_dir: Path = typer.Option(Path("models/state_runs/head"), "--output-dir", "-o", help="Run folder."),
    cache_dir: Path = typer.Option(
        _CACHE_DIR, "--cache-dir", help="Decoded photos, renders and backbone features (reused)."
    ),
    backbone: str = typer.Option("ppocr-det", "--backbone", help="Frozen pretrained backbone (ppocr-det)."),
    height: int = typer.Option(96, "--height", min=32, max=256),
    width: int = typer.Option(192, "--width", min=32, max=512),
    copies: int = typer.Option(4, "--copies", min=0, max=32, help="Degraded copies of every image (features cached)."),
    epochs: int = typer.Option(12, "--epochs", min=1),
    lr: float = typer.Option(2e-3, "--lr", min=1e-6, max=1.0),
    extra_rendered: int = typer.Option(
        0, "--extra-rendered", min=0, help="More degraded rendered plates per copy (beyond 600 in each copy)."
    ),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    threads: int = typer.Option(1, "--threads", min=1, max=64, help="Torch threads."),
    source: list[str] = typer.Option([], "--source", help="Name a data source for the model card; repeatable."),
) -> None:
    """Train a state head on a frozen pretrained backbone (PaddleOCR's, from rapidocr); one merged ONNX file.

    Use it with `state.model_path: OUTPUT_DIR/plate_state.onnx` in platepilot.yaml.
    """
    import torch

    from platepilot.training.state.pretrained import HeadTrainOptions, train_head

    console, _ = _consoles()
    torch.set_num_threads(threads)
    opts = HeadTrainOptions(
        data=data, output_dir=output_dir, designs=designs, cache_dir=cache_dir, backbone=backbone, height=height,
        width=width, copies=copies, epochs=epochs, lr=lr, seed=seed, sources=source, extra_rendered=extra_rendered,
    )  # fmt: skip
    result = train_head(opts, console)
    _print_run(console, result.model_path, result.evaluation, result.seconds)


def _print_run(console: Console, model_path: Path, scores: dict[str, Any] | None, seconds: float) -> None:
    """The last line of a training command: the model, its valid+test scores (if any) and the time taken."""
    from platepilot.ocr.state_eval import percent

    summary = (
        f"valid+test: top1 {scores['top1']:.3f}, top3 {scores['top3']:.3f}, FL precision "
        f"{percent(scores['florida_precision'])} recall {percent(scores['florida_recall'])}"
        if scores
        else "no valid/test rows to score"
    )
    console.print(escape(f"{model_path} ({summary}; {seconds:.0f} s)"), soft_wrap=True)


def log_training_run(
    console: Console, opts: Any, result: Any, tracking_uri: str | None, experiment: str, task: str
) -> None:
    """Log a finished run to MLflow (`log_detector_run`); a failure to log is one line, the model stays on disk."""
    from platepilot.registry.tracking import log_detector_run

    try:
        log_detector_run(
            opts, result, _tracking_uri(tracking_uri), lambda line: console.print(escape(line)), experiment, task
        )
    except PlatepilotError as exc:
        console.print(escape(f"run not logged to MLflow: {exc}"), highlight=False)


def _tracking_uri(tracking_uri: str | None) -> str:
    from platepilot.config import load_config

    return tracking_uri or load_config(None).mlflow.tracking_uri


def parse_state(value: str) -> str:
    """`--state`: a postal code, a state name or `unknown` -> the code events store (PlatepilotError if none)."""
    from platepilot.plates.states import UNKNOWN, state_code

    if value.strip().lower() == UNKNOWN:
        return UNKNOWN
    try:
        return state_code(value)
    except ValueError as exc:
        raise PlatepilotError(f"--state: {exc} (or 'unknown')") from None


def with_states(reads: list[PlateRead], images: list[np.ndarray], settings: Settings) -> list[PlateRead]:
    """`platepilot ocr`: each read with its crop's state (unchanged when `state.enabled` is false)."""
    if not settings.state.enabled:
        return reads
    from platepilot.ocr.state import state_classifier, with_state

    classifier = state_classifier(settings.state)
    guesses = classifier.classify(images)
    ocr = settings.ocr
    return [with_state(r, g, ocr.format_prior, ocr.site_state) for r, g in zip(reads, guesses, strict=True)]


def eval_states(
    manifest: Path, settings: Settings, model: Path | None, splits: list[str], as_json: bool, limit: int | None,
    report: Path | None = None,
) -> None:  # fmt: skip
    """`eval --states`: score the state classifier on a state manifest (top-1/3, Florida, speed); with
    `report`, also write its errors (report.json, worst_errors.png) there."""
    from rich.table import Table

    from platepilot.ocr.state import state_classifier
    from platepilot.ocr.state_eval import evaluate_states, percent, write_state_report
    from platepilot.plates.state_manifest import read_state_manifest

    console, err_console = _consoles()
    photos = read_state_manifest(manifest, set(splits) if splits else None)[:limit]
    classifier = state_classifier(settings.state, model)
    result = evaluate_states(photos, classifier, err_console)
    if report is not None:
        write_state_report(result, report)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    table = Table("photos", "top-1", "top-3", "FL precision", "FL recall", "FL photos", "unknown", "named right",
                  "ms/plate")  # fmt: skip
    table.add_row(
        str(result.n), f"{result.top1:.1%}", f"{result.top3:.1%}", percent(result.florida_precision),
        percent(result.florida_recall), str(result.florida_n), f"{result.unknown_rate:.1%}",
        f"{result.named_right:.1%}", f"{result.ms_per_plate:.3f}",
    )  # fmt: skip
    console.print(table)
    if result.confusions:
        pairs = ", ".join(f"{t}→{p} {c}" for t, p, c in result.confusions)
        console.print(f"confusions (true→predicted): {escape(pairs)}", highlight=False)
    if report is not None:
        console.print(f"errors: {report / 'report.json'}, {report / 'worst_errors.png'}", highlight=False)
