"""Flatbuffer rewrites applied after quantization.

* :func:`weights_to_fp16`: store the float32 constants of chosen ops as float16, each
  followed by a ``DEQUANTIZE`` op (the layout TFLite's own FP16 conversion produces);
* :func:`states_to_int8_io`: make the GRU state inputs/outputs of INT8 layers INT8 in the
  signature, so that the only activation conversions left are the ``QUANTIZE`` before and
  the ``DEQUANTIZE`` after the INT8 layers;
* :func:`snap_weight`: store a QAT layer's trained grid (docs/design.md §8) in place of the
  converter's INT8 weights: the integer levels and the grid's own step as scale (the
  converter's ``max|w| / 127`` generally maps a b-bit grid to non-integer multiples), as INT8
  or packed INT4 (:func:`pack_int4`), bias rescaled; checked against the converter's weights;
* :func:`float_softmax`: the final softmax of an INT8 graph in float (``DEQUANTIZE`` before it).
"""
from __future__ import annotations

import numpy as np

from tfdenoise.converters import fbgraph

DEQUANTIZE = 6  # schema BuiltinOperator.DEQUANTIZE
QUANTIZE = 114  # schema BuiltinOperator.QUANTIZE (unused, kept for reference)


def _opcode_index(model_obj, builtin: int, version: int) -> int:
    from tensorflow.lite.python import schema_py_generated as schema

    for i, code in enumerate(model_obj.operatorCodes):
        if max(code.builtinCode, code.deprecatedBuiltinCode) == builtin:
            code.version = max(code.version, version)
            return i
    code = schema.OperatorCodeT()
    code.builtinCode = builtin
    code.deprecatedBuiltinCode = min(builtin, 127)
    code.version = version
    model_obj.operatorCodes.append(code)
    return len(model_obj.operatorCodes) - 1


def weights_to_fp16(model_obj, ops: set[int]) -> int:
    """Convert float32 constants used only by ``ops`` to float16 + DEQUANTIZE; returns count."""
    from tensorflow.lite.python import schema_py_generated as schema

    sg = model_obj.subgraphs[0]
    cons = fbgraph.consumers(sg)
    deq = _opcode_index(model_obj, DEQUANTIZE, 3)
    new_ops = []
    done: set[int] = set()
    for i in sorted(ops):
        for t in sg.operators[i].inputs:
            if t < 0 or t in done:
                continue
            ten = sg.tensors[t]
            if ten.type != 0 or not fbgraph.is_constant(model_obj, ten):
                continue
            if not set(cons.get(int(t), [])) <= ops:
                continue
            done.add(int(t))
            data = fbgraph.const_array(model_obj, ten).astype(np.float16)
            buf = schema.BufferT()
            buf.data = np.frombuffer(data.tobytes(), np.uint8).copy()
            model_obj.buffers.append(buf)
            half = schema.TensorT()
            half.shape = np.array(ten.shape, np.int32)
            half.type = 1  # FLOAT16
            half.buffer = len(model_obj.buffers) - 1
            half.name = (fbgraph.tensor_name(ten) + "_fp16").encode()
            sg.tensors.append(half)
            old, ten.buffer = ten.buffer, 0  # the float32 tensor becomes the DEQUANTIZE output
            if not any(x.buffer == old for x in sg.tensors):
                model_obj.buffers[old].data = None  # drop the float32 bytes from the file
            op = schema.OperatorT()
            op.opcodeIndex = deq
            op.inputs = np.array([len(sg.tensors) - 1], np.int32)
            op.outputs = np.array([t], np.int32)
            new_ops.append(op)
    sg.operators = new_ops + list(sg.operators)
    return len(new_ops)


def _signature_maps(model_obj):
    sigs = model_obj.signatureDefs or []
    return (sigs[0].inputs, sigs[0].outputs) if sigs else ([], [])


