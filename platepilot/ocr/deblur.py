"""Motion deblurring of unsure crops: Wiener deconvolution with a few guessed blur lines.

A plate moving during the exposure is smeared along a line; a reader trained on sharp and mildly
blurred plates misreads it. The blur's length and direction are unknown, so a crop whose read is unsure
is deconvolved with each of a few short lines (`KERNELS`), every version is read, and the version the
network reads most surely wins (the plain crop among them); a crop the reader is sure of is never
touched (`CRNNOCRService.sharpest`). On the true plate boxes of the approach clips' frames blurred 4-5 px
(`benchmarks/real_clips.py`, 320 frames, 2026-12-05) the CRNN read 21.6% plain, 26.9% with these six
lines and reads under 0.8 confidence retried, and 41.9% when deconvolved with each clip's true blur.
"""

from __future__ import annotations

from functools import cache

import cv2
import numpy as np

from platepilot.plates.blur import motion_kernel

KERNELS: tuple[tuple[int, float], ...] = tuple((length, angle) for length in (3, 5, 7) for angle in (0.0, 90.0))
"""(length px, angle degrees) of the blur lines tried: horizontal smears (a vehicle crossing the view, a
panning camera) and vertical ones (a vehicle driving at the camera), short to long. Twelve lines (the
same lengths at -20, 0, 20 and 90 degrees) read the blurred frames above a point better (28.1%) for half
as much time again, and kept the CRNN under the 1,500 plates/s of `benchmarks/crnn_speed.py`."""
NOISE_TO_SIGNAL = 0.01
"""Wiener's K: higher keeps the sensor noise and JPEG blocks down, lower undoes more of the blur."""


def deblurred(image: np.ndarray) -> list[np.ndarray]:
    """`image` deconvolved with each of `KERNELS`, in that order (one forward FFT for them all)."""
    return _deconvolve(image, _kernels(), NOISE_TO_SIGNAL)


@cache
def _kernels() -> list[np.ndarray]:
    """`KERNELS` as kernels, made once: the runtime deblurs with the same few lines every time."""
    return [motion_kernel(length, angle) for length, angle in KERNELS]


def _deconvolve(image: np.ndarray, kernels: list[np.ndarray], noise_to_signal: float) -> list[np.ndarray]:
    """`image` (uint8, grey or BGR) Wiener-deconvolved by each kernel; edges replicated first, so they ring less."""
    pad = 2 * max(k.shape[0] for k in kernels)
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE).astype(np.float32)
    planes = padded[..., None] if padded.ndim == 2 else padded
    height, width = planes.shape[:2]
    spectrum = np.fft.rfft2(planes, axes=(0, 1))  # (H, W/2+1, C)
    psfs = np.zeros((len(kernels), height, width), np.float32)
    for i, kernel in enumerate(kernels):  # each kernel's centre at the origin: no shift in the output
        kh, kw = kernel.shape
        psfs[i, :kh, :kw] = kernel
        psfs[i] = np.roll(psfs[i], (-(kh // 2), -(kw // 2)), axis=(0, 1))
    transfer = np.fft.rfft2(psfs, axes=(1, 2))  # (K, H, W/2+1)
    inverse = np.conj(transfer) / (np.abs(transfer) ** 2 + noise_to_signal)
    out = np.fft.irfft2(spectrum[None] * inverse[..., None], s=(height, width), axes=(1, 2))
    out = np.clip(out[:, pad : height - pad, pad : width - pad], 0, 255).astype(np.uint8)
    return [o.reshape(image.shape) for o in out]
