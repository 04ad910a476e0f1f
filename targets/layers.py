"""Group TFLite operators into the layers (kernels) the MCU runs.

Order of rules, first match wins for each operator:
1. `tfdenoise` metadata layers (`{"name", "kind", "precision", "ops": [...]}`), when present
   and valid for this graph;
2. fused UNIDIRECTIONAL_SEQUENCE_LSTM -> one `lstm` layer;
3. unrolled recurrent cells by pattern: a graph input `h` and output `h'` of the same shape
   where `h'` depends on `h` through LOGISTIC + TANH + MUL; the cell is the operators between
   them plus the FULLY_CONNECTED feeding them (GRU if 2 sigmoids, LSTM if 3 or more);
4. DEQUANTIZE of a constant joins the layer of its consumer (FP16 weights -> FP16 kernel,
   INT8 weights -> hybrid kernel);
5. FULLY_CONNECTED (+ a following activation op) -> `dense`; QUANTIZE/DEQUANTIZE of
   activations -> `conversion`; layout/state ops join the layer of their producer;
6. anything else (CONV_2D, DEPTHWISE_CONV_2D, pooling, SOFTMAX, ...) -> a generic layer
   marked `estimate=True` with a warning; never an exception.

Precision of a layer: the metadata's, when given; else `hybrid` when one of its operators
reads INT8/INT4 constant weights (directly or through a DEQUANTIZE) while taking or producing
FLOAT32 activations (dynamic-range quantization, docs/design.md §4: the MCU converts the
weights to float on the fly and runs float MACs; `dequant_elems` counts the weight elements
converted per inference: each integer weight once per time step for sequence ops, once per
inference otherwise, the converted tile being reused across rows / output positions); else
INT8 / FP16 weights or integer outputs decide (`_infer_precision`).  One warning per report
names the hybrid layers.
"""
from __future__ import annotations

import re

from tfdenoise.targets.geometry import op_geometry
from tfdenoise.targets.graph import Graph, Operator, Subgraph
from tfdenoise.targets.types import Layer, ParamTensor
from tfdenoise.vocab import LayerKind, Precision

ACTIVATIONS = {"LOGISTIC", "TANH", "EXP", "LOG", "HARD_SWISH", "GELU", "RSQRT", "SQRT"}
CHEAP_ACT = {"RELU", "RELU6", "RELU_N1_TO_1", "RELU_0_TO_1", "LEAKY_RELU", "PRELU", "ABS", "NEG"}
ELEMENTWISE = {"ADD", "SUB", "MUL", "DIV", "MAXIMUM", "MINIMUM", "SQUARED_DIFFERENCE",
               "POW", "ADD_N", "CONCATENATION", "PAD", "PADV2", "MEAN", "SUM"} | CHEAP_ACT
LAYOUT = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS", "SPLIT", "SPLIT_V", "STRIDED_SLICE", "SLICE",
          "PACK", "UNPACK", "TRANSPOSE", "GATHER", "SHAPE", "CAST", "IDENTITY"}
STATE = {"VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE"}
GENERIC_KIND = {"CONV_2D": LayerKind.CONV, "DEPTHWISE_CONV_2D": LayerKind.DEPTHWISE_CONV,
                "TRANSPOSE_CONV": LayerKind.CONV, "CONV_3D": LayerKind.CONV, "MAX_POOL_2D": LayerKind.POOL,
                "AVERAGE_POOL_2D": LayerKind.POOL, "L2_POOL_2D": LayerKind.POOL, "SOFTMAX": LayerKind.SOFTMAX,
                "LOG_SOFTMAX": LayerKind.SOFTMAX, "BATCH_MATMUL": LayerKind.DENSE}
#: Integer weight types that a float-activation (hybrid) kernel converts to float on the fly.
INT_WEIGHTS = {"INT8", "INT4"}
#: Operators that only move or convert data: never hybrid kernels themselves.
NOT_KERNELS = LAYOUT | STATE | {"QUANTIZE", "DEQUANTIZE"}
HYBRID_WARNING = ("INT8 weights with float activations (dynamic-range quantization): modeled as "
                  "weights converted to float on the fly and float MACs; full-INT8 export is faster "
                  "on the MCU")
META_KINDS = {LayerKind.LSTM, LayerKind.GRU, LayerKind.DENSE, LayerKind.CONVERSION, LayerKind.ELEMENTWISE}


