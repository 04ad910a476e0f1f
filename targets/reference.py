"""Reference TinyDenoiser graphs (docs/design.md §2) built directly as IR, without TensorFlow.

They mirror the export contract with the converters (fused UNIDIRECTIONAL_SEQUENCE_LSTM for
LSTM models; single-step graph with the GRU cell unrolled into FULLY_CONNECTED/SPLIT/ADD/
LOGISTIC/MUL/SUB/TANH for GRU models; FP16 weights as float16 constant -> DEQUANTIZE;
mixed = INT8 RNNs between one QUANTIZE and one DEQUANTIZE; `tfdenoise` metadata listing the
ops of each layer). Used by the calibration tests and by `--sweep` when no exporter is
available. Constant data is zero-filled: only sizes matter to the cost model.
"""
from __future__ import annotations

import json

from tfdenoise.vocab import FILE_PRECISIONS, FilePrecision, LayerKind, N_BINS, Precision, VARIANT_SHAPES
from tfdenoise.targets.graph import DTYPE_BYTES, Graph, Operator, Subgraph, Tensor

VARIANTS = {name.value: shape for name, shape in VARIANT_SHAPES.items()}
PRECISIONS = FILE_PRECISIONS


class _Builder:
    def __init__(self) -> None:
        self.tensors: list[Tensor] = []
        self.ops: list[Operator] = []

    def tensor(self, name: str, dtype: str, shape: tuple[int, ...], const: bool = False,
               variable: bool = False) -> int:
        data = None
        if const:
            n = 1
            for d in shape:
                n *= d
            data = bytes(int(n * DTYPE_BYTES[dtype]))
        self.tensors.append(Tensor(len(self.tensors), name, dtype, shape, None, data, variable))
        return len(self.tensors) - 1

    def op(self, code: str, inputs: list[int], outputs: list[int]) -> int:
        self.ops.append(Operator(len(self.ops), code, tuple(inputs), tuple(outputs)))
        return len(self.ops) - 1

    def weight(self, name: str, shape: tuple[int, ...], prec: str, bias: bool = False) -> tuple[int, list[int]]:
        """A weight usable by a kernel: returns (tensor feeding the op, ops created)."""
        if prec == Precision.INT8:
            return self.tensor(name, "INT32" if bias else "INT8", shape, const=True), []
        if prec == Precision.FP16:
            c = self.tensor(name + "_fp16", "FLOAT16", shape, const=True)
            w = self.tensor(name, "FLOAT32", shape)
            return w, [self.op("DEQUANTIZE", [c], [w])]
        return self.tensor(name, "FLOAT32", shape, const=True), []


def _act(prec: str) -> str:
    return "INT8" if prec == Precision.INT8 else "FLOAT32"


