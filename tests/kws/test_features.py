"""KWS features: filterbank and DCT, frame count, streaming == offline, TensorFlow == numpy."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import synth_speech

from tfdenoise.errors import InputError
from tfdenoise.kws import features as F
from tfdenoise.kws.features import (CNN_FEATURES, DNN_FEATURES, DSCNN_FEATURES, NAMED_FEATURES,
                                    FeatureConfig, FeatureKind, StreamingFeatures)

ROOT = Path(__file__).resolve().parents[2]
FSDD = ROOT.parent / "shared" / "data" / "kws" / "fsdd"
NAMED = pytest.mark.parametrize("name", sorted(NAMED_FEATURES))


@pytest.fixture(scope="module")
def real_clips() -> list[np.ndarray]:
    """25 real FSDD clips: every 120th of the sorted list (all digits, all speakers)."""
    if not FSDD.is_dir():
        pytest.skip(f"real FSDD clips not found at {FSDD} (the shared data folder, ../shared from the project root)")
    from tfdenoise.kws import data

    return data.load_clips(data.list_clips(FSDD)[::120])


def test_named_configs():
    assert CNN_FEATURES.input_shape == (30, 40) and CNN_FEATURES.kind is FeatureKind.LOGMEL
    assert (CNN_FEATURES.n_fft, CNN_FEATURES.hop, CNN_FEATURES.frame) == (1024, 512, 1024)
    assert DSCNN_FEATURES.input_shape == (49, 10) and DSCNN_FEATURES.kind is FeatureKind.MFCC
    assert (DSCNN_FEATURES.frame, DSCNN_FEATURES.hop, DSCNN_FEATURES.n_mels) == (640, 320, 40)
    assert DSCNN_FEATURES.window_samples == 16000
    assert DNN_FEATURES.input_shape == (49, 40)
    for cfg in NAMED_FEATURES.values():
        assert 0.95 <= cfg.window_seconds <= 1.0
        assert cfg.num_frames(cfg.window_samples) == cfg.window_frames
        assert F.features(np.zeros(cfg.window_samples), cfg).shape == cfg.input_shape


@NAMED
def test_filterbank_has_no_empty_band(name):
    cfg = NAMED_FEATURES[name]
    fb = F.mel_filterbank(cfg)
    assert fb.shape == (cfg.n_fft // 2 + 1, cfg.n_mels)
    assert np.all(fb[0] == 0) and fb.max() <= 1.0 and np.all(fb.sum(axis=0) > 0.5)
    centres = np.argmax(fb, axis=0)
    assert np.all(np.diff(centres) >= 0)  # bands go up in frequency


def test_a_tone_lands_in_its_band():
    cfg = FeatureConfig(f_max=8000.0)
    t = np.arange(16000) / 16000
    for hz in (300.0, 1000.0, 3000.0):
        band = int(np.argmax(F.logmel(0.3 * np.sin(2 * np.pi * hz * t), cfg).mean(axis=0)))
        lo, hi = F.mel_to_hz(np.linspace(F.hz_to_mel(20.0), F.hz_to_mel(8000.0), 42)[[band, band + 2]])
        assert lo < hz < hi


def test_dct_is_orthonormal_and_mfcc_is_dct_of_logmel():
    d = F.dct_matrix(40, 40)
    np.testing.assert_allclose(d.T @ d, np.eye(40), atol=1e-12)
    import scipy.fft

    x = synth_speech(0.5)
    lm = F.logmel(x, DSCNN_FEATURES).astype(np.float64)
    np.testing.assert_allclose(F.mfcc(x, DSCNN_FEATURES),
                               scipy.fft.dct(lm, type=2, norm="ortho")[:, :10], rtol=1e-5, atol=1e-4)
    np.testing.assert_array_equal(F.features(x, DSCNN_FEATURES), F.mfcc(x, DSCNN_FEATURES))
    np.testing.assert_array_equal(F.features(x, CNN_FEATURES), F.logmel(x, CNN_FEATURES))


def test_frame_count():
    cfg = DNN_FEATURES
    for n, t in ((0, 0), (399, 0), (400, 1), (719, 1), (720, 2), (16000, 49)):
        assert F.features(np.ones(n) * 0.1, cfg).shape == (t, 40)
        assert cfg.num_frames(n) == t
    silent = F.features(np.zeros(800), cfg)
    np.testing.assert_allclose(silent, np.log(1e-6), rtol=1e-6)


def test_bad_config_and_input_are_one_line():
    with pytest.raises(InputError) as exc:
        FeatureConfig(frame=2048, n_fft=1024)
    assert "\n" not in str(exc.value) and "frame 2048" in str(exc.value)
    with pytest.raises(InputError):
        FeatureConfig(kind="mfcc", n_mfcc=50, n_mels=40)
    with pytest.raises(InputError):
        FeatureConfig(f_max=9000.0)
    assert FeatureConfig(kind="mfcc").kind is FeatureKind.MFCC
    with pytest.raises(InputError) as exc:
        F.features(np.zeros((2, 1000)), CNN_FEATURES)
    assert "\n" not in str(exc.value)


def stream(x: np.ndarray, cfg: FeatureConfig, rng: np.random.Generator) -> np.ndarray:
    """Push ``x`` in random chunks (1 sample, a few samples, about a hop, several hops)."""
    s, out, pos = StreamingFeatures(cfg), [], 0
    sizes = (1, 7, cfg.hop - 1, cfg.hop, cfg.hop + 1, 3 * cfg.hop + 17, cfg.frame + 5)
    while pos < len(x):
        n = int(rng.choice(sizes)) if rng.random() < 0.8 else int(rng.integers(0, 2 * cfg.frame))
        got = s.push(x[pos:pos + n])
        assert got.shape[1:] == (cfg.n_features,) and got.dtype == np.float32
        out.append(got)
        pos += n
    assert s.frames_out == cfg.num_frames(len(x))
    assert s.pending < cfg.frame
    return np.concatenate(out)


@NAMED
def test_streaming_equals_offline_synthetic(name):
    cfg = NAMED_FEATURES[name]
    x = synth_speech(1.3, seed=2) + 0.01 * np.random.default_rng(0).standard_normal(20800).astype(np.float32)
    np.testing.assert_allclose(stream(x, cfg, np.random.default_rng(1)), F.features(x, cfg), rtol=0, atol=1e-5)


@NAMED
def test_streaming_equals_offline_on_real_clips(name, real_clips):
    """One stream of 25 real FSDD clips back to back."""
    cfg = NAMED_FEATURES[name]
    x = np.concatenate(real_clips)
    offline = F.features(x, cfg)
    assert offline.shape == (cfg.num_frames(len(x)), cfg.n_features)
    np.testing.assert_allclose(stream(x, cfg, np.random.default_rng(3)), offline, rtol=0, atol=1e-5)


def test_streaming_with_gaps_between_frames_and_reset():
    cfg = FeatureConfig(frame=256, hop=400, n_fft=256, window_frames=5)  # hop > frame
    x = synth_speech(0.7, seed=5)
    np.testing.assert_allclose(stream(x, cfg, np.random.default_rng(4)), F.features(x, cfg), atol=1e-5)
    s = StreamingFeatures(cfg)
    first = s.push(x)
    s.reset()
    np.testing.assert_array_equal(s.push(x), first)
    assert s.push(np.zeros(0)).shape == (0, 40)


def test_tf_equals_numpy_on_real_clips(real_clips):
    """TensorFlow features of a batch of 1-s windows of real clips match numpy within 1e-4
    (relative; absolute 1e-4 for values under 1), and so does the filterbank tf.signal builds."""
    from tfdenoise.keras import tf
    from tfdenoise.kws.data import place

    for cfg in NAMED_FEATURES.values():
        ref = tf.signal.linear_to_mel_weight_matrix(cfg.n_mels, cfg.n_fft // 2 + 1, cfg.sample_rate,
                                                    cfg.f_min, cfg.f_max, dtype=tf.float64).numpy()
        np.testing.assert_allclose(F.mel_filterbank(cfg), ref, atol=1e-10)
        batch = np.stack([place(x, cfg.window_samples) for x in real_clips])
        got = F.tf_features(batch, cfg).numpy()
        want = np.stack([F.features(x, cfg) for x in batch])
        assert got.shape == want.shape == (len(real_clips), *cfg.input_shape)
        assert np.max(np.abs(got - want) / np.maximum(np.abs(want), 1.0)) < 1e-4
        one = F.tf_features(tf.constant(real_clips[0]), cfg).numpy()  # 1-D in, [T, n] out
        np.testing.assert_allclose(one, F.features(real_clips[0], cfg), rtol=1e-4, atol=1e-4)
