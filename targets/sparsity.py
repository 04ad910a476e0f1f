"""Zero structure of the weight tensors of a graph, and sparse variants of a graph (graph IR only).

Zero weights, from each constant tensor's stored data:

    FLOAT32 / FLOAT16        w == 0.0 (either sign)
    INT8 / UINT8 / INT16     q == zero_point of the weight's channel (quantized_dimension axis;
                             one zero point broadcasts); TFLite's INT8 weights are symmetric (0)
    INT4                     the same on 4-bit values: two per byte, the first element in the
                             low nibble (TFLite's packed INT4), or one per byte when the buffer
                             holds as many bytes as elements

Weight tensors of a layer: its constant parameters of rank >= 2 in one of those types (biases,
layer-norm and peephole vectors are rank 1 and excluded).  Each is viewed as `outputs` x
`rows_per_output` rows of `row_len` weights along the input axis:

    FC / LSTM / GRU [O, I]       O x 1 x I           (a row = every weight of one output)
    conv [O, KH, KW, C]          O x KH x (KW*C)     (a row = one kernel row: the paper's vector)
    depthwise [1, KH, KW, C]     C x KH x KW         (channel-first)
    other rank >= 2 [O, ...]     O x 1 x prod(...)

and the statistics the loop strategies need (targets/types.WeightSparsity): zero weights, all-
zero rows and outputs, 2:4 compliance (groups of 4 consecutive weights along the input axis with
at most 2 nonzeros; the last group of a row is shorter), zero <-> nonzero switches between
neighbours along each row (what a per-weight branch sees) and between consecutive rows in
output-major order (what a per-row branch sees), and all-zero blocks of BLOCKS on the
[outputs, inputs] matrix.

`sparsify(graph, sparsity, structure)` writes a variant of the graph's weight data in which a
share `sparsity` of every weight tensor is zero: `unstructured` zeroes the smallest-magnitude
weights (|scale * (q - zero_point)| or |w|; existing zeros count), `row` the rows (as above)
with the smallest L1 norm.  Shapes, types and quantization do not change (TFLite stores zeros
densely), so every cost that does not look at the data stays the same.
"""
from __future__ import annotations

from dataclasses import replace
from enum import StrEnum

import numpy as np

from tfdenoise.errors import InputError
from tfdenoise.targets.graph import Graph, Subgraph, Tensor
from tfdenoise.targets.layers import group_layers
from tfdenoise.targets.types import Layer, LayerSparsity, WeightSparsity

#: Block shapes (height along outputs, width along inputs) whose all-zero share is counted:
#: 1x2 = one Q15 SMLAD operand pair, 1x4 = one 32-bit word of INT8 weights, 4x1 and 4x4 the
#: output-blocked shapes of block-sparse pruning.
BLOCKS: tuple[tuple[int, int], ...] = ((1, 2), (1, 4), (4, 1), (4, 4))
_NUMPY = {"FLOAT32": "<f4", "FLOAT16": "<f2", "INT8": "i1", "UINT8": "u1", "INT16": "<i2"}
WEIGHT_TYPES = frozenset(_NUMPY) | {"INT4"}


class Structure(StrEnum):
    """How `sparsify` chooses the weights it zeroes."""

    UNSTRUCTURED = "unstructured"
    ROW = "row"


def _zero_points(t: Tensor) -> np.ndarray:
    """Zero point of every element of `t` (broadcast along the quantized dimension)."""
    q = t.quant
    if q is None or not q.zero_point or t.dtype.startswith("FLOAT"):
        return np.zeros(t.shape, dtype=np.int64)
    zp = np.asarray(q.zero_point, dtype=np.int64)
    if zp.size == 1 or not t.shape:
        return np.full(t.shape, int(zp.flat[0]), dtype=np.int64)
    shape = [1] * len(t.shape)
    shape[q.axis] = zp.size
    return np.broadcast_to(zp.reshape(shape), t.shape)


def _scales(t: Tensor) -> np.ndarray | float:
    q = t.quant
    if q is None or not q.scale or t.dtype.startswith("FLOAT"):
        return 1.0
    s = np.asarray(q.scale, dtype=np.float64)
    if s.size == 1:
        return float(s.flat[0])
    shape = [1] * len(t.shape)
    shape[q.axis] = s.size
    return s.reshape(shape)


