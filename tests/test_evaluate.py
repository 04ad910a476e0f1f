"""Metrics sanity and ``tfdenoise evaluate`` (library and command)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfdenoise.data import list_pairs, load_pair
from tfdenoise.errors import AudioError
from tfdenoise.evaluate import evaluate_pairs, format_table
from tfdenoise.metrics import score


def test_clean_against_itself_scores_high(real_pairs):
    noisy, clean = load_pair(list_pairs(real_pairs)[0])
    perfect = score(clean, clean)
    assert perfect["pesq"] > 4.4 and perfect["stoi"] > 0.999
    degraded = score(clean, noisy)
    assert 1.0 < degraded["pesq"] < perfect["pesq"] and degraded["stoi"] < perfect["stoi"]
    assert set(perfect) == {"pesq", "stoi"} and all(type(v) is float for v in perfect.values())


def test_score_rejects_bad_signals(real_pairs):
    _, clean = load_pair(list_pairs(real_pairs)[0])
    cases = [
        (np.zeros_like(clean), clean, "silent"),
        (clean, np.zeros_like(clean), "silent"),
        (clean[:4000], clean[:4000], "too short"),
        (clean, clean[:-10], "differ in length"),
        (clean, np.where(np.arange(clean.size) == 5, np.nan, clean), "NaN"),
    ]
    for ref, deg, why in cases:
        with pytest.raises(AudioError, match=why) as info:
            score(ref, deg, name="x.wav")
        assert str(info.value).startswith("x.wav: ")


def test_evaluate_noisy_matches_direct_scores(real_pairs):
    result = evaluate_pairs(real_pairs, "noisy", jobs=1)
    assert set(result) == {"model", "pairs", "mean", "noisy_mean", "files"}
    assert [f["name"] for f in result["files"]] == ["p257_114.wav", "p257_259.wav"]
    for f, pair in zip(result["files"], list_pairs(real_pairs)):
        noisy, clean = load_pair(pair)
        direct = score(clean, noisy)
        assert f["pesq"] == f["noisy_pesq"] == pytest.approx(direct["pesq"])
        assert f["stoi"] == f["noisy_stoi"] == pytest.approx(direct["stoi"])
    assert result["mean"]["pesq"] == pytest.approx(np.mean([f["pesq"] for f in result["files"]]))
    table = format_table(result)
    assert "p257_114.wav" in table and "mean" in table


def test_evaluate_checkpoint(real_pairs, checkpoint):
    result = evaluate_pairs(real_pairs, str(checkpoint), jobs=1)
    assert result["model"] == str(checkpoint)
    for f in result["files"]:
        assert set(f) == {"name", "pesq", "stoi", "noisy_pesq", "noisy_stoi"}
        assert 1.0 <= f["pesq"] <= 4.7 and 0.0 <= f["stoi"] <= 1.0
        assert f["pesq"] != f["noisy_pesq"]  # the random model did change the audio


def test_evaluate_fast_path_scores_equal_streaming(real_pairs, checkpoint):
    """The compiled sequence model scores what the hop-by-hop step model scores."""
    fast = evaluate_pairs(real_pairs, str(checkpoint), jobs=1)
    ref = evaluate_pairs(real_pairs, str(checkpoint), jobs=1, streaming=True)
    for a, b in zip(fast["files"], ref["files"]):
        assert a["name"] == b["name"]
        assert a["pesq"] == pytest.approx(b["pesq"], abs=1e-3)
        assert a["stoi"] == pytest.approx(b["stoi"], abs=1e-3)


def test_evaluate_cli_bundled_samples_noisy(tmp_path, cli):
    """The reference noisy scores of the 10 bundled pairs (data README: 1.39 / 0.890)."""
    report = tmp_path / "r" / "report.json"
    code, out, _ = cli("evaluate", "--model", "noisy", "--json", report, "--jobs", "2")
    assert code == 0 and "mean" in out
    data = json.loads(report.read_text())
    assert len(data["files"]) == 10
    assert data["noisy_mean"]["pesq"] == pytest.approx(1.39, abs=0.01)
    assert data["noisy_mean"]["stoi"] == pytest.approx(0.890, abs=0.01)
    assert data["mean"] == data["noisy_mean"]
    assert sorted(p.name for p in report.parent.iterdir()) == ["report.json"]
