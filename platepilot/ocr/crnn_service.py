"""Serving the CRNN plate reader with onnxruntime: batched, thread-safe, with top-k candidates.

One `InferenceSession` is shared by every thread (`InferenceSession.run` is thread-safe), and `read`
keeps no state between calls, so a ThreadPoolExecutor can call it concurrently. The model's input
size, charset and normalisation come from its sidecar (`platepilot.ocr.spec`), never from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort

from platepilot.errors import PlatepilotError
from platepilot.images import as_bgr, scaled
from platepilot.ocr.band import Band, agreed, band_cuts
from platepilot.ocr.base import PRIOR_RATIO, apply_format_prior, variant_scores
from platepilot.ocr.ctc import beam_search, greedy_decode, softmax, text_probabilities
from platepilot.ocr.deblur import deblurrer, surest
from platepilot.ocr.ensemble import MemberRead
from platepilot.ocr.lines import PlateLineFinder, enlarged
from platepilot.ocr.spec import ModelCard, ModelSpec, load_card, preprocess
from platepilot.ocr.views import margin_views, vote_views
from platepilot.plates.formats import looks_like_serial, match_format, matching_formats
from platepilot.sessions import check_input_shape, open_session
from platepilot.types import PlateRead

log = logging.getLogger(__name__)

# When the greedy path alone has probability p > 1 / (1 + PRIOR_RATIO), every other text has less
# than 1 - p < PRIOR_RATIO * p, so no candidate is near-equal and the prior cannot change the pick.
# The beam search (pure Python, ~2 ms a crop, more than the network) is then skipped, and the read's
# only candidate is itself: confident reads pay for no search.
BEAM_SKIP_PATH_PROB = 1.0 / (1.0 + PRIOR_RATIO)
# A crop this many times taller than wide holds no plate line: squeezed to the model's 32 x 128 it is
# noise the reader can still make a character of (a 10000 x 20 strip read as `E`), so it reads as empty.
MAX_TALL_RATIO = 2.0
# Nor does one this many times wider than tall (a plate line is about 3-8 times as wide): a 20 x 10000 strip
# of noise read as `0` once PlateOCR scaled it down to read.
MAX_WIDE_RATIO = 25.0


class CRNNOCRService:
    """Reads plate crops with a CRNN exported to ONNX (plus its JSON sidecar).

    Args:
        model_path: the `.onnx` file; its sidecar `<name>.json` must sit beside it.
        use_gpu: try CUDA first (falls back to CPU, with a warning, when onnxruntime has no CUDA).
        batch_size: crops per `InferenceSession.run`.
        format_prior: among near-equal candidates prefer a text matching a Florida/US plate format.
        beam_width: prefix beam search width; 0 disables the search (candidates = greedy read only).
        top_k: candidates kept per read.
        threads: onnxruntime intra-op threads (None: onnxruntime's default, one per core).
        lines: cut each crop to its plate line first (`PlateLineFinder.line_crops`), for crops from a
            whole-plate detector: the tallest line's read, or the next line's, or the whole crop's,
            whichever first looks like a serial (as PlateOCR does); a crop with no text line reads as
            nothing. On the bundled plate detector's UCSD crops the CRNN read 9.3% of plates whole
            and 85.4% cut to the line (2026-12-02).
        deblur_below: a read less confident than this has its crop's motion smear estimated, and a
            smeared crop is read again from versions deconvolved along it (`platepilot.ocr.deblur`);
            the most confident read wins; 0 never deblurs.
        blur_model: the blur estimator deblurring uses (None: the bundled one).
        views_below: a read (after deblurring) less confident than this is read again from the crop
            grown and cut by a few percent, and the three reads vote (`platepilot.ocr.views`); 0 never.
        band: with `lines`, read each crop's middle band first and search the lines only of crops whose
            band reads do not agree surely (`platepilot.ocr.band`); None: search every crop's lines.

    Each crop's read follows `decode_read`.
    """

    name = "crnn"

    def __init__(
        self,
        model_path: Path | str,
        use_gpu: bool = False,
        batch_size: int = 64,
        format_prior: bool = True,
        beam_width: int = 8,
        top_k: int = 5,
        threads: int | None = None,
        lines: PlateLineFinder | None = None,
        deblur_below: float = 0.0,
        blur_model: Path | None = None,
        views_below: float = 0.0,
        band: Band | None = None,
    ) -> None:
        if batch_size < 1 or top_k < 1 or beam_width < 0:
            raise PlatepilotError(
                f"CRNNOCRService: batch_size ({batch_size}) and top_k ({top_k}) must be >= 1, "
                f"beam_width ({beam_width}) >= 0"
            )
        self._path = Path(model_path)
        self._card = load_card(self._path)
        self._session = open_session(self._path, "model", use_gpu, threads, sha256=self._card.sha256 or None)
        self._input = _check_io(self._session, self._path, self._card.spec)
        self._batch_size = batch_size
        self._format_prior = format_prior
        self._beam_width = beam_width
        self._top_k = top_k
        self._lines = lines
        self._deblur = deblurrer(deblur_below, blur_model)
        self._views_below = views_below
        self._band = band if lines is not None else None

    @property
    def spec(self) -> ModelSpec:
        return self._card.spec

    @property
    def card(self) -> ModelCard:
        return self._card

    @property
    def model_path(self) -> Path:
        return self._path

    @property
    def line_finder(self) -> PlateLineFinder | None:
        return self._lines

    def read(self, images: Sequence[np.ndarray]) -> list[PlateRead]:
        """BGR uint8 crops (H, W, 3), or grey (H, W), any size -> one PlateRead per crop, in order."""
        return self.read_noting_band(images)[0]

    def read_noting_band(self, images: Sequence[np.ndarray]) -> tuple[list[PlateRead], list[bool]]:
        """`read`, and for each crop whether its read is its middle band's agreed read (`band`): a read final
        by the band's own rule, which the cascade keeps however sure it is."""
        crops = [as_bgr(i, image) for i, image in enumerate(images)]
        if self._lines is None:
            return self._read_crops(crops), [False] * len(crops)
        banded = self._band_reads(crops, self._band) if self._band is not None else [None] * len(crops)
        unread = [crop for crop, read in zip(crops, banded, strict=True) if read is None]
        searched = iter(self._read_lines(self._lines, unread))
        reads = [read if read is not None else next(searched) for read in banded]
        return reads, [read is not None for read in banded]

    def _band_reads(self, crops: list[np.ndarray], band: Band) -> list[PlateRead | None]:
        """Each crop's read of its middle band where its two cuts, read plainly, agree surely, else None
        (`ocr.band`)."""
        cuts = [band_cuts(crop, band.margin) for crop in crops]
        flat_cuts = [cut for group in cuts for cut in group]
        flat = iter([self._decode(p) for p in self._probabilities_batched(flat_cuts)] if flat_cuts else [])
        return [agreed([next(flat) for _ in group], band.sure) if group else None for group in cuts]

    def _read_lines(self, finder: PlateLineFinder, crops: list[np.ndarray]) -> list[PlateRead]:
        """Whole-plate crops read by their lines (see `lines` in the class doc)."""
        # Each crop's text lines (found on a small crop enlarged), tallest first, then the whole crop (as
        # PlateOCR tries them): the tallest lines in one batch, the other choices only of crops whose
        # tallest line is no serial
        # A strip no plate line fits reads as nothing before it is enlarged (1 x 30,000 px became 80 x 2.4 M)
        crops = [crop if no_plate_line(crop) else enlarged(crop) for crop in crops]
        options = [[] if no_plate_line(crop) else finder.line_crops(crop) for crop in crops]
        options = [[*lines, crop] if lines else [] for lines, crop in zip(options, crops, strict=True)]
        firsts = iter(self._read_crops([choices[0] for choices in options if choices]))
        reads = [next(firsts) if choices else PlateRead("", 0.0, engine=self.name) for choices in options]
        retry = [i for i, choices in enumerate(options) if choices and not looks_like_serial(reads[i].text)]
        rest = iter(self._read_crops([choice for i in retry for choice in options[i][1:]]))
        for i in retry:
            others = [next(rest) for _ in options[i][1:]]
            reads[i] = next((read for read in others if looks_like_serial(read.text)), reads[i])
        return reads

    def _read_crops(self, crops: list[np.ndarray]) -> list[PlateRead]:
        readable = [i for i, crop in enumerate(crops) if not no_plate_line(crop)]
        reads = [PlateRead("", 0.0, engine=self.name) for _ in crops]
        for start in range(0, len(readable), self._batch_size):
            batch = readable[start : start + self._batch_size]
            batch_crops = [crops[i] for i in batch]
            sharpest = self.sharpest(batch_crops, self.probabilities(batch_crops), self._decode)
            for i, read in zip(batch, self._with_views(batch_crops, sharpest), strict=True):
                reads[i] = read
        return reads

    def _with_views(self, crops: Sequence[np.ndarray], out: list[tuple[np.ndarray, PlateRead]]) -> list[PlateRead]:
        """Each crop's read; one less confident than `views_below` is the vote of the crop's read and of its
        two `margin_views` (greedy reads: the vote scores every text by all three views anyway)."""
        unsure = [i for i, (_, read) in enumerate(out) if read.text and read.confidence < self._views_below]
        reads = [read for _, read in out]
        if not unsure:
            return reads
        charset = self.spec.charset
        views = [margin_views(crops[i]) for i in unsure]
        view_probs = iter(self._probabilities_batched([view for group in views for view in group]))
        for i, group in zip(unsure, views, strict=True):
            probs, read = out[i]  # of the deblurred version, where deblurring won
            others = [next(view_probs) for _ in group]
            members = [MemberRead(read, probs, charset)]
            members += [MemberRead(self._greedy(p), p, charset) for p in others]
            reads[i] = vote_views(members, self._format_prior, self.name)
        return reads

    def _deblur_view(self, crop: np.ndarray) -> np.ndarray:
        """The crop to deconvolve: grey for a grey model, and at most twice the model's input width
        (the blur lengths tried are of plates about that size; a larger crop only costs more FFT)."""
        image = cv2.cvtColor(crop, cv2.COLOR_BGR2GRAY) if self.spec.channels == 1 and crop.ndim == 3 else crop
        scale = 2 * self.spec.width / image.shape[1]
        if scale < 1:
            image = scaled(image, scale)
        return image

    def _greedy(self, probs: np.ndarray) -> PlateRead:
        return decode_read(probs, self.spec.charset, beam_width=0, format_prior=False)

    def _decode(self, probs: np.ndarray) -> PlateRead:
        return decode_read(probs, self.spec.charset, self._beam_width, self._top_k, self._format_prior)

    def sharpest(
        self, crops: Sequence[np.ndarray], probs: np.ndarray, decode: Callable[[np.ndarray], PlateRead]
    ) -> list[tuple[np.ndarray, PlateRead]]:
        """(probabilities, read) of each crop given its `probs`: a serial-like read (`looks_like_serial`)
        less confident than the deblurrer's `below`, of a crop smeared by motion, becomes that of
        whichever of the crop and its deblurred versions with a serial-like read the network reads most
        surely (greedy path: only the winner pays for the beam search). All versions are read in full
        batches.

        Only serials are deblurred: deconvolution sharpens noise too, and a caption or a badge read as
        `F` came back as `X4993`, a serial the plate-line fallback then took instead of the plate."""
        out = [(p, decode(p)) for p in probs]
        if self._deblur is None:
            return out
        unsure = [
            i
            for i, (_, read) in enumerate(out)
            if read.confidence < self._deblur.below and looks_like_serial(read.text)
        ]
        if not unsure:
            return out
        versions = self._deblur.versions([self._deblur_view(crops[i]) for i in unsure])
        flat = [v for group in versions for v in group]
        if not flat:
            return out
        flat_probs = iter(self._probabilities_batched(flat))
        for i, group in zip(unsure, versions, strict=True):
            group_probs = [next(flat_probs) for _ in group]
            best = surest(out[i][0], group_probs, self.spec.charset)
            if best is not None:
                out[i] = group_probs[best], decode(group_probs[best])
        return out

    def _probabilities_batched(self, crops: list[np.ndarray]) -> np.ndarray:
        """`probabilities` of any number of crops, batch_size at a time."""
        step = self._batch_size
        return np.concatenate([self.probabilities(crops[k : k + step]) for k in range(0, len(crops), step)])

    def probabilities(self, crops: list[np.ndarray]) -> np.ndarray:
        """One batch of crops -> softmax probabilities (N, T, classes), class 0 the CTC blank."""
        return self.infer(preprocess(crops, self.spec))

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Preprocessed float32 (N, C, H, W) -> softmax probabilities (N, T, classes)."""
        logits = self._session.run(None, {self._input: batch})[0]
        return softmax(logits.transpose(1, 0, 2))

    def warmup(self, iterations: int = 3) -> None:
        """Run blank crops through at batch 1 and at full batch, so the first real read is not slow."""
        spec = self.spec
        blank = np.full((spec.height, spec.width, 3), 128, np.uint8)
        for _ in range(iterations):
            self.read([blank])
            self.probabilities([blank] * self._batch_size)


def no_plate_line(crop: np.ndarray) -> bool:
    """Whether `crop` is too tall (MAX_TALL_RATIO) or too thin (MAX_WIDE_RATIO) to hold a plate line."""
    height, width = crop.shape[:2]
    return bool(height > MAX_TALL_RATIO * width or width > MAX_WIDE_RATIO * height)


def decode_read(
    probs: np.ndarray,
    charset: str,
    beam_width: int = 8,
    top_k: int = 5,
    format_prior: bool = True,
    engine: str = "crnn",
) -> PlateRead:
    """(T, classes) softmax probabilities of one crop -> its PlateRead.

    The text is the greedy (best path) read. With `format_prior`, when that text matches no named
    plate format but a near-equal beam candidate does (`apply_format_prior`), the candidate wins; a
    greedy text no state issues (`LRAR512`) also has its one-character format variants scored by the
    forward algorithm (`variant_scores`), so the prior's swap can reach a `4RAR512` the beam missed.
    Confidence is the mean per-character max probability of the greedy path (0.0 for an empty read);
    a prior-picked candidate has no single path, so it gets its probability ** (1 / len) instead.
    `candidates` are the beam's top-k (text, probability), the greedy text always among them.
    """
    text, char_confs = greedy_decode(probs, charset)
    path_prob = float(np.prod(probs.max(axis=-1)))  # one path of `text`: a lower bound on P(text)
    candidates: list[tuple[str, float]] = []
    if beam_width and path_prob <= BEAM_SKIP_PATH_PROB:
        candidates = beam_search(probs, charset, beam_width, top_k)
    if text not in {c for c, _ in candidates}:
        candidates = sorted([*candidates[: top_k - 1], (text, path_prob)], key=_by_prob)
    chosen = text
    if format_prior and not matching_formats(text):
        variants = variant_scores(text, _spelled_scorer(probs, charset), dict(candidates))
        picked = apply_format_prior([*candidates, *variants.items()], PRIOR_RATIO)[0]
        chosen = picked if matching_formats(picked) else text
        if chosen in variants:  # the top-k keep the greedy text and the chosen variant
            others = [c for c in candidates if c[0] != text][: top_k - 2]
            candidates = sorted([*others, (text, dict(candidates)[text]), (chosen, variants[chosen])], key=_by_prob)
    if chosen == text:
        confidence = float(np.mean(char_confs)) if char_confs else 0.0
    else:
        confidence = dict(candidates)[chosen] ** (1.0 / len(chosen))
        char_confs = (confidence,) * len(chosen)
    return PlateRead(
        text=chosen,
        confidence=_unit(confidence),
        char_confidences=tuple(_unit(c) for c in char_confs),
        engine=engine,
        candidates=tuple((c, _unit(p)) for c, p in candidates),
        format_match=match_format(chosen),
    )


VARIANT_MIN_STEP_PROB = 0.01
"""A format variant is scored only if each of its characters reaches this probability at some CTC step:
a one-character variant of a plate mostly holds a character the crop plainly does not show, and every
text scored widens the forward algorithm's transition matrix, whose cost grows as its square."""


def _spelled_scorer(probs: np.ndarray, charset: str) -> Callable[[list[str]], list[float]]:
    """P(text | probs) of each of a list of texts by the forward algorithm, or 0.0 at once for a text
    with a character no step of `probs` gives `VARIANT_MIN_STEP_PROB`."""
    seen = {charset[i] for i in np.nonzero(probs[:, 1:].max(axis=0) >= VARIANT_MIN_STEP_PROB)[0]}

    def score(texts: list[str]) -> list[float]:
        plausible = [text for text in texts if set(text) <= seen]
        scored = dict(zip(plausible, text_probabilities(probs[None], charset, plausible)[:, 0], strict=True))
        return [float(scored.get(text, 0.0)) for text in texts]

    return score


def _by_prob(candidate: tuple[str, float]) -> float:
    return -candidate[1]


def _unit(x: float) -> float:
    return min(max(float(x), 0.0), 1.0)


def _check_io(session: ort.InferenceSession, path: Path, spec: ModelSpec) -> str:
    """The input name, after checking the graph matches the sidecar's spec (shape and classes)."""
    inputs, outputs = session.get_inputs(), session.get_outputs()
    if len(inputs) != 1 or not outputs:
        raise PlatepilotError(f"{path}: expected one image input and a logits output, got {len(inputs)} inputs")
    check_input_shape(session, path, (spec.channels, spec.height, spec.width))
    classes = outputs[0].shape[-1] if outputs[0].shape else None
    if isinstance(classes, int) and classes != spec.num_classes:
        raise PlatepilotError(
            f"{path}: model outputs {classes} classes but its sidecar charset needs {spec.num_classes} "
            "(charset + blank); the sidecar belongs to another model"
        )
    return str(inputs[0].name)
