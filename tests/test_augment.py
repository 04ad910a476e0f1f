"""Training-mixture augmentation (tfdenoise/augment.py, tfdenoise/rir.py): simulated room
impulse responses, dry / early targets, level and tilt invariants, the options' checks and
their record in a run's config.json and history."""
from __future__ import annotations

import json
import time
from dataclasses import replace

import numpy as np
import pytest

from tfdenoise import augment, mixtures, rir
from tfdenoise.augment import Augment, Augmenter
from tfdenoise.errors import InputError

SR = 16000


def _corpora(corpus_dirs):
    return (mixtures.load_corpus(corpus_dirs[0], progress=False),
            mixtures.load_corpus(corpus_dirs[1], progress=False))


def test_rir_direct_path_first_and_seeded():
    room = rir.draw_room(np.random.default_rng(3), (0.3, 0.8))
    h = rir.simulate(room, np.random.default_rng(4))
    distance = np.linalg.norm(np.subtract(room.source, room.mic))
    d = rir.direct_index(h)
    assert d == round(distance / rir.SPEED_OF_SOUND * SR) and np.all(h[:d] == 0)
    assert abs(h[d]) == np.max(np.abs(h)) and h[d] == pytest.approx(1 / (4 * np.pi * distance), rel=1e-5)
    assert len(h) == int(np.ceil((distance / rir.SPEED_OF_SOUND + room.rt60) * SR)) + 1  # to the direct path + RT60
    again = rir.simulate(rir.draw_room(np.random.default_rng(3), (0.3, 0.8)), np.random.default_rng(4))
    np.testing.assert_array_equal(h, again)
    other = rir.simulate(room, np.random.default_rng(5))  # same room, another diffuse tail
    assert not np.array_equal(h, other) and np.array_equal(h[:d + 200], other[:d + 200])


@pytest.mark.parametrize("seed", range(6))
def test_rir_energy_decay_matches_the_drawn_rt60(seed):
    """Schroeder decay (T20) of the simulated response within 10 % of the RT60 drawn."""
    room, (h,) = rir.random_rirs(np.random.default_rng(seed), (0.3, 1.0))
    assert rir.estimate_rt60(h) == pytest.approx(room.rt60, rel=0.10)
    assert 0 < room.alpha <= rir.MAX_ALPHA and room.alpha == pytest.approx(rir.absorption(room.size, room.rt60))


def test_rir_estimate_of_a_known_exponential():
    t = np.arange(int(0.8 * SR)) / SR
    h = np.random.default_rng(0).standard_normal(len(t)) * 10 ** (-3 * t / 0.5)
    assert rir.estimate_rt60(h) == pytest.approx(0.5, rel=0.03)


def test_rir_is_fast():
    rng = np.random.default_rng(0)
    rir.random_rirs(rng, (0.2, 1.0))
    t0 = time.perf_counter()
    for _ in range(20):
        rir.random_rirs(rng, (0.2, 1.0), sources=2)
    assert (time.perf_counter() - t0) / 40 < 0.02  # about 0.5 ms each when the machine is idle


def test_dry_and_early_targets():
    """An impulse of 'speech': the dry target is the impulse, the early one the first 50 ms of
    the aligned response, the reverberant speech the whole response."""
    _, rirs = rir.random_rirs(np.random.default_rng(1), (0.6, 0.6), sources=2)
    speech = np.zeros(SR, np.float32)
    speech[0] = 1.0
    noise = np.random.default_rng(2).standard_normal(SR).astype(np.float32)
    h = augment.aligned(rirs[0])
    assert h[0] == 1.0
    wet, wet_noise, dry = augment.reverberate(speech, noise, rirs, "dry")
    _, _, early = augment.reverberate(speech, noise, rirs, "early")
    np.testing.assert_array_equal(dry, speech)
    n_early = int(augment.EARLY_SECONDS * SR) + 1
    np.testing.assert_allclose(early[:n_early], h[:n_early], atol=1e-6)
    assert np.all(np.abs(early[n_early:]) < 1e-6)
    np.testing.assert_allclose(wet[:len(h)], h[:SR], atol=1e-6)
    assert np.sum(dry ** 2) < np.sum(early ** 2) < np.sum(wet ** 2)
    assert wet_noise.shape == noise.shape and not np.allclose(wet_noise, noise)


def test_augmentation_off_keeps_the_mixture_stream(corpus_dirs):
    speech, noise = _corpora(corpus_dirs)
    plain = list(mixtures.mixtures(speech, noise, 4, 0.5, seed=9))
    off = list(mixtures.mixtures(speech, noise, 4, 0.5, seed=9, mixing=mixtures.Mixing(augment=Augment())))
    for (a, b), (c, d) in zip(plain, off):
        np.testing.assert_array_equal(a, c)
        np.testing.assert_array_equal(b, d)


def _scale(x: np.ndarray, ref: np.ndarray) -> float:
    """The c of x = c * ref (asserted)."""
    c = float(np.dot(x, ref) / np.dot(ref, ref))
    np.testing.assert_allclose(x, c * ref, atol=1e-6 * max(1.0, float(np.max(np.abs(x)))))
    return c


