"""targets/sparsity.py on hand-built tensors: zero tests per type, the row view, the statistics
counted by hand, and sparse variants of a graph."""
from __future__ import annotations

import struct

import numpy as np
import pytest

from tfdenoise.errors import InputError
from tfdenoise.targets.graph import Graph, Operator, Quantization, Subgraph, Tensor
from tfdenoise.targets.layers import group_layers
from tfdenoise.targets.sparsity import (Structure, layer_sparsity, magnitudes, row_view, sparsify,
                                        tensor_sparsity, zero_mask)


def tensor(values, dtype="INT8", shape=None, zp=(0,), scale=(0.1,), axis=0, index=1) -> Tensor:
    a = np.asarray(values)
    shape = tuple(shape or a.shape)
    if dtype == "FLOAT32":
        data = a.astype("<f4").tobytes()
    elif dtype == "FLOAT16":
        data = a.astype("<f2").tobytes()
    else:
        data = a.astype(np.int8).tobytes()
    q = None if dtype.startswith("FLOAT") else Quantization(tuple(scale), tuple(zp), axis)
    return Tensor(index, f"w{index}", dtype, shape, q, data)


def fc_graph(w: Tensor, n_in: int, n_out: int) -> Graph:
    """x [1, n_in] -> FULLY_CONNECTED(w, bias) -> y [1, n_out]."""
    bias = Tensor(2, "b", "INT32", (n_out,), None, bytes(4 * n_out))
    x = Tensor(0, "x", w.dtype if w.dtype.startswith("FLOAT") else "INT8", (1, n_in))
    y = Tensor(3, "y", x.dtype, (1, n_out))
    sg = Subgraph("main", (x, w, bias, y), (Operator(0, "FULLY_CONNECTED", (0, 1, 2), (3,)),), (0,), (3,))
    return Graph("<fc>", (sg,))


def test_zero_tests_per_type():
    assert zero_mask(tensor([[0.0, -0.0, 1.5]], "FLOAT32")).tolist() == [[True, True, False]]
    assert zero_mask(tensor([[0.0, 2.0]], "FLOAT16")).tolist() == [[True, False]]
    # INT8 with a per-tensor zero point: zero where q == zp, not where q == 0
    assert zero_mask(tensor([[3, 0, 3]], zp=(3,))).tolist() == [[True, False, True]]
    # per-channel zero points along axis 0 (one per output row)
    t = tensor([[1, 1], [2, 1]], zp=(1, 2), scale=(0.1, 0.2))
    assert zero_mask(t).tolist() == [[True, True], [True, False]]
    assert magnitudes(t).reshape(-1).tolist() == pytest.approx([0.0, 0.0, 0.0, 0.2])


def test_int4_packed_low_nibble_first():
    # values [0, -1, 3, 0, 7] packed: (0 | -1<<4), (3 | 0<<4), (7)
    data = bytes([0x00 | 0xF0, 0x03, 0x07])
    t = Tensor(1, "w4", "INT4", (1, 5), Quantization((0.5,), (0,), 0), data)
    assert zero_mask(t).tolist() == [[True, False, False, True, False]]
    assert magnitudes(t).tolist() == [[0.0, 0.5, 1.5, 0.0, 3.5]]


def test_short_data_is_an_input_error():
    t = Tensor(1, "w", "FLOAT32", (2, 2), None, b"\x00" * 8)
    with pytest.raises(InputError, match="8 B of data for 4 FLOAT32"):
        zero_mask(t)


def test_row_view_of_conv_and_depthwise():
    a = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)   # [O, KH, KW, C]
    v = row_view(a)
    assert v.shape == (2, 3, 20) and v[1, 2].tolist() == a[1, 2].reshape(-1).tolist()
    d = np.arange(3 * 4 * 6).reshape(1, 3, 4, 6)       # depthwise [1, KH, KW, C]
    vd = row_view(d, depthwise=True)
    assert vd.shape == (6, 3, 4) and vd[5, 1].tolist() == d[0, 1, :, 5].tolist()


