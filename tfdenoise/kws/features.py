"""Keyword-spotting features (docs/design.md §7): log-mel filterbank energies or MFCC.

A :class:`FeatureConfig` is part of each model: it fixes the analysis frame, hop, FFT size,
number of bands and the window of frames a model sees.

The transform, one frame at a time (no centring or padding, like :mod:`tfdenoise.stft`):

    frame of ``frame`` samples x periodic Hann window, zero-padded to ``n_fft``
    -> power spectrum |rfft|^2 (``n_fft // 2 + 1`` bins)
    -> mel filterbank (:func:`mel_filterbank`) -> ``log(mel + 1e-6)``      (log-mel)
    -> orthonormal DCT-II, first ``n_mfcc`` coefficients                    (MFCC)

A signal of ``n`` samples has ``1 + (n - frame) // hop`` frames (0 when shorter than one
frame).  Three implementations of the same transform:

* :func:`features` (numpy, float64 inside, float32 out) for evaluation and data;
* :class:`StreamingFeatures` (numpy): push samples as they arrive, get the frames they
  complete; over a whole signal it returns exactly :func:`features`;
* :func:`tf_features` (TensorFlow, float32) for training on batches.

The named configs of the three KWS models (:data:`CNN_FEATURES`, :data:`DSCNN_FEATURES`,
:data:`DNN_FEATURES`) are at the end of this module; a model's input is
``[window_frames, n_features]``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from tfdenoise.errors import InputError
from tfdenoise.vocab import SAMPLE_RATE

LOG_FLOOR = 1e-6  # added to the mel energies before the log: log(0 + 1e-6) = -13.8


class FeatureKind(StrEnum):
    LOGMEL = "logmel"
    MFCC = "mfcc"


@dataclass(frozen=True)
class FeatureConfig:
    """How one model turns 16 kHz audio into its input window ``[window_frames, n_features]``."""

    kind: FeatureKind = FeatureKind.LOGMEL
    frame: int = 640          # samples per analysis frame (40 ms)
    hop: int = 320            # samples between frames (20 ms): one decision per hop
    n_fft: int = 1024
    n_mels: int = 40          # mel bands
    n_mfcc: int = 10          # cepstral coefficients kept (kind == mfcc)
    window_frames: int = 49   # frames the model sees (about 1 s)
    f_min: float = 20.0       # Hz
    f_max: float = 8000.0     # Hz
    sample_rate: int = SAMPLE_RATE

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FeatureKind(self.kind))
        problems = []
        if not 0 < self.frame <= self.n_fft:
            problems.append(f"frame {self.frame} must be in 1..n_fft ({self.n_fft})")
        if self.hop < 1:
            problems.append(f"hop {self.hop} must be at least 1")
        if self.n_mels < 1 or self.window_frames < 1:
            problems.append(f"n_mels ({self.n_mels}) and window_frames ({self.window_frames}) must be at least 1")
        if self.kind is FeatureKind.MFCC and not 1 <= self.n_mfcc <= self.n_mels:
            problems.append(f"n_mfcc {self.n_mfcc} must be in 1..n_mels ({self.n_mels})")
        if not 0 <= self.f_min < self.f_max <= self.sample_rate / 2:
            problems.append(f"need 0 <= f_min ({self.f_min:g}) < f_max ({self.f_max:g}) "
                            f"<= sample_rate / 2 ({self.sample_rate / 2:g})")
        if problems:
            raise InputError("bad feature config: " + "; ".join(problems))

    @property
    def n_features(self) -> int:
        return self.n_mfcc if self.kind is FeatureKind.MFCC else self.n_mels

    @property
    def n_bins(self) -> int:
        """Power-spectrum bins: ``n_fft // 2 + 1``."""
        return self.n_fft // 2 + 1

    @property
    def window_seconds(self) -> float:
        """Audio one window covers: (window_frames - 1) hops plus one frame."""
        return ((self.window_frames - 1) * self.hop + self.frame) / self.sample_rate

    @property
    def window_samples(self) -> int:
        """Samples one window covers: ``(window_frames - 1) * hop + frame``."""
        return (self.window_frames - 1) * self.hop + self.frame

    @property
    def input_shape(self) -> tuple[int, int]:
        """A model's input: ``(window_frames, n_features)``."""
        return (self.window_frames, self.n_features)

    def num_frames(self, n_samples: int) -> int:
        """Frames of a signal of ``n_samples``: ``1 + (n - frame) // hop``, 0 if shorter."""
        return 0 if n_samples < self.frame else 1 + (n_samples - self.frame) // self.hop


def feature_fields(cfg: FeatureConfig) -> dict[str, Any]:
    """The fields of a FeatureConfig as plain JSON values (``FeatureConfig(**fields)`` rebuilds
    it): what a KWS ``.tflite``'s metadata holds."""
    return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(cfg).items()}