def states_to_int8_io(model_obj, state_names: tuple[str, ...]) -> int:
    """Drop QUANTIZE of state inputs / DEQUANTIZE of state outputs; returns ops removed."""
    sg = model_obj.subgraphs[0]
    sig_in, sig_out = _signature_maps(model_obj)
    cons, prod = fbgraph.consumers(sg), fbgraph.producers(sg)
    drop: set[int] = set()
    for tmap in sig_in:
        name = tmap.name.decode() if isinstance(tmap.name, bytes) else tmap.name
        if name not in state_names:
            continue
        users = cons.get(int(tmap.tensorIndex), [])
        if len(users) != 1 or fbgraph.op_name(model_obj, sg.operators[users[0]]) != "QUANTIZE":
            continue
        q_out = int(sg.operators[users[0]].outputs[0])
        sg.inputs = np.array([q_out if x == tmap.tensorIndex else x for x in sg.inputs], np.int32)
        tmap.tensorIndex = q_out
        drop.add(users[0])
    outs = {f"{n}_out" for n in state_names}
    for tmap in sig_out:
        name = tmap.name.decode() if isinstance(tmap.name, bytes) else tmap.name
        if name not in outs or int(tmap.tensorIndex) not in prod:
            continue
        p = prod[int(tmap.tensorIndex)]
        if fbgraph.op_name(model_obj, sg.operators[p]) != "DEQUANTIZE" or \
                cons.get(int(tmap.tensorIndex)):
            continue
        src = int(sg.operators[p].inputs[0])
        sg.outputs = np.array([src if x == tmap.tensorIndex else x for x in sg.outputs], np.int32)
        tmap.tensorIndex = src
        drop.add(p)
    sg.operators = [op for i, op in enumerate(sg.operators) if i not in drop]
    return len(drop)


def unquantize_islands(model_obj, keep_float: set[int]) -> int:
    """Undo ``QUANTIZE -> op -> DEQUANTIZE`` islands around ops in ``keep_float``.

    ``mlir_quantize`` quantizes same-scale ops (SPLIT, SPLIT_V, RESHAPE) even when they are
    denylisted; for ops of a layer that must stay float, wire the op to the float tensors
    and drop the conversions.  Returns the number of ops rewired.
    """
    sg = model_obj.subgraphs[0]
    prod, cons = fbgraph.producers(sg), fbgraph.consumers(sg)
    drop: set[int] = set()
    fixed = 0
    for i in sorted(keep_float):
        op = sg.operators[i]
        data_in = [k for k, t in enumerate(op.inputs)
                   if t >= 0 and int(t) in prod and sg.tensors[t].type == 9]
        if not data_in:
            continue
        qs = [prod[int(op.inputs[k])] for k in data_in]
        if any(fbgraph.op_name(model_obj, sg.operators[q]) != "QUANTIZE" for q in qs):
            continue
        users = [c for t in op.outputs for c in cons.get(int(t), [])]
        if not users or any(fbgraph.op_name(model_obj, sg.operators[u]) != "DEQUANTIZE"
                            for u in users):
            continue
        if any(int(t) in sg.outputs for t in op.outputs):
            continue
        inputs = list(op.inputs)
        for k, q in zip(data_in, qs):
            inputs[k] = sg.operators[q].inputs[0]
            if len(cons.get(int(sg.operators[q].outputs[0]), [])) == 1:
                drop.add(q)
        op.inputs = np.array(inputs, np.int32)
        outs = []
        for t in op.outputs:
            deqs = cons.get(int(t), [])
            outs.append(sg.operators[deqs[0]].outputs[0])
            drop.update(deqs[:1])
            for extra in deqs[1:]:  # several DEQUANTIZE of one tensor: alias to the first
                for c in cons.get(int(sg.operators[extra].outputs[0]), []):
                    sg.operators[c].inputs = np.array(
                        [outs[-1] if x == sg.operators[extra].outputs[0] else x
                         for x in sg.operators[c].inputs], np.int32)
                drop.add(extra)
        op.outputs = np.array(outs, np.int32)
        fixed += 1
    sg.operators = [op for k, op in enumerate(sg.operators) if k not in drop]
    return fixed


# -- QAT grids (docs/design.md §8) ------------------------------------------------------------

INT4 = 17  # schema TensorType.INT4 (two values per byte, the first in the low nibble)
INT32, INT8, FLOAT32 = 2, 9, 0
#: Op version of a kernel with an INT4 filter and int8 activations (TFLite op_version.cc).
INT4_OP_VERSION = {"FULLY_CONNECTED": 10, "CONV_2D": 7, "DEPTHWISE_CONV_2D": 7}
#: Weight input position -> bias input position of the ops whose weights snap to a grid (the
#: integer LSTM's gate biases are in units of input scale x input-to-gate weight scale).
BIAS_OF = {"FULLY_CONNECTED": {1: 2}, "CONV_2D": {1: 2}, "DEPTHWISE_CONV_2D": {1: 2},
           "UNIDIRECTIONAL_SEQUENCE_LSTM": {p: 11 + p for p in range(1, 5)}}