def group_layers(graph: Graph) -> tuple[tuple[Layer, ...], tuple[str, ...]]:
    """Layers of subgraph 0 in execution order, plus warnings about estimated parts."""
    sg = graph.main
    warnings: list[str] = []
    assign: dict[int, int] = {}           # op index -> group id
    groups: list[dict] = []               # {"ops": set, "kind", "name", "precision", "units"}
    weight_deq = {op.index: op.inputs[0] for op in sg.operators
                  if op.opcode == "DEQUANTIZE" and op.inputs and sg.tensors[op.inputs[0]].is_constant}
    fp_model = Precision.FP16 if any(t.dtype == "FLOAT16" and t.is_constant for t in sg.tensors) else Precision.FP32

    def new_group(ops, kind, name="", precision="", units=0, note=""):
        ops = {o for o in ops if o not in assign}
        if not ops:
            return
        gid = len(groups)
        groups.append({"ops": ops, "kind": kind, "name": name, "precision": precision,
                       "units": units, "note": note})
        for o in ops:
            assign[o] = gid

    meta = graph.tfdenoise_metadata() or {}
    for entry in meta.get("layers", []) if isinstance(meta.get("layers"), list) else []:
        ops = entry.get("ops") if isinstance(entry, dict) else None
        if not isinstance(ops, list) or not all(isinstance(o, int) and 0 <= o < len(sg.operators) for o in ops):
            warnings.append(f"tfdenoise metadata layer {entry!r:.60} ignored: bad 'ops'")
            continue
        kind = str(entry.get("kind", ""))
        new_group(ops, kind if kind in META_KINDS else "", str(entry.get("name", "")),
                  str(entry.get("precision", "")), int(entry.get("units", 0) or 0))
    for op in sg.operators:
        if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM":
            new_group({op.index}, LayerKind.LSTM)
    for ops, kind in _find_cells(sg):
        new_group(ops, kind)
    _group_rest(sg, assign, groups, new_group, weight_deq)
    if len(graph.subgraphs) > 1:
        warnings.append(f"{len(graph.subgraphs) - 1} extra subgraph(s) (control flow) not modeled; "
                        "their operators are estimated as one generic layer each")
    layers = []
    def first_op(gid: int) -> int:
        ops = groups[gid]["ops"]
        return min((o for o in ops if o not in weight_deq), default=min(ops))

    for gid in sorted(range(len(groups)), key=first_op):
        layer = _make_layer(sg, groups[gid], len(layers), weight_deq, fp_model)
        if layer.estimate:
            warnings.append(f"layer {layer.name} ({'/'.join(sorted({sg.operators[o].opcode for o in layer.ops}))}): "
                            f"no calibrated kernel model, generic estimate")
        layers.append(layer)
    layers = _unique_names(layers)
    hybrid = [la.name for la in layers if la.precision == Precision.HYBRID]
    if hybrid:
        warnings.append(f"hybrid layer{'s' if len(hybrid) > 1 else ''} {', '.join(hybrid)}: {HYBRID_WARNING}")
    return layers, tuple(warnings)


def _find_cells(sg: Subgraph) -> list[tuple[set[int], str]]:
    """Unrolled recurrent cells: (op set, 'gru'|'lstm') for each state input/output pair."""
    if len(sg.inputs) < 2:
        return []
    cands = []
    for s in sg.inputs:
        for s2 in sg.outputs:
            t, t2 = sg.tensors[s], sg.tensors[s2]
            if s == s2 or t.shape != t2.shape or t.dtype != t2.dtype:
                continue
            core = sg.descendants(s) & sg.ancestors(s2)
            codes = [sg.operators[o].opcode for o in core]
            if "TANH" in codes and "MUL" in codes and "LOGISTIC" in codes:
                cands.append((len(core), s, s2, core))
    cells: list[tuple[set[int], str]] = []
    cores: list[set[int]] = []
    used_in, used_out = set(), set()
    for _, s, s2, core in sorted(cands, key=lambda c: c[0]):
        if s in used_in or s2 in used_out or any(c & core for c in cores):
            continue
        cores.append(core)
        used_in.add(s)
        used_out.add(s2)
        ops = set(core) | _feeders(sg, core)
        n_sig = sum(sg.operators[o].opcode == "LOGISTIC" for o in core)
        cells.append((ops, LayerKind.GRU if n_sig == 2 else LayerKind.LSTM))
    return cells


