"""Training data: clean speech + noise mixed on the fly at random SNRs (docs/design.md §3).

The speech and noise folders are decoded once into memory (optionally cached as int16
``.npz`` next to the run so resumed or repeated runs skip the Opus decode).  Every epoch
draws fresh fixed-length segments from a generator seeded with ``(seed, epoch)``, so a
resumed run sees exactly the data the interrupted one would have seen.

Validation holds whole *speakers* out of the speech folder: the speaker key of a file is
its parent folder plus the file-name prefix before the first ``_`` or ``-`` (VCTK
``p225_001``, LibriSpeech ``103-1240-0000``), and a stable hash of that key picks the
held-out share.

:class:`Mixing` is the recipe of a pair: SNR range, what the speech power of an SNR is
(the active speech level by default, :func:`speech_power`), and the share of noise segments
made from other speech segments instead of drawn from the noise folder: babble and
speech-shaped noise, the two artificial noise types of the Valentini training set; and
its augmentation (:class:`tfdenoise.augment.Augment`: reverberation, spectral tilt, level;
none by default), drawn from a generator of its own so that the rest of a pair is the same.
"""
from __future__ import annotations

import fnmatch
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from tfdenoise import SAMPLE_RATE, audio
from tfdenoise.augment import Augment, Augmenter
from tfdenoise.errors import InputError
from tfdenoise.fileio import atomic_path

DEFAULT_SNR_DB = (0.0, 15.0)
SNR_LEVELS = ("active", "mean")  # what the "S" of an SNR is: see :func:`speech_power`
DEFAULT_SNR_LEVEL = "active"
BABBLE_TALKERS = (4, 10)  # talkers summed into one babble segment (inclusive range)
SSN_TALKERS = 24  # segments whose mean spectrum shapes one speech-shaped noise segment
_FRAME = 320  # 20 ms at 16 kHz
_SILENT = 1e-6  # mean square below which a speech segment counts as silent (-60 dBFS)
_ACTIVE_FLOOR_DB = 20.0
_LEVEL_FRAME = 512  # 32 ms frames for a clip's level statistics (clean_snr_db)


@dataclass(frozen=True)
class Corpus:
    """Decoded clips of one folder, concatenated: ``clips[i] = data[starts[i]:ends[i]]``."""

    data: np.ndarray  # int16
    starts: np.ndarray
    ends: np.ndarray
    names: tuple[str, ...]

    @property
    def seconds(self) -> float:
        return float(np.sum(self.ends - self.starts)) / SAMPLE_RATE

    def subset(self, keep: np.ndarray) -> "Corpus":
        idx = np.flatnonzero(keep)
        return Corpus(self.data, self.starts[idx], self.ends[idx],
                      tuple(self.names[i] for i in idx))


def speaker_key(path: Path) -> str:
    """Speaker of a speech file: parent folder + stem prefix before the first ``_`` or ``-``."""
    stem = path.stem.replace("-", "_").split("_")[0]
    return f"{path.parent.name}/{stem}"


def _cache_name(files: Sequence[Path]) -> str:
    h = hashlib.sha1()
    for f in files:
        st = f.stat()
        h.update(f"{f}|{st.st_size}|{int(st.st_mtime)}\n".encode())
    return h.hexdigest()[:16]


