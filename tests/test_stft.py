"""docs/design.md §1 front end: perfect reconstruction, streaming == offline, numpy == TensorFlow."""
from __future__ import annotations

import numpy as np
import pytest

from tfdenoise import stft as S


def _signal(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-0.5, 0.5, n)


def test_constants():
    assert (S.FRAME, S.HOP, S.N_FFT, S.N_BINS) == (400, 100, 512, 257)
    assert S.num_frames(399) == 0 and S.num_frames(400) == 1 and S.num_frames(16000) == 157


@pytest.mark.parametrize("n", [4000, 16037])
def test_istft_inverts_stft(n):
    x = _signal(n)
    spec = S.stft(x)
    assert spec.shape == (S.num_frames(n), S.N_BINS)
    y = S.istft(spec, length=n)
    covered = S.FRAME + S.HOP * (spec.shape[0] - 1)
    inner = slice(S.FRAME, covered - S.FRAME)  # away from the first and last frame
    np.testing.assert_allclose(y[inner], x[inner], atol=1e-6)
    assert len(y) == n


def _stateless(mag: np.ndarray) -> np.ndarray:
    return mag / (1.0 + mag)


class _RunningMean:
    """A stateful mask: gain from the running mean of magnitudes (tests frame order)."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def __call__(self, mag):
        self.total = self.total + mag
        self.count += 1
        m = self.total / self.count
        return m / (1.0 + m)


def _running_mean_offline(mags: np.ndarray) -> np.ndarray:
    m = np.cumsum(mags, axis=0) / np.arange(1, len(mags) + 1)[:, None]
    return m / (1.0 + m)


@pytest.mark.parametrize("n", [37, 400, 401, 8000, 12345])
def test_streaming_equals_offline(n):
    x = _signal(n, seed=n)
    for step, whole in ((_stateless, _stateless), (_RunningMean(), _running_mean_offline)):
        off = S.process_offline(x, whole)
        stream = S.process_streaming(x, step)
        assert len(off) == len(stream) == n
        np.testing.assert_allclose(stream, off, atol=1e-5)


class _BlockRunningMean:
    """:class:`_RunningMean` over blocks of frames: the state carries from block to block."""

    def __init__(self):
        self.total, self.count = 0.0, 0

    def __call__(self, mags):
        counts = self.count + np.arange(1, len(mags) + 1)
        m = (self.total + np.cumsum(mags, axis=0)) / counts[:, None]
        self.total, self.count = self.total + mags.sum(axis=0), self.count + len(mags)
        return m / (1.0 + m)


@pytest.mark.parametrize("n", [37, 400, 401, 8000, 12345])
def test_blocks_equal_offline(n):
    """Blocks of any size give process_offline's output exactly (same frames, same sums)."""
    x = _signal(n, seed=n)
    for block in (1, 7, 64, S.BLOCK_FRAMES):
        np.testing.assert_array_equal(S.process_blocks(x, _stateless, block),
                                      S.process_offline(x, _stateless))
        np.testing.assert_allclose(S.process_blocks(x, _BlockRunningMean(), block),
                                   S.process_offline(x, _running_mean_offline), atol=1e-6)
    with pytest.raises(ValueError):
        S.process_blocks(x, _stateless, 0)


def test_unit_gain_is_identity_inside():
    x = _signal(8000)
    y = S.process_streaming(x, np.ones_like)
    np.testing.assert_allclose(y[S.FRAME:-S.FRAME], x[S.FRAME:-S.FRAME], atol=1e-6)


def test_streaming_processor_latency():
    proc = S.StreamingProcessor(np.ones_like)
    outs = [proc.push(np.ones(S.HOP)) for _ in range(3)]
    assert all(o.shape == (S.HOP,) and not o.any() for o in outs)  # nothing before frame 1
    with pytest.raises(ValueError):
        proc.push(np.ones(S.HOP + 1))


def test_numpy_stft_matches_tf():
    from tfdenoise.keras import tf

    x = _signal(6000, seed=3)
    ref = S.stft(x)
    got = S.tf_stft(tf.constant(x[None], tf.float32)).numpy()[0]
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-4 * np.abs(ref).max())
    back = S.tf_istft(got[None], len(x)).numpy()[0]
    np.testing.assert_allclose(back, S.istft(ref, len(x)), atol=1e-4)