def test_reverberant_mixture_keeps_the_dry_speech_as_target(corpus_dirs):
    """Reverb on every mixture, dry target: the same speech as without augmentation (the other
    draws are unchanged), at the SNR asked for on the reverberant speech; the mixture is not
    the clean target plus the plain noise any more."""
    speech, noise = _corpora(corpus_dirs)
    mixing = mixtures.Mixing(snr_db=(5.0, 5.0))
    plain = list(mixtures.mixtures(speech, noise, 3, 0.5, seed=4, mixing=mixing))
    wet = list(mixtures.mixtures(speech, noise, 3, 0.5, seed=4,
                                 mixing=replace(mixing, augment=Augment(reverb=1.0, rt60=(0.4, 0.8)))))
    for (noisy_p, clean_p), (noisy_r, clean_r) in zip(plain, wet):
        _scale(clean_r, clean_p)
        assert not np.allclose(noisy_r / np.max(np.abs(noisy_r)), noisy_p / np.max(np.abs(noisy_p)), atol=1e-3)
        assert np.max(np.abs(noisy_r)) <= 10 ** (-1 / 20) + 1e-6


def test_tilt_filters_mixture_and_target_alike():
    """Response: -T/2 dB at 0 Hz, +T/2 dB at 8 kHz, 0 dB at 4 kHz; applied to noisy and clean
    with the same drawn T, so noisy - clean (the noise) went through the same filter."""
    from scipy.signal import freqz

    b, a = augment.tilt_filter(10.0)
    _, resp = freqz(b, a, worN=[0.0, np.pi / 2, np.pi])
    np.testing.assert_allclose(20 * np.log10(np.abs(resp)), [-5.0, 0.0, 5.0], atol=1e-9)
    rng = np.random.default_rng(0)
    clean, noise = rng.standard_normal(SR).astype(np.float32), rng.standard_normal(SR).astype(np.float32)
    aug = Augmenter(Augment(tilt_db=(-6.0, 6.0)), seed=11)
    t = np.random.default_rng([11, augment._STREAM]).uniform(-6.0, 6.0)  # the augmenter's first draw
    noisy_t, clean_t = aug.tilt(clean + noise, clean)
    np.testing.assert_allclose(clean_t, augment.apply_tilt(clean, t), atol=1e-6)
    np.testing.assert_allclose(noisy_t - clean_t, augment.apply_tilt(noise, t), atol=1e-5)
    spectrum = np.abs(np.fft.rfft(noisy_t)) ** 2 / np.abs(np.fft.rfft(clean + noise)) ** 2
    low, high = np.mean(spectrum[:200]), np.mean(spectrum[-200:])  # below 200 Hz, above 7.8 kHz
    assert 10 * np.log10(high / low) == pytest.approx(t, abs=0.5)


def test_level_scales_mixture_and_target_alike_without_clipping(corpus_dirs):
    speech, noise = _corpora(corpus_dirs)
    plain = list(mixtures.mixtures(speech, noise, 8, 0.5, seed=2))
    level = list(mixtures.mixtures(speech, noise, 8, 0.5, seed=2,
                                   mixing=mixtures.Mixing(augment=Augment(level_db=(-20.0, 20.0)))))
    ceiling = 10 ** (augment.PEAK_CEILING_DBFS / 20)
    gains = []
    for (noisy_p, clean_p), (noisy_l, clean_l) in zip(plain, level):
        gain = _scale(noisy_l, noisy_p)
        assert _scale(clean_l, clean_p) == pytest.approx(gain, rel=1e-5)
        assert 10 ** (-20 / 20) * 0.999 <= gain <= 10 ** (20 / 20) * 1.001
        peak = max(np.max(np.abs(noisy_l)), np.max(np.abs(clean_l)))
        assert peak <= ceiling * (1 + 1e-6) or gain == pytest.approx(1.0)
        gains.append((gain, peak))
    assert any(g > 1.001 for g, _ in gains) and any(g < 0.999 for g, _ in gains)
    assert any(p == pytest.approx(ceiling, rel=1e-5) for g, p in gains if g > 1)  # some were capped
    assert augment.limited_gain(np.array([0.5]), np.array([0.1]), 20.0) == pytest.approx(ceiling / 0.5)
    assert augment.limited_gain(np.array([0.95]), np.array([0.1]), 6.0) == 1.0  # above the ceiling: kept
    assert augment.limited_gain(np.array([0.95]), np.array([0.1]), -6.0) == pytest.approx(10 ** (-6 / 20))


@pytest.mark.parametrize("kwargs, option", [
    ({"reverb": 1.5}, "--reverb"), ({"reverb": -0.1}, "--reverb"), ({"reverb": float("nan")}, "--reverb"),
    ({"rt60": (1.0, 0.5)}, "--rt60"), ({"rt60": (0.05, 1.0)}, "--rt60"), ({"rt60": (0.2, 3.0)}, "--rt60"),
    ({"reverb_target": "wet"}, "--reverb-target"), ({"level_db": (10.0, 0.0)}, "--level-db"),
    ({"level_db": (-100.0, 0.0)}, "--level-db"), ({"tilt_db": (-30.0, 0.0)}, "--tilt-db"),
    ({"tilt_db": (0.0, float("inf"))}, "--tilt-db")])
