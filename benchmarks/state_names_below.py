"""Where to read state names: accuracy and time for each `state.read_names_below` threshold.

    python benchmarks/state_names_below.py                # valid+test of us_plates_by_state
    python benchmarks/state_names_below.py --holdout      # the held-out training photos (pick a threshold here)

`--holdout` takes the photos the model's own training run held out: `is_holdout` hashes each photo's
path as the run spelled it, so the manifest path comes from the model's card (`training.data`, as
given to `state train`; run this from the folder the training ran in).

Every photo is classified once and its name read once (one thread each, timed per photo); each
threshold then keeps the name read only where the classifier's best state is less likely than the
threshold, exactly as `StateClassifier.classify` decides (`StateClassifier.unsure`), so all rows
come from the same reads. Time per plate = the classifier's + the name reads that threshold asks for.
Prints a table and writes benchmarks/results/state_names_below[_holdout].json.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from realdata import DEFAULT_DATA
from rich.console import Console
from rich.progress import track
from rich.table import Table

from platepilot.images import read_image
from platepilot.ocr.state import StateClassifier, StateGuess, with_name
from platepilot.ocr.state_eval import percent, share_of
from platepilot.ocr.state_name import StateNameReader
from platepilot.plates.state_manifest import StatePhoto, read_state_manifest
from platepilot.plates.states import FLORIDA, UNKNOWN
from platepilot.training.state.data import is_holdout

BY_STATE = DEFAULT_DATA / "us_plates_by_state" / "MANIFEST.tsv"
THRESHOLDS = (0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
RESULTS = Path(__file__).parent / "results" / "state_names_below.json"


def photos_of(manifest: Path, holdout: bool, classifier: StateClassifier) -> list[StatePhoto]:
    """valid+test rows, or the train rows the classifier's training run held out (the paths it saw)."""
    if holdout:
        trained_on = Path(classifier.card.training["data"])
        return [p for p in read_state_manifest(trained_on, {"train"}) if is_holdout(p)]
    return list(read_state_manifest(manifest, {"valid", "test"}))


def row(
    threshold: float, classifier: StateClassifier, guesses: list[StateGuess], named: list[tuple[str, float] | None],
    name_ms: list[float], classifier_ms: float, truth: list[str],
) -> dict[str, float]:  # fmt: skip
    classifier.names_below = threshold
    asked = [classifier.unsure(g.confidence) for g in guesses]
    final = [with_name(g, n) if a and n is not None else g for g, n, a in zip(guesses, named, asked, strict=True)]
    said_fl = [f.state == FLORIDA for f in final]
    hits = sum(s and t == FLORIDA for s, t in zip(said_fl, truth, strict=True))
    return {
        "read_names_below": threshold,
        "share_read": float(np.mean(asked)),
        "top1": float(np.mean([bool(f.top) and f.top[0][0] == t for f, t in zip(final, truth, strict=True)])),
        "top3": float(np.mean([t in [s for s, _ in f.top[:3]] for f, t in zip(final, truth, strict=True)])),
        "florida_precision": share_of(hits, sum(said_fl)),
        "florida_recall": share_of(hits, truth.count(FLORIDA)),
        "unknown_rate": float(np.mean([f.state == UNKNOWN for f in final])),
        "ms_per_plate": classifier_ms + sum(m for m, a in zip(name_ms, asked, strict=True) if a) / len(guesses),
    }


def main(
    manifest: Annotated[Path, typer.Option(help="State manifest.")] = BY_STATE,
    holdout: Annotated[bool, typer.Option(help="Score the held-out training photos instead of valid+test.")] = False,
    model: Annotated[Path | None, typer.Option(help="State classifier ONNX (default: the bundled one).")] = None,
) -> None:
    console = Console()
    if not manifest.is_file():
        console.print(f"no state manifest at {manifest}: nothing to measure (set PLATEPILOT_REAL_DATA)")
        return
    classifier = StateClassifier(model, threads=1)
    photos = photos_of(manifest, holdout, classifier)
    images = [read_image(p.image) for p in track(photos, "reading photos", transient=True)]
    truth = [p.state for p in photos]
    started = time.perf_counter()
    guesses = classifier.classify(images)
    classifier_ms = 1e3 * (time.perf_counter() - started) / len(images)
    reader = StateNameReader(threads=1)
    named, name_ms = [], []
    for image, guess in track(list(zip(images, guesses, strict=True)), "reading state names", transient=True):
        started = time.perf_counter()
        named.append(reader.read(image, dict(guess.top)))
        name_ms.append(1e3 * (time.perf_counter() - started))
    rows = [row(t, classifier, guesses, named, name_ms, classifier_ms, truth) for t in THRESHOLDS]
    table = Table(title=f"{len(photos)} {'held-out training' if holdout else 'valid+test'} photos: names read below")
    for column in ("read_names_below", "names read", "top-1", "top-3", "FL precision", "FL recall", "unknown",
                   "ms/plate"):  # fmt: skip
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(f"{r['read_names_below']:.1f}", f"{r['share_read']:.0%}", f"{r['top1']:.1%}", f"{r['top3']:.1%}",
                      percent(r["florida_precision"]), percent(r["florida_recall"]), f"{r['unknown_rate']:.1%}",
                      f"{r['ms_per_plate']:.1f}")  # fmt: skip
    console.print(table)
    out = RESULTS.with_name("state_names_below_holdout.json") if holdout else RESULTS
    out.parent.mkdir(parents=True, exist_ok=True)
    payload = {"photos": len(photos), "florida_photos": truth.count(FLORIDA), "model": str(classifier.model_path),
               "name_ms_median": float(np.median(name_ms)), "rows": rows}  # fmt: skip
    out.write_text(json.dumps(payload, indent=2) + "\n")
    console.print(f"written to {out}")


if __name__ == "__main__":
    typer.run(main)
