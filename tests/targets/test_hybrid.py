"""Hybrid (dynamic-range) quantized models: INT8 weights, float activations (docs/design.md §4).

The stock converter's ``Optimize.DEFAULT`` without a representative dataset stores weights
as INT8 and keeps activations in FP32. The MCU runs such layers as float kernels that convert
each weight on the fly, so the report must call them ``hybrid`` and price them above the
full-INT8 form of the same model, and near the FP32 form on a single-FPU Cortex-M7.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest

from tfdenoise.targets import analyze, analyze_graph
from tfdenoise.targets.boards import available_boards, load_board
from tfdenoise.targets.kernels import core_cycles, dequant_cycles
from tfdenoise.targets.layers import group_layers
from tfdenoise.targets.reader import read_tflite
from tfdenoise.targets.types import ACT_BYTES, Layer, ParamTensor
from tfdenoise.vocab import LayerKind, Precision

#: Kinds that carry weights (the layers a hybrid file quantizes).
MAC_KINDS = {LayerKind.DENSE, LayerKind.LSTM, LayerKind.GRU}
FEATURES, UNITS = 64, 48   # every weight matrix >= 1024 elements: the converter quantizes them all


def _write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / f"{name}.tflite"
    path.write_bytes(data)
    return path


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> dict[str, Path]:
    """One small Keras LSTM model converted three ways by the stock converter."""
    from tfdenoise.keras import keras, tf

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.InputLayer(batch_input_shape=(1, 1, FEATURES)),
                              keras.layers.Dense(FEATURES, activation="relu", name="fc_in"),
                              keras.layers.LSTM(UNITS, return_sequences=True, name="rnn_0"),
                              keras.layers.Dense(FEATURES, activation="sigmoid", name="fc_out")])
    folder = tmp_path_factory.mktemp("hybrid_small")
    rng = np.random.default_rng(0)

    def convert(mode: str) -> bytes:
        c = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode != "fp32":
            c.optimizations = [tf.lite.Optimize.DEFAULT]
        if mode == "int8":
            c.representative_dataset = lambda: ([rng.random((1, 1, FEATURES)).astype(np.float32)]
                                                for _ in range(8))
        return c.convert()

    return {m: _write(folder, m, convert(m)) for m in ("fp32", "dynamic", "int8")}


@pytest.fixture(scope="module")
def lstm128_dynamic(tmp_path_factory) -> Path:
    """The shipped trained LSTM128 quantized by the stock converter's dynamic range."""
    from tfdenoise.converters.build import ConverterFactory
    from tfdenoise.keras import tf
    from tfdenoise.models import load_checkpoint
    from tfdenoise.pretrained import checkpoint

    factory = ConverterFactory(load_checkpoint(checkpoint("lstm128")))
    try:
        conv = factory()
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        data = conv.convert()
    finally:
        factory.close()
    return _write(tmp_path_factory.mktemp("hybrid_lstm128"), "lstm128_dynamic", data)


def shipped(precision: str) -> Path:
    from tfdenoise.pretrained import tflite

    return tflite("lstm128", precision)


def _hybrid_warnings(report) -> list[str]:
    return [w for w in report.warnings if "dynamic-range" in w]


def test_dynamic_range_layers_are_hybrid(small):
    layers, warnings = group_layers(read_tflite(small["dynamic"]))
    mac_layers = [la for la in layers if la.kind in MAC_KINDS]
    assert {la.kind for la in mac_layers} == {LayerKind.DENSE, LayerKind.LSTM}
    assert all(la.precision == Precision.HYBRID for la in mac_layers)
    rnn = next(la for la in mac_layers if la.kind == LayerKind.LSTM)
    # 4 gates x (input + recurrent) INT8 matrices, read once for the one time step
    assert rnn.dequant_elems == 4 * UNITS * (FEATURES + UNITS)
    fc = next(la for la in mac_layers if la.kind == LayerKind.DENSE)
    assert fc.dequant_elems == FEATURES * FEATURES
    hybrid = [w for w in warnings if "dynamic-range" in w]
    assert len(hybrid) == 1
    assert all(la.name in hybrid[0] for la in mac_layers)
    assert "float activations" in hybrid[0] and "full-INT8 export is faster" in hybrid[0]


def test_full_int8_and_fp32_are_not_hybrid(small):
    for name, prec in (("int8", Precision.INT8), ("fp32", Precision.FP32)):
        layers, warnings = group_layers(read_tflite(small[name]))
        assert all(la.precision == prec for la in layers if la.kind in MAC_KINDS), name
        assert all(la.dequant_elems == 0 for la in layers)
        assert not [w for w in warnings if "dynamic-range" in w]


