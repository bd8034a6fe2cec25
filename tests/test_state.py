"""State identification: names to postal codes, the bundled classifier on rendered plates, non-plates,
the loader's errors, export parity, fusion and the format prior, and the state in events (schema
migration, `reads --state`, MQTT, `eval --states`)."""

from __future__ import annotations

import dataclasses
import json
import shutil
import sqlite3
from collections.abc import Mapping
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
from pipeline_fakes import ScriptedEngine, TruthDetector, pipeline_settings, plate_read
from test_mqtt import Subscriber
from typer.testing import CliRunner

from platepilot.cli import app, main
from platepilot.config import MQTTConfig, StateConfig
from platepilot.errors import PlatepilotError
from platepilot.ocr.state import BUNDLED_STATE_MODEL, StateClassifier, StateGuess, load_state_card, with_state
from platepilot.ocr.state_name import StateNameReader
from platepilot.pipeline.fusion import fuse, fuse_state
from platepilot.pipeline.pilot import Pilot
from platepilot.pipeline.reload import ReaderSlot
from platepilot.plates.designs import Family, sample_design
from platepilot.plates.render import render_plate
from platepilot.plates.state_manifest import read_state_manifest
from platepilot.plates.states import FLORIDA, UNKNOWN, format_regions, site_regions, state_code
from platepilot.sessions import sidecar_path
from platepilot.sources.demo import DemoSource
from platepilot.store.crops import CropStore
from platepilot.store.events import EventStore, PlateEvent, query_events
from platepilot.store.mqtt import MQTTPublisher
from platepilot.store.schema import current_revision, head_revision
from platepilot.track.quality import sharpness
from platepilot.types import PlateRead

FL_FLOOR = 0.90  # FL vs out-of-state on rendered standard plates; the bundled model measures 0.97 (400 plates)


@pytest.mark.parametrize(
    ("name", "code"),
    [("HAWAI", "HI"), ("MISSIPPI", "MS"), ("CNMI", "MP"), ("WASHINGTON DC", "DC"), ("U S VIRGIN ISLANDS", "VI"),
     ("New York", "NY"), ("us-fl", "FL"), ("fl", "FL"), ("West Virginia", "WV"), ("AMERICAN SAMOA", "AS"),
     ("Washington, D.C.", "DC"), ("D.C.", "DC"), ("USVI", "VI"), ("U.S.V.I.", "VI"), ("N. Mariana Islands", "MP")],
)  # fmt: skip
def test_state_codes_from_every_source_spelling(name: str, code: str) -> None:
    assert state_code(name) == code


def test_an_unknown_state_name_is_named() -> None:
    with pytest.raises(ValueError, match="'Atlantis'"):
        state_code("Atlantis")


@pytest.fixture(scope="module")
def classifier() -> StateClassifier:
    return StateClassifier()


@pytest.fixture(scope="module")
def rendered() -> tuple[list[np.ndarray], list[bool]]:
    """Rendered standard and legacy Florida plates and out-of-state ones (a seed training never used),
    and whether each is Florida's. Specialty and paper tags are left out: the bundled model does not
    recognise the generator's random-art specialty plates (docs/states.md)."""
    rng = np.random.default_rng(2024)
    images, florida = [], []
    while len(images) < 160:
        design = sample_design(rng)
        if design.family in (Family.FL_STANDARD, Family.FL_LEGACY, Family.OUT_OF_STATE):
            images.append(render_plate(design, rng).image)
            florida.append(design.family is not Family.OUT_OF_STATE)
    return images, florida


def test_bundled_model_tells_florida_from_other_states_on_rendered_plates(
    classifier: StateClassifier, rendered: tuple[list[np.ndarray], list[bool]]
) -> None:
    images, florida = rendered
    said = [g.top[0][0] == FLORIDA for g in classifier.classify(images)]
    accuracy = np.mean([a == b for a, b in zip(said, florida, strict=True)])
    assert accuracy >= FL_FLOOR, f"FL vs out-of-state accuracy {accuracy:.3f} < {FL_FLOOR}"


def test_bundled_model_card_lists_its_sources_and_metrics() -> None:
    card = load_state_card(BUNDLED_STATE_MODEL)
    assert card.classes[-1] == UNKNOWN and FLORIDA in card.classes and len(card.classes) == 57
    assert card.onnx_sha256 and card.training["sources"] and "valid_test" in card.metrics


def test_a_crop_that_is_not_a_plate_is_unknown(classifier: StateClassifier) -> None:
    rng = np.random.default_rng(5)
    road = np.full((60, 130, 3), 90, np.uint8)
    cv2.line(road, (0, 30), (130, 30), (240, 240, 240), 4)  # a lane marking
    crops = [rng.integers(0, 256, (50, 110, 3), dtype=np.uint8), np.full((40, 90, 3), 128, np.uint8), road,
             np.zeros((0, 0, 3), np.uint8)]  # fmt: skip
    for guess in classifier.classify(crops):
        assert guess.state == UNKNOWN and guess.confidence < classifier.min_confidence


def test_a_soft_crop_gets_no_state_from_the_classifier(
    classifier: StateClassifier, rendered: tuple[list[np.ndarray], list[bool]]
) -> None:
    # as a parking-lot camera's crops: a far plate, small and soft (the classifier learnt sharp photos)
    floor = StateConfig().min_sharpness
    strict = StateClassifier(min_sharpness=floor)
    sharp = rendered[0][:24]
    soft = [cv2.GaussianBlur(cv2.resize(im, None, fx=0.3, fy=0.3), (0, 0), 1.5) for im in sharp]
    assert min(sharpness(im) for im in sharp) >= floor > max(sharpness(im) for im in soft)
    assert strict.classify(sharp) == classifier.classify(sharp)  # sharp crops: as before
    assert any(g.state != UNKNOWN for g in classifier.classify(soft))  # what the floor guards against
    for guess, plain in zip(strict.classify(soft), classifier.classify(soft), strict=True):
        assert (guess.state, guess.confidence, guess.top) == (UNKNOWN, 0.0, plain.top)


