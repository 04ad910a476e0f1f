"""Small helpers over a TFLite flatbuffer in object form (``flatbuffer_utils``).

Maps every operator of subgraph 0 to the Keras layer it came from (``fc_in``, ``rnn_0``,
``rnn_1``, ``fc_mid``, ``fc_out``; BN and ReLU fold into the FC before them) and counts the
bytes of constant parameters.
"""
from __future__ import annotations

import re
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np

from tfdenoise.vocab import DEPLOY_LAYERS, FOLDED

_TOKEN = re.compile(r"(?<![a-z0-9])(fc_in|bn_in|relu_in|rnn_0|rnn_1|fc_mid|bn_mid|relu_mid|fc_out)"
                    r"(?![0-9])")
#: TFLite tensor type codes -> numpy names (schema TensorType).
TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16",
              9: "int8", 6: "bool", 17: "int4"}
TYPE_BYTES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 7: 2, 9: 1, 6: 1, 17: 0.5}  # INT4: packed, 2 per byte
INT4 = 17
CONVERSION_OPS = ("QUANTIZE", "DEQUANTIZE")
RNN_OPS = ("UNIDIRECTIONAL_SEQUENCE_LSTM",)


@lru_cache(maxsize=1)
def _op_names() -> dict[int, str]:
    from tensorflow.lite.python import schema_py_generated as schema

    return {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}


def load(data: bytes):
    from tensorflow.lite.tools import flatbuffer_utils as fu

    return fu.convert_bytearray_to_object(bytearray(data))


def dump(model_obj) -> bytes:
    from tensorflow.lite.tools import flatbuffer_utils as fu

    return bytes(fu.convert_object_to_bytearray(model_obj))


def op_name(model_obj, op) -> str:
    code = model_obj.operatorCodes[op.opcodeIndex]
    return _op_names().get(max(code.builtinCode, code.deprecatedBuiltinCode), "CUSTOM")


def tensor_name(t) -> str:
    n = t.name
    return n.decode() if isinstance(n, bytes) else str(n)


def is_constant(model_obj, t) -> bool:
    buf = model_obj.buffers[t.buffer]
    return buf.data is not None and len(buf.data) > 0 and not t.isVariable


def producers(sg) -> dict[int, int]:
    return {t: i for i, op in enumerate(sg.operators) for t in op.outputs}


def consumers(sg) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for i, op in enumerate(sg.operators):
        for t in op.inputs:
            if t >= 0:
                out.setdefault(int(t), []).append(i)
    return out


def _token_layer(name: str) -> str | None:
    m = _TOKEN.search(name)
    return None if m is None else FOLDED.get(m.group(1), m.group(1))


def op_layers(model_obj, token: Callable[[str], str | None] | None = None,
              lstm_layers: Sequence[str] | None = None) -> list[str | None]:
    """Layer of each operator of subgraph 0; ``None`` for QUANTIZE/DEQUANTIZE of activations.

    ``token`` maps a tensor name to its layer (default: TinyDenoiser's names); a fused LSTM
    takes the LSTM layer named in its input tensors, else the next of ``lstm_layers`` in order
    of appearance (default: ``rnn_0``, ``rnn_1``).  With a ``token`` of its own, an op whose
    output names no layer takes the layer its weights name (the converter may name a graph
    output ``Identity``) before inheriting its producer's."""
    sg = model_obj.subgraphs[0]
    ops = sg.operators
    by_weights = token is not None
    token = token or _token_layer
    names = [op_name(model_obj, op) for op in ops]
    prod, cons = producers(sg), consumers(sg)
    layer: list[str | None] = [None] * len(ops)
    rnn_seen = 0
    for i, op in enumerate(ops):
        if names[i] in RNN_OPS:  # fused LSTM: weight names, else order of appearance
            found = [token(tensor_name(sg.tensors[t])) for t in op.inputs if t >= 0]
            found = [f for f in found if f and (f.startswith("rnn_") if lstm_layers is None
                                                else f in lstm_layers)]
            order = lstm_layers if lstm_layers is not None else [f"rnn_{rnn_seen}"]
            layer[i] = found[0] if found else order[min(rnn_seen, len(order) - 1)] if order else None
            rnn_seen += 1
        elif not _is_activation_conversion(model_obj, sg, op, names[i]):
            layer[i] = token(tensor_name(sg.tensors[op.outputs[0]]))
            if layer[i] is None and by_weights:
                named = [token(tensor_name(sg.tensors[t])) for t in _weights(model_obj, sg, op, prod)]
                layer[i] = next((n for n in named if n), None)
    for _ in range(len(ops)):  # inherit from producers, then from consumers
        changed = False
        for i, op in enumerate(ops):
            if layer[i] is not None or _is_activation_conversion(model_obj, sg, op, names[i]):
                continue
            near = [layer[prod[t]] for t in op.inputs if t >= 0 and t in prod and layer[prod[t]]]
            if not near:
                near = [layer[c] for t in op.outputs for c in cons.get(t, []) if layer[c]]
            if near:
                layer[i] = near[0]
                changed = True
        if not changed:
            break
    return layer


