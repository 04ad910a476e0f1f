"""tfdenoise search over keyword spotters (issue 20): KWS recipes, --also QAT and pruned
checkpoints, accuracy / FRR bounds, memory budgets, caches, and the scorer against
``kws evaluate``'s library code, on a tiny 3-class DNN and synthetic clips."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import synth_speech, write_wav
from tfdenoise.converters.recipe import parse
from tfdenoise.search import Budgets, QualityBound, search
from tfdenoise.search_space import KWS_GRANULARITY, kws_recipes, qat_recipes
from tfdenoise.vocab import ModelFamily

KWS = ModelFamily.KWS
LABELS = ["a", "b", "c"]
DNN_LAYERS = ("fc_0", "fc_1", "fc_2", "logits", "probs")
#: Enough recipes to cover the three kinds of file (fp32, int8, int8 + fp32 softmax) and a QAT one.
ONLY = ("int8", "int8+fp32-softmax", "qat4+fp32-softmax")


def test_kws_recipes_are_what_the_converter_makes():
    recipes = kws_recipes()
    assert [r["name"] for r in recipes][0] == "fp32" and len(recipes) == 1 + 2 * len(KWS_GRANULARITY)
    for r in recipes:
        prec = {k: v.value for k, v in parse(r).resolve(DNN_LAYERS).items()}
        core = {v for k, v in prec.items() if k != "probs"}
        assert core in ({"fp32"}, {"int8"}) and r["family"] == "kws"
        assert prec["probs"] == ("fp32" if r["name"] == "fp32" or r["name"].endswith("fp32-softmax") else "int8")
    qat = qat_recipes(KWS, {"fc_0": 4, "fc_1": 4, "fc_2": 4, "logits": 4})
    assert [r["name"] for r in qat] == ["qat4", "qat4+fp32-softmax"]
    assert parse(qat[1]).resolve_bits(DNN_LAYERS)["fc_1"] == 4


@pytest.fixture(scope="module")
def kws_runs(tmp_path_factory) -> dict[str, Path]:
    """The model searched, a 4-bit QAT run and a 50 %-pruned run (3 classes), and a clips
    folder: one test clip (index 0) and three training clips per label."""
    from test_qat_export import _kws_qat_checkpoint  # tests/ is on the path (pytest.ini)

    from tfdenoise.kws.models import KwsModel, save_kws_checkpoint

    root = tmp_path_factory.mktemp("kws_search")
    model = KwsModel("dnn", labels=LABELS, seed=0)
    main = save_kws_checkpoint(model, root / "kws_tiny" / "best")
    _kws_qat_checkpoint(root / "qat4" / "best", 4)
    layer = model.model.get_layer("fc_0")
    kernel, bias = layer.get_weights()
    kernel[np.abs(kernel) < np.median(np.abs(kernel))] = 0.0
    layer.set_weights([kernel, bias])
    pruned = save_kws_checkpoint(model, root / "pruned" / "best",
                                 {"prune": {"method": "unstructured", "target": 0.5}})
    clips = root / "clips"
    for i, label in enumerate(LABELS):
        for index in (0, 5, 6, 7):  # indices 0-4 are FSDD's test split
            write_wav(clips / f"{label}_spk_{index}.wav", synth_speech(0.6, seed=10 * i + index))
    return {"main": main, "qat": root / "qat4", "pruned": pruned.parent, "clips": clips}


def _scorer(clips: Path):
    from tfdenoise.kws.evaluate import EvalRequest
    from tfdenoise.search_kws import KwsScorer

    return KwsScorer(EvalRequest(data=str(clips), noise=None, hours=0.02, seed=1))


@pytest.fixture(scope="module")
def searched(kws_runs, tmp_path_factory):
    out = tmp_path_factory.mktemp("kws_search_out")
    kw = dict(family="kws", board="gap9", out_dir=out, also=[str(kws_runs["qat"]), str(kws_runs["pruned"])],
              bound=QualityBound(KWS, max_accuracy_loss=100.0, max_frr_increase=1000.0),
              scorer=_scorer(kws_runs["clips"]), calib_data=str(kws_runs["clips"]),
              policies=("layer-order", "none"), only=ONLY)
    main = str(kws_runs["main"].parent)
    return search(main, **kw), kw, out, main


@pytest.mark.slow
def test_kws_search_covers_also_checkpoints_and_writes_outputs(searched, kws_runs):
    from tfdenoise.search_output import write_outputs

    result, _, out, _ = searched
    assert result["family"] == "kws" and result["reference"]["recipe"] == "fp32"
    kinds = {s["label"]: s["kind"] for s in result["sources"]}
    assert kinds == {"kws_tiny": "model", "qat4": "qat", "pruned": "pruned"}
    files = {(c["model"], c["recipe"]) for c in result["candidates"]}
    assert files == {("kws_tiny", "fp32"), ("kws_tiny", "int8"), ("kws_tiny", "int8+fp32-softmax"),
                     ("qat4", "qat4+fp32-softmax"), ("pruned", "int8"), ("pruned", "int8+fp32-softmax")}
    assert len(result["candidates"]) == 6 * 2 * 2 * 2           # files x policies x L3 x operating points
    pruned = [c for c in result["candidates"] if c["model"] == "pruned"]
    assert all(c["sparsity"] > 0.3 for c in pruned)              # fc_0 (most weights) is half zeros
    assert result["chosen"] is not None and result["scored_now"] >= 2
    q = result["reference"]["quality"]
    assert 0 <= q["accuracy"] <= 1 and q["n"] == 3 and q["frr_1fa"] is not None
    paths = write_outputs(result, out)
    chosen = json.loads(paths["chosen_json"].read_text())
    assert chosen["family"] == "kws" and chosen["deployment"]["target"] == "gap9"
    assert "FRR @ 1 FA/h" in paths["markdown"].read_text() and paths["png"].is_file()


@pytest.mark.slow
def test_kws_search_respects_budgets_and_reuses_its_caches(searched):
    result, kw, _, main = searched
    param_kb = 300.0  # the fp32 file (about 990 kB of parameters) is over, the int8 ones (250 kB) within
    again = search(main, **{**kw, "budgets": Budgets(param_kb=param_kb)})
    assert again["scored_now"] == 0                               # every file was exported and scored before
    within = [c for c in again["candidates"] if c["within_budget"]]
    over = [c for c in again["candidates"] if not c["within_budget"]]
    assert within and all(c["cost"]["param_bytes"] <= param_kb * 1024 for c in within)
    assert over and all(c["recipe"] == "fp32" and c["reasons"] == ["over --budget-param-kb"] for c in over)
    assert again["candidates"][again["chosen"]]["recipe"] != "fp32"
    strict = search(main, **{**kw, "bound": QualityBound(KWS, max_accuracy_loss=0.0, max_frr_increase=0.0)})
    ch = strict["candidates"][strict["chosen"]]                   # the fp32 reference always meets it
    ref = strict["reference"]["quality"]
    assert ch["quality"]["accuracy"] >= ref["accuracy"] and ch["quality"]["frr_1fa"] <= ref["frr_1fa"] + 1e-9


@pytest.mark.slow
def test_kws_scorer_matches_kws_evaluate(searched, kws_runs):
    from tfdenoise.kws.evaluate import EvalRequest
    from tfdenoise.kws_evaluate import evaluate_kws

    result, _, _, _ = searched
    scorer = _scorer(kws_runs["clips"])
    for c in {c["file"]: c for c in result["candidates"]}.values():
        if "+fp32-softmax" not in c["recipe"]:
            continue
        ours = scorer(Path(c["file"]))
        theirs = evaluate_kws(c["file"], EvalRequest(data=str(kws_runs["clips"]), noise=None, hours=0.02, seed=1))
        assert ours["accuracy"] == theirs["accuracy"]
        assert ours["frr_at_fa_per_hour"] == theirs["det"]["frr_at_fa_per_hour"]


def test_cli_kws_search_refuses_a_denoiser_also(cli, tmp_path: Path, checkpoint: Path):
    code, _, err = cli("search", "--family", "kws", "--also", checkpoint, "-o", tmp_path / "s",
                       "--data", tmp_path)
    assert code == 2 and "is a denoiser checkpoint; this search is over kws models" in err
    assert not (tmp_path / "s").exists()
