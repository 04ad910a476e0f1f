"""KWS export (tfdenoise.converters.kws): FP32 == Keras, full INT8 agrees and is small, metadata,
the LiteRT runner in the streaming loop, the MCU report with feature extraction per hop on four
boards, and the CLI.

Every network has seeded random weights whose logits layer is scaled so that the probabilities
are spread (a random network is otherwise near-uniform and its top-1 class a coin toss).  INT8
is calibrated on feature windows of synthetic speech, or of FSDD training clips when
../shared/data/kws/fsdd is present, and checked on held-out windows of both kinds.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import synth_speech, write_wav

from tfdenoise.converters.kws import compare_kws, export_kws, training_windows
from tfdenoise.converters.kws_convert import deploy_layers, kws_recipe, resolve_precision
from tfdenoise.converters.kws_runner import TFLiteKws
from tfdenoise.converters.metadata import read_metadata
from tfdenoise.converters.recipe import builtin_names, load as load_recipe, parse
from tfdenoise.errors import InputError, RecipeError
from tfdenoise.kws.features import feature_fields, features as compute_features, mel_filterbank
from tfdenoise.kws.models import KwsModel, save_kws_checkpoint
from tfdenoise.targets import analyze
from tfdenoise.targets.boards import load_board
from tfdenoise.targets.features import feature_cost, fc_rate, kws_features, mel_weights
from tfdenoise.targets.report import to_json, to_markdown

NAMES = ("dnn", "cnn", "dscnn")
BOARDS = ("gap9", "stm32f746", "stm32l476", "stm32f767")
FSDD = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "kws" / "fsdd"
LABELS = [str(d) for d in range(10)]
#: Networks whose INT8 file must be at least 3.5x smaller than FP32.  The DS-CNN has 22 k
#: parameters: its weights shrink 4x, but the fixed flatbuffer structure and the per-channel
#: quantization parameters (a float scale + an int64 zero point per channel, for the weights
#: and the biases of 9 conv layers) weigh as much as a third of its INT8 weights.
SIZE_3_5X = ("dnn", "cnn")


def synthetic_windows(model: KwsModel, n: int, seed: int) -> np.ndarray:
    """Feature windows of speech-like signals at random levels plus a little noise."""
    rng = np.random.default_rng(seed)
    cfg = model.features
    out = []
    for i in range(n):
        x = synth_speech(cfg.window_samples / 16000 + 0.01, seed=seed * 1000 + i)[:cfg.window_samples]
        x = x * 10 ** rng.uniform(-1.5, 0.8) + 10 ** rng.uniform(-4, -2) * rng.standard_normal(len(x))
        out.append(compute_features(x.astype(np.float32), cfg))
    return np.stack(out).astype(np.float32)


def decisive(model: KwsModel, windows: np.ndarray, spread: float = 3.0) -> KwsModel:
    """Scale the logits layer so that the logits over ``windows`` have a std of ``spread``."""
    from tfdenoise.keras import keras

    head = keras.Model(model.model.input, model.model.get_layer("logits").output)
    std = float(np.std(np.asarray(head(windows, training=False))))
    kernel, bias = model.model.get_layer("logits").get_weights()
    model.model.get_layer("logits").set_weights([kernel * (spread / max(std, 1e-12)), bias])
    return model


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Per network: the model, its check windows and its FP32 and INT8 exports."""
    folder = tmp_path_factory.mktemp("kws_export")
    out = {}
    for i, name in enumerate(NAMES):
        model = KwsModel(name, labels=LABELS, seed=i)
        calib = synthetic_windows(model, 32, seed=1)
        held_out = synthetic_windows(model, 48, seed=2)
        fsdd_calib = fsdd_test = None
        if FSDD.is_dir():
            wins, _ = training_windows(FSDD, model.features, limit=96, cache_dir=folder / "cache")
            fsdd_calib, fsdd_test = wins[:48], wins[48:]
            calib = np.concatenate([calib, fsdd_calib])
        decisive(model, np.concatenate([calib, held_out]))
        fp32 = export_kws(model, folder / f"{name}.fp32.tflite", "fp32", calib, random_weights=True)
        int8 = export_kws(model, folder / f"{name}.int8.tflite", "int8", calib, random_weights=True,
                          calib_source="test windows")
        out[name] = {"model": model, "held_out": held_out, "fsdd_test": fsdd_test,
                     "fp32": fp32, "int8": int8}
    return out


