"""Training-mixture augmentation the recorded data lacks: room reverberation, level, spectral tilt.

Used by :func:`tfdenoise.mixtures.mixtures` on the *training* mixtures only; the held-out
mixtures (``val_loss``, the PESQ selection set) stay dry and untilted, so their scores compare
with those of runs without augmentation. Every draw comes from a generator of its own, seeded
by the mixture stream's seed, so the speech, noise, SNR and peak level of each mixture are the
ones the same seed gives without augmentation (an A/B changes only what is added here).

In the order applied to a (speech, noise) pair:

1. **Reverberation** (probability ``reverb`` per mixture): a random shoebox room
   (:mod:`tfdenoise.rir`, RT60 drawn from ``rt60``), one impulse response from the talker and
   one from another position (the noise source) to the same microphone. The responses are
   cut at the direct path and scaled so that it is 1 (no propagation delay), so the dry target
   is the speech itself, sample-aligned with the direct sound in the mixture. The SNR is set
   on the reverberant speech and noise, as they reach the microphone. Target: ``dry`` (the
   direct path only: the model learns to remove the reverberation as well) or ``early``
   (the direct path and the first EARLY_SECONDS = 50 ms of reflections, which help
   intelligibility, are kept; only the late reverberation is removed). The reverberation of
   speech before the segment's start is not there (a segment starts dry).
2. **Spectral tilt** (``tilt_db``, dB per 8 kHz, drawn uniformly): a first-order shelf
   ``H(z) = (1 + p z^-1) / (1 - p z^-1)`` with ``(1 - p) / (1 + p) = 10 ** (T / 40)``: 0 dB at
   4 kHz, ``-T/2`` dB at 0 Hz and ``+T/2`` dB at 8 kHz, monotonic in between (a first-order
   filter has no constant dB/octave slope). It is applied to the mixture **and** the target
   alike (speech and noise through the same channel: a microphone or a voice that is brighter
   or duller). A mask-based denoiser multiplies the noisy spectrum by gains in [0, 1] (sigmoid
   output): tilting both leaves the ideal gains of a bin unchanged, so the model learns to be
   indifferent to the tilt. Tilting the mixture only would ask for gains above 1 (up to
   ``+T/2`` dB) wherever the tilt attenuates, which the sigmoid cannot give, and would make
   equalisation, not denoising, part of the target.
3. **Level** (``level_db``, dB, drawn uniformly): after the existing random peak level of
   -25..-1 dBFS, mixture and target are multiplied by the same gain. Peaks are never clipped
   or limited: when the gain would lift the larger peak of the two above PEAK_CEILING_DBFS
   (-1 dBFS, the top of the existing range), the gain is lowered to reach exactly that peak,
   so the upper end of a positive range is reached only by quiet mixtures.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from tfdenoise import SAMPLE_RATE, rir
from tfdenoise.checks import check_number, check_pair
from tfdenoise.errors import InputError

REVERB_TARGETS = ("dry", "early")  # what the clean target of a reverberant mixture is
DEFAULT_REVERB_TARGET = "dry"
DEFAULT_RT60 = (0.2, 1.0)  # seconds
RT60_LIMITS = (0.1, 2.0)  # seconds: shorter needs near-anechoic walls, longer slows mixing
EARLY_SECONDS = 0.05  # the early target: direct path + this much of the response
LEVEL_LIMITS_DB = (-60.0, 30.0)
TILT_LIMIT_DB = 24.0  # |tilt| per 8 kHz
PEAK_CEILING_DBFS = -1.0
OFF = (0.0, 0.0)  # a level or tilt range that is off
_STREAM = 0x617567  # second key of the augmentation generator's seed ("aug")


def _within(option: str, value: tuple[float, float], low: float, high: float, unit: str) -> None:
    check_pair(option, value, unit)
    if not (low <= value[0] and value[1] <= high):
        raise InputError(f"{option} must lie within [{low:g}, {high:g}] {unit}, got {value[0]:g} {value[1]:g}")


@dataclass(frozen=True)
class Augment:
    """The augmentation of the training mixtures (module header); the default is none.
    Constructing one checks it (one-line :class:`InputError` naming the CLI option)."""

    reverb: float = 0.0  # probability per mixture
    rt60: tuple[float, float] = DEFAULT_RT60
    reverb_target: str = DEFAULT_REVERB_TARGET
    level_db: tuple[float, float] = OFF
    tilt_db: tuple[float, float] = OFF

    def __post_init__(self) -> None:
        check_number("--reverb", self.reverb, lambda v: 0 <= v <= 1, "a probability in [0, 1] (0: off)")
        _within("--rt60", self.rt60, *RT60_LIMITS, "seconds")
        if self.reverb_target not in REVERB_TARGETS:
            raise InputError(f"--reverb-target must be one of {', '.join(REVERB_TARGETS)}, got {self.reverb_target}")
        _within("--level-db", self.level_db, *LEVEL_LIMITS_DB, "dB")
        _within("--tilt-db", self.tilt_db, -TILT_LIMIT_DB, TILT_LIMIT_DB, "dB per 8 kHz")

    @property
    def active(self) -> bool:
        """Whether any mixture is changed."""
        return self.reverb > 0 or tuple(self.level_db) != OFF or tuple(self.tilt_db) != OFF

    def record(self) -> dict:
        """The options in use, for a history row (empty when off: such rows had none)."""
        out: dict = {}
        if self.reverb > 0:
            out.update(reverb=self.reverb, rt60=list(self.rt60), reverb_target=self.reverb_target)
        if tuple(self.level_db) != OFF:
            out["level_db"] = list(self.level_db)
        if tuple(self.tilt_db) != OFF:
            out["tilt_db"] = list(self.tilt_db)
        return out


def tilt_filter(tilt_db: float) -> tuple[np.ndarray, np.ndarray]:
    """``(b, a)`` of the first-order shelf of ``tilt_db`` dB from 0 Hz to 8 kHz (module header)."""
    r = 10 ** (tilt_db / 40)
    p = (1 - r) / (1 + r)
    return np.array([1.0, p]), np.array([1.0, -p])


def apply_tilt(x: np.ndarray, tilt_db: float) -> np.ndarray:
    from scipy.signal import lfilter

    b, a = tilt_filter(tilt_db)
    return lfilter(b, a, x).astype(np.float32)


def _convolve(x: np.ndarray, h: np.ndarray) -> np.ndarray:
    """Causal convolution cut to ``len(x)``."""
    from scipy.signal import oaconvolve

    return oaconvolve(x, h)[:len(x)].astype(np.float32)


def aligned(h: np.ndarray) -> np.ndarray:
    """An impulse response from its direct path on, scaled so that the direct path is 1."""
    d = rir.direct_index(h)
    return h[d:] / h[d]


def reverberate(speech: np.ndarray, noise: np.ndarray, rirs: tuple[np.ndarray, np.ndarray],
                target: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(reverberant speech, reverberant noise, target)`` through ``rirs`` (talker's, noise
    source's); ``target``: ``dry`` (the speech) or ``early`` (direct + EARLY_SECONDS)."""
    h_speech, h_noise = (aligned(h) for h in rirs)
    wet = _convolve(speech, h_speech)
    if target == "early":
        clean = _convolve(speech, h_speech[:int(round(EARLY_SECONDS * SAMPLE_RATE)) + 1])
    else:
        clean = speech.astype(np.float32)
    return wet, _convolve(noise, h_noise), clean


