"""Audio I/O (tfdenoise.audio) and Valentini pair listing (tfdenoise.data)."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from conftest import synth_speech, write_wav
from tfdenoise import audio
from tfdenoise.data import Pair, list_pairs, load_pair
from tfdenoise.errors import AudioError, InputError


def test_read_write_round_trip(tmp_path):
    x = synth_speech(0.5)
    path = audio.write(tmp_path / "sub" / "a.wav", x)
    y = audio.read(path)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_allclose(y, x, atol=1 / 32768 + 1e-6)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["a.wav"]  # no temp files
    info = sf.info(str(path))
    assert info.samplerate == 16000 and info.subtype == "PCM_16"


def test_write_clips_and_read_flac(tmp_path):
    y = audio.read(audio.write(tmp_path / "c.wav", np.array([2.0, -2.0, 0.5], np.float32)))
    assert y.max() <= 1.0 and y.min() >= -1.0
    write_wav(tmp_path / "f.flac", synth_speech(0.2))
    assert audio.read(tmp_path / "f.flac").shape == (3200,)


@pytest.mark.parametrize("sr", [8000, 22050, 44100, 48000])
def test_other_sample_rates_are_resampled(tmp_path, sr):
    n = sr // 2
    t = np.arange(n) / sr
    write_wav(tmp_path / "r.wav", (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), sr)
    y = audio.read(tmp_path / "r.wav")
    assert abs(len(y) - 8000) <= 1
    # the 440 Hz tone survives resampling: check the spectral peak
    peak = np.argmax(np.abs(np.fft.rfft(y))) * 16000 / len(y)
    assert abs(peak - 440) < 5


def test_list_audio(tmp_path):
    write_wav(tmp_path / "b.wav", synth_speech(0.1))
    write_wav(tmp_path / "d" / "a.flac", synth_speech(0.1))
    (tmp_path / "notes.txt").write_text("x")
    assert [p.name for p in audio.list_audio(tmp_path)] == ["b.wav", "a.flac"]


def test_check_signal():
    assert audio.check_signal([0.0, 1.0]).dtype == np.float32
    for bad in (np.zeros((2, 2)), np.zeros(0), np.array([np.nan, 1.0])):
        with pytest.raises(AudioError):
            audio.check_signal(bad, "x")


def test_list_and_load_pairs(pairs):
    found = list_pairs(pairs)
    assert [p.name for p in found] == ["u0.wav", "u1.wav"]
    noisy, clean = load_pair(found[0])
    assert noisy.shape == clean.shape == (16000,) and noisy.dtype == np.float32
    assert not np.array_equal(noisy, clean)


def test_pairs_resampled_when_both_sides_48k(tmp_path):
    x = synth_speech(1.0)
    from scipy.signal import resample_poly

    x48 = resample_poly(x, 3, 1).astype(np.float32)
    write_wav(tmp_path / "p" / "noisy" / "a.wav", x48, 48000)
    write_wav(tmp_path / "p" / "clean" / "a.wav", x48, 48000)
    noisy, clean = load_pair(list_pairs(tmp_path / "p")[0])
    assert noisy.shape == clean.shape and abs(len(noisy) - 16000) <= 1


def test_pair_errors_name_the_file(pairs):
    write_wav(pairs / "noisy" / "extra.wav", synth_speech(1.0))
    with pytest.raises(AudioError, match="extra.wav.*no partner"):
        list_pairs(pairs)


def test_missing_pair_folder(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        list_pairs(tmp_path / "nope")
    (tmp_path / "noisy").mkdir()
    with pytest.raises(InputError, match="no clean/"):
        list_pairs(tmp_path)
    (tmp_path / "clean").mkdir()
    with pytest.raises(InputError, match="no audio files"):
        list_pairs(tmp_path)


def test_load_pair_rejects_length_mismatch(tmp_path):
    a = write_wav(tmp_path / "n.wav", synth_speech(1.0))
    b = write_wav(tmp_path / "c.wav", synth_speech(0.9))
    with pytest.raises(AudioError, match="differ in length"):
        load_pair(Pair("n.wav", a, b))
