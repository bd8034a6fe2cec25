"""A folder of photos through the whole edge pipeline, as separate photos and as a video's frames.

    python benchmarks/photo_folder.py --scenes MANIFEST.tsv [--config platepilot.yaml] [--limit N] [--out JSON]

Each photo of a MANIFEST.tsv (a gate or lot camera's snapshots: UCSD's are 246 parked cars) goes into
one folder, in manifest order, and `platepilot run` reads the folder as one camera would, twice:
`cameras[].stills: true` (the default: each photo is its own scene) and `false` (the photos are a
video's frames, tracked from one to the next). A plate is read when an event of its photo has its
text (strict, and O/0 I/1 folded); an event of a photo (as video: of any photo it spans) matching none
of its plates counts against the reader. Where the manifest has a `region` column (`us-ca`), the state of
each event that read a plate is right, unknown or wrong. Prints a table and writes
benchmarks/results/photo_folder.json.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from realdata import ROOT, fail, in_temp_folder
from rich.console import Console
from rich.table import Table

from platepilot.config import Settings, load_config
from platepilot.errors import PlatepilotError
from platepilot.ocr.models import engine_for
from platepilot.ocr.state import state_classifier
from platepilot.pipeline.pilot import Pilot
from platepilot.pipeline.reload import ReaderSlot, model_version
from platepilot.pipeline.run import camera_detectors
from platepilot.plates.charset import fold
from platepilot.plates.manifest import LabelledScene, read_manifest
from platepilot.plates.states import UNKNOWN, state_code
from platepilot.plates.tsv import read_tsv
from platepilot.sources.files import ImageFolderSource
from platepilot.store.crops import CropStore
from platepilot.store.events import EventStore, PlateEvent

FPS = 10.0  # the folder source's frame rate: event times are photo index / FPS (the clock starts at 0)
RESULTS = ROOT / "benchmarks" / "results" / "photo_folder.json"


def run_folder(folder: Path, stills: bool, settings: Settings, workdir: Path) -> list[PlateEvent]:
    """Every event of one pipeline run over `folder`, as `platepilot run` reads a folder camera."""
    source = ImageFolderSource(folder, "CAM1", fps=FPS, clock=lambda: 0.0, stills=stills)
    detectors = camera_detectors(settings.detector, [source])
    engine = engine_for(settings.ocr.engine, None, settings, detectors["CAM1"])
    engine.warmup(1)
    states = state_classifier(settings.state, threads=1) if settings.state.enabled else None
    events = EventStore(f"sqlite:///{workdir / 'events.db'}")
    found: list[PlateEvent] = []
    pilot = Pilot(settings, [source], detectors, ReaderSlot(engine, model_version(engine)),
                  CropStore(workdir / "crops"), events, found.append, states)  # fmt: skip
    try:
        pilot.run()
    finally:
        events.close()
    return found


def photo_states(manifest: Path) -> dict[Path, str]:
    """Each photo's state (postal code) from the manifest's `region` column (`us-ca`), where it has one."""
    rows = read_tsv(manifest, ("image_relpath",))
    if "region" not in (rows.fieldnames or ()):
        return {}
    out = {}
    for row in rows:
        try:
            out[(manifest.parent / row["image_relpath"]).resolve()] = state_code(row["region"])
        except ValueError:
            continue
    return out


def score(
    scenes: Sequence[LabelledScene], events: Sequence[PlateEvent], states: dict[Path, str], seconds: float
) -> dict[str, Any]:
    """Plates read (strict, folded) by an event of their photo, events matching no plate they span, and
    the states of the events that read a plate whose photo's state the manifest gives."""
    spans = [(round(e.first_seen * FPS), round(e.last_seen * FPS), e) for e in events]
    plates = read = folded = 0
    missed = []
    named = Counter[str]()
    for index, scene in enumerate(scenes):
        mine = [e for first, last, e in spans if first <= index <= last]
        texts = [e.text for e in mine]
        truth = states.get(scene.image.resolve())
        for plate in scene.plates:
            plates += 1
            read += plate.text in texts
            hit = fold(plate.text) in {fold(t) for t in texts}
            folded += hit
            if not hit:
                missed.append({"photo": scene.image.name, "plate": plate.text, "events": texts})
            for e in mine if truth else []:
                if fold(e.text) == fold(plate.text):
                    named["unknown" if e.state == UNKNOWN else "right" if e.state == truth else "wrong"] += 1
    labels = [{fold(p.text) for s in scenes[first : last + 1] for p in s.plates} for first, last, _ in spans]
    stray = [e.text for (_, _, e), seen in zip(spans, labels, strict=True) if fold(e.text) not in seen]
    return {"photos": len(scenes), "plates": plates, "read": round(read / plates, 4),
            "read_folded": round(folded / plates, 4), "events": len(events), "matching_no_plate": len(stray),
            "no_plate_texts": stray, "missed": missed, "states": dict(named), "seconds": round(seconds, 1)}  # fmt: skip


def measure(
    scenes: Sequence[LabelledScene], states: dict[Path, str], settings: Settings, workdir: Path
) -> dict[str, dict[str, Any]]:
    folder = workdir / "photos"
    folder.mkdir()
    for index, scene in enumerate(scenes):  # numbered: the folder reads in name order, the manifest's
        (folder / f"{index:05d}{scene.image.suffix}").symlink_to(scene.image.resolve())
    rows = {}
    for stills in (True, False):
        start = time.monotonic()
        events = run_folder(folder, stills, settings, workdir / f"run_{stills}")
        rows["photos" if stills else "video"] = score(scenes, events, states, time.monotonic() - start)
    return rows


def table(rows: dict[str, dict[str, Any]]) -> Table:
    out = Table(title="a folder of photos through `platepilot run`")
    columns = ("read as", "photos", "plates", "read", "read folded", "events", "matching no plate",
               "states right / unknown / wrong", "seconds")  # fmt: skip
    for column in columns:
        out.add_column(column, justify="right")
    for name, r in rows.items():
        states = "/".join(str(r["states"].get(k, 0)) for k in ("right", "unknown", "wrong")) if r["states"] else "-"
        out.add_row(name, str(r["photos"]), str(r["plates"]), f"{r['read']:.1%}", f"{r['read_folded']:.1%}",
                    str(r["events"]), str(r["matching_no_plate"]), states, f"{r['seconds']:.0f}")  # fmt: skip
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=Path, required=True, help="MANIFEST.tsv (image_relpath x y w h plate_text)")
    parser.add_argument("--config", type=Path, default=None, help="a platepilot.yaml (reader, detector, tracker)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N photos (a quick check)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the JSON to write (default: %(default)s)")
    args = parser.parse_args()
    console = Console(width=max(Console().width, 110))
    settings = load_config(args.config) if args.config else Settings()
    try:
        scenes = read_manifest(args.scenes)[: args.limit]
        states = photo_states(args.scenes)
    except PlatepilotError as exc:
        fail(exc)
    rows = in_temp_folder("photo_folder_", lambda workdir: measure(scenes, states, settings, workdir))
    console.print(table(rows))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"manifest": str(args.scenes), "config": str(args.config or ""), **rows}, indent=2))
    console.print(f"written to {args.out}")


if __name__ == "__main__":
    main()