def feature_summary(cfg: FeatureConfig) -> dict[str, Any]:
    """:func:`feature_fields` with the derived sizes ``n_features`` and ``window_seconds``: what
    a KWS checkpoint's ``config.json`` and :func:`tfdenoise.kws.layertable.describe` hold."""
    return {**feature_fields(cfg), "n_features": cfg.n_features,
            "window_seconds": round(cfg.window_seconds, 6)}


# -- numpy ---------------------------------------------------------------------------------

def hz_to_mel(f):
    """HTK mel scale: ``2595 log10(1 + f / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(cfg: FeatureConfig) -> np.ndarray:
    """``[n_fft // 2 + 1, n_mels]`` weights (float64): HTK mel scale, triangles in the mel domain.

    ``n_mels + 2`` edges equally spaced in mel from ``f_min`` to ``f_max``; band ``j`` rises
    linearly (in mel) from edge ``j`` to 1 at edge ``j + 1`` and falls to 0 at edge ``j + 2``.
    Bin ``k`` sits at ``k * sample_rate / n_fft`` Hz; the DC bin gets no weight.  Peaks are 1
    (no area normalisation).  This is ``tf.signal.linear_to_mel_weight_matrix`` (used by the
    MLPerf Tiny KWS reference) and the filterbank of Arm's ML-KWS MFCC code.
    """
    freqs = np.arange(cfg.n_bins) * cfg.sample_rate / cfg.n_fft
    mel = hz_to_mel(freqs)[:, None]
    edges = np.linspace(hz_to_mel(cfg.f_min), hz_to_mel(cfg.f_max), cfg.n_mels + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    weights = np.maximum(0.0, np.minimum((mel - lower) / (center - lower), (upper - mel) / (upper - center)))
    weights[0] = 0.0
    return weights


def dct_matrix(n_mels: int, n_mfcc: int) -> np.ndarray:
    """``[n_mels, n_mfcc]`` orthonormal DCT-II: ``logmel @ D`` = ``scipy.fft.dct(logmel,
    type=2, norm="ortho")[..., :n_mfcc]``."""
    n = np.arange(n_mels)[:, None]
    k = np.arange(n_mfcc)[None, :]
    d = np.cos(np.pi * k * (2 * n + 1) / (2 * n_mels)) * np.sqrt(2.0 / n_mels)
    d[:, 0] *= np.sqrt(0.5)
    return d


def _hann(frame: int) -> np.ndarray:
    """Periodic Hann window (as :func:`tfdenoise.stft.window` and ``tf.signal.hann_window``)."""
    return 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(frame) / frame)


def _frames(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """``[T, frame]`` view of the frames of ``x`` (no copy)."""
    t = cfg.num_frames(len(x))
    if t == 0:
        return np.zeros((0, cfg.frame))
    return np.lib.stride_tricks.sliding_window_view(x, cfg.frame)[::cfg.hop][:t]


def _signal(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise InputError(f"features need 1-D mono audio, got shape {x.shape}")
    return x


class _Transform:
    """Window, filterbank and DCT of one config, built once (a config is immutable)."""

    _cache: dict[FeatureConfig, "_Transform"] = {}

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self.window = _hann(cfg.frame)
        self.fb = mel_filterbank(cfg)
        self.dct = dct_matrix(cfg.n_mels, min(cfg.n_mfcc, cfg.n_mels))

    @classmethod
    def of(cls, cfg: FeatureConfig) -> "_Transform":
        if cfg not in cls._cache:
            cls._cache[cfg] = cls(cfg)
        return cls._cache[cfg]

    def __call__(self, frames: np.ndarray, kind: FeatureKind) -> np.ndarray:
        """Features ``[t, n]`` (float32) of ``frames`` ``[t, frame]``."""
        power = np.abs(np.fft.rfft(frames * self.window, n=self.cfg.n_fft, axis=-1)) ** 2
        out = np.log(power @ self.fb + LOG_FLOOR)
        if kind is FeatureKind.MFCC:
            out = out @ self.dct
        return out.astype(np.float32)


def logmel(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """Log-mel energies ``[T, n_mels]`` (float32) of a 1-D signal."""
    x = _signal(x)
    return _Transform.of(cfg)(_frames(x, cfg), FeatureKind.LOGMEL)


def mfcc(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """MFCC ``[T, n_mfcc]`` (float32): orthonormal DCT-II of :func:`logmel`, first ``n_mfcc``."""
    x = _signal(x)
    return _Transform.of(cfg)(_frames(x, cfg), FeatureKind.MFCC)


def features(x: np.ndarray, cfg: FeatureConfig) -> np.ndarray:
    """``[T, n_features]`` of a 1-D signal: :func:`logmel` or :func:`mfcc` by ``cfg.kind``."""
    return mfcc(x, cfg) if cfg.kind is FeatureKind.MFCC else logmel(x, cfg)


class StreamingFeatures:
    """Feature frames of a stream, as its samples arrive.

    :meth:`push` takes any number of new samples and returns the frames they complete,
    ``[k, n_features]`` (``k`` may be 0), keeping the samples later frames still need.
    Pushed in chunks of any sizes, a signal gives exactly :func:`features` of the whole.
    """

    def __init__(self, cfg: FeatureConfig) -> None:
        self.cfg = cfg
        self._transform = _Transform.of(cfg)
        self.reset()

    def reset(self) -> None:
        """Forget every sample pushed so far (a new stream)."""
        self._buffer = np.zeros(0)
        self._skip = 0  # samples still to drop before the next frame starts (hop > frame)
        self.frames_out = 0

    @property
    def pending(self) -> int:
        """Samples held for frames not yet complete."""
        return len(self._buffer)

    def push(self, samples: np.ndarray) -> np.ndarray:
        samples = _signal(samples)
        if self._skip:
            dropped = min(self._skip, len(samples))
            samples, self._skip = samples[dropped:], self._skip - dropped
        buf = np.concatenate([self._buffer, samples]) if len(self._buffer) else samples
        cfg = self.cfg
        k = cfg.num_frames(len(buf))
        out = self._transform(_frames(buf, cfg), cfg.kind) if k else \
            np.zeros((0, cfg.n_features), dtype=np.float32)
        consumed = k * cfg.hop
        self._skip += max(0, consumed - len(buf))
        self._buffer = buf[consumed:].copy()
        self.frames_out += k
        return out


# -- TensorFlow ----------------------------------------------------------------------------

def tf_features(batch_audio, cfg: FeatureConfig):
    """:func:`features` in TensorFlow (float32): ``[..., samples]`` -> ``[..., T, n_features]``.

    The same frames, window, filterbank (the numpy matrix as a constant) and DCT, so it
    equals the numpy transform up to float32 rounding.  Differentiable; use it inside a
    ``tf.data`` map or a model's first layer.
    """
    from tfdenoise.keras import tf

    t = _Transform.of(cfg)
    x = tf.convert_to_tensor(batch_audio, dtype=tf.float32)
    frames = tf.signal.frame(x, cfg.frame, cfg.hop, pad_end=False)
    frames = frames * tf.constant(t.window, dtype=tf.float32)
    spectrum = tf.signal.rfft(frames, fft_length=[cfg.n_fft])
    power = tf.math.square(tf.math.real(spectrum)) + tf.math.square(tf.math.imag(spectrum))
    out = tf.math.log(tf.linalg.matmul(power, tf.constant(t.fb, dtype=tf.float32)) + LOG_FLOOR)
    if cfg.kind is FeatureKind.MFCC:
        out = tf.linalg.matmul(out, tf.constant(t.dct, dtype=tf.float32))
    return out


# -- the named configs of the KWS models ---------------------------------------------------
# Every named config spans 20 Hz - 4 kHz: the development data (FSDD) is band-limited to
# 4 kHz (resampled from 8 kHz), the MLPerf Tiny KWS reference uses the same band, and digit
# and keyword identity lives there; bands above 4 kHz would only ever see the added noise.

#: STM32F7 system (SPEC §7): log-mel 40 bands x 30 frames, FFT 1024, frame 1024 (64 ms), hop
#: 512 (32 ms); the window covers (29 * 512 + 1024) / 16000 = 0.992 s.  Input [30, 40].
CNN_FEATURES = FeatureConfig(kind=FeatureKind.LOGMEL, frame=1024, hop=512, n_fft=1024,
                             n_mels=40, window_frames=30, f_min=20.0, f_max=4000.0)

#: MLPerf Tiny KWS DS-CNN: MFCC 10 of 40 mel bands, frame 640 (40 ms), hop 320 (20 ms), FFT
#: 1024, 49 frames = exactly 1.000 s.  Input [49, 10].
DSCNN_FEATURES = FeatureConfig(kind=FeatureKind.MFCC, frame=640, hop=320, n_fft=1024,
                               n_mels=40, n_mfcc=10, window_frames=49, f_min=20.0, f_max=4000.0)

#: Amazon-style state-free feedforward DNN: a stacked window of log-mel 40 bands x 49 frames,
#: frame 400 (25 ms), hop 320 (20 ms), FFT 512; the window covers (48 * 320 + 400) / 16000 =
#: 0.985 s, enough to hold a whole FSDD digit (median 0.42 s, 99th percentile 0.92 s) with
#: context.  The 20 ms hop (not the usual 10 ms) halves the 1,960-value input a dense first
#: layer must take, with a decision every 20 ms.  Input [49, 40].
DNN_FEATURES = FeatureConfig(kind=FeatureKind.LOGMEL, frame=400, hop=320, n_fft=512,
                             n_mels=40, window_frames=49, f_min=20.0, f_max=4000.0)

NAMED_FEATURES: dict[str, FeatureConfig] = {
    "cnn": CNN_FEATURES, "dscnn": DSCNN_FEATURES, "dnn": DNN_FEATURES}
