"""Synthetic datasets on disk: plate crops with their labels.txt (`platepilot synth plates`) and YOLO scenes
(`platepilot synth scenes`), written atomically and resumable, with PNG previews. The renderers live in
`plates/` (which knows plates, not storage); this module writes what they render. Torch-free.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from rich.progress import Progress

from platepilot.errors import PlatepilotError
from platepilot.imagegrid import contact_sheet, grid, save_picture
from platepilot.plates.scenes import Scene, render_scene, scene_size
from platepilot.plates.synth import synth_sample
from platepilot.store.labels import append_labels

PLATE_JPEG_QUALITY = 95
SCENE_JPEG_QUALITY = 90

# Spawn, not fork: a process whose OpenCV thread pool has already run (any earlier blur or warp big
# enough to go parallel) hangs forked children inside cv2 calls.
_SPAWN = multiprocessing.get_context("spawn")


def _init_worker() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads only contend


def _write_one(args: tuple[int, int, str]) -> tuple[str, str]:
    seed, index, out = args
    sample = synth_sample(seed, index)
    name = f"{index:07d}.jpg"
    path = Path(out) / name
    tmp = path.with_suffix(".tmp.jpg")
    cv2.imwrite(str(tmp), sample.image, [cv2.IMWRITE_JPEG_QUALITY, PLATE_JPEG_QUALITY])
    os.replace(tmp, path)
    return name, sample.text


STREAM_FILE = ".synth.json"
"""In a folder of synthetic data: which stream its files are (kind, seed, real plates), so a rerun goes
on with the same stream or is refused, never mixing two."""


def claim_stream(out: Path, stream: dict[str, Any], also: dict[str, Any] | None = None) -> None:
    """Mark `out` as holding `stream`, or PlatepilotError when it holds another (a rerun with another seed
    or other real plates would mix its files with the first run's under the same names); `also`: how an
    older platepilot marked the same stream."""
    marker = out / STREAM_FILE
    if marker.is_file():
        held = json.loads(marker.read_text(encoding="utf-8"))
        if also is not None and held == also:  # marked the older way: marked anew, so any spelling resumes
            _write_atomic(marker, json.dumps(stream).encode())
            return
        if held.get("kind") != stream.get("kind"):
            raise PlatepilotError(
                f"{out} holds synthetic {held.get('kind')}, not {stream.get('kind')}: use another output folder"
            )
        if held.get("seed") != stream.get("seed"):
            raise PlatepilotError(
                f"{out} holds synthetic {held.get('kind')} of seed {held.get('seed')}; seed {stream.get('seed')} "
                "needs another output folder (or the same seed to go on)"
            )
        if held != stream:
            raise PlatepilotError(
                f"{out} holds synthetic {held.get('kind')} of seed {held.get('seed')} with other real plates: "
                "give the same real plates to go on, or use another output folder"
            )
        return
    if out.is_dir() and any(out.iterdir()) and not _unmarked_synthetic(out, str(stream.get("kind"))):
        raise PlatepilotError(f"{out} is not empty and holds no synthetic data: use a new or empty output folder")
    out.mkdir(parents=True, exist_ok=True)
    _write_atomic(marker, json.dumps(stream).encode())


def _unmarked_synthetic(out: Path, kind: str) -> bool:
    """Whether `out` holds only what `synth <kind>` wrote before folders were marked (2026-12-07):
    plates are `NNNNNNN.jpg` and labels.txt, scenes data.yaml, images/ and labels/."""
    names = {p.name for p in out.iterdir()}
    ours = re.compile(r"\d{7}\.jpg")
    if kind == "scenes":  # a user's YOLO dataset has the same folders: its data.yaml and names tell
        data = out / "data.yaml"
        written = yaml.safe_load(data.read_text()) if data.is_file() else {}
        images = out / "images"
        return (
            names <= {"data.yaml", "images", "labels"}
            and isinstance(written, dict) and written.get("names") == {0: "plate"} and written.get("train") == "images"
            and (not images.is_dir() or all(ours.fullmatch(p.name) for p in images.iterdir()))
        )  # fmt: skip
    if not all(n == "labels.txt" or ours.fullmatch(n) for n in names):
        return False
    labels = out / "labels.txt"  # a user's labels.txt names crops elsewhere
    return not labels.is_file() or all(ours.fullmatch(line.split("\t")[0]) for line in labels.read_text().splitlines())


def write_plates(out: Path, count: int, seed: int = 0, workers: int = 1) -> Path:
    """Write `out/<index>.jpg` and `out/labels.txt`; resumable: crops already labelled are skipped."""
    claim_stream(out, {"kind": "plates", "seed": seed})
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


def preview_plates(path: Path, seed: int = 0, count: int = 48) -> None:
    """Write a contact sheet of `count` samples of stream `seed` to `path` (PNG)."""
    samples = [synth_sample(seed, i) for i in range(count)]
    save_picture(path, contact_sheet([s.image for s in samples], [s.text for s in samples]))


def yolo_lines(scene: Scene) -> str:
    """The scene's plates as YOLO label text: `0 cx cy w h` per line, normalised, 6 decimals."""
    height, width = scene.image.shape[:2]
    lines = []
    for x1, y1, x2, y2 in scene.boxes_xyxy:
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        lines.append(f"0 {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}\n")
    return "".join(lines)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _write_scene(args: tuple[int, int, str, tuple[str, ...]]) -> int:
    seed, index, out, real_plates = args
    scene = render_scene(seed, index, scene_size(seed, index), real_plates)
    ok, jpg = cv2.imencode(".jpg", scene.image, [cv2.IMWRITE_JPEG_QUALITY, SCENE_JPEG_QUALITY])
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for scene {index}")
    name = f"{index:07d}"
    _write_atomic(Path(out) / "images" / f"{name}.jpg", jpg.tobytes())
    _write_atomic(Path(out) / "labels" / f"{name}.txt", yolo_lines(scene).encode())  # last: marks done
    return len(scene.boxes_xyxy)


def _digest(paths: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]


def write_scenes(out: Path, count: int, seed: int = 0, workers: int = 1, real_plates: Sequence[str] = ()) -> Path:
    """Write the YOLO dataset `out/{images,labels}/<index>.{jpg,txt}` + `out/data.yaml`; return data.yaml.
    Scenes are 1280x720 or 640x480 (`scene_size`); `real_plates` as in `render_scene`.

    Resumable: scenes whose label file exists are skipped (the label is written after its image).
    """
    photos = tuple(real_plates)
    stream = {"kind": "scenes", "seed": seed, "real_plates": len(photos)}
    # the photos themselves, however their folder was spelled (`plates`, `./plates`, `/abs/plates`); before
    # 2026-12-08 the paths as given were hashed
    resolved, given = (_digest(str(Path(p).resolve()) for p in photos), _digest(photos))
    claim_stream(out, {**stream, "real_plates_sha256": resolved}, also={**stream, "real_plates_sha256": given})
    (out / "images").mkdir(parents=True, exist_ok=True)
    (out / "labels").mkdir(parents=True, exist_ok=True)
    data = {"path": str(out.resolve()), "train": "images", "val": "images", "names": {0: "plate"}}
    data_yaml = out / "data.yaml"
    _write_atomic(data_yaml, yaml.safe_dump(data, sort_keys=False).encode())
    todo = [(seed, i, str(out), photos) for i in range(count) if not (out / "labels" / f"{i:07d}.txt").exists()]
    with (
        ProcessPoolExecutor(max_workers=max(workers, 1), mp_context=_SPAWN, initializer=_init_worker) as pool,
        Progress() as progress,
    ):
        task = progress.add_task("synthetic scenes", total=count, completed=count - len(todo))
        for _ in pool.map(_write_scene, todo, chunksize=4):
            progress.advance(task)
    return data_yaml


def scene_sheet(scenes: list[Scene], columns: int = 3, cell_width: int = 426) -> np.ndarray:
    """A grid of scenes downscaled to `cell_width`, plates boxed green, distractors red; BGR uint8."""
    tiles = []
    for scene in scenes:
        height, width = scene.image.shape[:2]
        scale = cell_width / width
        tile = cv2.resize(scene.image, (cell_width, round(height * scale)), interpolation=cv2.INTER_AREA)
        for boxes, color in ((scene.distractor_boxes, (0, 0, 255)), (scene.boxes_xyxy, (0, 255, 0))):
            for x1, y1, x2, y2 in boxes:
                p1, p2 = (int(x1 * scale), int(y1 * scale)), (int(x2 * scale), int(y2 * scale))
                cv2.rectangle(tile, p1, p2, color, 1)
        tiles.append(tile)
    return grid(tiles, columns, fill=0)


def preview_scenes(path: Path, seed: int = 0, count: int = 6, real_plates: Sequence[str] = ()) -> None:
    """Write a PNG grid of the first `count` scenes of stream `seed` with their boxes drawn."""
    save_picture(path, scene_sheet([render_scene(seed, i, real_plates=real_plates) for i in range(count)]))
