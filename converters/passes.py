"""Flatbuffer rewrites applied after quantization.

* :func:`weights_to_fp16`: store the float32 constants of chosen ops as float16, each
  followed by a ``DEQUANTIZE`` op (the layout TFLite's own FP16 conversion produces);
* :func:`states_to_int8_io`: make the GRU state inputs/outputs of INT8 layers INT8 in the
  signature, so that the only activation conversions left are the ``QUANTIZE`` before and
  the ``DEQUANTIZE`` after the INT8 layers.
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
