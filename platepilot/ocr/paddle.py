"""PaddleOCR's PP-OCRv6 small recogniser (ONNX, shipped inside the `rapidocr` wheel) as an OCREngine.

The model is run with onnxruntime directly rather than through rapidocr's pipeline object, which is
not thread-safe: one shared `InferenceSession` is (`run` may be called from many threads), so `read`
needs no lock. The recogniser spells ~18,700 classes (Chinese, symbols, both cases); its output is
folded onto the plate alphabet before decoding (`plate_probabilities`), so it can only read A-Z0-9
and gets the CRNN's CTC decoding: beam candidates and the plate-format prior.

With a `PlateLineFinder`, a crop that holds several text lines (a whole plate: state name, serial,
slogan) is read on its plate line only; a crop that is one line is read whole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import cv2
import numpy as np

from platepilot.errors import PlatepilotError
from platepilot.ocr.crnn_service import decode_read
from platepilot.ocr.lines import PlateLineFinder, Rows, read_plate_lines
from platepilot.plates.charset import CHARSET
from platepilot.sessions import open_session, rapidocr_model
from platepilot.types import PlateRead

REC_FILE = "PP-OCRv6_rec_small.onnx"
REC_HEIGHT = 48
REC_MIN_WIDTH = 320
REC_MAX_WIDTH = 25 * REC_HEIGHT
"""A line is squeezed to this width at most: a 1 x 1,000 px strip became 45,000 px wide (2 GB, 10 s)."""
"""PaddleOCR pads every line to at least 320 x 48 pixels (rapidocr's `rec_img_shape`)."""
MIN_SIDE = 30
"""rapidocr's pipeline first grows a crop whose short side is under 30 px (to 30, then both sides to
multiples of 32); kept, so the member reads small crops exactly as `RapidOCR()(crop)` does."""


def plate_columns(characters: Sequence[str]) -> list[list[int]]:
    """For each CHARSET character, the model classes that spell it (the letter in both cases).

    `characters` is the model's class list, class 0 the CTC blank.
    """
    index = {ch: i for i, ch in enumerate(characters)}
    return [[index[v] for v in {ch, ch.lower()} if v in index] for ch in CHARSET]


def plate_probabilities(probs: np.ndarray, columns: Sequence[Sequence[int]]) -> np.ndarray:
    """(T, C) model probabilities -> (T, 1 + len(CHARSET)), class 0 the blank, then CHARSET.

    Every class that is not a plate character (spaces, dashes, dots, symbols, Chinese) joins the
    blank: plate text drops them anyway (`normalize`), and so a dash between two groups can no
    longer hide the argmax of a plate character.
    """
    out = np.empty((probs.shape[0], 1 + len(columns)), np.float32)
    for k, cols in enumerate(columns, start=1):
        out[:, k] = probs[:, cols].sum(axis=1)
    out[:, 0] = np.clip(1.0 - out[:, 1:].sum(axis=1), 0.0, 1.0)
    return out


def rec_blob(image: np.ndarray) -> np.ndarray:
    """BGR uint8 (H, W, 3) -> float32 (1, 3, 48, max(320, 48 W / H)) in [-1, 1], zero-padded right."""
    height, width = image.shape[:2]
    if min(height, width) < MIN_SIDE:
        scale = MIN_SIDE / min(height, width)
        width, height = (max(round(int(side * scale) / 32) * 32, 32) for side in (width, height))
        image = cv2.resize(image, (width, height))
    resized_w = min(max(1, math.ceil(REC_HEIGHT * width / height)), REC_MAX_WIDTH)
    blob = np.zeros((3, REC_HEIGHT, max(REC_MIN_WIDTH, resized_w)), np.float32)
    resized = cv2.resize(image, (resized_w, REC_HEIGHT)).astype(np.float32)
    blob[:, :, :resized_w] = resized.transpose(2, 0, 1) * (2.0 / 255.0) - 1.0
    return blob[None]


class PaddleRecognizer:
    """PP-OCRv6 small, read as a plate reader; `read` is thread-safe (shared InferenceSessions).

    Args:
        lines: the finder of the plate line in multi-line crops; None reads every crop whole.
        format_prior, beam_width, top_k: as for `CRNNOCRService` (`decode_read`).
        threads: onnxruntime intra-op threads (None: one per core).
    """

    name = "paddle"

    def __init__(
        self,
        lines: PlateLineFinder | None = None,
        format_prior: bool = True,
        beam_width: int = 8,
        top_k: int = 5,
        threads: int | None = None,
    ) -> None:
        path = rapidocr_model(REC_FILE)
        self._session = open_session(path, "recogniser", threads=threads)
        meta = self._session.get_modelmeta().custom_metadata_map
        if "character" not in meta:
            raise PlatepilotError(f"{path}: no 'character' list in the model's metadata; reinstall rapidocr>=3.10")
        self._columns = plate_columns(["blank", *meta["character"].splitlines(), " "])
        self._input = self._session.get_inputs()[0].name
        self.lines = lines
        self._format_prior = format_prior
        self._beam_width = beam_width
        self._top_k = top_k

    def probabilities(self, image: np.ndarray, rows: Rows | None = None) -> np.ndarray:
        """One crop (or its rows [y1, y2) across the full width) -> (T, 37) plate-alphabet probabilities."""
        region = image if rows is None else image[rows[0] : rows[1]]
        probs = self._session.run(None, {self._input: rec_blob(region)})[0][0]
        return plate_probabilities(probs, self._columns)

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        """BGR uint8 crops (H, W, 3) -> one PlateRead per crop, in order."""
        return read_plate_lines(images, self.lines, self.read_region)

    def read_region(self, image: np.ndarray, rows: Rows | None) -> PlateRead:
        return self.decode(self.probabilities(image, rows))

    def decode(self, probs: np.ndarray) -> PlateRead:
        """(T, 37) plate-alphabet probabilities -> the PlateRead (`decode_read`: greedy, beam, prior)."""
        return decode_read(probs, CHARSET, self._beam_width, self._top_k, self._format_prior, engine=self.name)

    def warmup(self, iterations: int = 1) -> None:
        blank = np.full((48, 160, 3), 255, np.uint8)
        for _ in range(iterations):
            self.read([blank])