def _feeders(sg: Subgraph, core: set[int]) -> set[int]:
    """Ops feeding the cell: layout ops and constant-bias adds upward, up to the first FC."""
    out: set[int] = set()
    stack = [i for o in core for i in sg.operators[o].inputs if i >= 0]
    while stack:
        p = sg.producers.get(stack.pop())
        if p is None or p in core or p in out:
            continue
        op = sg.operators[p]
        consumers = {c for t in op.outputs for c in sg.consumers.get(t, ())}
        if not consumers <= core | out:
            continue
        if op.opcode == "FULLY_CONNECTED":
            out.add(p)
        elif op.opcode in LAYOUT or (op.opcode == "ADD" and any(sg.tensors[i].is_constant for i in op.inputs)):
            out.add(p)
            stack.extend(i for i in op.inputs if i >= 0)
    return out


def _group_rest(sg: Subgraph, assign, groups, new_group, weight_deq) -> None:
    """Rules 4-6 for the operators no earlier rule claimed."""
    for op in sg.operators:
        if op.index in assign or op.index in weight_deq:
            continue
        code = op.opcode
        if code == "FULLY_CONNECTED":
            ops = {op.index}
            nxt = _sole_consumer(sg, op)
            if nxt is not None and sg.operators[nxt].opcode in ACTIVATIONS | CHEAP_ACT and nxt not in assign:
                ops.add(nxt)
            new_group(ops, LayerKind.DENSE)
        elif code in ("QUANTIZE", "DEQUANTIZE"):
            new_group({op.index}, LayerKind.CONVERSION)
        elif code in LAYOUT or code in STATE:
            prod = [sg.producers.get(i) for i in op.inputs if i >= 0]
            prev = next((assign[p] for p in prod if p is not None and p in assign), None)
            if prev is not None and code not in STATE:
                groups[prev]["ops"].add(op.index)
                assign[op.index] = prev
            else:
                new_group({op.index}, LayerKind.LAYOUT)
        elif code in ELEMENTWISE or code in ACTIVATIONS:
            new_group({op.index}, LayerKind.ELEMENTWISE)
        else:
            new_group({op.index}, GENERIC_KIND.get(code, LayerKind.GENERIC))
    for d, const in weight_deq.items():  # FP16 weights join their consumer's layer
        users = [assign[c] for t in sg.operators[d].outputs for c in sg.consumers.get(t, ()) if c in assign]
        if users:
            groups[users[0]]["ops"].add(d)
            assign[d] = users[0]
        else:
            new_group({d}, LayerKind.LAYOUT)


def _sole_consumer(sg: Subgraph, op: Operator) -> int | None:
    cons = [c for t in op.outputs for c in sg.consumers.get(t, ())]
    return cons[0] if len(cons) == 1 else None