def _weights(model_obj, sg, op, prod: dict[int, int]) -> list[int]:
    """Inputs of ``op`` that are stored weights: constants, or outputs of a DEQUANTIZE of one."""
    out = []
    for t in op.inputs:
        if t < 0:
            continue
        src = sg.operators[prod[t]] if t in prod else None
        if is_constant(model_obj, sg.tensors[t]) or (
                src is not None and op_name(model_obj, src) == "DEQUANTIZE"
                and is_constant(model_obj, sg.tensors[src.inputs[0]])):
            out.append(int(t))
    return out


def _is_activation_conversion(model_obj, sg, op, name: str) -> bool:
    """QUANTIZE/DEQUANTIZE of an activation (not the DEQUANTIZE of an FP16 weight)."""
    if name not in CONVERSION_OPS:
        return False
    return not any(is_constant(model_obj, sg.tensors[t]) for t in op.inputs if t >= 0)


def param_tensor(model_obj, t) -> bool:
    """A stored parameter: constant float/int8/int16 data, or an INT32 bias with a scale."""
    if not is_constant(model_obj, t):
        return False
    if t.type in (0, 1, 9, 7, INT4):
        return True
    q = t.quantization
    return t.type == 2 and q is not None and q.scale is not None and len(q.scale) > 0


def param_bytes_by_layer(model_obj, op_layer: list[str | None] | None = None) -> dict[str, int]:
    """Bytes of parameters per layer (each buffer counted once) plus ``"*"`` = total.

    ``op_layer`` assigns each operator to a layer (default: the denoiser's :func:`op_layers`,
    whose deployment layers are listed even when empty)."""
    sg = model_obj.subgraphs[0]
    layers = op_layers(model_obj) if op_layer is None else op_layer
    seen: set[int] = set()
    out = {name: 0 for name in DEPLOY_LAYERS} if op_layer is None else {}
    out["*"] = 0
    for i, op in enumerate(sg.operators):
        for t in op.inputs:
            if t < 0:
                continue
            ten = sg.tensors[t]
            if ten.buffer in seen or not param_tensor(model_obj, ten):
                continue
            seen.add(ten.buffer)
            n = len(model_obj.buffers[ten.buffer].data)
            out["*"] += n
            key = layers[i] or "*other"
            out[key] = out.get(key, 0) + n
    return out


def op_list(model_obj) -> list[dict]:
    """One dict per operator: index, op, layer, output type."""
    sg = model_obj.subgraphs[0]
    layers = op_layers(model_obj)
    return [{"index": i, "op": op_name(model_obj, op), "layer": layers[i],
             "out_type": TYPE_NAMES.get(sg.tensors[op.outputs[0]].type, "?")}
            for i, op in enumerate(sg.operators)]


def const_array(model_obj, t) -> np.ndarray:
    """The constant data of tensor ``t`` as a numpy array of its type (INT4: unpacked to int8)."""
    if t.type == INT4:
        from tfdenoise.converters.passes import unpack_int4

        return unpack_int4(model_obj.buffers[t.buffer].data, int(np.prod(t.shape))).reshape(t.shape)
    dt = np.dtype(TYPE_NAMES[t.type])
    return np.frombuffer(bytes(model_obj.buffers[t.buffer].data), dtype=dt).reshape(t.shape)
