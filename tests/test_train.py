"""Training: one tiny epoch end to end, resume after an interruption, data hold-out."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from tfdenoise import mixtures
from tfdenoise.errors import InputError, ModelError
from tfdenoise.train import (VALID_PESQ_SEED, TrainConfig, heldout_scores, learning_rate_at,
                             selection_score_name, train)
from tfdenoise.train_config import read_run_config


def _config(corpus_dirs, out: Path, epochs: int) -> TrainConfig:
    speech, noise = corpus_dirs
    return TrainConfig(variant="gru128", speech=str(speech), noise=str(noise), out=str(out),
                       epochs=epochs, batch=2, segment_seconds=0.5, segments_per_epoch=4,
                       valid_fraction=0.5, valid_segments=2, cache_dir="")


@pytest.mark.parametrize("level", mixtures.SNR_LEVELS)
def test_mixtures_are_reproducible_and_at_requested_snr(corpus_dirs, level):
    speech = mixtures.load_corpus(corpus_dirs[0], progress=False)
    noise = mixtures.load_corpus(corpus_dirs[1], progress=False)
    a = list(mixtures.mixtures(speech, noise, 3, 0.5, seed=7, mixing=mixtures.Mixing((5.0, 5.0), level)))
    b = list(mixtures.mixtures(speech, noise, 3, 0.5, seed=7, mixing=mixtures.Mixing((5.0, 5.0), level)))
    for (na, ca), (nb, cb) in zip(a, b):
        np.testing.assert_array_equal(na, nb)
        snr = 10 * np.log10(mixtures.speech_power(ca, level) / np.mean((na - ca) ** 2))
        assert snr == pytest.approx(5.0, abs=0.01)


def test_active_speech_level_ignores_pauses():
    """Half a second of tone then half a second of near-silence: the mean power halves,
    the active level does not, so an "active" 5 dB mixture carries 3 dB more noise."""
    t = np.arange(8000) / 16000
    tone = np.sin(2 * np.pi * 440 * t)
    speech = np.concatenate([tone, 1e-4 * tone])
    assert mixtures.speech_power(speech, "active") == pytest.approx(0.5, rel=1e-3)
    assert mixtures.speech_power(speech, "mean") == pytest.approx(0.25, rel=1e-3)
    noise = np.random.default_rng(0).standard_normal(16000)
    extra = [np.mean((mixtures.mix(speech, noise, 5.0, lv) - speech) ** 2) for lv in ("active", "mean")]
    assert 10 * np.log10(extra[0] / extra[1]) == pytest.approx(3.01, abs=0.02)
    with pytest.raises(ValueError):
        mixtures.speech_power(speech, "peak")


def test_noise_exclusion_by_glob(corpus_dirs):
    noise = mixtures.load_corpus(corpus_dirs[1], progress=False)
    assert mixtures.exclude(noise, ["hiss_0*"], corpus_dirs[1]).names == ("hiss_1.wav",)
    with pytest.raises(InputError, match="every clip matches"):
        mixtures.exclude(noise, ["x*", "hiss_*"], corpus_dirs[1])


def test_noisy_clean_speech_is_left_out_of_training():
    """Speech with clean pauses scores its full range; the same speech over a -30 dB hiss
    floor scores about 30 dB and is dropped at --min-clean-snr 35."""
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    speech = 0.3 * np.sin(2 * np.pi * 200 * t) * (np.sin(2 * np.pi * 2 * t) > 0)
    clips = [speech + 1e-5 * rng.standard_normal(16000),  # studio: floor ~ -100 dBFS
             speech + 0.3 / np.sqrt(2) * 10 ** (-30 / 20) * rng.standard_normal(16000)]
    data = np.round(np.concatenate(clips) * 32767).astype(np.int16)
    corpus = mixtures.Corpus(data, np.array([0, 16000]), np.array([16000, 32000]), ("studio.wav", "room.wav"))
    snr = mixtures.clean_snr_db(corpus)
    assert snr[0] > 60 and snr[1] == pytest.approx(30, abs=2)
    assert mixtures.drop_noisy_speech(corpus, 35, "speech").names == ("studio.wav",)
    with pytest.raises(InputError, match="estimated SNR of 90 dB"):
        mixtures.drop_noisy_speech(corpus, 90, "speech")


def test_synthetic_noise_is_made_from_speech(corpus_dirs):
    """Babble sums several talkers at equal level; speech-shaped noise is stationary with the
    talkers' spectrum (the test 'speech' is tones below 250 Hz, the recorded noise white)."""
    speech = mixtures.load_corpus(corpus_dirs[0], progress=False)
    noise = mixtures.load_corpus(corpus_dirs[1], progress=False)
    rng = np.random.default_rng(3)
    for make in (mixtures.babble, mixtures.speech_shaped_noise):
        x = make(speech, rng, 16000)
        spectrum = np.abs(np.fft.rfft(x)) ** 2
        assert x.shape == (16000,) and spectrum[:250].sum() > 0.99 * spectrum.sum()  # 1 Hz bins
    ssn = mixtures.speech_shaped_noise(speech, rng, 16000)
    frames = np.mean(ssn.reshape(10, 1600) ** 2, axis=1)  # 100 ms
    assert frames.max() / frames.min() < 2  # stationary: the gated tones are not
    low_share = lambda n, c: np.mean([np.sum(np.abs(np.fft.rfft(x - y))[:250] ** 2) / np.sum(np.abs(np.fft.rfft(x - y)) ** 2)  # noqa: E731
                                      for x, y in zip(n, c)])
    pairs = {s: list(mixtures.mixtures(speech, noise, 6, 1.0, seed=1, mixing=mixtures.Mixing(synthetic=s))) for s in (0.0, 1.0)}
    assert low_share(*zip(*pairs[0.0])) < 0.1 < 0.99 < low_share(*zip(*pairs[1.0]))
    for bad, match in (({"synthetic": 1.5}, "share"), ({"snr_level": "peak"}, "SNR level"),
                       ({"snr_db": (10.0, 0.0)}, "LO <= HI")):
        with pytest.raises(InputError, match=match):
            mixtures.Mixing(**bad)


