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


class _ReferenceBuilder(_Builder):
    """Builds one reference graph: the layer emitters append tensors, ops and metadata entries."""

    def __init__(self, variant: str, precision: str) -> None:
        super().__init__()
        self.variant, self.precision = variant, precision
        self.cell, self.k = VARIANTS[variant]
        self.rnn_p = Precision.INT8 if precision in (FilePrecision.INT8, FilePrecision.MIXED) else precision
        self.other_p = {FilePrecision.MIXED: Precision.FP16}.get(precision, precision)
        self.layers: list[dict] = []
        self.x = self.tensor("frame", "FLOAT32", (1, N_BINS))
        self.graph_in: list[int] = [self.x]
        self.states_in: list[int] = []
        self.states_out: list[int] = []

    def dense(self, name: str, inp: int, n_in: int, n_out: int, prec: str, sigmoid: bool = False) -> int:
        """FULLY_CONNECTED (+ LOGISTIC when `sigmoid`) at `prec`; returns the output tensor."""
        start = len(self.ops)
        w, _ = self.weight(f"{name}/kernel", (n_out, n_in), prec)
        bias, _ = self.weight(f"{name}/bias", (n_out,), prec, bias=True)
        y = self.tensor(f"{name}/out", _act(prec), (1, n_out))
        self.op("FULLY_CONNECTED", [inp, w, bias], [y])
        if sigmoid:
            y2 = self.tensor(f"{name}/sigmoid", _act(prec), (1, n_out))
            self.op("LOGISTIC", [y], [y2])
            y = y2
        self.layers.append({"name": name, "kind": LayerKind.DENSE, "precision": prec,
                            "ops": list(range(start, len(self.ops)))})
        return y

    def convert(self, name: str, inp: int, n: int, code: str) -> int:
        """One QUANTIZE or DEQUANTIZE op, listed as a `conversion` layer."""
        y = self.tensor(name, "INT8" if code == "QUANTIZE" else "FLOAT32", (1, n))
        self.layers.append({"name": name, "kind": "conversion", "precision": "int8",
                            "ops": [self.op(code, [inp], [y])]})
        return y

    def lstm(self, name: str, inp: int, n_in: int) -> int:
        """Fused UNIDIRECTIONAL_SEQUENCE_LSTM between two RESHAPEs (state in variable tensors)."""
        k, rnn_p = self.k, self.rnn_p
        start = len(self.ops)
        ws = [self.weight(f"{name}/w_{g}", (k, n_in), rnn_p)[0] for g in "ifco"]
        us = [self.weight(f"{name}/u_{g}", (k, k), rnn_p)[0] for g in "ifco"]
        bs = [self.weight(f"{name}/b_{g}", (k,), rnn_p, bias=True)[0] for g in "ifco"]
        h = self.tensor(f"{name}/h", _act(rnn_p), (1, k), variable=True)
        c = self.tensor(f"{name}/c", "INT16" if rnn_p == "int8" else "FLOAT32", (1, k), variable=True)
        inp3 = self.tensor(f"{name}/in3", _act(rnn_p), (1, 1, n_in))
        self.op("RESHAPE", [inp], [inp3])
        y = self.tensor(f"{name}/out", _act(rnn_p), (1, 1, k))
        self.op("UNIDIRECTIONAL_SEQUENCE_LSTM",
                [inp3] + ws + us + [-1, -1, -1] + bs + [-1, -1, h, c, -1, -1, -1, -1], [y])
        y2 = self.tensor(f"{name}/out2", _act(rnn_p), (1, k))
        self.op("RESHAPE", [y], [y2])
        self.layers.append({"name": name, "kind": "lstm", "precision": rnn_p, "units": k,
                            "ops": list(range(start, len(self.ops)))})
        return y2

    def gru(self, name: str, inp: int, n_in: int) -> int:
        """GRU cell unrolled into FULLY_CONNECTED/SPLIT/ADD/LOGISTIC/MUL/SUB/TANH; the state is a graph
        input and an extra graph output."""
        k, rnn_p = self.k, self.rnn_p
        start = len(self.ops)
        a = _act(rnn_p)
        h = self.tensor(f"{name}/h_in", a, (1, k))
        self.graph_in.append(h)
        self.states_in.append(h)
        w, _ = self.weight(f"{name}/kernel", (3 * k, n_in), rnn_p)
        u, _ = self.weight(f"{name}/recurrent_kernel", (3 * k, k), rnn_p)
        bw, _ = self.weight(f"{name}/bias_x", (3 * k,), rnn_p, bias=True)
        bu, _ = self.weight(f"{name}/bias_h", (3 * k,), rnn_p, bias=True)
        xw = self.tensor(f"{name}/xw", a, (1, 3 * k))
        hu = self.tensor(f"{name}/hu", a, (1, 3 * k))
        self.op("FULLY_CONNECTED", [inp, w, bw], [xw])
        self.op("FULLY_CONNECTED", [h, u, bu], [hu])
        axis = self.tensor(f"{name}/axis", "INT32", (), const=True)
        xs = [self.tensor(f"{name}/x{g}", a, (1, k)) for g in "zrn"]
        hs = [self.tensor(f"{name}/h{g}", a, (1, k)) for g in "zrn"]
        self.op("SPLIT", [axis, xw], xs)
        self.op("SPLIT", [axis, hu], hs)
        t = {n: self.tensor(f"{name}/{n}", a, (1, k)) for n in
             ("zs", "z", "rs", "r", "rh", "ns", "n", "zh", "one_minus_z", "zn", "h_out")}
        one = self.tensor(f"{name}/one", "FLOAT32" if a != "INT8" else "INT8", (), const=True)
        self.op("ADD", [xs[0], hs[0]], [t["zs"]])
        self.op("LOGISTIC", [t["zs"]], [t["z"]])
        self.op("ADD", [xs[1], hs[1]], [t["rs"]])
        self.op("LOGISTIC", [t["rs"]], [t["r"]])
        self.op("MUL", [t["r"], hs[2]], [t["rh"]])
        self.op("ADD", [xs[2], t["rh"]], [t["ns"]])
        self.op("TANH", [t["ns"]], [t["n"]])
        self.op("MUL", [t["z"], h], [t["zh"]])
        self.op("SUB", [one, t["z"]], [t["one_minus_z"]])
        self.op("MUL", [t["one_minus_z"], t["n"]], [t["zn"]])
        self.op("ADD", [t["zh"], t["zn"]], [t["h_out"]])
        self.states_out.append(t["h_out"])
        self.layers.append({"name": name, "kind": "gru", "precision": rnn_p, "units": k,
                            "ops": list(range(start, len(self.ops)))})
        return t["h_out"]

    def graph(self) -> Graph:
        """Emit the whole model (fc_in, two RNN layers, fc_mid, fc_out) and wrap it as a Graph."""
        precision, other_p, k, x = self.precision, self.other_p, self.k, self.x
        y = self.dense("fc_in", x, N_BINS, N_BINS, other_p) if precision != "int8" else None
        if precision == "int8":
            y = self.convert("quantize_in", x, N_BINS, "QUANTIZE")
            y = self.dense("fc_in", y, N_BINS, N_BINS, "int8")
        if precision == "mixed":
            y = self.convert("quantize", y, N_BINS, "QUANTIZE")
        rnn = self.lstm if self.cell == "lstm" else self.gru
        y = rnn("rnn_0", y, N_BINS)
        y = rnn("rnn_1", y, k)
        if precision == "mixed":
            y = self.convert("dequantize", y, k, "DEQUANTIZE")
        y = self.dense("fc_mid", y, k, N_BINS, other_p)
        y = self.dense("fc_out", y, N_BINS, N_BINS, other_p, sigmoid=True)
        if precision == "int8":
            y = self.convert("dequantize_out", y, N_BINS, "DEQUANTIZE")
        graph_out = [y] + self.states_out
        meta = {"format": 1, "variant": self.variant, "precision": precision, "layers": self.layers,
                "source": "targets.reference (analytic, zero weights)"}
        sg = Subgraph("main", tuple(self.tensors), tuple(self.ops), tuple(self.graph_in), tuple(graph_out))
        return Graph(path=f"<reference {self.variant} {precision}>", subgraphs=(sg,),
                     metadata={"tfdenoise": json.dumps(meta).encode()}, schema_source="targets.reference")


def build_reference(variant: str, precision: str) -> Graph:
    """IR of TinyDenoiser `variant` (lstm256|gru256|lstm128|gru128) at `precision`."""
    from tfdenoise.errors import InputError

    if variant not in VARIANTS:
        raise InputError(f"unknown variant {variant!r} (known: {', '.join(VARIANTS)})")
    if precision not in PRECISIONS:
        raise InputError(f"unknown precision {precision!r} (known: {', '.join(PRECISIONS)})")
    return _ReferenceBuilder(variant, precision).graph()
