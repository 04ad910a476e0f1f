"""The docs/design.md §1 front end: 16 kHz, 400-sample Hann frames, hop 100, FFT 512, 257 bins.

No centring or padding of the first frame (librosa ``center=False``).  The inverse
overlap-adds windowed frames and divides by the summed squared window, so
``istft(stft(x))`` rebuilds ``x`` exactly wherever the summed squared window exceeds
``WSUM_FLOOR`` (everywhere but the outer ~80 samples of the first and last frame).

Two implementations of the same transform:
  * numpy (``stft``/``istft``/:class:`StreamingProcessor`) for inference;
  * TensorFlow (``tf_stft``/``tf_istft``) for the training losses.

Streaming: :class:`StreamingProcessor` takes 100-sample hops and returns 100 samples per
hop, ``LATENCY`` = 300 samples behind its input; :func:`process_offline` gives the same
signal at once, and :func:`process_blocks` the same again in blocks of frames (bounded
memory for long files, a stateful mask function carries its state from block to block).
Each takes a *mask function* mapping magnitudes to gains.
"""
from __future__ import annotations

from typing import Callable, Protocol

import numpy as np

from tfdenoise.vocab import FRAME, HOP, N_BINS, N_FFT

LATENCY = FRAME - HOP  # samples between a hop going in and its samples coming out
# Overlap-add normalisation: divide by the summed squared window, floored so that the
# first/last few samples (where only a window tail covers them) are not amplified when the
# gains change the frame.  In steady state the sum is 1.5 for this window and hop.
WSUM_FLOOR = 0.1


def window(frame: int = FRAME) -> np.ndarray:
    """Periodic Hann window (the ``scipy.signal.get_window('hann', n)`` convention)."""
    n = np.arange(frame)
    return (0.5 - 0.5 * np.cos(2 * np.pi * n / frame)).astype(np.float64)


WINDOW = window()


def num_frames(n_samples: int) -> int:
    """Frames of a signal of ``n_samples`` (0 if shorter than one frame)."""
    return 0 if n_samples < FRAME else 1 + (n_samples - FRAME) // HOP


