"""The guide's situation: 43 clean real labels. Fine-tune the bundled reader on them, measure on the rest.

    python benchmarks/finetune_43.py [--data ../shared/data/real] [--epochs 30] [--synthetic 3000] [--lr 3e-4]

Takes 43 UCSD crops (fixed seed) as the user's labels, fine-tunes the bundled synthetic-only model with
the project's own training run (`--init-from bundled --synthetic N`), then reads the other UCSD crops
and all seg_ocr crops with the bundled model, the fine-tuned one, PlateOCR with each of them as its
member (the default reader, the bar the fine-tuned CRNN should clear), the cascade of the fine-tuned
CRNN and PlateOCR with it (what `auto` runs once it is deployed, if that cascade holds at the gate)
and PP-OCRv6 (on the whole crop, and on the plate line the `paddle` engine picks), side by side. Prints
a table and writes benchmarks/results/finetune_43.json. Real data stays outside the repository.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from plateocr import build as build_reader
from realdata import DEFAULT_DATA, ROOT
from rich.console import Console
from rich.table import Table

from platepilot.config import Settings
from platepilot.ocr.evaluate import evaluate
from platepilot.ocr.models import BUNDLED_MODEL, make_engine
from platepilot.training.train import TrainOptions, train


def _split(labels: Path, n: int, work: Path) -> tuple[Path, Path]:
    """Write the n training labels and the held-out rest, both with absolute crop paths."""
    lines = [line.split("\t") for line in labels.read_text().splitlines() if line.strip()]
    order = np.random.default_rng(0).permutation(len(lines))
    rows = [f"{labels.parent / lines[i][0]}\t{lines[i][1]}\n" for i in order]
    train_file, rest_file = work / "labels_43.txt", work / "labels_rest.txt"
    train_file.write_text("".join(rows[:n]))
    rest_file.write_text("".join(rows[n:]))
    return train_file, rest_file


def _absolute(labels: Path, work: Path) -> Path:
    out = work / f"{labels.parent.name}.txt"
    rows = [line.split("\t") for line in labels.read_text().splitlines() if line.strip()]
    out.write_text("".join(f"{labels.parent / p}\t{t}\n" for p, t in rows))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--labels", type=int, default=43)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--synthetic", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "finetune_43.json")
    args = parser.parse_args()
    console = Console()
    ucsd, seg = args.data / "ucsd_sandiego_ca" / "labels.txt", args.data / "openalpr_seg_ocr_us" / "labels.txt"
    if not (ucsd.is_file() and seg.is_file()):
        console.print(f"no real data at {args.data}: nothing to measure (set PLATEPILOT_REAL_DATA)")
        return
    work = Path(tempfile.mkdtemp(prefix="finetune43_"))
    train_file, rest = _split(ucsd, args.labels, work)
    opts = TrainOptions(
        labels=train_file, output_dir=work / "model", epochs=args.epochs, batch_size=16, val_split=0.15,
        patience=max(args.epochs // 3, 5), lr=args.lr, synthetic=args.synthetic, init_from=BUNDLED_MODEL, workers=1,
    )  # fmt: skip
    result = train(opts, console)
    assert result.model_path is not None
    settings = Settings()
    engines = {
        "bundled": make_engine("crnn", BUNDLED_MODEL, settings),
        "fine-tuned": make_engine("crnn", result.model_path, settings),
        "PlateOCR (bundled member)": make_engine("plateocr", BUNDLED_MODEL, settings),  # the bar
        "PlateOCR (fine-tuned member)": make_engine("plateocr", result.model_path, settings),
        "cascade (fine-tuned first and member)": make_engine("cascade", result.model_path, settings),  # what auto
        # runs for a deployed CRNN that helps PlateOCR, if its cascade read as well at the gate
        "PP-OCRv6 whole crop": build_reader("paddle-whole"),  # the reference
        "PP-OCRv6 line": build_reader("paddle"),  # the `paddle` engine: plate line picked, then read
    }
    table = Table(title=f"{args.labels} real labels: bundled vs fine-tuned vs PP-OCRv6")
    for column in ("set", "engine", "n", "exact", "exact folded", "CER folded", "plates/s"):
        table.add_column(column, justify="right")
    rows = []
    for name, labels in (("ucsd (held out)", rest), ("seg_ocr", _absolute(seg, work))):
        for engine_name, engine in engines.items():
            r = evaluate(engine, labels, model=engine_name)
            s = r.scores
            rows.append({"set": name, "engine": engine_name, **r.to_json()})
            table.add_row(
                name, engine_name, str(s.n), f"{s.exact:.1%}", f"{s.exact_folded:.1%}", f"{s.cer_folded:.3f}",
                f"{r.plates_per_s:,.0f}",
            )  # fmt: skip
    console.print(table)
    summary = {
        "labels": args.labels, "epochs_run": len(result.history), "collapse": result.collapse_detected,
        "train_seconds": round(result.seconds, 1), "results": rows,
    }  # fmt: skip
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(summary, indent=2))
    console.print(f"written {args.out} (work folder {work})")


if __name__ == "__main__":
    main()
