"""Training loss (SPEC 3): L1 on the waveform + multi-resolution STFT loss.

Following Defossez et al., *Real Time Speech Enhancement in the Waveform Domain*
(Interspeech 2020), for each resolution r (FFT size, hop, window) with magnitudes
``Y = |STFT_r(clean)|`` and ``X = |STFT_r(enhanced)|``:

    L_sc(r)  = ||Y - X||_F / ||Y||_F                     (spectral convergence)
    L_mag(r) = mean |log Y - log X|                       (log-magnitude)
    L        = mean|clean - enhanced| + sc_weight * mean_r L_sc + mag_weight * mean_r L_mag

with the paper's resolutions (512, 50, 240), (1024, 120, 600), (2048, 240, 1200) and
weights 0.5 / 0.5.
"""
from __future__ import annotations

from dataclasses import dataclass

RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))
_EPS = 1e-7


@dataclass(frozen=True)
class LossWeights:
    l1: float = 1.0
    sc: float = 0.5
    mag: float = 0.5


def _magnitude(x, n_fft: int, hop: int, win: int):
    import tensorflow as tf

    spec = tf.signal.stft(x, win, hop, fft_length=n_fft, window_fn=tf.signal.hann_window)
    return tf.maximum(tf.abs(spec), _EPS)


def stft_losses(clean, enhanced, resolutions=RESOLUTIONS):
    """Mean spectral-convergence and log-magnitude losses over ``resolutions``."""
    import tensorflow as tf

    sc, mag = 0.0, 0.0
    for n_fft, hop, win in resolutions:
        y = _magnitude(clean, n_fft, hop, win)
        x = _magnitude(enhanced, n_fft, hop, win)
        sc += tf.norm(y - x, ord="fro", axis=(-2, -1)) / (tf.norm(y, ord="fro", axis=(-2, -1)) + _EPS)
        mag += tf.reduce_mean(tf.abs(tf.math.log(y) - tf.math.log(x)), axis=(-2, -1))
    n = len(resolutions)
    return tf.reduce_mean(sc) / n, tf.reduce_mean(mag) / n


def enhancement_loss(clean, enhanced, weights: LossWeights = LossWeights()):
    """Scalar training loss and its parts ``{"l1", "sc", "mag"}``."""
    import tensorflow as tf

    l1 = tf.reduce_mean(tf.abs(clean - enhanced))
    sc, mag = stft_losses(clean, enhanced)
    total = weights.l1 * l1 + weights.sc * sc + weights.mag * mag
    return total, {"l1": l1, "sc": sc, "mag": mag}
