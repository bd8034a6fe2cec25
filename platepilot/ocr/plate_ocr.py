"""PlateOCR: the ensemble engine (PaddleOCR's PP-OCRv6, optionally EasyOCR and the CRNN) behind OCREngine.

Per crop: PP-OCRv6's text detector finds the plate line when the crop holds several lines of text
(`PlateLineFinder`); each member reads the region it reads best (the plate line, the whole crop, or
both: see the member classes) and `combine` turns all their reads into one PlateRead. Members are
listed in config (`ocr.plateocr_members`). With `line_crop` (crops from a whole-plate detector) the
crop is first cut to its plate line, and a crop with no text line at all reads as nothing.

Thread safety without a lock: the PaddleOCR and CRNN members and the line finder share onnxruntime
sessions (whose `run` is thread-safe) and keep no state between calls; EasyOCR serialises its own
torch calls. Measured with 4 threads on the 2-core dev box while other jobs used it (64 seg_ocr
crops, default members, three rotations): shared 70.6 ms/plate, one global lock 67.9, one PlateOCR
per thread 65.7. The 4-7% spread is within that box's load noise; a lock would cap a many-core
device at one plate at a time, and per-thread copies multiply every model's memory (and EasyOCR's
~3 s start-up), so the models are shared.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np

from platepilot.errors import PlatepilotError
from platepilot.images import as_bgr, at_most_wide
from platepilot.ocr.crnn_service import CRNNOCRService, decode_read, no_plate_line
from platepilot.ocr.deblur import Deblurrer, deblurrer, surest
from platepilot.ocr.easy import EasyOCRReader
from platepilot.ocr.ensemble import MemberRead, combine
from platepilot.ocr.lines import SECOND_LOOK_BELOW, PlateLineFinder, Rows, enlarged, pick_plate_rows, rows_of
from platepilot.ocr.paddle import PaddleRecognizer
from platepilot.plates.charset import CHARSET
from platepilot.plates.formats import looks_like_serial
from platepilot.types import PlateRead

MEMBERS = ("paddle", "easyocr", "crnn")

MODEL_THREADS = 1
"""Intra-op threads per model. Plates are read in parallel by the runtime's `ocr.workers` threads, not
inside one model call; and multi-threaded inference spins when cores are busy: on the 2-core dev box
under load, 1 thread read a plate 3x faster (PP-OCRv6, onnxruntime) and 12x faster (EasyOCR, torch)
than one per core."""
MAX_READ_WIDTH = 1024
"""A crop wider than this is read scaled down to it: the members read 48 px tall lines, and deblurring costs
as the crop's pixels (a 4,400 px wide photo of a plate took 13.7 s and 1.85 GB)."""


class Member(Protocol):
    """One reader inside the ensemble: its reads of a crop whose plate line is `rows` (None: one line)."""

    name: str

    def read_member(self, image: np.ndarray, rows: Rows | None) -> list[MemberRead]: ...


class PaddleMember:
    """Reads the plate line, and the whole crop too when it holds several lines: if the line was picked
    wrongly (a big state name), the whole-crop read still offers and scores the serial. With `deblur`, an
    unsure serial-like read of a smeared crop is read again deconvolved, as the CRNN member's is
    (`platepilot.ocr.deblur`): the ensemble scores each text by both members, so a right text that only
    the deblurred CRNN finds plausible would still lose to the blurred crop's paddle read."""

    def __init__(self, recognizer: PaddleRecognizer, deblur: Deblurrer | None = None) -> None:
        self.name = recognizer.name
        self._recognizer = recognizer
        self._deblur = deblur

    def read_member(self, image: np.ndarray, rows: Rows | None) -> list[MemberRead]:
        views = [None] if rows is None else [rows, None]
        versions: list[np.ndarray] | None = None  # the crop's deblurred versions, made once if needed
        reads = []
        for view in views:
            probs = self._recognizer.probabilities(image, view)
            read = self._recognizer.decode(probs)
            if self._deblur is not None and read.confidence < self._deblur.below and looks_like_serial(read.text):
                versions = self._deblur.versions([image])[0] if versions is None else versions
                version_probs = [self._recognizer.probabilities(version, view) for version in versions]
                best = surest(probs, version_probs, CHARSET)
                if best is not None:
                    probs = version_probs[best]
                    read = self._recognizer.decode(probs)
            reads.append(MemberRead(read, probs))
        return reads


