"""The CRNN reader against PaddleOCR's PP-OCRv6 recogniser on the real dev sets, side by side, one run.

    python benchmarks/reader_vs_paddle.py [--model PATH ...] [--engines crnn,paddle,plateocr] [--data ...]

Several `--model`s are measured side by side: `crnn` and `plateocr` (with that CRNN as its member) per
model, `paddle` once.

Reads every `labels.txt` under the data folder (real, human-labelled US plates; never shipped with the
project). Prints a table and writes benchmarks/results/reader_vs_paddle.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from realdata import DEFAULT_DATA, ROOT, label_sets, one_line_errors
from rich.console import Console
from rich.table import Table

from platepilot.config import Settings
from platepilot.ocr.evaluate import evaluate
from platepilot.ocr.models import make_engine, resolve_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--model",
        type=Path,
        action="append",
        default=None,
        help="CRNN ONNX, repeatable (default: trained, else bundled)",
    )
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--engines", default="crnn,paddle")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "reader_vs_paddle.json")
    args = parser.parse_args()
    console = Console()
    sets = label_sets(args.data, console)
    if not sets:
        return
    settings = Settings()
    models = [resolve_model(m, settings) for m in args.model or [None]]
    engines = {}
    for name in args.engines.split(","):
        for model in models if name != "paddle" else models[:1]:
            label = name if name == "paddle" or len(models) == 1 else f"{name}:{model.parent.name}/{model.stem}"
            engines[label] = (make_engine(name, model, settings), model)
    for engine, _ in engines.values():
        engine.warmup(3)
    table = Table(title=f"real plates: CRNN {', '.join(map(str, models))} vs PP-OCRv6 (rapidocr)")
    for column in ("set", "engine", "n", "exact", "exact folded", "CER folded", "plates/s", "ms/plate"):
        table.add_column(column, justify="right")
    results = []
    for labels in sets:
        for name, (engine, model) in engines.items():
            r = evaluate(engine, labels, model=name if name == "paddle" else str(model))
            row = {"set": labels.parent.name, "engine": name, **r.to_json()}
            results.append(row)
            s = r.scores
            table.add_row(
                labels.parent.name, name, str(s.n), f"{s.exact:.1%}", f"{s.exact_folded:.1%}",
                f"{s.cer_folded:.3f}", f"{r.plates_per_s:,.0f}", f"{1000 / max(r.plates_per_s, 1e-9):.2f}",
            )  # fmt: skip
    console.print(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"models": [str(m) for m in models], "results": results}, indent=2))
    console.print(f"written {args.out}")


if __name__ == "__main__":
    one_line_errors(main)()
