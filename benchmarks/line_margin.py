"""How much of its plate line PlateOCR reads when a detector's whole-plate crop is cut to it
(`PlateLineFinder.margin`, default `LINE_MARGIN`), side by side in one run.

Two measures per margin (shares of the line's width and height added on each side; negative shrinks):
- scenes: `platepilot eval --scenes` on a MANIFEST.tsv (default UCSD) with the default detector and
  PlateOCR cutting each box to its line with that margin: read end to end, folded O/0 I/1;
- crops: the crops of a labels.txt (default seg_ocr: tight, front-on, sharp plates) read as if they
  were whole-plate crops (cut to their line with that margin), folded exact.
Both sets are real and human-labelled (never shipped with the project). Prints a table and writes
benchmarks/results/line_margin.json.
Usage: python benchmarks/line_margin.py [--margins 0.04,0.1 0.04,0 0.04,-0.05] [--limit N]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from realdata import DEFAULT_DATA
from rich.console import Console
from rich.table import Table

from platepilot.config import Settings
from platepilot.ocr.evaluate import evaluate
from platepilot.ocr.lines import LINE_MARGIN, PlateLineFinder
from platepilot.ocr.models import make_engine
from platepilot.ocr.plate_ocr import PlateOCR
from platepilot.pipeline.scene_eval import evaluate_scenes, named_detector
from platepilot.plates.manifest import read_manifest

RESULTS = Path(__file__).parent / "results" / "line_margin.json"


def margin(text: str) -> tuple[float, float]:
    """`"0.04,-0.05"` -> (0.04, -0.05)."""
    x, y = (float(v) for v in text.split(","))
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--margins", nargs="+", type=margin, default=[LINE_MARGIN, (0.04, 0.0), (0.04, -0.05)])
    parser.add_argument("--scenes", type=Path, default=DEFAULT_DATA / "ucsd_sandiego_ca" / "MANIFEST.tsv")
    parser.add_argument("--crops", type=Path, default=DEFAULT_DATA / "openalpr_seg_ocr_us" / "labels.txt")
    parser.add_argument("--limit", type=int, default=None, help="First N scenes and crops only.")
    args = parser.parse_args()
    console = Console()
    if not args.scenes.is_file() or not args.crops.is_file():
        console.print(f"no real data at {args.scenes} / {args.crops}: nothing to measure (set PLATEPILOT_REAL_DATA)")
        return
    settings = Settings()
    detector = named_detector("auto", settings.detector)
    engine = make_engine("plateocr", None, settings, whole_plates=True)
    assert isinstance(engine, PlateOCR)
    members = engine.members
    scenes = read_manifest(args.scenes)[: args.limit]
    rows = []
    for m in args.margins:
        reader = PlateOCR(members, PlateLineFinder(margin=m), line_crop=True)
        scene = evaluate_scenes(scenes, detector, reader, console=console)
        crops = evaluate(reader, args.crops, limit=args.limit).scores
        rows.append({
            "margin": list(m), "scenes_read": scene.read_e2e, "scenes_read_folded": scene.read_e2e_folded,
            "scenes_n": scene.plates, "crops_exact_folded": crops.exact_folded, "crops_n": crops.n,
        })  # fmt: skip
    table = Table(title=f"plate line margin: {args.scenes.parent.name} scenes, {args.crops.parent.name} crops")
    for column in ("margin (x, y)", "scenes read e2e (folded)", "crops read as whole plates (folded)"):
        table.add_column(column, justify="right")
    for r in rows:
        table.add_row(
            f"{r['margin'][0]:+.2f}, {r['margin'][1]:+.2f}",
            f"{r['scenes_read']:.1%} ({r['scenes_read_folded']:.1%}) of {r['scenes_n']}",
            f"{r['crops_exact_folded']:.1%} of {r['crops_n']}",
        )
    console.print(table)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"detector": scene.detector, "rows": rows}, indent=2))
    console.print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
