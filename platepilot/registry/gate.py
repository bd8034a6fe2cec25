"""The promotion gate: a candidate reader goes live only if it reads no worse than what runs now.

The candidate CRNN, the incumbent (the champion, or the CRNN deployed here, or else the built-in
default reader), the built-in default reader (the cascade: the bundled CRNN, then PlateOCR with it as
its crnn member where it is unsure), PlateOCR with the candidate as its crnn member and the cascade of
the candidate and that PlateOCR read the same plates side by side:

- the site's held-out labels (`gate.labels`, the split training never sees: `store/splits.py`);
- the golden synthetic plates (`registry/golden.py`), the same on every machine;
- every file in `gate.extra_labels` (and `--eval-labels`), read whole.

"Worse" is `ReaderScores.key` over all those plates pooled: fewer exact (O/I-folded) reads, or as
many with more character errors. The decision compares the candidate with the incumbent; the member's
numbers tell `auto` whether a CRNN that loses to PlateOCR may still join it, and the cascade's whether
it may then read first, PlateOCR only reading the crops it is unsure of.
The numbers travel with the model: version tags `gate.*` in MLflow and `gate.json` beside the deployed
model, where `auto` reads them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from platepilot.config import Settings
from platepilot.errors import PlatepilotError
from platepilot.images import read_image
from platepilot.ocr.base import OCREngine
from platepilot.ocr.gate_record import GateRecord, ReaderScores, Role, SetScore, engine_role
from platepilot.ocr.metrics import score
from platepilot.ocr.spec import load_card
from platepilot.registry.golden import golden_plates
from platepilot.store.labels import latest_labels, resolve_crop_path
from platepilot.store.splits import held_out_labels

log = logging.getLogger(__name__)

DEFAULT_READER = "cascade (built-in)"
_BATCH = 64


@dataclass(frozen=True)
class LabelSet:
    """Plates every reader of a gate reads: BGR uint8 crops and their texts."""

    name: str
    images: tuple[np.ndarray, ...]
    texts: tuple[str, ...]


@dataclass(frozen=True)
class Contender:
    """A reader at the gate: its name in the numbers, and how to build it (built only when needed)."""

    name: str
    model: Path | None
    """A CRNN ONNX; None is the built-in default reader."""
    member: bool = False
    """Read by PlateOCR with `model` as its crnn member, not by `model` alone."""
    cascade: bool = False
    """With `member`: `model` reads first, and that PlateOCR only the reads less sure than `ocr.cascade_sure`."""

    def as_member(self, cascade: bool = False) -> Contender:
        """This CRNN read as PlateOCR's crnn member, or (`cascade`) first in their cascade."""
        prefix = "cascade of" if cascade else "plateocr with"
        return Contender(f"{prefix} {self.name}", self.model, member=True, cascade=cascade)


def gate_sets(settings: Settings, extra: Sequence[Path] = ()) -> list[LabelSet]:
    """The gate's plates: the site's held-out split (when the labels file exists), golden, extras."""
    sets = []
    site = settings.gate.labels
    held = held_out_labels(latest_labels(site), settings.gate.holdout_fraction) if site.is_file() else []
    if held:
        sets.append(_load_set("site held-out", site, held))
    else:
        why = "no such file" if not site.is_file() else "no held-out crops in it"
        log.warning(
            "gate.labels %s: %s (a relative path is read from the folder the command runs in): the gate reads "
            "no plates of this site, only the golden synthetic ones and any extra labels", site, why
        )  # fmt: skip
    images, texts = golden_plates()
    sets.append(LabelSet("golden", images, texts))
    for path in (*settings.gate.extra_labels, *extra):
        if not path.is_file():
            raise PlatepilotError(f"{path}: gate labels file not found (gate.extra_labels or --eval-labels)")
        entries = [(p, label.text) for p, label in latest_labels(path).items() if not label.skipped]
        sets.append(_load_set(str(path), path, entries))
    return sets


def _load_set(name: str, labels_file: Path, entries: list[tuple[str, str]]) -> LabelSet:
    """Crops that cannot be read are left out (the same ones for every reader)."""
    images, texts = [], []
    for written, text in entries:
        try:
            images.append(read_image(resolve_crop_path(written, labels_file)))
        except PlatepilotError:
            continue
        texts.append(text)
    return LabelSet(name, tuple(images), tuple(texts))


def measure(reader: OCREngine, name: str, sets: Sequence[LabelSet]) -> ReaderScores:
    """`reader` on every set (empty sets left out)."""
    scores = []
    for label_set in sets:
        if not label_set.texts:
            continue
        images = list(label_set.images)
        reads = [r.text for i in range(0, len(images), _BATCH) for r in reader.read(images[i : i + _BATCH])]
        s = score(reads, list(label_set.texts))
        scores.append(SetScore(label_set.name, s.n, round(s.exact_folded, 6), round(s.cer_folded, 6)))
    return ReaderScores(name, tuple(scores))


