"""`platepilot blur train`: smeared plates with known lines, a run that learns, exports with parity,
resumes exactly, and bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from platepilot.cli import main
from platepilot.errors import PlatepilotError
from platepilot.ocr.blur_estimate import BlurCard, BlurEstimator, load_blur_card
from platepilot.plates.blur import motion_blur
from platepilot.plates.synth import synth_sample
from platepilot.training.blur import train
from platepilot.training.blur.data import SmearedPlates, plate_pool, smeared


def _plate_folder(folder: Path, count: int) -> Path:
    """`count` sharp rendered plates written as JPEG photos, as a user's folder of crops holds them."""
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        cv2.imwrite(str(folder / f"plate_{i:03d}.jpg"), synth_sample(21, i, camera=False).image)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"not a jpeg")  # unreadable: skipped, never fatal
    return folder


def test_samples_carry_the_smear_they_were_given(tmp_path: Path) -> None:
    pool = plate_pool([_plate_folder(tmp_path / "plates", 40)], rendered=0, seed=0)
    assert len(pool.images) == 40 and len(pool.held) == 2 and not set(pool.held) & set(pool.train)
    card = BlurCard(height=48, width=96, max_length=9)
    rng = np.random.default_rng(3)
    lengths = []
    for _ in range(30):
        view, length, angle = smeared(pool.images[0], rng, card)
        assert view.shape == (48, 96) and view.dtype == np.uint8 and 1 <= length <= 9 and -90 <= angle <= 90
        lengths.append(length)
    assert len(set(lengths)) >= 6
    # The longer the smear, the less the window's detail (its horizontal or vertical gradients)
    sharp = pool.images[0]
    energy = [np.abs(np.diff(motion_blur(sharp, n, 0.0).astype(float), axis=1)).mean() for n in (1, 5, 9)]
    assert energy[0] > energy[1] > energy[2]
    data = SmearedPlates(pool, pool.train, 8, card, seed=4)
    x0, y0 = data[0]
    x1, y1 = data[0]
    assert x0.shape == (1, 48, 96) and y0.shape == (3,) and bool((x0 == x1).all()) and bool((y0 == y1).all())
    assert abs(float(y0[1]) ** 2 + float(y0[2]) ** 2 - 1) < 1e-5  # cos and sin of the doubled angle


def test_blur_train_learns_and_exports_a_model_the_runtime_loads(tmp_path: Path) -> None:
    plates = _plate_folder(tmp_path / "plates", 60)
    run = tmp_path / "run"
    with pytest.raises(SystemExit) as done:
        main(["blur", "train", "--images", str(plates), "--rendered", "20", "--epochs", "3", "--samples-per-epoch",
              "512", "--workers", "0", "--output-dir", str(run), "--tracking-uri", "http://127.0.0.1:9"])  # fmt: skip
    assert done.value.code == 0
    for name in ("plate_blur.onnx", "plate_blur.json", "plate_blur.pt", "history.json", "training_curves.png"):
        assert (run / name).is_file(), name
    card = load_blur_card(run / "plate_blur.onnx")
    assert card.training["export_parity_max_abs"] < 1e-3 and card.training["epochs_run"] == 3
    history = card.metrics["held_out"]
    assert {"length_mae", "angle_median_3px_up"} <= set(history)
    losses = [h["loss"] for h in json.loads((run / "history.json").read_text())]
    assert losses[-1] < losses[0]  # it learns, even in three tiny epochs
    assert (run / "mlruns").is_dir()  # no server answered: logged to the run's local store
    found = BlurEstimator(run / "plate_blur.onnx").estimate([np.full((30, 50), 128, np.uint8)])
    assert len(found) == 1 and 0 <= found[0].length <= card.max_length


