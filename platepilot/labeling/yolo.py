"""Plate crops from YOLO detection datasets, for labeling.

Layouts read (each with `data.yaml` optional):
- `DS/images/*.jpg` + `DS/labels/*.txt`
- `DS/images/<split>/*.jpg` + `DS/labels/<split>/*.txt` (ultralytics)
- `DS/<split>/images/*.jpg` + `DS/<split>/labels/*.txt` (Roboflow exports)
Label lines are `class cx cy w h` normalised to [0, 1]; polygon lines (`class x1 y1 x2 y2 ...`) are
boxed. A crop is written to `OUT/<dataset>/<split>/<image stem>_<box index>.jpg`: the name depends only
on the dataset folder's name, split, image and box, so reruns find their earlier crops and skip them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from platepilot.errors import PlatepilotError
from platepilot.images import IMAGE_SUFFIXES, natural_key, read_image

log = logging.getLogger(__name__)
_WARNED: set[Path] = set()  # data.yaml files whose splits were warned about

JPEG_QUALITY = 95
SPLIT_NAMES = ("train", "valid", "val", "test")


@dataclass(frozen=True, slots=True)
class YoloBox:
    class_id: int
    cx: float
    cy: float
    w: float
    h: float


@dataclass(frozen=True, slots=True)
class ExtractOptions:
    """`padding`: fraction of the box's width/height added on each side; boxes smaller than
    `min_width` x `min_height` pixels (before padding) are too small to read and skipped;
    `classes`: class names (from data.yaml) or ids to keep, None for every class."""

    padding: float = 0.1
    min_width: int = 32
    min_height: int = 10
    classes: tuple[str, ...] | None = None


@dataclass
class ExtractResult:
    written: list[Path]
    existing: int = 0
    too_small: int = 0
    other_class: int = 0
    images: int = 0
    unreadable: int = 0
    bad_lines: int = 0
    first_bad_line: str = ""  # `labels/x.txt:3` of the first malformed line


DATA_YAML_NAMES = ("data.yaml", "data.yml", "dataset.yaml")


def data_yaml(dataset: Path) -> tuple[Path, dict[str, Any]] | None:
    """The dataset's data.yaml and its mapping; None when there is none, PlatepilotError naming it when
    it is not a YAML mapping (a list, text that is not UTF-8, bad YAML)."""
    path = next((dataset / name for name in DATA_YAML_NAMES if (dataset / name).is_file()), None)
    if path is None:
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8-sig"))
    except UnicodeDecodeError:
        raise PlatepilotError(f"{path}: not UTF-8 text; save it as UTF-8") from None
    except yaml.YAMLError as exc:
        raise PlatepilotError(f"{path}: not valid YAML: {exc}") from None
    if data is not None and not isinstance(data, dict):
        raise PlatepilotError(
            f"{path}: a YOLO data.yaml is a mapping (path, train, val, names), not a {type(data).__name__}"
        )
    return path, data or {}


def class_names(dataset: Path) -> dict[int, str]:
    """data.yaml `names` (list or {id: name}) as {id: name}; empty when there is no data.yaml."""
    found = data_yaml(dataset)
    if found is None:
        return {}
    path, data = found
    names = data.get("names", {})
    if isinstance(names, list):
        return dict(enumerate(str(n) for n in names))
    if not isinstance(names, dict):
        return {}
    try:
        return {int(k): str(v) for k, v in names.items()}
    except (TypeError, ValueError):
        raise PlatepilotError(
            f"{path}: names must be a list or {{class id: name}} (e.g. {{0: plate}}), got {names!r}"
        ) from None


def split_folders(dataset: Path) -> dict[str, list[Path]]:
    """The image folders data.yaml names as `train` and `val` (each a folder or a list of them), found
    under the dataset folder (also without a leading `../`, as Roboflow writes them), else under its
    `path` (a copied dataset keeps the original's absolute `path`). Empty, so that every image under
    the dataset is read, without a data.yaml or when an entry is no folder here (a list file such as
    `train.txt`, or a path on the machine that made the dataset), the latter with a warning."""
    found = data_yaml(dataset)
    if found is None:
        return {}
    path, data = found
    base = dataset / str(data.get("path") or ".")
    splits = {}
    for key in ("train", "val"):  # `test` is for scoring a finished model, never for training
        entries = data.get(key) or []
        entries = entries if isinstance(entries, list) else [entries]
        folders = [_split_folder(str(entry), base, dataset) for entry in entries]
        if None in folders:
            if path not in _WARNED:  # the trainer lists its folders again every epoch
                _WARNED.add(path)
                log.warning("%s: %s: %s is no folder of images here; reading every image under %s", path, key,
                            entries[folders.index(None)], dataset)  # fmt: skip
            return {}
        if folders:
            splits[key] = [f for f in folders if f is not None]
    return splits


def _split_folder(entry: str, base: Path, dataset: Path) -> Path | None:
    for folder in (dataset / entry, dataset / entry.removeprefix("../"), base / entry):
        if folder.is_dir():
            return folder
    return None


def label_lines(label: Path) -> list[str]:
    """The lines of a YOLO label file; PlatepilotError naming it when it is not UTF-8 text."""
    try:
        return label.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError:
        raise PlatepilotError(f"{label}: not a UTF-8 text label file; save it as UTF-8") from None


def find_splits(dataset: Path) -> list[tuple[str, Path, Path]]:
    """(split name or "", images folder, labels folder) for every layout found; PlatepilotError if none."""
    if not dataset.is_dir():
        raise PlatepilotError(f"{dataset}: dataset folder not found")
    found = []
    images, labels = dataset / "images", dataset / "labels"
    if images.is_dir() and labels.is_dir():
        splits = [s for s in sorted(p.name for p in images.iterdir() if p.is_dir()) if (labels / s).is_dir()]
        found += [(s, images / s, labels / s) for s in splits]
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in images.iterdir()):
            found.append(("", images, labels))
    for split in SPLIT_NAMES:
        if (dataset / split / "images").is_dir() and (dataset / split / "labels").is_dir():
            found.append((split, dataset / split / "images", dataset / split / "labels"))
    if not found:
        raise PlatepilotError(
            f"{dataset}: no YOLO layout found (expected images/ + labels/, optionally with train/val/test)"
        )
    return found


LABEL_SLACK = 0.05  # how far outside 0-1 a coordinate may stray (a polygon point just past the edge)


def parse_label_line(line: str) -> YoloBox | None:
    """`class cx cy w h` (and a confidence after it, as pseudo-labelling tools write), or a polygon
    `class x1 y1 x2 y2 ...` -> YoloBox, coordinates fractions of the image (0-1); None for a malformed
    line, pixel coordinates included."""
    parts = line.split()
    try:
        class_id = int(float(parts[0]))
        values = [float(v) for v in parts[1:]]
    except (ValueError, IndexError):
        return None
    if any(not -LABEL_SLACK <= v <= 1 + LABEL_SLACK for v in values):
        return None  # pixels, not YOLO's 0-1 fractions of the image: clipped, the plate became a box of no size
    if len(values) in (4, 5):
        return YoloBox(class_id, *values[:4])
    if len(values) >= 6 and len(values) % 2 == 0:
        xs, ys = values[0::2], values[1::2]
        return YoloBox(class_id, (min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2, max(xs) - min(xs), max(ys) - min(ys))
    return None


def crop_box(image: np.ndarray, box: YoloBox, padding: float) -> tuple[np.ndarray, int, int]:
    """The padded crop (clipped to the image), and the unpadded box's width and height in pixels."""
    height, width = image.shape[:2]
    bw, bh = box.w * width, box.h * height
    x1, x2 = box.cx * width - bw / 2 - padding * bw, box.cx * width + bw / 2 + padding * bw
    y1, y2 = box.cy * height - bh / 2 - padding * bh, box.cy * height + bh / 2 + padding * bh
    left, top = max(0, round(x1)), max(0, round(y1))
    right, bottom = min(width, round(x2)), min(height, round(y2))
    return image[top:bottom, left:right], round(bw), round(bh)


def _pairs(images: Path, labels: Path) -> Iterator[tuple[Path, Path]]:
    for image in sorted(images.iterdir(), key=lambda p: natural_key(p.name)):
        if image.suffix.lower() in IMAGE_SUFFIXES and image.is_file():
            yield image, labels / f"{image.stem}.txt"


def _write_jpeg(path: Path, image: np.ndarray) -> None:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise PlatepilotError(f"{path}: JPEG encoding failed")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data.tobytes())
    os.replace(tmp, path)


