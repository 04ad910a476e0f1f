"""Keyword-spotting data (docs/design.md §7): clips, tasks, splits and training augmentation.

Two folder layouts are read by :func:`list_clips`:

* flat, FSDD: ``<label>_<speaker>_<index>.wav|flac|ogg`` (``7_george_12.flac``);
* one folder per label, Speech Commands: ``<label>/<speaker>_<anything>.wav``
  (``yes/0a7c2a8d_nohash_0.wav``): the speaker is the file name before the first ``_``, the
  index its trailing number (or a running number per label and speaker when it has none).
  Folders whose name starts with ``_`` (Speech Commands' ``_background_noise_``) are not
  labels and are skipped.

A :class:`Task` maps labels to class indices: the ten digits (:func:`digits_task`) or a few
keywords plus ``_unknown_`` (every other word) and ``_silence_`` (noise-only windows made
by :func:`silence_window`) (:func:`keyword_task`).

Splits: :func:`dataset_split` follows FSDD's convention (indices 0-4 of every speaker and
label are the test set) and holds a stratified share of the rest out for validation;
:func:`leave_one_speaker_out` tests on one whole speaker (:func:`split_of`: either).

Training windows: :func:`augment` places a clip in a fixed window with a random shift and
gain and mixes a random noise segment (:mod:`tfdenoise.mixtures`' corpus and SNR rule) at a
random SNR.  Everything random takes a ``numpy.random.Generator``, so a seeded run repeats.
"""
from __future__ import annotations

import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tfdenoise import audio, mixtures
from tfdenoise.errors import InputError
from tfdenoise.fileio import atomic_path
from tfdenoise.vocab import SAMPLE_RATE

CLIP_SUFFIXES = (".wav", ".flac", ".ogg")
UNKNOWN = "_unknown_"   # class of every label that is not a keyword (keyword tasks)
SILENCE = "_silence_"   # class of noise-only windows (keyword tasks)
TEST_INDICES = 5        # FSDD's convention: indices 0-4 of each speaker and label are test
_FLAT = re.compile(r"^(?P<label>[^_]+)_(?P<speaker>.+)_(?P<index>\d+)$")
_TRAILING_NUMBER = re.compile(r"(\d+)$")
_PEAK = 0.999  # augmented windows are scaled down to at most this peak (never clip)


@dataclass(frozen=True)
class Clip:
    """One recorded utterance: its file, label (word), speaker and index (take number)."""

    path: Path
    label: str
    speaker: str
    index: int


def _clip_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*")
                  if p.suffix.lower() in CLIP_SUFFIXES and p.is_file()
                  and not any(part.startswith("_") for part in p.relative_to(folder).parts[:-1]))


