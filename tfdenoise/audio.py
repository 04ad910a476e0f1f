"""Read, validate, resample and write audio (wav, flac, ogg/opus).

Every problem becomes an :class:`~tfdenoise.errors.AudioError` naming the file.
Writes go to a temporary name in the same folder and are renamed into place, so a
crash never leaves a partial output file.
"""
from __future__ import annotations

import os
from math import gcd
from pathlib import Path

import numpy as np

from tfdenoise import SAMPLE_RATE
from tfdenoise.errors import AudioError, warn
from tfdenoise.fileio import atomic_path

AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".opus")


def read(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE, *,
         allow_silence: bool = False, note_resampling: bool = True) -> np.ndarray:
    """Return the mono float32 signal of ``path`` at ``sample_rate`` Hz.

    Other sample rates are resampled (polyphase), with a warning naming the file unless
    ``note_resampling`` is off (training corpora, whose Opus files always decode at 48 kHz).  Stereo, empty, non-finite and (unless
    ``allow_silence``) all-zero files are rejected with an :class:`AudioError`.
    """
    import soundfile as sf

    path = Path(path)
    if not path.is_file():
        raise AudioError("no such audio file", path)
    try:
        data, sr = sf.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # soundfile raises several unrelated types
        raise AudioError(f"cannot read audio ({str(exc).splitlines()[0]})", path) from exc
    if data.shape[1] != 1:
        raise AudioError(f"has {data.shape[1]} channels; tfdenoise needs mono audio", path)
    x = data[:, 0]
    if x.size == 0:
        raise AudioError("contains no samples", path)
    if not np.all(np.isfinite(x)):
        raise AudioError("contains NaN or infinite samples", path)
    if not allow_silence and not np.any(x):
        raise AudioError("is silent (all samples are zero)", path)
    if sr != sample_rate and note_resampling:
        warn(f"{path}: resampled from {sr} Hz to {sample_rate} Hz"
             + (" (narrowband source: nothing above 4 kHz)" if sr <= 8000 else ""))
    return resample(x, sr, sample_rate)


def resample(x: np.ndarray, sr_in: int, sr_out: int = SAMPLE_RATE) -> np.ndarray:
    """Polyphase resampling from ``sr_in`` to ``sr_out`` Hz (identity when equal)."""
    if sr_in == sr_out:
        return np.asarray(x, dtype=np.float32)
    from scipy.signal import resample_poly

    g = gcd(int(sr_in), int(sr_out))
    return resample_poly(x, sr_out // g, sr_in // g).astype(np.float32)


def check_signal(x: np.ndarray, name: str = "signal") -> np.ndarray:
    """Validate an in-memory mono signal: 1-D, finite, not empty."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 1:
        raise AudioError(f"must be 1-D mono audio, got shape {x.shape}", name)
    if x.size == 0:
        raise AudioError("contains no samples", name)
    if not np.all(np.isfinite(x)):
        raise AudioError("contains NaN or infinite samples", name)
    return x


def write(path: str | os.PathLike, x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> Path:
    """Write ``x`` as 16-bit PCM wav atomically (temporary file, then rename)."""
    import soundfile as sf

    x = np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0)
    with atomic_path(path, suffix=".wav") as tmp:
        sf.write(str(tmp), x, sample_rate, subtype="PCM_16", format="WAV")
    return Path(path)


def list_audio(folder: str | os.PathLike) -> list[Path]:
    """Sorted audio files (by suffix) directly inside or below ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise AudioError("no such folder", folder)
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES)
