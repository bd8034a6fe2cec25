"""The state classifier's training data and inputs: caches that notice change and survive damage,
the rendered pool at any size, and every bad input refused in one line before training starts."""

from __future__ import annotations

import json
import os
import shutil
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from platepilot.errors import PlatepilotError
from platepilot.ocr.blur_estimate import BUNDLED_BLUR_MODEL, BlurEstimator
from platepilot.ocr.state import BUNDLED_STATE_MODEL, StateCard, StateClassifier
from platepilot.plates.states import UNKNOWN
from platepilot.sessions import sidecar_path
from platepilot.training.state.data import cached_pool, rendered_pool, training_sources
from platepilot.training.state.train import check_classes, eval_photos


def _photo(path: Path, shade: int) -> Path:
    cv2.imwrite(str(path), np.full((40, 80, 3), shade, np.uint8))
    return path


def test_a_replaced_photo_is_decoded_again(tmp_path: Path) -> None:
    photo = _photo(tmp_path / "a.png", 10)
    assert cached_pool([photo], ["FL"], tmp_path / "cache", "photos").images[0, 0, 0, 0] == 10
    size = photo.stat().st_size
    _photo(photo, 200)  # same name and size, new content
    assert photo.stat().st_size == size
    os.utime(photo, ns=(photo.stat().st_atime_ns, photo.stat().st_mtime_ns + 10**9))
    assert cached_pool([photo], ["FL"], tmp_path / "cache", "photos").images[0, 0, 0, 0] == 200


def test_a_damaged_cache_file_is_built_again_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = _photo(tmp_path / "a.png", 10)
    cache = tmp_path / "cache"
    cached_pool([photo], ["FL"], cache, "photos")
    rendered_pool(2, 0, cache)
    for cached in cache.iterdir():
        cached.write_bytes(cached.read_bytes()[:100])  # cut short, as by a full disk or a killed run
    assert len(cached_pool([photo], ["FL"], cache, "photos")) == 1
    assert len(rendered_pool(2, 0, cache)) == 2
    assert capsys.readouterr().err.count("unreadable or stale cache, built again") == 2
    assert sorted(p.name for p in cache.iterdir() if p.name.startswith(".")) == []  # no temp file left


def test_the_rendered_pool_has_the_size_asked_for_at_any_size(tmp_path: Path) -> None:
    for seed in range(12):  # one plate: its out-of-state half may take many draws to come
        pool = rendered_pool(1, seed, tmp_path)
        assert len(pool) == 1 and pool.images.shape[0] == 1
    assert len(rendered_pool(3, 0, tmp_path)) == 3


def test_a_manifest_whose_train_rows_are_all_held_out_is_refused(tmp_path: Path) -> None:
    name = next(f"{i}.png" for i in range(1000) if zlib.crc32(str(tmp_path / f"{i}.png").encode()) % 20 == 0)
    _photo(tmp_path / name, 10)
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text(f"image_relpath\tstate\tsplit\n{name}\tFlorida\ttrain\n")
    with pytest.raises(PlatepilotError, match="all held out for validation") as caught:
        training_sources(manifest, [], 0, 0, tmp_path / "cache")
    assert "\n" not in str(caught.value)


def test_a_bad_valid_row_is_found_before_training_not_after(tmp_path: Path) -> None:
    _photo(tmp_path / "a.png", 10)
    manifest = tmp_path / "MANIFEST.tsv"
    manifest.write_text("image_relpath\tstate\tsplit\na.png\tFlorida\ttrain\na.png\tGeorgia\tvalid\n")
    assert [(p.state, p.split) for p in eval_photos(manifest)] == [("GA", "valid")]
    manifest.write_text(manifest.read_text() + "gone.png\tTexas\ttest\n")
    with pytest.raises(PlatepilotError, match=r"MANIFEST.tsv:4: image .*gone.png not found"):
        eval_photos(manifest)
    manifest.write_text("image_relpath\tstate\tsplit\na.png\tFlorida\ttrain\n")
    assert eval_photos(manifest) == ()  # no rows to score: not an error
    manifest.write_text(manifest.read_text() + "gone.png\tTexas\texcluded\n")  # a split never read
    assert eval_photos(manifest) == ()


def test_a_teacher_without_a_state_of_the_data_is_refused() -> None:
    card = StateCard(classes=("FL", "GA", UNKNOWN), height=64, width=128)
    check_classes(card, ("FL", "GA", "FL"), Path("t.onnx"))
    with pytest.raises(PlatepilotError, match=r"--teacher t.onnx: its classes lack TX, which the training data"):
        check_classes(card, ("FL", "TX"), Path("t.onnx"))
    with pytest.raises(PlatepilotError, match="lack unknown"):
        check_classes(StateCard(classes=("FL", "GA"), height=64, width=128), ("FL",), None)


@pytest.mark.parametrize("bundled", [BUNDLED_STATE_MODEL, BUNDLED_BLUR_MODEL])
def test_a_sidecar_of_another_input_size_is_refused_in_one_line(tmp_path: Path, bundled: Path) -> None:
    model = tmp_path / bundled.name
    shutil.copy(bundled, model)
    card = json.loads(sidecar_path(bundled).read_text())
    card["height"] += 16
    sidecar_path(model).write_text(json.dumps(card))
    load = StateClassifier if bundled == BUNDLED_STATE_MODEL else BlurEstimator
    with pytest.raises(PlatepilotError, match="its sidecar says") as caught:
        load(model)
    assert "\n" not in str(caught.value) and str(model) in str(caught.value)


def test_the_feature_cache_key_covers_every_image_and_label() -> None:
    from platepilot.training.state.backbones import BACKBONES
    from platepilot.training.state.data import Pool
    from platepilot.training.state.pretrained import HeadTrainOptions, _feature_key

    opts, spec = HeadTrainOptions(data=Path("m.tsv"), output_dir=Path("r")), BACKBONES["ppocr-det"]
    images = np.zeros((200, 8, 8, 3), np.uint8)
    key = _feature_key(opts, spec, Pool(images, ("FL",) * 200))
    assert _feature_key(opts, spec, Pool(images, ("FL",) * 199 + ("GA",))) != key  # a relabelled photo
    changed = images.copy()
    changed[101, 3, 3] = 1  # one pixel of a photo between the old key's samples
    assert _feature_key(opts, spec, Pool(changed, ("FL",) * 200)) != key
    assert _feature_key(opts, spec, Pool(images.copy(), ("FL",) * 200)) == key
