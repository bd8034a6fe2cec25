"""Finding the plate line in a crop that holds several lines of text (a whole plate, not just its serial).

A plate crop from a detector or a dataset often shows the state name above the serial and a slogan,
county or web address below it; a recogniser fed the whole crop reads them into one string. The
serial is the plate's largest text and spans most of its width, so among the text lines PP-OCRv6's
detector finds, the plate line is the tallest (side-by-side pieces merged first: a Florida serial
is split by the orange). A crop whose lines all sit in one row is one line and is read whole.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence

import cv2
import numpy as np

from platepilot.detect.textdet import TextDetParams, TextDetPlateDetector, merge_side_by_side
from platepilot.images import as_bgr
from platepilot.types import PlateRead

Rows = tuple[int, int]
"""A horizontal band of a crop: rows [y1, y2), read across the crop's full width."""

ROW_OVERLAP = 0.5
"""Two lines overlapping vertically by more than this fraction of the shorter one share a row."""

LINES_TRIED = 3
"""Text lines of a whole-plate crop a reader tries, tallest first, until one reads like a serial."""

LINE_MARGIN = (0.04, -0.05)
"""Growth of each side of the plate line's box when a whole-plate crop is cut to it (`line_crops`), as
shares of the line's width and height; negative shrinks. The text detector's box already stands
above and below the characters, and on small plates a taller cut takes in the state script and the
dealer frame's text. On the detector's crops of the 246 UCSD plates (reader v10, 2026-12-04, folded)
PlateOCR read 217 with (0.04, 0.1), 218 with (0.04, 0), 224 with (0.04, -0.05) and with (0.04, -0.1),
202 with (0.04, -0.2); the seg_ocr crops read as whole plates 702, 703, 698, 693 of 745
(`benchmarks/line_margin.py`)."""


SECOND_LOOK_SIDE = 256
"""The crop's longest side for `PlateLineFinder`'s second look (its first is `max_side`, 320). The
text detector's lines on a small crop change with the scale it sees it at: on the bundled detector's
crops of the 246 UCSD plates, at 320 it found no line on a clean `5HZW063` and only fragments of
`4FJX849`, both found at 256. Reading each crop at one of 224-384 gave 223-231 plates (folded; 320:
230); a plate read right at 320 or at 256 (an oracle), 235 (2026-12-05, reader v11)."""

SECOND_LOOK_BELOW = 0.9
"""PlateOCR looks again at `SECOND_LOOK_SIDE` when its read of a whole-plate crop's lines is less sure
than this, and keeps the surer read: 230 -> 233 of those 246 plates (232 at 0.5-0.8)."""


SMALL_CROP_HEIGHT = 48
"""Whole-plate crops (`PlateOCR.line_crop`, the CRNN with a line finder) shorter than this (plates under
about 40 px wide in the frame) are enlarged, bicubic, to `ENLARGED_HEIGHT` before their lines are found
and read (`enlarged`): the members and the line finder resize bilinearly, and the plate line is cut
from the crop at its own pixels. On UCSD's photos set at half size in 720p frames (plates 39 px wide),
PlateOCR read 190 of the 223 plates the detector found against 169, with no change on larger plates.
Tight crops of the plate line (UCSD's labelled crops, 21-27 px tall) read 2 fewer of 246 so enlarged,
so they are left as they are."""
ENLARGED_HEIGHT = 80


def enlarged(image: np.ndarray) -> np.ndarray:
    """`image`, enlarged (bicubic) to `ENLARGED_HEIGHT` px tall when shorter than `SMALL_CROP_HEIGHT`."""
    height = image.shape[0]
    if height >= SMALL_CROP_HEIGHT:
        return image
    scale = ENLARGED_HEIGHT / height
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


PixelKey = tuple[tuple[int, ...], str, bytes]


def pixel_key(image: np.ndarray) -> PixelKey:
    """A key equal for two arrays of the same shape, dtype and pixels (a 16-byte hash of the pixels)."""
    pixels = np.ascontiguousarray(image)
    return pixels.shape, pixels.dtype.str, hashlib.blake2b(pixels.data, digest_size=16).digest()