def _decode(t: Tensor) -> np.ndarray:
    """The stored values of constant `t` in its shape (integers for integer types)."""
    n = t.size
    raw = t.data or b""
    if t.dtype == "INT4":
        if len(raw) >= n:  # one value per byte
            vals = np.frombuffer(raw[:n], dtype=np.int8).astype(np.int64)
        else:
            b = np.frombuffer(raw, dtype=np.uint8)
            nib = np.stack([b & 0xF, b >> 4], axis=1).reshape(-1)[:n].astype(np.int64)
            vals = np.where(nib >= 8, nib - 16, nib)
        if vals.size != n:
            raise InputError(f"tensor {t.name!r}: {len(raw)} B of data for {n} INT4 elements")
        return vals.reshape(t.shape)
    dt = np.dtype(_NUMPY[t.dtype])
    if len(raw) < n * dt.itemsize:
        raise InputError(f"tensor {t.name!r}: {len(raw)} B of data for {n} {t.dtype} elements")
    vals = np.frombuffer(raw[:n * dt.itemsize], dtype=dt)
    return (vals.astype(np.float64) if t.dtype.startswith("FLOAT") else vals.astype(np.int64)).reshape(t.shape)


def _encode(t: Tensor, vals: np.ndarray) -> bytes:
    """Bytes of `vals` stored as `t` stores its data (INT4 packed as it was)."""
    flat = np.asarray(vals).reshape(-1)
    if t.dtype == "INT4":
        if len(t.data or b"") >= t.size:
            return flat.astype(np.int8).tobytes()
        nib = (flat.astype(np.int64) & 0xF).astype(np.uint8)
        if nib.size % 2:
            nib = np.append(nib, np.uint8(0))
        return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8).tobytes()
    return flat.astype(np.dtype(_NUMPY[t.dtype])).tobytes()


def zero_mask(t: Tensor) -> np.ndarray:
    """True where a weight of constant tensor `t` is zero (shape of `t`)."""
    vals = _decode(t)
    if t.dtype.startswith("FLOAT"):
        return vals == 0.0
    return vals == _zero_points(t)


def magnitudes(t: Tensor) -> np.ndarray:
    """|real value| of every weight of `t`: |scale * (q - zero_point)| or |w|."""
    vals = _decode(t)
    if t.dtype.startswith("FLOAT"):
        return np.abs(vals)
    return np.abs((vals - _zero_points(t)) * _scales(t))


def row_view(a: np.ndarray, depthwise: bool = False) -> np.ndarray:
    """`a` (a weight tensor's values or mask) as [outputs, rows_per_output, row_len]."""
    if a.ndim == 4 and depthwise:
        _, kh, kw, c = a.shape
        return np.transpose(a.reshape(kh, kw, c), (2, 0, 1))
    if a.ndim == 4:
        o, kh, kw, c = a.shape
        return a.reshape(o, kh, kw * c)
    return a.reshape(a.shape[0], 1, -1)


def _padded(mask2d: np.ndarray, bh: int, bw: int) -> np.ndarray:
    """`mask2d` padded with True (zero) up to multiples of the block shape."""
    o, i = mask2d.shape
    return np.pad(mask2d, ((0, -o % bh), (0, -i % bw)), constant_values=True)


