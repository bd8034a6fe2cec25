"""Issue 15 without a registry: training never writes the live model, a checkpoint belongs to its ONNX,
the held-out split, few-label validation that `labels check` predicts, `auto` by measured result, and
the guide's console scripts from a folder outside the checkout."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import cv2
import pytest
from rich.console import Console

from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.labeling.checks import check_labels
from platepilot.ocr.cascade import CascadeOCR
from platepilot.ocr.gate_record import GateRecord, ReaderScores, SetScore, read_gate_record, write_gate_record
from platepilot.ocr.models import BUNDLED_MODEL, choose_reader, make_engine
from platepilot.ocr.plate_ocr import CRNNMember
from platepilot.ocr.spec import load_card
from platepilot.pipeline.reload import model_version
from platepilot.plates.synth import synth_sample
from platepilot.store.labels import append_labels, latest_labels
from platepilot.store.splits import MIN_VALIDATION_LABELS, held_out_labels, validation_plan
from platepilot.training.checkpoints import load_saved
from platepilot.training.runs import deploys, run_folder
from platepilot.training.train import TrainOptions, init_weights_file, train

TINY = {"channels": [8, 8, 16, 16, 16], "hidden": 16}
BIN = Path(sys.executable).parent


def _crops(folder: Path, count: int, seed: int = 3) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(count):
        sample = synth_sample(seed, i)
        cv2.imwrite(str(folder / f"CAM1_track{i}.jpg"), sample.image)
        rows.append((f"CAM1_track{i}.jpg", sample.text))
    append_labels(folder / "labels.txt", rows)
    return folder / "labels.txt"


def _quiet() -> Console:
    return Console(record=True, width=300, file=open("/dev/null", "w"))


def _tiny_run(out: Path, seed: int = 0) -> Path:
    opts = TrainOptions(labels=None, output_dir=out, epochs=1, batch_size=16, synthetic=32, arch=TINY, seed=seed)
    result = train(opts, _quiet())
    assert result.model_path is not None
    return result.model_path


def test_run_folder_defaults_to_a_new_run_and_never_is_the_deployed_folder(tmp_path: Path) -> None:
    settings = Settings.model_validate({"ocr": {"model_path": str(tmp_path / "live" / "m.onnx")},
                                        "training": {"runs_dir": str(tmp_path / "runs")}})  # fmt: skip
    when = datetime(2026, 4, 8, 12, 0, 0, tzinfo=UTC)
    assert run_folder(None, settings, now=lambda: when) == tmp_path / "runs" / "20260408T120000Z"
    (tmp_path / "runs" / "20260408T120000Z").mkdir(parents=True)
    assert run_folder(None, settings, now=lambda: when).name == "20260408T120000Z-2"
    assert run_folder(tmp_path / "mine", settings) == tmp_path / "mine" and not deploys(tmp_path / "mine", settings)
    live = tmp_path / "live" / "."  # the guide's --output-dir models/crnn_florida: a run folder, then the gate
    assert deploys(live, settings) and run_folder(live, settings, now=lambda: when).name == "20260408T120000Z-2"
    for output_dir in (None, live):
        with pytest.raises(PlatepilotError, match="--resume continues a run"):
            run_folder(output_dir, settings, resume=True)


def test_checkpoint_is_tied_to_its_onnx(tmp_path: Path, tiny_model: Path) -> None:
    first, second = _tiny_run(tmp_path / "a"), _tiny_run(tmp_path / "b", seed=1)
    assert load_card(first).weights_sha256 and init_weights_file(first) == first.with_suffix(".pt")
    assert init_weights_file(BUNDLED_MODEL) == BUNDLED_MODEL.with_suffix(".pt")
    second.with_suffix(".pt").replace(first.with_suffix(".pt"))  # a .pt left over from another run
    with pytest.raises(PlatepilotError, match=r"florida_plate_ocr\.pt does not belong to florida_plate_ocr\.onnx"):
        init_weights_file(first)
    stray = tmp_path / "old" / tiny_model.name  # an ONNX whose sidecar records no checkpoint at all
    stray.parent.mkdir()
    for suffix in (".onnx", ".json"):
        stray.with_suffix(suffix).write_bytes(tiny_model.with_suffix(suffix).read_bytes())
    stray.with_suffix(".pt").write_bytes(first.with_suffix(".pt").read_bytes())
    with pytest.raises(PlatepilotError, match="records no checkpoint sha256"):
        init_weights_file(stray)
    stray.with_suffix(".onnx").unlink()  # the model named is not there: say that, not what is missing beside it
    with pytest.raises(PlatepilotError, match="no such model"):
        init_weights_file(stray)


def test_a_corrupt_checkpoint_is_one_line(tmp_path: Path) -> None:
    first = _tiny_run(tmp_path / "a")
    whole = first.with_suffix(".pt").read_bytes()
    for broken in (whole[: len(whole) // 2], b"not a checkpoint at all"):  # cut short by a copy; another file
        (tmp_path / "a" / "last.pt").write_bytes(broken)
        with pytest.raises(PlatepilotError, match=r"last\.pt: not a readable checkpoint"):
            load_saved(tmp_path / "a" / "last.pt")
    opts = TrainOptions(labels=None, output_dir=tmp_path / "a", epochs=2, batch_size=16, synthetic=32, arch=TINY,
                        resume=True)  # fmt: skip
    with pytest.raises(PlatepilotError, match="not a readable checkpoint"):
        train(opts, _quiet())


def test_held_out_split_is_stable_and_never_trained_on(tmp_path: Path) -> None:
    labels = _crops(tmp_path / "crops", 40)
    held = held_out_labels(latest_labels(labels), 0.15)
    assert 0 < len(held) < 40 and held == held_out_labels(latest_labels(labels), 0.15)
    console = _quiet()
    opts = TrainOptions(labels=labels, output_dir=tmp_path / "run", epochs=1, batch_size=16, arch=TINY)
    result = train(opts, console)
    text = console.export_text()
    assert f"held out {len(held)} crops for the promotion gate" in text
    trainable = 40 - len(held)
    assert f"only {trainable} trainable labels (fewer than {MIN_VALIDATION_LABELS})" in text
    assert f"train on {trainable} labelled" in text and "validate on 512 synthetic plates" in text
    assert result.model_path is not None and load_card(result.model_path).training["train"] == trainable
    report = check_labels(labels, check_images=False)
    assert report.readiness.held_out == len(held)
    assert report.readiness.training == validation_plan(trainable, 0.15).line()


@pytest.mark.parametrize(
    ("trainable", "source", "val"), [(14, "synthetic", 0), (49, "synthetic", 0), (200, "labels", 30)]
)
def test_validation_plan(trainable: int, source: str, val: int) -> None:
    plan = validation_plan(trainable, 0.15)
    assert (plan.source, plan.val_crops) == (source, val)


def _scores(reader: str, exact: float) -> ReaderScores:
    return ReaderScores(reader, (SetScore("golden", 32, exact, 1 - exact),))


@pytest.mark.parametrize(
    ("crnn", "plateocr", "engine"), [(0.5, 0.9, "plateocr"), (0.95, 0.9, "crnn"), (0.9, 0.9, "plateocr")]
)
def test_auto_is_the_best_measured_reader(tmp_path: Path, tiny_model: Path, crnn: float, plateocr: float,
                                          engine: str) -> None:  # fmt: skip
    deployed = tmp_path / "live" / tiny_model.name
    settings = Settings.model_validate({"ocr": {"model_path": str(deployed)}})
    assert choose_reader("auto", None, settings).engine == "cascade"  # nothing deployed: the bundled CRNN first
    deployed.parent.mkdir()
    for suffix in (".onnx", ".json"):
        deployed.with_suffix(suffix).write_bytes(tiny_model.with_suffix(suffix).read_bytes())
    choice = choose_reader("auto", None, settings)
    assert choice.engine == "plateocr" and "no gate result" in choice.reason  # a file alone proves nothing
    record = GateRecord(_scores("v1", crnn), _scores("plateocr", plateocr), _scores("plateocr", plateocr),
                        "accepted", load_card(deployed).sha256)  # fmt: skip
    write_gate_record(deployed, record)
    choice = choose_reader("auto", None, settings)
    assert choice.engine == engine and f"{crnn:.1%}" in choice.reason
    if engine == "plateocr":
        assert "deployed CRNN as its crnn member" in choice.reason
    write_gate_record(deployed, GateRecord(record.candidate, record.incumbent, record.default, "accepted", "0" * 64))
    assert choose_reader("auto", None, settings).engine == "plateocr"  # a record of another model is ignored


def test_a_deployed_crnn_with_a_broken_sidecar_leaves_plateocr_with_the_bundled_one(
    tmp_path: Path, tiny_model: Path
) -> None:
    """`config show` said PlateOCR would read, but `run` and `ocr` then refused the broken sidecar: PlateOCR
    was built with the deployed CRNN as its member."""
    deployed = tmp_path / "live" / tiny_model.name
    deployed.parent.mkdir()
    deployed.write_bytes(tiny_model.read_bytes())
    deployed.with_suffix(".json").write_text("{not json")
    settings = Settings.model_validate({"ocr": {"model_path": str(deployed)}})
    choice = choose_reader("auto", None, settings)
    assert choice.engine == "plateocr" and "unusable" in choice.reason and choice.member == BUNDLED_MODEL
    reader = make_engine("auto", None, settings)
    assert reader.read([synth_sample(0, 0).image])[0].engine
    assert model_version(reader) == f"plateocr sha256:{load_card(BUNDLED_MODEL).sha256[:12]}"


def test_a_deployed_crnn_cut_short_leaves_plateocr_with_the_bundled_one(tmp_path: Path, tiny_model: Path) -> None:
    """The runtime did not start: `auto` trusted the sidecar without checking the file's sha256."""
    deployed = tmp_path / "live" / tiny_model.name
    deployed.parent.mkdir()
    deployed.write_bytes(tiny_model.read_bytes()[:-100])  # a power cut mid-copy
    deployed.with_suffix(".json").write_bytes(tiny_model.with_suffix(".json").read_bytes())
    settings = Settings.model_validate({"ocr": {"model_path": str(deployed)}})
    choice = choose_reader("auto", None, settings)
    assert choice.engine == "plateocr" and "sha256" in choice.reason and choice.member == BUNDLED_MODEL
    assert make_engine("auto", None, settings).read([synth_sample(0, 0).image])[0].engine