def test_bad_augmentation_is_a_one_line_error(kwargs, option):
    with pytest.raises(InputError) as exc:
        Augment(**kwargs)
    assert str(exc.value).startswith(option) and "\n" not in str(exc.value)


BAD_CLI = [(["--reverb", "2"], "--reverb"), (["--rt60", "0.8", "0.2"], "--rt60"),
           (["--rt60", "0.01", "0.5"], "--rt60"), (["--level-db", "-100", "0"], "--level-db"),
           (["--tilt-db", "3", "-3"], "--tilt-db"), (["--ema", "1"], "--ema"), (["--ema", "-0.5"], "--ema"),
           (["--ema", "nan"], "--ema"), (["--reverb-target", "wet"], "--reverb-target")]


@pytest.mark.parametrize("extra, option", BAD_CLI, ids=[" ".join(a) for a, _ in BAD_CLI])
def test_bad_options_fail_before_any_data_is_read(cli, corpus_dirs, tmp_path, monkeypatch, extra, option):
    monkeypatch.setattr(mixtures, "load_corpus", lambda *a, **k: pytest.fail("training data was read"))
    out = tmp_path / "run"
    code, stdout, err = cli("train", "--variant", "gru128", "--speech", corpus_dirs[0], "--noise", corpus_dirs[1],
                            "--out", out, "--cache", "", "--quiet", *extra)
    assert code == 2 and stdout == "" and err.count("\n") == 1 and option in err, err
    assert not out.exists()


def test_old_run_config_without_the_new_keys_reads_back(corpus_dirs, tmp_path):
    from tfdenoise.train_config import TrainConfig, read_run_config

    old = {"variant": "gru128", "speech": str(corpus_dirs[0]), "noise": str(corpus_dirs[1]), "out": str(tmp_path),
           "epochs": 3, "snr_db": [0, 15], "compressed_loss": 3.0}
    (tmp_path / "config.json").write_text(json.dumps(old))
    cfg = read_run_config(tmp_path)
    assert cfg == TrainConfig(**{**old, "snr_db": (0, 15)})
    assert cfg.reverb == 0 and cfg.ema == 0 and not cfg.augmentation.active
    assert cfg.train_mixing == cfg.mixing


def test_heldout_scores_on_reverberant_mixtures(corpus_dirs, tmp_path, checkpoint):
    """tools/heldout_scores.py --reverb: the same held-out mixtures, reverberant, score otherwise;
    without it the scores are the selection set's kind (never augmented, even for a run that was)."""
    from tfdenoise.selection import heldout_scores
    from tfdenoise.train_config import TrainConfig

    cfg = TrainConfig(variant="gru128", speech=str(corpus_dirs[0]), noise=str(corpus_dirs[1]), out=str(tmp_path),
                      valid_fraction=0.5, cache_dir="", reverb=1.0)
    dry = heldout_scores(cfg, [checkpoint], 2, seed=5)
    assert dry == heldout_scores(replace(cfg, reverb=0.0), [checkpoint], 2, seed=5)
    wet = heldout_scores(cfg, [checkpoint], 2, seed=5, augment=Augment(reverb=1.0, rt60=(0.8, 1.0)))
    assert wet[0]["stoi"] != pytest.approx(dry[0]["stoi"], abs=1e-3)


def test_model_card_names_the_augmentation_per_phase():
    """tools/ship_model.py: a phase with augmentation / --ema says so, rows without keep the old text."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tools"))
    import ship_model

    tr = {"segments_per_epoch": 64, "segment_seconds": 1.0, "snr_db": [0, 15], "learning_rate": 1e-4}
    plain = {"segments": 64, "segment_s": 1.0, "snr_db": [0, 15], "snr_level": "active", "lr": 1e-4}
    rows = [plain, {**plain, **Augment(reverb=0.3, level_db=(-6.0, 0.0)).record(), "ema": 0.99}]
    text = ship_model._phases(rows, tr)
    assert text.startswith("1 of 64 x 1 s segments at 0-15 dB SNR (active speech level), learning rate 0.0001, then 1 of")
    assert text.endswith("augmented: 30% reverberant (simulated rooms, RT60 0.2-1 s, dry target), gain -6..0 dB, "
                         "moving average of the weights (EMA 0.99) scored and saved")
    # A phase with another log-magnitude loss weight is a phase of its own; 0.5 (or none recorded) says nothing.
    text = ship_model._phases([plain, {**plain, "mag_loss": 0.5}, {**plain, "mag_loss": 0.0}], tr)
    assert text.count(" then ") == 1 and text.endswith("learning rate 0.0001, log-magnitude loss weight 0 (reference 0.5)")
