"""The provenance sidecar of labels.txt: who or what produced each text, and whether a human saw it.

`labels.txt` stays the guide's two-column file (`<path>\\t<TEXT>`). Beside it, `<labels>.meta.jsonl`
holds one JSON object per line, append-only, later lines for the same path winning:

    {"path": "output/crops/2024-05-01/CAM1_track7.jpg", "text": "ABC1234", "engine": "crnn",
     "confidence": 0.93, "verified": false, "time": "2024-05-01T21:04:05+00:00"}

- A pre-label (an OCR engine's read) is a record with `verified: false`; by default it lives only
  here, so training, which reads labels.txt, never sees it. The labeling tool shows it as a suggestion.
- A human save (Enter / Escape in the labeling tool) appends the line to labels.txt and a record with
  `engine: "human"`, `verified: true`.
- `platepilot prelabel --accept-above C` also writes confident pre-labels to labels.txt; their record
  stays `verified: false`, so `unverified_paths` tells training (and `--review`) which lines no human saw.
- A pseudo-label (`platepilot labels auto`) is a record with `engine: "pseudo:plateocr"`, the readers
  that agreed on the text (`"agreement": ["paddle", "crnn"]`) and `"pseudo": true` when it passed the
  filters. It is never written to labels.txt; `train --pseudo` trains on it, weighted below human labels.

Paths are the strings written in labels.txt. Writers append under an exclusive `flock` and fsync.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from platepilot.errors import PlatepilotError
from platepilot.store.labels import latest_labels, resolve_crop_path

log = logging.getLogger(__name__)

HUMAN = "human"
"""The `engine` of records written by a person in the labeling tool."""
PSEUDO_ENGINE = "pseudo:plateocr"
"""The `engine` of `platepilot labels auto` records (PlateOCR's read, with its members' agreement)."""


@dataclass(frozen=True, slots=True)
class Provenance:
    """Where one text for one crop came from; `confidence` in [0, 1] or None (humans); `time` ISO 8601."""

    path: str
    text: str
    engine: str
    confidence: float | None
    verified: bool
    time: str
    agreement: tuple[str, ...] = ()
    """`labels auto` only: the readers whose own read was this text (see labeling/pseudo.py)."""
    pseudo: bool = False
    """`labels auto` only: the read passed its filters, so `train --pseudo` may train on it."""

    @property
    def is_prelabel(self) -> bool:
        return not self.verified and self.engine != HUMAN

    def to_json(self) -> dict[str, object]:
        """The record as written: the `labels auto` fields only on its records."""
        data = asdict(self)
        if self.engine != PSEUDO_ENGINE:
            del data["agreement"], data["pseudo"]
        return data


def sidecar_path(labels_file: Path) -> Path:
    """`data/ocr_training/labels.txt` -> `data/ocr_training/labels.txt.meta.jsonl`."""
    return labels_file.with_name(labels_file.name + ".meta.jsonl")


def make_record(
    path: str, text: str, engine: str, confidence: float | None, verified: bool, now: datetime,
    agreement: tuple[str, ...] = (), pseudo: bool = False,
) -> Provenance:  # fmt: skip
    """A record stamped with `now` (passed in: callers own the clock), to the second."""
    conf = None if confidence is None else round(float(confidence), 4)
    return Provenance(path, text, engine, conf, verified, now.isoformat(timespec="seconds"), agreement, pseudo)


def append_records(labels_file: Path, records: Iterable[Provenance]) -> int:
    """Append records to the sidecar of `labels_file` durably; returns how many were written."""
    payload = "".join(json.dumps(r.to_json(), separators=(",", ":")) + "\n" for r in records)
    if not payload:
        return 0
    path = sidecar_path(labels_file)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            size = os.fstat(handle.fileno()).st_size
            data = payload.encode("utf-8")
            if size and not _ends_with_newline(path, size):
                data = b"\n" + data
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise PlatepilotError(f"{path}: cannot write the label provenance file: {exc.strerror}") from None
    return payload.count("\n")


def read_records(labels_file: Path) -> list[Provenance]:
    """Every readable record in file order; a missing sidecar is empty, bad lines are logged and skipped."""
    path = sidecar_path(labels_file)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise PlatepilotError(f"{path}: cannot read the label provenance file: {exc.strerror}") from None
    records = []
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        record = parse_record(line)
        if record is None:
            log.warning("%s: line %d is not a provenance record (ignored)", path, line_no)
        else:
            records.append(record)
    return records


def parse_record(line: str | bytes) -> Provenance | None:
    """One line of the provenance sidecar -> its record; None when it is none (blank, cut, not JSON)."""
    try:
        obj = json.loads(line)
        return Provenance(
            str(obj["path"]), str(obj["text"]), str(obj["engine"]),
            None if obj.get("confidence") is None else float(obj["confidence"]),
            bool(obj["verified"]), str(obj.get("time", "")),
            tuple(str(a) for a in obj.get("agreement", ())), bool(obj.get("pseudo", False)),
        )  # fmt: skip
    except (ValueError, KeyError, TypeError):
        return None


def latest_records(labels_file: Path) -> dict[str, Provenance]:
    """Crop path (as in labels.txt) -> its latest record."""
    return {r.path: r for r in read_records(labels_file)}


def latest_pseudo_labels(labels_file: Path) -> dict[str, Provenance]:
    """Crop path -> its latest `labels auto` record, whether or not it passed (see `Provenance.pseudo`)."""
    return {r.path: r for r in read_records(labels_file) if r.engine == PSEUDO_ENGINE}


def pseudo_labels(labels_file: Path) -> dict[str, str]:
    """Crop path -> text of every passing pseudo-label whose crop has no human label in `labels_file`.

    Crops are told apart by the file a path names, not by its spelling: `labels auto --crops-dir crops`
    and a labeling session on `--crops-dir /abs/crops` write one crop two ways, and it must neither be
    trained on as a pseudo-label once a human labelled it (it may be held out for the gate) nor twice.
    Of two spellings, the later record wins."""
    human = latest_labels(labels_file) if labels_file.is_file() else {}
    labelled = {_file_of(path, labels_file) for path in human}
    latest: dict[Path, Provenance] = {}
    for rec in read_records(labels_file):
        if rec.engine == PSEUDO_ENGINE:
            latest[_file_of(rec.path, labels_file)] = rec
    return {rec.path: rec.text for crop, rec in latest.items() if rec.pseudo and crop not in labelled}


def _file_of(path: str, labels_file: Path) -> Path:
    """The file a labels path names, resolved (symlinks, `..`, relative spellings)."""
    return resolve_crop_path(path, labels_file).resolve()


def latest_prelabels(labels_file: Path) -> dict[str, Provenance]:
    """Crop path -> its latest engine pre-label (human records ignored)."""
    return {r.path: r for r in read_records(labels_file) if r.is_prelabel}


def unverified_paths(labels_file: Path, labels: dict[str, str]) -> set[str]:
    """Paths of labels.txt whose current text no human confirmed: the latest record is an engine's
    unverified read of that same text. Lines with no record at all (hand-written files) count as verified."""
    latest = latest_records(labels_file)
    return {
        path
        for path, text in labels.items()
        if (rec := latest.get(path)) is not None and not rec.verified and rec.text == text
    }


def _ends_with_newline(path: Path, size: int) -> bool:
    with open(path, "rb") as tail:
        tail.seek(size - 1)
        return tail.read(1) == b"\n"
