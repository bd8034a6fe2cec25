"""The dev sets as real cameras spoil them: rotated crops and photos, dusky and hazy photos, read end to end.

    python benchmarks/perturbed.py --labels UCSD/labels.txt --labels SEG/labels.txt --scenes UCSD/MANIFEST.tsv
        [--states STATES/MANIFEST.tsv [--split valid --split test]] [--config platepilot.yaml] [--out JSON]

Each set is copied into a temporary folder changed one way at a time, and `platepilot eval` (the default
reader and detector, or the config's) scores the copy as a user would, in a subprocess:

- crops rotated 8, 15 and -10 degrees about their centres (on a replicated border 15% of their longer
  side, then cut to the rotated crop's bounds): a rolled camera or a plate seen at an angle;
- photos rotated 10 degrees (their plate boxes' rotated bounds become the labels);
- photos at dusk (gamma 2, half the light, sensor noise) and in haze (a third of the contrast);
- state photos (`--states`, the rows of `--split`, default valid and test) as they are, at dusk and in haze,
  scored by `platepilot eval --states` (top-1, top-3, named right, Florida precision and recall).

The copies "as they are" go through the same rewrite (a JPEG at quality 95), so each set's first row is its
baseline; files keep their names, so a KNOWN_LABEL_ERRORS.tsv beside a set still applies. Prints a table
(folded exact for crops, read end to end folded for photos) and writes benchmarks/results/perturbed.json.
docs/plateocr.md (levelled lines), docs/runtime.md (flat frames) and docs/states.md (flat crops) quote it.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from realdata import in_temp_folder, keep_errata
from rich.console import Console
from rich.table import Table

from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.ocr.state_eval import percent
from platepilot.plates.state_manifest import read_state_manifest

RESULTS = Path(__file__).parent / "results" / "perturbed.json"
CROP_ANGLES = (0.0, 8.0, 15.0, -10.0)
SCENE_CHANGES = ("as they are", "rotated 10", "dusk", "haze")
STATE_CHANGES = ("as they are", "dusk", "haze")
Change = Callable[[np.ndarray], np.ndarray]


def rotated_crop(image: np.ndarray, angle: float) -> np.ndarray:
    """A crop rotated `angle` degrees about its centre and cut to the rotated crop's bounds."""
    height, width = image.shape[:2]
    pad = int(0.15 * max(height, width))
    big = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    matrix = cv2.getRotationMatrix2D((big.shape[1] / 2, big.shape[0] / 2), angle, 1.0)
    turned = cv2.warpAffine(big, matrix, big.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    corners = np.array([[pad, pad], [pad + width, pad], [pad + width, pad + height], [pad, pad + height]], np.float32)
    moved = cv2.transform(corners[None], matrix)[0]
    (x1, y1), (x2, y2) = np.maximum(moved.min(0).astype(int), 0), moved.max(0).astype(int) + 1
    return turned[y1:y2, x1:x2]


def dusk(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    light = (image.astype(np.float32) / 255) ** 2.0 * 0.5 + rng.normal(0, 0.02, image.shape)
    return np.clip(light * 255, 0, 255).astype(np.uint8)


def haze(image: np.ndarray) -> np.ndarray:
    return np.clip(127.5 + (image.astype(np.float32) - 127.5) * 0.35, 0, 255).astype(np.uint8)


def inside(folder: Path, rel: str, index: int) -> Path:
    """Where the copy of the file a set lists as `rel` goes: the same relative path under `folder`, or for
    an absolute path or one that climbs out, `<index>_<name>` (never outside `folder`)."""
    path = Path(rel)
    return folder / (path if not path.is_absolute() and ".." not in path.parts else f"{index:05d}_{path.name}")


def write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    jpeg = [cv2.IMWRITE_JPEG_QUALITY, 95] if path.suffix.lower() in (".jpg", ".jpeg") else []
    if not cv2.imwrite(str(path), image, jpeg):
        raise PlatepilotError(f"{path}: cannot write the changed copy")


def crop_copy(labels: Path, angle: float, folder: Path) -> Path:
    """labels.txt's crops rotated by `angle`, with their labels, under `folder`; the new labels.txt."""
    lines = []
    for line in labels.read_text().splitlines():
        rel, _, text = line.partition("\t")
        if not text:
            continue
        copy = inside(folder, rel, len(lines))
        write(copy, rotated_crop(read_image(labels.parent / rel), angle))
        lines.append(f"{copy.relative_to(folder)}\t{text}")
    (folder / "labels.txt").write_text("\n".join(lines) + "\n")
    keep_errata(labels.parent, folder)
    return folder / "labels.txt"


def spoiled(image: np.ndarray, change: str, rng: np.random.Generator) -> np.ndarray:
    """`image` at dusk or in haze (`change`), else as it is."""
    if change == "dusk":
        return dusk(image, rng)
    return haze(image) if change == "haze" else image


def state_copy(manifest: Path, change: str, splits: list[str], folder: Path) -> Path:
    """The state manifest's photos of `splits` changed by `change` (STATE_CHANGES), under `folder`; the new
    manifest."""
    rng = np.random.default_rng(0)
    rows = ["image_relpath\tstate\tsplit"]
    for index, photo in enumerate(read_state_manifest(manifest, set(splits))):
        rel = str(photo.image.relative_to(manifest.parent))
        copy = inside(folder, rel, index)
        write(copy, spoiled(read_image(photo.image), change, rng))
        rows.append(f"{copy.relative_to(folder)}\t{photo.state}\t{photo.split}")
    (folder / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    return folder / "MANIFEST.tsv"


def scene_copy(manifest: Path, change: str, folder: Path) -> Path:
    """MANIFEST.tsv's photos changed by `change` (SCENE_CHANGES), under `folder`; the new manifest."""
    rng = np.random.default_rng(0)
    header, *rows = manifest.read_text().splitlines()
    columns = header.split("\t")
    out = ["\t".join(columns[:6])]
    for index, row in enumerate(rows):
        cells = row.split("\t")
        image = read_image(manifest.parent / cells[0])
        height, width = image.shape[:2]
        matrix = cv2.getRotationMatrix2D((width / 2, height / 2), 10.0 if change == "rotated 10" else 0.0, 1.0)
        if change == "rotated 10":
            image = cv2.warpAffine(image, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
        image = spoiled(image, change, rng)
        copy = inside(folder, cells[0], index)
        write(copy, image)
        cells[0] = str(copy.relative_to(folder))
        if len(cells) < 6 or not cells[1]:
            out.append("\t".join([cells[0], "", "", "", "", ""]))
            continue
        x, y, w, h = (float(v) for v in cells[1:5])
        corners = np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h]], np.float32)
        moved = cv2.transform(corners[None], matrix)[0]
        (x1, y1), (x2, y2) = moved.min(0), moved.max(0)
        out.append("\t".join([cells[0], f"{x1:.1f}", f"{y1:.1f}", f"{x2 - x1:.1f}", f"{y2 - y1:.1f}", cells[5]]))
    (folder / "MANIFEST.tsv").write_text("\n".join(out) + "\n")
    keep_errata(manifest.parent, folder)
    return folder / "MANIFEST.tsv"


def evaluate(flag: str, path: Path, config: Path | None) -> dict[str, Any]:
    """`platepilot eval <flag> <path> --json` in a subprocess, as a user runs it."""
    command = [sys.executable, "-m", "platepilot.cli", "eval", flag, str(path), "--json"]
    done = subprocess.run([*command, *(["--config", str(config)] if config else [])], capture_output=True, text=True)
    if done.returncode != 0:
        raise PlatepilotError(f"eval {flag} {path}: {done.stderr.strip().splitlines()[-1:]}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def measure(args: argparse.Namespace, folder: Path, console: Console) -> list[dict[str, Any]]:
    rows = []
    for labels in args.labels:
        for angle in CROP_ANGLES:
            with console.status(f"{labels.parent.name}: crops rotated {angle:g}"):
                copy = crop_copy(labels, angle, folder / labels.parent.name / f"{angle:g}")
                score = evaluate("--labels", copy, args.config)
            rows.append({"set": labels.parent.name, "change": f"rotated {angle:g}", "n": score["n"],
                         "exact": score["exact"], "folded": score["exact_folded"]})  # fmt: skip
    for manifest in args.scenes:
        for change in SCENE_CHANGES:
            with console.status(f"{manifest.parent.name}: photos {change}"):
                copy = scene_copy(manifest, change, folder / f"{manifest.parent.name}-scenes" / change)
                score = evaluate("--scenes", copy, args.config)
            rows.append({"set": f"{manifest.parent.name} photos", "change": change, "n": score["n"],
                         "recall": score["recall"], "exact": score["read_e2e"],
                         "folded": score["read_e2e_folded"]})  # fmt: skip
    for manifest in args.states:
        for change in STATE_CHANGES:
            with console.status(f"{manifest.parent.name}: state photos {change}"):
                copy = state_copy(manifest, change, args.split, folder / f"{manifest.parent.name}-states" / change)
                score = evaluate("--states", copy, args.config)
            rows.append({"set": f"{manifest.parent.name} states", "change": change, "n": score["n"],
                         "top1": score["top1"], "top3": score["top3"], "named_right": score["named_right"],
                         "florida": (score["florida_precision"], score["florida_recall"])})  # fmt: skip
    return rows


def titled(title: str, *numbers: str) -> Table:
    """An empty table of `title`: the set and its change, then the `numbers` columns."""
    out = Table(title=title)
    for column in ("set", "change", *numbers):
        out.add_column(column, justify="left" if column in ("set", "change") else "right")
    return out


def table(rows: list[dict[str, Any]]) -> Table:
    out = titled("The dev sets as cameras spoil them (default reader and detector)", "n", "found", "read", "folded")
    for row in rows:
        if "exact" in row:
            found = f"{row['recall']:.1%}" if "recall" in row else "-"
            out.add_row(row["set"], row["change"], str(row["n"]), found, f"{row['exact']:.1%}", f"{row['folded']:.1%}")
    return out


def state_table(rows: list[dict[str, Any]]) -> Table:
    title = "State photos as cameras spoil them (the default classifier, names read where unsure)"
    out = titled(title, "n", "top-1", "top-3", "named right", "Florida P / R")
    for row in rows:
        if "top1" in row:
            precision, recall = row["florida"]
            out.add_row(row["set"], row["change"], str(row["n"]), f"{row['top1']:.1%}", f"{row['top3']:.1%}",
                        f"{row['named_right']:.1%}", f"{percent(precision, 0)} / {percent(recall, 0)}")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", type=Path, action="append", default=[], help="labels.txt of crops; repeatable")
    parser.add_argument("--scenes", type=Path, action="append", default=[], help="MANIFEST.tsv of photos; repeatable")
    parser.add_argument(
        "--states", type=Path, action="append", default=[], help="state MANIFEST.tsv (image_relpath, state, split)"
    )
    parser.add_argument(
        "--split", action="append", default=None, help="with --states: the splits scored (default: valid and test)"
    )
    parser.add_argument("--config", type=Path, default=None, help="a platepilot.yaml for every eval")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON to write (default: %(default)s)")
    args = parser.parse_args()
    if not args.labels and not args.scenes and not args.states:
        parser.error("give at least one --labels, --scenes or --states")
    args.split = args.split or ["valid", "test"]
    console = Console(width=max(Console().width, 100))
    rows = in_temp_folder("perturbed_", lambda folder: measure(args, folder, console))
    for shown in (table(rows), state_table(rows)):
        if shown.row_count:
            console.print(shown)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"config": str(args.config or ""), "results": rows}, indent=2) + "\n")
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
