"""KWS data: both folder layouts and their errors, tasks, FSDD splits, clip loading, augmentation."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import synth_speech, write_wav

from tfdenoise import mixtures
from tfdenoise.errors import AudioError, InputError
from tfdenoise.kws import data
from tfdenoise.kws.data import SILENCE, UNKNOWN, Clip

SR = 16000
ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data"
FSDD = SHARED / "kws" / "fsdd"


@pytest.fixture(scope="module")
def fsdd() -> list[Clip]:
    if not FSDD.is_dir():
        pytest.skip(f"real FSDD clips not found at {FSDD} (the shared data folder, ../shared from the project root)")
    return data.list_clips(FSDD)


def one_line(exc: pytest.ExceptionInfo, *names: object) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    for n in names:
        assert str(n) in text, (n, text)
    return text


def tone(seconds: float = 0.3, seed: int = 0) -> np.ndarray:
    return synth_speech(seconds, seed=seed)


# -- layouts -------------------------------------------------------------------------------

def test_flat_layout(tmp_path):
    for name in ("1_bob_12.wav", "0_alice_0.flac", "0_alice_10.wav", "0_alice_2.ogg", "3_mary_ann_7.wav"):
        write_wav(tmp_path / name, tone(), subtype="VORBIS" if name.endswith(".ogg") else "PCM_16")
    (tmp_path / "README.txt").write_text("not audio")
    clips = data.list_clips(tmp_path)
    assert [(c.label, c.speaker, c.index) for c in clips] == [
        ("0", "alice", 0), ("0", "alice", 2), ("0", "alice", 10), ("1", "bob", 12), ("3", "mary_ann", 7)]
    assert clips[0].path == tmp_path / "0_alice_0.flac"
    assert data.speakers(clips) == ("alice", "bob", "mary_ann")
    assert data.list_clips(tmp_path) == clips  # deterministic


def test_label_folder_layout(tmp_path):
    for rel in ("yes/0a7c2a8d_nohash_0.wav", "yes/0a7c2a8d_nohash_1.wav", "yes/b1e4_nohash_3.wav",
                "no/b1e4_nohash_0.wav", "no/carol.wav", "no/carol_x.wav"):
        write_wav(tmp_path / rel, tone())
    write_wav(tmp_path / "_background_noise_" / "white_noise.wav", tone(1.0))  # not a label
    (tmp_path / "testing_list.txt").write_text("yes/b1e4_nohash_3.wav\n")
    clips = data.list_clips(tmp_path)
    assert [(c.label, c.speaker, c.index) for c in clips] == [
        ("no", "b1e4", 0), ("no", "carol", 0), ("no", "carol", 1), ("yes", "0a7c2a8d", 0),
        ("yes", "0a7c2a8d", 1), ("yes", "b1e4", 3)]
    assert data.labels(clips) == ("no", "yes")
    assert clips[-1].path == tmp_path / "yes" / "b1e4_nohash_3.wav"


@pytest.mark.parametrize("files, problem", [
    ((), "no audio clips"),
    (("notes.txt",), "no audio clips"),
    (("hello.wav",), "unknown layout: hello.wav"),
    (("0_alice_0.wav", "yes/a_nohash_0.wav"), "unknown layout"),
    (("yes/deeper/a_nohash_0.wav",), "unknown layout"),
])
def test_folder_errors_are_one_line_naming_the_folder(tmp_path, files, problem):
    folder = tmp_path / "clips"
    folder.mkdir()
    for rel in files:
        if rel.endswith(".txt"):
            (folder / rel).write_text("x")
        else:
            write_wav(folder / rel, tone())
    with pytest.raises(InputError) as exc:
        data.list_clips(folder)
    assert problem in one_line(exc, folder)


def test_missing_folder(tmp_path):
    with pytest.raises(InputError) as exc:
        data.list_clips(tmp_path / "nope")
    assert "no such folder" in one_line(exc, tmp_path / "nope")


def test_stereo_clip_is_one_line_naming_the_file(tmp_path):
    write_wav(tmp_path / "0_alice_0.wav", tone())
    stereo = write_wav(tmp_path / "1_alice_0.wav", np.stack([tone(), tone()], axis=1))
    clips = data.list_clips(tmp_path)
    with pytest.raises(AudioError) as exc:
        data.load_clips(clips)
    assert "channels" in one_line(exc, stereo)


# -- tasks ---------------------------------------------------------------------------------

def test_digits_and_keyword_tasks(tmp_path):
    clips = [Clip(Path(f"{w}.wav"), w, "s", 0) for w in ("yes", "no", "up", "down")]
    digits = data.digits_task([Clip(Path(f"{d}.wav"), str(d), "s", 0) for d in (3, 1, 0, 2)])
    assert digits.labels == ("0", "1", "2", "3") and digits.keywords is None and digits.target("2") == 2
    with pytest.raises(InputError) as exc:
        digits.target("7")
    one_line(exc, "'7'")
    kw = data.keyword_task(clips, ["yes", "no"])
    assert kw.labels == ("yes", "no", UNKNOWN, SILENCE) and kw.keywords == ("yes", "no")
    assert [kw.target(w) for w in ("yes", "no", "up", "down", SILENCE)] == [0, 1, 2, 2, 3]
    assert kw.targets(clips).tolist() == [0, 1, 2, 2] and kw.n_classes == 4


@pytest.mark.parametrize("keywords, named", [
    (["yes", "left"], "'left'"), ([UNKNOWN], UNKNOWN), (["yes", "yes"], "yes"), ([], "keyword")])
def test_keyword_task_errors(keywords, named):
    clips = [Clip(Path(f"{w}.wav"), w, "s", 0) for w in ("yes", "no")]
    with pytest.raises(InputError) as exc:
        data.keyword_task(clips, keywords)
    one_line(exc, named)


# -- splits on the real FSDD list ----------------------------------------------------------

def test_fsdd_listing(fsdd):
    assert len(fsdd) == 3000
    assert data.labels(fsdd) == tuple(str(d) for d in range(10))
    assert len(data.speakers(fsdd)) == 6
    assert data.digits_task(fsdd).labels == tuple(str(d) for d in range(10))


def test_fsdd_split(fsdd):
    train, valid, test = data.dataset_split(fsdd, valid_fraction=0.1, seed=0)
    assert (len(train), len(valid), len(test)) == (2430, 270, 300)
    assert len({c.path for c in train + valid + test}) == 3000
    assert {(c.speaker, c.index) for c in test} == {(s, i) for s in data.speakers(fsdd) for i in range(5)}
    assert not {(c.speaker, c.label, c.index) for c in train + valid} & {(c.speaker, c.label, c.index) for c in test}
    assert min(c.index for c in train + valid) == 5
    for label in data.labels(fsdd):  # stratified: 10 % of each label's 270 non-test clips
        assert sum(c.label == label for c in valid) == 27
        assert sum(c.label == label for c in test) == 30
    assert data.dataset_split(fsdd, 0.1, seed=0) == (train, valid, test)
    assert data.dataset_split(fsdd, 0.1, seed=1)[1] != valid
    assert data.dataset_split(fsdd, 0.0)[1] == []
    with pytest.raises(InputError) as exc:
        data.dataset_split(fsdd, 1.0)
    one_line(exc, "1.0")


def test_leave_one_speaker_out(fsdd):
    train, valid, test = data.leave_one_speaker_out(fsdd, "theo")
    assert len(test) == 500 and {c.speaker for c in test} == {"theo"}
    assert "theo" not in {c.speaker for c in train + valid}
    assert (len(train), len(valid)) == (2250, 250)
    with pytest.raises(InputError) as exc:
        data.leave_one_speaker_out(fsdd, "zeus")
    one_line(exc, "'zeus'")


# -- loading -------------------------------------------------------------------------------

def test_load_clips_and_cache(tmp_path, monkeypatch):
    write_wav(tmp_path / "in" / "0_a_0.wav", tone(0.3, 0))
    write_wav(tmp_path / "in" / "1_a_0.wav", tone(0.5, 1))
    write_wav(tmp_path / "in" / "2_a_0.wav", tone(0.2, 2), sr=8000)  # resampled quietly
    clips = data.list_clips(tmp_path / "in")
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        xs = data.load_clips(clips, cache_dir=tmp_path / "cache")
    assert [len(x) for x in xs] == [4800, 8000, 6400] and all(x.dtype == np.float32 for x in xs)
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 1
    monkeypatch.setattr(data.audio, "read", lambda *a, **k: pytest.fail("cache not used"))
    again = data.load_clips(clips, cache_dir=tmp_path / "cache")
    for a, b in zip(xs[:2], again[:2]):  # PCM16 sources come back bit-exact
        np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(again[2], xs[2], atol=1 / 32768)
    assert data.load_clips([]) == []


# -- augmentation --------------------------------------------------------------------------

def noise_corpus(seconds: float = 3.0, seed: int = 5) -> mixtures.Corpus:
    rng = np.random.default_rng(seed)
    n = int(seconds * SR)
    x = np.round(np.clip(0.1 * rng.standard_normal(n), -1, 1) * 32767).astype(np.int16)
    return mixtures.Corpus(x, np.array([0, n // 2]), np.array([n // 2, n]), ("a.wav", "b.wav"))


def snr_of(out: np.ndarray, clean: np.ndarray) -> float:
    """SNR of ``out = scale * (clean + noise)``: a window scaled down to its peak limit keeps its
    SNR, so undo the scale first (least squares; the noise is nearly orthogonal to the clip)."""
    out, clean = out.astype(np.float64), clean.astype(np.float64)
    scale = np.dot(out, clean) / np.dot(clean, clean) if np.max(np.abs(out)) >= 0.998 else 1.0
    return 10 * np.log10(mixtures.speech_power(clean) / np.mean((out / scale - clean) ** 2))


def test_augment_length_and_determinism():
    noise, window = noise_corpus(), 16000
    for seconds in (0.2, 1.0, 1.7):  # shorter, equal, longer than the window
        x = tone(seconds, seed=3)
        a = data.augment(x, np.random.default_rng(7), noise, window)
        b = data.augment(x, np.random.default_rng(7), noise, window)
        c = data.augment(x, np.random.default_rng(8), noise, window)
        assert a.shape == (window,) and a.dtype == np.float32 and np.all(np.isfinite(a))
        np.testing.assert_array_equal(a, b)
        assert not np.array_equal(a, c)
    no_noise = data.augment(tone(0.4), np.random.default_rng(0), None, 8000, shift_seconds=0, gain_db=(0, 0))
    np.testing.assert_array_equal(no_noise, data.place(tone(0.4), 8000))


def test_place_centres_shifts_and_crops():
    x = np.arange(1, 5, dtype=np.float32)
    assert data.place(x, 8).tolist() == [0, 0, 1, 2, 3, 4, 0, 0]
    assert data.place(x, 8, 3).tolist() == [0, 0, 0, 0, 0, 1, 2, 3]
    assert data.place(x, 8, -9).tolist() == [0] * 8
    assert data.place(np.arange(10, dtype=np.float32), 4).tolist() == [3, 4, 5, 6]


@pytest.mark.parametrize("snr", [0.0, 7.5, 20.0])
def test_augment_snr(snr):
    x = tone(0.5, seed=4)
    for seed in range(5):
        out = data.augment(x, np.random.default_rng(seed), noise_corpus(), 16000, snr_db=(snr, snr),
                           shift_seconds=0.0, gain_db=(-6, -6), noise_prob=1.0)
        clean = data.place(x, 16000) * np.float32(10 ** (-6 / 20))
        assert abs(snr_of(out, clean) - snr) < 0.5


def test_augment_never_clips():
    loud = 0.9 * np.sign(tone(0.5)).astype(np.float32)
    out = data.augment(loud, np.random.default_rng(0), noise_corpus(), 16000, snr_db=(5, 5),
                       shift_seconds=0, gain_db=(10, 10), noise_prob=1.0)
    assert np.all(np.isfinite(out)) and np.max(np.abs(out)) <= 0.999
    assert abs(snr_of(out, data.place(loud, 16000) * np.float32(10 ** 0.5)) - 5) < 0.5  # scaled, not clipped
    silent = data.augment(np.zeros(4000, np.float32), np.random.default_rng(0), noise_corpus(), 16000, noise_prob=1.0)
    assert np.all(np.isfinite(silent))


def test_augment_snr_with_real_noise(tmp_path, fsdd):
    files = [f for f in (SHARED / "noise" / "rain").glob("*") if f.suffix in (".ogg", ".opus")]
    noise_file = sorted(files, key=lambda f: (f.stat().st_size, f.name))[:1]  # the smallest
    if not noise_file:
        pytest.skip(f"no real noise found in {SHARED / 'noise' / 'rain'}")
    (tmp_path / "noise").mkdir()
    (tmp_path / "noise" / noise_file[0].name).symlink_to(noise_file[0])
    noise = mixtures.load_corpus(tmp_path / "noise", progress=False)
    (x,) = data.load_clips(fsdd[1234:1235])
    for seed, snr in enumerate((0.0, 5.0, 12.5)):
        out = data.augment(x, np.random.default_rng(seed), noise, 16000, snr_db=(snr, snr),
                           shift_seconds=0.0, gain_db=(0, 0), noise_prob=1.0)
        assert abs(snr_of(out, data.place(x, 16000)) - snr) < 0.5


def test_silence_window():
    noise = noise_corpus()
    a = data.silence_window(np.random.default_rng(1), noise, 12000)
    np.testing.assert_array_equal(a, data.silence_window(np.random.default_rng(1), noise, 12000))
    for corpus in (noise, None):
        for seed in range(5):
            w = data.silence_window(np.random.default_rng(seed), corpus, 12000, level_db=(-50, -30))
            level = 10 * np.log10(np.mean(w.astype(np.float64) ** 2))
            assert w.shape == (12000,) and w.dtype == np.float32 and -50.01 <= level <= -29.99
