"""Exported files: parameter memory vs docs/design.md §4, LiteRT runs them, Keras equivalence, ops."""
from __future__ import annotations

import numpy as np
import pytest

from tfdenoise.converters import fbgraph
from tfdenoise.converters.check import TOLERANCE, compare
from tfdenoise.converters.convert import PRECISIONS, MB, convert
from tfdenoise.converters.interpreter import TFLiteDenoiser
from tfdenoise.converters.metadata import read_metadata


def _param_mb(data: bytes) -> float:
    return fbgraph.param_bytes_by_layer(fbgraph.load(data))["*"] / MB


@pytest.mark.parametrize("precision", PRECISIONS)
def test_gru128_param_memory_matches_spec(gru128_files, precision, spec_mb):
    mb = _param_mb(gru128_files[precision])
    assert mb == pytest.approx(spec_mb[precision]["gru128"], rel=0.03)


@pytest.mark.parametrize("precision", PRECISIONS)
def test_gru128_runs_and_matches_keras(gru128, gru128_files, calib_small, precision):
    res = compare(gru128, gru128_files[precision], calib_small.frames)
    assert res.frames == sum(len(f) for f in calib_small.frames)
    assert res.max_abs <= TOLERANCE[precision]


def test_fp16_mask_error_below_1e3(gru128, gru128_files, frames):
    assert compare(gru128, gru128_files["fp16"], [frames]).max_abs <= 1e-3


@pytest.mark.parametrize("precision", PRECISIONS)
def test_streaming_equals_keras_streaming(gru128, gru128_files, frames, precision):
    keras_step = gru128.streaming_mask()
    lite_step = TFLiteDenoiser(gru128_files[precision]).streaming_mask()
    diff = max(float(np.abs(keras_step(f) - lite_step(f)).max()) for f in frames)
    assert diff <= TOLERANCE[precision]


def _activation_conversions(m):
    sg = m.subgraphs[0]
    return [fbgraph.op_name(m, op) for op in sg.operators
            if fbgraph.op_name(m, op) in ("QUANTIZE", "DEQUANTIZE")
            and not fbgraph.is_constant(m, sg.tensors[op.inputs[0]])]


def _check_mixed(data: bytes) -> None:
    """RNN ops compute in INT8 with INT8 weights; every other weight is FP16."""
    m = fbgraph.load(data)
    sg = m.subgraphs[0]
    layers = fbgraph.op_layers(m)
    prod = fbgraph.producers(sg)
    for i, op in enumerate(sg.operators):
        name = fbgraph.op_name(m, op)
        if layers[i] is None or name == "DEQUANTIZE":
            continue
        consts = [sg.tensors[t] for t in op.inputs if t >= 0 and fbgraph.is_constant(m, sg.tensors[t])]
        if layers[i].startswith("rnn_"):
            assert sg.tensors[op.outputs[0]].type in (9, 7), (i, name)  # int8 / int16
            assert all(t.type in (9, 2, 7) for t in consts), (i, name)
        else:
            assert sg.tensors[op.outputs[0]].type == 0, (i, name)
            assert not any(t.type == 0 and t.shape is not None and np.prod(t.shape) > 1
                           for t in consts), (i, name)  # no FP32 weight left
            if name == "FULLY_CONNECTED":
                w = sg.operators[prod[op.inputs[1]]]
                assert fbgraph.op_name(m, w) == "DEQUANTIZE"
                assert sg.tensors[w.inputs[0]].type == 1  # float16 weights
    assert sorted(_activation_conversions(m)) == ["DEQUANTIZE", "QUANTIZE"]


def test_mixed_gru_ops_int8_in_rnn_fp16_elsewhere(gru128_files):
    _check_mixed(gru128_files["mixed"])
    meta = read_metadata(gru128_files["mixed"])
    assert {l["name"]: l["precision"] for l in meta["layers"]} == {
        "fc_in": "fp16", "rnn_0": "int8", "rnn_1": "int8", "fc_mid": "fp16", "fc_out": "fp16"}


def test_int8_is_full_integer(gru128_files):
    m = fbgraph.load(gru128_files["int8"])
    sg = m.subgraphs[0]
    for op in sg.operators:
        if fbgraph.op_name(m, op) not in ("QUANTIZE", "DEQUANTIZE"):
            assert sg.tensors[op.outputs[0]].type in (9, 7, 2)
    assert sorted(_activation_conversions(m)) == ["DEQUANTIZE", "QUANTIZE"]


def _quantize_output(data: bytes):
    """The int8 tensor the graph's input QUANTIZE op writes."""
    m = fbgraph.load(data)
    sg = m.subgraphs[0]
    op = next(o for o in sg.operators if fbgraph.op_name(m, o) == "QUANTIZE")
    return sg.tensors[op.outputs[0]].quantization


@pytest.mark.parametrize("variant", ["gru128", pytest.param("lstm128", marks=pytest.mark.slow)])
def test_asymmetric_ranges_move_the_unused_half(request, variant, calib_small, frames):
    """int8_asym: the input magnitudes keep the std3 step of [-r, r] on [0, 2 r] (zero point
    -128); the file is full INT8, runs in LiteRT and stays within the int8 tolerance of Keras."""
    model = request.getfixturevalue(variant)
    sym = convert(model, "int8", calib_small, method="std3")
    asym = convert(model, "int8_asym", calib_small)
    qs, qa = _quantize_output(sym), _quantize_output(asym)
    assert float(qa.scale[0]) == pytest.approx(float(qs.scale[0]), rel=1e-6)
    assert int(qa.zeroPoint[0]) == -128 and abs(int(qs.zeroPoint[0])) <= 1
    meta = read_metadata(asym)
    assert meta["calibration"]["ranges"] == "asymmetric" and meta["calibration"]["method"] == "std3"
    assert read_metadata(sym)["calibration"]["ranges"] == "symmetric"
    assert {la["precision"] for la in meta["layers"]} == {"int8"}
    assert compare(model, asym, [frames]).within("int8")


