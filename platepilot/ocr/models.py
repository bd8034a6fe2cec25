"""Which reader model to load, and which engine to build for a configured engine name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import platepilot
from platepilot.config import Settings
from platepilot.detect.base import PlateDetector
from platepilot.errors import PlatepilotError
from platepilot.ocr.band import Band, Margin
from platepilot.ocr.base import OCREngine
from platepilot.ocr.cascade import CascadeOCR
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.gate_record import read_gate_record
from platepilot.ocr.lines import PlateLineFinder
from platepilot.ocr.plate_ocr import MODEL_THREADS, PlateOCR, build_plate_ocr
from platepilot.ocr.spec import load_card

BUNDLED_MODEL = Path(platepilot.__file__).parent / "assets" / "florida_plate_ocr.onnx"
"""The default CRNN shipped in the package: synthetic plates, then pseudo-labelled real photos (its model card)."""


def resolve_model(path: Path | None, settings: Settings) -> Path:
    """The CRNN model to load: `path` if given (it must exist), else the config's `ocr.model_path`
    (where the guide's training command writes) if it exists, else the bundled default."""
    if path is not None:
        if not path.is_file():
            raise PlatepilotError(f"{path}: model not found")
        return path
    trained = settings.ocr.model_path
    if trained.is_file():
        return trained
    if BUNDLED_MODEL.is_file():
        return BUNDLED_MODEL
    raise PlatepilotError(
        f"no CRNN model: neither {trained} (deploy one with `platepilot models deploy` or `platepilot sync`) "
        f"nor the bundled {BUNDLED_MODEL} exists; pass --model PATH"
    )


@dataclass(frozen=True)
class ReaderChoice:
    """The reader an engine name resolves to: `engine` is built, and `reason` says why (one line)."""

    engine: str
    reason: str
    member: Path | None = None
    """PlateOCR's crnn member when it must not be the deployed CRNN (None: `resolve_model`'s choice)."""


def choose_reader(engine_name: str, model_path: Path | None, settings: Settings) -> ReaderChoice:
    """Which reader `engine_name` means here; for `auto`, the best measured one (see `_auto_choice`)."""
    if engine_name != "auto":
        return ReaderChoice(engine_name, f"the engine is set to {engine_name!r}")
    return _auto_choice(model_path, settings)


def _auto_choice(model_path: Path | None, settings: Settings) -> ReaderChoice:
    """A CRNN named with --model is read alone. A deployed CRNN (at `ocr.model_path`) replaces PlateOCR
    only if its recorded gate result beats PlateOCR's on the same plates; otherwise it joins PlateOCR
    as its `crnn` member (in place of the bundled one) if PlateOCR read no worse with it at the gate,
    and reads first in their cascade if that cascade read no worse than PlateOCR with it at the gate
    (measured at the gate's `ocr.cascade_sure`); else the bundled CRNN's cascade reads. Nothing deployed:
    the cascade of the bundled CRNN and PlateOCR (`CascadeOCR`)."""
    if model_path is not None:
        return ReaderChoice("crnn", f"--model {model_path} names a CRNN")
    deployed = settings.ocr.model_path
    if not deployed.is_file():
        return ReaderChoice("cascade", f"no CRNN deployed at {deployed}: {_cascade_note(settings)}", BUNDLED_MODEL)
    try:
        card = load_card(deployed)  # its sha256 too: a model cut short by a power cut must not stop the device
    except PlatepilotError as exc:  # PlateOCR with the bundled CRNN: its member must not be the broken one
        return ReaderChoice("plateocr", f"the deployed CRNN is unusable ({exc}): PlateOCR", BUNDLED_MODEL)
    record = read_gate_record(deployed, card.sha256)
    if record is None:
        why = f"the CRNN at {deployed} has no gate result (deploy it with `platepilot models deploy` or sync)"
        return ReaderChoice("plateocr", f"{why}: PlateOCR{_member_note(settings, True)}")
    versus = f"{record.candidate.summary()}; {record.default.summary()}"
    role = record.auto_role()
    if role == "alone":
        return ReaderChoice("crnn", f"the deployed CRNN beat PlateOCR at its gate ({versus})")
    if record.member is not None:
        versus += f"; {record.member.summary()}"
    if role == "unused":
        return ReaderChoice(
            "cascade", f"the deployed CRNN did not beat PlateOCR at its gate and made it read worse as its crnn "
            f"member ({versus}): {_cascade_note(settings)}",
            member=BUNDLED_MODEL,
        )  # fmt: skip
    if role == "cascade" and record.cascade is not None:
        return ReaderChoice(
            "cascade", f"the deployed CRNN did not beat PlateOCR at its gate, and its cascade read as well as PlateOCR "
            f"with it as its crnn member ({versus}; {record.cascade.summary()}): {_cascade_note(settings, True)}",
        )  # fmt: skip
    return ReaderChoice(
        "plateocr", f"the deployed CRNN did not beat PlateOCR at its gate ({versus}): PlateOCR"
        f"{_member_note(settings, True)}"
    )  # fmt: skip


def _cascade_note(settings: Settings, deployed: bool = False) -> str:
    band = settings.ocr.band_sure
    return (
        f"the {'deployed' if deployed else 'bundled'} CRNN, and PlateOCR{_member_note(settings, deployed)} for the "
        f"reads it is less sure of than {settings.ocr.cascade_sure:g} (ocr.cascade_sure)"
        + (
            ""
            if band is None
            else f", but not for whole plates whose middle band it reads {band:g} sure (ocr.band_sure)"
        )
    )


def _member_note(settings: Settings, deployed: bool) -> str:
    if "crnn" not in settings.ocr.plateocr_members:
        return " (ocr.plateocr_members has no crnn member)"
    return " with the deployed CRNN as its crnn member" if deployed else " with the bundled CRNN as its crnn member"


def _crnn(
    model_path: Path | None,
    settings: Settings,
    whole_plates: bool = False,
    plate_margin: Margin | None = None,
    finder: PlateLineFinder | None = None,
) -> OCREngine:
    lines = (finder or PlateLineFinder(threads=MODEL_THREADS)) if whole_plates else None
    sure = settings.ocr.band_sure
    band = Band(plate_margin, sure) if lines is not None and plate_margin is not None and sure is not None else None
    return crnn_alone(resolve_model(model_path, settings), settings, lines, band)


def crnn_alone(
    model_path: Path, settings: Settings, lines: PlateLineFinder | None = None, band: Band | None = None
) -> CRNNOCRService:
    """The CRNN at `model_path` reading alone, as `settings.ocr` configures it."""
    o = settings.ocr
    return CRNNOCRService(
        model_path,
        format_prior=o.format_prior,
        lines=lines,
        deblur_below=o.deblur_below,
        blur_model=o.blur_model_path,
        views_below=o.views_below,
        band=band,
    )


def _lines(settings: Settings) -> PlateLineFinder | None:
    return PlateLineFinder(threads=MODEL_THREADS) if settings.ocr.plateocr_lines else None


def _paddle(model_path: Path | None, settings: Settings) -> OCREngine:
    from platepilot.ocr.paddle import PaddleRecognizer

    return PaddleRecognizer(_lines(settings), format_prior=settings.ocr.format_prior, threads=MODEL_THREADS)


def _easyocr(model_path: Path | None, settings: Settings) -> OCREngine:
    from platepilot.ocr.easy import EasyOCRReader

    return EasyOCRReader(_lines(settings), threads=MODEL_THREADS)


def _plateocr(
    model_path: Path | None, settings: Settings, whole_plates: bool = False, plate_margin: Margin | None = None
) -> OCREngine:
    return plate_ocr_for(model_path, settings, whole_plates)


def plate_ocr_for(
    model_path: Path | None, settings: Settings, whole_plates: bool = False, finder: PlateLineFinder | None = None
) -> PlateOCR:
    """PlateOCR as `settings.ocr` configures it, with the CRNN at `model_path` (None: the configured one), and
    `finder` as its line finder (None: its own)."""
    o = settings.ocr
    crnn = resolve_model(model_path, settings) if "crnn" in o.plateocr_members else None
    return build_plate_ocr(
        o.plateocr_members,
        crnn,
        o.plateocr_lines,
        o.format_prior,
        line_crop=whole_plates,
        deblur_below=o.deblur_below,
        blur_model=o.blur_model_path,
        finder=finder,
    )


def _cascade(
    model_path: Path | None, settings: Settings, whole_plates: bool = False, plate_margin: Margin | None = None
) -> OCREngine:
    """The CRNN alone, then PlateOCR (with the same CRNN as its member) where it is unsure; one line finder
    for both, so a crop's lines are found once."""
    finder = PlateLineFinder(threads=MODEL_THREADS) if whole_plates or settings.ocr.plateocr_lines else None
    first = _crnn(model_path, settings, whole_plates, plate_margin, finder)
    then = plate_ocr_for(model_path, settings, whole_plates, finder)
    return CascadeOCR(first, then, settings.ocr.cascade_sure)


def _auto(
    model_path: Path | None, settings: Settings, whole_plates: bool = False, plate_margin: Margin | None = None
) -> OCREngine:
    """The best measured reader (`choose_reader`)."""
    choice = _auto_choice(model_path, settings)
    if choice.engine == "crnn":
        return _crnn(model_path, settings, whole_plates, plate_margin)
    if choice.engine == "cascade":
        return _cascade(choice.member, settings, whole_plates, plate_margin)
    return _plateocr(choice.member or model_path, settings, whole_plates)


def engine_for(engine_name: str, model_path: Path | None, settings: Settings, detector: PlateDetector) -> OCREngine:
    """`make_engine` for the crops `detector` cuts (whole plates or not, and where the plate lies in them)."""
    return make_engine(engine_name, model_path, settings, detector.whole_plates, detector.box_margin)


_CROP_AWARE_ENGINES: dict[str, Callable[[Path | None, Settings, bool, Margin | None], OCREngine]] = {
    "auto": _auto,
    "cascade": _cascade,
    "plateocr": _plateocr,
    "crnn": _crnn,
}
_ENGINES: dict[str, Callable[[Path | None, Settings], OCREngine]] = {
    "paddle": _paddle,
    "easyocr": _easyocr,
}


def make_engine(
    engine_name: str,
    model_path: Path | None,
    settings: Settings,
    whole_plates: bool = False,
    plate_margin: Margin | None = None,
) -> OCREngine:
    """Build the engine called `engine_name`; PlatepilotError for an unknown name.

    `whole_plates`: the crops come from a detector that boxes whole plates (`PlateDetector.whole_plates`),
    so PlateOCR and the CRNN cut each to its plate line first (`PlateLineFinder.line_crops`); `paddle`
    and `easyocr` read the plate line's rows of the crop, as with any crop. `plate_margin`: that
    detector's `box_margin`, which places the plate in its crops, so the CRNN (alone or first in the
    cascade) can read their middle band before searching their lines (`ocr.band_sure`); None: it cannot."""
    if engine_name in _CROP_AWARE_ENGINES:
        return _CROP_AWARE_ENGINES[engine_name](model_path, settings, whole_plates, plate_margin)
    factory = _ENGINES.get(engine_name)
    if factory is None:
        names = [*_CROP_AWARE_ENGINES, *_ENGINES]
        raise PlatepilotError(f"unknown OCR engine {engine_name!r}; use one of: {', '.join(names)}")
    return factory(model_path, settings)