def pack_int4(k: np.ndarray) -> np.ndarray:
    """Integers in [-8, 7] packed two per byte, row-major, the first of each pair in the low
    nibble (TFLite's dense INT4 layout); an odd count pads the last high nibble with 0."""
    flat = np.asarray(k, np.int8).reshape(-1)
    if flat.size and (flat.min() < -8 or flat.max() > 7):
        raise ValueError("values outside the int4 range [-8, 7]")
    nib = (flat.astype(np.int16) & 0x0F).astype(np.uint8)
    if nib.size % 2:
        nib = np.append(nib, np.uint8(0))
    return (nib[0::2] | (nib[1::2] << 4)).astype(np.uint8)


def unpack_int4(data: bytes | np.ndarray, count: int) -> np.ndarray:
    """The ``count`` int8 values of a packed INT4 buffer (inverse of :func:`pack_int4`)."""
    raw = np.frombuffer(bytes(data), np.uint8)
    both = np.empty(raw.size * 2, np.int16)
    both[0::2], both[1::2] = raw & 0x0F, raw >> 4
    both[both > 7] -= 16
    return both[:count].astype(np.int8)


def _scales(q, shape, axis: int) -> np.ndarray:
    """Per-element scale array of a quantized tensor (per tensor or along ``axis``)."""
    s = np.asarray(q.scale, np.float64)
    if s.size == 1:
        return np.full(shape, s[0])
    view = [1] * len(shape)
    view[axis] = -1
    return np.broadcast_to(s.reshape(view), shape)


def _own_buffer(model_obj, ten) -> None:
    """Give ``ten`` a buffer of its own before its data changes (the converter shares the
    buffers of identical constants)."""
    from tensorflow.lite.python import schema_py_generated as schema

    sg = model_obj.subgraphs[0]
    if sum(1 for x in sg.tensors if x.buffer == ten.buffer) > 1:
        buf = schema.BufferT()
        buf.data = np.array(model_obj.buffers[ten.buffer].data, np.uint8).copy()
        model_obj.buffers.append(buf)
        ten.buffer = len(model_obj.buffers) - 1


def snap_weight(model_obj, op_index: int, pos: int, k: np.ndarray, steps: np.ndarray,
                axis: int, int4: bool) -> None:
    """Store the trained grid in weight input ``pos`` of op ``op_index``: integers ``k`` (in the
    file's layout) with scale ``steps`` (one per tensor, or along ``axis``) and zero point 0,
    as INT8 or packed INT4; rescale the op's bias to the new weight scale.

    Checked: the converter's INT8 weights must already be the grid to within half of their own
    step (the same network), and ``k`` must fit the container; else :class:`ConversionError`.
    """
    from tfdenoise.errors import ConversionError

    sg = model_obj.subgraphs[0]
    op = sg.operators[op_index]
    name = fbgraph.op_name(model_obj, op)
    ten = sg.tensors[int(op.inputs[pos])]
    label = f"{fbgraph.tensor_name(ten)} ({name} input {pos})"
    if ten.type != INT8 or list(ten.shape) != list(k.shape):
        raise ConversionError(f"{label}: expected an INT8 tensor of shape {list(k.shape)}")
    q = ten.quantization
    old_scale = _scales(q, tuple(ten.shape), int(q.quantizedDimension or 0))
    old = fbgraph.const_array(model_obj, ten).astype(np.float64) * old_scale
    new_scale = _scales_from(steps, tuple(ten.shape), axis)
    grid = k.astype(np.float64) * new_scale
    if np.max(np.abs(old - grid)) > 0.5 * np.max(old_scale) + 1e-6 * max(1.0, np.max(np.abs(grid))):
        raise ConversionError(f"{label}: the converter's weights are not the trained grid "
                              f"(max difference {np.max(np.abs(old - grid)):.3g})")
    limit = 7 if int4 else 127
    if np.max(np.abs(k)) > limit:
        raise ConversionError(f"{label}: levels up to {np.max(np.abs(k))} do not fit "
                              f"{'INT4' if int4 else 'INT8'} ([-{limit}, {limit}])")
    _own_buffer(model_obj, ten)
    data = pack_int4(k) if int4 else np.asarray(k, np.int8).reshape(-1).view(np.uint8)
    model_obj.buffers[ten.buffer].data = np.array(data, np.uint8)
    ratio = np.asarray(steps, np.float64).reshape(-1) / np.asarray(q.scale, np.float64).reshape(-1)
    q.scale = np.asarray(steps, np.float32).reshape(-1)
    q.zeroPoint = np.zeros(q.scale.size, np.int64)
    q.quantizedDimension = int(axis) if q.scale.size > 1 else 0
    if int4:
        ten.type = INT4
        code = model_obj.operatorCodes[op.opcodeIndex]
        code.version = max(code.version, INT4_OP_VERSION[name])
    bias_pos = BIAS_OF.get(name, {}).get(pos)
    if bias_pos is not None and bias_pos < len(op.inputs) and op.inputs[bias_pos] >= 0:
        _rescale_bias(model_obj, sg.tensors[int(op.inputs[bias_pos])], ratio)


