"""The edge runtime's speed at 720p: decode-only fps beside end-to-end fps of the same video, one run.

Writes the demo scene as an mp4 (OpenCV, 1280x720, 15 fps), then, in turns (`--rounds`): reads
every frame with `VideoFileSource` and nothing else, and runs the whole pipeline on it once per
detector (`run_pilot`: detector, tracker, crops, OCR with `--engine`, events). A video file is not
live, so the pipeline processes every frame: its fps is what one camera sustains. Prints a table of
medians, each detector's fps as a ratio of the first one's, and writes benchmarks/results/pipeline_speed.json.
Usage: python benchmarks/pipeline_speed.py [--frames 300] [--rounds 3] [--engine auto] [--detectors platenet textdet]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import cv2
from realdata import at_least_one, one_line_errors

from platepilot.config import CameraConfig, DetectorConfig, OCRConfig, OutputConfig, Settings
from platepilot.pipeline.run import run_pilot
from platepilot.pipeline.scene_eval import DETECTOR_NAMES
from platepilot.sources.demo import HEIGHT, WIDTH, DemoScene
from platepilot.sources.files import VideoFileSource
from platepilot.store.events import PlateEvent

RESULTS = Path(__file__).parent / "results" / "pipeline_speed.json"


def write_video(path: Path, frames: int, fps: float = 15.0) -> None:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), fps, (WIDTH, HEIGHT))
    scene = DemoScene(seed=0, fps=fps)
    for index in range(frames):
        writer.write(scene.render(index)[0])
    writer.release()


def decode_fps(video: Path) -> float:
    start = time.perf_counter()
    count = sum(1 for _ in VideoFileSource(video, "CAM1").frames(threading.Event()))
    return count / (time.perf_counter() - start)


def detector_config(spec: str) -> DetectorConfig:
    """A detector kind (DETECTOR_NAMES: auto, platenet, fast, textdet), or the path of an ONNX detector."""
    if spec in DETECTOR_NAMES:
        return DetectorConfig(kind=spec)  # type: ignore[arg-type]
    return DetectorConfig(model_path=Path(spec))


def pipeline_fps(video: Path, engine: str, detector: str, workdir: Path) -> tuple[float, int]:
    """(processed frames per second, events) of one whole run over the video with detector `detector`."""
    settings = Settings(
        cameras=[CameraConfig(id="CAM1", source=str(video))],
        detector=detector_config(detector),
        ocr=OCRConfig(engine=engine, model_path=workdir / "none.onnx"),  # no trained model: `auto` = PlateOCR
        output=OutputConfig(crops_dir=workdir / "crops", events_db_url=f"sqlite:///{workdir}/ev.db", events_jsonl=None),
    )
    events: list[PlateEvent] = []
    result = run_pilot(settings, on_event=events.append)
    stats = result.pilot.stats["CAM1"]
    return stats.processed / result.seconds, len(events)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=at_least_one, default=300)
    parser.add_argument("--rounds", type=at_least_one, default=3)
    parser.add_argument("--engine", default="auto")
    parser.add_argument(
        "--detectors", nargs="+", default=["platenet", "textdet"], help="detector kinds or ONNX paths, in turns"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "demo_720p.mp4"
        write_video(video, args.frames)
        decode: list[float] = []
        pipeline: dict[str, list[float]] = {d: [] for d in args.detectors}
        events: dict[str, int] = {}
        for round_ in range(args.rounds):
            decode.append(decode_fps(video))
            for detector in args.detectors:
                work = Path(tmp) / f"{args.detectors.index(detector)}-{round_}"
                fps, events[detector] = pipeline_fps(video, args.engine, detector, work)
                pipeline[detector].append(fps)
    medians = {d: statistics.median(v) for d, v in pipeline.items()}
    first = args.detectors[0]
    rows = [
        {"detector": d, "pipeline_fps_median": medians[d], "pipeline_fps": pipeline[d], "events_per_run": events[d],
         f"fps_ratio_vs_{first}": medians[d] / medians[first]}
        for d in args.detectors
    ]  # fmt: skip
    result = {"frames": args.frames, "rounds": args.rounds, "engine": args.engine,
              "decode_fps_median": statistics.median(decode), "decode_fps": decode, "detectors": rows}  # fmt: skip
    print(
        f"720p demo video, {args.frames} frames, engine {args.engine}: "
        f"decode-only {result['decode_fps_median']:.1f} fps"
    )
    print(f"{'detector':>10} {'end-to-end fps':>15} {'x ' + first:>12} {'events':>7}")
    for row in rows:
        ratio = row[f"fps_ratio_vs_{first}"]
        name = Path(row["detector"]).name
        print(f"{name:>10} {row['pipeline_fps_median']:>15.1f} {ratio:>12.2f} {row['events_per_run']:>7}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    one_line_errors(main)()
