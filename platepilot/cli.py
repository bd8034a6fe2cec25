"""The `platepilot` command: one Typer app; each command parses, calls one library function, prints."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console
from rich.markup import escape

from platepilot.blur_cli import blur_app
from platepilot.config import Settings, dump_config, load_config
from platepilot.errors import PlatepilotError, database_error, missing_module, one_line
from platepilot.redact import RedactingFormatter, redact
from platepilot.state_cli import eval_states, parse_state, state_app, with_states
from platepilot.training.records import DEFAULT_ARCH, TrainOptions, TrainResult
from platepilot.training.runs import SEED_MAX

if TYPE_CHECKING:
    from platepilot.ocr.gate_record import GateRecord

DETECTOR_RUNS = Path("models/detector_runs")

app = typer.Typer(
    name="platepilot",
    help="Edge licence plate recognition for Florida roads, and the life cycle of its plate reader.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class _RedactingConsole(Console):
    """A console that never shows a URL's password, whatever a command prints (see `redact`)."""

    def print(self, *objects: object, **kwargs: Any) -> None:
        super().print(*(redact(o) if isinstance(o, str) else o for o in objects), **kwargs)


console = _RedactingConsole()
err_console = _RedactingConsole(stderr=True)

config_app = typer.Typer(help="Show the effective configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("show")
def config_show(
    config: Path | None = typer.Option(
        None, "--config", "-c", help="YAML config file (default: $PLATEPILOT_CONFIG or ./platepilot.yaml)."
    ),
) -> None:
    """Print the effective configuration (file merged over defaults) as YAML, then which reader is live."""
    from platepilot.ocr.models import choose_reader

    settings = load_config(config)
    typer.echo(redact(dump_config(settings)), nl=False)
    choice = choose_reader(settings.ocr.engine, None, settings)
    typer.echo(f"# live reader: {choice.engine} ({choice.reason})")


OCR_CHUNK = 64
"""Crops `platepilot ocr` decodes and reads at a time (one batch of the readers)."""
_URI_HELP = "MLflow tracking URI (default: the config's mlflow.tracking_uri, http://localhost:5000)."
_MODEL_HELP = "CRNN ONNX model (default: ocr.model_path if trained, else the bundled model)."
_ENGINE_HELP = "OCR engine: auto, cascade, plateocr, paddle, easyocr or crnn (default: the config's ocr.engine)."


@app.command("ocr")
def ocr_command(
    images: list[Path] = typer.Argument(
        ..., help="Plate crops (JPEG, PNG, ...), or folders of them (every image below, e.g. output/crops)."
    ),
    model: Path | None = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    engine: str | None = typer.Option(None, "--engine", "-e", help=_ENGINE_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON list instead of one line per image."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Read plate crops: one line per image (path, text, confidence, format, state, state confidence)."""
    import json

    from platepilot.images import image_files
    from platepilot.levels import read_crop
    from platepilot.ocr.models import make_engine

    settings = load_config(config)
    paths, empty = [], []
    for arg in images:
        found = image_files(arg) if arg.is_dir() else [arg]
        if not found:
            empty.append(arg)
            err_console.print(
                f"[red]error:[/red] {escape(str(arg))}: no images in this folder", highlight=False, soft_wrap=True
            )
        paths += found
    reader = None
    rows: list[dict[str, Any]] = []
    unreadable = 0
    for start in range(0, len(paths), OCR_CHUNK):  # a chunk at a time: a folder of 10,000 photos is not held whole
        crops = []
        for path in paths[start : start + OCR_CHUNK]:
            try:
                crops.append((path, read_crop(path)))
            except PlatepilotError as exc:
                unreadable += 1
                err_console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)
        if not crops:
            continue
        reader = reader or make_engine(engine or settings.ocr.engine, model, settings)
        reads = with_states(reader.read([image for _, image in crops]), [image for _, image in crops], settings)
        for (path, _), read in zip(crops, reads, strict=True):
            if as_json:
                rows.append(
                    {"path": str(path), "text": read.text, "confidence": round(read.confidence, 4),
                     "format": read.format_match, "char_confidences": [round(c, 4) for c in read.char_confidences],
                     "engine": read.engine, "candidates": [[t, round(c, 4)] for t, c in read.candidates],
                     "state": read.state, "state_confidence": round(read.state_confidence, 4)}
                )  # fmt: skip
            else:
                typer.echo(
                    f"{path}\t{read.text or '-'}\t{read.confidence:.3f}\t{read.format_match or '-'}\t"
                    f"{read.state}\t{read.state_confidence:.3f}"
                )
    if reader is None:
        raise typer.Exit(1)
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
    if unreadable or empty:  # an image or a folder given could not be read: the run failed
        raise typer.Exit(1)


_DETECTOR_HELP = (
    "With --scenes: auto (the config's detector), platenet (the bundled one), fast (its faster student), textdet, "
    "or the path of an ONNX detector."
)


@app.command("eval")
def eval_command(
    labels: Path | None = typer.Option(None, "--labels", "-l", help="labels.txt (<crop path>\\t<TEXT> lines)."),
    scenes: Path | None = typer.Option(
        None, "--scenes", help="MANIFEST.tsv of whole photos (image_relpath x y w h plate_text): detector + reader."
    ),
    states: Path | None = typer.Option(
        None, "--states", help="State manifest (image_relpath, state[, split]): the state classifier (--model)."
    ),
    split: list[str] = typer.Option([], "--split", help="With --states: only rows of this split; repeatable."),
    model: Path | None = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    engine: str | None = typer.Option(None, "--engine", "-e", help=_ENGINE_HELP),
    detector: str = typer.Option("auto", "--detector", help=_DETECTOR_HELP),
    textdet_side: int | None = typer.Option(
        None, "--textdet-side", min=128, help="With --detector textdet: longest side, pixels (default: the video size)."
    ),
    stills: bool = typer.Option(
        False,
        "--stills",
        help="With --scenes: detect at the still-image size, as `platepilot run` reads a folder of these photos "
        "(default: the video size, as a camera's stream is read).",
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the summary as JSON."),
    report: Path | None = typer.Option(
        None,
        "--report",
        help="Write report.json + worst_errors.png (the errors; with --scenes, the plates not read) to this folder.",
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Evaluate the first N crops (or scene images)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Score a reader on a labels file (exact and CER, strict and O/I-folded, confusions, speed), or a
    detector and reader on whole scenes (recall, end-to-end reads, false detections, speed).

    A KNOWN_LABEL_ERRORS.tsv beside the labels file or manifest (image_relpath, label, observed) lists
    labels found to be wrong: those plates are scored against what they read, and the score as
    labelled is printed beside it (docs/ocr_training.md)."""
    if sum(x is not None for x in (labels, scenes, states)) != 1:
        raise PlatepilotError(
            "eval needs exactly one of --labels (plate crops), --scenes (a MANIFEST.tsv) or --states (a state manifest)"
        )
    if states is not None:
        if engine is not None or detector != "auto" or textdet_side is not None or stills:
            raise PlatepilotError("--states goes with --model, --split, --limit, --report and --json only")
        eval_states(states, load_config(config), model, split, as_json, limit, report)
        return
    if split:
        raise PlatepilotError("--split goes with --states")
    if labels is not None and (detector != "auto" or textdet_side is not None or stills):
        raise PlatepilotError("--detector, --textdet-side and --stills go with --scenes, not --labels")
    settings = load_config(config)
    if scenes is not None:
        _eval_scenes(scenes, settings, model, engine, detector, textdet_side, stills, as_json, limit, report)
    elif labels is not None:
        _eval_labels(labels, settings, model, engine, as_json, report, limit)


def _eval_labels(
    labels: Path, settings: Settings, model: Path | None, engine: str | None, as_json: bool,
    report: Path | None, limit: int | None,
) -> None:  # fmt: skip
    """`eval --labels`: the reader alone on labelled crops."""
    import json

    from rich.table import Table

    from platepilot.ocr.evaluate import evaluate, write_report
    from platepilot.ocr.models import make_engine, resolve_model

    name = engine or settings.ocr.engine
    reader = make_engine(name, model, settings)
    model_name = str(resolve_model(model, settings)) if reader.name == "crnn" else reader.name
    result = evaluate(reader, labels, limit=limit, model=model_name)
    if report is not None:
        write_report(result, report)
    if result.unreadable:
        err_console.print(
            f"warning: {len(result.unreadable)} crops could not be read and were left out "
            f"(first: {escape(str(result.unreadable[0]))})",
            highlight=False,
            soft_wrap=True,
        )
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    s = result.scores
    table = Table(title=f"{labels} ({model_name})")
    for column in ("n", "exact", "exact folded", "CER", "CER folded", "plates/s"):
        table.add_column(column, justify="right")
    table.add_row(
        str(s.n), f"{s.exact:.1%}", f"{s.exact_folded:.1%}", f"{s.cer:.3f}", f"{s.cer_folded:.3f}",
        f"{result.plates_per_s:,.0f}",
    )  # fmt: skip
    console.print(table)
    if result.as_labelled is not None:
        a = result.as_labelled
        _print_errata(result.corrected, labels, f"exact {a.exact:.1%}, folded {a.exact_folded:.1%}")
    if result.standard is not None:
        st = result.standard
        console.print(
            f"standard serials ({st.n} of {s.n}; vanity words, placeholders and fragments left out): "
            f"exact {st.exact:.1%}, folded {st.exact_folded:.1%}",
            highlight=False,
        )
    if result.confusions:
        pairs = ", ".join(f"{t or '∅'}→{r or '∅'} {c}" for t, r, c in result.confusions)
        console.print(f"confusions (true→read): {escape(pairs)}", highlight=False)
    if report is not None:
        _print_report_written(report)


def _print_report_written(folder: Path) -> None:
    console.print(f"report written to {escape(str(folder))}/ (report.json, worst_errors.png)")


def _print_errata(count: int, labelled: Path, as_labelled: str) -> None:
    """Say that the scores above count `count` plates by the errata beside `labelled`, and the score as labelled."""
    from platepilot.plates.label_errors import ERRATA_FILE

    where = escape(str(labelled.parent / ERRATA_FILE))
    console.print(f"{count} label(s) corrected by {where}; scored as labelled: {as_labelled}", highlight=False)


def _eval_scenes(
    manifest: Path, settings: Settings, model: Path | None, engine: str | None, detector_name: str,
    textdet_side: int | None, stills: bool, as_json: bool, limit: int | None, report: Path | None,
) -> None:  # fmt: skip
    """`eval --scenes`: detector + reader on labelled photos (platepilot.pipeline.scene_eval), at the video or
    (`stills`) the still-image size."""
    import json

    from rich.table import Table

    from platepilot.ocr.models import engine_for
    from platepilot.pipeline.scene_eval import evaluate_scenes, named_detector, write_scene_report
    from platepilot.plates.manifest import read_manifest

    scenes = read_manifest(manifest)[:limit]
    detector = named_detector(detector_name, settings.detector, textdet_side, still=stills)
    reader = engine_for(engine or settings.ocr.engine, model, settings, detector)
    result = evaluate_scenes(scenes, detector, reader, console=err_console)
    if report is not None:
        write_scene_report(result, report)
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    table = Table(title=f"{manifest} ({result.detector}{', stills' if stills else ''}, {result.engine})")
    for column in ("images", "plates", "recall", "read e2e", "folded", "false/image", "ms/image", "ms/read"):
        table.add_column(column, justify="right")
    table.add_row(
        str(result.images), str(result.plates), f"{result.recall:.1%}", f"{result.read_e2e:.1%}",
        f"{result.read_e2e_folded:.1%}", f"{result.fp_per_image:.2f}", f"{result.ms_per_image:.0f}",
        f"{result.ms_per_read:.0f}",
    )  # fmt: skip
    console.print(table)
    if result.corrected:
        _print_errata(result.corrected, manifest, f"read e2e {result.read_e2e_as_labelled:.1%}")
    if report is not None:
        _print_report_written(report)


synth_app = typer.Typer(
    help="Synthetic training data: plate crops for the reader, whole scenes for the detector.",
    no_args_is_help=True,
)
app.add_typer(synth_app, name="synth")
_SYNTH_OUT_HELP = "Output folder (created; re-running the same command resumes where it stopped)."
_SYNTH_SEED_HELP = "Random stream: the same seed and count give byte-identical files."
_SYNTH_WORKERS_HELP = "Processes to render with (the output does not depend on it)."
_SYNTH_PREVIEW_HELP = "Also write a contact sheet of the first samples to this PNG, to look at."


def _check_preview(preview: Path | None) -> None:
    if preview is not None and preview.suffix.lower() not in (".png", ".jpg", ".jpeg"):
        raise PlatepilotError(f"--preview {preview}: use a .png (or .jpg) file name")


@synth_app.command("plates")
def synth_plates(
    count: int = typer.Option(..., "--count", "-n", min=1, help="Number of plate crops to write."),
    out: Path = typer.Option(..., "--out", "-o", help=_SYNTH_OUT_HELP),
    seed: int = typer.Option(0, "--seed", min=0, help=_SYNTH_SEED_HELP),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help=_SYNTH_WORKERS_HELP),
    preview: Path | None = typer.Option(None, "--preview", help=_SYNTH_PREVIEW_HELP),
) -> None:
    """Write synthetic plate crops OUT/<index>.jpg and their texts to OUT/labels.txt (labels format)."""
    from platepilot.training.datasets import preview_plates, write_plates

    _check_preview(preview)
    labels = write_plates(out, count, seed=seed, workers=workers)
    if preview is not None:
        preview_plates(preview, seed=seed, count=min(count, 48))
    shown = f", preview {preview}" if preview is not None else ""
    console.print(escape(f"{count} synthetic plates (seed {seed}) in {out}, labels {labels}{shown}"), soft_wrap=True)


_REAL_PLATES_HELP = (
    "Folder of whole-plate photos to copy half the plates from (repeatable; a MANIFEST.tsv with a split "
    "column contributes its train split only)."
)


@synth_app.command("scenes")
def synth_scenes(
    count: int = typer.Option(..., "--count", "-n", min=1, help="Number of scenes (1280x720, a fifth 640x480)."),
    out: Path = typer.Option(..., "--out", "-o", help=_SYNTH_OUT_HELP),
    seed: int = typer.Option(0, "--seed", min=0, help=_SYNTH_SEED_HELP),
    workers: int = typer.Option(1, "--workers", "-w", min=1, help=_SYNTH_WORKERS_HELP),
    preview: Path | None = typer.Option(None, "--preview", help=_SYNTH_PREVIEW_HELP),
    real_plates: list[Path] = typer.Option([], "--real-plates", help=_REAL_PLATES_HELP),
) -> None:
    """Write a YOLO detection dataset: OUT/images/*.jpg, OUT/labels/*.txt (0 cx cy w h), OUT/data.yaml.

    Each scene holds 0-6 plates (20-300 px wide) on vehicles plus unlabelled distractors (signs,
    banners, stickers, logos, badges, lamps, emblems, tree crowns), by day, dusk, night or infrared,
    with blur, rain and JPEG.
    """
    from platepilot.plates.scenes import real_plate_photos
    from platepilot.training.datasets import preview_scenes, write_scenes

    _check_preview(preview)
    photos = real_plate_photos(real_plates)
    data_yaml = write_scenes(out, count, seed=seed, workers=workers, real_plates=photos)
    if preview is not None:
        preview_scenes(preview, seed=seed, count=min(count, 6), real_plates=photos)
    shown = f", preview {preview}" if preview is not None else ""
    real = f", {len(photos)} real plate photos" if photos else ""
    console.print(
        escape(f"{count} synthetic scenes (seed {seed}{real}) in {out}, dataset {data_yaml}{shown}"), soft_wrap=True
    )


detector_app = typer.Typer(help="The plate detector: train your own, or retrain the bundled one.", no_args_is_help=True)
app.add_typer(detector_app, name="detector")
app.add_typer(state_app, name="state")
app.add_typer(blur_app, name="blur")


@detector_app.command("train")
def detector_train(
    data: list[Path] = typer.Option(
        ..., "--data", "-d", help="YOLO dataset folder (images/ + labels/), e.g. from `synth scenes`; repeatable."
    ),
    output_dir: Path | None = typer.Option(
        None,
        "--output-dir",
        "-o",
        help="Run folder: checkpoints, curves, ONNX (default: a new models/detector_runs/<UTC time>/).",
    ),
    epochs: int = typer.Option(30, "--epochs", min=1, help="Epochs of --samples crops each."),
    samples: int = typer.Option(3000, "--samples", min=16, help="Random crops per epoch."),
    batch_size: int = typer.Option(24, "--batch-size", min=1),
    crop: int = typer.Option(320, "--crop", min=64, max=1024, help="Training crop side (multiple of 32)."),
    input_size: int = typer.Option(640, "--input-size", min=128, max=2048, help="Longer frame side the model sees."),
    lr: float = typer.Option(3e-3, "--lr", min=1e-6, max=1.0, help="Peak learning rate (one-cycle)."),
    init_from: Path | None = typer.Option(
        None, "--init-from", help="Start from these weights (a run's .pt, or 'bundled': the bundled model of --arch)."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --output-dir after its last epoch."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    workers: int = typer.Option(1, "--workers", min=0, max=16, help="Data-loading processes."),
    source: list[str] = typer.Option([], "--source", help="Name a data source for the model card; repeatable."),
    arch: str = typer.Option(
        "ppocr",
        "--arch",
        help="ppocr: a head on PP-OCRv6 det's frozen first stages (default); student: a small, fast backbone "
        "taught by a ppocr detector (--teacher) to give its features, under its head; scratch: the old PlateNet.",
    ),
    teacher: Path | None = typer.Option(
        None, "--teacher", help="--arch student: the ppocr detector's weights (.pt) to learn from (default: bundled)."
    ),
    distill: float = typer.Option(
        1.0, "--distill", min=0.0, help="--arch student: weight of matching the teacher's features."
    ),
    distill_output: float = typer.Option(
        0.0,
        "--distill-output",
        min=0.0,
        help="--arch student: weight of matching the teacher's output maps (its heat as soft targets).",
    ),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_URI_HELP),
) -> None:
    """Train a plate detector (CenterNet-style, CPU) and export it to OUTPUT_DIR/plate_detector.onnx.

    Use it with `detector.model_path: OUTPUT_DIR/plate_detector.onnx` in platepilot.yaml.
    """
    from platepilot.training.detector.train import (
        BUNDLED_WEIGHTS,
        FAST_WEIGHTS,
        DetectorTrainOptions,
        train_detector,
    )

    if crop % 32:
        raise PlatepilotError(f"--crop must be a multiple of 32, got {crop}")
    if input_size % 32:
        raise PlatepilotError(f"--input-size must be a multiple of 32, got {input_size}")
    if arch not in ("ppocr", "scratch", "student"):
        raise PlatepilotError(f"--arch must be ppocr, student or scratch, got {arch!r}")
    if teacher is not None and not teacher.is_file():
        raise PlatepilotError(f"{teacher}: no such teacher weights file")
    bundled = FAST_WEIGHTS if arch == "student" else BUNDLED_WEIGHTS
    start = bundled if init_from == Path("bundled") else init_from
    from platepilot.training.runs import run_output

    opts = DetectorTrainOptions(
        data=data, output_dir=run_output(output_dir, DETECTOR_RUNS, resume), epochs=epochs,
        samples_per_epoch=samples, batch_size=batch_size, crop=crop, input_size=input_size, lr=lr, init_from=start,
        resume=resume, seed=seed, workers=workers,
        sources=source, arch="ppocr" if arch == "ppocr" else "student" if arch == "student" else "scratch",
        teacher=teacher, distill=distill, distill_output=distill_output,
    )  # fmt: skip
    result = train_detector(opts, console)
    from platepilot.registry.tracking import log_detector_run

    uri, _ = _registry_target(None, tracking_uri, None)
    try:
        log_detector_run(opts, result, uri, say=lambda line: console.print(escape(line)))
    except PlatepilotError as exc:
        console.print(escape(f"run not logged to MLflow: {exc}"), highlight=False)
    last = result.history[-1]
    console.print(
        escape(
            f"{result.model_path} (epoch {last['epoch']}: held-out recall {last['recall']:.3f}, "
            f"{last['fp_per_image']:.2f} false per frame); curves in {opts.output_dir / 'training_curves.png'}"
        ),
        soft_wrap=True,
    )


_DEFAULT_LABELS = Path("data/ocr_training/labels.txt")
_CROPS_DIR_HELP = "Folder of plate crops (searched recursively; default: the config's output.crops_dir)."
_LINE_CROP_HELP = (
    "Cut each crop to its plate line before reading (crops of whole plates). Default: yes for the "
    "runtime's own crops (output.crops_dir) when the configured detector boxes whole plates, else no."
)


def _line_crop(flag: bool | None, crops_dir: Path | None, settings: Settings) -> bool:
    """`--line-crop` as given, else whether the crops are the runtime's own whole-plate boxes: read from
    `output.crops_dir` behind a detector that boxes whole plates (`detect.boxes_whole_plates`)."""
    from platepilot.detect import boxes_whole_plates

    if flag is not None:
        return flag
    own = crops_dir is None or crops_dir.resolve() == settings.output.crops_dir.resolve()
    return own and boxes_whole_plates(settings.detector)


_LABELS_OUT_HELP = "labels.txt to append to (<crop path>\\t<TEXT> lines; created if missing)."
_ACCEPT_HELP = "Also write reads at least this confident to labels.txt (unverified; training sees them)."
_PRELABEL_ENGINE_HELP = (
    "OCR engine for pre-labels: auto, cascade (the CRNN, then PlateOCR where unsure), plateocr (the PlateOCR "
    "ensemble), paddle, easyocr or crnn. "
    "'auto' is the best measured reader (see `platepilot config show`)."
)


@app.command("label")
def label_command(
    crops_dir: Path | None = typer.Option(None, "--crops-dir", help=_CROPS_DIR_HELP),
    output: Path = typer.Option(_DEFAULT_LABELS, "--output", "-o", help=_LABELS_OUT_HELP),
    review: bool = typer.Option(
        False, "--review", help="Walk labeled crops and pending pre-labels, suspicious first; fixes appended."
    ),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; anything but loopback requires the printed token."
    ),
    port: int = typer.Option(0, "--port", min=0, max=65535, help="Port (0: a free one)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the URL; do not open a browser."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Label plate crops in a local web page: type the plate, Enter saves, Esc skips, [ goes back,
    Ctrl+Q saves and quits."""
    from platepilot.labeling.server import serve
    from platepilot.labeling.session import LabelSession

    session = LabelSession(crops_dir or load_config(config).output.crops_dir, output, review=review)
    serve(session, host, port, open_browser=not no_browser, say=typer.echo)


@app.command("prelabel")
def prelabel_command(
    crops_dir: Path | None = typer.Option(None, "--crops-dir", help=_CROPS_DIR_HELP),
    output: Path = typer.Option(
        _DEFAULT_LABELS, "--output", "-o", help="labels.txt whose sidecar (.meta.jsonl) gets the pre-labels."
    ),
    engine: str = typer.Option("auto", "--engine", "-e", help=_PRELABEL_ENGINE_HELP),
    model: Path | None = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    accept_above: float | None = typer.Option(None, "--accept-above", min=0.0, max=1.0, help=_ACCEPT_HELP),
    redo: bool = typer.Option(False, "--redo", help="Read again crops this engine already pre-labeled."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Crops per engine call."),
    line_crop: bool | None = typer.Option(None, "--line-crop/--no-line-crop", help=_LINE_CROP_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Pre-label crops not in labels.txt yet: reads go to <labels>.meta.jsonl as suggestions only."""
    from platepilot.labeling.prelabel import prelabel_crops
    from platepilot.ocr.models import make_engine
    from platepilot.store.provenance import sidecar_path

    settings = load_config(config)
    reader = make_engine(engine, model, settings, whole_plates=_line_crop(line_crop, crops_dir, settings))
    result = prelabel_crops(
        crops_dir or settings.output.crops_dir, output, reader,
        batch_size=batch_size, accept_above=accept_above, redo=redo, console=err_console,
    )  # fmt: skip
    for _, why in result.unreadable[:5]:
        err_console.print(f"warning: {escape(why)}", highlight=False, soft_wrap=True)
    accepted = f", {result.accepted} also written to {output}" if accept_above is not None else ""
    console.print(escape(
        f"{result.read} crops pre-labeled by {reader.name} into {sidecar_path(output)}{accepted}; "
        f"skipped {result.already_labeled} labeled and {result.already_read} already pre-labeled; "
        f"{len(result.unreadable)} unreadable"
    ), highlight=False, soft_wrap=True)  # fmt: skip


labels_app = typer.Typer(
    help="Check a labels file, draw it as a contact sheet, or pseudo-label unlabeled crops.", no_args_is_help=True
)
app.add_typer(labels_app, name="labels")


@labels_app.command("auto")
def labels_auto(
    crops_dir: Path | None = typer.Option(None, "--crops-dir", help=_CROPS_DIR_HELP),
    labels: Path = typer.Option(
        _DEFAULT_LABELS, "--labels", "-l", help="labels.txt whose sidecar (.meta.jsonl) gets the pseudo-labels."
    ),
    min_agree: int = typer.Option(2, "--min-agree", min=1, help="PlateOCR members that must read the same text."),
    min_confidence: float = typer.Option(0.5, "--min-confidence", min=0.0, max=1.0, help="PlateOCR confidence."),
    model: Path | None = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
    line_crop: bool | None = typer.Option(None, "--line-crop/--no-line-crop", help=_LINE_CROP_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Pseudo-label crops that have no human label: PlateOCR reads them, and a format-valid read its
    members agree on goes to <labels>.meta.jsonl (never to labels.txt) for `train --pseudo`. Resumable."""
    from platepilot.labeling.pseudo import PseudoFilter, pseudo_label_crops
    from platepilot.ocr.models import plate_ocr_for
    from platepilot.store.provenance import sidecar_path

    settings = load_config(config)
    reader = plate_ocr_for(model, settings, _line_crop(line_crop, crops_dir, settings))
    rules = PseudoFilter(min_agree, min_confidence)
    result = pseudo_label_crops(crops_dir or settings.output.crops_dir, labels, reader, rules, console=err_console)
    console.print(escape(
        f"{result.read} crops read by plateocr ({', '.join(m.name for m in reader.members)}): {result.kept} "
        f"pseudo-labels (>= {min_agree} members agree, a plate format, confidence >= {min_confidence}) in "
        f"{sidecar_path(labels)}; skipped {result.already_labeled} human-labeled and {result.already_read} "
        f"read before; {result.unreadable} unreadable"
        + (f"; of the reads before, {result.withdrawn} withdrawn and {result.admitted} admitted by this filter"
           if result.withdrawn or result.admitted else "")
    ), highlight=False, soft_wrap=True)  # fmt: skip


@labels_app.command("check")
def labels_check(
    labels: Path = typer.Argument(..., help="labels.txt to check."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
    strict: bool = typer.Option(False, "--strict", help="Exit 1 when anything is flagged."),
    no_images: bool = typer.Option(False, "--no-images", help="Skip opening the images (faster)."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file (gate.holdout_fraction)."),
) -> None:
    """Counts, flagged labels with reasons, character coverage, and a readiness verdict that says what
    training will do with them (held out for the gate, validated on crops or synthetic plates)."""
    import json

    from platepilot.labeling.checks import check_labels, summary_lines

    fraction = load_config(config).gate.holdout_fraction
    report = check_labels(labels, check_images=not no_images, holdout_fraction=fraction)
    if as_json:
        typer.echo(json.dumps(report.to_json(), indent=2))
    else:
        for line in summary_lines(report):
            console.print(escape(line), highlight=False, soft_wrap=True)
    if strict and not report.ok:
        raise typer.Exit(1)


@labels_app.command("sheet")
def labels_sheet(
    labels: Path = typer.Argument(..., help="labels.txt to draw."),
    out: Path = typer.Option(..., "--out", "-o", help="PNG (or JPEG) to write."),
    flagged_only: bool = typer.Option(False, "--flagged-only", help="Draw only flagged crops."),
    limit: int = typer.Option(240, "--limit", min=1, help="At most this many crops (flagged first)."),
) -> None:
    """A contact sheet of crops with their labels; flagged ones framed in red with their reason."""
    from platepilot.labeling.sheet import write_sheet

    shown, flagged = write_sheet(labels, out, flagged_only=flagged_only, limit=limit)
    console.print(escape(f"{out}: {shown} crops, {flagged} flagged"), highlight=False)


@app.command("extract-yolo")
def extract_yolo_command(
    more: list[Path] = typer.Argument(None, help="More dataset folders (so '--datasets A B' works)."),
    datasets: list[Path] = typer.Option([], "--datasets", "-d", help="YOLO dataset folders."),
    out: Path = typer.Option(
        Path("data/ocr_training/extracted_crops"), "--out", "-o", help="Crops go to OUT/<dataset>/<split>/."
    ),
    padding: float = typer.Option(0.1, "--padding", min=0.0, max=1.0, help="Margin per side, x box size."),
    min_width: int = typer.Option(32, "--min-width", min=1, help="Skip boxes narrower than this (pixels)."),
    min_height: int = typer.Option(10, "--min-height", min=1, help="Skip boxes shorter than this (pixels)."),
    classes: list[str] = typer.Option([], "--class", help="Keep only this class (name or id; repeatable)."),
    prelabel: bool = typer.Option(False, "--prelabel", help="Pre-label new crops into --labels' sidecar."),
    labels: Path = typer.Option(_DEFAULT_LABELS, "--labels", help="labels.txt for --prelabel."),
    engine: str = typer.Option("auto", "--engine", "-e", help=_PRELABEL_ENGINE_HELP),
    model: Path | None = typer.Option(None, "--model", "-m", help=_MODEL_HELP),
) -> None:
    """Crop plate boxes out of YOLO datasets (images/ + labels/, any splits) for labeling."""
    from platepilot.labeling.yolo import ExtractOptions, extract_crops

    folders = [*datasets, *(more or [])]
    if not folders:
        raise PlatepilotError("no dataset given: pass --datasets DATASET [DATASET ...]")
    opts = ExtractOptions(padding, min_width, min_height, tuple(classes) or None)
    result = extract_crops(folders, out, opts, console=err_console)
    console.print(escape(
        f"{len(result.written)} crops written to {out} from {result.images} images; "
        f"{result.existing} already there, {result.too_small} boxes too small, "
        f"{result.unreadable} unreadable images"
        + (f", {result.other_class} boxes of other classes" if result.other_class else "")
    ), highlight=False, soft_wrap=True)  # fmt: skip
    if result.bad_lines:
        err_console.print(escape(
            f"warning: {result.bad_lines} label lines skipped, not 'cls cx cy w h' (or a polygon) as fractions 0-1 "
            f"of the image (the first: {result.first_bad_line})"
        ), highlight=False, soft_wrap=True)  # fmt: skip
    if prelabel:
        from platepilot.labeling.prelabel import prelabel_crops
        from platepilot.ocr.models import make_engine

        reader = make_engine(engine, model, load_config(None))
        done = prelabel_crops(out, labels, reader, console=err_console)
        console.print(escape(f"{done.read} crops pre-labeled by {reader.name} for {labels}"), highlight=False)


mlflow_app = typer.Typer(help="The local MLflow server (tracking + model registry).", no_args_is_help=True)
app.add_typer(mlflow_app, name="mlflow")
models_app = typer.Typer(help="Registered reader versions and the champion alias.", no_args_is_help=True)
app.add_typer(models_app, name="models")
_NAME_HELP = "Registered model name (default: the config's mlflow.model_name)."


@mlflow_app.command("up")
def mlflow_up(
    port: int = typer.Option(5000, "--port", min=1, max=65535, help="Port to listen on."),
    data_dir: Path = typer.Option(
        Path("mlflow-data"), "--data-dir", help="SQLite database (mlflow.db) and artifacts/ live here."
    ),
    host: str = typer.Option("127.0.0.1", "--host", help="Interface; 0.0.0.0 serves a fleet (see docs)."),
) -> None:
    """Run a real `mlflow server` (SQLite + local artifacts) in the foreground until Ctrl+C."""
    from platepilot.registry.server import run_foreground

    run_foreground(data_dir, port, host, announce=lambda line: console.print(escape(line), highlight=False))


def _registry_target(config: Path | None, tracking_uri: str | None, model_name: str | None) -> tuple[str, str]:
    """(tracking URI, registered model name): the options when given, else the config's mlflow settings."""
    settings = load_config(config)
    return tracking_uri or settings.mlflow.tracking_uri, model_name or settings.mlflow.model_name


@models_app.command("list")
def models_list(
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_URI_HELP),
    model_name: str | None = typer.Option(None, "--model-name", help=_NAME_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Every registered version: aliases, validation metrics, devices running it; then the alias history."""
    from rich.table import Table

    from platepilot.registry.common import connect
    from platepilot.registry.models import alias_history, list_versions

    uri, name = _registry_target(config, tracking_uri, model_name)
    client = connect(uri)
    table = Table(title=f"{name} at {redact(uri)}")
    for column in ("version", "aliases", "created", "exact", "exact folded", "CER", "devices"):
        table.add_column(column)
    for row in list_versions(client, name):
        m = row.metrics
        table.add_row(
            str(row.version), ", ".join(row.aliases) or "-", row.created.strftime("%Y-%m-%d %H:%M"),
            m.get("exact", "-"), m.get("exact_folded", "-"), m.get("cer", "-"), ", ".join(row.devices) or "-",
        )  # fmt: skip
    console.print(table)
    for change in alias_history(client, name):
        before = f"v{change.from_version}" if change.from_version is not None else "(none)"
        move = f"{change.alias}: {before} -> v{change.to_version}"
        console.print(escape(f"{change.when}  {move}  {change.action} by {change.who}"), highlight=False)


@models_app.command("promote")
def models_promote(
    version: int = typer.Option(..., "--version", min=1, help="The version to make the champion."),
    force: bool = typer.Option(False, "--force", help="Promote even if the gate finds it reads worse."),
    eval_labels: list[Path] = typer.Option(
        [], "--eval-labels", help="One more labels.txt for the gate to read (repeatable; see gate.extra_labels)."
    ),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_URI_HELP),
    model_name: str | None = typer.Option(None, "--model-name", help=_NAME_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Point the `champion` alias at a version, through the gate: it and the champion (or the built-in
    reader) read the site's held-out labels, the golden plates and gate.extra_labels; worse is refused."""
    from platepilot.registry.common import connect
    from platepilot.registry.deploy import promote_gated
    from platepilot.registry.gate import verdict_line

    settings = load_config(config)
    uri, name = _registry_target(config, tracking_uri, model_name)
    client = connect(uri)
    console.print(f"gate: reading v{version}, what runs now, the default reader and PlateOCR with v{version} ...")
    change, record = promote_gated(client, name, version, settings, force=force, extra=eval_labels)
    console.print(escape(verdict_line(record)), highlight=False, soft_wrap=True)
    before = f"v{change.from_version}" if change.from_version is not None else "(none)"
    console.print(escape(f"{name}@{change.alias}: {before} -> v{change.to_version} (by {change.who})"))


@models_app.command("deploy")
def models_deploy(
    source: str = typer.Argument(..., help="A training run folder (models/runs/<run>), an .onnx, or a version."),
    force: bool = typer.Option(False, "--force", help="Deploy even if the gate finds it reads worse."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_URI_HELP),
    model_name: str | None = typer.Option(None, "--model-name", help=_NAME_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Put a model at ocr.model_path on this machine, through the gate against the model deployed here
    (or the built-in reader). A running `platepilot sync` puts the champion back at its next poll."""
    settings = load_config(config)
    if source.isdigit() and not Path(source).exists():
        from platepilot.registry.common import connect
        from platepilot.registry.deploy import deploy_version

        uri, name = _registry_target(config, tracking_uri, model_name)
        _deploy(lambda: deploy_version(connect(uri), name, int(source), settings, force=force), settings)
    else:
        from platepilot.registry.deploy import deploy_model

        _deploy(lambda: deploy_model(Path(source), settings, force=force), settings)


def _deploy(deploy: Callable[[], GateRecord], settings: Settings) -> None:
    """Run `deploy` (a model put at ocr.model_path through the gate), saying what the gate found and which
    reader now runs; PlatepilotError (one line) when the gate refuses it."""
    from platepilot.ocr.models import choose_reader
    from platepilot.registry.gate import verdict_line

    console.print("gate: reading the candidate, what runs now, the default reader and PlateOCR with the candidate ...")
    record = deploy()
    console.print(escape(verdict_line(record)), highlight=False, soft_wrap=True)
    choice = choose_reader(settings.ocr.engine, None, settings)
    console.print(escape(f"deployed to {settings.ocr.model_path}; live reader: {choice.engine} ({choice.reason})"),
                  highlight=False, soft_wrap=True)  # fmt: skip


@models_app.command("rollback")
def models_rollback(
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_URI_HELP),
    model_name: str | None = typer.Option(None, "--model-name", help=_NAME_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Point `champion` back at the version that held it before (from the recorded alias history)."""
    from platepilot.registry.common import connect
    from platepilot.registry.models import rollback

    uri, name = _registry_target(config, tracking_uri, model_name)
    change = rollback(connect(uri), name)
    console.print(escape(f"{name}@{change.alias}: v{change.from_version} -> v{change.to_version} (rollback)"))


@app.command("sync")
def sync_command(
    interval: float = typer.Option(60.0, "--interval", min=1.0, help="Seconds between polls."),
    device_id: str | None = typer.Option(
        None, "--device-id", help="How this device shows in the registry (default: fleet.device_id, else host name)."
    ),
    model_path: Path | None = typer.Option(
        None, "--model-path", help="Where the champion goes (default: the config's ocr.model_path)."
    ),
    once: bool = typer.Option(False, "--once", help="Poll once and exit (0 = deployed or current)."),
    max_backoff: float = typer.Option(900.0, "--max-backoff", min=1.0, help="Longest wait after errors."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help=_URI_HELP),
    model_name: str | None = typer.Option(None, "--model-name", help=_NAME_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Edge sync agent: deploy the registry's champion here, verified, until SIGTERM."""
    import re

    from platepilot.config import DEVICE_ID_PATTERN
    from platepilot.registry.sync import SyncSettings, run_agent

    settings = load_config(config)
    device = device_id or settings.fleet.device()
    if not re.fullmatch(DEVICE_ID_PATTERN, device):
        raise PlatepilotError(f"--device-id {device!r}: use 1-64 letters, digits, '.', '_' or '-'")
    sync = SyncSettings(
        tracking_uri=tracking_uri or settings.mlflow.tracking_uri,
        model_name=model_name or settings.mlflow.model_name,
        model_path=model_path or settings.ocr.model_path, device_id=device, interval=interval,
        max_backoff=max_backoff,
    )  # fmt: skip
    outcome = run_agent(sync, once=once, log=lambda line: console.print(escape(line), soft_wrap=True))
    if outcome is not None:
        if outcome.status in ("current", "no_champion"):  # the others were logged already
            console.print(escape(f"sync: {outcome.message}"), soft_wrap=True)
        if outcome.status not in ("deployed", "current"):
            raise typer.Exit(1)


def _log_to_mlflow(
    opts: TrainOptions, result: TrainResult, register: bool, tracking_uri: str | None, model_name: str | None,
    config: Path | None,
) -> None:  # fmt: skip
    """Log the run (and register it with --register); without --register a failure is one line, not fatal."""
    from platepilot.registry.tracking import log_training_run

    uri, name = _registry_target(config, tracking_uri, model_name)
    try:
        log_training_run(opts, result, uri, name, register, say=lambda line: console.print(escape(line)))
    except PlatepilotError as exc:
        if register:
            raise
        console.print(escape(f"run not logged to MLflow: {exc}"), highlight=False)


@app.command("run")
def run_command(
    source: str | None = typer.Option(
        None, "--source", "-s", help="Video file, image folder, RTSP URL, USB index or demo[:SEED] (default: config)."
    ),
    follow: bool = typer.Option(
        False,
        "--follow",
        help="An image folder: after its photos, keep reading those that arrive (an FTP upload folder), until stopped.",
    ),
    duration: float | None = typer.Option(None, "--duration", "-d", min=0.1, help="Stop after this many seconds."),
    stats: bool = typer.Option(False, "--stats", help="Print per-camera stats every 5 s and at the end."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Run the edge pipeline: cameras -> plates -> tracks -> best crops -> OCR -> one event per vehicle."""
    from platepilot.pipeline.report import event_line
    from platepilot.pipeline.run import run_pilot, settings_for_source
    from platepilot.store.events import PlateEvent

    settings = settings_for_source(load_config(config), source, follow)
    _log_runtime_to_stderr()
    if stats:
        _print_reader(settings)

    def tick(pilot: object) -> None:
        if stats:
            for camera in getattr(pilot, "stats", {}).values():
                err_console.print(escape(camera.line()), highlight=False, soft_wrap=True)

    def show(event: PlateEvent) -> None:  # one line per event, never wrapped (piped output has no width)
        console.print(escape(event_line(event)), highlight=False, soft_wrap=True)

    result = run_pilot(settings, duration, show, tick if stats else None)
    if stats:
        tick(result.pilot)
        _print_reader(settings)
        if result.mqtt is not None:
            err_console.print(escape(result.mqtt.line()), highlight=False, soft_wrap=True)
        if result.alerter is not None:
            err_console.print(escape(result.alerter.line()), highlight=False, soft_wrap=True)
    for output in (result.pilot.crops, result.pilot.events):
        if stats or output.failed:
            err_console.print(escape(output.line()), highlight=False, soft_wrap=True)
    for camera_id, score in result.demo_scores.items():
        console.print(
            f"demo {camera_id}: {score.exact}/{score.vehicles} vehicles read exactly ({100 * score.accuracy:.1f}%), "
            f"{score.false_events} events matched no vehicle",
            highlight=False,
        )
        console.print(
            f"demo {camera_id} states: {score.states_right} right, {score.states_unknown} unknown, "
            f"{score.states_wrong} wrong of the {score.exact} vehicles read",
            highlight=False,
        )
        for truth, nearest in score.missed:
            console.print(f"  missed {truth}: nearest read {nearest or 'none'}", highlight=False)
    failed = [s for s in result.pilot.stats.values() if s.error]
    if failed and len(failed) == len(result.pilot.stats):
        raise typer.Exit(1)  # each camera's error was logged when it failed
    if result.lost_events:
        raise PlatepilotError(f"{result.lost_events} events were stored nowhere (every output failed; see above)")


def _print_reader(settings: Settings) -> None:
    """`reader: <engine> (<why>)` on stderr: which reader `ocr.engine` means on this machine now."""
    from platepilot.ocr.models import choose_reader

    choice = choose_reader(settings.ocr.engine, None, settings)
    err_console.print(escape(f"reader: {choice.engine} ({choice.reason})"), highlight=False, soft_wrap=True)


def _log_runtime_to_stderr() -> None:
    """The runtime's own log lines (model reloads, MQTT connection changes, failing cameras) on stderr."""
    import logging

    runtime = logging.getLogger("platepilot")
    runtime.setLevel(logging.INFO)
    if not runtime.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(RedactingFormatter("%(message)s"))
        runtime.addHandler(handler)


@app.command("reads")
def reads_command(
    since: str | None = typer.Option(None, "--since", help="Only events since: 30m, 2h, 1d or an ISO date/time."),
    plate: str | None = typer.Option(None, "--plate", help="Only events whose text contains this."),
    state: str | None = typer.Option(None, "--state", help="Only events of this state: FL, GA, ... or unknown."),
    device: str | None = typer.Option(None, "--device", help="Only events of this device (a fleet database)."),
    fuzzy: int | None = typer.Option(
        None, "--fuzzy", min=0, max=2, help="With --plate: that plate within N edits, O/0 I/1 B/8 S/5 alike."
    ),
    last: int | None = typer.Option(None, "--last", min=1, help="Only the newest N events (of those matching)."),
    as_csv: bool = typer.Option(False, "--csv", help="Print CSV instead of one line per event."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """List plate events (one per vehicle) from the events database, oldest first."""
    from platepilot.pipeline.report import event_line, events_csv, parse_since
    from platepilot.store.events import existing_database, query_events
    from platepilot.store.search import fuzzy_events

    settings = load_config(config)
    url, start = existing_database(settings.output.events_db_url), parse_since(since) if since else None
    wanted = parse_state(state) if state is not None else None
    if fuzzy is None:
        found = query_events(url, start, plate, device, wanted, last)
    else:
        found = fuzzy_events(url, plate, fuzzy, start, device, wanted, last)
    if as_csv:
        typer.echo(events_csv(found), nl=False)
    else:
        for event in found:
            typer.echo(event_line(event))


@app.command("collect")
def collect_command(
    report: float = typer.Option(60.0, "--report", min=1.0, help="Seconds between two counter lines."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Fleet collector: every device's MQTT events (output.mqtt) into output.events_db_url (PostgreSQL),
    each exactly once, until SIGTERM."""
    from platepilot.fleet.collector import serve

    _log_runtime_to_stderr()
    collector = serve(load_config(config), say=lambda line: console.print(escape(line), highlight=False,
                      soft_wrap=True), report_seconds=report)  # fmt: skip
    if collector.failed:
        raise PlatepilotError("collect stopped on an error (logged above); restart it to go on")


@app.command("prune")
def prune_command(
    dry_run: bool = typer.Option(False, "--dry-run", help="Only say what would be deleted."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Apply output.retention now: delete crops and events older than max_age_days, then the oldest crops
    over max_disk_gb (their events stay, marked), the collector's crops (fleet.collector.crops_dir) as
    well. Crops in gate.labels are kept. `run` and `collect` do this on their own."""
    import time

    from platepilot.store.retention import applies, prune

    settings = load_config(config)
    if not applies(settings.output.retention):
        console.print("nothing to prune: set output.retention.max_age_days or max_disk_gb", highlight=False)
        return
    fleet_crops = settings.fleet.collector.crops_dir
    report = prune(settings.output, settings.gate.labels, time.time(), dry_run, fleet_crops)
    console.print(escape(report.line()), highlight=False, soft_wrap=True)
    for crop, why in report.plan.crops[:5] if dry_run else ():
        console.print(escape(f"  {crop.path} ({why})"), highlight=False, soft_wrap=True)


@app.command("dashboard")
def dashboard_command(
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on; anything but loopback requires the printed token."
    ),
    port: int = typer.Option(8080, "--port", min=0, max=65535, help="Port (0: a free one)."),
    no_browser: bool = typer.Option(False, "--no-browser", help="Only print the URL; do not open a browser."),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Web page of live reads, plate search, vehicles, watchlist editing and camera stats (the `web` extra)."""
    from platepilot.dashboard.server import serve

    serve(load_config(config), host, port, open_browser=not no_browser, say=typer.echo)


@app.command("train")
def train_command(
    labels: Path | None = typer.Option(
        None, "--labels", "-l", help="labels.txt of crops (may be omitted with --synthetic)."
    ),
    output_dir: Path | None = typer.Option(
        None,
        "--output-dir",
        "-o",
        help="Where the model, checkpoints and plots go (default: a new folder under training.runs_dir, "
        "models/runs/<UTC time>/); never the deployed model's folder.",
    ),
    epochs: int = typer.Option(300, "--epochs", min=1, help="Maximum number of epochs."),
    batch_size: int = typer.Option(16, "--batch-size", min=1, help="Crops per optimisation step."),
    val_split: float = typer.Option(
        0.15, "--val-split", min=0.0, max=0.9, help="Fraction of crops (whole tracks) held out."
    ),
    patience: int = typer.Option(
        100, "--patience", min=1, help="Stop after this many epochs without a better validation."
    ),
    lr: float = typer.Option(1e-3, "--lr", min=1e-6, max=1.0, help="Peak learning rate (warm-up, then cosine decay)."),
    synthetic: int = typer.Option(
        0, "--synthetic", min=0, help="Synthetic plates generated on the fly and mixed in per epoch."
    ),
    init_from: Path | None = typer.Option(
        None,
        "--init-from",
        help="Fine-tune from a model (.onnx with its .pt beside it); 'bundled' for the shipped reader.",
    ),
    resume: bool = typer.Option(
        False, "--resume", help="Continue an interrupted run in --output-dir exactly where it stopped."
    ),
    seed: int = typer.Option(
        0, "--seed", min=0, max=SEED_MAX, help="Seed for the split, shuffling and synthetic plates."
    ),
    workers: int = typer.Option(
        0, "--workers", min=0, help="Extra processes generating synthetic plates (0: in the training process)."
    ),
    conv_widths: str | None = typer.Option(
        None,
        "--conv-widths",
        help="The CNN's five block widths, e.g. 16,32,48,64,96 (default: the start model's, or "
        + ",".join(map(str, DEFAULT_ARCH["channels"]))
        + " from scratch). With --init-from, a wider network is grown from the start model, reading as it did.",
    ),
    rnn_hidden: int | None = typer.Option(
        None, "--rnn-hidden", min=8, help=f"BiLSTM units per direction (default: as above, {DEFAULT_ARCH['hidden']})."
    ),
    pseudo: bool = typer.Option(
        False, "--pseudo", help="Also train on the pseudo-labels `platepilot labels auto` wrote beside --labels."
    ),
    pseudo_weight: float = typer.Option(
        0.5, "--pseudo-weight", min=0.0, max=1.0, help="Loss weight of a pseudo-label (a human label weighs 1)."
    ),
    degrade_real: float = typer.Option(
        0.0,
        "--degrade-real",
        min=0.0,
        max=1.0,
        help="Share of the real crops drawn that also get a camera's degradation (fewer pixels, blur, noise, JPEG), "
        "so sharp photos teach reading blurred plates.",
    ),
    motion_blur: float = typer.Option(
        0.0,
        "--motion-blur",
        min=0.0,
        max=1.0,
        help="Share of all crops drawn (real and synthetic) that get a camera's motion blur (3-9 px at the input, "
        "within 30 degrees of horizontal), so the reader learns plates moving across the frame.",
    ),
    designs: list[Path] = typer.Option(
        [],
        "--designs",
        help="Folder of real plate design images with sample serials (e.g. florida_dmv); a share of the synthetic "
        "plates is drawn on them with new serials. Repeatable.",
    ),
    designs_share: float = typer.Option(
        0.2, "--designs-share", min=0.0, max=1.0, help="Share of the synthetic plates drawn on the --designs."
    ),
    register: bool = typer.Option(
        False, "--register", help="Register the model as a new version in the MLflow model registry."
    ),
    tracking_uri: str | None = typer.Option(
        None, "--tracking-uri", help="MLflow tracking URI to log the run to (default: mlflow.tracking_uri)."
    ),
    model_name: str | None = typer.Option(
        None, "--model-name", help="Registered model name (default: the config's mlflow.model_name)."
    ),
    config: Path | None = typer.Option(None, "--config", "-c", help="YAML config file."),
) -> None:
    """Train the CRNN plate reader (CTC) and export it to ONNX with its metadata sidecar, in its own run
    folder. The run is then logged to MLflow (a local store under the run folder when no server answers).
    It goes live only through the gate: `platepilot models deploy <run folder>`, or --register and promote;
    with the guide's `--output-dir models/crnn_florida` (ocr.model_path's folder) that deploy follows the run.
    """
    from platepilot.ocr.models import BUNDLED_MODEL
    from platepilot.training.runs import deploys, run_folder
    from platepilot.training.train import TrainOptions, train

    settings = load_config(config)
    folder = run_folder(output_dir, settings, resume)
    if deploys(output_dir, settings):
        console.print(escape(f"{output_dir} holds the live model: the run trains in {folder} and goes there "
                             "only if the gate finds it reads better"), highlight=False, soft_wrap=True)  # fmt: skip
    if init_from is not None and str(init_from) == "bundled":
        init_from = BUNDLED_MODEL
    shape = _network_shape(conv_widths, rnn_hidden)
    opts = TrainOptions(
        labels=labels, output_dir=folder, epochs=epochs, batch_size=batch_size, val_split=val_split,
        patience=patience, lr=lr, synthetic=synthetic, init_from=init_from, resume=resume, seed=seed, workers=workers,
        holdout_fraction=settings.gate.holdout_fraction, pseudo=pseudo, pseudo_weight=pseudo_weight,
        degrade_real=degrade_real, motion_blur=motion_blur, designs=designs, designs_share=designs_share,
        arch=DEFAULT_ARCH | shape,
        grow=shape if init_from is not None else {},
    )  # fmt: skip
    console.print(escape(f"run folder: {folder}"), highlight=False)
    result = train(opts, console)
    if result.stopped == "interrupted":
        raise typer.Exit(130)
    if result.model_path is None:
        raise PlatepilotError("training produced no model (no epoch completed)")
    _log_to_mlflow(opts, result, register, tracking_uri, model_name, config)
    if deploys(output_dir, settings):
        from platepilot.registry.deploy import deploy_model

        _deploy(lambda: deploy_model(folder, settings), settings)
    else:
        console.print(escape(f"to put it live (through the gate): platepilot models deploy {folder}"), highlight=False)


def _network_shape(conv_widths: str | None, rnn_hidden: int | None) -> dict[str, Any]:
    """The CRNN shape the user asked for (only the parts given), from `--conv-widths` and `--rnn-hidden`."""
    shape: dict[str, Any] = {}
    if conv_widths is not None:
        try:
            widths = [int(w) for w in conv_widths.split(",")]
        except ValueError:
            widths = []
        if len(widths) != len(DEFAULT_ARCH["channels"]) or min(widths) < 1:
            raise PlatepilotError(f"--conv-widths {conv_widths!r}: give five positive integers, e.g. 16,32,48,64,96")
        shape["channels"] = widths
    if rnn_hidden is not None:
        shape["hidden"] = rnn_hidden
    return shape


def main(args: list[str] | None = None, prog_name: str | None = None, command: str | None = None) -> None:
    """Console-script entry: user mistakes become one red line and exit code 1, never a traceback.
    `command` runs that sub-command alone (the guide's scripts: their usage line is theirs)."""
    target = app if command is None else typer.main.get_command(app).commands[command]  # type: ignore[attr-defined]
    try:
        target(args, prog_name=prog_name)
    except PlatepilotError as exc:
        err_console.print(f"[red]error:[/red] {escape(one_line(exc))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except ModuleNotFoundError as exc:  # a command that needs an extra names it, on one line
        missing = missing_module(exc)
        if missing is None:
            raise
        err_console.print(f"[red]error:[/red] {escape(str(missing))}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except OSError as exc:  # a path given that cannot be made, read or written (a file where a folder goes, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        line = f"{where}{exc.strerror or exc}; check the path exists, is the kind it should be, and is writable"
        err_console.print(f"[red]error:[/red] {escape(line)}", highlight=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
    except Exception as exc:  # a database that is locked, full or damaged, a registry that refuses: one line
        from platepilot.registry.common import registry_error

        error = database_error(exc) or registry_error(exc)
        if error is None:
            raise
        err_console.print(f"[red]error:[/red] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(1)


def _guide_script(command: str, script: str) -> Callable[[], None]:
    """The console script named after one of the guide's scripts: `platepilot <command> ARGS`."""

    def entry() -> None:
        main(sys.argv[1:], prog_name=os.path.basename(sys.argv[0]), command=command)

    entry.__doc__ = f"`{script}` = `platepilot {command}`, installed with the package (works from any folder)."
    return entry


train_crnn = _guide_script("train", "train_crnn")
label_crops = _guide_script("label", "label_crops")
prelabel_with_paddleocr = _guide_script("prelabel", "prelabel_with_paddleocr")
extract_crops_from_yolo = _guide_script("extract-yolo", "extract_crops_from_yolo")


if __name__ == "__main__":
    main()