def _scales_from(steps: np.ndarray, shape: tuple[int, ...], axis: int) -> np.ndarray:
    steps = np.asarray(steps, np.float64).reshape(-1)
    if steps.size == 1:
        return np.full(shape, steps[0])
    view = [1] * len(shape)
    view[axis] = -1
    return np.broadcast_to(steps.reshape(view), shape)


def _rescale_bias(model_obj, bias, ratio: np.ndarray) -> None:
    """An INT32 bias re-expressed in units scaled by ``ratio`` (new / old weight scale), same
    real values to within half a new unit."""
    if bias.type != INT32 or bias.quantization is None or bias.quantization.scale is None:
        return
    old_scale = np.asarray(bias.quantization.scale, np.float64).reshape(-1)
    n = len(np.frombuffer(bytes(model_obj.buffers[bias.buffer].data), np.int32))
    new_scale = np.broadcast_to(old_scale * ratio, (n,)) if max(old_scale.size, ratio.size) > 1 \
        else old_scale * ratio
    real = np.frombuffer(bytes(model_obj.buffers[bias.buffer].data), np.int32) * \
        np.broadcast_to(old_scale, (n,))
    ints = np.clip(np.round(real / np.broadcast_to(new_scale, (n,))), -2 ** 31, 2 ** 31 - 1).astype(np.int32)
    _own_buffer(model_obj, bias)
    model_obj.buffers[bias.buffer].data = ints.view(np.uint8).copy()
    bias.quantization.scale = np.asarray(new_scale, np.float32).reshape(-1)
    bias.quantization.zeroPoint = np.zeros(bias.quantization.scale.size, np.int64)
    bias.quantization.quantizedDimension = 0


def float_softmax(model_obj) -> int:
    """Run an INT8 graph's final SOFTMAX in float: ``DEQUANTIZE`` its int8 input and make its
    output (a graph output) float32.  A 12-class softmax costs nothing next to the network, and
    float probabilities keep the values between 255/256 and 1 that a detection threshold needs.
    Returns the number of softmax ops changed."""
    from tensorflow.lite.python import schema_py_generated as schema

    sg = model_obj.subgraphs[0]
    done = 0
    for i, op in enumerate(list(sg.operators)):
        if fbgraph.op_name(model_obj, op) != "SOFTMAX" or int(op.outputs[0]) not in set(sg.outputs):
            continue
        src, out = sg.tensors[int(op.inputs[0])], sg.tensors[int(op.outputs[0])]
        if src.type != INT8:
            continue
        f = schema.TensorT()
        f.shape = np.array(src.shape, np.int32)
        f.type, f.buffer = FLOAT32, 0
        f.name = (fbgraph.tensor_name(src) + "_float").encode()
        sg.tensors.append(f)
        deq = schema.OperatorT()
        deq.opcodeIndex = _opcode_index(model_obj, DEQUANTIZE, 2)
        deq.inputs = np.array([op.inputs[0]], np.int32)
        deq.outputs = np.array([len(sg.tensors) - 1], np.int32)
        op.inputs = np.array([len(sg.tensors) - 1], np.int32)
        out.type, out.quantization = FLOAT32, None
        sg.operators.insert(sg.operators.index(op), deq)
        done += 1
    return done
