"""What picks a training run's best checkpoint, on held-out data only (never the test pairs):
the held-out speakers / noise recordings (`split_corpora`), the PESQ selection mixtures
(`pesq_validation_set`: 4 s each at the Valentini test SNRs, seed VALID_PESQ_SEED + the run's),
their scores, the selection score's name, and `heldout_scores`, a second opinion on fresh
mixtures of the same kind (tools/heldout_scores.py).
"""
from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np

from tfdenoise import mixtures
from tfdenoise.augment import Augment
from tfdenoise.errors import InputError, ModelError
from tfdenoise.models import load_checkpoint
from tfdenoise.train_config import TrainConfig

VALID_PESQ_SECONDS = 4.0
VALID_PESQ_SNR_DB = (2.5, 7.5, 12.5, 17.5)  # the Valentini test set's SNRs (data/README.md)
VALID_PESQ_SEED = 2 * 10**6  # + the run's seed: the mixtures that pick best/ (heldout_scores takes others)


def pesq_validation_set(speech: mixtures.Corpus, noise: mixtures.Corpus, count: int,
                        seed: int, mixing: mixtures.Mixing = mixtures.Mixing()) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (noisy, clean) mixtures of held-out speakers and noise for PESQ selection.

    4 s each, cycling through the Valentini test SNRs (``mixing.snr_db`` is not used), so
    the selection metric looks like the test condition without ever touching the test pairs.
    """
    out = []
    for i, snr in zip(range(count), np.resize(VALID_PESQ_SNR_DB, count)):
        at_snr = replace(mixing, snr_db=(snr, snr))
        out.extend(mixtures.mixtures(speech, noise, 1, VALID_PESQ_SECONDS, seed + i, at_snr))
    return out


def _validation_scores(mask_fn, pairs: list[tuple[np.ndarray, np.ndarray]]) -> dict:
    """Mean PESQ/STOI on ``(noisy, clean)`` pairs of the gains ``mask_fn(magnitudes [T, 257])``
    (a denoiser's ``offline_mask``, or :func:`net_mask` of the network being trained)."""
    from tfdenoise import metrics
    from tfdenoise.stft import process_offline

    scores = [metrics.score(clean, process_offline(noisy, mask_fn)) for noisy, clean in pairs]
    return {k: float(np.mean([s[k] for s in scores])) for k in ("pesq", "stoi")}


def net_mask(net):
    """``magnitudes [T, 257] -> gains`` of a Keras gains model in inference mode (compiled once):
    how a hook's network (e.g. QAT's, with its quantizers) is scored during training."""
    from tfdenoise.keras import tf
    from tfdenoise.stft import N_BINS

    fn = tf.function(lambda m: net(m, training=False),
                     input_signature=[tf.TensorSpec((1, None, N_BINS), tf.float32)])
    return lambda mags: np.asarray(fn(mags[None].astype(np.float32)))[0]


def selection_score_name(config: TrainConfig) -> str:
    """Name of the selection score.  It says how the held-out mixtures were made, so a resumed
    run whose validation set changed (SNR level, noise exclusions, synthetic noise, clean-speech
    filter) starts its best score afresh."""
    if not config.valid_pesq:
        return "val_loss"
    return ("-val_mix_pesq" + ("@active" if config.snr_level == "active" else "")
            + "".join(f" -{p}" for p in config.noise_exclude)
            + (f" +synthetic{config.synthetic_noise:g}" if config.synthetic_noise else "")
            + (f" clean>={config.min_clean_snr:g}dB" if config.min_clean_snr > 0 else ""))


def _load_pairs(pairs_dir: str) -> list[tuple[np.ndarray, np.ndarray]]:
    from tfdenoise import data

    return [data.load_pair(p) for p in data.list_pairs(pairs_dir)]


def split_corpora(config: TrainConfig, verbose: int = 0) -> tuple[mixtures.Corpus, ...]:
    """Decode ``config``'s speech and noise and hold speakers / recordings out:
    ``(speech_train, speech_held_out, noise_train, noise_held_out)``, as the run sees them."""
    cache = Path(config.out) / "cache" if config.cache_dir is None else (config.cache_dir or None)

    speech = mixtures.load_corpus(config.speech, cache, progress=verbose > 0)
    noise = mixtures.load_corpus(config.noise, cache, progress=verbose > 0)
    if config.noise_exclude:
        noise = mixtures.exclude(noise, config.noise_exclude, config.noise)
    speech_tr, speech_va = mixtures.split_speakers(speech, config.valid_fraction)
    noise_tr, noise_va = mixtures.split_speakers(noise, config.valid_fraction)
    if config.min_clean_snr > 0:
        # Held-out speech too: PESQ against a reference with an audible floor marks down an
        # output that removed the floor, i.e. the selection would reward keeping noise.
        kept = [mixtures.drop_noisy_speech(s, config.min_clean_snr, config.speech) for s in (speech_tr, speech_va)]
        if verbose:
            for name, before, after in zip(("training", "held-out"), (speech_tr, speech_va), kept):
                print(f"--min-clean-snr {config.min_clean_snr:g}: {len(before.names) - len(after.names)} of"
                      f" {len(before.names)} {name} speech clips left out"
                      f" ({(before.seconds - after.seconds) / 60:.1f} min)")
        speech_tr, speech_va = kept
    for name, part in (("speech", speech_tr), ("speech", speech_va), ("noise", noise_tr), ("noise", noise_va)):
        if not part.names:
            raise InputError("too few clips to hold some out for validation "
                             f"(need at least 2 {name} clips)", getattr(config, name))
    return speech_tr, speech_va, noise_tr, noise_va


def heldout_scores(config: TrainConfig, checkpoints: Sequence[str | os.PathLike], count: int,
                   seed: int, average: bool = False, augment: Augment | None = None) -> list[dict]:
    """Mean PESQ/STOI of each checkpoint on ``count`` held-out mixtures made as ``config``'s
    run makes its selection set (:func:`pesq_validation_set`) but from ``seed``: a second
    opinion on a selection, never the test pairs.  ``average``: one score, of the checkpoints'
    weights averaged (same variant).  ``augment``: the held-out mixtures augmented so (e.g.
    reverberant; the selection set never is)."""
    mixing = config.mixing if augment is None else replace(config.mixing, augment=augment)
    models = [load_checkpoint(c) for c in checkpoints]
    if average:
        if len({m.variant.name for m in models}) > 1:
            raise ModelError("cannot average the weights of different variants", checkpoints[-1])
        weights = [m.sequence.get_weights() for m in models]
        models[0].sequence.set_weights([np.mean(w, axis=0) for w in zip(*weights)])
        models = models[:1]
    pairs = heldout_pairs(config, count, seed, mixing)
    return [_validation_scores(m.offline_mask, pairs) for m in models]


def heldout_pairs(config: TrainConfig, count: int, seed: int,
                  mixing: mixtures.Mixing | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (noisy, clean) held-out mixtures made as ``config``'s run makes its selection
    set, from ``seed`` (``mixing``: other mixing options than the run's)."""
    speech_va, noise_va = split_corpora(config)[1::2]
    return pesq_validation_set(speech_va, noise_va, count, seed=seed,
                               mixing=config.mixing if mixing is None else mixing)
