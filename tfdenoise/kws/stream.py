"""The DET test stream (docs/design.md §7): a long, reproducible signal of words in real noise,
and a model's posteriors over it.

* :func:`build_stream`: a long signal (default one hour) made reproducibly from a seed:
  continuous real background noise (random segments of the noise recordings, 50 ms
  cross-fades, a random RMS level of -45 to -30 dBFS per segment) with a word every 1.5-5 s
  (gap after the previous word), each a test-split clip at a random SNR in 5-20 dB (its
  active speech level, :func:`tfdenoise.mixtures.speech_power`, against the RMS level of the
  background segment it falls in; the stream is clipped to [-1, 1] like a recording).
  Words are keywords or, for a keyword task, other labels (half each).  The clips repeat
  when the stream needs more words than the split has (one hour: ~1,000 words; the FSDD
  dataset split has 300 test clips); each repeat has its own SNR, level and background.
* :func:`stream_probs`: the model over the whole stream, one decision per feature hop (the
  window ending at each frame; :meth:`~tfdenoise.kws.models.KwsClassifier.offline_probs`
  equals streaming :meth:`~tfdenoise.kws.models.KwsClassifier.stream` frame by frame), which
  :func:`tfdenoise.kws.det.det_curve` turns into FRR against false alarms per hour.

The noise recordings of the stream are the ones the shipped model was trained with (other
random segments of them): the data folder has no held-out noise.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from tfdenoise import mixtures
from tfdenoise.errors import InputError
from tfdenoise.kws.features import FeatureConfig, StreamingFeatures
from tfdenoise.kws.models import KwsClassifier
from tfdenoise.vocab import SAMPLE_RATE

DEFAULT_HOURS = 1.0
DEFAULT_STREAM_SNR_DB = (5.0, 20.0)
GAP_SECONDS = (1.5, 5.0)             # noise between one word's end and the next word's start
BACKGROUND_DBFS = (-45.0, -30.0)     # RMS level of each background noise segment
BACKGROUND_SEGMENT_S = (20.0, 60.0)  # length of each background noise segment
CROSSFADE_S = 0.05
KEYWORD_SHARE = 0.5                  # keyword task: share of the stream's words that are keywords
STREAM_SEED = 20_231                 # + the request's seed


@dataclass
class Stream:
    """A long test signal and the words in it: ``events[i] = (start_s, end_s, label)``."""

    audio: np.ndarray
    events: list[tuple[float, float, str]]
    info: dict = field(default_factory=dict)

    @property
    def hours(self) -> float:
        return len(self.audio) / SAMPLE_RATE / 3600


def _background(noise: mixtures.Corpus | None, rng: np.random.Generator,
                n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` samples of continuous background: random noise segments at random levels joined
    by cross-fades (generated pink-ish noise when there are no recordings); with each
    segment's start sample and mean square (its level: a word's SNR refers to it)."""
    out = np.zeros(n, np.float32)
    seg_starts, seg_power = [], []
    fade = int(CROSSFADE_S * SAMPLE_RATE)
    ramp = np.linspace(0.0, 1.0, fade, dtype=np.float32)
    pos = 0
    while pos < n:
        length = int(rng.uniform(*BACKGROUND_SEGMENT_S) * SAMPLE_RATE) + fade
        if noise is not None:
            seg = mixtures._segment(noise, rng, length).astype(np.float64)
        else:
            seg = np.cumsum(rng.standard_normal(length)) * 0.02
            seg = seg - np.convolve(seg, np.ones(64) / 64, mode="same")  # drift removed: pink-ish
        rms = float(np.sqrt(np.mean(seg ** 2)))
        level = 10 ** (rng.uniform(*BACKGROUND_DBFS) / 20)
        if rms > 1e-9:
            seg *= level / rms
        seg_starts.append(pos)
        seg_power.append(level ** 2)
        seg = seg.astype(np.float32)
        if pos > 0:
            seg[:fade] *= ramp
            out[pos:pos + fade] *= 1.0 - ramp[:max(0, min(fade, n - pos))]
        end = min(n, pos + length)
        out[pos:end] += seg[:end - pos]
        pos = end - fade if end < n else end
    return out, np.asarray(seg_starts), np.asarray(seg_power)