SOURCE_FILE = ".dataset"
"""In each dataset's crop folder: the dataset it holds the crops of."""


def extract_crops(
    datasets: list[Path], out: Path, options: ExtractOptions | None = None, console: Console | None = None
) -> ExtractResult:
    """Crop every kept plate box of `datasets` into `out`; returns what was written and skipped."""
    opts = options or ExtractOptions()
    result = ExtractResult(written=[])
    jobs = []
    for dataset in datasets:
        names = class_names(dataset)
        keep = None if opts.classes is None else _class_ids(opts.classes, names, dataset)
        splits = find_splits(dataset)  # a missing or empty dataset fails before anything is written
        home = _dataset_folder(out, dataset)
        for split, images, labels in splits:
            folder = home / split if split else home
            jobs += [(image, label, folder, keep) for image, label in _pairs(images, labels)]
    columns = (TextColumn("extracting crops"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, disable=not jobs) as progress:
        task = progress.add_task("extract", total=len(jobs))
        for image_path, label_path, folder, keep in jobs:
            _extract_image(image_path, label_path, folder, keep, opts, result)
            progress.advance(task)
    return result


def _dataset_folder(out: Path, dataset: Path) -> Path:
    """`<out>/<dataset folder name>`, claimed for `dataset` (SOURCE_FILE names it): two datasets with the
    same folder name (`a/data`, `b/data`) would mix their crops, and the second's would be skipped as
    already there, so the second is refused with one line."""
    folder, source = out / dataset.resolve().name, str(dataset.resolve())
    marker = folder / SOURCE_FILE
    if marker.is_file():
        claimed = marker.read_text(encoding="utf-8").strip()
        if claimed != source:
            raise PlatepilotError(
                f"{folder} holds the crops of {claimed}, and {dataset} has the same folder name: "
                "extract it to another --out, or rename its folder"
            )
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(source + "\n", encoding="utf-8")
    return folder


def _extract_image(
    image_path: Path,
    label_path: Path,
    folder: Path,
    keep: set[int] | None,
    opts: ExtractOptions,
    result: ExtractResult,
) -> None:
    result.images += 1
    if not label_path.is_file():
        return  # an image without a label file has no plates (YOLO's convention for negatives)
    numbered = [(n, parse_label_line(line)) for n, line in enumerate(label_lines(label_path), 1) if line.strip()]
    bad = [n for n, box in numbered if box is None]
    if bad and not result.first_bad_line:
        result.first_bad_line = f"{label_path}:{bad[0]}"
    result.bad_lines += len(bad)
    boxes = [box for _, box in numbered]
    targets = []
    for index, box in enumerate(boxes):
        if box is None:
            continue
        if keep is not None and box.class_id not in keep:
            result.other_class += 1
            continue
        path = folder / f"{image_path.stem}_{index}.jpg"
        if path.exists():
            result.existing += 1
        else:
            targets.append((path, box))
    if not targets:
        return
    try:
        image = read_image(image_path)
    except PlatepilotError:
        result.unreadable += 1
        return
    for path, box in targets:
        crop, bw, bh = crop_box(image, box, opts.padding)
        if bw < opts.min_width or bh < opts.min_height or crop.size == 0:
            result.too_small += 1
            continue
        _write_jpeg(path, crop)
        result.written.append(path)


def _class_ids(wanted: tuple[str, ...], names: dict[int, str], dataset: Path) -> set[int]:
    ids = set()
    known = ", ".join(f"{i}={n}" for i, n in sorted(names.items())) or "none (no data.yaml)"
    for item in wanted:
        if item.isdigit():
            if names and int(item) not in names:  # a typo'd id wrote 0 crops and exited 0
                raise PlatepilotError(f"{dataset}: no class {item}; classes: {known}")
            ids.add(int(item))
            continue
        matches = [i for i, name in names.items() if name == item]
        if not matches:
            raise PlatepilotError(f"{dataset}: no class named {item!r}; classes: {known}")
        ids.update(matches)
    return ids