def tensor_sparsity(t: Tensor, depthwise: bool = False) -> WeightSparsity:
    """The zero statistics of weight tensor `t` (see the module docstring)."""
    mask = row_view(zero_mask(t), depthwise)
    outputs, per_out, row_len = mask.shape
    rows2d = mask.reshape(outputs * per_out, row_len)
    groups = _padded(rows2d, 1, 4).reshape(outputs * per_out, -1, 4)
    nonzero_per_group = (~groups).sum(axis=2)
    m2 = mask.reshape(outputs, per_out * row_len)
    zero_rows = mask.all(axis=2)                      # [outputs, rows_per_output]
    blocks = []
    for bh, bw in BLOCKS:
        p = _padded(m2, bh, bw)
        tiles = p.reshape(p.shape[0] // bh, bh, p.shape[1] // bw, bw).all(axis=(1, 3))
        blocks.append(((bh, bw), int(tiles.size), int(tiles.sum())))
    return WeightSparsity(
        tensor=t.index, name=t.name, dtype=t.dtype, shape=tuple(t.shape), elements=int(mask.size),
        zeros=int(mask.sum()), outputs=outputs, rows=outputs * per_out, row_len=row_len,
        zero_rows=int(zero_rows.sum()), zero_outputs=int(m2.all(axis=1).sum()),
        mn_groups=int(nonzero_per_group.size), mn_ok=int((nonzero_per_group <= 2).sum()),
        switches=int((rows2d[:, 1:] != rows2d[:, :-1]).sum()),
        row_switches=int((zero_rows.reshape(-1)[1:] != zero_rows.reshape(-1)[:-1]).sum()), blocks=tuple(blocks))


def weight_tensors(sg: Subgraph, layer: Layer) -> list[tuple[Tensor, bool]]:
    """(tensor, read by a depthwise conv) for each weight tensor of `layer`."""
    depthwise = {i for o in layer.ops if sg.operators[o].opcode == "DEPTHWISE_CONV_2D"
                 for i in sg.operators[o].inputs[1:2]}
    deq = {sg.operators[o].outputs[0]: sg.operators[o].inputs[0] for o in layer.ops
           if sg.operators[o].opcode == "DEQUANTIZE" and sg.operators[o].outputs and sg.operators[o].inputs}
    depthwise |= {src for out, src in deq.items() if out in depthwise}
    out = []
    for p in layer.params:
        t = sg.tensors[p.tensor]
        if t.is_constant and t.dtype in WEIGHT_TYPES and len(t.shape) >= 2 and t.size > 0:
            out.append((t, t.index in depthwise))
    return out


def layer_sparsity(graph: Graph, layer: Layer) -> LayerSparsity | None:
    """Zero statistics of `layer`'s weight tensors; None when it has none."""
    tensors = tuple(tensor_sparsity(t, dw) for t, dw in weight_tensors(graph.main, layer))
    return LayerSparsity(layer.name, tensors) if tensors else None


def model_sparsity(graph: Graph, layers: tuple[Layer, ...]) -> dict[str, LayerSparsity]:
    """Layer name -> zero statistics, for every layer with weight tensors."""
    out = {}
    for la in layers:
        s = layer_sparsity(graph, la)
        if s is not None:
            out[la.name] = s
    return out


def _zeroed(t: Tensor, target: float, structure: Structure, depthwise: bool) -> Tensor:
    """`t` with (at least) round(target x size) weights, or rows, set to zero."""
    mag = magnitudes(t)
    vals = _decode(t)
    zero = np.zeros(t.shape, dtype=np.float64) if t.dtype.startswith("FLOAT") else _zero_points(t)
    if structure == Structure.ROW:
        rows = row_view(mag, depthwise)
        norms = rows.sum(axis=2).reshape(-1)
        k = int(round(target * norms.size))
        kill = np.zeros(norms.size, dtype=bool)
        kill[np.argsort(norms, kind="stable")[:k]] = True
        kill_rows = np.broadcast_to(kill.reshape(rows.shape[0], rows.shape[1], 1), rows.shape)
        kill_mask = _unview(kill_rows, t.shape, depthwise)
    else:
        k = int(round(target * mag.size))
        flat = np.zeros(mag.size, dtype=bool)
        flat[np.argsort(mag.reshape(-1), kind="stable")[:k]] = True
        kill_mask = flat.reshape(t.shape)
    new = np.where(kill_mask, zero, vals)
    return replace(t, data=_encode(t, new))


def _unview(a: np.ndarray, shape: tuple[int, ...], depthwise: bool) -> np.ndarray:
    """Inverse of `row_view` back to the tensor `shape`."""
    if len(shape) == 4 and depthwise:
        return np.transpose(a, (1, 2, 0)).reshape(shape)
    return np.ascontiguousarray(a).reshape(shape)


def sparsify(graph: Graph, sparsity: float, structure: Structure | str = Structure.UNSTRUCTURED,
             layers: tuple[Layer, ...] | None = None) -> Graph:
    """A copy of `graph` whose weight tensors are `sparsity` zero (see the module docstring).

    `layers`: the graph's layers (targets.layers.group_layers), to find the weight tensors.
    """
    if not 0.0 <= sparsity <= 1.0:
        raise InputError(f"sparsity {sparsity} outside [0, 1]")
    structure = Structure(structure)
    layers = layers if layers is not None else group_layers(graph)[0]
    sg = graph.main
    tensors = list(sg.tensors)
    for la in layers:
        for t, dw in weight_tensors(sg, la):
            tensors[t.index] = _zeroed(t, sparsity, structure, dw)
    main = replace(sg, tensors=tuple(tensors))
    return replace(graph, subgraphs=(main,) + tuple(graph.subgraphs[1:]))