def build_contender(contender: Contender, settings: Settings) -> OCREngine:
    """A CRNN alone, or PlateOCR with that CRNN as its crnn member, or the cascade of the two, or the
    built-in default reader (what `auto` runs with nothing deployed): the cascade of the bundled CRNN and
    PlateOCR."""
    from platepilot.ocr.models import BUNDLED_MODEL, crnn_alone, make_engine
    from platepilot.ocr.plate_ocr import build_plate_ocr

    o = settings.ocr
    if contender.model is None:
        return make_engine("cascade", BUNDLED_MODEL, settings)
    if not contender.member:
        return crnn_alone(contender.model, settings)
    if contender.cascade:
        return make_engine("cascade", contender.model, settings)
    return build_plate_ocr(
        o.plateocr_members,
        contender.model,
        o.plateocr_lines,
        o.format_prior,
        deblur_below=o.deblur_below,
        blur_model=o.blur_model_path,
    )


def run_gate(
    candidate: Contender, incumbent: Contender | None, settings: Settings, force: bool = False,
    extra: Sequence[Path] = (), incumbent_role: Role = "alone",
) -> GateRecord:  # fmt: skip
    """Measure the candidate, the incumbent CRNN (None: the default reader) alone and in `incumbent_role` (how
    the configured engine reads it now, `engine_role` of its own gate record), the default reader and, when
    PlateOCR has a crnn member, PlateOCR with the candidate as that member and the candidate's cascade.

    The candidate is refused when it reads worse alone than the incumbent alone, when the reader it would
    make under the configured engine reads worse than the incumbent as it is read now, or when that engine
    would not read it at all. The second check is why the incumbent is measured in its role: comparing the
    CRNNs alone, one reading 80% alone but 96% as PlateOCR's member lost to one reading 85% alone and 95.2% as
    that member, and the site read worse."""
    if candidate.model is None:
        raise PlatepilotError("the gate's candidate must be a CRNN model")
    sets = gate_sets(settings, extra)
    default = _measure(Contender(DEFAULT_READER, None), settings, sets)
    measured = _measure(candidate, settings, sets)
    alone = default if incumbent is None else _measure(incumbent, settings, sets)
    before = alone
    if incumbent is not None and incumbent_role == "unused":
        before = default
    elif incumbent is not None and incumbent_role != "alone":
        before = _measure(incumbent.as_member(cascade=incumbent_role == "cascade"), settings, sets)
    member = cascade = None
    if "crnn" in settings.ocr.plateocr_members:
        member = _measure(candidate.as_member(), settings, sets)
        cascade = _measure(candidate.as_member(cascade=True), settings, sets)
    record = GateRecord(measured, before, default, "accepted", load_card(candidate.model).sha256, member, cascade,
                        incumbent_alone=None if alone is before else alone)  # fmt: skip
    role = engine_role(settings.ocr.engine, record)
    judged = record.scores_as(role)
    record = replace(record, judged=None if role == "unused" else judged.reader)
    if role == "unused" or before.beats(judged) or alone.beats(measured):
        return replace(record, decision="forced" if force else "refused")
    return record


def _measure(contender: Contender, settings: Settings, sets: Sequence[LabelSet]) -> ReaderScores:
    return measure(build_contender(contender, settings), contender.name, sets)


def verdict_line(record: GateRecord) -> str:
    """One line with the decision and the numbers of both readers (and the default reader's)."""
    numbers = f"{record.candidate.summary()}; {record.incumbent.summary()}"
    if record.incumbent_alone is not None:
        numbers += f"; {record.incumbent_alone.summary()}"
    if record.incumbent.reader != record.default.reader:
        numbers += f"; {record.default.summary()}"
    for extra in (record.member, record.cascade):
        if extra is not None:
            numbers += f"; {extra.summary()}"
    alone = record.incumbent_alone or record.incumbent
    judged = record.judged or record.candidate.reader
    if alone.beats(record.candidate):  # the CRNN alone is worse: the first check
        worse = f"{record.candidate.reader} reads worse than {alone.reader}"
    elif record.judged is None and record.decision != "accepted":
        worse = f"{record.candidate.reader} would not be read (worse than the default reader, and as its member)"
    else:
        worse = f"{judged} reads worse than {record.incumbent.reader}"
    if record.decision == "refused":
        return f"refused: {worse} ({numbers}); --force overrides"
    if record.decision == "forced":
        return f"forced: {worse} ({numbers})"
    return f"accepted: {judged} reads no worse than {record.incumbent.reader} ({numbers})"


def gate_tags(record: GateRecord, who: str, when: str) -> dict[str, str]:
    """Model-version tags recording the gate: the decision, one readable line per reader, the JSON."""
    return {
        "gate.decision": record.decision,
        "gate.candidate": record.candidate.summary(),
        "gate.incumbent": record.incumbent.summary(),
        "gate.default": record.default.summary(),
        "gate.beats_default": str(record.beats_default).lower(),
        "gate.member_helps": str(record.member_helps).lower(),
        "gate.cascade_holds": str(record.cascade_holds).lower(),
        "gate.result": json.dumps(record.to_json(), separators=(",", ":")),
        "gate.by": who,
        "gate.at": when,
    }


def record_from_tags(tags: dict[str, str], sha256: str) -> GateRecord | None:
    """The gate record a version carries, if it was measured on the ONNX with this sha256."""
    try:
        record = GateRecord.from_json(json.loads(tags["gate.result"]))
    except (KeyError, ValueError, TypeError):
        return None
    return record if record.sha256 == sha256 else None
