"""Hot model reload: the watcher swaps in a verified replacement, keeps the old model on a bad one,
and a running pilot switches its events' model version mid-run without losing a frame."""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import pytest
from pipeline_fakes import ScriptedEngine, TruthDetector, make_pilot, pipeline_settings, plate_read

from platepilot.errors import PlatepilotError
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.deployed import STATE_FILE
from platepilot.ocr.models import BUNDLED_MODEL
from platepilot.ocr.spec import file_sha256, load_card, save_card, sidecar_path
from platepilot.pipeline.reload import ModelWatcher, ReaderSlot, load_verified, model_version
from platepilot.sources.demo import DemoSource
from platepilot.store.events import query_events
from platepilot.types import Frame, PlateRead


def _deploy(target: Path) -> Path:
    """The bundled reader copied to `target` with its sidecar, as the sync agent leaves it."""
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(BUNDLED_MODEL, target)
    shutil.copy2(sidecar_path(BUNDLED_MODEL), sidecar_path(target))
    return target


def _swap(target: Path, model_bytes: bytes, sidecar: str | None = None) -> None:
    """Replace the model (then its sidecar) by renames within its folder, as `platepilot sync` does."""
    staged = target.with_name(".incoming.onnx")
    staged.write_bytes(model_bytes)
    os.replace(staged, target)
    if sidecar is not None:
        staged_side = target.with_name(".incoming.json")
        staged_side.write_text(sidecar)
        os.replace(staged_side, sidecar_path(target))


def _retrained(folder: Path, tag: str) -> tuple[bytes, str]:
    """A valid new model: the bundled weights with a different doc string (so another sha256), and
    its sidecar (another run id, the new sha256)."""
    folder.mkdir(parents=True, exist_ok=True)
    model = onnx.load(str(BUNDLED_MODEL))
    model.doc_string = f"retrained {tag}"
    path = folder / f"{tag}.onnx"
    onnx.save(model, str(path))
    save_card(path, load_card(BUNDLED_MODEL).model_copy(update={"run_id": tag}))
    return path.read_bytes(), sidecar_path(path).read_text()


def _watcher(model: Path, interval: float = 60.0) -> ModelWatcher:
    engine = CRNNOCRService(model)
    return ModelWatcher(model, ReaderSlot(engine, model_version(engine)), load_verified, interval)


def _settle(watcher: ModelWatcher) -> bool:
    """Two looks, as two poll intervals would give: the first sees the change, the second acts."""
    return watcher.poll() | watcher.poll()


def test_watcher_swaps_in_a_valid_model_and_keeps_the_old_one_on_a_bad_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    model = _deploy(tmp_path / "models" / "florida_plate_ocr.onnx")
    watcher = _watcher(model)
    first = watcher.slot.current
    assert first.version == f"sha256:{file_sha256(BUNDLED_MODEL)[:12]}"
    assert not watcher.poll(), "nothing changed"

    new_bytes, new_side = _retrained(tmp_path / "staging", "run2")
    _swap(model, new_bytes)  # caught mid-swap: the ONNX is new, its sidecar still the old one
    assert not watcher.poll()
    _swap(model, new_bytes, new_side)
    assert _settle(watcher)
    second = watcher.slot.current
    assert second.version == f"sha256:{file_sha256(model)[:12]}" != first.version
    assert (watcher.reloads, watcher.refused) == (1, 0)

    with caplog.at_level(logging.WARNING, logger="platepilot.pipeline.reload"):
        _swap(model, b"\x00not an onnx graph")  # sidecar sha256 no longer matches
        assert not _settle(watcher)
        garbage = tmp_path / "staging" / "garbage.onnx"
        garbage.write_bytes(b"\x08\x07garbage")
        save_card(garbage, load_card(BUNDLED_MODEL))  # a sidecar that vouches for it: onnxruntime refuses
        _swap(model, garbage.read_bytes(), sidecar_path(garbage).read_text())
        assert not _settle(watcher)
        assert not watcher.poll(), "a refused model is not retried until its files change again"
    assert watcher.slot.current is second and (watcher.reloads, watcher.refused) == (1, 2)
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]  # an earlier test may log INFO
    assert len(lines) == 2 and all("still reading with " + second.version in line for line in lines)
    assert "sha256 does not match" in lines[0] and "onnxruntime cannot load" in lines[1]


