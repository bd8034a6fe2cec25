"""Where a training run writes: its own folder, never the deployed model's.

Only `platepilot models deploy` and the sync agent put a model at `ocr.model_path`, through the
promotion gate; a run that wrote there would go live before anyone compared it with what runs now.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from platepilot.config import Settings
from platepilot.errors import PlatepilotError


def run_folder(
    output_dir: Path | None, settings: Settings, resume: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Path:  # fmt: skip
    """`output_dir` when it is not the deployed model's folder, else PlatepilotError saying what to pass;
    None: a new `<training.runs_dir>/<UTC timestamp>/` (`--resume` needs the run's folder named)."""
    runs = settings.training.runs_dir
    if output_dir is None:
        if resume:
            raise PlatepilotError(f"--resume continues a run: pass its folder, --output-dir {runs}/<run>")
        return _new_run(runs, now())
    deployed = settings.ocr.model_path.parent
    if output_dir.resolve() == deployed.resolve():
        raise PlatepilotError(
            f"--output-dir {output_dir} is the deployed model's folder (ocr.model_path), and training never "
            f"writes the live model: leave --output-dir out (a new run folder under {runs}/) or pass another "
            "folder, then `platepilot models deploy <run folder>` (or --register and `models promote`)"
        )
    return output_dir


def _new_run(runs: Path, when: datetime) -> Path:
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    folder, n = runs / stamp, 1
    while folder.exists():
        n += 1
        folder = runs / f"{stamp}-{n}"
    return folder
