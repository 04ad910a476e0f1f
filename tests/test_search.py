"""tfdenoise search (issue 20): enumeration, budgets, the exact lowest-energy choice, fronts, the
quality cache, the CLI checks, and the denoiser end to end (tests/test_search_kws.py: KWS)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import make_pairs
from tfdenoise.errors import InputError
from tfdenoise.search import (Budgets, PairsScorer, QualityBound, QualityCache, _Quality, choose, mark_fronts,
                              pareto_front, search)
from tfdenoise.search_output import write_outputs
from tfdenoise.search_space import GROUPS, Candidate, enumerate_recipes
from tfdenoise.vocab import ModelFamily

#: Two groups keep the slow end-to-end test at 4 exports: the RNNs, and every other layer.
TWO = {"rnn": ("rnn_0", "rnn_1"), "rest": ("fc_in", "fc_mid", "fc_out")}
DEN, KWS = ModelFamily.DENOISER, ModelFamily.KWS
PREFER = ("layer-order", "emram")


def test_enumeration_covers_every_group_choice():
    recipes = enumerate_recipes()
    assert len(recipes) == 2 * 2 ** len(GROUPS) - 1 == 31   # fp16 has no asymmetric twin
    names = [r["name"] for r in recipes]
    assert len(set(names)) == 31 and {"fp16", "int8", "mixed", "int8@asym", "mixed@asym"} <= set(names)
    assert "fp16@asym" not in names
    asym = next(r for r in recipes if r["name"] == "int8@asym")
    assert asym["calibration"] == {"method": "std3", "ranges": "asymmetric"}
    mixed = next(r for r in recipes if r["name"] == "mixed")
    from tfdenoise.converters.recipe import parse

    assert {k: v.value for k, v in parse(mixed).resolve().items()} == {
        "fc_in": "fp16", "rnn_0": "int8", "rnn_1": "int8", "fc_mid": "fp16", "fc_out": "fp16"}
    both = next(r for r in recipes if r["search_groups"] == {"fc_in": "int8", "rnn": "int8", "fc_mid": "fp16",
                                                               "fc_out": "int8"})
    assert parse(both).resolve()["fc_out"].value == "int8"


def _cand(ms: float, uj: float, file: str = "f", **cost) -> Candidate:
    base = {"latency_ms": ms, "energy_uj": uj, "l2_bytes_used": 0, "param_bytes": 0, "fits": True,
            "realtime_ok": True}
    return Candidate("m", "r", file, "layer-order", "emram", 0.8, 370.0, {**base, **cost}, within_budget=True)


def test_pareto_drops_dominated_candidates():
    cands = [_cand(1.0, 10.0), _cand(2.0, 5.0), _cand(2.5, 12.0), _cand(1.0, 10.0), _cand(3.0, 4.0)]
    assert pareto_front(cands) == [0, 1, 4]   # 2 is dominated by 0 and 1; 3 duplicates 0


@pytest.mark.parametrize("kw", [{"ms": -1.0}, {"uj": 0.0}, {"ms": float("nan")}, {"l2_kb": -5.0},
                                {"param_kb": float("inf")}])
def test_bad_budgets_are_one_line_errors(kw):
    with pytest.raises(InputError) as e:
        Budgets(**kw).check()
    assert "\n" not in str(e.value) and "--budget-" in str(e.value)


@pytest.mark.parametrize("kw", [{"max_pesq_loss": -0.1}, {"max_accuracy_loss": float("nan")},
                                {"max_frr_increase": -1.0}])
def test_bad_quality_bounds_are_one_line_errors(kw):
    with pytest.raises(InputError) as e:
        QualityBound(KWS, **kw).check()
    assert "\n" not in str(e.value) and "must be zero or more" in str(e.value)


def test_budgets_name_every_reason():
    cost = {"latency_ms": 2.0, "energy_uj": 30.0, "l2_bytes_used": 200 * 1024, "param_bytes": 600 * 1024,
            "fits": True, "realtime_ok": True}
    assert Budgets().missed(cost, DEN) == []
    b = Budgets(ms=1.0, uj=40.0, l2_kb=100, param_kb=600)
    assert b.missed(cost, DEN) == ["over --budget-ms", "over --budget-l2-kb"]
    assert b.missed({**cost, "fits": False, "realtime_ok": False}, DEN)[:2] == ["does not fit", "misses the hop"]
    kws = {**cost, "decision_ms": 0.5, "decision_energy_uj": 50.0}
    assert Budgets(ms=1.0, uj=40.0).missed(kws, KWS) == ["over --budget-uj"]  # KWS: per decision


def test_kws_bound_is_points_of_accuracy_and_percent_of_frr():
    ref = {"accuracy": 0.97, "frr_1fa": 0.80}
    bound = QualityBound(KWS, max_accuracy_loss=1.0, max_frr_increase=10.0)
    assert bound.limits(ref) == {"accuracy": (">=", pytest.approx(0.96)), "frr_1fa": ("<=", pytest.approx(0.88))}
    assert bound.accepts(ref, ref) and bound.accepts({"accuracy": 0.9601, "frr_1fa": 0.879}, ref)
    assert not bound.accepts({"accuracy": 0.959, "frr_1fa": 0.5}, ref)
    assert not bound.accepts({"accuracy": 0.99, "frr_1fa": 0.881}, ref)
    assert bound.accepts({"accuracy": 0.90, "frr_1fa": 0.5}, ref, secondary_only=True)
    assert bound.accepts({"accuracy": 0.97, "frr_1fa": None}, {"accuracy": 0.97, "frr_1fa": None})


class FakeScorer:
    """Quality per file name, counting calls."""

    digest = "fake"

    def __init__(self, table: dict[str, float]) -> None:
        self.table, self.calls = table, []

    def __call__(self, file: Path) -> dict:
        self.calls.append(Path(file).name)
        return {"pesq": self.table[Path(file).name], "stoi": 0.9}


def _quality(tmp_path: Path, cands, table: dict[str, float], ref_pesq: float = 2.0) -> _Quality:
    for c in cands:
        Path(c.file).write_bytes(c.file.encode())
    q = _Quality(cands, FakeScorer(table), QualityCache(tmp_path / "q.json"), QualityBound(DEN, max_pesq_loss=0.1))
    q.ref = {"pesq": ref_pesq, "stoi": 0.9}
    return q


def test_choose_finds_the_lowest_energy_acceptable_candidate_off_the_front(tmp_path: Path):
    # A is cheap but fails; B (faster, more energy) passes; X, dominated by A, passes with less
    # energy than B: the answer is X, which the first cost-Pareto front {A, B} does not hold.
    a, b, x = (_cand(2.0, 10.0, str(tmp_path / "a")), _cand(1.0, 20.0, str(tmp_path / "b")),
               _cand(3.0, 12.0, str(tmp_path / "x")))
    q = _quality(tmp_path, [a, b, x], {"a": 1.5, "b": 2.0, "x": 1.95})
    assert choose([a, b, x], q, DEN, PREFER) is x
    assert a.cost_pareto and b.cost_pareto and not x.cost_pareto and a.accepted is False


def test_choose_scores_files_of_equal_cost_and_keeps_the_better(tmp_path: Path):
    a, b, c = (_cand(1.0, 10.0, str(tmp_path / "a")), _cand(1.0, 10.0, str(tmp_path / "b")),
               _cand(3.0, 30.0, str(tmp_path / "c")))
    q = _quality(tmp_path, [a, b, c], {"a": 1.95, "b": 2.05, "c": 2.1})
    assert choose([a, b, c], q, DEN, PREFER) is b   # b ties a on cost; scored too, better PESQ
    assert sorted(q.scorer.calls) == ["a", "b"]        # c costs more: never scored


def test_fronts_keep_quality_cost_trade_offs(tmp_path: Path):
    cands = [_cand(1.0, 10.0, str(tmp_path / "a")), _cand(2.0, 20.0, str(tmp_path / "b")),
             _cand(3.0, 30.0, str(tmp_path / "c"))]
    q = _quality(tmp_path, cands, {"a": 1.5, "b": 2.1, "c": 2.0})
    q.score([c.file for c in cands])
    mark_fronts(cands, DEN, q.bound, q.ref, PREFER)
    assert [c.fronts for c in cands] == [["latency", "energy"], ["latency", "energy"], []]


def test_quality_cache_scores_each_file_once(tmp_path: Path):
    calls = []

    def compute():
        calls.append(1)
        return {"pesq": 2.0, "stoi": 0.9}

    cache = QualityCache(tmp_path / "q.json")
    assert cache.get("sha", "pairs", compute)["pesq"] == 2.0
    again = QualityCache(tmp_path / "q.json")
    assert again.get("sha", "pairs", compute)["stoi"] == 0.9
    assert len(calls) == 1 and again.scored == 0
    again.get("sha", "other-pairs", compute)
    assert len(calls) == 2


def test_cli_negative_budget(cli):
    code, _, err = cli("search", "--budget-ms", "-1")
    assert code != 0 and "--budget-ms must be a positive number" in err
    code, _, err = cli("search", "--budget-l2-kb", "0")
    assert code != 0 and "--budget-l2-kb must be a positive number" in err


def test_cli_options_of_the_other_family_are_refused(cli):
    code, _, err = cli("search", "--max-accuracy-loss", "1")
    assert code == 2 and "--max-accuracy-loss is for keyword spotting" in err
    code, _, err = cli("search", "--family", "kws", "--max-pesq-loss", "0.1", "--pairs", "x")
    assert code == 2 and "--max-pesq-loss, --pairs are for denoisers" in err


def test_cli_also_of_the_other_family_is_refused(cli, tmp_path: Path):
    from tfdenoise.pretrained import kws_checkpoint

    code, _, err = cli("search", "--also", kws_checkpoint(), "-o", tmp_path / "s")
    assert code != 0 and "is a kws checkpoint; this search is over denoiser models" in err
    assert not (tmp_path / "s" / "cache").exists()


def test_pairs_scorer_checks_its_inputs(tmp_path: Path):
    with pytest.raises(InputError, match="no such folder"):
        PairsScorer(tmp_path / "nope")
    (tmp_path / "noisy").mkdir()
    with pytest.raises(InputError, match="not a noisy/clean pairs folder"):
        PairsScorer(tmp_path)
    for jobs in (0, -2):
        with pytest.raises(InputError, match="--jobs must be a whole number >= 1"):
            PairsScorer(None, jobs)
    assert PairsScorer(None, 2).jobs == 2                     # the bundled pairs


@pytest.mark.parametrize("argv, message", [(("--pairs", "{tmp}/nope"), "no such folder"),
                                           (("--jobs", "0"), "--jobs must be a whole number >= 1")])
def test_cli_bad_pairs_or_jobs_fail_before_any_work(cli, tmp_path: Path, argv, message):
    code, _, err = cli("search", *(a.format(tmp=tmp_path) for a in argv), "-o", tmp_path / "s")
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("where", ["out", "cache", "pairs"])
def test_cli_outputs_inside_an_input_folder_are_refused(cli, tmp_path: Path, checkpoint: Path, where):
    pairs = make_pairs(tmp_path / "pairs", n=1, seconds=0.2)
    inside = {"out": ("-o", checkpoint / "s"), "cache": ("-o", tmp_path / "s", "--cache", checkpoint / "cache"),
              "pairs": ("-o", pairs / "s")}[where]
    code, _, err = cli("search", checkpoint, "--pairs", pairs, *inside)
    assert code != 0 and "lies inside the input folder" in err
    assert not (checkpoint / "s").exists() and not (checkpoint / "cache").exists()
    assert not (pairs / "s").exists() and not (tmp_path / "s").exists()


def _no_choice_result(tmp_path: Path) -> dict:
    """A search result that chose nothing: one scored candidate that fails the bound."""
    from dataclasses import asdict

    c = _cand(1.0, 10.0, str(tmp_path / "a.tflite"), decision_ms=1.0, decision_energy_uj=10.0, rho_l3=0.0)
    c.quality, c.accepted = {"pesq": 1.5, "stoi": 0.9}, False
    ref = {"model": "m", "recipe": "mixed", "file": c.file, "quality": {"pesq": 2.0, "stoi": 0.9},
           "limits": {"pesq": (">=", 1.97)}}
    return {"family": "denoiser", "checkpoint": "m", "target": "gap9", "sources": [
                {"label": "m", "path": "m", "kind": "model", "qat_bits": None, "prune": None}],
            "budgets": asdict(Budgets()), "cost_keys": ["latency_ms", "energy_uj"], "prefer": list(PREFER),
            "quality_data": "fake", "reference": ref, "recipes": {"m": [{"name": "mixed"}]}, "repeats": {},
            "skipped": {}, "scored_now": 0, "candidates": [asdict(c)], "chosen": None,
            "seconds": {"export": 0, "price": 0, "score": 0, "total": 0}}


def test_a_run_that_chooses_nothing_removes_stale_chosen_files(tmp_path: Path):
    out = tmp_path / "s"
    stale = [out / n for n in ("chosen.json", "chosen.tflite", "chosen.gap9.md", "chosen.gap9.html",
                               "chosen.stm32f767.json")]
    for f in stale:
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text("from an earlier run")
    (out / "notes.md").write_text("kept")
    paths = write_outputs(_no_choice_result(tmp_path), out)
    assert not any(f.exists() for f in stale)
    assert (out / "notes.md").is_file() and set(paths) == {"candidates", "markdown", "png"}
    assert "No candidate meets the budgets" in (out / "pareto.md").read_text()


@pytest.mark.slow
def test_search_end_to_end(checkpoint: Path, tmp_path: Path):
    from tfdenoise.models import TinyDenoiser, save_checkpoint

    pairs = make_pairs(tmp_path / "pairs", n=1, seconds=0.5)
    other = save_checkpoint(TinyDenoiser("gru128", seed=3), tmp_path / "runs" / "other" / "best")
    out = tmp_path / "s"
    kw = dict(board="gap9", out_dir=out, bound=QualityBound(DEN, max_pesq_loss=5.0), groups=TWO,
              policies=("layer-order", "none"), scorer=PairsScorer(pairs), also=[str(other.parent)])
    result = search(checkpoint, **kw)
    assert len(result["candidates"]) == 2 * 7 * 2 * 2 * 2     # checkpoints x recipes (4, 3 also @asym) x policies x L3 x vdd
    assert {c["model"] for c in result["candidates"]} == {checkpoint.name, "other"}
    assert result["scored_now"] >= 1 and result["chosen"] is not None
    scored = [c for c in result["candidates"] if c["quality"] is not None]
    assert all(c["within_budget"] or c["file"] == result["reference"]["file"] for c in scored)
    (out / "chosen.stm32f767.md").parent.mkdir(parents=True, exist_ok=True)
    (out / "chosen.stm32f767.md").write_text("another board's report, from an earlier run")
    paths = write_outputs(result, out)
    assert not (out / "chosen.stm32f767.md").exists() and (out / "chosen.gap9.md").is_file()
    for name in ("candidates.json", "pareto.md", "pareto.png", "chosen.json", "chosen.tflite"):
        assert (out / name).is_file(), name
    assert "report_json" in paths and json.loads((out / "chosen.json").read_text())["layers"]
    md = (out / "pareto.md").read_text()
    assert "## Pareto front: quality vs energy" in md and "## Pareto front: quality vs latency" in md
    again = search(checkpoint, **kw)                            # exports and scores are cached
    assert again["scored_now"] == 0 and again["chosen"] == result["chosen"]
    # a memory budget below every file's L2 plan drops everything, naming the reason
    low = search(checkpoint, **kw, budgets=Budgets(l2_kb=1))
    assert low["chosen"] is None and low["scored_now"] == 0
    assert all(c["reasons"] == ["over --budget-l2-kb"] for c in low["candidates"])
    shutil.rmtree(out / "cache")