def test_statistics_counted_by_hand():
    # 3 outputs x 8 inputs; row 1 all zero; row 0: 2:4 compliant; row 2: one dense group
    w = [[1, 0, 0, 2, 0, 3, 0, 4],
         [0, 0, 0, 0, 0, 0, 0, 0],
         [5, 6, 7, 0, 0, 0, 0, 8]]
    s = tensor_sparsity(tensor(w))
    assert (s.elements, s.zeros, s.outputs, s.rows, s.row_len) == (24, 16, 3, 3, 8)
    assert (s.zero_rows, s.zero_outputs) == (1, 1)
    assert (s.mn_groups, s.mn_ok) == (6, 5)               # only [5, 6, 7, 0] has 3 nonzeros
    # switches along each row: row 0: 1|0,0|2,2|0,0|3,3|0,0|4 = 6; row 1: 0; row 2: 7|0, 0|8 = 2
    assert s.switches == 8
    assert s.row_switches == 2            # rows: nonzero, zero, nonzero
    blocks = {shape: (n, z) for shape, n, z in s.blocks}
    assert blocks[(1, 2)] == (12, 5)      # row 0: none; row 1: 4; row 2: [0, 0]
    assert blocks[(1, 4)] == (6, 2)       # row 1 twice
    assert blocks[(4, 1)] == (8, 2)       # columns 4 and 6 (the padded 4th row counts as zero)
    assert blocks[(4, 4)] == (2, 0)
    assert s.zero_fraction == pytest.approx(16 / 24)
    assert s.zero_row_fraction == pytest.approx(1 / 3)
    assert s.mn_compliance == pytest.approx(5 / 6)


def test_conv_rows_are_kernel_rows():
    w = np.ones((2, 3, 2, 1), dtype=np.int8)
    w[0, 1] = 0                            # one kernel row of filter 0
    w[1] = 0                               # the whole filter 1
    s = tensor_sparsity(tensor(w))
    assert (s.outputs, s.rows, s.row_len) == (2, 6, 2)
    assert (s.zero_rows, s.zero_outputs, s.zeros) == (4, 1, 8)
    assert s.row_switches == 3              # rows in order: nonzero, zero, nonzero | zero, zero, zero


def test_layer_sparsity_skips_the_bias():
    g = fc_graph(tensor([[0, 1], [0, 0], [2, 3]]), 2, 3)
    layers, _ = group_layers(g)
    s = layer_sparsity(g, layers[0])
    assert [t.name for t in s.tensors] == ["w1"]
    assert (s.elements, s.zeros) == (6, 3)
    assert s.zero_row_fraction == pytest.approx(1 / 3)
    assert s.block_zero_fraction((1, 2)) == pytest.approx(1 / 3)
    assert s.block_zero_fraction((8, 8)) == 0.0


@pytest.mark.parametrize("dtype", ["INT8", "FLOAT32"])
def test_sparsify_unstructured_zeroes_the_smallest(dtype):
    w = np.array([[5, -1, 3, 2], [-4, 6, 1, -7]])
    g = fc_graph(tensor(w, dtype, zp=(0,)), 4, 2)
    layers, _ = group_layers(g)
    g2 = sparsify(g, 0.5, Structure.UNSTRUCTURED, layers)
    m = zero_mask(g2.main.tensors[1])
    assert m.tolist() == [[False, True, True, True], [False, False, True, False]]
    assert g2.main.tensors[1].shape == (2, 4) and len(g2.main.tensors[1].data) == len(g.main.tensors[1].data)
    # the original graph is unchanged (frozen IR)
    assert not zero_mask(g.main.tensors[1]).any()


def test_sparsify_rows_keeps_the_zero_point():
    w = np.array([[9, 9, 9], [3, 4, 3], [1, 2, 1], [8, 8, 8]])   # zero point 3 per tensor
    g = fc_graph(tensor(w, zp=(3,)), 3, 4)
    layers, _ = group_layers(g)
    g2 = sparsify(g, 0.5, "row", layers)
    t = g2.main.tensors[1]
    vals = np.frombuffer(t.data, dtype=np.int8).reshape(4, 3)
    assert vals[1].tolist() == [3, 3, 3] and vals[2].tolist() == [3, 3, 3]   # smallest |q - 3| rows
    assert vals[0].tolist() == [9, 9, 9] and vals[3].tolist() == [8, 8, 8]
    s = layer_sparsity(g2, layers[0])
    assert s.zero_row_fraction == 0.5 and s.zero_fraction == 0.5


def test_sparsify_int4_round_trip():
    data = bytes([0x21, 0x43, 0x65])                        # values 1..6, [1, 6]
    t = Tensor(1, "w4", "INT4", (1, 6), Quantization((1.0,), (0,), 0), data)
    g = fc_graph(t, 6, 1)
    g2 = sparsify(g, 0.5, "unstructured", group_layers(g)[0])
    assert zero_mask(g2.main.tensors[1]).tolist() == [[True, True, True, False, False, False]]
    assert g2.main.tensors[1].data == bytes([0x00, 0x40, 0x65])


def test_sparsify_range_checked():
    g = fc_graph(tensor([[1, 2]]), 2, 1)
    with pytest.raises(InputError, match="outside"):
        sparsify(g, 1.5)


def test_float_bits_of_negative_zero():
    # -0.0 stores as 0x80000000: still a zero weight (the paper's FP32 loop compares the bits)
    t = Tensor(1, "w", "FLOAT32", (1, 2), None, struct.pack("<2f", -0.0, 1.0))
    assert zero_mask(t).tolist() == [[True, False]]