def test_an_interrupted_blur_train_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plates = _plate_folder(tmp_path / "plates", 40)

    def opts(run: str, resume: bool = False) -> train.BlurTrainOptions:
        return train.BlurTrainOptions(output_dir=tmp_path / run, images=[plates], rendered=0, epochs=3,
                                      samples_per_epoch=64, batch_size=16, workers=0, resume=resume)  # fmt: skip

    straight = train.train_blur(opts("straight")).history
    real_epoch = train._train_epoch

    def stop_at_epoch_3(*args: object) -> float:
        if args[-2] == 3:
            raise KeyboardInterrupt
        return real_epoch(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(train, "_train_epoch", stop_at_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train.train_blur(opts("stopped"))
    assert not (tmp_path / "stopped" / "plate_blur.onnx").exists()
    monkeypatch.setattr(train, "_train_epoch", real_epoch)
    resumed = train.train_blur(opts("stopped", resume=True)).history
    assert [h["epoch"] for h in resumed] == [1, 2, 3]
    assert [h["loss"] for h in resumed] == pytest.approx([h["loss"] for h in straight])  # as if never stopped
    with pytest.raises(PlatepilotError, match="epochs 3 -> 6"):
        train.train_blur(train.BlurTrainOptions(**{**vars(opts("stopped", resume=True)), "epochs": 6}))
    monkeypatch.chdir(tmp_path)  # the same images under another spelling of their folder
    respelt = train.BlurTrainOptions(**{**vars(opts("stopped", resume=True)), "images": [Path("plates")], "epochs": 4})
    with pytest.raises(PlatepilotError, match="epochs 3 -> 4") as caught:  # only the epochs differ
        train.train_blur(respelt)
    assert "images" not in str(caught.value)
    with pytest.raises(PlatepilotError, match="max_length 9 -> 12"):
        train.train_blur(train.BlurTrainOptions(**{**vars(opts("stopped", resume=True)), "max_length": 12}))
    checkpoint = tmp_path / "stopped" / train.CHECKPOINT  # from before plans were kept: its network still checked
    saved = torch.load(checkpoint, weights_only=False)
    del saved["plan"]
    torch.save(saved, checkpoint)
    narrower = train.BlurTrainOptions(**{**vars(opts("stopped", resume=True)), "widths": (4, 8, 8, 16, 16, 16, 16)})
    with pytest.raises(PlatepilotError, match="its network differs from this run's"):
        train.train_blur(narrower)
    with pytest.raises(PlatepilotError, match="no checkpoint"):
        train.train_blur(opts("never", resume=True))
    with pytest.raises(PlatepilotError, match="holds a run already"):  # a new run never overwrites it
        train.train_blur(opts("stopped"))


def test_blur_train_bad_input_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def error(args: list[str]) -> str:
        with pytest.raises(SystemExit) as stopped:
            main(["blur", "train", "--output-dir", str(tmp_path / "run"), *args])
        assert stopped.value.code == 1
        return capsys.readouterr().err.strip()

    assert error(["--images", str(tmp_path / "none")]) == f"error: --images {tmp_path / 'none'}: no such folder"
    (tmp_path / "empty").mkdir()
    assert "no images" in error(["--images", str(tmp_path / "empty")])
    too_few = "error: too few plate images to train on (one is held out): pass --images DIR or --rendered N"
    assert error(["--rendered", "0"]) == too_few
    assert error(["--rendered", "1"]) == too_few
    for seed in ("-1", str(2**70)):  # crashed in numpy or torch; now Typer refuses them
        with pytest.raises(SystemExit) as usage:
            main(["blur", "train", "--seed", seed, "--output-dir", str(tmp_path / "bad_seed")])
        assert usage.value.code == 2 and "Traceback" not in capsys.readouterr().err
    run = tmp_path / "three"  # the smallest pool trains: one image held out, two trained on
    main_args = ["blur", "train", "--rendered", "3", "--epochs", "1", "--samples-per-epoch", "64", "--workers", "0",
                 "--output-dir", str(run), "--tracking-uri", "http://127.0.0.1:9"]  # fmt: skip
    with pytest.raises(SystemExit) as done:
        main(main_args)
    assert done.value.code == 0 and (run / "plate_blur.onnx").is_file()
    bigger = ["--batch-size", "128", "--output-dir", str(tmp_path / "big")]  # a batch larger than the epoch: one step
    with pytest.raises(SystemExit) as done:
        main([*main_args[:-4], *bigger, *main_args[-2:]])
    assert done.value.code == 0, capsys.readouterr().err
    other = tmp_path / "detector_run"  # another trainer's checkpoint under the blur checkpoint's name
    other.mkdir()
    torch.save({"model": {}, "plan": {}}, other / train.CHECKPOINT)
    assert "not a checkpoint of this run's kind (no optimizer, scheduler" in error(
        ["--resume", "--rendered", "3", "--output-dir", str(other)]
    )
