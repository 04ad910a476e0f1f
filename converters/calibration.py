"""Activation ranges from calibration clips (docs/design.md §4).

For every float activation tensor of the graph, each calibration clip gives one statistic:

* ``max``: the maximum absolute value over all frames of the clip;
* ``std3``: ``|mean| + 3 * std`` over all values of the clip (never above its ``max``).

The per-clip statistics are smoothed by a moving average across clips (cumulative:
``r_n = r_{n-1} + (s_n - r_{n-1}) / n``, i.e. every clip weighs the same).  The resulting
range ``r`` is written as the symmetric interval ``[-r, r]``, so the INT8 scale of the
tensor is ``S = 2 r / 255`` (docs/design.md §4: ``S = (qmax - qmin) / (2^n - 1)``).  With
:attr:`~tfdenoise.vocab.RangeKind.ASYMMETRIC` ranges a tensor never negative on any clip gets
``[0, 2 r]`` instead: the same scale, no level spent on values that never occur, twice the
headroom above ``r`` (zero point -128).

The default clips are the 4 reference-design clips (docs/design.md §4) shipped in ``converters/calib/``.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tfdenoise.audio import AUDIO_SUFFIXES
from tfdenoise.errors import InputError

from tfdenoise.vocab import CalibMethod, RangeKind

CALIB_DIR = Path(__file__).with_name("calib")
#: Smallest range written, so that all-zero tensors still get a valid scale.
MIN_RANGE = 1e-6


def list_clips(folder: str | os.PathLike | None = None) -> list[Path]:
    """Audio files of a calibration folder (default: the shipped reference-design clips), sorted."""
    folder = CALIB_DIR if folder is None else Path(folder)
    if not folder.is_dir():
        raise InputError("calibration folder does not exist", folder)
    clips = sorted(p for p in folder.iterdir() if p.suffix.lower() in AUDIO_SUFFIXES)
    if not clips:
        raise InputError(f"calibration folder has no audio files "
                         f"({', '.join(AUDIO_SUFFIXES)})", folder)
    return clips


def clip_magnitudes(path: str | os.PathLike, max_frames: int | None = None) -> np.ndarray:
    """STFT magnitudes ``[frames, 257]`` (float32) of one clip, docs/design.md §1 front end."""
    from tfdenoise import audio, stft

    x = audio.read(path)
    xp = np.pad(x, (0, stft.padded_length(len(x)) - len(x)))
    mags = np.abs(stft.stft(xp)).astype(np.float32)
    return mags[:max_frames] if max_frames else mags


@dataclass(frozen=True)
class CalibrationSet:
    """Calibration clips and their magnitudes, one array per clip."""

    clips: tuple[Path, ...]
    frames: tuple[np.ndarray, ...] = field(repr=False)

    @classmethod
    def load(cls, folder: str | os.PathLike | None = None,
             max_frames: int | None = None) -> "CalibrationSet":
        clips = list_clips(folder)
        return cls(tuple(clips), tuple(clip_magnitudes(c, max_frames) for c in clips))

    @property
    def names(self) -> list[str]:
        return [c.stem for c in self.clips]

    def all_frames(self) -> np.ndarray:
        return np.concatenate(self.frames, axis=0)


class _ClipStats:
    """Running sums of one tensor over the frames of one clip."""

    __slots__ = ("n", "s", "ss", "amax", "lo")

    def __init__(self) -> None:
        self.n, self.s, self.ss, self.amax, self.lo = 0, 0.0, 0.0, 0.0, 0.0

    def add(self, x: np.ndarray) -> None:
        x = np.asarray(x, np.float64)
        self.n += x.size
        self.s += float(x.sum())
        self.ss += float(np.square(x).sum())
        if x.size:
            self.amax = max(self.amax, float(np.abs(x).max()))
            self.lo = min(self.lo, float(x.min()))

    def value(self, method: CalibMethod) -> float:
        if method is CalibMethod.MAX or self.n == 0:
            return self.amax
        mean = self.s / self.n
        std = float(np.sqrt(max(self.ss / self.n - mean * mean, 0.0)))
        return min(self.amax, abs(mean) + 3.0 * std)


class RangeCollector:
    """Per-tensor statistic per clip, moving-averaged across clips."""

    def __init__(self, method: CalibMethod | str) -> None:
        self.method = CalibMethod(method)
        self._clip: dict[str, _ClipStats] = {}
        self._avg: dict[str, float] = {}
        self._count: dict[str, int] = {}
        self._negative: set[str] = set()   # tensors with a value below 0 on some clip

    def add_frame(self, tensors: dict[str, np.ndarray]) -> None:
        """Record the values of each named tensor for one frame of the current clip."""
        for name, x in tensors.items():
            self._clip.setdefault(name, _ClipStats()).add(x)

    def end_clip(self) -> None:
        """Fold the current clip's statistics into the moving average."""
        for name, st in self._clip.items():
            n = self._count.get(name, 0) + 1
            prev = self._avg.get(name, 0.0)
            self._avg[name] = prev + (st.value(self.method) - prev) / n
            self._count[name] = n
            if st.lo < 0.0:
                self._negative.add(name)
        self._clip = {}

    def ranges(self) -> dict[str, float]:
        """Tensor name -> symmetric range ``r`` (at least :data:`MIN_RANGE`)."""
        return {k: max(v, MIN_RANGE) for k, v in self._avg.items()}

    def intervals(self, kind: RangeKind | str = RangeKind.SYMMETRIC) -> dict[str, tuple[float, float]]:
        """Tensor name -> the INT8 interval its range ``r`` is written as: ``(-r, r)``, or with
        ``asymmetric`` ranges ``(0, 2 r)`` for a tensor never negative on the clips."""
        one_sided = RangeKind(kind) is RangeKind.ASYMMETRIC
        return {k: (0.0, 2.0 * r) if one_sided and k not in self._negative else (-r, r)
                for k, r in self.ranges().items()}


def int8_scale(r: float) -> float:
    """The INT8 scale of the symmetric range ``[-r, r]``: ``2 r / 255``."""
    return 2.0 * r / 255.0
