"""A reader model's promotion-gate result, and what "better" means: one home for both.

The gate (`platepilot models promote`, `models deploy`) reads the same label sets with the candidate
CRNN, with what runs now (the champion, or the built-in default reader), with the built-in default
reader, with PlateOCR holding the candidate as its crnn member and with the cascade of the two (the
candidate first, that PlateOCR where it is unsure), and records the numbers.
Whoever deploys a model writes them beside it as `gate.json` (format: `GateRecord.to_json`), naming the
sha256 of the ONNX they were measured on; the runtime's `auto` engine reads them to decide whether the
CRNN replaces PlateOCR, joins it, or is left out.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from platepilot.store.atomic import write_text_atomically

GATE_FILE = "gate.json"
Decision = Literal["accepted", "refused", "forced"]
Role = Literal["alone", "member", "cascade", "unused"]
"""How a deployed CRNN reads: alone, as PlateOCR's crnn member, first in the cascade with that PlateOCR, or not
at all (the built-in default reader reads)."""


@dataclass(frozen=True)
class SetScore:
    """One reader on one label set: `n` plates, exact (O/I-folded) and CER (folded) in [0, 1+]."""

    name: str
    n: int
    exact_folded: float
    cer_folded: float

    def line(self) -> str:
        return f"{self.name} {round(self.exact_folded * self.n)}/{self.n}"


@dataclass(frozen=True)
class ReaderScores:
    """One reader on every set of a gate; pooled numbers weight each set by its plate count."""

    reader: str
    sets: tuple[SetScore, ...]

    @property
    def n(self) -> int:
        return sum(s.n for s in self.sets)

    @property
    def exact_folded(self) -> float:
        return sum(s.exact_folded * s.n for s in self.sets) / max(self.n, 1)

    @property
    def cer_folded(self) -> float:
        return sum(s.cer_folded * s.n for s in self.sets) / max(self.n, 1)

    def key(self) -> tuple[float, float]:
        """Higher is better: exact reads first, then fewer character errors (rounded: no float noise)."""
        return round(self.exact_folded, 6), -round(self.cer_folded, 6)

    def beats(self, other: ReaderScores) -> bool:
        return self.key() > other.key()

    def summary(self) -> str:
        """`plateocr: 93.8% exact (folded), CER 0.012 over 34 plates (site held-out 2/2, golden 30/32)`."""
        sets = ", ".join(s.line() for s in self.sets)
        return (
            f"{self.reader}: {self.exact_folded:.1%} exact (folded), CER {self.cer_folded:.3f} "
            f"over {self.n} plates ({sets})"
        )

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReaderScores:
        return cls(str(data["reader"]), tuple(SetScore(**s) for s in data["sets"]))


@dataclass(frozen=True)
class GateRecord:
    """The candidate against what ran when it was gated (`incumbent`) and the default reader."""

    candidate: ReaderScores
    incumbent: ReaderScores
    default: ReaderScores
    decision: Decision
    sha256: str
    """sha256 of the candidate ONNX these numbers were measured on."""
    member: ReaderScores | None = None
    """PlateOCR with the candidate as its crnn member (None: not measured, as in older records)."""
    cascade: ReaderScores | None = None
    """The cascade of the candidate and that PlateOCR, at the gate's `ocr.cascade_sure` (None: not measured)."""
    incumbent_alone: ReaderScores | None = None
    """The incumbent CRNN alone, when the engine reads it otherwise (`incumbent` is then it as it is read)."""
    judged: str | None = None
    """The reader the decision weighed against the incumbent: the candidate as the configured engine reads it
    (None in older records: the candidate alone)."""

    @property
    def beats_default(self) -> bool:
        """Whether the candidate reads better than the built-in default reader on the same plates."""
        return self.candidate.beats(self.default)

    @property
    def member_helps(self) -> bool:
        """Whether PlateOCR reads no worse with the candidate as its crnn member than with the bundled
        one; a record without the member's numbers (older gates) counts as helping, as it was trusted then."""
        return self.member is None or not self.default.beats(self.member)

    @property
    def cascade_holds(self) -> bool:
        """Whether the candidate's cascade read no worse than PlateOCR with the candidate as its member, so
        PlateOCR need not read every crop (False when either was not measured)."""
        return self.member is not None and self.cascade is not None and not self.member.beats(self.cascade)

    def auto_role(self) -> Role:
        """How `auto` reads with this model deployed: alone when it beat the default reader; not at all when it
        made PlateOCR read worse as its member; first in the cascade when that cascade read as well as
        PlateOCR with it; else as PlateOCR's member."""
        if self.beats_default:
            return "alone"
        if not self.member_helps:
            return "unused"
        return "cascade" if self.cascade_holds else "member"

    def scores_as(self, role: Role) -> ReaderScores:
        """The numbers of the reader the candidate makes in `role` (a role an older record did not measure:
        the default reader's, the nearest measured)."""
        by_role = {"alone": self.candidate, "member": self.member, "cascade": self.cascade, "unused": self.default}
        return by_role[role] or self.default

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> GateRecord:
        return cls(
            candidate=ReaderScores.from_json(data["candidate"]),
            incumbent=ReaderScores.from_json(data["incumbent"]),
            default=ReaderScores.from_json(data["default"]),
            decision=data["decision"],
            sha256=str(data["sha256"]),
            member=ReaderScores.from_json(data["member"]) if data.get("member") else None,
            cascade=ReaderScores.from_json(data["cascade"]) if data.get("cascade") else None,
            incumbent_alone=ReaderScores.from_json(data["incumbent_alone"]) if data.get("incumbent_alone") else None,
            judged=data.get("judged"),
        )


def engine_role(engine: str, record: GateRecord | None) -> Role:
    """How the deployed CRNN reads under `engine`: `auto` as its gate record says (no record: as PlateOCR's
    member), `plateocr` as the member, `cascade` first in the cascade; `crnn`, and any engine that does not read
    it, alone (the gate then compares the CRNNs themselves)."""
    if engine == "auto":
        return "member" if record is None else record.auto_role()
    return {"plateocr": "member", "cascade": "cascade"}.get(engine, "alone")  # type: ignore[return-value]


def gate_path(model_path: Path) -> Path:
    """Where the gate record of the model at `model_path` lives (its folder holds one model)."""
    return model_path.parent / GATE_FILE


def write_gate_record(model_path: Path, record: GateRecord) -> None:
    """Write `gate.json` beside `model_path` atomically."""
    path = gate_path(model_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(path, json.dumps(record.to_json(), indent=2))


def read_gate_record(model_path: Path, sha256: str) -> GateRecord | None:
    """The gate record beside `model_path` if it was measured on the ONNX with this `sha256`, else None
    (missing, unreadable, or left over from another model)."""
    try:
        record = GateRecord.from_json(json.loads(gate_path(model_path).read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return record if record.sha256 == sha256 else None
