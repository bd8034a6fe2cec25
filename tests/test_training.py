"""Training: the loss falls, export agrees with torch, resume is exact, collapse is named, bad data is survived."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.errors import PlatepilotError
from platepilot.ocr.spec import ModelCard, ModelSpec, load_card
from platepilot.plates.synth import synth_sample
from platepilot.store.labels import append_labels
from platepilot.training import train as train_module
from platepilot.training.data import group_key, split_by_group
from platepilot.training.export import export_onnx
from platepilot.training.model import build_model
from platepilot.training.train import TrainOptions, train

TINY = {"channels": [8, 8, 16, 16, 24], "hidden": 24}


def _write_crops(folder: Path, count: int, seed: int = 5, names: list[str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        sample = synth_sample(seed, i)
        name = names[i] if names else f"{i:04d}.jpg"
        cv2.imwrite(str(folder / name), sample.image)
        rows.append((str(folder / name), sample.text))
    labels = folder / "labels.txt"
    append_labels(labels, rows)
    return labels


def _quiet() -> Console:
    return Console(file=open("/dev/null", "w"), width=200)


def test_loss_falls_and_export_is_loadable(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    opts = TrainOptions(
        labels=None,
        output_dir=tmp_path / "run",
        epochs=4,
        batch_size=16,
        synthetic=96,
        lr=3e-3,
        arch=TINY,
        workers=1,  # the spawn path: a forked worker would deadlock in OpenCV
    )
    result = train(opts, _quiet())
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < losses[0] * 0.8, losses
    assert result.model_path is not None and result.model_path.is_file()
    card = load_card(result.model_path)
    assert card.spec == ModelSpec()
    assert card.training["export_parity_max_abs"] < 1e-3
    assert (tmp_path / "run" / "training_curves.png").stat().st_size > 1000
    assert (tmp_path / "run" / "val_predictions.png").stat().st_size > 1000


def test_export_parity_on_real_crops(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = build_model(1, 37, 32, TINY)
    crops = [synth_sample(9, i).image for i in range(6)]
    diff = export_onnx(model, ModelCard(spec=ModelSpec(), architecture=TINY), tmp_path / "m.onnx", crops)
    assert diff < 1e-4
    assert load_card(tmp_path / "m.onnx").sha256


def test_resume_is_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    labels = _write_crops(tmp_path / "crops", 24)
    common = dict(labels=labels, epochs=3, batch_size=8, synthetic=16, val_split=0.25, arch=TINY, workers=0, seed=3)
    straight = train(TrainOptions(output_dir=tmp_path / "a", **common), _quiet())  # type: ignore[arg-type]
    real_epoch = train_module._train_epoch

    def ctrl_c_in_epoch_3(*args: object, **kwargs: object) -> float:
        if args[4] == 3:  # (model, loader, optimizer, scheduler, epoch, epochs)
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(train_module, "_train_epoch", ctrl_c_in_epoch_3)
    first = train(TrainOptions(output_dir=tmp_path / "b", **common), _quiet())  # type: ignore[arg-type]
    assert first.stopped == "interrupted" and len(first.history) == 2
    assert first.model_path is not None  # the best so far is exported on Ctrl+C
    monkeypatch.setattr(train_module, "_train_epoch", real_epoch)
    with pytest.raises(PlatepilotError, match="holds a run already"):  # a rerun never overwrites it silently
        train(TrainOptions(output_dir=tmp_path / "b", **common), _quiet())  # type: ignore[arg-type]
    changed = {**common, "batch_size": 4, "epochs": 4}  # resumed with other options: refused, not mixed in
    with pytest.raises(PlatepilotError, match=r"these differ: epochs 3 -> 4; batch_size 8 -> 4"):
        train(TrainOptions(output_dir=tmp_path / "b", resume=True, **changed), _quiet())  # type: ignore[arg-type]
    recipe = {**common, "motion_blur": 0.9, "degrade_real": 0.9}  # the data drawn otherwise: refused too
    with pytest.raises(PlatepilotError, match=r"these differ: degrade_real 0.0 -> 0.9; motion_blur 0.0 -> 0.9"):
        train(TrainOptions(output_dir=tmp_path / "b", resume=True, **recipe), _quiet())  # type: ignore[arg-type]
    resumed = train(TrainOptions(output_dir=tmp_path / "b", resume=True, **common), _quiet())  # type: ignore[arg-type]
    assert [h["loss"] for h in resumed.history] == pytest.approx([h["loss"] for h in straight.history], rel=1e-6)
    a = torch.load(tmp_path / "a" / "last.pt", weights_only=False)["model"]
    b = torch.load(tmp_path / "b" / "last.pt", weights_only=False)["model"]
    assert all(torch.allclose(a[k], b[k]) for k in a)


def test_a_resume_does_not_read_init_from_again_and_a_checkpoint_is_not_weights(tmp_path: Path) -> None:
    """Resuming re-checked --init-from, refused once that model had been replaced meanwhile; --init-from
    a run's last.pt (a checkpoint, not weights) was a KeyError traceback."""
    labels = _write_crops(tmp_path / "crops", 24)
    first = train(TrainOptions(labels, tmp_path / "base", epochs=1, batch_size=8, arch=TINY, workers=0), _quiet())
    assert first.model_path is not None
    with pytest.raises(PlatepilotError, match=r"last\.pt: not CRNN weights \(a run's last\.pt is its checkpoint"):
        train(TrainOptions(labels, tmp_path / "x", epochs=1, init_from=tmp_path / "base" / "last.pt"), _quiet())
    common = dict(labels=labels, epochs=2, batch_size=8, arch=TINY, workers=0, init_from=first.model_path)
    real_epoch = train_module._train_epoch

    def stop_in_epoch_2(*args: object, **kwargs: object) -> float:
        if args[4] == 2:
            raise KeyboardInterrupt
        return real_epoch(*args, **kwargs)  # type: ignore[arg-type]

    train_module._train_epoch = stop_in_epoch_2  # type: ignore[assignment]
    try:
        assert train(TrainOptions(output_dir=tmp_path / "ft", **common), _quiet()).stopped == "interrupted"  # type: ignore[arg-type]
    finally:
        train_module._train_epoch = real_epoch
    first.model_path.with_suffix(".pt").write_bytes(b"replaced meanwhile")  # the init model is gone
    resumed = train(TrainOptions(output_dir=tmp_path / "ft", resume=True, **common), _quiet())  # type: ignore[arg-type]
    assert resumed.stopped == "completed" and len(resumed.history) == 2
    scratch = dict(labels=labels, epochs=2, batch_size=8, workers=0)  # a run from scratch names its network
    train_module._train_epoch = stop_in_epoch_2  # type: ignore[assignment]
    try:
        train(TrainOptions(output_dir=tmp_path / "s", arch=TINY, **scratch), _quiet())  # type: ignore[arg-type]
    finally:
        train_module._train_epoch = real_epoch
    wider = {**TINY, "hidden": 32}  # resumed with another network: refused, as before resumes read best.pt
    with pytest.raises(PlatepilotError, match="these differ: arch"):
        train(TrainOptions(output_dir=tmp_path / "s", arch=wider, resume=True, **scratch), _quiet())  # type: ignore[arg-type]