def list_clips(folder: str | os.PathLike) -> list[Clip]:
    """Every clip of ``folder`` (flat FSDD layout or one folder per label), sorted by
    (label, speaker, index, path).  A missing or empty folder, or files that fit neither
    layout, raise one :class:`InputError` line naming the folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("no such folder", folder)
    files = _clip_files(folder)
    if not files:
        raise InputError("no audio clips (wav/flac/ogg) found", folder)
    flat = [f for f in files if f.parent == folder]
    nested = [f for f in files if f.parent != folder]
    clips: list[Clip] = []
    if flat and nested:
        raise InputError(f"unknown layout: both clips in the folder ({flat[0].name}) and in "
                         f"label folders ({nested[0].relative_to(folder)}); use one layout", folder)
    if flat:
        for f in flat:
            m = _FLAT.match(f.stem)
            if not m:
                raise InputError(f"unknown layout: {f.name} is not <label>_<speaker>_<index> "
                                 f"and there are no label folders", folder)
            clips.append(Clip(f, m["label"], m["speaker"], int(m["index"])))
    else:
        running: dict[tuple[str, str], int] = {}
        for f in nested:
            rel = f.relative_to(folder)
            if len(rel.parts) != 2:
                raise InputError(f"unknown layout: {rel} is not <label>/<clip> "
                                 f"(one folder per label, clips directly inside)", folder)
            label, speaker = rel.parts[0], f.stem.split("_")[0]
            m = _TRAILING_NUMBER.search(f.stem)
            if m:
                index = int(m.group(1))
            else:
                index = running.get((label, speaker), 0)
                running[(label, speaker)] = index + 1
            clips.append(Clip(f, label, speaker, index))
    return sorted(clips, key=lambda c: (c.label, c.speaker, c.index, str(c.path)))


def labels(clips: Sequence[Clip]) -> tuple[str, ...]:
    """The sorted distinct labels of ``clips``."""
    return tuple(sorted({c.label for c in clips}))


def speakers(clips: Sequence[Clip]) -> tuple[str, ...]:
    """The sorted distinct speakers of ``clips``."""
    return tuple(sorted({c.speaker for c in clips}))


# -- tasks ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Task:
    """Class indices of a model's outputs: ``labels[i]`` is class ``i``.

    A closed task (``keywords is None``, e.g. the ten digits) knows every label.  A keyword
    task's labels are the keywords, then :data:`UNKNOWN` and :data:`SILENCE`; any other
    label maps to :data:`UNKNOWN`.
    """

    labels: tuple[str, ...]
    keywords: tuple[str, ...] | None = None

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    def target(self, label: str) -> int:
        """Class index of ``label``."""
        if label in self.labels:
            return self.labels.index(label)
        if self.keywords is not None:
            return self.labels.index(UNKNOWN)
        raise InputError(f"label {label!r} is not one of the task's labels ({', '.join(self.labels)})")

    def targets(self, clips: Sequence[Clip]) -> np.ndarray:
        """Class indices of ``clips`` (int32)."""
        return np.array([self.target(c.label) for c in clips], dtype=np.int32)


def digits_task(clips: Sequence[Clip]) -> Task:
    """Every label of ``clips`` is a class, sorted (FSDD: the digits ``0`` .. ``9``)."""
    return Task(labels(clips))


def keyword_task(clips: Sequence[Clip], keywords: Sequence[str]) -> Task:
    """``keywords`` (in the order given), then :data:`UNKNOWN` and :data:`SILENCE`."""
    keywords = tuple(keywords)
    if not keywords:
        raise InputError("a keyword task needs at least one keyword")
    present = set(labels(clips))
    for k in keywords:
        if k in (UNKNOWN, SILENCE):
            raise InputError(f"keyword {k!r} is a reserved class name")
        if k not in present:
            raise InputError(f"keyword {k!r} is not a label of the data "
                             f"(labels: {', '.join(sorted(present))})")
    if len(set(keywords)) != len(keywords):
        raise InputError(f"keywords repeat: {', '.join(keywords)}")
    return Task(keywords + (UNKNOWN, SILENCE), keywords)


def task_for(labels: Sequence[str], keywords: Sequence[str] | None = None) -> Task:
    """The task of a model whose class ``i`` is ``labels[i]``: a keyword task with ``keywords``
    (a checkpoint's ``config.json`` says them) or, without them, when the labels end with
    :data:`UNKNOWN` and :data:`SILENCE` (as :func:`keyword_task` makes them: a ``.tflite``
    carries only its labels); else a closed task."""
    labels = tuple(labels)
    if not keywords and labels[-2:] == (UNKNOWN, SILENCE):
        keywords = labels[:-2]
    return Task(labels, tuple(keywords) if keywords else None)


# -- splits --------------------------------------------------------------------------------

def _check_fraction(valid_fraction: float) -> None:
    if not 0.0 <= valid_fraction < 1.0:
        raise InputError(f"validation fraction must be in [0, 1), not {valid_fraction}")


def _hold_out(clips: Sequence[Clip], valid_fraction: float, seed: int) -> tuple[list[Clip], list[Clip]]:
    """(train, valid): ``round(valid_fraction * n)`` random clips of each label's ``n``.

    Each label draws from its own generator, seeded by ``seed`` and a stable hash of the
    label, so adding or removing a label leaves the other labels' choice unchanged.
    """
    _check_fraction(valid_fraction)
    held: set[int] = set()
    for label in labels(clips):
        idx = [i for i, c in enumerate(clips) if c.label == label]
        k = int(round(valid_fraction * len(idx)))
        rng = np.random.default_rng([seed, zlib.crc32(label.encode())])
        held.update(idx[j] for j in rng.permutation(len(idx))[:k])
    return ([c for i, c in enumerate(clips) if i not in held],
            [c for i, c in enumerate(clips) if i in held])


def dataset_split(clips: Sequence[Clip], valid_fraction: float = 0.1,
                  seed: int = 0) -> tuple[list[Clip], list[Clip], list[Clip]]:
    """(train, valid, test): test = indices 0-4 of every speaker and label (FSDD's
    convention: 300 of its 3,000 clips); valid = ``valid_fraction`` of the rest, stratified
    by label; train = the remainder.  Each list keeps the order of ``clips``."""
    test = [c for c in clips if c.index < TEST_INDICES]
    if not test:
        raise InputError(f"no clip has an index below {TEST_INDICES}: no test set")
    train, valid = _hold_out([c for c in clips if c.index >= TEST_INDICES], valid_fraction, seed)
    return train, valid, test


def leave_one_speaker_out(clips: Sequence[Clip], speaker: str, valid_fraction: float = 0.1,
                          seed: int = 0) -> tuple[list[Clip], list[Clip], list[Clip]]:
    """(train, valid, test): test = every clip of ``speaker``; valid = ``valid_fraction``
    of the other speakers' clips, stratified by label."""
    if speaker not in speakers(clips):
        raise InputError(f"speaker {speaker!r} is not in the data (speakers: {', '.join(speakers(clips))})")
    test = [c for c in clips if c.speaker == speaker]
    train, valid = _hold_out([c for c in clips if c.speaker != speaker], valid_fraction, seed)
    return train, valid, test


def split_of(clips: Sequence[Clip], speaker: str | None, valid_fraction: float = 0.1,
             seed: int = 0) -> tuple[list[Clip], list[Clip], list[Clip]]:
    """(train, valid, test): :func:`dataset_split` (``speaker`` None) or
    :func:`leave_one_speaker_out` of ``speaker``."""
    if speaker is None:
        return dataset_split(clips, valid_fraction, seed)
    return leave_one_speaker_out(clips, speaker, valid_fraction, seed)


# -- audio ---------------------------------------------------------------------------------

def load_clips(clips: Sequence[Clip], cache_dir: str | os.PathLike | None = None) -> list[np.ndarray]:
    """16 kHz float32 signal of each clip (:func:`tfdenoise.audio.read`, resampled quietly).

    With ``cache_dir``, the decoded clips are also kept there as one int16 ``.npz`` (named by
    a hash of the files' paths, sizes and times; written atomically) and read back from it
    next time.  The int16 scale is 32768, so 16-bit PCM sources come back bit-exact.
    """
    paths = [Path(c.path) for c in clips]
    if not paths:
        return []
    cache = Path(cache_dir) / f"kws-clips-{mixtures._cache_name(paths)}.npz" if cache_dir else None
    if cache and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        data, ends = z["data"], z["ends"]
        starts = np.concatenate([[0], ends[:-1]])
        return [data[s:e].astype(np.float32) / 32768.0 for s, e in zip(starts, ends)]
    xs = [audio.read(p, note_resampling=False) for p in paths]
    if cache:
        cache.parent.mkdir(parents=True, exist_ok=True)
        data = np.concatenate([np.clip(np.round(x * 32768.0), -32768, 32767).astype(np.int16) for x in xs])
        with atomic_path(cache, suffix=".npz") as tmp:
            np.savez(tmp, data=data, ends=np.cumsum([len(x) for x in xs]))
    return xs


# -- augmentation --------------------------------------------------------------------------

def place(x: np.ndarray, window_samples: int, shift: int = 0) -> np.ndarray:
    """``x`` centred in a window of ``window_samples`` zeros, then moved ``shift`` samples
    later (earlier when negative); whatever falls outside the window is cut."""
    out = np.zeros(window_samples, dtype=np.float32)
    offset = (window_samples - len(x)) // 2 + int(shift)  # window position of x[0]
    lo, hi = max(0, offset), min(window_samples, offset + len(x))
    if hi > lo:
        out[lo:hi] = x[lo - offset:hi - offset]
    return out


def _limit(y: np.ndarray) -> np.ndarray:
    """``y`` as finite float32, scaled down (never clipped) to a peak of at most ``_PEAK``."""
    y = np.nan_to_num(np.asarray(y, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > _PEAK:
        y = y * (_PEAK / peak)
    return y.astype(np.float32)


def augment(x: np.ndarray, rng: np.random.Generator, noise: mixtures.Corpus | None,
            window_samples: int, snr_db: tuple[float, float] = (0.0, 20.0),
            shift_seconds: float = 0.1, gain_db: tuple[float, float] = (-10.0, 10.0),
            noise_prob: float = 0.8) -> np.ndarray:
    """One training window of exactly ``window_samples`` samples (float32) made from clip ``x``.

    The clip is centred in the window and moved by a uniform random shift of at most
    ``shift_seconds``, scaled by a uniform random gain in ``gain_db``, and, with probability
    ``noise_prob`` (when there is a ``noise`` corpus), mixed with a random segment of it at
    a uniform random SNR in ``snr_db`` (:func:`tfdenoise.mixtures.mix`: the SNR refers to the
    active speech level of the placed clip).  A window whose peak would exceed 0.999 is
    scaled down as a whole (the SNR is kept); the result is always finite.
    """
    if not 0.0 <= noise_prob <= 1.0:
        raise InputError(f"noise probability must be in [0, 1], not {noise_prob}")
    if snr_db[0] > snr_db[1] or gain_db[0] > gain_db[1]:
        raise InputError(f"ranges must be LO <= HI, not SNR {snr_db} gain {gain_db}")
    x = np.asarray(x, dtype=np.float32)
    limit = int(round(shift_seconds * SAMPLE_RATE))
    shift = int(rng.integers(-limit, limit + 1)) if limit > 0 else 0
    y = place(x, window_samples, shift) * np.float32(10 ** (rng.uniform(*gain_db) / 20))
    if noise is not None and rng.random() < noise_prob:
        segment = mixtures._segment(noise, rng, window_samples)
        y = mixtures.mix(y.astype(np.float64), segment.astype(np.float64), rng.uniform(*snr_db))
    return _limit(y)


def silence_window(rng: np.random.Generator, noise: mixtures.Corpus | None, window_samples: int,
                   level_db: tuple[float, float] = (-65.0, -25.0)) -> np.ndarray:
    """A noise-only window (the :data:`SILENCE` class): a random segment of ``noise`` (white
    Gaussian noise when there is no corpus) scaled to a uniform random RMS level in
    ``level_db`` dBFS, peak-limited like :func:`augment`."""
    if level_db[0] > level_db[1]:
        raise InputError(f"level range must be LO <= HI, not {level_db}")
    if noise is not None:
        y = mixtures._segment(noise, rng, window_samples).astype(np.float64)
    else:
        y = rng.standard_normal(window_samples)
    rms = float(np.sqrt(np.mean(y ** 2))) if window_samples else 0.0
    y = y * (10 ** (rng.uniform(*level_db) / 20) / rms) if rms > 1e-9 else y
    return _limit(y)