def limited_gain(noisy: np.ndarray, clean: np.ndarray, gain_db: float) -> float:
    """The linear gain of ``gain_db``, lowered when it would lift the larger peak of ``noisy``
    and ``clean`` above PEAK_CEILING_DBFS (never below what they have: a pair already above
    the ceiling keeps its level)."""
    gain = 10 ** (gain_db / 20)
    if gain <= 1:
        return gain
    peak = max(float(np.max(np.abs(noisy))), float(np.max(np.abs(clean))), 1e-9)
    return min(gain, max(10 ** (PEAK_CEILING_DBFS / 20) / peak, 1.0))


class Augmenter:
    """Draws and applies :class:`Augment` to one stream of mixtures (``seed``: the stream's)."""

    def __init__(self, options: Augment, seed: int) -> None:
        if not isinstance(seed, numbers.Integral) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed}")
        self.options = options
        self.rng = np.random.default_rng([int(seed), _STREAM])

    def room(self, speech: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(speech at the microphone, noise at the microphone, target)``: reverberant with
        probability ``reverb`` (:func:`reverberate`), else unchanged."""
        o = self.options
        if o.reverb > 0 and self.rng.random() < o.reverb:
            _, rirs = rir.random_rirs(self.rng, o.rt60, sources=2)
            return reverberate(speech, noise, tuple(rirs), o.reverb_target)
        return speech, noise, speech

    def tilt(self, noisy: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both through one drawn tilt filter (unchanged when the tilt is off)."""
        if tuple(self.options.tilt_db) == OFF:
            return noisy, clean
        t = float(self.rng.uniform(*self.options.tilt_db))
        return apply_tilt(noisy, t), apply_tilt(clean, t)

    def level(self, noisy: np.ndarray, clean: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Both times one drawn gain (:func:`limited_gain`; unchanged when the level is off)."""
        if tuple(self.options.level_db) == OFF:
            return noisy, clean
        g = limited_gain(noisy, clean, float(self.rng.uniform(*self.options.level_db)))
        return (noisy * g).astype(np.float32), (clean * g).astype(np.float32)
