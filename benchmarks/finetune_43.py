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
import shutil
import tempfile
from pathlib import Path

import numpy as np
from plateocr import build as build_reader
from realdata import DEFAULT_DATA, ROOT, fail, keep_errata
from rich.console import Console
from rich.table import Table

from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.ocr.evaluate import evaluate
from platepilot.ocr.models import BUNDLED_MODEL, make_engine
from platepilot.plates.label_errors import corrected, read_label_errors
from platepilot.training.train import TrainOptions, train


def _split(labels: Path, n: int, work: Path) -> tuple[Path, Path]:
    """Write the n training labels (fixed seed) and the held-out rest, both with absolute crop paths, each
    in a folder of its own with the set's errata. The training labels are corrected by the errata (the
    guide's user has clean labels), and a held-out crop of a plate among them is left out (UCSD has
    plates photographed twice): the fine-tuned reader must not be scored on a plate it was taught."""
    lines = [line.split("\t") for line in labels.read_text().splitlines() if line.strip()]
    if not 1 <= n < len(lines):
        raise PlatepilotError(f"--labels {n}: {labels} has {len(lines)} labels; take 1 to {len(lines) - 1}")
    errata = read_label_errors(labels.parent)
    rows = [(lines[i][0], lines[i][1]) for i in np.random.default_rng(0).permutation(len(lines))]
    taught = [(path, corrected(errata, path, text) or text) for path, text in rows[:n]]
    texts = {text for _, text in taught}
    rest = [(path, text) for path, text in rows[n:] if (corrected(errata, path, text) or text) not in texts]
    return _written(taught, labels.parent, work / "train"), _written(rest, labels.parent, work / "held_out")


def _absolute(labels: Path, work: Path) -> Path:
    rows = [line.split("\t") for line in labels.read_text().splitlines() if line.strip()]
    return _written([(p, t) for p, t in rows], labels.parent, work / labels.parent.name)


def _written(rows: list[tuple[str, str]], source: Path, folder: Path) -> Path:
    """`folder/labels.txt` of `rows` (crop paths made absolute), beside the set's errata."""
    folder.mkdir(parents=True)
    out = folder / "labels.txt"
    out.write_text("".join(f"{source / path}\t{text}\n" for path, text in rows))
    keep_errata(source, folder)
    return out


def main() -> None:
    try:
        measure()
    except PlatepilotError as exc:
        fail(exc)


def measure() -> None:
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
    try:
        train_file, rest = _split(ucsd, args.labels, work)
    except PlatepilotError:
        shutil.rmtree(work)
        raise
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
