"""Stand-ins the pipeline tests share: a scripted reader, a detector that knows the demo's truth."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np

from platepilot.config import CameraConfig, OCRConfig, OutputConfig, Settings, TrackerConfig
from platepilot.detect.base import PlateDetector
from platepilot.ocr.base import OCREngine
from platepilot.pipeline.pilot import Pilot
from platepilot.pipeline.reload import ReaderSlot
from platepilot.sources.base import FrameSource
from platepilot.sources.demo import DemoScene
from platepilot.store.crops import CropStore
from platepilot.store.events import EventStore, PlateEvent
from platepilot.types import Detection, PlateRead


def plate_read(text: str, conf: float, chars: Sequence[float] | None = None) -> PlateRead:
    return PlateRead(text, conf, tuple(chars) if chars else (conf,) * len(text), "test")


class ScriptedEngine:
    """An OCR engine that reads every crop as `text` with confidences taken in turn from `confs`."""

    name = "scripted"

    def __init__(self, text: str, confs: Sequence[float]) -> None:
        self.text, self.confs, self.calls = text, list(confs), 0
        self._lock = threading.Lock()

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        with self._lock:
            out = [
                plate_read(self.text, self.confs[min(self.calls + i, len(self.confs) - 1)]) for i in range(len(images))
            ]
            self.calls += len(images)
        return out

    def warmup(self, iterations: int = 1) -> None:
        pass


class TruthDetector:
    """Detects the demo's true plate boxes, frame after frame (the source must not drop frames).

    A blank (all-black) frame, from another test camera, has no plate and does not advance the scene.
    """

    name = "truth"
    whole_plates = False
    box_margin = (0.0, 0.0)

    def __init__(self, scene: DemoScene) -> None:
        self.scene, self.index = scene, 0

    def detect(self, image: np.ndarray) -> list[Detection]:
        if not image.any():
            return []
        _, truth = self.scene.render(self.index)
        self.index += 1
        return [Detection(p.box, 0.9) for p in truth]


def write_demo_video(path: Path, frames: int, seed: int = 2) -> DemoScene:
    """The demo scene's first `frames` frames as an mp4v video at 15 fps (1280x720); its scene."""
    scene = DemoScene(seed=seed)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 15.0, (1280, 720))
    for i in range(frames):
        writer.write(scene.render(i)[0])
    writer.release()
    return scene


def pipeline_settings(tmp_path: Path, cameras: Sequence[str] = ("CAM1",)) -> Settings:
    return Settings(
        cameras=[CameraConfig(id=c) for c in cameras],
        ocr=OCRConfig(workers=1),
        tracker=TrackerConfig(min_hits=2, max_gap_seconds=0.5),
        output=OutputConfig(
            crops_dir=tmp_path / "crops",
            events_db_url=f"sqlite:///{tmp_path}/ev.db",
            events_jsonl=tmp_path / "ev.jsonl",
        ),
    )


def make_pilot(
    settings: Settings,
    sources: Sequence[FrameSource],
    detector: PlateDetector,
    reader: OCREngine | ReaderSlot,
    on_event: Callable[[PlateEvent], None] | None = None,
) -> Pilot:
    """A pilot writing to `settings.output`; a bare engine is wrapped in a slot at version `test`."""
    slot = reader if isinstance(reader, ReaderSlot) else ReaderSlot(reader, "test")
    events = EventStore(settings.output.events_db_url, settings.output.events_jsonl)
    detectors = {source.camera_id: detector for source in sources}
    return Pilot(settings, sources, detectors, slot, CropStore(settings.output.crops_dir), events, on_event)
