"""How the cascade's threshold (`ocr.cascade_sure`) trades reads for PlateOCR's time, on labelled crops.

    python benchmarks/cascade_sweep.py [--labels labels.txt ...] [--sure 0.99 --sure 0.999 ...] [--data ...]

Reads every crop of each labels file once with the CRNN alone and once with PlateOCR (as the cascade
builds them), then replays both for each threshold: a CRNN read at least that confident is kept, the
rest take PlateOCR's read. For each it gives the share read right (folded, the label errata applied, as
`platepilot eval --labels` scores) and the share of crops sent on to PlateOCR, next to PlateOCR alone.
Default: every labels.txt under the real data folder. Prints a table and writes
benchmarks/results/cascade_sweep.json. Pick the threshold on labels of your own cameras.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from realdata import DEFAULT_DATA, ROOT, fail, label_sets
from rich.console import Console
from rich.table import Table

from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.ocr.cascade import CascadeOCR
from platepilot.ocr.evaluate import evaluate
from platepilot.ocr.lines import PixelKey, pixel_key
from platepilot.ocr.models import make_engine
from platepilot.types import PlateRead

DEFAULT_SURE = (0.0, 0.9, 0.95, 0.99, 0.995, 0.999, 0.9999)


class _Replay:
    """An engine that hands back the reads recorded for each crop (by its pixels)."""

    def __init__(self, name: str, reads: dict[PixelKey, PlateRead]) -> None:
        self.name = name
        self.reads = reads

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        return [self.reads[pixel_key(image)] for image in images]

    def warmup(self, iterations: int = 1) -> None:
        pass


class _Recorder:
    """Reads with both stages of `cascade` and remembers each stage's read of every crop."""

    name = "record"

    def __init__(self, cascade: CascadeOCR) -> None:
        self.cascade = cascade
        self.first: dict[PixelKey, PlateRead] = {}
        self.then: dict[PixelKey, PlateRead] = {}

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        first, then = self.cascade.first.read(images), self.cascade.then.read(images)
        for image, a, b in zip(images, first, then, strict=True):
            self.first[pixel_key(image)], self.then[pixel_key(image)] = a, b
        return then

    def warmup(self, iterations: int = 1) -> None:
        self.cascade.warmup(iterations)


def sweep(labels: Path, cascade: CascadeOCR, thresholds: Sequence[float]) -> list[dict[str, float | str]]:
    """One row per threshold (and one for PlateOCR alone) on the crops of `labels`."""
    recorder = _Recorder(cascade)
    alone = evaluate(recorder, labels).scores
    rows: list[dict[str, float | str]] = [{"sure": "plateocr", "read_folded": alone.exact_folded, "sent": 1.0}]
    then = _Replay("plateocr", recorder.then)
    for sure in thresholds:
        replayed = CascadeOCR(_Replay("crnn", recorder.first), then, sure)
        sent = [not r.text or r.confidence < sure for r in recorder.first.values()]
        scores = evaluate(replayed, labels).scores
        rows.append({"sure": sure, "read_folded": scores.exact_folded, "sent": float(np.mean(sent))})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--labels", type=Path, action="append", default=None, help="labels.txt; repeatable")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="without --labels: every labels.txt here")
    parser.add_argument("--sure", type=float, action="append", default=None, help="a threshold; repeatable")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "cascade_sweep.json")
    args = parser.parse_args()
    console = Console()
    sets = args.labels or label_sets(args.data, console)
    thresholds = args.sure or list(DEFAULT_SURE)
    engine = make_engine("cascade", None, Settings())
    assert isinstance(engine, CascadeOCR)
    table = Table(title="the cascade's threshold: read (folded) / share of crops sent to PlateOCR")
    table.add_column("ocr.cascade_sure", justify="right")
    results = {}
    for labels in sets:
        try:
            with console.status(f"reading {labels} with the CRNN and with PlateOCR"):
                results[str(labels)] = sweep(labels, engine, thresholds)
        except PlatepilotError as exc:
            fail(exc)
        table.add_column(labels.parent.name, justify="right")
    for i, row in enumerate(next(iter(results.values()), [])):
        cells = [f"{r[i]['read_folded']:.1%} / {r[i]['sent']:.0%}" for r in results.values()]
        table.add_row(str(row["sure"]), *cells)
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"thresholds": thresholds, "results": results}, indent=2) + "\n")
    console.print(f"written {args.out}")


if __name__ == "__main__":
    main()