# -- conversion -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_fp32_equals_keras(exports, name):
    e = exports[name]
    assert e["fp32"].check.max_abs <= 1e-5
    got = TFLiteKws(e["fp32"].path).predict_windows(e["held_out"])
    ref = e["model"].predict_windows(e["held_out"])
    assert np.abs(got - ref).max() <= 1e-5
    assert np.std(ref.max(axis=1)) > 0.01  # the decisive model really decides
    assert e["fp32"].warnings == (e["fp32"].warnings[0],) and "RANDOM" in e["fp32"].warnings[0]


@pytest.mark.parametrize("name", NAMES)
def test_int8_agrees_with_keras_and_is_small(exports, name):
    e = exports[name]
    held = compare_kws(e["model"], e["int8"].path, e["held_out"])
    assert held.top1_agreement >= 0.9, held
    assert e["int8"].check.top1_agreement >= 0.9
    if e["fsdd_test"] is not None:
        real = compare_kws(e["model"], e["int8"].path, e["fsdd_test"])
        assert real.top1_agreement >= 0.9, real
    fp32, int8 = e["fp32"], e["int8"]
    assert int8.param_bytes * 3.5 <= fp32.param_bytes  # the weights shrink ~4x
    if name in SIZE_3_5X:
        assert int8.file_bytes * 3.5 <= fp32.file_bytes, (int8.file_bytes, fp32.file_bytes)
    else:
        assert int8.file_bytes * 2 <= fp32.file_bytes, (int8.file_bytes, fp32.file_bytes)


@pytest.mark.parametrize("name", NAMES)
def test_metadata(exports, name):
    e = exports[name]
    model = e["model"]
    kernels, _ = deploy_layers(model)
    for prec in ("fp32", "int8"):
        data = e[prec].path.read_bytes()
        meta = read_metadata(data)
        assert meta["format"] == 1 and meta["family"] == "kws" and meta["model"] == name
        assert meta["precision"] == prec and meta["random_weights"] is True
        assert "variant" not in meta
        assert meta["labels"] == LABELS
        assert meta["features"] == feature_fields(model.features)
        f = model.features
        assert meta["hop_ms"] == pytest.approx(1000 * f.hop / f.sample_rate)
        assert [(la["name"], la["kind"]) for la in meta["layers"]] == [(n, k.value) for n, k in kernels]
        assert all(la["precision"] == prec for la in meta["layers"])
        ops = sorted(o for la in meta["layers"] for o in la["ops"])
        assert ops == list(range(len(e[prec].ops)))  # every operator in exactly one layer
        assert meta["param_bytes"] == sum(la["param_bytes"] for la in meta["layers"])
        (inp,), (out,) = meta["inputs"], meta["outputs"]
        assert inp["name"] == "features" and inp["shape"] == [1, f.window_frames, f.n_features]
        assert out["name"] == "probs" and out["shape"] == [1, len(LABELS)]
        if prec == "int8":
            assert inp["dtype"] == out["dtype"] == "int8" and inp["scale"] > 0 and out["scale"] > 0
            assert meta["calibration"]["method"] == "minmax" and meta["calibration"]["windows"] > 0
            assert meta["calibration"]["source"] == "test windows"
        else:
            assert inp["dtype"] == "float32" and meta["calibration"] is None
    kinds = {la["kind"] for la in read_metadata(e["int8"].path.read_bytes())["layers"]}
    assert kinds == {"dnn": {"dense", "softmax"}, "cnn": {"conv", "dense", "softmax"},
                     "dscnn": {"conv", "depthwise_conv", "pool", "dense", "softmax"}}[name]


def test_weight_scales_per_channel_in_convolutions_only(exports, tmp_path):
    """kws_int8: a scale per output channel for conv / depthwise weights, one per dense tensor."""
    from tfdenoise.converters import fbgraph

    for name in NAMES:
        m = fbgraph.load(exports[name]["int8"].path.read_bytes())
        sg = m.subgraphs[0]
        for op in sg.operators:
            kind = fbgraph.op_name(m, op)
            if kind in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"):
                w = sg.tensors[op.inputs[1]]
                channels = w.shape[-1] if kind == "DEPTHWISE_CONV_2D" else w.shape[0]
                assert len(w.quantization.scale) == (1 if kind == "FULLY_CONNECTED" else channels)
        assert "per-tensor dense" in read_metadata(exports[name]["int8"].path.read_bytes())[
            "calibration"]["weights"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"family": "kws", "layers": [{"pattern": ".*", "precision": "int8"}],
                               "per_channel": "dense"}))
    with pytest.raises(RecipeError, match="per_channel"):
        from tfdenoise.converters.kws_convert import convert_kws

        convert_kws(exports["dnn"]["model"], str(bad), exports["dnn"]["held_out"][:2])


