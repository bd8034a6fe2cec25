"""Real-design templates: the sample serial is painted out, the orange stays, new serials match their labels,
and `train --designs` draws synthetic plates on them. The designs are rendered here with SAMPLE serials."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from platepilot.cli import app, main
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.models import BUNDLED_MODEL
from platepilot.ocr.spec import load_card
from platepilot.plates.designs import Family, sample_design
from platepilot.plates.render import render_plate
from platepilot.plates.synth import synth_sample, template_sample
from platepilot.plates.templates import Template, orange_mask, render_template
from platepilot.store.labels import append_labels
from platepilot.training.design_templates import load_templates

COUNT = 12


@pytest.fixture(scope="module")
def designs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 12 designs as a state publishes them: Florida standard plates reading SAM-orange-PLE,
    out-of-state plates reading SAMPL."""
    folder = tmp_path_factory.mktemp("designs")
    index = made = 0
    while made < COUNT:
        rng = np.random.default_rng([3, index])
        index += 1
        design = sample_design(rng)
        if design.family is Family.FL_STANDARD:
            design = dataclasses.replace(design, text="SAMPLE", groups=(3, 3))
        elif design.family is Family.OUT_OF_STATE:
            design = dataclasses.replace(design, text="SAMPL", groups=(5,))
        else:
            continue
        plate = render_plate(design, rng)
        cv2.imwrite(str(folder / f"{made:02d}_{design.family}.png"), cv2.resize(plate.image, (480, 240)))
        made += 1
    return folder


@pytest.fixture(scope="module")
def templates(designs: Path) -> list[Template]:
    return load_templates(sorted(designs.glob("*.png")))


def _original(designs: Path, template: Template) -> np.ndarray:
    image = cv2.imread(str(designs / template.source))
    return cv2.resize(image, template.image.shape[1::-1], interpolation=cv2.INTER_AREA)


def test_most_designs_become_templates_with_the_serial_painted_out(designs: Path, templates: list[Template]) -> None:
    assert len(templates) >= 0.75 * COUNT
    for template in templates:
        before = _original(designs, template).astype(np.float32)
        after = template.image.astype(np.float32)
        ink = np.array(template.ink, np.float32)
        for x1, y1, x2, y2 in template.slots:
            near_before = np.linalg.norm(before[y1:y2, x1:x2] - ink, axis=2) < 40
            near_after = np.linalg.norm(after[y1:y2, x1:x2] - ink, axis=2) < 40
            assert near_before.mean() > 0.1, template.source
            assert near_after.mean() < 0.2 * near_before.mean(), template.source


def test_the_florida_orange_splits_the_serial_and_survives(designs: Path, templates: list[Template]) -> None:
    standard = [t for t in templates if "fl_standard" in t.source]
    assert len(standard) >= 3
    for template in standard:
        assert template.orange and len(template.slots) == 2 and template.counts[1] == 3, template
        kept = orange_mask(template.image).sum() / orange_mask(_original(designs, template)).sum()
        assert kept > 0.8, (template.source, kept)
    assert not any(t.orange for t in templates if "out_of_state" in t.source)


def test_new_serials_read_as_their_labels(templates: list[Template]) -> None:
    rng = np.random.default_rng(0)
    plates = [render_template(templates[i % len(templates)], rng) for i in range(40)]
    assert len({p.text for p in plates}) == 40
    reads = CRNNOCRService(BUNDLED_MODEL).read([p.image for p in plates])
    right = sum(r.text == p.text for r, p in zip(reads, plates, strict=True))
    assert right >= 32, [(p.text, r.text) for r, p in zip(reads, plates, strict=True)]


def test_template_samples_are_deterministic_camera_crops(templates: list[Template]) -> None:
    a, b = template_sample(templates, 7, 3), template_sample(templates, 7, 3)
    assert a.text == b.text and np.array_equal(a.image, b.image)
    assert a.image.shape[1] < 240 and a.text.isalnum()  # through the camera: a crop, not the front-on design


def test_train_draws_synthetic_plates_on_the_designs(designs: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    args = ["train", "--synthetic", "64", "--epochs", "1", "--batch-size", "16", "--output-dir", str(out)]
    args += ["--conv-widths", "8,8,16,16,24", "--rnn-hidden", "24", "--designs", str(designs), "--designs-share", "0.5"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "designs usable" in result.output
    sources = load_card(out / "florida_plate_ocr.onnx").training["sources"]
    assert any("real plate designs" in s and str(designs) in s for s in sources), sources


def test_a_designs_folder_without_images_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    args = ["train", "--synthetic", "64", "--epochs", "1", "--output-dir", str(tmp_path / "run"), "--designs"]
    with pytest.raises(SystemExit) as exited:
        main([*args, str(empty)], prog_name="platepilot")
    assert exited.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {empty}: no design images") and len(err.splitlines()) == 1


def test_designs_without_synthetic_plates_is_one_clear_error(
    designs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = []
    for i in range(12):
        sample = synth_sample(5, i)
        cv2.imwrite(str(tmp_path / f"{i}.jpg"), sample.image)
        rows.append((str(tmp_path / f"{i}.jpg"), sample.text))
    append_labels(tmp_path / "labels.txt", rows)
    args = ["train", "--labels", str(tmp_path / "labels.txt"), "--epochs", "1", "--output-dir", str(tmp_path / "run")]
    args += ["--designs", str(designs)]
    with pytest.raises(SystemExit) as exited:
        main(args, prog_name="platepilot")
    assert exited.value.code == 1
    assert "add --synthetic N" in capsys.readouterr().err
