"""Training loss (docs/design.md §3): L1 on the waveform + multi-resolution STFT loss.

Following Defossez et al., *Real Time Speech Enhancement in the Waveform Domain*
(Interspeech 2020), for each resolution r (FFT size, hop, window) with magnitudes
``Y = |STFT_r(clean)|`` and ``X = |STFT_r(enhanced)|``:

    L_sc(r)  = ||Y - X||_F / ||Y||_F                     (spectral convergence)
    L_mag(r) = mean |log Y - log X|                       (log-magnitude)
    L        = mean|clean - enhanced| + sc_weight * mean_r L_sc + mag_weight * mean_r L_mag

with the paper's resolutions (512, 50, 240), (1024, 120, 600), (2048, 240, 1200) and
weights 0.5 / 0.5.

Optionally (``compressed`` weight > 0) a power-law compressed spectral loss is added, the
blend of Braun & Tashev, *A consolidated view of loss functions for supervised deep
learning-based speech enhancement* (TSP 2021), which tracked PESQ better than the
log-magnitude and waveform terms in their comparison.  On the model's own STFT (400-sample
Hann window, hop 100, FFT 512), with both signals divided by the clean segment's RMS so
that the term does not depend on the input level:

    S^c       = |S|^c * exp(j angle S)                    (c = 0.3)
    L_comp    = alpha * mean |S^c - X^c|^2 + (1 - alpha) * mean (|S|^c - |X|^c)^2   (alpha = 0.3)
    L        += compressed * L_comp
"""
from __future__ import annotations

from dataclasses import dataclass

RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((512, 50, 240), (1024, 120, 600), (2048, 240, 1200))
_EPS = 1e-7
COMPRESSION = 0.3  # exponent c of the compressed loss (Braun & Tashev 2021)
COMPLEX_SHARE = 0.3  # alpha: share of the complex (phase-aware) part of the compressed loss
_POWER_EPS = 1e-8  # added to |S|^2 before compressing: finite gradients at |S| = 0


@dataclass(frozen=True)
class LossWeights:
    l1: float = 1.0
    sc: float = 0.5
    mag: float = 0.5
    compressed: float = 0.0  # weight of the compressed spectral loss (0: not computed)


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


def compressed_loss(clean, enhanced):
    """Level-normalised power-law compressed spectral loss (module docstring), a scalar."""
    import tensorflow as tf

    from tfdenoise.stft import FRAME, HOP, N_FFT

    rms = tf.sqrt(tf.reduce_mean(tf.square(clean), axis=-1, keepdims=True)) + _EPS

    def compress(x):
        spec = tf.signal.stft(x / rms, FRAME, HOP, fft_length=N_FFT, window_fn=tf.signal.hann_window)
        power = tf.square(tf.math.real(spec)) + tf.square(tf.math.imag(spec)) + _POWER_EPS
        return spec * tf.cast(power ** ((COMPRESSION - 1) / 2), spec.dtype), power ** (COMPRESSION / 2)

    s, s_mag = compress(clean)
    x, x_mag = compress(enhanced)
    complex_part = tf.reduce_mean(tf.square(tf.abs(s - x)))
    magnitude_part = tf.reduce_mean(tf.square(s_mag - x_mag))
    return COMPLEX_SHARE * complex_part + (1 - COMPLEX_SHARE) * magnitude_part


def enhancement_loss(clean, enhanced, weights: LossWeights = LossWeights()):
    """Scalar training loss and its parts ``{"l1", "sc", "mag", "comp"}`` ("comp" is 0 unless
    ``weights.compressed`` > 0)."""
    import tensorflow as tf

    l1 = tf.reduce_mean(tf.abs(clean - enhanced))
    sc, mag = stft_losses(clean, enhanced)
    comp = compressed_loss(clean, enhanced) if weights.compressed > 0 else tf.zeros_like(l1)
    total = weights.l1 * l1 + weights.sc * sc + weights.mag * mag + weights.compressed * comp
    return total, {"l1": l1, "sc": sc, "mag": mag, "comp": comp}