def test_runner_streams_like_keras(exports):
    """TFLiteKws in the streaming loop (KwsStream): one decision per frame once the window is full."""
    e = exports["cnn"]
    model, run = e["model"], TFLiteKws(e["int8"].path)
    assert run.labels == LABELS and run.features == model.features and run.precision == "int8"
    assert run.input.scale > 0 and run.input.dtype == np.int8
    x = synth_speech(1.6, seed=5)
    feats = compute_features(x, model.features)
    offline = run.offline_probs(feats)
    stream = run.stream()
    streamed = [p for p in (stream(f) for f in feats) if p is not None]
    assert len(streamed) == len(offline) == len(feats) - model.window_frames + 1
    assert np.allclose(np.stack(streamed), offline)
    assert np.allclose(offline.sum(axis=1), 1.0, atol=0.02)
    ref = model.offline_probs(feats)
    assert np.mean(offline.argmax(1) == ref.argmax(1)) >= 0.9
    with pytest.raises(InputError, match=r"expects windows \[n, 30, 40\]"):
        run.predict_windows(np.zeros((2, 49, 10)))


def test_runner_refuses_a_denoiser_file(tmp_path, exports):
    from tfdenoise.errors import ModelError

    with pytest.raises(ModelError, match="not a tfdenoise keyword-spotting model"):
        TFLiteKws(Path(__file__).resolve().parents[2] / "tfdenoise" / "pretrained" / "gru128" / "tflite"
                  / "gru128_fp32.tflite")


def test_recipes():
    # the denoiser's precisions, and its QAT recipes (docs/design.md §8)
    assert builtin_names() == ["fp16", "fp32", "int8", "int8_asym", "mixed", "qat8", "qat_rnn4"]
    assert {"kws_fp32", "kws_int8"} <= set(builtin_names(None))
    assert builtin_names("kws") == ["kws_fp32", "kws_int8", "kws_int8_float_softmax", "kws_qat4"]
    for prec in ("fp32", "int8"):
        r = kws_recipe(prec)
        assert r.family == "kws" and r.name == f"kws_{prec}" and "whole model" in r.description
        assert load_recipe(f"kws_{prec}") == r
    model = KwsModel("dnn", 3, seed=0)
    assert resolve_precision(kws_recipe("int8"), model) == "int8"
    with pytest.raises(RecipeError, match="whole-model fp32 or int8"):
        resolve_precision(load_recipe("fp16"), model)
    with pytest.raises(RecipeError, match="'rnn_.*' matches no layer .*fc_0, fc_1, fc_2, logits, probs"):
        resolve_precision(load_recipe("mixed"), model)
    with pytest.raises(RecipeError, match="whole-model fp32 or int8"):
        resolve_precision(parse({"layers": [{"pattern": "fc_0", "precision": "fp32"},
                                            {"pattern": ".*", "precision": "int8"}]}), model)
    for cal, got in (({"method": "std3"}, "std3"), ({"ranges": "asymmetric"}, "asymmetric ranges")):
        with pytest.raises(RecipeError, match=f"min/max .*, not {got}$"):
            resolve_precision(parse({"layers": [{"pattern": ".*", "precision": "int8"}], "calibration": cal}), model)
    with pytest.raises(RecipeError, match="matches no layer"):
        resolve_precision(parse({"layers": [{"pattern": "rnn_.*", "precision": "int8"},
                                            {"pattern": ".*", "precision": "int8"}]}), model)
    with pytest.raises(RecipeError, match="no such KWS recipe"):
        kws_recipe("mixed")
    with pytest.raises(RecipeError, match="family"):
        parse({"family": "vision", "layers": [{"pattern": ".*", "precision": "int8"}]})
    with pytest.raises(InputError, match="needs calibration windows"):
        from tfdenoise.converters.kws_convert import convert_kws

        convert_kws(model, "int8", None)


# -- MCU report -------------------------------------------------------------------------------------

