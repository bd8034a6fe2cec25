"""PlateOCR against each of its members alone on the real dev sets, side by side, in one run.

    python benchmarks/plateocr.py [--data ../shared/data/real] [--configs paddle,easyocr,crnn,...]
    python benchmarks/plateocr.py --threads     # also: lock-free sharing vs a lock vs per-thread copies

Each configuration is `+`-joined members: one member alone is that engine as `--engine` builds it
(with the plate-line finder), several are the PlateOCR ensemble of them; `paddle-whole` is PP-OCRv6
on the whole crop, no line finding (the reference the issue quotes). Reads every `labels.txt`
under the data folder (real, human-labelled US plates; never shipped with the project). Prints a
table (exact, O/I-folded exact, folded CER, ms per plate) and writes benchmarks/results/plateocr.json.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from realdata import DEFAULT_DATA, ROOT, label_sets, one_line_errors
from rich.console import Console
from rich.table import Table

from platepilot.config import OCRConfig, Settings
from platepilot.images import read_image
from platepilot.ocr.base import OCREngine
from platepilot.ocr.evaluate import evaluate
from platepilot.ocr.models import make_engine
from platepilot.ocr.paddle import PaddleRecognizer
from platepilot.ocr.plate_ocr import MODEL_THREADS
from platepilot.store.labels import latest_labels, resolve_crop_path
from platepilot.types import PlateRead

DEFAULT_CONFIGS = "paddle-whole,paddle,easyocr,crnn,paddle+easyocr,paddle+crnn,paddle+easyocr+crnn"


def build(config: str) -> OCREngine:
    """`paddle-whole` is PP-OCRv6 on the whole crop (the issue's reference), else members joined by `+`."""
    if config == "paddle-whole":
        return PaddleRecognizer(lines=None, threads=MODEL_THREADS)
    members = tuple(config.split("+"))
    if len(members) == 1:
        return make_engine(members[0], None, Settings())
    settings = Settings(ocr=OCRConfig(plateocr_members=members))  # type: ignore[arg-type]
    return make_engine("plateocr", None, settings)


def measure_threads(config: str, images: list[np.ndarray], console: Console) -> dict[str, float]:
    """ms per plate reading `images` from 4 threads: one engine shared as is, one engine under a lock,
    and one engine per thread (built on first use in each thread; build time excluded)."""
    engine = build(config)
    engine.warmup()
    lock = threading.Lock()

    def locked(image: np.ndarray) -> PlateRead:
        with lock:
            return engine.read([image])[0]

    local = threading.local()
    engines = [engine]

    def per_thread(image: np.ndarray) -> PlateRead:
        if not hasattr(local, "engine"):
            local.engine = build(config)
            local.engine.warmup()
            engines.append(local.engine)
        return local.engine.read([image])[0]

    ways: dict[str, Callable[[np.ndarray], PlateRead]] = {
        "shared": lambda image: engine.read([image])[0],
        "lock": locked,
        "per_thread": per_thread,
    }
    out = {}
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(per_thread, images[:8]))  # build the per-thread copies outside the timing
        for name, read in ways.items():
            for each in engines:  # each way finds the lines itself: none is handed the last way's
                finder = getattr(each, "line_finder", None)
                if finder is not None:
                    finder.forget()
            start = time.perf_counter()
            list(pool.map(read, images))
            out[name] = 1000 * (time.perf_counter() - start) / len(images)
            console.print(f"{config}, 4 threads, {name}: {out[name]:.1f} ms/plate")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--configs", default=DEFAULT_CONFIGS)
    parser.add_argument("--threads", action="store_true", help="also time 4 threads three ways")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "plateocr.json")
    args = parser.parse_args()
    console = Console()
    sets = label_sets(args.data, console)
    if not sets:
        return
    engines = {config: build(config) for config in args.configs.split(",")}
    for engine in engines.values():
        engine.warmup(3)
    table = Table(title="real plates: PlateOCR and its members (ms per plate on this machine, 1 thread)")
    for column in ("set", "engine", "n", "exact", "exact folded", "CER folded", "ms/plate"):
        table.add_column(column, justify="right")
    results = []
    for labels in sets:
        for config, engine in engines.items():
            r = evaluate(engine, labels, model=config)
            s = r.scores
            ms = 1000 / max(r.plates_per_s, 1e-9)
            results.append({"set": labels.parent.name, "engine": config, **r.to_json(), "ms_per_plate": round(ms, 2)})
            console.print(f"{labels.parent.name} {config}: {s.exact_folded:.1%} folded exact, {ms:.1f} ms/plate")
            table.add_row(
                labels.parent.name, config, str(s.n), f"{s.exact:.1%}", f"{s.exact_folded:.1%}",
                f"{s.cer_folded:.3f}", f"{ms:.1f}",
            )  # fmt: skip
    console.print(table)
    report: dict[str, object] = {"results": results}
    if args.threads:
        default = "+".join(Settings().ocr.plateocr_members)
        images = [read_image(resolve_crop_path(path, sets[-1])) for path in list(latest_labels(sets[-1]))[:64]]
        report["threads_ms_per_plate"] = {default: measure_threads(default, images, console)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    console.print(f"written {args.out}")


if __name__ == "__main__":
    one_line_errors(main)()
