"""The edge runtime's speed at 720p: decode-only fps beside end-to-end fps of the same video, one run.

Writes the demo scene as an mp4 (OpenCV, 1280x720, 15 fps), then, in turns (`--rounds`): reads
every frame with `VideoFileSource` and nothing else, and runs the whole pipeline on it (`run_pilot`:
default detector, tracker, crops, OCR with `--engine`, events). A video file is not live, so the
pipeline processes every frame: its fps is what one camera sustains. Prints a table of medians and
writes benchmarks/results/pipeline_speed.json.
Usage: python benchmarks/pipeline_speed.py [--frames 300] [--rounds 3] [--engine auto]
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

from platepilot.config import CameraConfig, OCRConfig, OutputConfig, Settings
from platepilot.pipeline.run import run_pilot
from platepilot.sources.demo import HEIGHT, WIDTH, DemoScene
from platepilot.sources.files import VideoFileSource

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


def pipeline_fps(video: Path, engine: str, workdir: Path) -> tuple[float, int]:
    """(processed frames per second, events) of one whole run over the video."""
    settings = Settings(
        cameras=[CameraConfig(id="CAM1", source=str(video))],
        ocr=OCRConfig(engine=engine, model_path=workdir / "none.onnx"),  # no trained model: `auto` = PlateOCR
        output=OutputConfig(crops_dir=workdir / "crops", events_db_url=f"sqlite:///{workdir}/ev.db", events_jsonl=None),
    )
    result = run_pilot(settings)
    stats = result.pilot.stats["CAM1"]
    return stats.processed / result.seconds, len(result.pilot.emitted)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--engine", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        video = Path(tmp) / "demo_720p.mp4"
        write_video(video, args.frames)
        decode, pipeline, events = [], [], 0
        for round_ in range(args.rounds):
            decode.append(decode_fps(video))
            fps, events = pipeline_fps(video, args.engine, Path(tmp) / f"run{round_}")
            pipeline.append(fps)
    row = {
        "frames": args.frames,
        "rounds": args.rounds,
        "engine": args.engine,
        "decode_fps_median": statistics.median(decode),
        "pipeline_fps_median": statistics.median(pipeline),
        "events_per_run": events,
        "decode_fps": decode,
        "pipeline_fps": pipeline,
    }
    print(f"{'720p video':>12} {'decode-only fps':>16} {'end-to-end fps':>15} {'ratio':>6} {'events':>7}")
    ratio = row["pipeline_fps_median"] / row["decode_fps_median"]
    print(f"{args.frames:>6} frames {row['decode_fps_median']:>16.1f} {row['pipeline_fps_median']:>15.1f} "
          f"{ratio:>6.2f} {events:>7}")  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(row, indent=2) + "\n")


if __name__ == "__main__":
    main()