def build_reference(variant: str, precision: str) -> Graph:
    """IR of TinyDenoiser `variant` (lstm256|gru256|lstm128|gru128) at `precision`."""
    from tfdenoise.errors import InputError

    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    cell, k = VARIANTS[variant]
    rnn_p = Precision.INT8 if precision in (FilePrecision.INT8, FilePrecision.MIXED) else precision
    other_p = {FilePrecision.MIXED: Precision.FP16}.get(precision, precision)
    b = _Builder()
    layers: list[dict] = []
    x = b.tensor("frame", "FLOAT32", (1, N_BINS))
    graph_in, graph_out = [x], []
    states_in, states_out = [], []

    def dense(name: str, inp: int, n_in: int, n_out: int, prec: str, sigmoid: bool = False) -> int:
        start = len(b.ops)
        w, _ = b.weight(f"{name}/kernel", (n_out, n_in), prec)
        bias, _ = b.weight(f"{name}/bias", (n_out,), prec, bias=True)
        y = b.tensor(f"{name}/out", _act(prec), (1, n_out))
        b.op("FULLY_CONNECTED", [inp, w, bias], [y])
        if sigmoid:
            y2 = b.tensor(f"{name}/sigmoid", _act(prec), (1, n_out))
            b.op("LOGISTIC", [y], [y2])
            y = y2
        layers.append({"name": name, "kind": LayerKind.DENSE, "precision": prec, "ops": list(range(start, len(b.ops)))})
        return y

    def convert(name: str, inp: int, n: int, code: str) -> int:
        y = b.tensor(name, "INT8" if code == "QUANTIZE" else "FLOAT32", (1, n))
        layers.append({"name": name, "kind": "conversion", "precision": "int8", "ops": [b.op(code, [inp], [y])]})
        return y

    def lstm(name: str, inp: int, n_in: int) -> int:
        start = len(b.ops)
        ws = [b.weight(f"{name}/w_{g}", (k, n_in), rnn_p)[0] for g in "ifco"]
        us = [b.weight(f"{name}/u_{g}", (k, k), rnn_p)[0] for g in "ifco"]
        bs = [b.weight(f"{name}/b_{g}", (k,), rnn_p, bias=True)[0] for g in "ifco"]
        h = b.tensor(f"{name}/h", _act(rnn_p), (1, k), variable=True)
        c = b.tensor(f"{name}/c", "INT16" if rnn_p == "int8" else "FLOAT32", (1, k), variable=True)
        inp3 = b.tensor(f"{name}/in3", _act(rnn_p), (1, 1, n_in))
        b.op("RESHAPE", [inp], [inp3])
        y = b.tensor(f"{name}/out", _act(rnn_p), (1, 1, k))
        b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", [inp3] + ws + us + [-1, -1, -1] + bs + [-1, -1, h, c, -1, -1, -1, -1], [y])
        y2 = b.tensor(f"{name}/out2", _act(rnn_p), (1, k))
        b.op("RESHAPE", [y], [y2])
        layers.append({"name": name, "kind": "lstm", "precision": rnn_p, "units": k, "ops": list(range(start, len(b.ops)))})
        return y2

    def gru(name: str, inp: int, n_in: int) -> int:
        start = len(b.ops)
        a = _act(rnn_p)
        h = b.tensor(f"{name}/h_in", a, (1, k))
        graph_in.append(h)
        states_in.append(h)
        w, _ = b.weight(f"{name}/kernel", (3 * k, n_in), rnn_p)
        u, _ = b.weight(f"{name}/recurrent_kernel", (3 * k, k), rnn_p)
        bw, _ = b.weight(f"{name}/bias_x", (3 * k,), rnn_p, bias=True)
        bu, _ = b.weight(f"{name}/bias_h", (3 * k,), rnn_p, bias=True)
        xw = b.tensor(f"{name}/xw", a, (1, 3 * k))
        hu = b.tensor(f"{name}/hu", a, (1, 3 * k))
        b.op("FULLY_CONNECTED", [inp, w, bw], [xw])
        b.op("FULLY_CONNECTED", [h, u, bu], [hu])
        axis = b.tensor(f"{name}/axis", "INT32", (), const=True)
        xs = [b.tensor(f"{name}/x{g}", a, (1, k)) for g in "zrn"]
        hs = [b.tensor(f"{name}/h{g}", a, (1, k)) for g in "zrn"]
        b.op("SPLIT", [axis, xw], xs)
        b.op("SPLIT", [axis, hu], hs)
        t = {n: b.tensor(f"{name}/{n}", a, (1, k)) for n in
             ("zs", "z", "rs", "r", "rh", "ns", "n", "zh", "one_minus_z", "zn", "h_out")}
        one = b.tensor(f"{name}/one", "FLOAT32" if a != "INT8" else "INT8", (), const=True)
        b.op("ADD", [xs[0], hs[0]], [t["zs"]])
        b.op("LOGISTIC", [t["zs"]], [t["z"]])
        b.op("ADD", [xs[1], hs[1]], [t["rs"]])
        b.op("LOGISTIC", [t["rs"]], [t["r"]])
        b.op("MUL", [t["r"], hs[2]], [t["rh"]])
        b.op("ADD", [xs[2], t["rh"]], [t["ns"]])
        b.op("TANH", [t["ns"]], [t["n"]])
        b.op("MUL", [t["z"], h], [t["zh"]])
        b.op("SUB", [one, t["z"]], [t["one_minus_z"]])
        b.op("MUL", [t["one_minus_z"], t["n"]], [t["zn"]])
        b.op("ADD", [t["zh"], t["zn"]], [t["h_out"]])
        states_out.append(t["h_out"])
        layers.append({"name": name, "kind": "gru", "precision": rnn_p, "units": k, "ops": list(range(start, len(b.ops)))})
        return t["h_out"]

    y = dense("fc_in", x, N_BINS, N_BINS, other_p) if precision != "int8" else None
    if precision == "int8":
        y = convert("quantize_in", x, N_BINS, "QUANTIZE")
        y = dense("fc_in", y, N_BINS, N_BINS, "int8")
    if precision == "mixed":
        y = convert("quantize", y, N_BINS, "QUANTIZE")
    rnn = lstm if cell == "lstm" else gru
    y = rnn("rnn_0", y, N_BINS)
    y = rnn("rnn_1", y, k)
    if precision == "mixed":
        y = convert("dequantize", y, k, "DEQUANTIZE")
    y = dense("fc_mid", y, k, N_BINS, other_p)
    y = dense("fc_out", y, N_BINS, N_BINS, other_p, sigmoid=True)
    if precision == "int8":
        y = convert("dequantize_out", y, N_BINS, "DEQUANTIZE")
    graph_out = [y] + states_out
    meta = {"format": 1, "variant": variant, "precision": precision, "layers": layers,
            "source": "targets.reference (analytic, zero weights)"}
    sg = Subgraph("main", tuple(b.tensors), tuple(b.ops), tuple(graph_in), tuple(graph_out))
    return Graph(path=f"<reference {variant} {precision}>", subgraphs=(sg,),
                 metadata={"tfdenoise": json.dumps(meta).encode()}, schema_source="targets.reference")