def load_corpus(folder: str | os.PathLike, cache_dir: str | os.PathLike | None = None,
                min_seconds: float = 0.5, progress: bool = True) -> Corpus:
    """Decode every audio file below ``folder`` (16 kHz mono) into one int16 array."""
    folder = Path(folder)
    files = audio.list_audio(folder)
    if not files:
        raise InputError("no audio files (wav/flac/ogg/opus) found", folder)
    cache = Path(cache_dir) / f"{folder.name}-{_cache_name(files)}.npz" if cache_dir else None
    if cache and cache.is_file():
        z = np.load(cache, allow_pickle=False)
        return Corpus(z["data"], z["starts"], z["ends"], tuple(str(n) for n in z["names"]))
    from tqdm import tqdm

    chunks, names, starts, ends, pos = [], [], [], [], 0
    for f in tqdm(files, desc=f"decoding {folder.name}", unit="file", disable=not progress):
        x = audio.read(f, allow_silence=True, note_resampling=False)
        if len(x) < min_seconds * SAMPLE_RATE:
            continue
        chunks.append(np.round(np.clip(x, -1, 1) * 32767).astype(np.int16))
        names.append(str(f.relative_to(folder)))
        starts.append(pos)
        pos += len(x)
        ends.append(pos)
    if not chunks:
        raise InputError(f"no clip of at least {min_seconds} s found", folder)
    corpus = Corpus(np.concatenate(chunks), np.array(starts), np.array(ends), tuple(names))
    if cache:
        with atomic_path(cache, suffix=".npz") as tmp:
            np.savez(tmp, data=corpus.data, starts=corpus.starts, ends=corpus.ends,
                     names=np.array(corpus.names))
    return corpus


def exclude(corpus: Corpus, patterns: Sequence[str], folder: str | os.PathLike) -> Corpus:
    """``corpus`` without the clips whose relative path matches a glob of ``patterns``
    (e.g. ``voice/*``: single talkers and singing are another speaker, not noise)."""
    keep = np.array([not any(fnmatch.fnmatch(n, p) for p in patterns) for n in corpus.names])
    if not keep.any():
        raise InputError(f"every clip matches the exclusions {', '.join(patterns)}", folder)
    return corpus.subset(keep)


def _frame_powers(x: np.ndarray, frame: int) -> np.ndarray:
    """Mean square of each whole ``frame``-sample frame of ``x`` (of all of ``x`` if shorter)."""
    n = len(x) // frame
    if n == 0:
        return np.array([np.mean(x ** 2)])
    return np.mean(x[:n * frame].reshape(n, frame) ** 2, axis=1)


def clean_snr_db(corpus: Corpus) -> np.ndarray:
    """Estimated SNR in dB of each clip of a *clean* speech corpus: the 95th minus the 5th
    percentile of its 32 ms frame levels, i.e. how far the floor of its pauses sits below its
    loud frames.  Studio speech reaches 40-50 dB; a phone recording in a room with a fan,
    25 dB.  A "clean" target with an audible floor teaches the model to keep that much noise.
    """
    out = np.empty(len(corpus.starts))
    for i, (s, e) in enumerate(zip(corpus.starts, corpus.ends)):
        level = 10 * np.log10(_frame_powers(corpus.data[s:e].astype(np.float32) / 32767.0, _LEVEL_FRAME) + 1e-12)
        out[i] = np.percentile(level, 95) - np.percentile(level, 5)
    return out


def drop_noisy_speech(corpus: Corpus, min_snr_db: float, folder: str | os.PathLike) -> Corpus:
    """``corpus`` without the clips whose :func:`clean_snr_db` is below ``min_snr_db``."""
    keep = clean_snr_db(corpus) >= min_snr_db
    if not keep.any():
        raise InputError(f"no speech clip has an estimated SNR of {min_snr_db:g} dB or more", folder)
    return corpus.subset(keep)


def split_speakers(corpus: Corpus, valid_fraction: float) -> tuple[Corpus, Corpus]:
    """(train, valid) with whole speakers held out by a stable hash of :func:`speaker_key`."""
    keys = [speaker_key(Path(n)) for n in corpus.names]
    bucket = np.array([zlib.crc32(k.encode()) % 1000 for k in keys])
    valid = bucket < int(round(valid_fraction * 1000))
    if valid_fraction > 0 and (valid.all() or not valid.any()):
        # Too few speakers for the hash to split: hold out every n-th speaker instead,
        # or every n-th file when there is a single speaker.
        speakers = sorted(set(keys))
        step = max(2, int(round(1 / valid_fraction)))
        if len(speakers) > 1:
            held = {k for i, k in enumerate(speakers) if i % step == 0}
            valid = np.array([k in held for k in keys])
        else:
            valid = np.arange(len(keys)) % step == 0
    if len(keys) > 1 and valid.all():
        valid[-1] = False
    return corpus.subset(~valid), corpus.subset(valid)