def test_calibrated_act_ranges_are_the_files_intervals(gru128, calib_small):
    """--qat-calib-ranges starts from the intervals an int8_asym export writes: the input's
    [0, 2 r] and each dense layer's output; a GRU layer (several ops) is left to learn."""
    from tfdenoise.converters.qat_export import calibrated_act_ranges

    got = calibrated_act_ranges(gru128, calib_small, "std3", "asymmetric")
    assert sorted(got) == ["fc_in", "fc_mid", "fc_out", "input"]
    assert got["input"][0] == 0.0 and got["fc_in"][0] == 0.0 and got["fc_out"][0] < 0.0
    q = _quantize_output(convert(gru128, "int8_asym", calib_small))
    assert float(q.scale[0]) == pytest.approx(got["input"][1] / 255.0, rel=1e-5)


def test_metadata_contract(gru128_files):
    for precision, data in gru128_files.items():
        meta = read_metadata(data)
        assert meta["format"] == 1 and meta["variant"] == "gru128"
        assert meta["precision"] == precision
        n_ops = len(fbgraph.load(data).subgraphs[0].operators)
        covered = sorted(i for l in meta["layers"] for i in l["ops"])
        covered += [c["op"] for c in meta["conversions"]]
        assert sorted(covered) == list(range(n_ops))
        assert [l["name"] for l in meta["layers"]] == ["fc_in", "rnn_0", "rnn_1", "fc_mid", "fc_out"]
        assert [l["kind"] for l in meta["layers"]] == ["dense", "gru", "gru", "dense", "dense"]
        assert meta["layers"][1]["units"] == 128
        assert [i["name"] for i in meta["inputs"]] == ["frame", "h0", "h1"]
        assert (meta["calibration"] is None) == (precision in ("fp32", "fp16"))
    assert read_metadata(gru128_files["mixed"])["calibration"]["clips"] == [
        "p286_035", "p286_166", "p287_151", "p287_269"]


def test_custom_recipe_only_rnn_1_int8(gru128, calib_small, tmp_path):
    import json

    from tfdenoise.converters.recipe import load

    path = tmp_path / "rnn1.json"
    path.write_text(json.dumps({"name": "rnn1", "layers": [
        {"pattern": "rnn_1", "precision": "int8"}, {"pattern": ".*", "precision": "fp32"}]}))
    data = convert(gru128, load(path), calib_small)
    prec = {l["name"]: l["precision"] for l in read_metadata(data)["layers"]}
    assert prec == {"fc_in": "fp32", "rnn_0": "fp32", "rnn_1": "int8", "fc_mid": "fp32",
                    "fc_out": "fp32"}
    assert compare(gru128, data, calib_small.frames[:1]).max_abs <= TOLERANCE["mixed"]


# -- LSTM and the big variants (slow: the fused-LSTM conversion goes through a SavedModel) --

@pytest.mark.slow
def test_lstm128_all_precisions(lstm128, lstm128_files, frames):
    for precision, data in lstm128_files.items():
        ops = fbgraph.op_list(fbgraph.load(data))
        assert sum(o["op"] == "UNIDIRECTIONAL_SEQUENCE_LSTM" for o in ops) == 2
        assert not any(o["op"] == "WHILE" for o in ops)
        # persistent state inside the interpreter: streaming equals Keras streaming
        keras_step = lstm128.streaming_mask()
        lite_step = TFLiteDenoiser(data).streaming_mask()
        diff = max(float(np.abs(keras_step(f) - lite_step(f)).max()) for f in frames)
        assert diff <= TOLERANCE[precision], precision
    assert compare(lstm128, lstm128_files["fp16"], [frames]).max_abs <= 1e-3
    _check_mixed(lstm128_files["mixed"])


#: The paper's LSTM128 mixed figure (0.67 MB) is not reachable from its own rule
#: (RNN weights INT8 = 328,192 B, all other weights FP16 = 330,092 B -> 0.628 MB); every
#: other cell of the table is.
KNOWN_SPEC_MISMATCH = {("lstm128", "mixed")}


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["lstm256", "gru256", "lstm128", "gru128"])
def test_param_memory_all_variants(variant, calib_small, frames, spec_mb):
    from tfdenoise.models import TinyDenoiser

    model = TinyDenoiser(variant, seed=0)
    for precision in PRECISIONS:
        data = convert(model, precision, calib_small)
        mb = _param_mb(data)
        TFLiteDenoiser(data).offline_mask(frames[:4])  # loads and runs in LiteRT
        if precision == "fp16":
            assert compare(model, data, [frames]).max_abs <= 1e-3
        if (variant, precision) in KNOWN_SPEC_MISMATCH:
            assert mb == pytest.approx(0.628, rel=0.01)
            continue
        assert mb == pytest.approx(spec_mb[precision][variant], rel=0.03), (variant, precision)
