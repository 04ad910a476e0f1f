"""INT4 weights in `targets` (docs/design.md §8): the reader keeps the packed bytes (2 per byte),
the report adds the bytes at the trained widths, the unpack cost is a board constant."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tfdenoise.errors import BoardError, TFLiteFormatError


@pytest.fixture(scope="module")
def int4_file(tmp_path_factory):
    """A tiny 4-bit QAT KWS DNN exported with packed INT4 dense weights (and its 5-bit twin)."""
    from test_qat_export import _kws_qat_checkpoint  # tests/ is on the path (pytest.ini)
    from tfdenoise.converters.kws_convert import convert_kws
    from tfdenoise.kws.models import load_kws_checkpoint

    folder = tmp_path_factory.mktemp("int4")
    out = {}
    for bits in (4, 5):
        _, x = _kws_qat_checkpoint(folder / f"b{bits}", bits)
        data = convert_kws(load_kws_checkpoint(folder / f"b{bits}"), "kws_int8", x)
        (folder / f"b{bits}.tflite").write_bytes(data)
        out[bits] = folder / f"b{bits}.tflite"
    return out


def test_reader_charges_packed_bytes(int4_file):
    from tfdenoise.targets.reader import read_tflite

    g = read_tflite(int4_file[4])
    int4 = [t for t in g.main.tensors if t.dtype == "INT4"]
    assert len(int4) == 4  # fc_0, fc_1, fc_2, logits
    for t in int4:
        assert t.is_constant and t.nbytes == math.ceil(t.size / 2)
    g8 = read_tflite(int4_file[5])
    assert not any(t.dtype == "INT4" for t in g8.main.tensors)
    w4 = sum(t.nbytes for t in int4)
    w8 = sum(t.nbytes for t in g8.main.tensors if t.dtype == "INT8" and t.is_constant)
    assert w8 == sum(t.size for t in int4) and w4 * 2 >= w8 > w4 * 2 - 4


def test_reader_refuses_a_wrong_int4_size(int4_file):
    from tfdenoise.converters import fbgraph
    from tfdenoise.targets.reader import parse_tflite

    m = fbgraph.load(int4_file[4].read_bytes())
    t = next(t for t in m.subgraphs[0].tensors if t.type == 17)
    m.buffers[t.buffer].data = np.concatenate([m.buffers[t.buffer].data, np.zeros(3, np.uint8)])
    with pytest.raises(TFLiteFormatError, match="x INT4 needs"):
        parse_tflite(fbgraph.dump(m), "bad.tflite")


@pytest.mark.parametrize("board", ["gap9", "stm32f767"])
def test_report_bytes_at_bit_width_and_unpack(int4_file, board):
    from tfdenoise.targets import analyze
    from tfdenoise.targets.int4 import int4_unpack_cycles, int4_weight_elements
    from tfdenoise.targets.report import to_json

    r = analyze(int4_file[4], board=board)
    j = to_json(r)
    fc = [la for la in r.layers if int4_weight_elements(la)]
    assert {la.name for la in fc} == {"fc_0", "fc_1", "fc_2", "logits"}
    c = r.board.c("kernels.int4_unpack_cycles")
    want = sum(la.macs * c / r.board.c("compute.cores") for la in fc)
    assert j["int4_unpack_cycles"] == round(want) and want > 0
    assert all(int4_unpack_cycles(r.board, la) == 0 for la in r.layers if la not in fc)
    # the unpack is in the latency: each INT4 layer's compute = its kernel's + its unpack
    from tfdenoise.targets import cortexm, kernels

    timing = {t.name: t for t in r.schedule.layers}
    for la in fc:
        base = cortexm.core_cycles(r.board, la) if r.board.core else kernels._kernel_cycles(r.board, la)
        assert timing[la.name].compute_cycles == round(base + int4_unpack_cycles(r.board, la))
    # 4-bit weights: the container already holds them at 4 bits
    assert j["param_bytes_at_bit_width"] == j["param_bytes"]
    r5 = analyze(int4_file[5], board=board)
    j5 = to_json(r5)
    weights = sum(p.elements for la in r5.layers for p in la.params if p.nbytes == p.elements)
    assert j5["param_bytes"] - j5["param_bytes_at_bit_width"] == weights - sum(
        math.ceil(p.elements * 5 / 8) for la in r5.layers for p in la.params if p.nbytes == p.elements)
    assert j5["int4_unpack_cycles"] == 0


def test_board_without_the_constant_cannot_price_int4(int4_file):
    from dataclasses import replace

    from tfdenoise.targets.boards import load_board
    from tfdenoise.targets.int4 import int4_unpack_cycles
    from tfdenoise.targets.layers import group_layers
    from tfdenoise.targets.reader import read_tflite

    board = load_board("gap9")
    bare = replace(board, constants={k: v for k, v in board.constants.items() if k != "kernels.int4_unpack_cycles"})
    layers, _ = group_layers(read_tflite(int4_file[4]))
    with pytest.raises(BoardError, match="kernels.int4_unpack_cycles"):
        sum(int4_unpack_cycles(bare, la) for la in layers)
