"""CRNNOCRService: loading checks, reads, batching and thread safety on a tiny random-init model."""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from platepilot.errors import PlatepilotError
from platepilot.ocr.crnn_service import CRNNOCRService, decode_read
from platepilot.ocr.spec import file_sha256, sidecar_path
from platepilot.plates.charset import CHARSET
from platepilot.plates.formats import match_format

Crops = list[tuple[np.ndarray, str]]


@pytest.fixture()
def model_copy(tiny_model: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model and its sidecar, free to break."""
    path = tmp_path / tiny_model.name
    shutil.copy(tiny_model, path)
    shutil.copy(sidecar_path(tiny_model), sidecar_path(path))
    return path


def _edit_sidecar(model: Path, **changes: object) -> None:
    side = sidecar_path(model)
    card = json.loads(side.read_text())
    for key, value in changes.items():
        if key in card["spec"]:
            card["spec"][key] = value
        else:
            card[key] = value
    side.write_text(json.dumps(card))


def test_read_returns_plate_reads(tiny_model: Path, synth_crops: Crops) -> None:
    service = CRNNOCRService(tiny_model)
    service.warmup(iterations=1)
    assert service.name == "crnn"
    assert service.spec.height == 32
    assert service.card.sha256 == file_sha256(tiny_model)
    reads = service.read([image for image, _ in synth_crops[:6]])
    assert len(reads) == 6
    for read in reads:
        assert 0.0 <= read.confidence <= 1.0
        assert len(read.char_confidences) == len(read.text)
        assert all(0.0 <= c <= 1.0 for c in read.char_confidences)
        assert read.engine == "crnn"
        assert read.text in {text for text, _ in read.candidates}
        assert read.format_match == match_format(read.text)
        if read.text:
            assert read.confidence == pytest.approx(np.mean(read.char_confidences))
        else:
            assert read.confidence == 0.0


def test_read_empty_list_and_grey_and_bgra(tiny_model: Path, synth_crops: Crops) -> None:
    service = CRNNOCRService(tiny_model)
    assert service.read([]) == []
    image = synth_crops[0][0]
    grey = image.mean(axis=2).astype(np.uint8)
    bgra = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    assert [r.text for r in service.read([bgra])] == [r.text for r in service.read([image])]
    assert len(service.read([grey])) == 1
    with pytest.raises(PlatepilotError, match="image 0"):
        service.read([np.zeros((0, 10, 3), np.uint8)])


def test_batched_equals_one_by_one(tiny_model: Path, synth_crops: Crops) -> None:
    service = CRNNOCRService(tiny_model, batch_size=5)  # 12 crops: batches of 5, 5 and 2
    images = [image for image, _ in synth_crops[:12]]
    batched = service.read(images)
    single = [service.read([image])[0] for image in images]
    assert [r.text for r in batched] == [r.text for r in single]
    assert [r.confidence for r in batched] == pytest.approx([r.confidence for r in single], abs=1e-5)


def test_four_threads_read_like_one(tiny_model: Path, synth_crops: Crops) -> None:
    service = CRNNOCRService(tiny_model, batch_size=8)
    images = [image for image, _ in synth_crops]
    expected = [service.read([image])[0] for image in images]
    with ThreadPoolExecutor(max_workers=4) as pool:
        got = list(pool.map(lambda image: service.read([image])[0], images * 2))
    assert got == expected * 2


def test_format_prior_keeps_candidates_and_invents_nothing(tiny_model: Path, synth_crops: Crops) -> None:
    images = [image for image, _ in synth_crops]
    plain = CRNNOCRService(tiny_model, format_prior=False).read(images)
    prior = CRNNOCRService(tiny_model, format_prior=True).read(images)
    for a, b in zip(plain, prior, strict=True):
        assert a.candidates == b.candidates
        assert b.text in {text for text, _ in b.candidates}  # never an invented text


def _probs(steps: list[dict[str, float]]) -> np.ndarray:
    """(T, classes) from per-step {char: prob} ('-' the blank); the rest spread over other classes."""
    probs = np.zeros((len(steps), len(CHARSET) + 1))
    for t, step in enumerate(steps):
        rest = (1.0 - sum(step.values())) / (probs.shape[1] - len(step))
        probs[t] = rest
        for ch, p in step.items():
            probs[t, 0 if ch == "-" else CHARSET.index(ch) + 1] = p
    return probs


_SURE = 0.999


def _plate(last: dict[str, float]) -> np.ndarray:
    """ABCD1? then a blank, the last character's probabilities as given."""
    return _probs([*({ch: _SURE} for ch in "ABCD1"), last, {"-": _SURE}])


@pytest.mark.parametrize(
    ("probs", "prior", "text", "confidence"),
    [
        # Confident plate: greedy, mean char confidence, the beam is skipped (one candidate).
        (_probs([{ch: _SURE} for ch in "ABC123"]), True, "ABC123", _SURE),
        # Last char Z 0.5 vs 2 0.45: ABCD1Z matches no format, ABCD12 (fl-abc-d12) is near-equal.
        (_plate({"Z": 0.5, "2": 0.45}), True, "ABCD12", None),
        (_plate({"Z": 0.5, "2": 0.45}), False, "ABCD1Z", (5 * _SURE + 0.5) / 6),
        # ABCD12 far worse (0.2 < 0.5 x 0.7), but ABCD1Z fits no state's format: from a twentieth, ABCD12.
        (_plate({"Z": 0.7, "2": 0.2}), True, "ABCD12", None),
        # Under a twentieth: greedy stays.
        (_plate({"Z": 0.7, "2": 0.02}), True, "ABCD1Z", (5 * _SURE + 0.7) / 6),
        # All blank: empty read, confidence 0.
        (_probs([{"-": _SURE}] * 4), True, "", 0.0),
    ],
)
def test_decode_read(probs: np.ndarray, prior: bool, text: str, confidence: float | None) -> None:
    read = decode_read(probs, CHARSET, beam_width=8, top_k=5, format_prior=prior)
    assert read.text == text
    assert read.format_match == match_format(text)
    assert len(read.char_confidences) == len(text)
    assert read.text in dict(read.candidates)
    assert [p for _, p in read.candidates] == sorted((p for _, p in read.candidates), reverse=True)
    if confidence is None:  # prior-picked: the candidate's probability per character
        assert read.confidence == pytest.approx(dict(read.candidates)[text] ** (1 / len(text)))
        assert read.char_confidences == (read.confidence,) * len(text)
    else:
        assert read.confidence == pytest.approx(confidence, abs=1e-6)


def test_a_read_no_state_issues_takes_a_format_variant_the_beam_missed() -> None:
    # a blurred California 4 read as L: the beam (width 1) offers only LRAR512, which fits no format
    probs = _probs([{"L": 0.7, "4": 0.3}, *({ch: _SURE} for ch in "RAR512"), {"-": _SURE}])
    read = decode_read(probs, CHARSET, beam_width=1, top_k=3)
    assert read.text == "4RAR512" and read.format_match == "us-1abc234"
    assert {"LRAR512", "4RAR512"} <= set(dict(read.candidates)) and len(read.candidates) <= 3
    assert decode_read(probs, CHARSET, beam_width=1, format_prior=False).text == "LRAR512"


def test_decode_read_skips_the_beam_only_when_confident() -> None:
    sure = decode_read(_probs([{ch: _SURE} for ch in "ABC123"]), CHARSET)
    assert len(sure.candidates) == 1
    unsure = decode_read(_plate({"Z": 0.5, "2": 0.45}), CHARSET, top_k=3)
    assert len(unsure.candidates) == 3
    assert decode_read(_plate({"Z": 0.5, "2": 0.45}), CHARSET, beam_width=0, format_prior=False).candidates == (
        ("ABCD1Z", pytest.approx(0.5 * _SURE**6)),
    )


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("missing model", "model not found"),
        ("missing sidecar", "sidecar"),
        ("corrupt onnx", "onnxruntime cannot load"),
        ("sha mismatch", "sha256 does not match"),
        ("height mismatch", "sidecar says"),
        ("charset mismatch", "classes"),
    ],
)
def test_bad_models_fail_at_load_with_one_line(model_copy: Path, breakage: str, message: str) -> None:
    if breakage == "missing model":
        model_copy.unlink()
    elif breakage == "missing sidecar":
        sidecar_path(model_copy).unlink()
    elif breakage == "corrupt onnx":
        model_copy.write_bytes(b"\x08\x07 this is not a protobuf \xff\xfe" * 10)
        _edit_sidecar(model_copy, sha256=file_sha256(model_copy))  # so only onnxruntime can object
    elif breakage == "sha mismatch":
        model_copy.write_bytes(model_copy.read_bytes() + b"\0")
    elif breakage == "height mismatch":
        _edit_sidecar(model_copy, height=48)
    elif breakage == "charset mismatch":
        _edit_sidecar(model_copy, charset="0123456789")
    with pytest.raises(PlatepilotError, match=message) as info:
        CRNNOCRService(model_copy)
    assert "\n" not in str(info.value)
    assert model_copy.stem in str(info.value)