def _make_layer(sg: Subgraph, g: dict, index: int, weight_deq: dict[int, int], fp_model: str) -> Layer:
    ops = sorted(g["ops"])
    opset = set(ops)
    produced = {t for o in ops for t in sg.operators[o].outputs if t >= 0}
    params: dict[int, ParamTensor] = {}
    inputs: list[int] = []
    for o in ops:
        op = sg.operators[o]
        for i in op.inputs:
            if i < 0:
                continue
            t = sg.tensors[i]
            if t.is_constant and op.opcode in LAYOUT:
                continue
            if t.is_constant and (t.dtype != "INT32" or (len(t.shape) == 1 and t.size > 1)):
                params[i] = ParamTensor(i, t.name, t.nbytes, t.size)
            elif not t.is_constant and i not in produced and t.dtype != "RESOURCE" and i not in inputs:
                inputs.append(i)
    outputs = [t for t in sorted(produced) if sg.tensors[t].dtype != "RESOURCE"
               and (t in sg.outputs or any(c not in opset for c in sg.consumers.get(t, ())))]
    codes = [sg.operators[o].opcode for o in ops]
    kind = g["kind"] or _infer_kind(codes)
    macs = sum(_op_macs(sg, sg.operators[o], weight_deq) for o in ops)
    act = sum(sg.tensors[sg.operators[o].outputs[0]].size for o in ops
              if sg.operators[o].opcode in ACTIVATIONS and sg.operators[o].outputs)
    ew = sum(sg.tensors[sg.operators[o].outputs[0]].size for o in ops
             if sg.operators[o].opcode in ELEMENTWISE | {"QUANTIZE", "DEQUANTIZE", "MAX_POOL_2D",
                                                         "AVERAGE_POOL_2D", "SOFTMAX"}
             and o not in weight_deq and sg.operators[o].outputs)
    units = g["units"]
    if "UNIDIRECTIONAL_SEQUENCE_LSTM" in codes:
        op = sg.operators[ops[codes.index("UNIDIRECTIONAL_SEQUENCE_LSTM")]]
        rec = _const_of(sg, op.inputs[5], weight_deq)
        units = units or (rec.shape[0] if rec is not None and rec.shape else 0)
        act += 5 * units * max(1, sg.tensors[op.inputs[0]].size // max(1, _in_features(sg, op, weight_deq)))
        ew += 4 * units
    if kind in (LayerKind.GRU, LayerKind.LSTM) and not units:
        units = sg.tensors[outputs[0]].size if outputs else 0
    dequant = sum(_hybrid_weight_elems(sg, sg.operators[o], weight_deq) for o in ops if o not in weight_deq)
    if g["precision"] in tuple(Precision):
        precision = Precision(g["precision"])
    elif dequant:
        precision = Precision.HYBRID
    else:
        precision = _infer_precision(sg, ops, params, fp_model)
    if precision != Precision.HYBRID:
        dequant = 0
    elif not dequant:  # hybrid by metadata only: every integer weight converted once
        dequant = sum(p.elements for k, p in params.items() if sg.tensors[k].dtype in INT_WEIGHTS)
    estimate = kind in (LayerKind.CONV, LayerKind.DEPTHWISE_CONV, LayerKind.POOL, LayerKind.SOFTMAX, LayerKind.GENERIC) or \
        any(c in STATE | {"WHILE", "IF", "CALL_ONCE"} for c in codes if c not in ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE"))
    if kind == LayerKind.GENERIC and not ew:
        ew = sum(sg.tensors[t].size for o in ops for t in sg.operators[o].outputs if t >= 0)
    name = g["name"] or _keras_name(sg, ops, params) or kind
    geometry = next((geo for o in ops if (geo := op_geometry(sg, sg.operators[o], _filter_of(sg, sg.operators[o], weight_deq)))), None)
    return Layer(index=index, name=name, kind=kind, precision=precision, ops=tuple(ops), macs=int(macs),
                 params=tuple(params[k] for k in sorted(params)), inputs=tuple(inputs), outputs=tuple(outputs),
                 in_elems=sum(sg.tensors[i].size for i in inputs), out_elems=sum(sg.tensors[o].size for o in outputs),
                 act_elems=int(act), ew_elems=int(ew), units=int(units), estimate=estimate, note=g["note"],
                 dequant_elems=int(dequant), geometry=geometry)


def _filter_of(sg: Subgraph, op: Operator, weight_deq: dict[int, int]):
    """The constant filter of a conv op (through a weight DEQUANTIZE), or None."""
    return _const_of(sg, op.inputs[1], weight_deq) if len(op.inputs) > 1 else None


def _hybrid_weight_elems(sg: Subgraph, op: Operator, weight_deq: dict[int, int]) -> int:
    """Integer weight elements `op` converts to float per inference; 0 unless it is hybrid.

    Hybrid: an INT8/INT4 constant operand (stored, or behind a DEQUANTIZE of a constant) and a
    FLOAT32 activation among its other inputs or its outputs.  Full-INT8 kernels (INT8/INT16
    activations) and FP16-weight kernels are not hybrid.  Sequence ops read their weights once
    per time step.
    """
    if op.opcode in NOT_KERNELS:
        return 0
    weights = 0
    acts: set[str] = {sg.tensors[t].dtype for t in op.outputs if t >= 0}
    for i in op.inputs:
        if i < 0:
            continue
        c = _const_of(sg, i, weight_deq)
        if c is None:
            acts.add(sg.tensors[i].dtype)
        elif c.dtype in INT_WEIGHTS:
            weights += c.size
    if not weights or "FLOAT32" not in acts:
        return 0
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        weights *= max(1, sg.tensors[op.inputs[0]].size // max(1, _in_features(sg, op, weight_deq)))
    return weights


def _infer_kind(codes: list[str]) -> str:
    if any(c in GENERIC_KIND for c in codes):
        return GENERIC_KIND[next(c for c in codes if c in GENERIC_KIND)]
    if "FULLY_CONNECTED" in codes:
        return LayerKind.DENSE
    if all(c in ("QUANTIZE", "DEQUANTIZE") for c in codes):
        return LayerKind.CONVERSION
    if all(c in LAYOUT | STATE for c in codes):
        return LayerKind.LAYOUT
    if all(c in ELEMENTWISE | ACTIVATIONS | LAYOUT for c in codes):
        return LayerKind.ELEMENTWISE
    return LayerKind.GENERIC


def _infer_precision(sg: Subgraph, ops, params, fp_model: str) -> str:
    dtypes = {sg.tensors[p].dtype for p in params}
    if "INT8" in dtypes:
        return Precision.INT8
    if "FLOAT16" in dtypes:
        return Precision.FP16
    outs = {sg.tensors[t].dtype for o in ops for t in sg.operators[o].outputs if t >= 0}
    if outs & {"INT8", "UINT8", "INT16"} and not outs & {"FLOAT32"}:
        return Precision.INT8
    if any(sg.operators[o].opcode in ("QUANTIZE", "DEQUANTIZE") for o in ops):
        return Precision.INT8
    return fp_model


def _const_of(sg: Subgraph, i: int, weight_deq: dict[int, int]):
    if i < 0:
        return None
    p = sg.producers.get(i)
    if p in weight_deq:
        return sg.tensors[weight_deq[p]]
    t = sg.tensors[i]
    return t if t.is_constant else None


def _in_features(sg: Subgraph, op: Operator, weight_deq) -> int:
    w = _const_of(sg, op.inputs[1], weight_deq) if len(op.inputs) > 1 else None
    return int(w.shape[-1]) if w is not None and w.shape else 1


def _op_macs(sg: Subgraph, op: Operator, weight_deq: dict[int, int]) -> int:
    """MACs of one operator from its shapes (0 for non-MAC operators)."""
    out = sg.tensors[op.outputs[0]] if op.outputs and op.outputs[0] >= 0 else None
    if op.opcode == "FULLY_CONNECTED" and out is not None:
        return out.size * _in_features(sg, op, weight_deq)
    if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM":
        n_in = _in_features(sg, op, weight_deq)
        steps = max(1, sg.tensors[op.inputs[0]].size // max(1, n_in))
        w = [_const_of(sg, i, weight_deq) for i in op.inputs[1:9]]
        return steps * sum(t.size for t in w if t is not None)
    if op.opcode in ("CONV_2D", "DEPTHWISE_CONV_2D", "TRANSPOSE_CONV") and out is not None and len(op.inputs) > 1:
        w = _const_of(sg, op.inputs[1], weight_deq)
        if w is None or len(w.shape) != 4:
            return 0
        kh, kw, cin = w.shape[1], w.shape[2], w.shape[3]
        return out.size * kh * kw * (1 if op.opcode == "DEPTHWISE_CONV_2D" else cin)
    if op.opcode == "BATCH_MATMUL" and out is not None and op.inputs:
        a = sg.tensors[op.inputs[0]]
        return out.size * (a.shape[-1] if a.shape else 1)
    return 0


_SKIP_PARTS = {"model", "sequential", "functional", "tensordot", "matmul", "biasadd", "relu",
               "sigmoid", "tanh", "readvariableop", "statefulpartitionedcall", "serving_default"}


def _keras_name(sg: Subgraph, ops, params) -> str:
    """A Keras layer name recovered from tensor names (e.g. 'model/fc_in/MatMul' -> 'fc_in')."""
    names = [sg.tensors[p].name for p in params] + \
            [sg.tensors[t].name for o in ops for t in sg.operators[o].outputs if t >= 0]
    for n in names:
        for part in re.split(r"[/;:]", n):
            low = part.lower()
            if part and not part.isdigit() and low not in _SKIP_PARTS and not low.startswith(("model_", "sequential_", "tensordot", "arith.", "statefulpartitionedcall", "while", "strided", "tfl.")) \
                    and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", part) and "/" in n:
                return part
    return ""


def _unique_names(layers: list[Layer]) -> tuple[Layer, ...]:
    from dataclasses import replace

    seen: dict[str, int] = {}
    out = []
    for la in layers:
        n = seen.get(la.name, 0)
        seen[la.name] = n + 1
        out.append(la if n == 0 else replace(la, name=f"{la.name}_{n}"))
    return tuple(out)