def build_stream(keywords: Sequence[tuple[np.ndarray, str]], others: Sequence[tuple[np.ndarray, str]],
                 noise: mixtures.Corpus | None, hours: float = DEFAULT_HOURS, seed: int = 0,
                 snr_db: tuple[float, float] = DEFAULT_STREAM_SNR_DB,
                 keyword_share: float = KEYWORD_SHARE) -> Stream:
    """A reproducible stream of ``hours`` of background noise with words in it (see the
    module docstring).  ``keywords`` and ``others`` are ``(audio, label)`` pairs; a word is a
    keyword with probability ``keyword_share`` (always, when there are no ``others``); the
    clips are used in shuffled rounds, so every clip appears before any repeats."""
    if not keywords:
        raise InputError("the DET stream needs keyword clips; the split has none")
    if not hours > 0:
        raise InputError(f"--hours must be > 0, got {hours}")
    rng = np.random.default_rng([STREAM_SEED, seed])
    n = int(round(hours * 3600 * SAMPLE_RATE))
    audio, seg_starts, seg_power = _background(noise, rng, n)
    pools = {"kw": list(keywords), "other": list(others)}
    orders: dict[str, list[int]] = {"kw": [], "other": []}
    events: list[tuple[float, float, str]] = []
    pos = int(rng.uniform(*GAP_SECONDS) * SAMPLE_RATE)
    while True:
        kind = "kw" if not others or rng.random() < keyword_share else "other"
        if not orders[kind]:
            orders[kind] = list(rng.permutation(len(pools[kind])))
        x, label = pools[kind][orders[kind].pop()]
        if pos + len(x) > n:
            break
        # The level of the background segment, not the power right under the word: ambient
        # recordings have near-silent stretches, where a local SNR would make a word inaudible.
        p_noise = float(seg_power[np.searchsorted(seg_starts, pos, side="right") - 1])
        p_word = mixtures.speech_power(np.asarray(x, np.float64))
        if p_word > 0:
            gain = math.sqrt(p_noise * 10 ** (rng.uniform(*snr_db) / 10) / p_word)
            audio[pos:pos + len(x)] += (gain * np.asarray(x, np.float64)).astype(np.float32)
            events.append((pos / SAMPLE_RATE, (pos + len(x)) / SAMPLE_RATE, label))
        pos += len(x) + int(rng.uniform(*GAP_SECONDS) * SAMPLE_RATE)
    np.clip(audio, -1.0, 1.0, out=audio)
    return Stream(audio, events, {"hours": round(n / SAMPLE_RATE / 3600, 6), "seed": seed,
                                  "snr_db": list(snr_db), "words": len(events),
                                  "keyword_clips": len(keywords), "other_clips": len(others),
                                  "noise": "recordings" if noise is not None else "generated"})


def stream_features(audio: np.ndarray, cfg: FeatureConfig, chunk_seconds: float = 30.0) -> np.ndarray:
    """:func:`~tfdenoise.kws.features.features` of a long signal, computed in chunks
    (:class:`StreamingFeatures`: the same frames, bounded memory)."""
    sf = StreamingFeatures(cfg)
    step = int(chunk_seconds * SAMPLE_RATE)
    parts = [sf.push(audio[i:i + step]) for i in range(0, len(audio), step)]
    return np.concatenate(parts) if parts else np.zeros((0, cfg.n_features), np.float32)


def stream_probs(model: KwsClassifier, audio: np.ndarray, batch: int = 2048) -> np.ndarray:
    """Posteriors ``[decisions, classes]`` of ``model`` over ``audio``: decision ``i`` is the
    window of frames ``i .. i + window_frames - 1``."""
    return model.offline_probs(stream_features(audio, model.features), batch=batch)

