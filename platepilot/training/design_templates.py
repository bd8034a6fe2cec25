"""Real plate designs made into templates (`plates.templates`): PP-OCRv6's text detector finds each
design's text lines, and a design whose serial is found and painted out cleanly becomes a template.

Here, not in `plates/`, because it runs a detector: `plates/` knows plates and imports no room.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from platepilot.detect.textdet import TextDetParams, TextDetPlateDetector
from platepilot.plates.render import PLATE_H, PLATE_W
from platepilot.plates.templates import Template, make_template

GHOST_HEIGHT = 0.6
"""A painted design still holding a text line this tall, relative to its serial's slots, is dropped."""


def load_templates(paths: Sequence[Path], max_side: int = 480) -> list[Template]:
    """Templates of the readable design images among `paths` (a design whose serial is not found is skipped)."""
    # A small unclip: the boxes stay close to the characters instead of DB's 1.6x growth.
    params = TextDetParams(max_side=max_side, aspect=(0.3, 20.0), min_height=4, unclip=1.1)
    detector = TextDetPlateDetector(params=params)
    templates = []
    for path in paths:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            continue
        image = cv2.resize(image, (PLATE_W, PLATE_H), interpolation=cv2.INTER_AREA)
        template = make_template(image, detector.lines(image), path.name)
        if template is not None and not _ghost(template, detector.lines(template.image)):
            templates.append(template)
    return templates


def _ghost(template: Template, lines: np.ndarray) -> bool:
    """Whether text nearly as tall as the old serial is still found anywhere on the painted design
    (painting failed, or the serial found was not the plate's: a design with a large side number)."""
    height = min(s[3] - s[1] for s in template.slots)
    return bool(len(lines)) and float((lines[:, 3] - lines[:, 1]).max()) > GHOST_HEIGHT * height
