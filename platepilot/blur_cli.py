"""`platepilot blur ...`: the motion-blur estimator the reader deblurs with (thin)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from platepilot.errors import PlatepilotError
from platepilot.state_cli import _consoles, log_training_run
from platepilot.training.blur import WIDTHS
from platepilot.training.runs import SEED_MAX

blur_app = typer.Typer(
    help="Motion blur: the estimator that tells the reader how a crop is smeared.", no_args_is_help=True
)


@blur_app.command("train")
def blur_train(
    images: list[Path] = typer.Option(
        [], "--images", "-i", help="Folder of sharp plate photos or crops (searched recursively); repeatable."
    ),
    rendered: int = typer.Option(1000, "--rendered", min=0, help="Plates from the generator added to the images."),
    output_dir: Path | None = typer.Option(
        None, "--output-dir", "-o", help="Run folder (default: a new models/blur_runs/<UTC time>/)."
    ),
    epochs: int = typer.Option(12, "--epochs", min=1),
    samples_per_epoch: int = typer.Option(16_000, "--samples-per-epoch", min=64, help="Fresh smears per epoch."),
    batch_size: int = typer.Option(64, "--batch-size", min=2),
    lr: float = typer.Option(3e-3, "--lr", min=1e-6, max=1.0, help="Peak learning rate (one-cycle)."),
    widths: str = typer.Option(
        ",".join(map(str, WIDTHS)), "--widths", help="Channels of BlurNet's seven layers, comma-separated."
    ),
    threads: int = typer.Option(2, "--threads", min=1, max=64, help="Torch threads."),
    workers: int = typer.Option(1, "--workers", min=0, max=16, help="Data-making processes."),
    seed: int = typer.Option(0, "--seed", min=0, max=SEED_MAX),
    source: list[str] = typer.Option([], "--source", help="Name a data source for the model card; repeatable."),
    tracking_uri: str | None = typer.Option(None, "--tracking-uri", help="MLflow tracking URI."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in OUTPUT_DIR after its last epoch."),
) -> None:
    """Train the blur estimator (CPU) and export it to OUTPUT_DIR/plate_blur.onnx with its sidecar.

    No labels needed: sharp plate images are smeared by known lines and the network learns to name the
    line. Use it with `ocr.blur_model_path: OUTPUT_DIR/plate_blur.onnx` in platepilot.yaml (docs/plateocr.md).
    """
    import torch

    from platepilot.training.blur.train import BlurTrainOptions, train_blur
    from platepilot.training.runs import run_output

    console, _ = _consoles()
    torch.set_num_threads(threads)
    opts = BlurTrainOptions(
        output_dir=run_output(output_dir, Path("models/blur_runs"), resume), images=images, rendered=rendered,
        epochs=epochs, samples_per_epoch=samples_per_epoch, batch_size=batch_size, lr=lr, widths=_widths(widths),
        seed=seed, workers=workers, sources=source, resume=resume,
    )  # fmt: skip
    result = train_blur(opts, console)
    log_training_run(console, opts, result, tracking_uri, "plate_blur", "blur")
    held = result.history[-1]
    line = (
        f"model: {result.model_path}  held-out smears of 3 px or more: length off by "
        f"{held['length_mae_3px_up']:.2f} px, angle by {held['angle_median_3px_up']:.1f} degrees "
        f"(median)  ({result.seconds / 60:.1f} min)"
    )
    console.print(escape(line), highlight=False)


def _widths(text: str) -> tuple[int, ...]:
    """`--widths 8,16,...` -> channels; PlatepilotError unless seven positive integers."""
    try:
        widths = tuple(int(part) for part in text.split(","))
    except ValueError:
        widths = ()
    if len(widths) != len(WIDTHS) or min(widths) < 1:
        raise PlatepilotError(f"--widths {text}: give {len(WIDTHS)} positive integers, comma-separated")
    return widths