def test_hybrid_stores_int8_weights_and_float_activations(small):
    dyn, int8, fp32 = (analyze(small[m], board="gap9") for m in ("dynamic", "int8", "fp32"))
    # parameters stay as stored: 1 B per INT8 weight (float biases), far below FP32
    assert dyn.memory.param_bytes < 0.35 * fp32.memory.param_bytes
    assert dyn.memory.param_bytes <= 1.1 * int8.memory.param_bytes
    # activations are FP32 (4 B), like the float model's
    assert ACT_BYTES[Precision.HYBRID] == ACT_BYTES[Precision.FP32] == 4
    assert dyn.memory.activation_bytes == fp32.memory.activation_bytes > int8.memory.activation_bytes
    assert len(_hybrid_warnings(dyn)) == 1 and not _hybrid_warnings(int8)


@pytest.mark.parametrize("vdd", [0.8, 0.65])
def test_gap9_hybrid_never_beats_full_int8(small, vdd):
    dyn = analyze(small["dynamic"], board="gap9", vdd=vdd).schedule.latency_ms
    int8 = analyze(small["int8"], board="gap9", vdd=vdd).schedule.latency_ms
    assert dyn >= int8


@pytest.mark.parametrize("board", ["stm32f746", "stm32l476"])
def test_cortex_m_hybrid_close_to_fp32(small, board):
    dyn = analyze(small["dynamic"], board=board).schedule.latency_ms
    fp32 = analyze(small["fp32"], board=board).schedule.latency_ms
    int8 = analyze(small["int8"], board=board).schedule.latency_ms
    assert dyn >= 0.8 * fp32 and dyn > int8


@pytest.mark.parametrize("vdd", [0.8, 0.65])
def test_lstm128_dynamic_slower_than_int8_and_mixed_on_gap9(lstm128_dynamic, vdd):
    dyn = analyze(lstm128_dynamic, board="gap9", vdd=vdd)
    mixed = analyze(shipped("mixed"), board="gap9", vdd=vdd).schedule.latency_ms
    int8 = analyze(shipped("int8"), board="gap9", vdd=vdd).schedule.latency_ms
    assert [la.precision for la in dyn.layers if la.kind in MAC_KINDS] == [Precision.HYBRID] * 5
    assert len(_hybrid_warnings(dyn)) == 1
    assert dyn.schedule.latency_ms >= mixed >= int8


def test_lstm128_dynamic_close_to_fp32_on_cortex_m7(lstm128_dynamic):
    dyn = analyze(lstm128_dynamic, board="stm32f746").schedule.latency_ms
    fp32 = analyze(shipped("fp32"), board="stm32f746").schedule.latency_ms
    assert dyn >= 0.8 * fp32


@pytest.mark.parametrize("with_metadata", [True, False])
def test_mixed_export_keeps_int8_rnn_and_fp16_fc(with_metadata):
    graph = read_tflite(shipped("mixed"))
    if not with_metadata:  # the operator rules alone must agree with the exporter's metadata
        graph = dataclasses.replace(graph, metadata={})
        assert graph.tfdenoise_metadata() is None
    report = analyze_graph(graph, board="gap9")
    by_kind: dict[str, set] = {}
    for la in report.layers:
        by_kind.setdefault(la.kind, set()).add(la.precision)
    assert by_kind[LayerKind.LSTM] == {Precision.INT8}
    assert by_kind[LayerKind.DENSE] == {Precision.FP16}
    assert not _hybrid_warnings(report) and all(la.dequant_elems == 0 for la in report.layers)


def test_hybrid_kernel_formula():
    gap9 = load_board("gap9")

    def layer(precision, dequant=0):
        return Layer(0, "l", LayerKind.LSTM, precision, (0,), 2048, (ParamTensor(1, "w", 2048, 2048),),
                     (0,), (1,), 32, 16, act_elems=64, units=16, dequant_elems=dequant)

    # float MACs: 8 cores x 16 x fp32_mac_ratio MACs per 9-cycle loop, x the FPU-sharing stall
    fp32 = core_cycles(gap9, layer(Precision.FP32))
    assert fp32 == pytest.approx(math.ceil(2048 / (8 * 16 * 0.25)) * 9 * 1.1 + 64 * 8 * 1.1 * 2 / 8)
    # hybrid: the same float kernel plus 2 cycles per converted weight element, split on 8 cores
    assert dequant_cycles(gap9, layer(Precision.HYBRID, 2048)) == 2048 * 2 / 8
    assert core_cycles(gap9, layer(Precision.HYBRID, 2048)) == pytest.approx(fp32 + 512)
    assert dequant_cycles(gap9, layer(Precision.INT8, 2048)) == 0.0


def test_every_board_states_the_dequant_cost():
    for name in available_boards():
        c = load_board(name).constants["kernels.hybrid_dequant_cycles"]
        assert c.unit == "cycle/elem" and c.value > 0 and "docs/design.md §4" in c.source
