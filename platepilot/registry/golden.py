"""Golden synthetic plates: a fixed set every registered model reads once at registration and again on
each edge device before it is deployed there.

The reads recorded at registration (version tag `golden.reads`) are the model's expected behaviour. A
device deploys a model only if it reproduces them (at least GOLDEN_AGREEMENT of the plates read the same
text), which catches what a sha256 cannot: a different onnxruntime build or CPU that changes the
numbers, a preprocessing mismatch, a sidecar that does not describe its model. A model registered
without golden reads must at least reach a floor of exact (O/I-folded) reads on the golden plates.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from platepilot.ocr.metrics import score

GOLDEN_SEED = 20_260_408
GOLDEN_COUNT = 32
GOLDEN_AGREEMENT = 0.9


@dataclass(frozen=True)
class GoldenResult:
    """What a model read on the golden plates: `reads` in plate order, `exact_folded` in [0, 1]."""

    reads: tuple[str, ...]
    exact_folded: float

    def tags(self) -> dict[str, str]:
        """Model-version tags that record this result as the model's expected behaviour."""
        return {
            "golden.seed": str(GOLDEN_SEED),
            "golden.reads": json.dumps(list(self.reads)),
            "golden.exact_folded": f"{self.exact_folded:.4f}",
        }


@cache
def golden_plates() -> tuple[tuple[np.ndarray, ...], tuple[str, ...]]:
    """The GOLDEN_COUNT synthetic crops (BGR uint8) and their texts; the same on every machine."""
    from platepilot.plates.synth import synth_sample

    samples = [synth_sample(GOLDEN_SEED, i) for i in range(GOLDEN_COUNT)]
    return tuple(s.image for s in samples), tuple(s.text for s in samples)


def read_golden(model_path: Path) -> GoldenResult:
    """Load `model_path` with onnxruntime (sidecar verified) and read the golden plates."""
    from platepilot.ocr.crnn_service import CRNNOCRService

    images, texts = golden_plates()
    reads = tuple(r.text for r in CRNNOCRService(model_path, threads=1).read(list(images)))
    return GoldenResult(reads, score(list(reads), list(texts)).exact_folded)


def check_golden(result: GoldenResult, tags: dict[str, str], floor: float = 0.0) -> str | None:
    """None when `result` meets the expectation recorded in `tags`, else why not (one line)."""
    expected = tags.get("golden.reads")
    if expected is not None and tags.get("golden.seed") == str(GOLDEN_SEED):
        try:
            reference = json.loads(expected)
        except ValueError:
            return "its golden.reads tag is not valid JSON"
        if len(reference) != len(result.reads):
            return f"golden.reads holds {len(reference)} reads, expected {len(result.reads)}"
        same = sum(a == b for a, b in zip(reference, result.reads, strict=True)) / len(reference)
        if same < GOLDEN_AGREEMENT:
            return f"it reads the golden plates differently here than at registration ({same:.0%} agree)"
    if result.exact_folded < floor:
        return f"it reads {result.exact_folded:.0%} of the golden plates, below the floor of {floor:.0%}"
    return None
