"""Config loading: defaults, overrides, and one-line errors that name the key."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from platepilot.cli import app
from platepilot.config import CONFIG_ENV, Settings, dump_config, load_config
from platepilot.errors import PlatepilotError


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No platepilot.yaml or $PLATEPILOT_CONFIG from the developer's machine leaks into a test."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(CONFIG_ENV, raising=False)


def _write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_a_file() -> None:
    settings = load_config(None)
    assert settings == Settings()
    assert settings.ocr.ocr_min_confidence == 0.5
    assert settings.ocr.ocr_max_confidence_target == 0.8
    assert settings.ocr.engine == "auto"
    assert settings.ocr.model_path == Path("models/crnn_florida/florida_plate_ocr.onnx")
    assert settings.detector.model_path is None
    assert settings.tracker.max_age == 30
    assert settings.mlflow.model_name == "alpr-florida-ocr-crnn"
    assert [c.id for c in settings.cameras] == ["CAM1"]


def test_nested_override_keeps_other_defaults(tmp_path: Path) -> None:
    path = _write(tmp_path, "ocr:\n  engine: crnn\n  workers: 4\ncameras:\n  - {id: GATE, source: '0'}\n")
    settings = load_config(path)
    assert settings.ocr.engine == "crnn"
    assert settings.ocr.workers == 4
    assert settings.ocr.ocr_min_confidence == 0.5
    assert settings.cameras[0].id == "GATE"
    assert settings.cameras[0].source == "0"


def test_default_file_in_cwd_and_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "tracker: {min_hits: 5}\n", "platepilot.yaml")
    assert load_config(None).tracker.min_hits == 5
    other = _write(tmp_path, "tracker: {min_hits: 7}\n", "other.yaml")
    monkeypatch.setenv(CONFIG_ENV, str(other))
    assert load_config(None).tracker.min_hits == 7


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValueError):
        settings.ocr.workers = 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ocr:\n  colour: red\n", "ocr.colour: unknown key (allowed: engine, model_path,"),
        ("detectr: {}\n", "detectr: unknown key (allowed: cameras, detector,"),
        (
            "ocr:\n  ocr_min_confidence: 1.5\n",
            "config.yaml: ocr.ocr_min_confidence: Input should be less than or equal to 1 (got 1.5)",
        ),
        ("ocr:\n  engine: tesseract\n", "ocr.engine: Input should be 'auto', 'cascade', 'crnn',"),
        ("ocr:\n  ocr_min_confidence: 0.9\n", "ocr: ocr_min_confidence (0.9) must not exceed"),
        ("cameras:\n  - {id: CAM1}\n  - {id: CAM1}\n", "cameras: camera ids must be unique: CAM1"),
        ("cameras:\n  - {id: 'CAM 1'}\n", "cameras[0].id: String should match pattern"),
        ("cameras: []\n", "cameras: List should have at least 1 item"),
        ("detector:\n  input_size: 500\n", "detector.input_size: Input should be a multiple of 32 (got 500)"),
        ("- a\n- b\n", "the top level must be a mapping of keys, not list"),
        (
            "ocr:\n  site_state: Narnia\n",
            "ocr.site_state: 'Narnia' is not a US state, DC or territory name or postal code",
        ),
    ],
)
def test_invalid_values_give_one_line_naming_the_key(tmp_path: Path, text: str, expected: str) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(PlatepilotError) as info:
        load_config(path)
    message = str(info.value)
    assert expected in message
    assert message.startswith(str(path))
    assert "\n" not in message


def test_yaml_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "ocr:\n  workers: 2\n  engine: [crnn\ntracker: {}\n")
    with pytest.raises(PlatepilotError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}:4:")
    assert "invalid YAML" in message
    assert "\n" not in message


def test_yaml_anchors_and_merge_keys_still_load(tmp_path: Path) -> None:
    """The duplicate-key check refused `<<: *anchor` (no constructor for the merge tag)."""
    path = _write(tmp_path, "base: &cam {id: GATE, source: demo, fps_limit: 5}\ncameras:\n  - *cam\n"
                  "  - <<: *cam\n    id: EXIT\n    source: demo:2\n")  # fmt: skip
    with pytest.raises(PlatepilotError, match="base: unknown key"):  # `base:` itself is no setting
        load_config(path)
    path.write_text("cameras:\n  - &cam {id: GATE, source: demo, fps_limit: 5}\n  - <<: *cam\n    id: EXIT\n")
    assert [(c.id, c.fps_limit) for c in load_config(path).cameras] == [("GATE", 5), ("EXIT", 5)]


def test_a_key_given_twice_is_an_error_not_the_last_one_silently(tmp_path: Path) -> None:
    """A second `ocr:` dropped the first one's workers and site_state without a word."""
    path = _write(tmp_path, "ocr: {workers: 4, site_state: GA}\ncameras: []\nocr: {engine: crnn}\n")
    with pytest.raises(PlatepilotError, match=r"config.*:3:1: invalid YAML: duplicate key 'ocr'$"):
        load_config(path)


@pytest.mark.parametrize("explicit", [True, False])
def test_missing_explicit_file_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, explicit: bool) -> None:
    missing = tmp_path / "nope.yaml"
    if not explicit:
        monkeypatch.setenv(CONFIG_ENV, str(missing))
    with pytest.raises(PlatepilotError, match=r"nope\.yaml: config file not found"):
        load_config(missing if explicit else None)


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    assert load_config(_write(tmp_path, "# nothing set\n")) == Settings()


def test_dump_round_trips(tmp_path: Path) -> None:
    settings = load_config(_write(tmp_path, "cameras:\n  - {id: A, source: demo, fps_limit: 5}\n"))
    dumped = dump_config(settings)
    assert yaml.safe_load(dumped)["cameras"][0]["fps_limit"] == 5
    assert load_config(_write(tmp_path, dumped, "again.yaml")) == settings


def test_cli_config_show_prints_effective_yaml(tmp_path: Path) -> None:
    path = _write(tmp_path, "ocr: {workers: 3}\n")
    result = CliRunner().invoke(app, ["config", "show", "--config", str(path)])
    assert result.exit_code == 0, result.output
    assert "ocr_max_confidence_target: 0.8" in result.output
    assert yaml.safe_load(result.output)["ocr"]["workers"] == 3


def test_console_entry_bad_file_prints_one_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "ocr:\n  ocr_min_confidence: [1.5]\n")
    proc = subprocess.run(
        [sys.executable, "-m", "platepilot.cli", "config", "show", "--config", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "ocr.ocr_min_confidence" in lines[0]
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "args",
    [
        ["synth", "plates", "-n", "2", "-o", "{file}"],  # a file where the output folder goes
        ["synth", "scenes", "-n", "1", "-o", "{file}/sub"],  # a folder inside a file
    ],
)
def test_a_path_that_cannot_be_written_is_one_line(tmp_path: Path, args: list[str]) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("not a folder")
    command = [sys.executable, "-m", "platepilot.cli", *(a.format(file=blocker) for a in args)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {blocker}") and "check the path" in lines[0]
    assert blocker.read_text() == "not a folder"  # nothing lost
