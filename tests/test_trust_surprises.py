"""Trust, no silent surprises: batches finish the good files; random weights, resampling,
narrowband references and over-range input are said out loud."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import make_pairs, synth_speech, write_wav

from trustkit import (assert_nothing_new, error_line, tree_hashes)
from trustkit import audio_dir, ckpt, exported, model, no_work  # noqa: F401  (fixtures)


# -- batches ----------------------------------------------------------------------------------

def test_enhance_batch_finishes_the_good_files(cli, tmp_path, ckpt):
    src = tmp_path / "in"
    write_wav(src / "a.wav", synth_speech(0.3, seed=0))
    (src / "b.wav").write_bytes(b"RIFF but not really a wav file")
    write_wav(src / "c.wav", synth_speech(0.3, seed=1))
    out = tmp_path / "out"
    before_inputs = tree_hashes(src, ckpt)
    before = tree_hashes(tmp_path)
    code, stdout, err = cli("enhance", src, "-o", out, "--model", ckpt, "--jobs", "1")
    assert code == 2, err
    assert stdout.splitlines() == [str(out / "a.wav"), str(out / "c.wav")]
    line = error_line(err, "enhance", src / "b.wav")
    assert "1 of 3 files failed, 2 written" in line
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "c.wav"]
    assert sf.info(str(out / "c.wav")).frames == int(0.3 * 16000)
    assert tree_hashes(src, ckpt) == before_inputs
    assert_nothing_new(before, tmp_path, [out, out / "a.wav", out / "c.wav"])


def test_enhance_batch_lists_every_failure_in_one_line(cli, tmp_path, ckpt):
    src = tmp_path / "in"
    write_wav(src / "a.wav", synth_speech(0.3))
    (src / "b.wav").write_bytes(b"garbage")
    write_wav(src / "c.wav", np.zeros(4800, np.float32))  # silent
    out = tmp_path / "out"
    code, stdout, err = cli("enhance", src, "-o", out, "--model", ckpt, "--jobs", "1")
    assert code == 2
    assert stdout.splitlines() == [str(out / "a.wav")]
    line = error_line(err, "enhance", src / "b.wav", src / "c.wav")
    assert "2 of 3 files failed, 1 written" in line


# -- no silent surprises ----------------------------------------------------------------------

def test_export_variant_says_random_everywhere(exported, cli, tmp_path):
    from tfdenoise.converters.metadata import read_metadata

    path, code, out, err = exported
    assert "RANDOM (untrained) weights" in out.splitlines()[0]
    assert "RANDOM" in err  # and a warning
    assert read_metadata(path.read_bytes(), path)["random_weights"] is True
    code, out, err = cli("report", path, "--json", "-")
    assert code == 0, err
    report = json.loads(out)
    assert report["random_weights"] is True
    assert any("RANDOM" in w for w in report["warnings"]), report["warnings"]
    assert "RANDOM" in err  # the Markdown (on stderr with --json -) says it too


def test_scores_of_random_weights_warn(exported, cli, pairs):
    code, _, err = cli("evaluate", "--pairs", pairs, "--model", exported[0], "--jobs", "1")
    assert code == 0, err
    warnings = [w for w in err.splitlines() if w.startswith("tfdenoise evaluate: warning: ")]
    assert sum("RANDOM" in w for w in warnings) == 1, err


def test_export_pretrained_is_the_trained_model(cli, tmp_path):
    from tfdenoise.converters.metadata import read_metadata

    out = tmp_path / "p.tflite"
    code, stdout, err = cli("export", "--pretrained", "gru128", "--fp32", "--no-check", "-o", out)
    assert code == 0, err
    assert "RANDOM" not in stdout + err
    assert not (read_metadata(out.read_bytes(), out) or {}).get("random_weights")
    code, stdout, err = cli("report", out, "--json", "-")
    assert code == 0 and json.loads(stdout)["random_weights"] is False


@pytest.mark.parametrize("rate", [48000, 8000])
def test_resampled_input_warns_once(cli, tmp_path, ckpt, rate):
    t = np.arange(rate // 2) / rate
    x = 0.2 * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 1100 * t)) * np.hanning(t.size)
    src = write_wav(tmp_path / "hi.wav", x.astype(np.float32), sr=rate)
    out = tmp_path / "e.wav"
    code, stdout, err = cli("enhance", src, "-o", out, "--model", ckpt)
    assert code == 0, err
    lines = err.splitlines()
    hits = [w for w in lines if f"resampled from {rate} Hz to 16000 Hz" in w]
    assert len(hits) == 1 and hits[0].startswith("tfdenoise enhance: warning: "), err
    assert str(src) in hits[0]
    assert ("narrowband" in hits[0]) == (rate == 8000)
    info = sf.info(str(out))
    assert info.samplerate == 16000 and info.frames == 8000
    # a folder of them: one warning per file, not per read
    folder = tmp_path / "many"
    folder.mkdir()
    for name in ("x", "y"):
        shutil.copy(src, folder / f"{name}.wav")
    code, _, err = cli("enhance", folder, "-o", tmp_path / "many-out", "--model", ckpt,
                       "--jobs", "1")
    assert code == 0, err
    for name in ("x", "y"):
        assert sum(f"{folder / name}.wav: resampled from {rate} Hz" in w
                   for w in err.splitlines()) == 1, err


def test_narrowband_references_warn(cli, tmp_path):
    """Synthetic speech (harmonics below 2 kHz) is narrowband: PESQ-WB of it warns per file."""
    pairs = make_pairs(tmp_path / "nb")
    code, _, err = cli("evaluate", "--pairs", pairs, "--model", "noisy", "--jobs", "1")
    assert code == 0, err
    warned = [w for w in err.splitlines() if "narrowband" in w]
    assert len(warned) == 2 and all(w.startswith("tfdenoise evaluate: warning: ") for w in warned)


def test_wideband_references_do_not_warn(cli, real_pairs):
    code, _, err = cli("evaluate", "--pairs", real_pairs, "--model", "noisy", "--jobs", "1")
    assert code == 0, err
    assert "narrowband" not in err


@pytest.fixture
def loud(tmp_path) -> Path:
    """A float wav whose peak is 1.5."""
    x = synth_speech(0.5)
    return write_wav(tmp_path / "loud.wav", x * (1.5 / np.max(np.abs(x))), subtype="FLOAT")


def test_overrange_warns_by_default(cli, tmp_path, loud, ckpt):
    out = tmp_path / "e.wav"
    code, _, err = cli("enhance", loud, "-o", out, "--model", ckpt)
    assert code == 0, err
    warned = [w for w in err.splitlines() if "above full scale" in w]
    assert len(warned) == 1 and warned[0].startswith("tfdenoise enhance: warning: ")
    assert str(loud) in warned[0] and "1.5" in warned[0]
    assert out.is_file()


def test_overrange_refuse(cli, tmp_path, loud, ckpt):
    out = tmp_path / "e.wav"
    before = tree_hashes(tmp_path)
    code, stdout, err = cli("enhance", loud, "-o", out, "--model", ckpt, "--overrange", "refuse")
    assert code == 2
    assert "above full scale" in error_line(err, "enhance", loud)
    assert not out.exists() and stdout == ""
    assert_nothing_new(before, tmp_path)


def test_overrange_normalize(cli, tmp_path, loud, ckpt):
    out, clipped = tmp_path / "n.wav", tmp_path / "w.wav"
    code, _, err = cli("enhance", loud, "-o", out, "--model", ckpt, "--overrange", "normalize")
    assert code == 0, err
    assert "above full scale" not in err
    y, sr = sf.read(str(out), dtype="float32")
    assert sr == 16000 and np.max(np.abs(y)) <= 1.0
    code, _, err = cli("enhance", loud, "-o", clipped, "--model", ckpt)
    assert code == 0
    assert not np.array_equal(y, sf.read(str(clipped), dtype="float32")[0])