@pytest.mark.parametrize(("member", "joins"), [(0.9, True), (0.95, True), (0.85, False)])
def test_a_losing_crnn_joins_plateocr_only_where_it_helps(tmp_path: Path, tiny_model: Path, member: float,
                                                          joins: bool) -> None:  # fmt: skip
    deployed = tmp_path / "live" / tiny_model.name
    deployed.parent.mkdir()
    for suffix in (".onnx", ".json"):
        deployed.with_suffix(suffix).write_bytes(tiny_model.with_suffix(suffix).read_bytes())
    settings = Settings.model_validate({"ocr": {"model_path": str(deployed)}})
    record = GateRecord(_scores("v1", 0.5), _scores("plateocr", 0.9), _scores("plateocr", 0.9), "forced",
                        load_card(deployed).sha256, _scores("plateocr with v1", member))  # fmt: skip
    write_gate_record(deployed, record)
    assert read_gate_record(deployed, record.sha256) == record  # the member's numbers survive the file
    choice = choose_reader("auto", None, settings)
    assert choice.engine == ("plateocr" if joins else "cascade") and f"{member:.1%}" in choice.reason
    assert (choice.member is None) is joins
    if not joins:  # the default reader, as if nothing were deployed
        assert choice.member == BUNDLED_MODEL and "bundled CRNN as its crnn member" in choice.reason