def test_bad_arguments(tiny_model: Path) -> None:
    with pytest.raises(PlatepilotError, match="batch_size"):
        CRNNOCRService(tiny_model, batch_size=0)


def test_resolve_model_order(tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from platepilot.config import OCRConfig, Settings
    from platepilot.ocr import models

    trained = Settings(ocr=OCRConfig(model_path=tiny_model))
    untrained = Settings(ocr=OCRConfig(model_path=tmp_path / "none.onnx"))
    assert models.resolve_model(tiny_model, untrained) == tiny_model
    with pytest.raises(PlatepilotError, match="model not found"):
        models.resolve_model(tmp_path / "missing.onnx", trained)
    assert models.resolve_model(None, trained) == tiny_model
    monkeypatch.setattr(models, "BUNDLED_MODEL", tiny_model)
    assert models.resolve_model(None, untrained) == tiny_model
    monkeypatch.setattr(models, "BUNDLED_MODEL", tmp_path / "not_bundled.onnx")
    with pytest.raises(PlatepilotError, match="no CRNN model"):
        models.resolve_model(None, untrained)


@pytest.mark.parametrize(
    ("engine", "error"),
    [("crnn", None), ("auto", None), ("tesseract", "unknown OCR engine")],
)
def test_make_engine(tiny_model: Path, engine: str, error: str | None) -> None:
    from platepilot.config import Settings
    from platepilot.ocr.models import make_engine

    if error is None:
        assert isinstance(make_engine(engine, tiny_model, Settings()), CRNNOCRService)
    else:
        with pytest.raises(PlatepilotError, match=error):
            make_engine(engine, tiny_model, Settings())


def test_a_model_replaced_while_it_loads_is_refused_not_paired_with_the_old_sidecar(
    tmp_path: Path, tiny_model: Path
) -> None:
    """A deploy renaming a new ONNX in between the sidecar's check and the model's loading gave a session on
    the new model with the old sidecar's charset and input size until the watcher's next poll."""
    from platepilot.ocr.spec import load_card
    from platepilot.sessions import open_session

    sha = load_card(tiny_model).sha256
    assert open_session(tiny_model, sha256=sha).get_inputs()  # the bytes its sidecar names: loaded
    swapped = tmp_path / tiny_model.name
    swapped.write_bytes(tiny_model.read_bytes() + b"\0")  # another model under the same name
    with pytest.raises(PlatepilotError, match="replaced while it was loaded"):
        open_session(swapped, sha256=sha)


def test_a_strip_no_plate_line_fits_is_not_enlarged_before_it_is_read_as_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 1 x 30,000 px strip was enlarged 80 times over (a gigabyte) before the whole-plate reader saw it
    could hold no plate line."""
    from platepilot.ocr import crnn_service
    from platepilot.ocr.lines import PlateLineFinder
    from platepilot.ocr.models import BUNDLED_MODEL

    enlarged_shapes: list[tuple[int, ...]] = []
    real = crnn_service.enlarged
    monkeypatch.setattr(crnn_service, "enlarged", lambda image: enlarged_shapes.append(image.shape) or real(image))
    service = CRNNOCRService(BUNDLED_MODEL, lines=PlateLineFinder())
    strip = np.random.default_rng(0).integers(0, 256, (1, 30_000, 3), dtype=np.uint8)
    plate = np.full((40, 90, 3), 200, np.uint8)
    reads = service.read([strip, plate])
    assert reads[0].text == "" and reads[0].confidence == 0.0
    assert enlarged_shapes == [plate.shape]  # only the crop that may hold a line