def test_selection_score_names_its_validation_mixtures(corpus_dirs, tmp_path):
    cfg = _config(corpus_dirs, tmp_path, epochs=1)
    assert selection_score_name(cfg) == "val_loss"
    cfg = TrainConfig(**{**cfg.__dict__, "valid_pesq": 4, "noise_exclude": ("voice/*",)})
    assert selection_score_name(cfg) == "-val_mix_pesq@active -voice/*"
    assert selection_score_name(TrainConfig(**{**cfg.__dict__, "snr_level": "mean", "noise_exclude": ()})) == "-val_mix_pesq"
    assert selection_score_name(TrainConfig(**{**cfg.__dict__, "synthetic_noise": 0.2})) == "-val_mix_pesq@active -voice/* +synthetic0.2"
    assert selection_score_name(TrainConfig(**{**cfg.__dict__, "min_clean_snr": 30.0})).endswith(" clean>=30dB")


def test_speaker_hold_out_keeps_speakers_apart(corpus_dirs):
    speech = mixtures.load_corpus(corpus_dirs[0], progress=False)
    tr, va = mixtures.split_speakers(speech, 0.5)
    keys = lambda c: {mixtures.speaker_key(Path(n)) for n in c.names}  # noqa: E731
    assert tr.names and va.names and not keys(tr) & keys(va)


def test_batches_are_full_and_match_the_mixture_stream(corpus_dirs):
    speech = mixtures.load_corpus(corpus_dirs[0], progress=False)
    noise = mixtures.load_corpus(corpus_dirs[1], progress=False)
    got = list(mixtures.batches(speech, noise, count=7, seconds=0.25, batch=3, seed=5))
    ref = list(mixtures.mixtures(speech, noise, 6, 0.25, 5))
    assert [b[0].shape for b in got] == [(3, 4000), (3, 4000)]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in got]), np.stack([r[0] for r in ref]))
    np.testing.assert_array_equal(np.concatenate([b[1] for b in got]), np.stack([r[1] for r in ref]))


def test_learning_rate_decays_log_linearly_from_first_to_last_epoch(corpus_dirs, tmp_path):
    cfg = TrainConfig(**{**_config(corpus_dirs, tmp_path, epochs=5).__dict__,
                         "learning_rate": 1e-3, "final_learning_rate": 1e-5})
    rates = [learning_rate_at(cfg, e) for e in range(5)]
    np.testing.assert_allclose(rates, [1e-3, 10 ** -3.5, 1e-4, 10 ** -4.5, 1e-5], rtol=1e-9)
    constant = TrainConfig(**{**cfg.__dict__, "final_learning_rate": None})
    assert {learning_rate_at(constant, e) for e in range(5)} == {1e-3}