def pick_plate_rows(lines: np.ndarray, height: int) -> Rows | None:
    """(N, >=4) text lines (x1, y1, x2, y2, ...) in crop pixels -> the plate line's band, or None.

    None when there are no lines or they all share one row: the crop is one line, read it whole.
    """
    if len(lines) < 2:
        return None
    tallest = tallest_line(lines)
    t1, t2 = float(tallest[1]), float(tallest[3])
    others = [row for row in lines if not _same_row(row, t1, t2)]
    if not others:
        return None
    # No margin added: DB's unclip already grew the line beyond its characters (a margin taking in the
    # bottom of the state name above cost 3 points on the seg_ocr crops).
    y1, y2 = max(int(t1), 0), min(int(np.ceil(t2)), height)
    return (y1, y2) if y2 - y1 >= 4 else None


def tallest_line(lines: np.ndarray) -> np.ndarray:
    """The plate line among (N >= 1, >=4) text lines: the tallest (see the module doc)."""
    return lines[np.argmax(lines[:, 3] - lines[:, 1])]


LEVEL_FROM_DEG = 5.0
"""A text line tilted this much or more (a camera rolled, a plate seen from the side) is cut levelled
(`cut_line`): the readers learned level lines, and an axis-aligned cut of a tilted one hands them a
slanted line with the rows above and below it. The seg_ocr crops rotated 15 degrees read 82.2% as they
were cut and 93.4% levelled (the default reader, folded); UCSD's photos rotated 10 degrees, found and
read end to end, 83.7% and 93.1% (docs/plateocr.md). From 5 degrees the dev sets read exactly as before;
from 3, one seg_ocr plate fewer."""


def rect_sides(width: float, height: float, tilt_deg: float) -> tuple[float, float] | None:
    """The (length, thickness) of a rectangle tilted by `tilt_deg` whose axis-aligned bounds are `width` x
    `height`; None when the bounds fit no such rectangle (a merged line whose pieces disagree)."""
    c, s = abs(np.cos(np.radians(tilt_deg))), abs(np.sin(np.radians(tilt_deg)))
    det = c * c - s * s
    length, thickness = (width * c - height * s) / det, (height * c - width * s) / det
    return (length, thickness) if det > 0.5 and length > 0 and thickness > 0.1 * height else None