@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("name", NAMES)
def test_report_prices_features_on_every_board(exports, name, board):
    e = exports[name]
    f = e["model"].features
    r = analyze(e["int8"].path, board=board)
    j = to_json(r)
    assert j["hop_ms"] == pytest.approx(1000 * f.hop / f.sample_rate)  # the feature hop, not 6.25 ms
    assert j["feature_cycles"] > 0 and j["feature_ms"] > 0
    assert j["features"]["kind"] == f.kind.value and j["features"]["n_fft"] == f.n_fft
    assert j["decision_ms"] == pytest.approx(j["latency_ms"] + j["feature_ms"], abs=2e-4)
    assert j["realtime_ok"] == (j["fits"] and r.decision_ms <= j["hop_ms"])
    assert j["realtime_margin_ms"] == pytest.approx(j["hop_ms"] - j["decision_ms"], abs=2e-4)
    # only CNN layers a board has no kernel for are generic estimates, each with its warning
    # (gap9 prices them all: targets/cnn_kernels.py)
    generic = {la["name"] for la in j["layers"] if la["estimate"]}
    cnn = {la["name"] for la in read_metadata(e["int8"].path.read_bytes())["layers"]
           if la["kind"] in ("conv", "depthwise_conv", "pool", "softmax")}
    assert generic <= cnn and (board != "gap9" or not generic)
    for layer in cnn:
        warned = any(w.startswith(f"layer {layer} (") and "generic estimate" in w for w in j["warnings"])
        assert warned == (layer in generic)
    md = to_markdown(r)
    assert "| feature extraction per hop |" in md and "feature hop" in md and "per decision" in md
    assert j["total_cycles"] == sum(la["cycles"] for la in j["layers"])  # features are not a layer
    json.dumps(j)


def test_feature_extraction_formula():
    """targets/features.py by hand on the STM32F746 for the CNN's log-mel and the DS-CNN's MFCC."""
    from tfdenoise.kws.features import CNN_FEATURES, DSCNN_FEATURES

    board = load_board("stm32f746")
    op = board.operating_points[0]
    for fc in (CNN_FEATURES, DSCNN_FEATURES):
        cfg, why = kws_features({"family": "kws", "features": feature_fields(fc)})
        assert why is None
        nonzero = int(np.count_nonzero(mel_filterbank(fc)))
        assert mel_weights(cfg) == nonzero
        macs = fc.frame + 2 * fc.n_bins + nonzero + (fc.n_mels * fc.n_mfcc if fc.kind == "mfcc" else 0)
        # Cortex-M7 FP32 dense loop: one VFMA.F32 per MAC on one accumulator, each waiting for the
        # previous one (3 cycles, core file vfma_latency), at the core's calibrated efficiency
        rate = board.c("core.efficiency") / board.c("core.vfma_latency")
        assert rate == pytest.approx(0.344 / 3)
        assert fc_rate(board) == pytest.approx(rate)
        cycles = 3.5 * fc.n_fft * math.log2(fc.n_fft) + macs / rate + fc.n_mels * 40 + 2000
        cost = feature_cost(board, op, cfg)
        assert cost.cycles == math.ceil(cycles) and cost.macs == macs
        assert cost.ms == pytest.approx(cost.cycles / 216e3)
    gap9 = load_board("gap9")  # 8 cores share the work
    cfg, _ = kws_features({"family": "kws", "features": feature_fields(CNN_FEATURES)})
    assert feature_cost(gap9, gap9.operating_points[0], cfg).fft_cycles == round(6 * 1024 * 10 / 8)


def test_bad_kws_metadata_is_a_warning_not_a_crash():
    assert kws_features({"variant": "gru128"}) == (None, None)
    cfg, why = kws_features({"family": "kws", "features": {"kind": "mfcc"}})
    assert cfg is None and "not a number" in why
    cfg, why = kws_features({"family": "kws", "features": {**feature_fields(
        KwsModel("dnn", 2).features), "f_max": 1e6}})
    assert cfg is None and "out of range" in why


def test_denoiser_reports_keep_their_hop():
    """No KWS metadata: the 6.25 ms hop and no KWS feature frame; a denoiser file prices its
    STFT / inverse STFT instead (tests/targets/test_features.py), a file of no family nothing."""
    import dataclasses

    from tfdenoise.targets import analyze_graph
    from tfdenoise.targets.reference import build_reference

    g = build_reference("gru128", "mixed")
    r = analyze_graph(g, "gap9")
    j = to_json(r)
    assert r.features.kind == "stft" and j["hop_ms"] == 6.25 and j["features"]["kind"] == "stft"
    assert "feature extraction per hop" not in to_markdown(r) and "STFT + inverse STFT per hop" in to_markdown(r)
    bare = analyze_graph(dataclasses.replace(g, metadata={}), "gap9")
    jb = to_json(bare)
    assert bare.features is None and jb["features"] is None and jb["hop_ms"] == 6.25
    assert jb["feature_cycles"] == 0 and jb["decision_ms"] == jb["latency_ms"]
    assert jb["realtime_margin_ms"] == round(6.25 - bare.schedule.latency_ms, 4)
    assert "per inference" in to_markdown(bare) and "feature extraction per hop" not in to_markdown(bare)


