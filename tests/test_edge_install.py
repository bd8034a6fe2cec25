"""The lean edge install: `platepilot run` works without the extras (torch, torchvision, EasyOCR,
mlflow, onnx, matplotlib), and a command that needs one names it in one line, never a traceback.

The extras are made unimportable in a real process (`sys.modules[name] = None` before anything loads),
as on a machine where `pip install platepilot` put only the core."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXTRAS_MODULES = (
    "torch",
    "torchvision",
    "easyocr",
    "mlflow",
    "onnx",
    "matplotlib",
    "albumentations",
    "fastapi",
    "uvicorn",
)


def _without_extras(args: list[str], cwd: Path, also: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    script = (
        "import sys\n"
        f"for name in {(*EXTRAS_MODULES, *also)!r}:\n    sys.modules[name] = None\n"
        "from platepilot.cli import main\n"
        f"main({args!r})\n"
    )
    return subprocess.run([sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize(
    ("args", "line"),
    [
        (
            ["train", "--labels", "labels.txt", "--epochs", "1"],
            "torch is not installed: pip install 'platepilot[train]'",
        ),
        (["models", "list", "--tracking-uri", "mlruns"], "mlflow is not installed: pip install 'platepilot[mlflow]'"),
        (["label", "--no-browser"], "uvicorn is not installed: pip install 'platepilot[web]'"),
    ],
)
def test_a_command_that_needs_an_extra_names_it(tmp_path: Path, args: list[str], line: str) -> None:
    (tmp_path / "labels.txt").write_text("a.jpg\tABC123\n")
    (tmp_path / "output" / "crops").mkdir(parents=True)
    done = _without_extras(args, tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines() == [f"error: {line}"]


@pytest.mark.slow
def test_run_needs_no_extra(tmp_path: Path) -> None:
    """Nor the registry: the runtime learns the deployed-model layout from `ocr.deployed`."""
    done = _without_extras(["run", "--duration", "3", "--stats"], tmp_path, also=("platepilot.registry",))
    assert done.returncode == 0, done.stderr
    assert "CAM1: " in done.stderr and "Traceback" not in done.stderr