def cut_line(image: np.ndarray, line: np.ndarray, margin: tuple[float, float] = LINE_MARGIN) -> np.ndarray:
    """`image` cut to the text line (x1, y1, x2, y2, score, tilt) grown by `margin` (shares of its width,
    height); a line tilted by `LEVEL_FROM_DEG` or more is cut levelled (rotated about its centre)."""
    x1, y1, x2, y2 = (float(v) for v in line[:4])
    tilt = float(line[5]) if len(line) > 5 else 0.0
    sides = rect_sides(x2 - x1, y2 - y1, tilt) if abs(tilt) >= LEVEL_FROM_DEG else None
    if sides is not None:
        width, height = sides[0] * (1 + 2 * margin[0]), sides[1] * (1 + 2 * margin[1])
        centre = ((x1 + x2) / 2, (y1 + y2) / 2)
        matrix = cv2.getRotationMatrix2D(centre, tilt, 1.0)
        matrix[:, 2] += np.array([width / 2 - centre[0], height / 2 - centre[1]])
        size = (max(round(width), 1), max(round(height), 1))
        return cv2.warpAffine(image, matrix, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    grow_x, grow_y = margin[0] * (x2 - x1), margin[1] * (y2 - y1)
    height, width = image.shape[:2]
    left, top = max(int(x1 - grow_x), 0), max(int(y1 - grow_y), 0)
    right, bottom = min(int(np.ceil(x2 + grow_x)), width), min(int(np.ceil(y2 + grow_y)), height)
    return image[top:bottom, left:right]


def _same_row(line: np.ndarray, t1: float, t2: float) -> bool:
    overlap = min(float(line[3]), t2) - max(float(line[1]), t1)
    return overlap > ROW_OVERLAP * min(float(line[3] - line[1]), t2 - t1)


LINES_REMEMBERED = 256
"""Crops whose lines a finder remembers (by their pixels): the cascade's second reader (`CascadeOCR`)
asks again for the lines of the crops the first was unsure of, and finding them is most of the cost of
reading a whole-plate crop (PP-OCRv6's detector: 60-70 ms a crop here)."""


class PlateLineFinder:
    """PP-OCRv6 small text detector run on the crop; thread-safe (one shared InferenceSession).

    Args:
        max_side: the crop's longest side as the detector sees it (pixels, multiple of 32); crops are
            small, and PaddleOCR's default (shortest side to 736) is 20-50x slower for no gain here.
        second_side: the scale of a reader's second look at an unsure crop (`SECOND_LOOK_SIDE`); None
            for none.
        margin: how `line_crops` grows the plate line (`LINE_MARGIN`; `benchmarks/line_margin.py`).
    """

    def __init__(
        self,
        max_side: int = 320,
        threads: int | None = None,
        margin: tuple[float, float] = LINE_MARGIN,
        second_side: int | None = SECOND_LOOK_SIDE,
    ) -> None:
        self._detector = TextDetPlateDetector(params=TextDetParams(max_side=max_side), threads=threads)
        self.margin = margin
        self.second_side = second_side
        self._remembered: OrderedDict[tuple[object, ...], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def lines(self, image: np.ndarray, max_side: int | None = None) -> np.ndarray:
        """(N, 6) text lines (x1, y1, x2, y2, score, tilt_deg) in crop pixels, side-by-side pieces merged;
        found at `max_side` (default: the finder's own). Read-only: the lines of the last LINES_REMEMBERED
        crops are remembered and handed out again."""
        key = (max_side, pixel_key(image))
        with self._lock:
            found = self._remembered.get(key)
            if found is not None:
                self._remembered.move_to_end(key)
                return found
        found = merge_side_by_side(self._detector.lines(image, max_side))
        found.setflags(write=False)
        with self._lock:
            self._remembered[key] = found
            while len(self._remembered) > LINES_REMEMBERED:
                self._remembered.popitem(last=False)
        return found

    def forget(self) -> None:
        """Drop every remembered crop's lines (so a timing measures the searches)."""
        with self._lock:
            self._remembered.clear()

    def plate_rows(self, image: np.ndarray) -> Rows | None:
        return pick_plate_rows(self.lines(image), image.shape[0])

    def line_crops(self, image: np.ndarray, max_side: int | None = None) -> list[np.ndarray]:
        """A whole-plate crop (a plate detector's box: frame, caption, a bit of car) cut to each of its
        text lines, tallest first (at most `LINES_TRIED`): the plate line first, then the others, for
        a reader whose read of the tallest line is no serial (a sticker's "17" or a slogan such as
        FIRSTINFLIGHT set in large type). Empty when the crop holds no text line (not a plate, or
        unreadable).

        Readers tuned on tight crops misread such crops read whole, and the members' views of them
        (the line, the whole crop) disagree so much that the vote picks fragments: on the bundled
        detector's UCSD crops PlateOCR read 66.7% of plates whole and 86% cut to the line.
        `max_side`: the scale the lines are found at (default: the finder's own; see `second_side`)."""
        return self.cut_lines(image, self.lines(image, max_side))

    def cut_lines(self, image: np.ndarray, found: np.ndarray) -> list[np.ndarray]:
        """`line_crops` of lines already found (`lines`), for a caller that also needs the lines themselves."""
        order = np.argsort(found[:, 1] - found[:, 3], kind="stable")[:LINES_TRIED]
        crops = [cut_line(image, found[i], self.margin) for i in order]
        return [crop for crop in crops if min(crop.shape[:2]) >= 4]


def rows_of(finder: PlateLineFinder | None, image: np.ndarray) -> Rows | None:
    """The plate line's band of `image` found by `finder`; None (read it whole) without a finder."""
    return finder.plate_rows(image) if finder is not None else None


def read_plate_lines(
    images: Sequence[np.ndarray],
    finder: PlateLineFinder | None,
    read_region: Callable[[np.ndarray, Rows | None], PlateRead],
) -> list[PlateRead]:
    """One read per crop (checked BGR uint8), each of its plate line when `finder` finds one."""
    crops = [as_bgr(i, image) for i, image in enumerate(images)]
    return [read_region(crop, rows_of(finder, crop)) for crop in crops]
