"""Frame sources: video files, image folders, RTSP/HTTP streams, USB cameras, the demo scene."""

from __future__ import annotations

import re
import time
from pathlib import Path

from platepilot.config import CameraConfig
from platepilot.errors import PlatepilotError
from platepilot.images import IMAGE_SUFFIXES
from platepilot.sources.base import Clock, FrameSource
from platepilot.sources.demo import DemoSource
from platepilot.sources.files import ImageFolderSource, VideoFileSource, check_video
from platepilot.sources.stream import StreamSource

_DEMO = re.compile(r"^demo(?::(\d+))?$")


def open_source(camera: CameraConfig, clock: Clock = time.time, realtime_demo: bool = True) -> FrameSource:
    """The source a camera's `source` string names: `demo` or `demo:SEED`, a USB index (`0`), an
    RTSP/HTTP URL, an image folder, or a video file."""
    text = camera.source.strip()
    if camera.follow and not Path(text).is_dir():
        raise PlatepilotError(f"camera {camera.id}: follow watches an image folder, and {text!r} is none")
    demo = _DEMO.match(text)
    if demo:
        return DemoSource(camera.id, seed=int(demo.group(1) or 0), realtime=realtime_demo, clock=clock)
    path = Path(text)
    if text.isdigit() and not path.exists():  # a folder named 2024 is a folder, not USB camera 2024
        return StreamSource(int(text), camera.id, clock)
    if "://" in text:
        return StreamSource(text, camera.id, clock)
    if path.is_dir():
        return ImageFolderSource(path, camera.id, clock=clock, stills=camera.stills, follow=camera.follow)
    if path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES:  # read as a 1-frame video: never a track
        raise PlatepilotError(
            f"camera {camera.id}: source {text!r} is one photo: pass its folder (photos are read one by one), "
            "or read it with `platepilot ocr`"
        )
    if path.is_file():
        check_video(path)
        return VideoFileSource(path, camera.id, clock)
    raise PlatepilotError(f"camera {camera.id}: source {text!r} is not a file, a folder, a URL, a USB index or 'demo'")


__all__ = ["FrameSource", "open_source"]
