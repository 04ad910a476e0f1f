"""`tfdenoise train` checks its arguments up front: one-line errors, nothing read or written."""
from __future__ import annotations

import hashlib
import time
from pathlib import Path

import pytest

from conftest import synth_speech, write_wav


@pytest.fixture
def tiny_dirs(tmp_path: Path) -> tuple[Path, Path]:
    """One 1 s synthetic wav each of 'speech' and 'noise'."""
    write_wav(tmp_path / "speech" / "p001_001.wav", synth_speech(1.0, seed=0))
    write_wav(tmp_path / "noise" / "hum.wav", 0.1 * synth_speech(1.0, seed=1))
    return tmp_path / "speech", tmp_path / "noise"


@pytest.fixture
def no_data_read(monkeypatch):
    """Any attempt to decode a corpus fails the test."""
    from tfdenoise import mixtures

    def load_corpus(*args, **kwargs):
        raise AssertionError("training data was read")

    monkeypatch.setattr(mixtures, "load_corpus", load_corpus)


def _train_args(speech: Path, noise: Path, out: Path, *extra) -> list:
    return ["train", "--variant", "gru128", "--speech", speech, "--noise", noise, "--out", out,
            "--cache", "", "--quiet", *extra]


def _assert_one_line_error(err: str, *words: str) -> None:
    assert err.startswith("tfdenoise train: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    for word in words:
        assert word in err, err


BAD = [
    (["--epochs", "0"], "--epochs"),
    (["--epochs", "-1"], "--epochs"),
    (["--batch", "0"], "--batch"),
    (["--segment", "0"], "--segment"),
    (["--segment", "0.05"], "--segment"),  # shorter than the loss's 75 ms STFT window
    (["--segment", "61"], "--segment"),
    (["--lr", "-1"], "--lr"),
    (["--lr", "2"], "--lr"),
    (["--lr", "nan"], "--lr"),
    (["--lr-final", "0"], "--lr-final"),
    (["--valid-fraction", "1.5"], "--valid-fraction"),
    (["--valid-fraction", "0"], "--valid-fraction"),
    (["--valid-pesq", "-1"], "--valid-pesq"),
    (["--synthetic-noise", "1.5"], "--synthetic-noise"),
    (["--snr", "10", "5"], "--snr"),
    (["--snr", "0", "inf"], "--snr"),
    (["--segments-per-epoch", "-1"], "--segments-per-epoch"),
    (["--min-clean-snr", "-1"], "--min-clean-snr"),
    (["--compressed-loss", "-1"], "--compressed-loss"),
    (["--mag-loss", "-1"], "--mag-loss"),
    (["--seed", "-1"], "--seed"),
]


@pytest.mark.parametrize("extra, option", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_out_of_range_option_is_a_one_line_error(cli, tiny_dirs, tmp_path, no_data_read, extra, option):
    out = tmp_path / "run"
    t0 = time.monotonic()
    code, stdout, err = cli(*_train_args(*tiny_dirs, out, *extra))
    assert time.monotonic() - t0 < 10
    assert code == 2 and stdout == ""
    _assert_one_line_error(err, option)
    assert not out.exists()


def test_unknown_variant_is_a_one_line_error(cli, tiny_dirs, tmp_path, no_data_read):
    args = _train_args(*tiny_dirs, tmp_path / "run")
    args[args.index("gru128")] = "gru64"
    code, _, err = cli(*args)
    assert code == 2
    _assert_one_line_error(err, "--variant", "gru64", "LSTM128")
    assert not (tmp_path / "run").exists()


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_resume_with_another_variant_is_a_one_line_error(cli, tmp_path, monkeypatch):
    from tfdenoise.train import TrainConfig, train

    for spk in ("p001", "p002"):
        write_wav(tmp_path / "speech" / f"{spk}_001.wav", synth_speech(1.0, seed=int(spk[-1])))
    for i in range(2):
        write_wav(tmp_path / "noise" / f"hum_{i}.wav", 0.1 * synth_speech(1.0, seed=10 + i))
    speech, noise, out = tmp_path / "speech", tmp_path / "noise", tmp_path / "run"
    train(TrainConfig(variant="gru128", speech=str(speech), noise=str(noise), out=str(out), epochs=1,
                      batch=2, segment_seconds=0.25, segments_per_epoch=2, valid_fraction=0.5,
                      valid_segments=2, cache_dir=""), verbose=0)
    before = _digest(out)
    assert "last/config.json" in before and "last/weights.h5" in before

    from tfdenoise import mixtures

    monkeypatch.setattr(mixtures, "load_corpus", lambda *a, **k: pytest.fail("training data was read"))
    args = _train_args(speech, noise, out, "--epochs", "2", "--resume")
    args[args.index("gru128")] = "LSTM128"
    code, _, err = cli(*args)
    assert code == 2
    assert err == f"tfdenoise train: error: run {out} was trained as GRU128; --variant LSTM128 cannot resume it\n"
    assert _digest(out) == before


def test_help_shows_defaults_ranges_and_an_example(cli, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli("train", "--help")
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    assert "(default: 10)" in text and "(default: 64)" in text and ">= 1" in text and "(0, 1)" in text
    assert "default: None" not in text
    examples = [line for line in text.splitlines() if line.startswith("example")]
    assert examples and "tfdenoise train --variant" in text and "../shared/data/speech" in text
