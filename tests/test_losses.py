"""Training loss: the compressed spectral term is level-free and splits as documented."""
from __future__ import annotations

import numpy as np
import pytest

from tfdenoise.losses import COMPLEX_SHARE, COMPRESSION, LossWeights, compressed_loss, enhancement_loss


@pytest.fixture(scope="module")
def clean() -> np.ndarray:
    rng = np.random.default_rng(1)
    return (0.1 * rng.standard_normal((2, 8000))).astype(np.float32)


def test_compressed_loss_is_zero_for_a_perfect_estimate_and_level_free(clean):
    estimate = 0.7 * clean
    assert float(compressed_loss(clean, clean)) == pytest.approx(0.0, abs=1e-9)
    assert float(compressed_loss(10 * clean, 10 * estimate)) == pytest.approx(
        float(compressed_loss(clean, estimate)), rel=1e-4)


def test_compressed_loss_sees_phase_only_through_its_complex_share(clean):
    """Same magnitudes, opposite sign: only the complex part (|2 S^c|^2) counts.  Half the
    amplitude: both parts are (1 - 0.5^c)^2 |S|^2c.  Their ratio is therefore fixed."""
    flipped = float(compressed_loss(clean, -clean))
    halved = float(compressed_loss(clean, 0.5 * clean))
    assert flipped / halved == pytest.approx(4 * COMPLEX_SHARE / (1 - 0.5 ** COMPRESSION) ** 2, rel=1e-3)


def test_enhancement_loss_adds_the_compressed_term_only_when_weighted(clean):
    estimate = 0.7 * clean
    plain, parts = enhancement_loss(clean, estimate)
    weighted, weighted_parts = enhancement_loss(clean, estimate, LossWeights(compressed=2.0))
    assert float(parts["comp"]) == 0.0 and float(weighted_parts["comp"]) > 0
    assert float(weighted) == pytest.approx(float(plain) + 2.0 * float(weighted_parts["comp"]), rel=1e-5)