def padded_length(n_samples: int) -> int:
    """Smallest length >= ``n_samples`` (and >= one frame) made of whole hops after frame 0."""
    n = max(n_samples, FRAME)
    return FRAME + -(-(n - FRAME) // HOP) * HOP


def stft(x: np.ndarray) -> np.ndarray:
    """Complex spectrogram, shape ``[frames, 257]``."""
    x = np.asarray(x, dtype=np.float64)
    t = num_frames(len(x))
    idx = np.arange(FRAME)[None, :] + HOP * np.arange(t)[:, None]
    return np.fft.rfft(x[idx] * WINDOW, n=N_FFT, axis=-1)


def istft(spec: np.ndarray, length: int | None = None) -> np.ndarray:
    """Inverse of :func:`stft` by weighted overlap-add; ``length`` trims or zero-pads."""
    t = spec.shape[0]
    frames = np.fft.irfft(spec, n=N_FFT, axis=-1)[:, :FRAME] * WINDOW
    n = FRAME + HOP * (t - 1) if t else 0
    out = np.zeros(n)
    wsum = np.zeros(n)
    for i in range(t):
        out[i * HOP:i * HOP + FRAME] += frames[i]
        wsum[i * HOP:i * HOP + FRAME] += WINDOW ** 2
    out = out / np.maximum(wsum, WSUM_FLOOR)
    if length is not None:
        out = np.pad(out, (0, max(0, length - n)))[:length]
    return out


class MaskFunction(Protocol):
    """Maps STFT magnitudes ``[frames, 257]`` to gains in [0, 1] of the same shape."""

    def __call__(self, magnitudes: np.ndarray) -> np.ndarray: ...


def process_offline(x: np.ndarray, mask_fn: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Enhance a whole signal: pad to whole hops, mask every frame, rebuild, trim to input length."""
    n = len(x)
    xp = np.pad(np.asarray(x, dtype=np.float64), (0, padded_length(n) - n))
    spec = stft(xp)
    gains = np.asarray(mask_fn(np.abs(spec).astype(np.float32)), dtype=np.float64)
    return istft(spec * gains, length=len(xp))[:n].astype(np.float32)


#: Frames per block of :func:`process_blocks` (25.6 s of audio, about 5 MB of magnitudes).
BLOCK_FRAMES = 4096


def process_blocks(x: np.ndarray, mask_block: Callable[[np.ndarray], np.ndarray],
                   block_frames: int = BLOCK_FRAMES) -> np.ndarray:
    """:func:`process_offline` a block of ``block_frames`` frames at a time.

    ``mask_block`` is called once per block, in order, with the magnitudes ``[frames, 257]``
    of that block; a recurrent mask function keeps its state between calls.  Frames and the
    overlap-add are the same, in the same order, as in :func:`process_offline`, so the output
    is identical to it for the same gains, while memory is bounded by one block.
    """
    if block_frames < 1:
        raise ValueError(f"block_frames must be >= 1, got {block_frames}")
    n = len(x)
    xp = np.pad(np.asarray(x, dtype=np.float64), (0, padded_length(n) - n))
    out = np.zeros(len(xp))
    wsum = np.zeros(len(xp))
    total = num_frames(len(xp))
    for first in range(0, total, block_frames):
        count = min(block_frames, total - first)
        spec = stft(xp[first * HOP:(first + count - 1) * HOP + FRAME])
        gains = np.asarray(mask_block(np.abs(spec).astype(np.float32)), dtype=np.float64)
        frames = np.fft.irfft(spec * gains, n=N_FFT, axis=-1)[:, :FRAME] * WINDOW
        for i in range(count):
            at = (first + i) * HOP
            out[at:at + FRAME] += frames[i]
            wsum[at:at + FRAME] += WINDOW ** 2
    return (out / np.maximum(wsum, WSUM_FLOOR))[:n].astype(np.float32)


class StreamingProcessor:
    """Frame-by-frame enhancement: push 100 samples, get 100 enhanced samples back.

    ``mask_step`` maps one frame of magnitudes ``[257]`` to gains ``[257]`` and keeps its
    own recurrent state.  The output lags the input by :data:`LATENCY` samples (zeros
    first); :meth:`flush` returns the last ``LATENCY`` samples.
    """

    def __init__(self, mask_step: Callable[[np.ndarray], np.ndarray]) -> None:
        self.mask_step = mask_step
        self._in = np.zeros(FRAME)
        self._ola = np.zeros(FRAME)
        self._wsum = np.zeros(FRAME)
        self._seen = 0

    def push(self, hop: np.ndarray) -> np.ndarray:
        """Consume exactly :data:`HOP` samples; return :data:`HOP` output samples."""
        hop = np.asarray(hop, dtype=np.float64)
        if hop.shape != (HOP,):
            raise ValueError(f"push() takes {HOP} samples, got shape {hop.shape}")
        self._in = np.concatenate([self._in[HOP:], hop])
        self._seen += HOP
        if self._seen < FRAME:
            return np.zeros(HOP, dtype=np.float32)
        spec = np.fft.rfft(self._in * WINDOW, n=N_FFT)
        gains = np.asarray(self.mask_step(np.abs(spec).astype(np.float32)), dtype=np.float64)
        self._ola += np.fft.irfft(spec * gains, n=N_FFT)[:FRAME] * WINDOW
        self._wsum += WINDOW ** 2
        return self._emit(HOP)

    def flush(self) -> np.ndarray:
        """Return the :data:`LATENCY` samples still in the overlap-add buffer."""
        return self._emit(LATENCY) if self._seen >= FRAME else np.zeros(0, np.float32)

    def _emit(self, n: int) -> np.ndarray:
        out = self._ola[:n] / np.maximum(self._wsum[:n], WSUM_FLOOR)
        self._ola = np.concatenate([self._ola[n:], np.zeros(n)])
        self._wsum = np.concatenate([self._wsum[n:], np.zeros(n)])
        return out.astype(np.float32)


def process_streaming(x: np.ndarray, mask_step: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Run :class:`StreamingProcessor` over ``x``; same length and signal as :func:`process_offline`."""
    n = len(x)
    xp = np.pad(np.asarray(x, dtype=np.float64), (0, padded_length(n) - n))
    proc = StreamingProcessor(mask_step)
    out = [proc.push(xp[i:i + HOP]) for i in range(0, len(xp), HOP)]
    out.append(proc.flush())
    return np.concatenate(out)[LATENCY:LATENCY + n]


# --- TensorFlow twins, for losses and training -------------------------------------------

def tf_stft(x, frame: int = FRAME, hop: int = HOP, n_fft: int = N_FFT):
    """``tf.signal.stft`` with the same (periodic Hann, no padding) convention, ``[..., T, bins]``."""
    import tensorflow as tf

    return tf.signal.stft(x, frame, hop, fft_length=n_fft,
                          window_fn=tf.signal.hann_window, pad_end=False)


def tf_istft(spec, length: int):
    """TensorFlow twin of :func:`istft` for spectrograms of :func:`tf_stft` (batch, T, 257)."""
    import tensorflow as tf

    frames = tf.signal.irfft(spec, fft_length=[N_FFT])[..., :FRAME]
    w = tf.constant(WINDOW, dtype=frames.dtype)
    ola = tf.signal.overlap_and_add(frames * w, HOP)
    t = tf.shape(spec)[-2]
    wsum = tf.signal.overlap_and_add(tf.tile(w[None, :] ** 2, [t, 1]), HOP)
    out = ola / tf.maximum(wsum, WSUM_FLOOR)
    pad = tf.maximum(0, length - tf.shape(out)[-1])
    out = tf.pad(out, [[0, 0]] * (len(out.shape) - 1) + [[0, pad]])
    return out[..., :length]
