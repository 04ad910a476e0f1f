"""Datasets.

Part 1 -- paired evaluation data in the Valentini (VoiceBank-DEMAND) layout:
``FOLDER/noisy/`` and ``FOLDER/clean/`` holding files with identical names.  Any sample
rate is accepted (:func:`tfdenoise.audio.read` resamples to 16 kHz); stereo files, a file
present on one side only, and pairs of different durations are rejected with an
:class:`~tfdenoise.errors.AudioError` naming the file.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfdenoise import SAMPLE_RATE
from tfdenoise.audio import AUDIO_SUFFIXES, read
from tfdenoise.errors import AudioError, InputError

NOISY_DIR = "noisy"
CLEAN_DIR = "clean"


@dataclass(frozen=True)
class Pair:
    """One noisy/clean utterance pair; ``name`` is the path relative to ``noisy/``."""

    name: str
    noisy: Path
    clean: Path


def _audio_files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in sorted(folder.rglob("*"))
            if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES}


def _header(path: Path) -> tuple[int, float]:
    """``(channels, duration in seconds)`` from the file header, without decoding it."""
    import soundfile as sf

    try:
        info = sf.info(str(path))
    except Exception as exc:  # soundfile raises several unrelated types
        raise AudioError(f"cannot read audio ({str(exc).splitlines()[0]})", path) from exc
    if info.frames <= 0 or info.samplerate <= 0:
        raise AudioError("contains no samples", path)
    return info.channels, info.frames / info.samplerate


def list_pairs(folder: str | os.PathLike) -> list[Pair]:
    """The sorted pairs of a Valentini-layout ``folder`` (checked from the file headers)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such folder", folder)
    for sub in (NOISY_DIR, CLEAN_DIR):
        if not (folder / sub).is_dir():
            raise InputError(f"not a noisy/clean pairs folder (no {sub}/ inside)", folder)
    noisy = _audio_files(folder / NOISY_DIR)
    clean = _audio_files(folder / CLEAN_DIR)
    if not noisy and not clean:
        raise InputError("pairs folder holds no audio files in noisy/ and clean/", folder)
    for name in sorted(set(noisy) ^ set(clean)):
        have, lack = (noisy, CLEAN_DIR) if name in noisy else (clean, NOISY_DIR)
        raise AudioError(f"has no partner with the same name in {lack}/", have[name])
    pairs = []
    for name in sorted(noisy):
        n_ch, n_dur = _header(noisy[name])
        c_ch, c_dur = _header(clean[name])
        for path, ch in ((noisy[name], n_ch), (clean[name], c_ch)):
            if ch != 1:
                raise AudioError(f"has {ch} channels; tfdenoise needs mono audio", path)
        if abs(n_dur - c_dur) > 1.5 / SAMPLE_RATE:
            raise AudioError(f"noisy and clean files differ in length "
                             f"({n_dur:.4f} s vs {c_dur:.4f} s)", noisy[name])
        pairs.append(Pair(name, noisy[name], clean[name]))
    return pairs


def load_pair(pair: Pair) -> tuple[np.ndarray, np.ndarray]:
    """``(noisy, clean)`` float32 signals at 16 kHz, of equal length."""
    noisy = read(pair.noisy)
    clean = read(pair.clean)
    if abs(len(noisy) - len(clean)) > 1:
        raise AudioError(f"noisy and clean files differ in length "
                         f"({len(noisy)} vs {len(clean)} samples at {SAMPLE_RATE} Hz)",
                         pair.noisy)
    n = min(len(noisy), len(clean))  # resampling both sides may round one sample apart
    return noisy[:n], clean[:n]
