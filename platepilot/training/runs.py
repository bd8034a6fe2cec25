"""Where a training run writes: its own folder, never the deployed model's.

Only `platepilot models deploy` and the sync agent put a model at `ocr.model_path`, through the
promotion gate; a run that wrote there would go live before anyone compared it with what runs now. The
guide's `--output-dir models/crnn_florida` (that folder) still works: the run trains in a folder of its
own and then goes there through the gate (`deploys`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from platepilot.config import Settings
from platepilot.errors import PlatepilotError

SEED_MAX = 2**31 - 1
"""The largest `--seed` of a training command: torch seeds must fit 64 bits, and trainers derive
per-epoch seeds from it (seed x 10,000 + epoch)."""


def deploys(output_dir: Path | None, settings: Settings) -> bool:
    """Whether `output_dir` is the deployed model's folder (`ocr.model_path`'s): the run is then trained
    in a new run folder and put there through the gate when it is done."""
    return output_dir is not None and output_dir.resolve() == settings.ocr.model_path.parent.resolve()


def run_folder(
    output_dir: Path | None, settings: Settings, resume: bool = False,
    now: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Path:  # fmt: skip
    """`run_output` under `training.runs_dir`, the deployed model's folder (`deploys`) counting as none."""
    return run_output(None if deploys(output_dir, settings) else output_dir, settings.training.runs_dir, resume, now)


def run_output(
    output_dir: Path | None, runs: Path, resume: bool, now: Callable[[], datetime] = lambda: datetime.now(UTC)
) -> Path:
    """`output_dir`, or with none a new run folder `<runs>/<UTC timestamp>/` (`--resume` needs the run's
    folder named): every trainer's --output-dir."""
    if output_dir is not None:
        return output_dir
    if resume:
        raise PlatepilotError(f"--resume continues a run: pass its folder, --output-dir {runs}/<run>")
    return _new_run(runs, now())


def _new_run(runs: Path, when: datetime) -> Path:
    stamp = when.strftime("%Y%m%dT%H%M%SZ")
    folder, n = runs / stamp, 1
    while folder.exists():
        n += 1
        folder = runs / f"{stamp}-{n}"
    return folder