def test_a_hazy_crop_is_named_as_its_clear_plate(
    classifier: StateClassifier, rendered: tuple[list[np.ndarray], list[bool]]
) -> None:
    # a quarter of the contrast, as in haze: stretched first, the classifier ranks the states as on the clear
    # plates (0.98 here); fed the flat crops as they are, it ranked 0.86 so
    images = rendered[0]
    hazy = [(im.astype(np.float32) * 0.25 + 96).astype(np.uint8) for im in images]
    clear = classifier.classify(images)
    agree = np.mean([h.top[0][0] == c.top[0][0] for h, c in zip(classifier.classify(hazy), clear, strict=True)])
    assert agree >= 0.95, f"hazy crops ranked as their clear plates {agree:.3f} < 0.95"


@pytest.mark.parametrize("damage", ["missing_sidecar", "garbage_onnx", "wrong_sha", "bad_classes"])
def test_loader_rejects_a_bad_model_with_one_clear_line(tmp_path: Path, damage: str) -> None:
    model = tmp_path / "state.onnx"
    shutil.copy(BUNDLED_STATE_MODEL, model)
    shutil.copy(sidecar_path(BUNDLED_STATE_MODEL), sidecar_path(model))
    card = json.loads(sidecar_path(model).read_text())
    if damage == "missing_sidecar":
        sidecar_path(model).unlink()
    elif damage == "garbage_onnx":
        model.write_bytes(b"not an onnx file")
        card["onnx_sha256"] = ""
    elif damage == "wrong_sha":
        card["onnx_sha256"] = "0" * 64
    else:
        card["classes"] = ["FL", "ZZ", UNKNOWN]
    if sidecar_path(model).exists():
        sidecar_path(model).write_text(json.dumps(card))
    with pytest.raises(PlatepilotError) as caught:
        StateClassifier(model)
    assert model.stem in str(caught.value) and "\n" not in str(caught.value)


def test_eval_states_with_a_bad_model_exits_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = _rendered_manifest(tmp_path, 4)
    with pytest.raises(SystemExit) as stopped:
        main(["eval", "--states", str(manifest), "--model", str(tmp_path / "nope.onnx")])
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "nope.onnx" in err and "Traceback" not in err and len(err.splitlines()) == 1


def _rendered_manifest(folder: Path, count: int) -> Path:
    """A state manifest of rendered plates written as JPEGs: Florida families FL, others by their name."""
    rng = np.random.default_rng(7)
    rows = ["image_relpath\tstate\tsplit"]
    for i in range(count):
        design = sample_design(rng)
        state = design.state
        cv2.imwrite(str(folder / f"p{i}.jpg"), render_plate(design, rng).image)
        rows.append(f"p{i}.jpg\t{state}\t{'test' if i % 2 else 'valid'}")
    manifest = folder / "MANIFEST.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    return manifest