class CRNNMember:
    """Reads the whole crop, as it is trained to (whole plates, state name and slogan included): a view
    other than PP-OCRv6's line makes its errors more independent, and the vote better (docs/plateocr.md)."""

    def __init__(self, service: CRNNOCRService, format_prior: bool) -> None:
        self.name = service.name
        self._service = service
        self._format_prior = format_prior

    @property
    def service(self) -> CRNNOCRService:
        """The CRNN it reads with (events name its model)."""
        return self._service

    def read_member(self, image: np.ndarray, rows: Rows | None) -> list[MemberRead]:
        if no_plate_line(image):
            return []
        charset = self._service.spec.charset
        decode = partial(decode_read, charset=charset, format_prior=self._format_prior)
        [(probs, read)] = self._service.sharpest([image], self._service.probabilities([image]), decode)
        return [MemberRead(read, probs, charset)]


class EasyMember:
    """Reads the plate line (its recogniser reads one line; fed a whole plate it reads the state name)."""

    def __init__(self, reader: EasyOCRReader) -> None:
        self.name = reader.name
        self._reader = reader

    def read_member(self, image: np.ndarray, rows: Rows | None) -> list[MemberRead]:
        return [MemberRead(self._reader.read_region(image, rows))]


LINE_LOOK_BELOW = 0.995
"""A crop read in its plate line's band (not `line_crop`) with less confidence than this is also read as a
whole-plate crop (cut to its line, `_reads_of_plate_line`), and the surer read wins. A user's crops
may be tight or whole plates with car around them; read in a band, the bundled detector's whole-plate
crops of UCSD gave 62.6% of plates end to end, cut to the line 94.3%. Measured (2026-12-05, reader v11, folded;
UCSD crops / seg_ocr crops / the detector's UCSD crops): never 96.7% / 96.4% / 63.4%; below 0.9
96.7% / 96.4% / 91.1%; below 0.97 96.7% / 96.5% / 92.7%; below 0.995 96.7% / 96.9% / 93.9%; always
95.9% / 96.5% / 94.7%, at twice the time."""


class PlateOCR:
    """The ensemble as an OCREngine; `read` is safe to call from many threads.

    Args:
        members: the readers to combine (at least one).
        lines: finds the plate line in multi-line crops; None reads every crop whole.
        format_prior: among near-equal texts prefer one that matches a plate format.
        line_crop: the crops are whole plates with surroundings (a plate detector's boxes): cut each
            to its plate line before the members read it (`PlateLineFinder.line_crops`); needs `lines`.
    """

    name = "plateocr"

    def __init__(
        self,
        members: Sequence[Member],
        lines: PlateLineFinder | None = None,
        format_prior: bool = True,
        line_crop: bool = False,
    ) -> None:
        if not members:
            raise PlatepilotError(f"PlateOCR needs at least one member: {', '.join(MEMBERS)}")
        if line_crop and lines is None:
            raise PlatepilotError("PlateOCR cuts crops to their plate line only with a line finder")
        self.members = tuple(members)
        self._lines = lines
        self._format_prior = format_prior
        self.line_crop = line_crop

    @property
    def line_finder(self) -> PlateLineFinder | None:
        return self._lines

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        """BGR uint8 crops (H, W, 3) -> one PlateRead per crop, in order."""
        crops = [as_bgr(i, image) for i, image in enumerate(images)]
        empty = PlateRead("", 0.0, engine=self.name)  # a strip no plate line fits
        return [empty if no_plate_line(c) else self._read_one(at_most_wide(c, MAX_READ_WIDTH)) for c in crops]

    def member_reads(self, image: np.ndarray) -> list[MemberRead]:
        """Every member's reads of one crop, in member order (see each member for which region it reads)."""
        return [read for _, reads in self._reads_by_member(image) for read in reads]

    def read_agreed(self, image: np.ndarray) -> tuple[PlateRead, tuple[str, ...]]:
        """One BGR crop's read, and the members whose own read (of any region they read) is that text:
        the evidence `platepilot labels auto` keeps a pseudo-label on."""
        by_member = self._reads_by_member(image)
        read = combine([r for _, reads in by_member for r in reads], self._format_prior, engine=self.name)
        agreed = tuple(name for name, reads in by_member if read.text and any(r.read.text == read.text for r in reads))
        return read, agreed

    def _reads_by_member(self, image: np.ndarray) -> list[tuple[str, list[MemberRead]]]:
        """Cut to the plate line (`line_crop`), or read in the plate line's band; a crop read in its band
        with less than `LINE_LOOK_BELOW` confidence is also read cut to its line, and the surer read
        kept: a crop may be a whole plate with its surroundings after all. The text lines are found
        once for both. A small whole-plate crop is enlarged first (`enlarged`)."""
        if self._lines is None:
            return [(member.name, member.read_member(image, None)) for member in self.members]
        if self.line_crop:
            image = enlarged(image)
            return self._reads_of_plate_line(image, self._lines, self._lines.lines(image))
        found = self._lines.lines(image)
        rows = pick_plate_rows(found, image.shape[0])
        by_rows = [(member.name, member.read_member(image, rows)) for member in self.members]
        if self._confidence(by_rows) >= LINE_LOOK_BELOW:
            return by_rows
        return self._surer(by_rows, self._reads_of_plate_line(image, self._lines, found))

    def _reads_of_plate_line(
        self, image: np.ndarray, lines: PlateLineFinder, found: np.ndarray
    ) -> list[tuple[str, list[MemberRead]]]:
        """A whole-plate crop's reads of its text lines `found` (`_reads_of_lines`); when they are unsure
        (`SECOND_LOOK_BELOW`), also those of the lines found at the finder's `second_side`, and the surer."""
        first = self._reads_of_lines(image, lines.cut_lines(image, found))
        if lines.second_side is None or self._confidence(first) >= SECOND_LOOK_BELOW:
            return first
        return self._surer(first, self._reads_of_lines(image, lines.line_crops(image, lines.second_side)))

    def _reads_of_lines(self, image: np.ndarray, line_crops: list[np.ndarray]) -> list[tuple[str, list[MemberRead]]]:
        """The reads of a whole-plate crop's tallest text line, or of the next line when that one's
        read is no serial (a sticker, a slogan), or of the whole crop when no line's is (the text
        detector can miss a widely spaced serial); nothing for a crop with no text line at all."""
        first: list[tuple[str, list[MemberRead]]] = []
        for line in line_crops:
            by_member = [(member.name, member.read_member(line, None)) for member in self.members]
            if self._reads_a_serial(by_member):
                return by_member
            first = first or by_member
        if not first:
            return first
        whole = [(member.name, member.read_member(image, None)) for member in self.members]
        return whole if self._reads_a_serial(whole) else first

    def _confidence(self, by_member: list[tuple[str, list[MemberRead]]]) -> float:
        return self._combined(by_member).confidence

    def _surer(
        self, first: list[tuple[str, list[MemberRead]]], second: list[tuple[str, list[MemberRead]]]
    ) -> list[tuple[str, list[MemberRead]]]:
        """`second` when its combined read is surer than `first`'s, else `first`."""
        return second if self._confidence(second) > self._confidence(first) else first

    def _reads_a_serial(self, by_member: list[tuple[str, list[MemberRead]]]) -> bool:
        return looks_like_serial(self._combined(by_member).text)

    def _combined(self, by_member: list[tuple[str, list[MemberRead]]]) -> PlateRead:
        return combine([r for _, reads in by_member for r in reads], self._format_prior)

    def _read_one(self, image: np.ndarray) -> PlateRead:
        return combine(self.member_reads(image), self._format_prior, engine=self.name)

    def warmup(self, iterations: int = 1) -> None:
        """Run the line finder and every member on a blank crop, so each has run before the first plate
        (through `read`, a blank crop cut to its line would reach no member)."""
        blank = np.full((48, 160, 3), 255, np.uint8)
        for _ in range(iterations):
            rows = rows_of(self._lines, blank)
            for member in self.members:
                member.read_member(blank, rows)


