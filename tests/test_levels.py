"""Flat frames stretched to the full range before detection and reading (`platepilot.levels`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
from pipeline_fakes import make_pilot, pipeline_settings

from platepilot.config import CameraConfig
from platepilot.levels import FLAT_BELOW, FLAT_CROP_BELOW, MAX_GAIN, levels, read_crop, stretched
from platepilot.ocr.base import OCREngine
from platepilot.plates.synth import synth_sample
from platepilot.sources import open_source
from platepilot.store.events import query_events
from platepilot.types import Detection, PlateRead


def _scene(dim: float) -> np.ndarray:
    """A 480x640 street (sunlit wall, shaded asphalt) with a synthetic plate in it, its brightness scaled by `dim`."""
    frame = np.full((480, 640, 3), 30, np.uint8)  # asphalt in shade
    frame[:240] = 235  # a sunlit wall
    plate = cv2.resize(synth_sample(3, 0).image, (200, 50))
    frame[300:350, 220:420] = plate
    return (frame.astype(np.float32) * dim).astype(np.uint8)


def test_a_full_range_frame_is_left_as_it_is_and_a_flat_one_is_stretched() -> None:
    day = _scene(1.0)
    low, high = levels(day)
    assert high - low >= FLAT_BELOW and stretched(day) is day
    dusk = _scene(0.4)
    assert levels(dusk)[1] - levels(dusk)[0] < FLAT_BELOW
    low, high = levels(stretched(dusk))
    assert low <= 2 and high >= 250  # the plate's white is the top, not clipped beyond it
    blank = np.full((120, 160, 3), 120, np.uint8)
    blank[::2] = 125  # a lens cap, a wall: nothing to stretch
    assert stretched(blank) is blank
    fog = np.full((120, 160, 3), 120, np.uint8)
    fog[::2] = 160  # faint: stretched, but by MAX_GAIN at most
    out = stretched(fog).astype(int)
    assert out.max() - out.min() == round(40 * MAX_GAIN)


class _RangeReader:
    """Reads every crop as the span of its grey levels (`R` + the span), so a test can see what was read."""

    name = "range"

    def read(self, images: list[np.ndarray]) -> list[PlateRead]:
        spans = [int(np.ptp(cv2.cvtColor(i, cv2.COLOR_BGR2GRAY))) for i in images]
        return [PlateRead(f"R{s}", 0.95, (0.95,) * len(f"R{s}"), "range") for s in spans]

    def warmup(self, iterations: int = 1) -> None:
        pass


def test_the_runtime_detects_and_reads_a_dusk_photo_stretched(tmp_path: Path) -> None:
    folder = tmp_path / "dusk"
    folder.mkdir()
    assert cv2.imwrite(str(folder / "gate.png"), _scene(0.4))
    seen: list[int] = []

    def detect(image: np.ndarray) -> list[Detection]:
        seen.append(int(np.ptp(image)))
        return [Detection((220.0, 300.0, 420.0, 350.0), 0.9)]

    settings = pipeline_settings(tmp_path)
    reader: OCREngine = _RangeReader()  # type: ignore[assignment]
    make_pilot(
        settings, [open_source(CameraConfig(source=str(folder)))], SimpleNamespace(name="d", detect=detect), reader
    ).run()  # type: ignore[arg-type]
    assert seen and min(seen) >= 250  # the detector saw the stretched frame
    [event] = query_events(settings.output.events_db_url)
    assert int(event.text[1:]) >= 200  # and the reader a crop of it


def test_a_flat_crop_file_is_read_stretched_and_a_plain_one_as_it_is(tmp_path: Path) -> None:
    """`read_crop` (platepilot ocr, eval --labels, labels auto, prelabel) stretches a crop spanning fewer than
    FLAT_CROP_BELOW levels, such as a plate at a quarter of its contrast, and leaves a plain one."""
    plate = synth_sample(7, 0).image
    flat = (128 + (plate.astype(np.float32) - 128) * 0.25).astype(np.uint8)
    assert cv2.imwrite(str(tmp_path / "plate.png"), plate) and cv2.imwrite(str(tmp_path / "flat.png"), flat)
    low, high = levels(plate)
    assert high - low >= FLAT_CROP_BELOW and np.array_equal(read_crop(tmp_path / "plate.png"), plate)
    low, high = levels(read_crop(tmp_path / "flat.png"))
    assert high - low >= 240


def test_a_strip_far_longer_than_wide_is_measured_not_crashed() -> None:
    """A side that scaled to under half a pixel made OpenCV refuse the resize (`platepilot ocr` died on it)."""
    for shape in ((2, 1300, 3), (4000, 6, 3), (1, 640, 3)):
        strip = np.random.default_rng(0).integers(100, 150, shape, dtype=np.uint8)  # flat: measured
        assert stretched(strip).shape == shape
        assert levels(strip)[1] - levels(strip)[0] < FLAT_BELOW