def test_eval_states_json_has_the_issue_keys(tmp_path: Path) -> None:
    manifest = _rendered_manifest(tmp_path, 12)
    done = CliRunner().invoke(app, ["eval", "--states", str(manifest), "--split", "test", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["n"] == 6
    for key in ("top1", "top3", "florida_precision", "florida_recall", "ms_per_plate", "confusions"):
        assert key in result
    assert 0 <= result["top1"] <= result["top3"] <= 1
    # the state said: right only where the best state is right and clears the floor
    assert result["named_right"] <= result["top1"] and result["named_right"] <= 1 - result["unknown_rate"]


def test_florida_scores_are_none_when_there_is_nothing_to_score(tmp_path: Path) -> None:
    """With no Florida photo, and none called Florida, they said 0.0: a claim of failure, not an absence."""
    manifest = _rendered_manifest(tmp_path, 12)
    rows = manifest.read_text().splitlines()
    manifest.write_text("\n".join([rows[0], *[r for r in rows[1:] if "\tFL\t" not in r]]) + "\n")
    done = CliRunner().invoke(app, ["eval", "--states", str(manifest), "--split", "test", "--split", "valid", "--json"])
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert result["florida_n"] == 0 and result["florida_recall"] is None
    table = CliRunner().invoke(app, ["eval", "--states", str(manifest), "--split", "test", "--split", "valid"])
    assert table.exit_code == 0 and "n/a" in table.stdout


class _CountingClassifier(StateClassifier):
    """The bundled classifier, recording the size of each batch it is asked to classify."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[int] = []

    def classify(self, images: list[np.ndarray], read_names: bool = True) -> list[StateGuess]:
        self.calls.append(len(images))
        return super().classify(images, read_names)


def test_eval_states_times_the_photos_after_a_warm_up(tmp_path: Path) -> None:
    """The first inference (sessions, memory arenas, the name reader's first read) was timed with the
    photos: ms_per_plate overstated on a small set."""
    from platepilot.ocr.state_eval import evaluate_states
    from platepilot.plates.state_manifest import read_state_manifest

    photos = read_state_manifest(_rendered_manifest(tmp_path, 6))
    classifier = _CountingClassifier()
    result = evaluate_states(photos, classifier)
    assert classifier.calls == [1, 6] and result.n == 6 and result.ms_per_plate > 0


def test_eval_states_named_right_counts_the_state_a_read_would_carry(tmp_path: Path) -> None:
    # with a floor no state clears, every read says `unknown`: the ranking still scores, the states said do not
    manifest = _rendered_manifest(tmp_path, 12)
    scores = []
    for floor in (0.5, 1.0):
        config = tmp_path / f"floor{floor}.yaml"
        config.write_text(f"state:\n  min_confidence: {floor}\n  read_names: false\n")
        done = CliRunner().invoke(app, ["eval", "--states", str(manifest), "--json", "--config", str(config)])
        assert done.exit_code == 0, done.output
        scores.append(json.loads(done.stdout))
    plain, floored = scores
    assert plain["named_right"] > 0 and floored["top1"] == plain["top1"] > 0
    assert floored["named_right"] == 0 and floored["unknown_rate"] == 1


def test_eval_states_report_shows_every_wrong_state_most_confident_first(tmp_path: Path) -> None:
    manifest = _rendered_manifest(tmp_path, 12)
    rows = manifest.read_text().splitlines()
    rows[2] = rows[2].rsplit("\t", 2)[0] + "\tAS\ttest"  # American Samoa: no rendered design prints it
    manifest.write_text("\n".join(rows) + "\n")
    report = tmp_path / "report"
    done = CliRunner().invoke(app, ["eval", "--states", str(manifest), "--split", "test", "--report", str(report)])
    assert done.exit_code == 0, done.output
    saved = json.loads((report / "report.json").read_text())
    errors = saved["errors"]
    assert round(saved["n"] * (1 - saved["top1"])) == len(errors) >= 1
    assert any(e["path"].endswith("p1.jpg") and e["truth"] == "AS" for e in errors)
    assert all(e["truth"] != e["predicted"] for e in errors)
    assert [e["confidence"] for e in errors] == sorted((e["confidence"] for e in errors), reverse=True)
    sheet = cv2.imread(str(report / "worst_errors.png"))
    assert sheet is not None and sheet.shape[0] >= 64 and sheet.shape[1] >= 192


def test_state_manifest_errors_name_the_line(tmp_path: Path) -> None:
    manifest = tmp_path / "m.tsv"
    manifest.write_text("image_relpath\tstate\nx.jpg\tATLANTIS\n")
    with pytest.raises(PlatepilotError, match=r"m.tsv:2: 'ATLANTIS'"):
        read_state_manifest(manifest)
    manifest.write_text("path\tcolour\n")
    with pytest.raises(PlatepilotError, match="bad header"):
        read_state_manifest(manifest)


def test_export_parity_and_the_exported_model_loads(tmp_path: Path) -> None:
    from platepilot.ocr.state import StateCard
    from platepilot.training.state.export import export_state_model
    from platepilot.training.state.model import StateNet

    card = StateCard(classes=("FL", "GA", UNKNOWN), height=32, width=64)
    path = tmp_path / "s.onnx"
    diff = export_state_model(StateNet(3, (8, 8, 16, 16)), card, path)
    assert diff < 1e-3 and load_state_card(path).training["export_parity_max_abs"] == diff
    probs = StateClassifier(path).probabilities([np.zeros((20, 50, 3), np.uint8)] * 3)
    assert probs.shape == (3, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_a_head_on_the_cut_paddleocr_backbone_merges_into_one_loadable_onnx(tmp_path: Path) -> None:
    import onnx

    from platepilot.ocr.state import StateCard, save_state_card
    from platepilot.training.state.pretrained import (
        BACKBONES,
        FeatureHead,
        cut_backbone,
        merge_head,
        merged_parity,
        rapidocr_model,
    )  # fmt: skip

    spec = BACKBONES["ppocr-det-s32"]
    backbone = cut_backbone(rapidocr_model(spec.file), spec.outputs, 64, 128)
    shapes = [tuple(d.dim_value for d in o.type.tensor_type.shape.dim[1:]) for o in backbone.graph.output]
    assert shapes == [(384, 2, 4), (192, 4, 8)]
    card = StateCard(classes=("FL", "GA", UNKNOWN), height=64, width=128, channel_order="BGR", mean=(0.5,) * 3,
                     std=(0.5,) * 3)  # fmt: skip
    head = FeatureHead(shapes, 3, reduce=8, hidden=16, grid=(2, 4))  # type: ignore[arg-type]
    merged = merge_head(backbone, head, shapes)
    assert merged_parity(merged, backbone, head, card) < 1e-3
    path = tmp_path / "s.onnx"
    onnx.save(merged, str(path))
    save_state_card(path, card)
    probs = StateClassifier(path).probabilities([np.zeros((30, 70, 3), np.uint8)] * 2)
    assert probs.shape == (2, 3) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_train_head_end_to_end_on_rendered_plates(tmp_path: Path) -> None:
    from platepilot.training.state.pretrained import HeadTrainOptions, train_head

    rng = np.random.default_rng(3)
    rows = ["image_relpath\tstate\tsplit"]
    while len(rows) < 17:
        design = sample_design(rng)
        if design.family in (Family.FL_STANDARD, Family.OUT_OF_STATE):
            name = f"{len(rows)}.jpg"
            cv2.imwrite(str(tmp_path / name), render_plate(design, rng).image)
            state = design.state
            rows.append(f"{name}\t{state}\t{'valid' if len(rows) % 4 == 0 else 'train'}")
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text("\n".join(rows) + "\n")
    opts = HeadTrainOptions(data=manifest, output_dir=tmp_path / "run", cache_dir=tmp_path / "cache", height=64,
                            width=128, copies=1, epochs=1, batch_size=8, rendered=0, non_plates_per_copy=8,
                            reduce=8, hidden=16)  # fmt: skip
    result = train_head(opts)
    card = load_state_card(result.model_path)
    assert card.channel_order == "BGR" and (card.height, card.width) == (64, 128)
    assert any("PaddleOCR" in s and "Apache-2.0" in s for s in card.training["sources"])
    assert result.evaluation is not None and result.evaluation["n"] == 4
    assert len(StateClassifier(result.model_path).classify([np.zeros((30, 70, 3), np.uint8)])) == 1
    assert (opts.cache_dir / next(p.name for p in opts.cache_dir.glob("features-*")) / "clean.npz").is_file()


def test_state_train_fine_tunes_the_paddleocr_backbone_end_to_end(tmp_path: Path) -> None:
    import torch
    from onnx2torch import convert

    from platepilot.sessions import rapidocr_model
    from platepilot.training.state.backbones import BACKBONES, cut_backbone
    from platepilot.training.state.train import StateTrainOptions, train_state

    manifest = _rendered_manifest(tmp_path, 12)
    manifest.write_text(manifest.read_text().replace("\tvalid\n", "\ttrain\n"))  # half the rows become train rows
    opts = StateTrainOptions(data=manifest, output_dir=tmp_path / "run", cache_dir=tmp_path / "cache", epochs=1,
                             batch_size=4, height=64, width=128, rendered=0, non_plates_per_epoch=4, workers=0,
                             backbone="ppocr-det", backbone_lr=1e-2)  # fmt: skip
    result = train_state(opts)
    card = load_state_card(result.model_path)
    assert card.channel_order == "BGR" and card.mean == (0.5,) * 3 and (card.height, card.width) == (64, 128)
    assert "PaddleOCR" in card.training["sources"][0] and card.training["export_parity_max_abs"] < 1e-3
    assert result.evaluation is not None and result.evaluation["n"] == 6
    assert len(StateClassifier(result.model_path).classify([np.zeros((30, 70, 3), np.uint8)])) == 1
    spec = BACKBONES["ppocr-det"]
    original = convert(cut_backbone(rapidocr_model(spec.file), spec.outputs, 64, 128)).state_dict()
    tuned = torch.load(result.model_path.with_suffix(".pt"))["model"]
    moved = [k for k, v in original.items() if not torch.equal(v, tuned[f"backbone.{k}"])]
    assert moved, "the backbone was not fine-tuned"
    assert (opts.output_dir / "training_curves.png").stat().st_size > 1000
    assert len(json.loads((opts.output_dir / "valid_test" / "report.json").read_text())["errors"]) == round(
        6 * (1 - result.evaluation["top1"])
    )


def test_an_interrupted_state_train_resumes_where_it_stopped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from platepilot.training.state import train

    manifest = _rendered_manifest(tmp_path, 12)
    manifest.write_text(manifest.read_text().replace("\tvalid\n", "\ttrain\n"))

    def opts(run: str, resume: bool = False) -> train.StateTrainOptions:
        return train.StateTrainOptions(data=manifest, output_dir=tmp_path / run, cache_dir=tmp_path / "cache",
                                       epochs=3, batch_size=4, rendered=0, non_plates_per_epoch=4, workers=0,
                                       resume=resume)  # fmt: skip

    straight = train.train_state(opts("straight")).history
    real_epoch = train._train_epoch

    def stop_at_epoch_3(*args: object) -> tuple[float, float]:
        if args[-2] == 3:
            raise KeyboardInterrupt
        return real_epoch(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(train, "_train_epoch", stop_at_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        train.train_state(opts("stopped"))
    assert not (tmp_path / "stopped" / "plate_state.onnx").exists()
    monkeypatch.setattr(train, "_train_epoch", real_epoch)
    resumed = train.train_state(opts("stopped", resume=True)).history
    assert [h["epoch"] for h in resumed] == [1, 2, 3]
    assert [h["loss"] for h in resumed] == pytest.approx([h["loss"] for h in straight])  # as if never stopped
    assert [h["train_top1"] for h in resumed] == [h["train_top1"] for h in straight]
    with pytest.raises(PlatepilotError, match="epochs 3 -> 6"):
        train.train_state(train.StateTrainOptions(**{**vars(opts("stopped", resume=True)), "epochs": 6}))
    with pytest.raises(PlatepilotError, match="no checkpoint"):
        train.train_state(opts("never", resume=True))
    for changed, why in (({"lr": 0.01}, "lr 0.003 -> 0.01"), ({"height": 96}, "height 64 -> 96"),
                         ({"seed": 1}, "seed 0 -> 1")):  # fmt: skip
        with pytest.raises(PlatepilotError, match=why):  # another recipe, or a network that does not load
            train.train_state(train.StateTrainOptions(**{**vars(opts("stopped", resume=True)), **changed}))
    moved = train.StateTrainOptions(**{**vars(opts("stopped", resume=True)), "cache_dir": tmp_path / "moved"})
    assert [h["epoch"] for h in train.train_state(moved).history] == [1, 2, 3]  # a cache may move


def test_a_student_learns_its_teachers_scores(tmp_path: Path) -> None:
    import torch

    from platepilot.ocr.state import state_input
    from platepilot.training.state.model import StudentStateNet
    from platepilot.training.state.train import distillation_loss

    manifest = _rendered_manifest(tmp_path, 16)
    teacher = StateClassifier()  # the bundled classifier
    crops = [cv2.imread(str(tmp_path / f"p{i}.jpg")) for i in range(16)]
    batch = state_input(crops, teacher.card)
    taught = torch.from_numpy(teacher.logits(batch))
    assert float(distillation_loss(taught, taught)) == pytest.approx(0, abs=1e-5)
    torch.manual_seed(0)
    student = StudentStateNet(len(teacher.card.classes), teacher.card.height, teacher.card.width)
    optimizer = torch.optim.AdamW(student.parameters(), lr=3e-3)
    images = torch.from_numpy(batch)

    def distance() -> float:
        student.eval()
        with torch.no_grad():
            return float(distillation_loss(student(images), taught))

    before = distance()
    for _ in range(80):
        student.train()
        loss = distillation_loss(student(images), taught)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert distance() < 0.5 * before
    # the CLI distils one from a teacher, with its input size and normalisation, in one ONNX file
    out = tmp_path / "run"
    manifest.write_text(manifest.read_text().replace("\tvalid\n", "\ttrain\n"))
    args = ["state", "train", "--data", str(manifest), "--teacher", "bundled", "--output-dir", str(out),
            "--epochs", "1", "--batch-size", "4", "--rendered", "0", "--workers", "0",
            "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    card = load_state_card(out / "plate_state.onnx")
    assert (card.height, card.width, card.channel_order) == (teacher.card.height, teacher.card.width, "BGR")
    assert "distilled from" in card.training["teacher"] and card.training["export_parity_max_abs"] < 1e-3
    assert (out / "plate_state.onnx").stat().st_size < BUNDLED_STATE_MODEL.stat().st_size
    assert len(StateClassifier(out / "plate_state.onnx").classify([np.zeros((30, 70, 3), np.uint8)])) == 1
    done = CliRunner().invoke(app, [*args[:4], "--teacher", str(tmp_path / "nope.onnx"), *args[6:]])
    assert done.exit_code != 0 and "no such teacher model" in str(done.exception)


def test_a_pretrained_student_learns_from_a_bigger_teacher_at_its_own_size(tmp_path: Path) -> None:
    import torch

    from platepilot.ocr.state import state_input
    from platepilot.training.state.backbones import pretrained_state_net
    from platepilot.training.state.train import Teacher

    manifest = _rendered_manifest(tmp_path, 16)
    teacher = Teacher(StateClassifier(), None)  # the bundled classifier, 128 x 224
    crops = [cv2.imread(str(tmp_path / f"p{i}.jpg")) for i in range(16)]
    images = torch.from_numpy(state_input(crops, teacher.card))
    torch.manual_seed(0)
    student, _ = pretrained_state_net("ppocr-det", 32, 64, len(teacher.card.classes))
    optimizer = torch.optim.AdamW(student.parameters(), lr=1e-3)
    losses = []
    for _ in range(12):
        student.train()
        logits, loss = teacher.student_loss(student, images, 1.0, (32, 64))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert logits.shape == (16, len(teacher.card.classes))
    assert losses[-1] < 0.7 * losses[0]
    # the CLI: --teacher with --backbone trains the pretrained network at --height/--width
    manifest.write_text(manifest.read_text().replace("\tvalid\n", "\ttrain\n"))
    out = tmp_path / "run"
    args = ["state", "train", "--data", str(manifest), "--teacher", "bundled", "--backbone", "ppocr-det",
            "--height", "32", "--width", "64", "--output-dir", str(out), "--epochs", "1", "--batch-size", "4",
            "--rendered", "0", "--workers", "0", "--cache-dir", str(tmp_path / "c")]  # fmt: skip
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, done.output
    card = load_state_card(out / "plate_state.onnx")
    assert (card.height, card.width, card.channel_order) == (32, 64, "BGR")
    assert "distilled from" in card.training["teacher"] and "fine-tuned" in card.training["backbone_source"]


def test_state_train_with_an_unknown_backbone_says_so_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = _rendered_manifest(tmp_path, 4)
    with pytest.raises(SystemExit) as stopped:
        main(["state", "train", "--data", str(manifest), "--backbone", "resnet", "--output-dir", str(tmp_path / "r"),
              "--cache-dir", str(tmp_path / "c"), "--rendered", "0"])  # fmt: skip
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "--backbone" in err and "resnet" in err and "Traceback" not in err


def _named(lines: list[str], prior: Mapping[str, float] | None = None) -> str | None:
    from platepilot.ocr.state_name import match_state_name

    named = match_state_name(lines, 85, prior)
    return None if named is None else named[0]


def test_state_names_read_on_a_plate_match_their_state() -> None:
    from platepilot.ocr.state import with_name
    from platepilot.ocr.state_name import match_state_name

    assert match_state_name(["ABC 1234", "FLORIDA", "Sunshine State"], 85) == ("FL", 100.0)
    assert match_state_name(["New Jersey", "CQZL-7689"], 85) == ("NJ", 100.0)
    assert match_state_name(["ABC1234", "XYZ"], 85) is None  # a serial is not a state name
    assert match_state_name(["APRFLORIDA 97", "UQH95A"], 85) == ("FL", 100.0)  # a name inside a longer line
    assert _named(["FL0RIDA"]) == "FL"  # a letter lost
    assert _named(["UITAH"]) == "UT"  # a letter read twice
    assert match_state_name(["19 MCPHERSON", "SOUTH", "DAKOTA"], 85) == ("SD", 100.0)  # over two lines
    assert match_state_name(["1930 PENNA"], 85) == ("PA", 100.0)  # an older plate's abbreviation
    assert match_state_name(["WEST VIRGINIA"], 85) == ("WV", 100.0)  # VIRGINIA is in it too
    assert match_state_name(["WASHINGTON DC"], 85) == ("DC", 100.0)
    assert _named(["GOVT DISTRICT OF COLUMBIA 2024"]) == "DC"  # a name over 16 letters inside a longer line
    guess = with_name(StateGuess(UNKNOWN, 0.3, (("GA", 0.3), ("FL", 0.2), ("AL", 0.1))), ("FL", 95.0))
    assert guess.state == FLORIDA and guess.confidence == 0.95 and [s for s, _ in guess.top] == ["FL", "GA", "AL"]


@pytest.mark.parametrize("line", ["NORTH", "SOUTH", "DAKOTA", "JERSEY", "MOTORCYCLE", "CONTR EQUIP"])
def test_a_fragment_of_a_state_name_names_no_state(line: str) -> None:
    """NORTH was read as North Carolina, and MOTORCYCLE (MOT) as Montana (MONT)."""
    from platepilot.ocr.state_name import match_state_name

    assert match_state_name(["AB 1234", line], 85) is None


@pytest.mark.parametrize(
    ("lines", "prior", "state"),
    [(["ARKANSAS"], {"KS": 0.4}, "AR"), (["VERMONT"], {"MT": 0.5}, "VT"), (["WEST VIRGINIA"], {"VA": 0.6}, "WV"),
     (["WASHINGTON DC"], {"WA": 0.5}, "DC"), (["NEW", "YORK"], {}, "NY"), (["NEW", "JERSEY"], {}, "NJ")],
)  # fmt: skip
def test_a_name_inside_a_longer_one_or_over_two_short_lines_is_read_whole(
    lines: list[str], prior: dict[str, float], state: str
) -> None:
    """The classifier's lean picked KANSAS out of ARKANSAS; NEW (3 letters) was dropped before YORK joined it."""
    assert _named(lines, prior) == state


def test_names_read_equally_well_are_told_apart_by_the_classifier() -> None:
    """A Florida plate from Washington County reads FLORIDA and WASHINGTON: the classifier decides."""
    from platepilot.ocr.state_name import match_state_name

    lines = ["MYFLORIDA.COM", "ABC 1234", "WASHINGTON"]
    assert match_state_name(lines, 85, {"FL": 0.4, "GA": 0.2}) == ("FL", 100.0)
    assert match_state_name(lines, 85, {"WA": 0.3}) == ("WA", 100.0)
    assert _named(["FLORIDA", "WASHINGTON"], {"WA": 0.3, "FL": 0.5}) == "FL"


def test_the_name_reader_reads_rendered_out_of_state_plates() -> None:
    reader = StateNameReader()
    rng = np.random.default_rng(7)
    right = total = 0
    while total < 6:
        design = sample_design(rng)
        if design.family is Family.OUT_OF_STATE:
            named = reader.read(render_plate(design, rng).image)
            right += named is not None and named[0] == design.state
            total += 1
    assert right >= 4, f"{right}/{total} state names read"
    blank = reader.read(np.full((60, 130, 3), 128, np.uint8))
    assert blank is None
    for shape in ((20, 10_000, 3), (10_000, 20, 3), (2, 2, 3), (12, 60, 3)):  # too thin or small for a name
        assert reader.read(rng.integers(0, 256, shape, dtype=np.uint8)) is None


def _read(text: str, state: str, conf: float, candidates: tuple[tuple[str, float], ...] = ()) -> PlateRead:
    return PlateRead(text, 0.9, engine="t", candidates=candidates, state=state, state_confidence=conf)


class CountingReader(StateNameReader):
    """The real name reader, counting the crops it is asked about."""

    asked = 0

    def read(self, image: np.ndarray, prior: Mapping[str, float] | None = None) -> tuple[str, float] | None:
        self.asked += 1
        return super().read(image, prior)


def test_names_are_read_only_where_the_classifier_is_unsure() -> None:
    rng = np.random.default_rng(11)
    crops = [render_plate(sample_design(rng), rng).image for _ in range(6)] + [np.full((50, 110, 3), 128, np.uint8)]
    sure = [g.confidence for g in StateClassifier().classify(crops)]
    for below, expected in ((0.0, 0), (1.0, len(crops)), (0.9, sum(c < 0.9 for c in sure))):
        reader = CountingReader()
        StateClassifier(names=reader, names_below=below).classify(crops)
        assert reader.asked == expected, f"names_below {below}"
    assert 1 <= sum(c < 0.9 for c in sure) < len(crops)  # the grey crop is unsure, some plates are not
    reader = CountingReader()
    StateClassifier(names=reader, names_below=1.0).classify(crops, read_names=False)  # a track already sure
    assert reader.asked == 0


def test_the_pipeline_reads_a_vehicles_state_name_until_one_read_is_sure(tmp_path: Path) -> None:
    from platepilot.pipeline.pilot import _TrackReads
    from platepilot.pipeline.stats import CameraStats
    from platepilot.types import PlateCrop

    names = CountingReader()
    states = StateClassifier(names=names, names_below=0.8)
    rng = np.random.default_rng(3)
    while True:  # an out-of-state plate the classifier is unsure of and whose name reads
        design = sample_design(rng)
        image = render_plate(design, rng).image
        if design.family is Family.OUT_OF_STATE and states.classify([image], read_names=False)[0].confidence < 0.8:
            named = names.read(image)
            if named is not None and named[0] == design.state:
                break
    settings = pipeline_settings(tmp_path)
    store, events = CropStore(settings.output.crops_dir), EventStore(settings.output.events_db_url)
    detectors = {"CAM1": SimpleNamespace(box_margin=(0.0, 0.0))}  # the crop is the plate
    pilot = Pilot(settings, [], detectors, ReaderSlot(ScriptedEngine("ABC1234", [0.7]), "t"), store, events,  # type: ignore[arg-type]
                  states=states)  # fmt: skip
    key, stats, names.asked = ("CAM1", 1), CameraStats("CAM1"), 0
    pilot._tracks[key] = _TrackReads()
    crop = PlateCrop("CAM1", 1, 0, 0.0, image, 0.5, (0.0, 0.0, float(image.shape[1]), float(image.shape[0])))
    for _ in range(3):
        pilot._read(key, crop, stats)
    reads = pilot._tracks[key].reads
    assert len(reads) == 3 and names.asked == 1  # the first read named the state; the others did not ask
    assert reads[0].state == design.state and fuse_state(reads, 0.5)[0] == design.state


class _ShapeRecorder:
    """A state classifier that records the shape of every crop it is given and calls each FL."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def classify(self, images: list[np.ndarray], read_names: bool = True) -> list[StateGuess]:
        self.shapes += [im.shape for im in images]
        return [StateGuess(FLORIDA, 0.9)] * len(images)

    def unsure(self, confidence: float) -> bool:
        return False


def test_the_pipeline_classifies_the_plate_without_the_detectors_margin(tmp_path: Path) -> None:
    """A whole-plate detector's box is the plate grown by its margin (car, bumper, dealer frame): the state
    is told from the plate itself, as the classifier was trained (the grown crop read 18 of UCSD's 244
    California plates as CA, the plate itself 81; docs/states.md)."""
    from platepilot.pipeline.pilot import _TrackReads
    from platepilot.pipeline.stats import CameraStats
    from platepilot.track.quality import cut_crop
    from platepilot.types import PlateCrop

    frame = np.full((240, 320, 3), 60, np.uint8)
    frame[100:140, 100:180] = 255  # the plate: 80 x 40
    margin = (0.12, 0.2)
    box = (100 - 0.12 * 80, 100 - 0.2 * 40, 180 + 0.12 * 80, 140 + 0.2 * 40)
    settings = pipeline_settings(tmp_path)
    store, events, states = (
        CropStore(settings.output.crops_dir),
        EventStore(settings.output.events_db_url),
        _ShapeRecorder(),
    )
    pilot = Pilot(settings, [], {"CAM1": SimpleNamespace(box_margin=margin)},  # type: ignore[dict-item]
                  ReaderSlot(ScriptedEngine("ABC1234", [0.9]), "t"), store, events, states=states)  # type: ignore[arg-type]  # fmt: skip
    pilot._tracks[("CAM1", 1)] = _TrackReads()
    crop = PlateCrop("CAM1", 1, 0, 0.0, cut_crop(frame, box), 0.5, box)
    pilot._read(("CAM1", 1), crop, CameraStats("CAM1"))
    assert crop.image.shape[:2] == (62, 110)  # the grown box and cut_crop's pad
    assert states.shapes == [(40, 80, 3)]
    assert pilot._tracks[("CAM1", 1)].reads[0].state == FLORIDA


def test_state_fusion_over_a_tracks_reads() -> None:
    reads = [_read("ABC123", "FL", 0.9), _read("ABC123", "FL", 0.7), _read("ABC123", "GA", 0.6)]
    assert fuse_state(reads, 0.5) == ("FL", pytest.approx(1.6 / 3))
    assert fuse_state(reads, 0.6)[0] == UNKNOWN  # support 0.53 is under the floor
    assert fuse_state([_read("ABC123", UNKNOWN, 0.2)], 0.5) == (UNKNOWN, 0.2)
    assert fuse_state([_read("ABC123", "FL", 0.9), _read("ABC123", UNKNOWN, 0.2)], 0.5) == ("FL", 0.9)  # no evidence
    assert fuse_state([_read("ABC123", "FL", 0.9), _read("ABC123", "GA", 0.8)], 0.5)[0] == UNKNOWN  # they disagree
    fused = fuse(reads, state_min_confidence=0.5)
    assert fused is not None and (fused.state, fused.text) == ("FL", "ABC123")


def test_florida_formats_win_when_the_state_is_florida() -> None:
    # 1ABC234 fits only an out-of-state format (CA); ABC234 fits Florida's @@@ ###: near-equal candidates.
    read = _read("1ABC234", UNKNOWN, 0.0, (("1ABC234", 0.5), ("ABC234", 0.4)))
    assert with_state(read, StateGuess(FLORIDA, 0.95)).text == "ABC234"
    assert with_state(read, StateGuess("CA", 0.95)).text == "1ABC234"
    assert with_state(read, StateGuess(FLORIDA, 0.95), format_prior=False).text == "1ABC234"
    assert format_regions(FLORIDA) == ("us-fl",) and format_regions(UNKNOWN) is None


def test_a_states_own_formats_fix_characters_in_place_only() -> None:
    # Rhode Island's @@###: the 0 the reader preferred becomes the near-equal O
    read = _read("V0820", UNKNOWN, 0.0, (("V0820", 0.63), ("VO820", 0.35)))
    assert with_state(read, StateGuess("RI", 0.95)).text == "VO820"
    assert with_state(read, StateGuess(UNKNOWN, 0.2)).text == "V0820"
    # Idaho's loose ##### never drops a character the reader saw
    read = _read("164081", UNKNOWN, 0.0, (("164081", 0.40), ("16408", 0.26)))
    assert with_state(read, StateGuess("ID", 0.95)).text == "164081"


def test_a_site_that_names_its_state_reads_unknown_plates_as_its_own() -> None:
    # a blurred California 4 read as L: LVAH764 fits no format; 4VAH764 (ca-#@@@###) is a candidate the
    # reader was unsure of, one character away, at a third of the probability
    read = _read("LVAH764", UNKNOWN, 0.0, (("LVAH764", 0.6), ("4VAH764", 0.2), ("LVAH76", 0.1)))
    assert with_state(read, StateGuess(UNKNOWN, 0.1), site="CA").text == "4VAH764"
    assert with_state(read, StateGuess(UNKNOWN, 0.1)).text == "LVAH764"  # no site, no state: the reader's call
    assert with_state(read, StateGuess(UNKNOWN, 0.1), format_prior=False, site="CA").text == "LVAH764"
    # another state's plate gets no swap into the site's formats: a commercial #@##### stays...
    commercial = _read("5N30048", UNKNOWN, 0.0, (("5N30048", 0.6), ("EN30048", 0.2)))
    assert with_state(commercial, StateGuess("AZ", 0.9), site="CA").text == "5N30048"
    # ...but a text no state issues is no plate anywhere: it takes the common format one character away
    assert with_state(read, StateGuess("AZ", 0.9), site="CA").text == "4VAH764"
    # too unsure a candidate, or two characters away, is not taken
    far = _read("LVAH764", UNKNOWN, 0.0, (("LVAH764", 0.6), ("4VAH764", 0.02)))
    assert with_state(far, StateGuess(UNKNOWN, 0.1), site="CA").text == "LVAH764"
    two = _read("LVAH76A", UNKNOWN, 0.0, (("LVAH76A", 0.6), ("4VAH764", 0.25)))
    assert with_state(two, StateGuess(UNKNOWN, 0.1), site="CA").text == "LVAH76A"
    # a California commercial plate (#@#####) fits the site's own formats: left alone
    commercial = _read("5N30048", UNKNOWN, 0.0, (("5N30048", 0.6), ("EN30048", 0.3)))
    assert with_state(commercial, StateGuess(UNKNOWN, 0.1), site="CA").text == "5N30048"
    assert format_regions(UNKNOWN, "CA") == ("us", "us-ca") and format_regions(UNKNOWN, "FL") == ("us-fl", "us")
    assert site_regions(UNKNOWN, "CA") == site_regions("CA", "CA") == ("us-ca",)
    assert site_regions("AZ", "CA") == site_regions(UNKNOWN, None) == ()


def test_a_read_the_prior_corrects_keeps_a_confidence_the_runtime_keeps() -> None:
    """The corrected read took the raw P(text) of its candidate as its confidence (0.32 for a 7-character
    plate): under ocr_min_confidence, the runtime dropped the very read the prior had fixed."""
    read = _read("WJ14704", UNKNOWN, 0.0, (("WJ14704", 0.655), ("WJI4704", 0.32)))
    read = dataclasses.replace(read, confidence=0.951, char_confidences=(0.95,) * 7)
    fixed = with_state(read, StateGuess(FLORIDA, 0.95), site="FL")
    assert fixed.text == "WJI4704" and fixed.confidence == pytest.approx(0.32 ** (1 / 7))
    assert fixed.confidence >= 0.5 and len(fixed.char_confidences) == 7


def test_a_read_that_fits_its_states_format_is_named_by_it() -> None:
    california = _read("5N30048", UNKNOWN, 0.0, (("5N30048", 0.9),))
    assert with_state(california, StateGuess(UNKNOWN, 0.1), site="CA").format_match == "ca-#@#####"
    texas = _read("ABC1234", UNKNOWN, 0.0, (("ABC1234", 0.9),))
    assert not (with_state(texas, StateGuess("TX", 0.9)).format_match or "").startswith("fl-")


_OLD_SCHEMA = """CREATE TABLE plate_events (id INTEGER PRIMARY KEY AUTOINCREMENT, camera_id VARCHAR(32) NOT NULL,
track_id INTEGER NOT NULL, first_seen FLOAT NOT NULL, last_seen FLOAT NOT NULL, text VARCHAR(16) NOT NULL,
confidence FLOAT NOT NULL, candidates TEXT NOT NULL, crop_path TEXT NOT NULL, engine VARCHAR(32) NOT NULL,
model_version VARCHAR(128) NOT NULL, reads INTEGER NOT NULL, format VARCHAR(64));
CREATE INDEX ix_plate_events_text ON plate_events (text);
INSERT INTO plate_events (camera_id, track_id, first_seen, last_seen, text, confidence, candidates, crop_path,
engine, model_version, reads, format) VALUES ('CAM1', 7, 100.0, 102.0, 'OLD123', 0.8, '[["OLD123", 0.8]]',
'old.jpg', 'crnn', 'v1', 3, 'fl-abc-123');"""


def test_migration_keeps_the_events_of_a_database_from_before_alembic(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(_OLD_SCHEMA)
    url = f"sqlite:///{db}"
    store = EventStore(url)
    store.add(PlateEvent("CAM1", 8, 200.0, 201.0, "NEW456", 0.9, (("NEW456", 0.9),), "n.jpg", "crnn", "v1", 2,
                         state="FL", state_confidence=0.97, source_file="gate/0001.jpg"))  # fmt: skip
    store.close()
    old, new = query_events(url)
    assert (old.text, old.track_id, old.format, old.state, old.state_confidence, old.source_file) == (
        "OLD123", 7, "fl-abc-123", UNKNOWN, 0.0, "",
    )  # fmt: skip
    assert (new.text, new.state, new.state_confidence, new.source_file) == ("NEW456", "FL", 0.97, "gate/0001.jpg")
    with sqlite3.connect(db) as conn:
        columns = {row[1] for row in conn.execute("PRAGMA table_info(plate_events)")}
        assert {"state", "state_confidence", "source_file"} <= columns
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == head_revision()
    engine = EventStore(url).engine  # opening again is a no-op
    with engine.connect() as conn:
        assert current_revision(conn) == head_revision()
    engine.dispose()


def test_reads_filters_by_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "platepilot.yaml").write_text(f"output:\n  events_db_url: sqlite:///{tmp_path}/e.db\n")
    store = EventStore(f"sqlite:///{tmp_path}/e.db")
    for track, (text, state) in enumerate([("FLA111", "FL"), ("GEO222", "GA"), ("UNK333", UNKNOWN)]):
        store.add(PlateEvent("CAM1", track, 1e9 + track, 1e9 + track, text, 0.9, (), "", "crnn", "v1", 1,
                             state=state, state_confidence=0.9))  # fmt: skip
    store.close()
    runner = CliRunner()
    florida = runner.invoke(app, ["reads", "--state", "FL"])
    assert florida.exit_code == 0 and "FLA111" in florida.output and "GEO222" not in florida.output
    assert "UNK333" in runner.invoke(app, ["reads", "--state", "unknown"]).output
    assert "GEO222" in runner.invoke(app, ["reads", "--state", "georgia", "--csv"]).output
    bad = runner.invoke(app, ["reads", "--state", "ZZ"])
    assert bad.exit_code != 0


def test_ocr_command_prints_the_state(tmp_path: Path) -> None:
    crop = tmp_path / "plate.png"
    rng = np.random.default_rng(3)
    cv2.imwrite(str(crop), render_plate(sample_design(rng), rng).image)
    done = CliRunner().invoke(app, ["ocr", "--engine", "crnn", "--json", str(crop)])
    assert done.exit_code == 0, done.output
    row = json.loads(done.stdout)[0]
    assert row["state"] == UNKNOWN or state_code(row["state"]) == row["state"]
    assert 0 <= row["state_confidence"] <= 1


def test_mqtt_payload_carries_the_state(tmp_path: Path, mosquitto: int) -> None:
    subscriber = Subscriber(mosquitto, "pp")
    publisher = MQTTPublisher(MQTTConfig(enabled=True, port=mosquitto, topic="pp"))
    settings = pipeline_settings(tmp_path)
    source = DemoSource("CAM1", seed=0, realtime=False, max_frames=150, clock=lambda: 1_764_000_000.0)
    events = EventStore(settings.output.events_db_url, settings.output.events_jsonl)
    pilot = Pilot(settings, [source], {"CAM1": TruthDetector(source.scene)},
                  ReaderSlot(ScriptedEngine("ABC1234", [0.9]), "test"), CropStore(settings.output.crops_dir), events,
                  publisher.publish, StateClassifier())  # fmt: skip
    pilot.run()
    stored = query_events(settings.output.events_db_url)
    received = [json.loads(p) for p in subscriber.wait_for("pp/events", len(stored))]
    publisher.close()
    subscriber.close()
    assert stored and len(received) == len(stored)
    by_track = {e.track_id: e for e in stored}
    for payload in received:
        event = by_track[payload["track_id"]]
        assert (payload["state"], payload["state_confidence"]) == (event.state, event.state_confidence)
    assert any(e.state_confidence > 0 for e in stored)  # the classifier ran on every read


def test_pipeline_reads_without_the_classifier_say_unknown() -> None:
    fused = fuse([plate_read("ABC123", 0.9)])
    assert fused is not None and (fused.state, fused.state_confidence) == (UNKNOWN, 0.0)


def test_a_16_bit_crop_is_named_not_classified() -> None:
    """A direct caller's 16-bit crop went through the network as garbage; grey crops are converted."""
    crop = render_plate(sample_design(np.random.default_rng(2)), np.random.default_rng(2)).image
    classifier = StateClassifier()
    grey = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY)
    assert classifier.classify([grey])[0].top == classifier.classify([cv2.cvtColor(grey, cv2.COLOR_GRAY2BGR)])[0].top
    with pytest.raises(PlatepilotError, match="image 0: expected a non-empty uint8 array, got uint16"):
        classifier.classify([crop.astype(np.uint16) * 257])