def _segment(corpus: Corpus, rng: np.random.Generator, length: int) -> np.ndarray:
    """A random ``length``-sample segment of a random clip (zero-padded if the clip is short)."""
    i = rng.integers(len(corpus.starts))
    s, e = int(corpus.starts[i]), int(corpus.ends[i])
    if e - s > length:
        s = int(rng.integers(s, e - length))
    x = corpus.data[s:min(e, s + length)].astype(np.float32) / 32767.0
    return np.pad(x, (0, length - len(x)))


def speech_power(clean: np.ndarray, level: str = DEFAULT_SNR_LEVEL) -> float:
    """Power of ``clean`` that an SNR refers to.

    ``"mean"``: mean square over the whole segment, pauses included.  ``"active"``: mean
    square over the active 20 ms frames, those within 20 dB of the loud (95th percentile)
    frames; a simple stand-in for the ITU-T P.56 active speech level that the Valentini
    set was mixed with, so that "5 dB" means what it means in that set.  Pauses lower the
    mean but not the active level, so at the same nominal SNR an "active" mixture of
    speech with pauses is noisier.
    """
    if level not in SNR_LEVELS:
        raise ValueError(f"SNR level must be one of {SNR_LEVELS}, not {level!r}")
    if level == "mean" or len(clean) < 2 * _FRAME:
        return float(np.mean(clean ** 2))
    power = _frame_powers(clean, _FRAME)
    return float(np.mean(power[power >= np.percentile(power, 95) * 10 ** (-_ACTIVE_FLOOR_DB / 10)]))


def mix(clean: np.ndarray, noise: np.ndarray, snr_db: float, level: str = DEFAULT_SNR_LEVEL) -> np.ndarray:
    """``clean + g * noise`` with ``g`` chosen so that the SNR is ``snr_db`` dB, the speech
    power measured as ``level`` (:func:`speech_power`)."""
    p_clean = speech_power(clean, level) + 1e-10
    p_noise = float(np.mean(noise ** 2)) + 1e-10
    return clean + noise * np.sqrt(p_clean / (p_noise * 10 ** (snr_db / 10)))


def babble(speech: Corpus, rng: np.random.Generator, length: int) -> np.ndarray:
    """Babble: ``BABBLE_TALKERS`` random speech segments, each at unit active level, summed
    (silent ones dropped)."""
    talkers = [_segment(speech, rng, length) for _ in range(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))]
    powers = [speech_power(t) for t in talkers]
    return np.sum([t / np.sqrt(p) if p > _SILENT else 0 * t for t, p in zip(talkers, powers)], axis=0)


def speech_shaped_noise(speech: Corpus, rng: np.random.Generator, length: int) -> np.ndarray:
    """Stationary noise with the mean power spectrum of ``SSN_TALKERS`` random speech segments
    (the square root of that spectrum as magnitudes, with random phases)."""
    talkers = np.stack([_segment(speech, rng, length) for _ in range(SSN_TALKERS)])
    magnitude = np.sqrt(np.mean(np.abs(np.fft.rfft(talkers, axis=1)) ** 2, axis=0))
    phase = np.exp(2j * np.pi * rng.random(len(magnitude)))
    return np.fft.irfft(magnitude * phase, length).astype(np.float32)


