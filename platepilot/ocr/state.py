"""State identification: which state (or territory) issued the plate in a crop, through onnxruntime.

A small CNN trained by `platepilot state train` sees the whole crop resized to the card's
height x width and returns one logit per class: the postal codes, plus `unknown` for crops that are
not plates (training shows it noise, car paint and scrambled plates). The runtime says `unknown`,
with the best state's probability as its (low) confidence, when that class wins or when no state
reaches `min_confidence`. Everything needed to feed the network lives in its JSON sidecar
(`StateCard`), with the ONNX file's sha256.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from platepilot.detect.platenet import normalise
from platepilot.errors import PlatepilotError
from platepilot.images import as_bgr
from platepilot.levels import stretched
from platepilot.ocr.base import apply_format_prior, prior_candidates
from platepilot.ocr.state_name import StateNameReader
from platepilot.plates.formats import match_format, matching_formats
from platepilot.plates.states import STATE_NAMES, UNKNOWN, format_regions, site_regions
from platepilot.sessions import check_input_shape, load_sidecar, open_session, save_sidecar
from platepilot.track.quality import sharpness
from platepilot.types import PlateRead

if TYPE_CHECKING:
    from platepilot.config import StateConfig

BUNDLED_STATE_MODEL = Path(__file__).resolve().parents[1] / "assets" / "plate_state.onnx"
BATCH = 64


class StateCard(BaseModel):
    """The sidecar of a state classifier: its classes, how to feed it, where it came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["state"] = "state"
    classes: tuple[str, ...] = Field(description="Output order: postal codes, and `unknown` for non-plates.")
    height: int = Field(description="Network input height, pixels.", ge=16, le=512)
    width: int = Field(description="Network input width, pixels.", ge=16, le=1024)
    channel_order: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    onnx_sha256: str = ""
    training: dict[str, Any] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)

    @field_validator("classes")
    @classmethod
    def _known_classes(cls, classes: tuple[str, ...]) -> tuple[str, ...]:
        bad = [c for c in classes if c != UNKNOWN and c not in STATE_NAMES]
        if bad or len(set(classes)) != len(classes) or len(classes) < 2:
            raise ValueError(f"classes must be distinct postal codes or {UNKNOWN!r}, got {bad or classes}")
        return classes


@dataclass(frozen=True, slots=True)
class StateGuess:
    """`state` a postal code or `unknown`; `confidence` the best state's probability in [0, 1];
    `top` the three likeliest states, best first, with their probabilities."""

    state: str
    confidence: float
    top: tuple[tuple[str, float], ...] = ()


def load_state_card(model_path: Path) -> StateCard:
    return load_sidecar(model_path, StateCard, "state classifier")


def save_state_card(model_path: Path, card: StateCard) -> None:
    save_sidecar(model_path, card)