def test_one_epoch_then_resume(corpus_dirs, tmp_path, capsys):
    out = tmp_path / "run"
    best = train(_config(corpus_dirs, out, epochs=1), verbose=0)
    assert (best / "weights.h5").is_file()
    assert json.loads((out / "last" / "config.json").read_text())["epoch"] == 1
    with pytest.raises(InputError, match="--resume"):
        train(_config(corpus_dirs, out, epochs=2), verbose=0)
    # Simulate an interruption mid-epoch: a half-written temporary folder is left behind.
    # The resumed phase adds the compressed spectral loss and drops the log-magnitude one
    # (a run may change its loss).
    (out / ".last.crashed").mkdir()
    with pytest.raises(InputError, match="compressed loss weight"):
        train(replace(_config(corpus_dirs, out, epochs=2), compressed_loss=-1.0), resume=True, verbose=0)
    train(replace(_config(corpus_dirs, out, epochs=2), compressed_loss=1.0, mag_loss=0.0), resume=True, verbose=1)
    printed = capsys.readouterr().out
    assert "resuming" in printed and "epoch 2/2" in printed and "val_loss=" in printed
    state = json.loads((out / "last" / "config.json").read_text())
    history = json.loads((out / "history.json").read_text())
    assert state["epoch"] == 2 and [h["epoch"] for h in history] == [1, 2]
    assert np.isfinite(history[-1]["loss"])
    assert history[0]["comp"] == 0.0 and history[-1]["comp"] > 0
    assert [h["mag_loss"] for h in history] == [0.5, 0.0]
    last = history[-1]  # the total is the weighted sum of the parts it logs
    assert last["loss"] == pytest.approx(last["l1"] + 0.5 * last["sc"] + last["comp"], rel=1e-4)
    assert (out / "last" / "optimizer").is_dir()
    assert history[-1]["lr"] == pytest.approx(3e-4)
    cfg = _config(corpus_dirs, out, epochs=2)
    assert history[-1]["segment_s"] == cfg.segment_seconds and history[-1]["snr_db"] == list(cfg.snr_db)
    assert history[-1]["snr_level"] == cfg.snr_level


def test_pesq_selection_on_held_out_mixtures(corpus_dirs, tmp_path):
    out = tmp_path / "run"
    cfg = TrainConfig(**{**_config(corpus_dirs, out, epochs=1).__dict__, "valid_pesq": 2})
    train(cfg, verbose=0)
    row = json.loads((out / "history.json").read_text())[-1]
    state = json.loads((out / "best" / "config.json").read_text())
    assert 1.0 <= row["val_mix_pesq"] <= 4.7 and 0.0 <= row["val_mix_stoi"] <= 1.0
    assert state["score_name"] == "-val_mix_pesq@active" and state["best_score"] == -row["val_mix_pesq"]
    # A second opinion rebuilds the run's mixtures from its config.json: with the run's own seed it
    # is the selection score again, also for the mean of a checkpoint's weights with itself.
    assert read_run_config(out) == cfg
    again = heldout_scores(read_run_config(out), [out / "best", out / "best"], 2, seed=VALID_PESQ_SEED + cfg.seed)
    mean = heldout_scores(cfg, [out / "best", out / "last"], 2, seed=VALID_PESQ_SEED + cfg.seed, average=True)
    assert again[0] == again[1] == mean[0] and again[0]["pesq"] == pytest.approx(row["val_mix_pesq"])
    # A validation set mixed differently is a different score: the resumed run's best restarts.
    train(TrainConfig(**{**cfg.__dict__, "epochs": 2, "snr_level": "mean"}), resume=True, verbose=0)
    row = json.loads((out / "history.json").read_text())[-1]
    state = json.loads((out / "best" / "config.json").read_text())
    assert row["snr_level"] == "mean" and state["epoch"] == 2
    assert state["score_name"] == "-val_mix_pesq" and state["best_score"] == -row["val_mix_pesq"]


def test_resume_without_run_is_a_clear_error(corpus_dirs, tmp_path):
    with pytest.raises(ModelError, match="nothing to resume"):
        train(_config(corpus_dirs, tmp_path / "none", epochs=1), resume=True, verbose=0)