def test_one_track_of_labels_is_trained_on_not_all_validated(tmp_path: Path) -> None:
    """60 crops of one group went to validation whole: the run 'completed' having trained on nothing."""
    train_idx, val_idx = split_by_group(["track1"] * 60, 0.15, seed=0)
    assert len(train_idx) == 60 and len(val_idx) == 0
    train_idx, val_idx = split_by_group(["a"] * 5 + ["b"] * 5, 0.9, seed=0)
    assert len(train_idx) == 5 and len(val_idx) == 5


def test_blank_collapse_is_detected_and_explained(tmp_path: Path) -> None:
    labels = _write_crops(tmp_path / "crops", 12)
    console = Console(record=True, width=300, file=open("/dev/null", "w"))  # noqa: SIM115
    opts = TrainOptions(
        labels=labels,
        output_dir=tmp_path / "run",
        epochs=7,
        batch_size=4,
        val_split=0.25,
        arch=TINY,
        workers=0,
    )
    result = train(opts, console)
    assert result.collapse_detected
    text = console.export_text()
    assert "blank collapse" in text and "--synthetic" in text and "--init-from" in text


def test_too_few_labels_is_one_clear_error(tmp_path: Path) -> None:
    labels = _write_crops(tmp_path / "crops", 3)
    with pytest.raises(PlatepilotError, match=r"only [0-3] usable labels to train on"):
        train(TrainOptions(labels=labels, output_dir=tmp_path / "run", arch=TINY, workers=0), _quiet())


