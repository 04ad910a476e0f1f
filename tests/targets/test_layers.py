"""Layer grouping: fused LSTM, unrolled GRU (metadata and pattern), FP16 weights, conversions, foreign ops."""
from __future__ import annotations

import dataclasses

import pytest

from tfdenoise.targets import analyze
from tfdenoise.targets.layers import group_layers
from tfdenoise.targets.reader import read_tflite
from tfdenoise.targets.reference import build_reference


def kinds(layers):
    return [(la.kind, la.precision) for la in layers]


def test_fused_lstm_fp32(tflite):
    layers, warnings = group_layers(read_tflite(tflite("lstm_fp32")))
    assert kinds(layers) == [("dense", "fp32"), ("lstm", "fp32"), ("dense", "fp32")]
    lstm = layers[1]
    assert lstm.macs == 4 * 8 * (12 + 8) and lstm.units == 8   # 4 gates x units x (in + units)
    assert layers[0].macs == 16 * 12 and layers[2].macs == 8 * 16
    assert not warnings


def test_fp16_weights_become_fp16_kernels(tflite):
    layers, _ = group_layers(read_tflite(tflite("lstm_fp16")))
    assert kinds(layers) == [("dense", "fp16"), ("lstm", "fp16"), ("dense", "fp16")]
    # the DEQUANTIZE of each float16 constant is inside its consumer's layer
    g = read_tflite(tflite("lstm_fp16"))
    deq = [op.index for op in g.main.operators if op.opcode == "DEQUANTIZE"]
    assert all(any(d in la.ops for la in layers) for d in deq)
    # fp16 W and U, 2 distinct bias vectors (the converter shares identical ones), 2 initial states
    assert layers[1].param_bytes == 2 * (4 * 8 * 12 + 4 * 8 * 8) + 2 * 2 * 8 + 2 * 2 * 8


def test_int8_with_conversion_layers(tflite):
    layers, _ = group_layers(read_tflite(tflite("lstm_int8")))
    assert [la.kind for la in layers] == ["conversion", "dense", "lstm", "dense", "conversion"]
    assert all(la.precision == "int8" for la in layers)


@pytest.mark.parametrize("name,prec", [("gru_fp32", "fp32"), ("gru_fp16", "fp16")])
def test_unrolled_gru_by_pattern(tflite, name, prec):
    layers, warnings = group_layers(read_tflite(tflite(name)))
    assert [la.kind for la in layers] == ["dense", "gru", "dense"]
    gru = layers[1]
    assert gru.precision == prec and gru.units == 8
    assert gru.macs == 3 * 8 * (12 + 8)
    assert not warnings


def test_gru_by_metadata(tflite, tmp_path, metadata_writer, tfdenoise_meta):
    g0 = read_tflite(tflite("gru_fp32"))
    layers0, _ = group_layers(g0)
    meta = [{"name": n, "kind": la.kind, "precision": "fp32", "ops": list(la.ops)}
            for n, la in zip(["fc_in", "rnn_0", "fc_out"], layers0)]
    p = metadata_writer(tflite("gru_fp32"), tmp_path / "m.tflite", {"tfdenoise": tfdenoise_meta(meta)})
    layers, _ = group_layers(read_tflite(p))
    assert [la.name for la in layers] == ["fc_in", "rnn_0", "fc_out"]
    assert [la.ops for la in layers] == [la.ops for la in layers0]


def test_partial_or_bad_metadata_tolerated(tflite, tmp_path, metadata_writer, tfdenoise_meta):
    meta = [{"name": "rnn_0", "kind": "gru", "ops": [999]}, {"name": "head", "kind": "dense", "ops": [16, 17]}]
    p = metadata_writer(tflite("gru_fp32"), tmp_path / "m.tflite", {"tfdenoise": tfdenoise_meta(meta)})
    layers, warnings = group_layers(read_tflite(p))
    assert any("ignored" in w for w in warnings)
    assert "head" in [la.name for la in layers] and "gru" in [la.kind for la in layers]
    p2 = metadata_writer(tflite("gru_fp32"), tmp_path / "m2.tflite", {"tfdenoise": b"{not json"})
    assert [la.kind for la in group_layers(read_tflite(p2))[0]] == ["dense", "gru", "dense"]


@pytest.mark.parametrize("name", ["foreign_int8", "foreign_fp32"])
def test_foreign_model_degrades_gracefully(tflite, name):
    """On a board without CNN kernels (gap9 less its optional CNN constants) conv, depthwise,
    pooling and softmax get the generic estimate, flagged and warned; gap9 prices them
    (tests/targets/test_cnn_kernels.py)."""
    from tfdenoise.targets.boards import OPTIONAL, load_board

    gap9 = load_board("gap9")
    bare = dataclasses.replace(gap9, constants={k: c for k, c in gap9.constants.items() if k not in OPTIONAL})
    r = analyze(tflite(name), board=bare)
    by_kind = {la.kind: la for la in r.layers}
    assert by_kind["conv"].macs == 16 * 16 * 8 * 3 * 3 * 3 and by_kind["conv"].estimate
    assert by_kind["depthwise_conv"].macs == 16 * 16 * 8 * 3 * 3
    assert {"pool", "softmax"} <= set(by_kind)
    assert any("generic estimate" in w for w in r.warnings)
    assert r.schedule.total_cycles > 0 and r.fits


@pytest.mark.parametrize("variant", ["lstm256", "gru256", "lstm128", "gru128"])
@pytest.mark.parametrize("precision", ["fp32", "fp16", "int8", "mixed"])
def test_reference_macs_match_spec(variant, precision):
    spec = {"lstm256": 1_247_490, "gru256": 985_090, "lstm128": 493_186, "gru128": 411_138}
    g = build_reference(variant, precision)
    layers, _ = group_layers(g)
    assert sum(la.macs for la in layers) == spec[variant]
    # same grouping without metadata (pattern rules)
    bare = dataclasses.replace(g, metadata={})
    layers2, _ = group_layers(bare)
    assert [la.kind for la in layers2] == [la.kind for la in layers]
    assert [la.precision for la in layers2] == [la.precision for la in layers]
