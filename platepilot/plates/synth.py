"""Synthetic plate crops: unlimited labelled training data, deterministic by (seed, index).

`synth_sample(seed, i)` is the whole recipe: design -> front-on render -> camera. It is pure and
torch-free, so training can generate on the fly in DataLoader workers, and `write_plates` can fan
out over processes while staying byte-identical whatever the worker count.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import cv2
import numpy as np
from rich.progress import Progress

from platepilot.plates.camera import CameraModel
from platepilot.plates.designs import Family, sample_design
from platepilot.plates.render import render_plate
from platepilot.store.labels import append_labels

JPEG_QUALITY = 95


@dataclass(frozen=True)
class SynthSample:
    """One synthetic crop: `image` BGR uint8, `text` its A-Z0-9 label, `family` the plate design."""

    image: np.ndarray
    text: str
    family: Family


@cache
def _camera() -> CameraModel:
    return CameraModel()


def synth_sample(seed: int, index: int, camera: bool = True) -> SynthSample:
    """Sample `index` of the stream `seed`; `camera=False` returns the clean front-on plate."""
    rng = np.random.default_rng([seed, index])
    design = sample_design(rng)
    plate = render_plate(design, rng)
    image = _camera().apply(plate, rng) if camera else plate.image
    return SynthSample(image, design.text, design.family)


def iter_samples(seed: int, start: int = 0, count: int | None = None) -> Iterator[SynthSample]:
    """Samples start, start+1, ... of stream `seed` (endless when `count` is None)."""
    index = start
    while count is None or index < start + count:
        yield synth_sample(seed, index)
        index += 1


def _write_one(args: tuple[int, int, str]) -> tuple[str, str]:
    seed, index, out = args
    sample = synth_sample(seed, index)
    name = f"{index:07d}.jpg"
    path = Path(out) / name
    tmp = path.with_suffix(".tmp.jpg")
    cv2.imwrite(str(tmp), sample.image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    os.replace(tmp, path)
    return name, sample.text


# Spawn, not fork: a process whose OpenCV thread pool has already run (any earlier blur or warp big
# enough to go parallel) hangs forked children inside cv2 calls.
_SPAWN = multiprocessing.get_context("spawn")


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads only contend


def write_plates(out: Path, count: int, seed: int = 0, workers: int = 1) -> Path:
    """Write `out/<index>.jpg` and `out/labels.txt`; resumable: crops already labelled are skipped."""
    out.mkdir(parents=True, exist_ok=True)
    labels = out / "labels.txt"
    done = {line.split("\t", 1)[0] for line in labels.read_text().splitlines()} if labels.exists() else set()
    todo = [(seed, i, str(out)) for i in range(count) if f"{i:07d}.jpg" not in done]
    with (
        Progress() as progress,
        ProcessPoolExecutor(max_workers=max(workers, 1), mp_context=_SPAWN, initializer=_init_worker) as pool,
    ):
        task = progress.add_task("synthetic plates", total=count, completed=count - len(todo))
        batch: list[tuple[str, str]] = []
        for name, text in pool.map(_write_one, todo, chunksize=64):
            batch.append((name, text))
            if len(batch) >= 256:
                append_labels(labels, batch)
                batch.clear()
            progress.advance(task)
        append_labels(labels, batch)
    return labels


def contact_sheet(
    images: list[np.ndarray], captions: list[str], columns: int = 6, cell: tuple[int, int] = (192, 64)
) -> np.ndarray:
    """A grid of crops resized to `cell` (w, h), each with its caption underneath; BGR uint8."""
    w, h = cell
    tiles = []
    for image, caption in zip(images, captions, strict=True):
        tile = np.full((h + 18, w, 3), 255, np.uint8)
        tile[:h] = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
        cv2.putText(tile, caption, (3, h + 14), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(tile)
    while len(tiles) % columns:
        tiles.append(np.full_like(tiles[0], 255))
    rows = [np.hstack(tiles[i : i + columns]) for i in range(0, len(tiles), columns)]
    return np.vstack(rows)


def preview(path: Path, seed: int = 0, count: int = 48) -> None:
    """Write a contact sheet of `count` samples of stream `seed` to `path` (PNG)."""
    samples = [synth_sample(seed, i) for i in range(count)]
    sheet = contact_sheet([s.image for s in samples], [s.text for s in samples])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)