def test_bad_lines_and_unreadable_images_are_counted_and_skipped(tmp_path: Path) -> None:
    labels = _write_crops(tmp_path / "crops", 16)
    (tmp_path / "crops" / "empty.jpg").write_bytes(b"")
    with labels.open("a") as fh:
        fh.write(f"{tmp_path / 'crops' / 'empty.jpg'}\tABC123\n")
        fh.write(f"{tmp_path / 'crops' / 'missing.jpg'}\tABC124\n")
        fh.write("no tab here\n")
    console = Console(record=True, width=300, file=open("/dev/null", "w"))  # noqa: SIM115
    opts = TrainOptions(labels=labels, output_dir=tmp_path / "run", epochs=1, batch_size=8, arch=TINY, workers=0)
    result = train(opts, console)
    assert "16 usable, 0 skipped (__SKIP__), 2 unreadable images, 1 bad lines" in console.export_text()
    assert result.model_path is not None


@pytest.mark.slow
def test_guide_command_line_verbatim(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _write_crops(Path("data/ocr_training/crops"), 30)
    labels = Path("data/ocr_training/labels.txt")
    Path("data/ocr_training/crops/labels.txt").rename(labels)
    args = [
        "train",
        "--labels",
        "data/ocr_training/labels.txt",
        "--output-dir",
        "models/crnn_florida",
        "--epochs",
        "2",
        "--batch-size",
        "16",
        "--val-split",
        "0.15",
        "--patience",
        "100",
        "--lr",
        "1e-3",
    ]
    # the guide's --output-dir is the live model's folder: the run trains in a folder of its own, and the
    # gate then keeps a 2-epoch model on 30 crops out of it
    refused = CliRunner().invoke(app, args)
    assert refused.exit_code == 1 and "not deployed" in str(refused.exception), refused.output
    assert "holds the live model: the run trains in models/runs/" in refused.output
    assert len(list(Path("models/runs").glob("*/florida_plate_ocr.onnx"))) == 1
    assert not Path("models/crnn_florida/florida_plate_ocr.onnx").exists()
    args[args.index("models/crnn_florida")] = "models/runs/guide"
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "Epoch   2/2  loss=" in result.output
    card = json.loads(Path("models/runs/guide/florida_plate_ocr.json").read_text())
    assert card["spec"]["charset"] == "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@pytest.mark.parametrize(
    ("path", "text", "expected"),
    [
        ("output/crops/2026-11-20/CAM1_track12.jpg", "ABC123", "track:CAM1_12"),
        ("CAM2_track3_b.jpg", "XYZ999", "track:CAM2_3"),
        ("crops/0001_cars026.jpg", "4YTD483", "text:4YTD483"),
    ],
)
def test_group_key(path: str, text: str, expected: str) -> None:
    assert group_key(path, text) == expected


def test_split_keeps_groups_on_one_side() -> None:
    groups = [f"g{i // 3}" for i in range(60)]
    train_idx, val_idx = split_by_group(groups, 0.2, seed=1)
    assert {groups[i] for i in train_idx}.isdisjoint({groups[i] for i in val_idx})
    assert len(train_idx) + len(val_idx) == 60
    assert 9 <= len(val_idx) <= 15
    assert np.array_equal(split_by_group(groups, 0.2, seed=1)[1], val_idx)


def test_an_error_raised_in_a_data_loader_worker_is_one_line() -> None:
    """torch re-raises a worker's error with the worker's whole traceback as its message."""
    from platepilot.errors import one_line

    wrapped = PlatepilotError(
        "Caught PlatepilotError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
        '  File "x.py", line 1, in f\nplatepilot.errors.PlatepilotError: images/zero.jpg: image file is empty\n'
    )
    assert one_line(wrapped) == "images/zero.jpg: image file is empty"
    assert one_line(PlatepilotError("plain")) == "plain"


def test_train_logs_to_the_mlflow_server_its_config_names(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`train -c site.yaml` logged (and would register) to localhost:5000 under the default model name."""
    import platepilot.registry.tracking as tracking

    targets: list[tuple[str, str]] = []
    monkeypatch.setattr(
        tracking, "log_training_run", lambda opts, result, uri, name, *a, **k: targets.append((uri, name))
    )
    config = tmp_path / "site.yaml"
    config.write_text("mlflow:\n  tracking_uri: http://127.0.0.1:9\n  model_name: site-reader\n")
    args = ["train", "-c", str(config), "--synthetic", "16", "--epochs", "1", "--batch-size", "8"]
    done = CliRunner().invoke(app, [*args, "--output-dir", str(tmp_path / "run")])
    assert done.exit_code == 0, done.output
    assert targets == [("http://127.0.0.1:9", "site-reader")]
