"""The state classifier on real photos: top-1, top-3, Florida vs not, speed; and what the state-aware
format prior does to plate reads.

- `us_plates_by_state` valid+test (560 photos, never trained on): `platepilot eval --states` numbers
  (platepilot/ocr/state_eval.py), and ms per plate at batch 64;
- `openalpr_seg_ocr_us` crops (region = state; 11 Florida): the same, Florida vs not is what matters;
- reads of the seg_ocr crops by `--engine` (default crnn), exact and O/0 I/1 folded, with the reader's
  own format prior and then with each crop's state applied (`ocr.state.with_state`: Florida's formats
  for FL, the generic US ones otherwise).
Prints tables and writes benchmarks/results/state_eval.json; exits 0 saying so when the data is absent.
With --read-names the state name read on each plate (state.read_names) overrides the classifier,
and the results go to benchmarks/results/state_eval_names.json (no format-prior part).
With --names-below (default: `state.read_names_below`, 0.8) names are read only where the classifier's
best state is less likely than that; 1 reads every plate.
Usage: python benchmarks/state_eval.py [--model plate_state.onnx] [--engine crnn] [--read-names [--names-below 0.8]]
       [--threads 1]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from realdata import DEFAULT_DATA, one_line_errors
from rich.console import Console
from rich.table import Table

from platepilot.config import Settings, StateConfig
from platepilot.images import read_image
from platepilot.ocr.models import make_engine
from platepilot.ocr.state import StateClassifier, state_classifier, with_state
from platepilot.ocr.state_eval import evaluate_states, percent
from platepilot.plates.charset import fold
from platepilot.plates.state_manifest import read_state_manifest
from platepilot.store.labels import read_labels

BY_STATE = DEFAULT_DATA / "us_plates_by_state" / "MANIFEST.tsv"
SEG_OCR = DEFAULT_DATA / "openalpr_seg_ocr_us"
RESULTS = Path(__file__).parent / "results" / "state_eval.json"


def state_rows(classifier: StateClassifier, console: Console) -> dict[str, dict[str, Any]]:
    sets = {
        "us_plates_by_state valid+test": (BY_STATE, {"valid", "test"}),
        "seg_ocr crops": (SEG_OCR / "crops.tsv", None),
    }
    rows = {}
    for name, (manifest, splits) in sets.items():
        if manifest.is_file():
            rows[name] = evaluate_states(read_state_manifest(manifest, splits), classifier, console).to_json()
    return rows


def prior_rows(classifier: StateClassifier, engine_name: str, console: Console) -> dict[str, Any]:
    """Exact / folded reads of the seg_ocr crops without and with the state-aware format prior."""
    labels = [label for label in read_labels(SEG_OCR / "labels.txt") if not label.skipped]
    images = [read_image(SEG_OCR / label.path) for label in labels]
    reads = make_engine(engine_name, None, Settings()).read(images)
    stated = [with_state(r, g) for r, g in zip(reads, classifier.classify(images), strict=True)]
    out: dict[str, Any] = {"n": len(labels), "engine": engine_name}
    for key, got in (("reader_prior", reads), ("state_prior", stated)):
        pairs = list(zip((r.text for r in got), (label.text for label in labels), strict=True))
        out[key] = {"exact": sum(a == b for a, b in pairs) / len(pairs),
                    "folded": sum(fold(a) == fold(b) for a, b in pairs) / len(pairs)}  # fmt: skip
    out["changed_reads"] = sum(a.text != b.text for a, b in zip(reads, stated, strict=True))
    console.print(f"state-aware format prior: {out['changed_reads']} of {len(labels)} reads changed")
    return out


def table(rows: dict[str, dict[str, Any]]) -> Table:
    out = Table(title="State classifier on real photos (never trained on)")
    for column in ("set", "photos", "top-1", "top-3", "FL precision", "FL recall", "FL photos", "ms/plate"):
        out.add_column(column, justify="left" if column == "set" else "right")
    for name, r in rows.items():
        out.add_row(name, str(r["n"]), f"{r['top1']:.1%}", f"{r['top3']:.1%}", percent(r["florida_precision"]),
                    percent(r["florida_recall"]), str(r["florida_n"]), f"{r['ms_per_plate']:.3f}")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=None, help="State classifier ONNX (default: the bundled one).")
    parser.add_argument("--engine", default="crnn", help="Reader for the format-prior comparison.")
    parser.add_argument(
        "--read-names",
        action="store_true",
        help="Also read the state name on the plate (state.read_names); results/state_eval_names.json.",
    )
    parser.add_argument(
        "--names-below",
        type=float,
        default=StateConfig().read_names_below,
        help="With --read-names: read names only where the best state is less likely (state.read_names_below).",
    )
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads of the classifier.")
    args = parser.parse_args()
    console = Console()
    if not BY_STATE.is_file() and not SEG_OCR.is_dir():
        console.print(f"no real data at {DEFAULT_DATA}: nothing to measure (set PLATEPILOT_REAL_DATA)")
        return
    config = StateConfig(read_names=args.read_names, read_names_below=args.names_below)
    classifier = state_classifier(config, args.model, threads=args.threads)
    results = RESULTS.with_name("state_eval_names.json") if args.read_names else RESULTS
    result: dict[str, Any] = {"model": str(classifier.model_path), "read_names": args.read_names,
                              "read_names_below": args.names_below if args.read_names else None,
                              "threads": args.threads, "sets": state_rows(classifier, console)}  # fmt: skip
    console.print(table(result["sets"]))
    for name, r in result["sets"].items():
        pairs = ", ".join(f"{c['true']}→{c['predicted']} {c['count']}" for c in r["confusions"])
        console.print(f"{name} confusions (true→predicted): {pairs}", highlight=False)
    if (SEG_OCR / "labels.txt").is_file() and not args.read_names:
        result["format_prior"] = prior_rows(classifier, args.engine, console)
        console.print(json.dumps(result["format_prior"]), highlight=False)
    results.parent.mkdir(parents=True, exist_ok=True)
    results.write_text(json.dumps(result, indent=2) + "\n")
    console.print(f"written to {results}")


if __name__ == "__main__":
    one_line_errors(main)()
