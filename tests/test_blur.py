"""The motion blur model (`plates.blur`) and the reader's training on it (`train --motion-blur`)."""

from __future__ import annotations

import cv2
import numpy as np

from platepilot.ocr.models import BUNDLED_MODEL
from platepilot.ocr.spec import load_card, to_input
from platepilot.plates.blur import camera_motion, motion_blur, motion_kernel
from platepilot.plates.synth import synth_sample
from platepilot.training.data_loading import MixedPlates


def _gradients(image: np.ndarray) -> tuple[float, float]:
    """Mean squared horizontal and vertical differences."""
    image = image.astype(np.float32)
    return float((np.diff(image, axis=1) ** 2).mean()), float((np.diff(image, axis=0) ** 2).mean())


def test_a_motion_kernel_is_a_normalised_line_along_its_angle() -> None:
    flat, upright = motion_kernel(7, 0.0), motion_kernel(7, 90.0)
    assert np.isclose(flat.sum(), 1.0) and np.isclose(upright.sum(), 1.0)
    assert np.count_nonzero(flat[3]) == 7 and np.count_nonzero(flat[:3]) == 0
    assert np.allclose(upright, flat.T, atol=1e-6)
    image = np.random.default_rng(0).integers(0, 256, (32, 128), dtype=np.uint8)
    assert np.array_equal(motion_blur(image, 1, 0.0), image)


def test_camera_motion_smears_across_the_frame_more_than_up_and_down() -> None:
    noise = np.random.default_rng(0).integers(0, 256, (32, 128), dtype=np.uint8)
    across, upward = _gradients(noise)
    rng = np.random.default_rng(1)
    for _ in range(40):
        horizontal, vertical = _gradients(camera_motion(noise, rng))
        assert horizontal / across < 0.5  # every draw smears
        assert horizontal / across < vertical / upward  # more along the road than up it


def test_training_crops_get_motion_blur_at_the_share_asked_keep_their_text_and_repeat_per_key() -> None:
    spec = load_card(BUNDLED_MODEL).spec
    samples = [synth_sample(21, i, camera=False) for i in range(24)]
    images = np.stack([to_input(s.image, spec) for s in samples])
    texts = [s.text for s in samples]
    sharp = MixedPlates(images, texts, spec, synthetic=24, seed=3)
    moving = MixedPlates(images, texts, spec, synthetic=24, seed=3, motion=1.0)
    unmoved = MixedPlates(images, texts, spec, synthetic=24, seed=3, motion=0.0)

    def detail(image: np.ndarray) -> float:
        return float(cv2.Laplacian(image.astype(np.float32), cv2.CV_32F).var())

    keys = [(0, i) for i in range(len(sharp))]  # the real crops, then the synthetic plates
    assert [moving[k][1] for k in keys] == [sharp[k][1] for k in keys]
    assert all(np.array_equal(moving[k][0], moving[k][0]) for k in keys)  # a pure function of (seed, epoch, i)
    assert all(np.array_equal(unmoved[k][0], sharp[k][0]) for k in keys)
    real, synthetic = keys[: len(texts)], keys[len(texts) :]
    for part in (real, synthetic):
        assert max(detail(moving[k][0]) / detail(sharp[k][0]) for k in part) < 0.9
    half = MixedPlates(images, texts, spec, synthetic=24, seed=3, motion=0.5)
    blurred = sum(not np.array_equal(half[(e, i)][0], sharp[(e, i)][0]) for e in range(4) for i in range(len(sharp)))
    assert 0.3 < blurred / (4 * len(sharp)) < 0.7
    plain = MixedPlates(images, texts, spec, synthetic=24, seed=3, augment=False)
    still = MixedPlates(images, texts, spec, synthetic=24, seed=3, augment=False, motion=1.0)
    assert all(np.array_equal(still[k][0], plain[k][0]) for k in keys)  # validation crops are never blurred
