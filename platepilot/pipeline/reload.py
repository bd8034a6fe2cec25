"""Hot model reload: the reader in use (swapped whole), and a watcher that swaps in a replaced model.

`platepilot sync` replaces the CRNN by renames within its folder: the ONNX first, its sidecar second,
then `deployed.json`. The watcher stats those files every `interval` seconds (no reading, no hashing:
cheap enough for any device); once they changed and then held still for one more look, it loads the
new model beside the old one, verifies it (sidecar sha256 and graph shapes at load, then a trial read
of rendered plates) and swaps it in. Reads in flight finish on the model they started with and no
frame ever waits for a load. A model that fails verification costs one log line; the old model stays
in use until the files change again.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from platepilot.errors import PlatepilotError
from platepilot.ocr.base import OCREngine
from platepilot.ocr.cascade import CascadeOCR
from platepilot.ocr.crnn_service import CRNNOCRService
from platepilot.ocr.deployed import state_path
from platepilot.ocr.plate_ocr import CRNNMember, PlateOCR
from platepilot.ocr.spec import file_sha256, sidecar_path
from platepilot.plates.designs import sample_design
from platepilot.plates.render import render_plate
from platepilot.store.atomic import FileVersion, file_version

log = logging.getLogger(__name__)

RELOAD_POLL_SECONDS = 2.0
TRIAL_SEED = 20_261_123
TRIAL_PLATES = 4

Signature = tuple[FileVersion, FileVersion, FileVersion]


@dataclass(frozen=True, slots=True)
class LoadedReader:
    """A reader and the version string its events record."""

    engine: OCREngine
    version: str


class ReaderSlot:
    """The reader in use; `swap` replaces engine and version together (one reference assignment)."""

    def __init__(self, engine: OCREngine, version: str) -> None:
        self._current = LoadedReader(engine, version)

    @property
    def current(self) -> LoadedReader:
        return self._current

    def swap(self, loaded: LoadedReader) -> None:
        self._current = loaded


def model_version(engine: OCREngine) -> str:
    """What events record as the model version.

    A CRNN: `sha256:<first 12 hex>` of its ONNX (from its sidecar), prefixed `v<N> ` when the sync
    agent's `deployed.json` beside it names registry version N for that same file. The cascade and
    PlateOCR: their name, then that of the CRNN they read with (`cascade v4 sha256:...`), so events
    tell which deployed model read under `auto` too; any other engine: its name.
    """
    crnn = _crnn_in(engine)
    if crnn is None:
        return engine.name
    version = _crnn_version(crnn)
    return version if crnn is engine else f"{engine.name} {version}"


def _crnn_in(engine: OCREngine) -> CRNNOCRService | None:
    """The CRNN `engine` is, reads first (a cascade) or reads with (PlateOCR's member), if any."""
    if isinstance(engine, CRNNOCRService):
        return engine
    if isinstance(engine, CascadeOCR):
        return _crnn_in(engine.first) or _crnn_in(engine.then)
    if isinstance(engine, PlateOCR):
        return next((m.service for m in engine.members if isinstance(m, CRNNMember)), None)
    return None


def _crnn_version(engine: CRNNOCRService) -> str:
    sha = engine.card.sha256 or file_sha256(engine.model_path)
    version = f"sha256:{sha[:12]}"
    try:
        deployed = json.loads(state_path(engine.model_path).read_text())
    except (OSError, ValueError):
        return version
    if isinstance(deployed, dict) and deployed.get("sha256") == sha and "version" in deployed:
        return f"v{deployed['version']} {version}"
    return version


def load_verified(path: Path, build: Callable[[Path], OCREngine] = CRNNOCRService) -> LoadedReader:
    """Build the reader for the model at `path` and check that it reads rendered plates.

    `build` raises for a file that does not load (sidecar sha256, graph shapes); a reader that
    returns the wrong number of reads or confidences outside [0, 1] (NaN weights) is refused too.
    """
    engine = build(path)
    rng = np.random.default_rng(TRIAL_SEED)
    plates = [render_plate(sample_design(rng), rng).image for _ in range(TRIAL_PLATES)]
    reads = engine.read(plates)
    if len(reads) != TRIAL_PLATES or not all(0.0 <= r.confidence <= 1.0 for r in reads):
        confidences = [r.confidence for r in reads]
        raise PlatepilotError(f"{path}: trial read of {TRIAL_PLATES} plates gave confidences {confidences}")
    return LoadedReader(engine, model_version(engine))


def model_signature(path: Path) -> Signature:
    """The stats of the model, its sidecar and `deployed.json` (what a swap by rename changes)."""
    return (file_version(path), file_version(sidecar_path(path)), file_version(state_path(path)))


class ModelWatcher:
    """Polls `path` from a background thread and swaps a verified new model into `slot`.

    `load(path)` builds and verifies a reader (`load_verified`); `baseline` is the signature of the
    model already in the slot (taken before it was loaded, so a swap during startup is not missed).
    Counters: `reloads` (models swapped in), `refused` (replacements that failed verification).
    """

    def __init__(
        self,
        path: Path,
        slot: ReaderSlot,
        load: Callable[[Path], LoadedReader],
        interval: float = RELOAD_POLL_SECONDS,
        baseline: Signature | None = None,
    ) -> None:
        self.path, self.slot, self._load, self.interval = path, slot, load, interval
        self._seen = baseline if baseline is not None else model_signature(path)
        self._changed: Signature | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.reloads = 0
        self.refused = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-watcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def poll(self) -> bool:
        """One look at the files; True when a new model was swapped in."""
        now = model_signature(self.path)
        if now == self._seen:
            self._changed = None
            return False
        if now != self._changed:  # still changing (mid-swap): look again next time
            self._changed = now
            return False
        self._seen, self._changed = now, None
        if now[0] is None:
            log.warning("model %s is gone; still reading with %s", self.path, self.slot.current.version)
            return False
        old = self.slot.current.version
        try:
            loaded = self._load(self.path)
        except Exception as exc:  # whatever a broken file makes onnxruntime raise, the runtime goes on
            self.refused += 1
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            log.warning("model %s replaced but not used (%s); still reading with %s", self.path, reason, old)
            return False
        self.slot.swap(loaded)
        self.reloads += 1
        log.info("model %s reloaded: reading with %s (was %s)", self.path, loaded.version, old)
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll()