def state_input(images: list[np.ndarray], card: StateCard) -> np.ndarray:
    """BGR uint8 crops of any size -> (N, 3, height, width) float32, as training and serving feed them."""
    blobs = []
    for image in images:
        if image.ndim == 2:
            image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        shrink = image.shape[0] > card.height or image.shape[1] > card.width
        resized = cv2.resize(
            image, (card.width, card.height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
        blobs.append(normalise(resized, card))
    return np.stack(blobs) if blobs else np.zeros((0, 3, card.height, card.width), np.float32)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def guesses(probs: np.ndarray, classes: tuple[str, ...], min_confidence: float) -> list[StateGuess]:
    """Per-row class probabilities -> guesses; `unknown` when it wins or the best state is below the floor."""
    state_cols = [i for i, c in enumerate(classes) if c != UNKNOWN]
    unknown_col = classes.index(UNKNOWN) if UNKNOWN in classes else None
    out = []
    for row in probs:
        order = sorted(state_cols, key=lambda i: -row[i])
        best = order[0]
        top = tuple((classes[i], float(row[i])) for i in order[:3])
        unknown_wins = unknown_col is not None and row[unknown_col] > row[best]
        state = UNKNOWN if unknown_wins or row[best] < min_confidence else classes[best]
        out.append(StateGuess(state, float(row[best]), top))
    return out


class StateClassifier:
    """The bundled (or a user-trained) state classifier through onnxruntime. Thread-safe."""

    def __init__(
        self,
        model_path: Path | None = None,
        min_confidence: float = 0.5,
        threads: int | None = None,
        names: StateNameReader | None = None,
        names_below: float = 1.0,
        min_sharpness: float = 0.0,
    ) -> None:
        self.model_path = model_path or BUNDLED_STATE_MODEL
        self.names = names
        self.names_below = names_below
        self.min_sharpness = min_sharpness
        self.card = load_state_card(self.model_path)
        self.min_confidence = min_confidence
        self._session = open_session(self.model_path, "state classifier", threads=threads)
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 4 or len(outputs) != 1:
            raise PlatepilotError(f"{self.model_path}: not a state classifier (expected one (N, 3, H, W) input)")
        check_input_shape(self._session, self.model_path, (3, self.card.height, self.card.width))
        if outputs[0].shape[-1] != len(self.card.classes):
            raise PlatepilotError(
                f"{self.model_path}: outputs {outputs[0].shape[-1]} classes, its sidecar lists {len(self.card.classes)}"
            )
        self._input = inputs[0].name

    def logits(self, batch: np.ndarray) -> np.ndarray:
        """(N, len(classes)) logits of a batch already made network input (`state_input`)."""
        logits: np.ndarray = self._session.run(None, {self._input: batch})[0]
        return logits

    def probabilities(self, images: list[np.ndarray]) -> np.ndarray:
        """(N, len(classes)) softmax probabilities for BGR crops, in batches of BATCH."""
        chunks = [
            softmax(self.logits(state_input(images[i : i + BATCH], self.card))) for i in range(0, len(images), BATCH)
        ]
        return np.concatenate(chunks) if chunks else np.zeros((0, len(self.card.classes)), np.float32)

    def classify(self, images: list[np.ndarray], read_names: bool = True) -> list[StateGuess]:
        """One guess per crop (empty or degenerate crops give `unknown` with confidence 0); with a name
        reader (and `read_names`), a state name read on the plate overrides the classifier
        (`with_name`), read only where the classifier is less sure than `names_below` (all crops at 1).
        A crop softer than `min_sharpness` gets `unknown` with confidence 0 from the classifier (its
        ranking stays in `top`), so only a name read on it can give it a state. A flat crop (dusk, haze)
        is stretched first, as the runtime stretches a flat frame (`levels.stretched`): the classifier
        learnt daylight photos, and the valid+test photos at dusk were named right 44.6% of the time
        plain and 85.2% stretched, in haze 4.6% and 85.7% (as they are: 85.7% either way; 2026-12-07)."""
        images = [stretched(as_bgr(i, im)) if im.ndim in (2, 3) and im.size else im for i, im in enumerate(images)]
        usable = [i for i, im in enumerate(images) if im.ndim in (2, 3) and im.shape[0] >= 2 and im.shape[1] >= 2]
        found = guesses(self.probabilities([images[i] for i in usable]), self.card.classes, self.min_confidence)
        out = [StateGuess(UNKNOWN, 0.0)] * len(images)
        for i, guess in zip(usable, found, strict=True):
            if self.min_sharpness > 0 and sharpness(images[i]) < self.min_sharpness:
                guess = StateGuess(UNKNOWN, 0.0, guess.top)
            named = None
            if read_names and self.names is not None and self.unsure(guess.confidence):
                named = self.names.read(images[i], dict(guess.top))
            out[i] = with_name(guess, named) if named is not None else guess
        return out

    def unsure(self, confidence: float) -> bool:
        """Whether a state guessed with `confidence` is unsure enough to ask the name reader (`names_below`)."""
        return self.names_below >= 1 or confidence < self.names_below


def state_classifier(
    config: StateConfig, model_path: Path | None = None, threads: int | None = None
) -> StateClassifier:
    """The classifier `state:` settings describe (`model_path` overrides theirs), with its name reader if asked."""
    names = StateNameReader(config.name_min_score) if config.read_names else None
    return StateClassifier(model_path or config.model_path, config.min_confidence, threads=threads, names=names,
                           names_below=config.read_names_below, min_sharpness=config.min_sharpness)  # fmt: skip


def with_name(guess: StateGuess, named: tuple[str, float]) -> StateGuess:
    """The state whose name was read on the plate wins, with the match score (0-100) as its confidence;
    the classifier's other states follow it in `top`."""
    code, score = named
    confidence = max(score / 100, dict(guess.top).get(code, 0.0))
    top = ((code, confidence), *[t for t in guess.top if t[0] != code])[:3]
    return StateGuess(code, confidence, top)


def with_state(read: PlateRead, guess: StateGuess, format_prior: bool = True, site: str | None = None) -> PlateRead:
    """`read` with the state of `guess`; with the format prior, a read whose text fits none of its
    state's formats becomes the near-equal candidate that does, if one does (Florida's formats for FL;
    a state's own formats only in place: `prior_candidates`). A plate of unknown state at a site that
    names its state (`site`, `ocr.site_state`) is taken for one of the site's, whose formats a read may
    also be turned into by one unsure character (`format_regions`, `site_regions`)."""
    read = replace(read, state=guess.state, state_confidence=round(guess.confidence, 4))
    regions = format_regions(guess.state, site)
    if not format_prior or regions is None:
        return read
    if not read.candidates or matching_formats(read.text, regions):  # named by its state's format
        return replace(read, format_match=match_format(read.text, regions))
    candidates = prior_candidates(read.candidates, len(read.text), regions)
    text, prob = apply_format_prior(candidates, regions=regions, swap_into=site_regions(guess.state, site))
    if text == read.text or not matching_formats(text, regions):
        return read
    # A candidate's probability is of the whole text: per character, as `decode_read` gives a prior's pick,
    # and never surer than the read it replaces (a raw P(text) of 0.32 fell below ocr_min_confidence and
    # the runtime dropped the corrected read).
    confidence = min(read.confidence, prob ** (1.0 / len(text))) if text else 0.0
    return replace(read, text=text, confidence=confidence, char_confidences=(confidence,) * len(text),
                   format_match=match_format(text, regions))  # fmt: skip
