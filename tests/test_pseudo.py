"""Self-training (issue 14): `labels auto` pseudo-labels, their sidecar records, resume, and `train --pseudo`."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.errors import PlatepilotError
from platepilot.labeling.pseudo import PseudoFilter, pseudo_label_crops
from platepilot.ocr.models import BUNDLED_MODEL
from platepilot.ocr.plate_ocr import PlateOCR, build_plate_ocr
from platepilot.ocr.spec import load_card, to_input
from platepilot.plates.synth import synth_sample
from platepilot.store.labels import append_labels
from platepilot.store.provenance import (
    PSEUDO_ENGINE,
    append_records,
    make_record,
    pseudo_labels,
    read_records,
    sidecar_path,
)
from platepilot.store.splits import is_held_out, split_group
from platepilot.training.data_loading import MixedPlates
from platepilot.training.train import PSEUDO_VAL_MIN, TrainOptions, train, weighted_ctc

TINY = {"channels": [8, 8, 16, 16, 24], "hidden": 24}


@pytest.fixture(scope="module")
def plateocr() -> PlateOCR:
    return build_plate_ocr(("paddle", "crnn"), BUNDLED_MODEL)


def _crops(folder: Path, count: int, start: int = 0) -> dict[str, str]:
    """Clean synthetic plates (both members read most of them alike) -> {file name: text}."""
    folder.mkdir(parents=True, exist_ok=True)
    texts = {}
    for i in range(start, start + count):
        sample = synth_sample(21, i)
        cv2.imwrite(str(folder / f"{i:03d}.jpg"), sample.image)
        texts[f"{i:03d}.jpg"] = sample.text
    return texts


def test_the_filter_needs_agreement_a_format_and_confidence() -> None:
    rules = PseudoFilter(min_agree=2, min_confidence=0.5)
    assert rules.passes("ABC1234", 0.9, ("paddle", "crnn"))
    assert not rules.passes("ABC1234", 0.9, ("paddle",))  # one member alone
    assert not rules.passes("ABC1234", 0.3, ("paddle", "crnn"))
    assert not rules.passes("EXIT", 0.99, ("paddle", "crnn"))


def test_labels_auto_writes_agreed_reads_to_the_sidecar_only_and_resumes(tmp_path: Path, plateocr: PlateOCR) -> None:
    crops = tmp_path / "crops"
    texts = _crops(crops, 8)  # seed 21: some reads agree, some come from one member only
    blank = np.full((60, 200, 3), 128, np.uint8)  # no plate: nothing to agree on
    cv2.imwrite(str(crops / "blank.jpg"), blank)
    (crops / "broken.jpg").write_bytes(b"not a jpeg")
    labels = tmp_path / "labels.txt"
    append_labels(labels, [(str(crops / "000.jpg"), texts["000.jpg"])])  # a human label wins
    before = labels.read_bytes()

    first = pseudo_label_crops(crops, labels, plateocr, batch_size=3)
    assert (first.read, first.already_labeled, first.unreadable) == (8, 1, 1)
    assert labels.read_bytes() == before  # labels.txt stays human-verified
    records = read_records(labels)
    assert len(records) == 8 and {r.engine for r in records} == {PSEUDO_ENGINE}
    by_name = {Path(r.path).name: r for r in records}
    assert not by_name["blank.jpg"].pseudo
    kept = {name: r for name, r in by_name.items() if r.pseudo}
    assert len(kept) == first.kept >= 3  # small, blurred synthetic plates: the members agree on some
    assert all(set(r.agreement) == {"paddle", "crnn"} for r in kept.values())
    lone = [r for r in records if len(r.agreement) == 1]
    assert lone and not any(r.pseudo for r in lone)  # one member's read, however confident, is not enough
    line = json.loads(sidecar_path(labels).read_text().splitlines()[0])
    assert {"agreement", "pseudo", "engine", "confidence", "verified"} <= line.keys() and line["verified"] is False

    _crops(crops, 2, start=8)  # new crops arrive; the rerun reads only those
    again = pseudo_label_crops(crops, labels, plateocr)
    assert (again.read, again.already_read) == (2, 8)
    paths = [r.path for r in read_records(labels)]
    assert len(paths) == len(set(paths)) == 10
    assert set(pseudo_labels(labels)) == {r.path for r in read_records(labels) if r.pseudo}

    # a rerun with another filter judges the earlier reads again, without reading them again
    admitted = set(pseudo_labels(labels))
    strict = pseudo_label_crops(crops, labels, plateocr, PseudoFilter(min_agree=2, min_confidence=1.01))
    assert (strict.read, strict.withdrawn, strict.admitted) == (0, len(admitted), 0) and not pseudo_labels(labels)
    loose = pseudo_label_crops(crops, labels, plateocr)
    assert (loose.read, loose.withdrawn, loose.admitted) == (0, 0, len(admitted))
    assert set(pseudo_labels(labels)) == admitted


def test_weighted_ctc_is_ctc_mean_at_weight_one_and_drops_a_zero_weight_plate() -> None:
    torch.manual_seed(0)
    log_probs = torch.randn(20, 3, 37).log_softmax(2)
    targets, lengths = torch.tensor([1, 2, 3, 4, 5, 6, 7, 8, 9]), torch.tensor([3, 4, 2])
    mean = torch.nn.CTCLoss(zero_infinity=True)(log_probs, targets, torch.full((3,), 20), lengths)
    assert torch.isclose(weighted_ctc(log_probs, targets, lengths, torch.ones(3)), mean)
    without_last = torch.nn.CTCLoss(zero_infinity=True)(
        log_probs[:, :2], targets[:7], torch.full((2,), 20), lengths[:2]
    )
    zero_last = weighted_ctc(log_probs, targets, lengths, torch.tensor([0.5, 0.5, 0.0]))
    assert torch.isclose(zero_last, without_last)


def test_degraded_real_crops_are_blurrier_keep_their_text_and_repeat_per_key() -> None:
    spec = load_card(BUNDLED_MODEL).spec
    images = np.stack([to_input(synth_sample(21, i, camera=False).image, spec) for i in range(24)])
    texts = [synth_sample(21, i, camera=False).text for i in range(24)]
    sharp = MixedPlates(images, texts, spec, synthetic=8, seed=3)
    worn = MixedPlates(images, texts, spec, synthetic=8, seed=3, degrade=1.0)

    def detail(image: np.ndarray) -> float:
        return float(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F).var())

    keys = [(0, i) for i in range(len(texts))]
    assert [worn[k][1] for k in keys] == texts and [worn[k][2] for k in keys] == [1.0] * len(texts)
    assert all(np.array_equal(worn[k][0], worn[k][0]) for k in keys)  # a pure function of (seed, epoch, i)
    assert np.median([detail(worn[k][0]) / detail(sharp[k][0]) for k in keys]) < 0.7
    synthetic = (0, len(sharp) - 1)  # synthetic plates are never degraded twice
    assert np.array_equal(worn[synthetic][0], sharp[synthetic][0])


@pytest.mark.slow
def test_train_pseudo_uses_the_pseudo_labels_and_names_them_in_the_model_card(
    tmp_path: Path, plateocr: PlateOCR
) -> None:
    crops = tmp_path / "crops"
    _crops(crops, 12)
    labels = tmp_path / "labels.txt"
    runner = CliRunner()
    args = ["train", "--labels", str(labels), "--pseudo", "--epochs", "1", "--synthetic", "16"]
    missing = runner.invoke(app, [*args, "--output-dir", str(tmp_path / "none")])
    assert isinstance(missing.exception, PlatepilotError)  # `main` prints it as one line, exit 1
    assert "no pseudo-labels" in str(missing.exception) and "labels auto" in str(missing.exception)
    kept = pseudo_label_crops(crops, labels, plateocr).kept
    options = ["--pseudo-weight", "0.3", "--degrade-real", "0.5", "--motion-blur", "0.4"]
    run = [*args, *options, "--output-dir", str(tmp_path / "run")]
    result = runner.invoke(app, run)
    assert result.exit_code == 0, result.output
    fraction = TrainOptions(labels=labels, output_dir=tmp_path).holdout_fraction
    held = sum(is_held_out(split_group(p, t, True), fraction) for p, t in pseudo_labels(labels).items())
    assert kept == len(pseudo_labels(labels)) and f"{kept - held} pseudo-labels, weight 0.3" in result.output
    training = load_card(tmp_path / "run" / "florida_plate_ocr.onnx").training
    assert training["pseudo"] == kept - held and training["labels"] == 0 and training["pseudo_weight"] == 0.3
    assert training["degrade_real"] == 0.5 and training["motion_blur"] == 0.4
    assert any(str(sidecar_path(labels)) in s and str(crops.resolve()) in s for s in training["sources"])


@pytest.mark.slow
def test_with_few_human_labels_training_validates_on_held_out_pseudo_labels(tmp_path: Path) -> None:
    crops = tmp_path / "crops"
    texts = _crops(crops, PSEUDO_VAL_MIN + 40)
    labels = tmp_path / "labels.txt"
    now = datetime.now(UTC)
    agreed = ("paddle", "crnn")
    records = [make_record(str(crops / n), t, PSEUDO_ENGINE, 0.9, False, now, agreed, True) for n, t in texts.items()]
    append_records(labels, records)
    opts = TrainOptions(labels=labels, output_dir=tmp_path / "run", epochs=1, batch_size=32, pseudo=True, arch=TINY)
    with open(os.devnull, "w") as quiet:
        result = train(opts, Console(file=quiet))
    training = load_card(tmp_path / "run" / "florida_plate_ocr.onnx").training
    assert training["val_source"] == "held-out pseudo-labels" and training["labels"] == 0
    held = sum(is_held_out(split_group(str(crops / n), t, True), opts.holdout_fraction) for n, t in texts.items())
    assert training["val"] + training["pseudo"] + held == len(texts) and 0 < training["val"] < len(texts) // 2
    assert result.history and training["pseudo_weight"] == 0.5


def test_a_crop_is_one_crop_however_its_path_is_spelled(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`labels auto --crops-dir crops` then a labeling session on `--crops-dir /abs/crops` wrote one crop two
    ways: it stayed a pseudo-label after a human labelled it (so a crop held out for the gate was trained
    on), and a rerun from another folder made it two pseudo-labels."""
    monkeypatch.chdir(tmp_path)
    texts = _crops(tmp_path / "crops", 3)
    labels = tmp_path / "data" / "labels.txt"
    now = datetime.now(UTC)
    agreed = ("paddle", "crnn")
    records = [make_record(f"crops/{n}", t, PSEUDO_ENGINE, 0.9, False, now, agreed, True) for n, t in texts.items()]
    records.append(
        make_record(str(tmp_path / "crops" / "001.jpg"), texts["001.jpg"], PSEUDO_ENGINE, 0.9, False, now, agreed, True)
    )
    append_records(labels, records)
    append_labels(labels, [(str(tmp_path / "crops" / "000.jpg"), texts["000.jpg"])])  # a human, absolute path
    assert pseudo_labels(labels) == {
        "crops/002.jpg": texts["002.jpg"],
        str(tmp_path / "crops" / "001.jpg"): texts["001.jpg"],
    }


def test_the_runtimes_whole_plate_crops_are_read_by_their_plate_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from platepilot.cli import _line_crop, app
    from platepilot.config import DetectorConfig, OutputConfig, Settings

    settings = Settings(output=OutputConfig(crops_dir=tmp_path / "crops"))  # default detector: PlateNet
    assert _line_crop(None, None, settings) and _line_crop(None, tmp_path / "crops", settings)
    assert not _line_crop(None, tmp_path / "photos", settings)  # someone else's crops: read as they come
    assert _line_crop(True, tmp_path / "photos", settings) and not _line_crop(False, None, settings)
    serial_lines = settings.model_copy(update={"detector": DetectorConfig(kind="textdet")})
    assert not _line_crop(None, None, serial_lines)
    for command in (["labels", "auto"], ["prelabel"]):
        assert "--line-crop" in CliRunner().invoke(app, [*command, "--help"]).output