@pytest.mark.parametrize(("cascade", "first"), [(0.9, True), (0.92, True), (0.88, False), (None, False)])
def test_a_crnn_that_helps_plateocr_reads_first_where_its_cascade_read_as_well(
    tmp_path: Path, tiny_model: Path, cascade: float | None, first: bool
) -> None:
    deployed = tmp_path / "live" / tiny_model.name
    deployed.parent.mkdir()
    for suffix in (".onnx", ".json"):
        deployed.with_suffix(suffix).write_bytes(tiny_model.with_suffix(suffix).read_bytes())
    settings = Settings.model_validate({"ocr": {"model_path": str(deployed), "cascade_sure": 0.99}})
    measured = None if cascade is None else _scores("cascade of v1", cascade)
    record = GateRecord(_scores("v1", 0.5), _scores("plateocr", 0.9), _scores("plateocr", 0.9), "accepted",
                        load_card(deployed).sha256, _scores("plateocr with v1", 0.9), measured)  # fmt: skip
    write_gate_record(deployed, record)
    assert read_gate_record(deployed, record.sha256) == record  # the cascade's numbers survive the file
    choice = choose_reader("auto", None, settings)
    assert choice.engine == ("cascade" if first else "plateocr") and choice.member is None
    if first:  # the deployed CRNN reads first and is PlateOCR's member: nothing bundled is read
        assert "the deployed CRNN, and PlateOCR with the deployed CRNN as its crnn member" in choice.reason
        engine = make_engine("auto", None, settings)
        assert isinstance(engine, CascadeOCR) and engine.sure == 0.99
        assert engine.first.model_path == deployed  # type: ignore[attr-defined]
        assert model_version(engine) == f"cascade sha256:{load_card(deployed).sha256[:12]}"  # events say which
        assert [m._service.model_path for m in engine.then.members if isinstance(m, CRNNMember)] == [deployed]  # type: ignore[attr-defined]


