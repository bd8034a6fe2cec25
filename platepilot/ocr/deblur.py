"""Motion deblurring of unsure crops: Wiener deconvolution along the smear the blur estimator names.

A plate moving during the exposure is smeared along a line; a reader trained on sharp and mildly
blurred plates misreads it. Deconvolution undoes it only with the right line (within a pixel of its
length and a few degrees of its angle; `platepilot.ocr.blur_estimate`), so the line is estimated from
the crop itself. A crop whose read is unsure and whose smear is at least MIN_SMEAR_PX long is
deconvolved along it, once at the estimated length rounded down and once a pixel longer (the
estimate runs a little long on soft camera crops, and one pixel too long undoes the deconvolution),
and the version the reader reads most surely wins, the plain crop among them (`surest`; the CRNN in
`CRNNOCRService.sharpest`, PlateOCR's paddle member in `PaddleMember.read_member`). Before the
estimator, six guessed lines (3, 5, 7 px, horizontal and vertical) read 26.9% of 320 true plate boxes
of approach-clip frames blurred 4-5 px, against 21.6% plain and 41.9% with each clip's true line.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from platepilot.ocr.blur_estimate import BlurEstimator, Smear
from platepilot.ocr.ctc import greedy_decode
from platepilot.plates.blur import motion_kernel
from platepilot.plates.formats import looks_like_serial

MIN_SMEAR_PX = 3.0
"""Smears shorter than this are left alone: they cost a read little, and deconvolving them sharpens
the noise more than the plate."""
NOISE_TO_SIGNAL = 0.01
"""Wiener's K: higher keeps the sensor noise and JPEG blocks down, lower undoes more of the blur."""
VERSIONS = 2  # lengths tried per smeared crop: the estimate rounded down, and one pixel longer


@dataclass(frozen=True)
class Deblurrer:
    """Reads less confident than `below` get their crop's smear estimated by `estimator`."""

    estimator: BlurEstimator
    below: float

    def versions(self, views: list[np.ndarray]) -> list[list[np.ndarray]]:
        """Per view (grey or BGR, at the scale it is read at): its deconvolved versions (VERSIONS of them),
        or none when it is not smeared."""
        return [
            deblurred(view, smear) if smear.length >= MIN_SMEAR_PX else []
            for view, smear in zip(views, self.estimator.estimate(views), strict=True)
        ]


def deblurrer(below: float, model_path: Path | None = None) -> Deblurrer | None:
    """The deblurring of reads under `below` confidence with the estimator at `model_path` (None: the
    bundled one); None when `below` is 0 (never deblur). The estimator runs on one thread: a thread pool
    of its own spun between its runs and the reader's, and cost the CRNN a further tenth of its throughput."""
    return Deblurrer(BlurEstimator(model_path, threads=1), below) if below > 0 else None


def surest(plain: np.ndarray, versions: Sequence[np.ndarray], charset: str) -> int | None:
    """The index of the version (CTC probabilities (T, C) of a deblurred crop) read most surely, when it
    is read more surely than the `plain` crop; else None. Sureness: the greedy read's mean character
    probability, and 0 for a version whose read is no serial."""
    if not versions:
        return None
    sureness = [_serial_confidence(p, charset) for p in versions]
    best = int(np.argmax(sureness))
    return best if sureness[best] > _greedy_confidence(plain, charset) else None


def _greedy_confidence(probs: np.ndarray, charset: str) -> float:
    """The mean per-character probability of the greedy read (0 for an empty read)."""
    return float(np.mean(greedy_decode(probs, charset)[1] or (0.0,)))


def _serial_confidence(probs: np.ndarray, charset: str) -> float:
    """`_greedy_confidence`, or 0 when the greedy read does not look like a serial (one decode)."""
    text, confidences = greedy_decode(probs, charset)
    return float(np.mean(confidences)) if looks_like_serial(text) else 0.0


def deblurred(image: np.ndarray, smear: Smear) -> list[np.ndarray]:
    """`image` (uint8, grey or BGR) deconvolved along `smear`, at its length rounded down (at least 2 px)
    and one pixel longer, in that order (one forward FFT for both)."""
    shortest = max(2, math.floor(smear.length))
    kernels = [motion_kernel(length, smear.angle) for length in range(shortest, shortest + VERSIONS)]
    return _deconvolve(image, kernels, NOISE_TO_SIGNAL)


def _deconvolve(image: np.ndarray, kernels: list[np.ndarray], noise_to_signal: float) -> list[np.ndarray]:
    """`image` (uint8, grey or BGR) Wiener-deconvolved by each kernel; edges replicated first, so they ring
    less, and on to a size the FFT is fast at (`cv2.getOptimalDFTSize`: 4-5 times faster on crops)."""
    pad = 2 * max(k.shape[0] for k in kernels)
    h, w = image.shape[:2]
    height, width = cv2.getOptimalDFTSize(h + 2 * pad), cv2.getOptimalDFTSize(w + 2 * pad)
    padded = cv2.copyMakeBorder(image, pad, height - h - pad, pad, width - w - pad, cv2.BORDER_REPLICATE)
    planes = padded.astype(np.float32)[..., None] if padded.ndim == 2 else padded.astype(np.float32)
    spectrum = np.fft.rfft2(planes, axes=(0, 1))  # (H, W/2+1, C)
    psfs = np.zeros((len(kernels), height, width), np.float32)
    for i, kernel in enumerate(kernels):  # each kernel's centre at the origin: no shift in the output
        kh, kw = kernel.shape
        psfs[i, :kh, :kw] = kernel
        psfs[i] = np.roll(psfs[i], (-(kh // 2), -(kw // 2)), axis=(0, 1))
    transfer = np.fft.rfft2(psfs, axes=(1, 2))  # (K, H, W/2+1)
    inverse = np.conj(transfer) / (np.abs(transfer) ** 2 + noise_to_signal)
    out = np.fft.irfft2(spectrum[None] * inverse[..., None], s=(height, width), axes=(1, 2))
    out = np.clip(out[:, pad : pad + h, pad : pad + w], 0, 255).astype(np.uint8)
    return [o.reshape(image.shape) for o in out]