def build_plate_ocr(
    members: Sequence[str],
    crnn_model: Path | None,
    lines: bool = True,
    format_prior: bool = True,
    threads: int | None = MODEL_THREADS,
    line_crop: bool = False,
    deblur_below: float = 0.0,
    blur_model: Path | None = None,
    finder: PlateLineFinder | None = None,
) -> PlateOCR:
    """PlateOCR with the named members (MEMBERS); `crnn_model` is required when "crnn" is one of them.

    `threads`: intra-op threads of every model (None: one per core). `line_crop` (see PlateOCR)
    applies only with `lines`; `deblur_below` and `blur_model` as in CRNNOCRService (for the crnn and paddle
    members); `finder`: the line finder to use with `lines` (None: its own, shared with nothing).
    A member whose package is missing raises PlatepilotError naming the extra to install.
    """
    unknown = [m for m in members if m not in MEMBERS]
    if unknown:
        raise PlatepilotError(f"unknown PlateOCR member {unknown[0]!r}; use some of: {', '.join(MEMBERS)}")
    built: list[Member] = []
    for name in members:
        if name == "paddle":
            recognizer = PaddleRecognizer(format_prior=format_prior, threads=threads)
            built.append(PaddleMember(recognizer, deblurrer(deblur_below, blur_model)))
        elif name == "easyocr":
            built.append(EasyMember(EasyOCRReader(threads=threads)))
        elif crnn_model is None:
            raise PlatepilotError("PlateOCR member 'crnn' needs a CRNN model path")
        else:
            service = CRNNOCRService(
                crnn_model, format_prior=format_prior, threads=threads, deblur_below=deblur_below, blur_model=blur_model
            )
            built.append(CRNNMember(service, format_prior))
    finder = (finder or PlateLineFinder(threads=threads)) if lines else None
    return PlateOCR(built, finder, format_prior, line_crop and lines)