def _script(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / name), *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_console_scripts_work_outside_the_checkout(tmp_path: Path) -> None:
    scripts = {"train_crnn": "--output-dir", "label_crops": "--crops-dir", "prelabel_with_paddleocr": "--crops-dir",
               "extract_crops_from_yolo": "--datasets"}  # fmt: skip
    for name, flag in scripts.items():
        done = _script(name, "--help", cwd=tmp_path)
        assert done.returncode == 0 and flag in done.stdout, (name, done.stderr)
        assert f"Usage: {name} [OPTIONS]" in done.stdout  # was `{name} train [OPTIONS]`, which fails as shown
    _crops(tmp_path / "output" / "crops", 3)
    done = _script("prelabel_with_paddleocr", "--crops-dir", "output/crops", "--output", "labels.txt",
                   "--engine", "crnn", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0 and "3 crops pre-labeled by crnn" in done.stdout, done.stderr
    args = ["--labels", "output/crops/labels.txt", "--output-dir", "models/crnn_florida", "--epochs", "1"]
    done = _script("train_crnn", *args, cwd=tmp_path)
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "only 3 usable labels" in done.stderr
    assert not (tmp_path / "models").exists()  # no run folder left behind, and nothing live touched
    done = _script("extract_crops_from_yolo", cwd=tmp_path)
    assert (
        done.returncode == 1 and done.stderr.strip() == "error: no dataset given: pass --datasets DATASET [DATASET ...]"
    )


def test_a_tracking_uri_mlflow_does_not_take_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A folder path (MLflow's retired file store) ended in an MlflowException traceback."""
    from platepilot.cli import main

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main(["models", "list", "--tracking-uri", "mlruns"])
    err = capsys.readouterr().err
    assert stopped.value.code == 1 and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert "tracking URI 'mlruns' is not one MLflow takes" in err


def test_cascade_and_plateocr_follow_a_replaced_model(tmp_path: Path, tiny_model: Path) -> None:
    """Only `crnn` and `auto` were reloaded: a device reading with `cascade` kept the model sync replaced."""
    from platepilot.pipeline.run import HOT_RELOAD_ENGINES, reloaded_reader

    deployed = tmp_path / "live" / tiny_model.name
    deployed.parent.mkdir()
    for suffix in (".onnx", ".json"):
        deployed.with_suffix(suffix).write_bytes(tiny_model.with_suffix(suffix).read_bytes())
    sha = load_card(deployed).sha256[:12]
    for engine in ("cascade", "plateocr"):
        settings = Settings.model_validate({"ocr": {"engine": engine, "model_path": str(deployed)}})
        assert engine in HOT_RELOAD_ENGINES
        assert model_version(reloaded_reader(settings, deployed)) == f"{engine} sha256:{sha}"


def test_a_gate_without_the_sites_labels_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from platepilot.registry.gate import gate_sets

    settings = Settings.model_validate({"gate": {"labels": str(tmp_path / "nowhere" / "labels.txt")}})
    assert [s.name for s in gate_sets(settings)] == ["golden"]
    assert "nowhere/labels.txt: no such file" in caplog.text and "no plates of this site" in caplog.text