def test_model_version_names_the_registry_version_the_sync_agent_deployed(tmp_path: Path) -> None:
    model = _deploy(tmp_path / "florida_plate_ocr.onnx")
    sha = file_sha256(model)
    (tmp_path / STATE_FILE).write_text(json.dumps({"version": 7, "sha256": sha}))
    assert model_version(CRNNOCRService(model)) == f"v7 sha256:{sha[:12]}"
    (tmp_path / STATE_FILE).write_text(json.dumps({"version": 6, "sha256": "0" * 64}))  # about another file
    assert model_version(CRNNOCRService(model)) == f"sha256:{sha[:12]}"


@pytest.mark.parametrize("confidences", [[0.9, 0.9, 0.9], [0.9, float("nan"), 0.9, 0.9], [0.9, 1.5, 0.9, 0.9]])
def test_a_reader_that_reads_wrong_is_refused(tmp_path: Path, confidences: list[float]) -> None:
    """Too few reads, NaN (what NaN weights give) or out-of-range confidences fail the trial read."""

    class FixedReader(ScriptedEngine):
        def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
            return [plate_read("ABC1234", c) for c in confidences]

    with pytest.raises(PlatepilotError, match="trial read of 4 plates"):
        load_verified(tmp_path / "m.onnx", build=lambda _path: FixedReader("ABC1234", confidences))


class _ScriptedSource:
    """A demo camera that runs `actions[i]` before handing out frame i (and waits for each to return)."""

    live = False
    stills = False

    def __init__(self, inner: DemoSource, actions: dict[int, Callable[[], None]]) -> None:
        self.inner, self.actions, self.camera_id = inner, actions, inner.camera_id

    def frames(self, stop: threading.Event) -> Iterator[Frame]:
        for frame in self.inner.frames(stop):
            if frame.index in self.actions:
                self.actions[frame.index]()
            yield frame


def _until(check: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_running_pilot_switches_model_mid_run_and_survives_a_corrupt_one(tmp_path: Path) -> None:
    model = _deploy(tmp_path / "models" / "florida_plate_ocr.onnx")
    watcher = _watcher(model, interval=0.05)
    v1 = watcher.slot.current.version
    new_bytes, new_side = _retrained(tmp_path / "staging", "run2")
    swap_at, corrupt_at, frames, t0, fps = 150, 300, 450, 1_764_000_000.0, 15

    def deploy_new() -> None:
        _swap(model, new_bytes, new_side)
        _until(lambda: watcher.reloads == 1, "the reload")

    def deploy_corrupt() -> None:
        _swap(model, new_bytes[: len(new_bytes) // 2], new_side)  # a truncated copy
        _until(lambda: watcher.refused == 1, "the refusal")

    demo = DemoSource("CAM1", seed=0, realtime=False, max_frames=frames, clock=lambda: t0)
    source = _ScriptedSource(demo, {swap_at: deploy_new, corrupt_at: deploy_corrupt})
    settings = pipeline_settings(tmp_path)
    pilot = make_pilot(settings, [source], TruthDetector(demo.scene), watcher.slot)
    watcher.start()
    try:
        pilot.run()
    finally:
        watcher.stop()
    v2 = watcher.slot.current.version
    events = query_events(settings.output.events_db_url)
    assert v2 != v1 and {e.model_version for e in events} == {v1, v2}
    assert events[0].model_version == v1
    after_swap = [e for e in events if e.first_seen >= t0 + swap_at / fps]
    assert after_swap and all(e.model_version == v2 for e in after_swap)
    assert any(e.first_seen >= t0 + corrupt_at / fps for e in after_swap), "events go on after the bad model"
    stats = pilot.stats["CAM1"]
    assert (stats.processed, stats.dropped, stats.error) == (frames, 0, None)
