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
from tfdenoise.search_space import (KWS_GRANULARITY, Source, export_files, kws_recipes, qat_recipes, recipes_for,
                                   skipped_recipes)
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


def _config_only(folder: Path, name: str, data: Path | None = None) -> Path:
    """A KWS checkpoint folder with only its config.json (enough for recipes and defaults)."""
    from tfdenoise.kws.features import feature_summary
    from tfdenoise.kws.layertable import get_spec

    folder.mkdir(parents=True)
    config = {"family": "kws", "name": name, "n_classes": 3, "labels": LABELS,
              "features": feature_summary(get_spec(name).features),
              **({"training": {"data": str(data)}} if data is not None else {})}
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def _clips(folder: Path, n: int = 1) -> Path:
    for i, label in enumerate(LABELS):
        for index in range(n):
            write_wav(folder / f"{label}_spk_{index}.wav", synth_speech(0.3, seed=10 * i + index))
    return folder


def test_per_tensor_recipes_are_skipped_without_conv_layers(tmp_path: Path):
    dnn = Source("dnn", str(_config_only(tmp_path / "dnn", "dnn")), "model")
    cnn = Source("cnn", str(_config_only(tmp_path / "cnn", "cnn")), "model")
    names = {s.label: [r["name"] for r in recipes_for(s, KWS)] for s in (dnn, cnn)}
    assert names["cnn"] == [r["name"] for r in kws_recipes()] and skipped_recipes(cnn, KWS) == {}
    assert skipped_recipes(dnn, KWS) == {"int8/per-tensor": "int8",
                                         "int8/per-tensor+fp32-softmax": "int8+fp32-softmax"}
    assert names["dnn"] == [n for n in names["cnn"] if "per-tensor" not in n] and len(names["dnn"]) == 5
    assert skipped_recipes(Source("q", dnn.path, "qat", {"fc_0": 4}), KWS) == {}  # QAT: no granularities


def test_kws_export_key_holds_the_calibration_data(tmp_path: Path):
    from tfdenoise.search_kws import calibration_digest, calibration_folder

    one, two = _clips(tmp_path / "one"), _clips(tmp_path / "two")
    assert calibration_digest(one) != calibration_digest(two)          # same files, another folder
    before = calibration_digest(one)
    write_wav(one / "a_spk_9.wav", synth_speech(0.3, seed=99))
    assert calibration_digest(one) != before                           # a clip more
    ckpt = _config_only(tmp_path / "ckpt", "dnn", data=two)
    assert calibration_folder(ckpt, None) == str(two) and calibration_folder(ckpt, str(one)) == str(one)
    src = Source("dnn", str(ckpt), "model")
    calls = []

    def exporter_for(_source):
        return lambda recipe, out: (calls.append(out.name), out.write_bytes(recipe.read_bytes()))

    jobs = [(src, r) for r in kws_recipes()[:2]]                        # fp32, int8
    first, _ = export_files(jobs, tmp_path / "cache", exporter_for, lambda s: calibration_digest(one))
    second, _ = export_files(jobs, tmp_path / "cache", exporter_for, lambda s: calibration_digest(two))
    assert first[0].path == second[0].path                              # fp32 calibrates on nothing
    assert first[1].path != second[1].path and len(calls) == 3          # int8: exported again


def test_default_scorer_reads_the_options_or_the_checkpoint_data(tmp_path: Path):
    from tfdenoise.search import default_scorer
    from tfdenoise.search_kws import KwsScorer

    clips = _clips(tmp_path / "clips")
    ckpt = _config_only(tmp_path / "ckpt", "dnn", data=clips)
    scorer = default_scorer(KWS, str(tmp_path / "cache"), data=str(clips), noise=None, hours=0.5)
    assert isinstance(scorer, KwsScorer) and scorer.request.hours == 0.5 and scorer.request.data == str(clips)
    assert default_scorer(KWS, str(tmp_path / "cache"), checkpoint=ckpt, hours=0).request.data == str(clips)


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
def test_per_tensor_dnn_file_differs_only_in_metadata(kws_runs, tmp_path: Path):
    """What skipped_recipes rests on: a DNN's int8 file at per-tensor granularity is the default
    granularity's file but for the metadata naming it."""
    from tfdenoise.converters import fbgraph
    from tfdenoise.fileio import write_json
    from tfdenoise.search_kws import kws_exporter

    def without_metadata(path: Path) -> bytes:
        m = fbgraph.load(path.read_bytes())
        ours = [md for md in m.metadata if md.name in (b"tfdenoise", "tfdenoise")]
        assert [md.buffer for md in ours] == [len(m.buffers) - 1]       # converters.metadata.attach
        m.buffers.pop()
        m.metadata = [md for md in m.metadata if md not in ours]
        return fbgraph.dump(m)

    export = kws_exporter(kws_runs["main"], str(kws_runs["clips"]), None)
    files = {}
    for r in kws_recipes()[1:4]:                                         # int8 at the three granularities
        files[r["name"]] = tmp_path / f"{r['name'].replace('/', '_')}.tflite"
        export(write_json(tmp_path / f"{r['name'].replace('/', '_')}.json", r), files[r["name"]])
    raw = {k: v.read_bytes() for k, v in files.items()}
    assert raw["int8"] != raw["int8/per-tensor"]                        # the metadata string differs
    assert without_metadata(files["int8"]) == without_metadata(files["int8/per-tensor"])
    assert without_metadata(files["int8"]) != without_metadata(files["int8/per-channel"])


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