def test_stm32f767_board():
    b, f746 = load_board("stm32f767"), load_board("stm32f746")
    assert b.operating_points[0].freq_mhz == 216 and b.c("compute.cores") == 1
    assert b.c("memory.l2_size") == 512 * 1024 and b.l3["flash"].size == 2 * 2 ** 20
    assert "sdram" in b.l3 and b.default_l3 == "flash" and "not modelled" in b.description
    assert b.c("kernels.int8_fc_loop_cycles") == f746.c("kernels.int8_fc_loop_cycles")
    for name in BOARDS + ("gap9_flash",):
        board = load_board(name)
        for key in ("features.fft_cycles", "features.log_cycles", "features.overhead_cycles"):
            c = board.constants[key]
            assert c.value > 0 and c.unit and c.source.strip()


# -- CLI --------------------------------------------------------------------------------------------

@pytest.fixture
def kws_checkpoint(tmp_path):
    model = KwsModel("dnn", labels=["0", "1", "2"], seed=0)
    return save_kws_checkpoint(model, tmp_path / "kws_dnn" / "best")


@pytest.fixture
def clips(tmp_path) -> Path:
    """A tiny FSDD-style folder: labels 0-2, one test clip (index 0) and three training clips each."""
    folder = tmp_path / "clips"
    for label in ("0", "1", "2"):
        for i in (0, 5, 6, 7):  # indices 0-4 are FSDD's test split: not for calibration
            write_wav(folder / f"{label}_spk_{i}.wav", synth_speech(0.5, seed=int(label) * 10 + i))
    return folder


def test_modelref_knows_kws_checkpoints(kws_checkpoint, checkpoint):
    from tfdenoise.modelref import resolve

    ref = resolve(kws_checkpoint)
    assert ref.family == "kws" and ref.is_kws and ref.variant is None and not ref.is_tflite
    den = resolve(checkpoint)
    assert den.family == "denoiser" and not den.is_kws and den.variant == "gru128"


def test_cli_exports_a_kws_checkpoint(cli, kws_checkpoint, clips, tmp_path):
    out = tmp_path / "kws.int8.tflite"
    code, stdout, err = cli("export", kws_checkpoint, "--int8", "-o", out, "--calib-data", clips,
                            "--json", "-")
    assert code == 0, err
    j = json.loads(stdout)
    assert j["family"] == "kws" and j["model"] == "dnn" and j["precision"] == "int8"
    assert j["calibration"]["windows"] == 9 and "9 of 9 training clips" in j["calibration"]["source"]
    assert j["check"]["top1_agreement"] >= 0.0 and out.is_file()
    assert read_metadata(out.read_bytes())["labels"] == ["0", "1", "2"]


@pytest.mark.slow
def test_cli_exports_every_kws_precision(cli, kws_checkpoint, clips, tmp_path):
    code, stdout, err = cli("export", kws_checkpoint, "--all", "-o", tmp_path / "all",
                            "--calib-data", clips)
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "all").iterdir()) == ["kws_dnn_fp32.tflite",
                                                                    "kws_dnn_int8.tflite"]


def test_cli_kws_errors(cli, kws_checkpoint, tmp_path, monkeypatch):
    import tfdenoise.converters.kws as kws

    monkeypatch.setattr(kws, "DEFAULT_DATA", Path("no/such/folder"))
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("export", kws_checkpoint, "--int8", "-o", tmp_path / "k.tflite")
    assert code != 0 and "pass --calib-data DIR" in err and not (tmp_path / "k.tflite").exists()
    code, _, err = cli("export", kws_checkpoint, "--mixed", "-o", tmp_path / "k.tflite")
    assert code != 0 and "--fp32 or --int8" in err
    code, _, err = cli("export", kws_checkpoint, "--int8", "--calib", "std3", "-o", tmp_path / "k.tflite")
    assert code != 0 and "min/max" in err
    code, _, err = cli("export", kws_checkpoint, "--int8", "--ranges", "asymmetric", "-o", tmp_path / "k.tflite")
    assert code != 0 and "--ranges asymmetric is for denoisers" in err