def _noise(speech: Corpus, noise: Corpus, rng: np.random.Generator, length: int, synthetic: float) -> np.ndarray:
    """A noise segment: recorded, or with probability ``synthetic`` made from ``speech``
    (babble or speech-shaped noise, half each)."""
    if synthetic > 0:
        u = rng.random()
        if u < synthetic / 2:
            return babble(speech, rng, length)
        if u < synthetic:
            return speech_shaped_noise(speech, rng, length)
    return _segment(noise, rng, length)


@dataclass(frozen=True)
class Mixing:
    """How a (noisy, clean) pair is mixed: SNR range in dB, what the speech power of an SNR
    is (:func:`speech_power`), and the share of noise segments made from speech (babble or
    speech-shaped noise, the two artificial noise types of the Valentini training set), and
    the augmentation of the pairs (:mod:`tfdenoise.augment`; training mixtures only)."""

    snr_db: tuple[float, float] = DEFAULT_SNR_DB
    snr_level: str = DEFAULT_SNR_LEVEL
    synthetic: float = 0.0
    augment: Augment = Augment()

    def __post_init__(self) -> None:
        if self.snr_level not in SNR_LEVELS:
            raise InputError(f"SNR level must be one of {SNR_LEVELS}, not {self.snr_level!r}")
        if not 0.0 <= self.synthetic <= 1.0:
            raise InputError(f"synthetic noise share must be in [0, 1], not {self.synthetic}")
        if not self.snr_db[0] <= self.snr_db[1]:
            raise InputError(f"SNR range must be LO <= HI, not {self.snr_db[0]} {self.snr_db[1]}")


def mixtures(speech: Corpus, noise: Corpus, count: int, seconds: float, seed: int,
             mixing: Mixing = Mixing()) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``count`` reproducible (noisy, clean) pairs of ``seconds`` each, mixed by ``mixing``.

    Speech with almost no energy is redrawn; the pair is scaled to a random peak level
    (-25..-1 dBFS) so the model sees varied input gains, and never clips.  With
    ``mixing.augment`` active, the speech and noise may be reverberated before they are mixed,
    the pair tilted before and its level changed after the peak scaling (module
    :mod:`tfdenoise.augment`); the draws above are the same with and without it.
    """
    rng = np.random.default_rng(seed)
    aug = Augmenter(mixing.augment, seed) if mixing.augment.active else None
    length = int(seconds * SAMPLE_RATE)
    for _ in range(count):
        clean = _segment(speech, rng, length)
        for _ in range(10):
            if np.mean(clean ** 2) > _SILENT:
                break
            clean = _segment(speech, rng, length)
        noise_segment = _noise(speech, noise, rng, length, mixing.synthetic)
        snr = rng.uniform(*mixing.snr_db)
        if aug is None:
            noisy = mix(clean, noise_segment, snr, mixing.snr_level)
        else:
            wet, noise_segment, clean = aug.room(clean, noise_segment)
            noisy, clean = aug.tilt(mix(wet, noise_segment, snr, mixing.snr_level), clean)
        peak = max(float(np.max(np.abs(noisy))), 1e-6)
        gain = 10 ** (rng.uniform(-25, -1) / 20) / peak
        noisy, clean = (noisy * gain).astype(np.float32), (clean * gain).astype(np.float32)
        yield aug.level(noisy, clean) if aug is not None else (noisy, clean)


def batches(speech: Corpus, noise: Corpus, count: int, seconds: float, batch: int,
            seed: int, mixing: Mixing = Mixing()) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``count // batch`` full ``(noisy, clean)`` batches ``[batch, samples]`` (float32 numpy).

    Plain numpy rather than ``tf.data.Dataset.from_generator``: on the 2-core machine the
    generator-backed pipeline more than doubled the LSTM128 step time (1.42 s vs 0.62 s),
    mostly system time from its threads contending with the training step.
    """
    pairs = mixtures(speech, noise, count, seconds, seed, mixing)
    for _ in range(count // batch):
        chunk = [next(pairs) for _ in range(batch)]
        yield np.stack([c[0] for c in chunk]), np.stack([c[1] for c in chunk])
