"""tfdenoise search (issue 20 items 1-2): enumeration, cost-Pareto filter, quality cache, budgets, outputs."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import make_pairs
from tfdenoise.errors import InputError
from tfdenoise.search import (GROUPS, Candidate, QualityCache, check_budgets, enumerate_recipes,
                              pareto_front, search, write_outputs)

#: Two groups keep the slow end-to-end test at 4 exports: the RNNs, and every other layer.
TWO = {"rnn": ("rnn_0", "rnn_1"), "rest": ("fc_in", "fc_mid", "fc_out")}


def test_enumeration_covers_every_group_choice():
    recipes = enumerate_recipes()
    assert len(recipes) == 2 ** len(GROUPS) == 16
    names = [r["name"] for r in recipes]
    assert len(set(names)) == 16 and {"fp16", "int8", "mixed"} <= set(names)
    mixed = next(r for r in recipes if r["name"] == "mixed")
    from tfdenoise.converters.recipe import parse

    assert {k: v.value for k, v in parse(mixed).resolve().items()} == {
        "fc_in": "fp16", "rnn_0": "int8", "rnn_1": "int8", "fc_mid": "fp16", "fc_out": "fp16"}
    both = next(r for r in recipes if r["search_groups"] == {"fc_in": "int8", "rnn": "int8", "fc_mid": "fp16",
                                                               "fc_out": "int8"})
    assert parse(both).resolve()["fc_out"].value == "int8"


def _cand(ms: float, uj: float) -> Candidate:
    return Candidate("r", {}, "f", "none", "emram", 0.8, 370.0, {"latency_ms": ms, "energy_uj": uj})


def test_pareto_drops_dominated_candidates():
    cands = [_cand(1.0, 10.0), _cand(2.0, 5.0), _cand(2.5, 12.0), _cand(1.0, 10.0), _cand(3.0, 4.0)]
    assert pareto_front(cands) == [0, 1, 4]   # 2 is dominated by 0 and 1; 3 duplicates 0


@pytest.mark.parametrize("kw", [{"budget_ms": -1.0}, {"budget_uj": 0.0}, {"max_pesq_loss": -0.1},
                                {"budget_ms": float("nan")}])
def test_bad_budgets_are_one_line_errors(kw):
    args = {"budget_ms": 6.25, "budget_uj": None, "max_pesq_loss": 0.03, **kw}
    with pytest.raises(InputError) as e:
        check_budgets(**args)
    assert "\n" not in str(e.value)


def test_cli_negative_budget(cli):
    code, _, err = cli("search", "--budget-ms", "-1")
    assert code != 0 and "--budget-ms must be a positive number" in err


def test_quality_cache_scores_each_file_once(tmp_path: Path):
    calls = []

    def scorer(file, pairs):
        calls.append(file)
        return {"pesq": 2.0, "stoi": 0.9}

    f = tmp_path / "a.tflite"
    f.write_bytes(b"x")
    cache = QualityCache(tmp_path / "q.json")
    assert cache.get("sha", "pairs", f, tmp_path, scorer)["pesq"] == 2.0
    again = QualityCache(tmp_path / "q.json")
    assert again.get("sha", "pairs", f, tmp_path, scorer)["stoi"] == 0.9
    assert len(calls) == 1 and again.scored == 0
    again.get("sha", "other-pairs", f, tmp_path, scorer)
    assert len(calls) == 2


@pytest.mark.slow
def test_search_end_to_end(checkpoint: Path, tmp_path: Path):
    pairs = make_pairs(tmp_path / "pairs", n=1, seconds=0.5)
    out = tmp_path / "s"
    kw = dict(board="gap9", pairs=pairs, out_dir=out, budget_ms=6.25, max_pesq_loss=5.0, groups=TWO,
              policies=("layer-order", "none"))
    result = search(checkpoint, **kw)
    assert len(result["candidates"]) == 4 * 2 * 2 * 2          # recipes x policies x L3 x vdd
    assert result["scored_now"] >= 1 and result["chosen"] is not None
    scored = [c for c in result["candidates"] if c["pesq"] is not None]
    assert all(c["within_budget"] or c["recipe"] == "mixed" for c in scored)
    paths = write_outputs(result, out)
    for name in ("candidates.json", "pareto.md", "pareto.png", "chosen.json", "chosen.tflite"):
        assert (out / name).is_file(), name
    assert "report_json" in paths and json.loads((out / "chosen.json").read_text())["layers"]
    again = search(checkpoint, **kw)                            # exports and scores are cached
    assert again["scored_now"] == 0 and again["chosen"] == result["chosen"]
