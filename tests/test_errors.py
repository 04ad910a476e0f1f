"""Every bad input gives one clear line naming the file, a non-zero exit, no partial output."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import synth_speech, write_wav
from tfdenoise import audio
from tfdenoise.errors import AudioError, InputError


def _make_bad(tmp_path: Path, kind: str) -> Path:
    path = tmp_path / "bad" / f"{kind}.wav"
    path.parent.mkdir(parents=True, exist_ok=True)
    x = synth_speech(1.0)
    if kind == "stereo":
        write_wav(path, np.stack([x, x], axis=1))
    elif kind == "silence":
        write_wav(path, np.zeros(16000, np.float32))
    elif kind == "nan":
        y = x.copy()
        y[100] = np.nan
        write_wav(path, y, subtype="FLOAT")
    elif kind == "truncated":
        write_wav(path, x)
        path.write_bytes(path.read_bytes()[:30])
    elif kind == "corrupt":
        path.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk" * 20)
    elif kind == "empty":
        path.write_bytes(b"")
    return path


BAD_KINDS = ["stereo", "silence", "nan", "truncated", "corrupt", "empty"]


@pytest.mark.parametrize("kind", BAD_KINDS + ["missing"])
def test_read_rejects_bad_audio(tmp_path, kind):
    path = _make_bad(tmp_path, kind) if kind != "missing" else tmp_path / "missing.wav"
    with pytest.raises(AudioError) as info:
        audio.read(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def _no_outputs(folder: Path) -> bool:
    return not folder.exists() or not any(folder.rglob("*"))


@pytest.mark.parametrize("kind", BAD_KINDS + ["missing"])
def test_enhance_cli_bad_input(tmp_path, kind, checkpoint, cli):
    path = _make_bad(tmp_path, kind) if kind != "missing" else tmp_path / "missing.wav"
    out = tmp_path / "out"
    code, stdout, err = cli("enhance", path, "-o", out / "x.wav", "--model", checkpoint,
                            "--jobs", "1")
    assert code == InputError.exit_code
    assert err.startswith("tfdenoise enhance: error: ") and err.count("\n") == 1
    assert str(path) in err
    assert _no_outputs(out) and stdout == ""


def test_enhance_cli_empty_folder(tmp_path, checkpoint, cli):
    (tmp_path / "empty").mkdir()
    code, _, err = cli("enhance", tmp_path / "empty", "-o", tmp_path / "out",
                       "--model", checkpoint)
    assert code == InputError.exit_code and "no audio files" in err
    assert str(tmp_path / "empty") in err and _no_outputs(tmp_path / "out")


def test_enhance_cli_missing_model(tmp_path, wav, cli):
    code, _, err = cli("enhance", wav, "-o", tmp_path / "o.wav", "--model", tmp_path / "nope")
    assert code == 3 and str(tmp_path / "nope") in err and err.count("\n") == 1
    assert not (tmp_path / "o.wav").exists()


@pytest.mark.parametrize("problem", ["length", "partner", "stereo", "empty"])
def test_evaluate_cli_bad_pairs(tmp_path, pairs, problem, cli):
    if problem == "length":
        bad = write_wav(pairs / "clean" / "u1.wav", synth_speech(0.8))
        bad = pairs / "noisy" / "u1.wav"
    elif problem == "partner":
        bad = write_wav(pairs / "clean" / "only_clean.wav", synth_speech(1.0))
    elif problem == "stereo":
        x = synth_speech(1.0)
        bad = write_wav(pairs / "noisy" / "u0.wav", np.stack([x, x], axis=1))
    else:
        for p in pairs.rglob("*.wav"):
            p.unlink()
        bad = pairs
    report = tmp_path / "report.json"
    code, _, err = cli("evaluate", "--pairs", pairs, "--model", "noisy", "--json", report,
                       "--jobs", "1")
    assert code == InputError.exit_code
    assert err.startswith("tfdenoise evaluate: error: ") and err.count("\n") == 1
    assert str(bad) in err
    assert not report.exists() and not list(tmp_path.glob(".report*"))


def test_evaluate_cli_silent_clean_file(tmp_path, pairs, cli):
    bad = write_wav(pairs / "clean" / "u0.wav", np.zeros(16000, np.float32))
    code, _, err = cli("evaluate", "--pairs", pairs, "--model", "noisy", "--jobs", "1")
    assert code == InputError.exit_code and str(bad) in err and err.count("\n") == 1


def test_bad_jobs(tmp_path, pairs, cli):
    code, _, err = cli("evaluate", "--pairs", pairs, "--model", "noisy", "--jobs", "0")
    assert code == InputError.exit_code and "--jobs" in err
