"""The trained grid of a QAT checkpoint into an INT8 file (docs/design.md §8).

A QAT checkpoint's Keras model (:func:`tfdenoise.qat_layers.apply_grid`) holds weights that
are exactly ``k * step`` for integer levels ``k`` of a b-bit grid.  The converter quantizes
them like any weights (``max|w| / 127`` per tensor or channel), which for b < 8 puts the grid
on non-integer multiples of its scale; :func:`apply_grids` finds, for every weight input of
every INT8 op of a quantized layer, the Keras tensor it came from (in the file's layout:
transposed, per gate for the fused LSTM) and stores ``k`` with scale ``step``
(:func:`tfdenoise.converters.passes.snap_weight`): INT8 containers, or packed INT4 tensors
for <= 4-bit weights of the ops LiteRT runs with INT4 filters (fully connected, conv 2D).

File layouts of a Keras weight ``[in, out]`` / ``[kh, kw, cin, cout]``:

* FULLY_CONNECTED ``[out, in]``, one scale per output channel (axis 0; GRU kernels are one
  FC over all three gates);
* CONV_2D ``[cout, kh, kw, cin]``, one scale per output channel (axis 0);
* DEPTHWISE_CONV_2D ``[1, kh, kw, cin]``, one scale per channel (axis 3);
* UNIDIRECTIONAL_SEQUENCE_LSTM: inputs 1-4 (input to gate i, f, c, o) ``[u, in]`` and 5-8
  (recurrent) ``[u, u]``, one scale each: the Keras kernel's gate blocks, transposed.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tfdenoise.errors import ConversionError
from tfdenoise.qat import range_tensor
from tfdenoise.vocab import QuantGroup

from tfdenoise.converters import build, fbgraph, passes
from tfdenoise.converters.calibration import MIN_RANGE

#: Weight inputs of each op kind that carry a layer's grid.
WEIGHT_INPUTS = {"FULLY_CONNECTED": (1,), "CONV_2D": (1,), "DEPTHWISE_CONV_2D": (1,),
                 "UNIDIRECTIONAL_SEQUENCE_LSTM": tuple(range(1, 9))}
#: Ops that run INT4 filters with int8 activations in LiteRT (and CMSIS-NN).
INT4_OPS = ("FULLY_CONNECTED", "CONV_2D")


@dataclass(frozen=True)
class Layout:
    """One Keras grid tensor (or one gate of it) in a file's layout."""

    key: str          # "layer/weight[/gate]"
    layer: str
    k: np.ndarray     # integer levels, file layout
    steps: np.ndarray  # one per tensor, or per channel along ``axis``
    axis: int
    bits: int


def layouts(layer: str, weight: str, grid: dict) -> list[Layout]:
    """The file layouts of one grid (``apply_grid``'s ``{"k", "steps", "bits", "group", "gates"}``)."""
    k, steps, group, bits = grid["k"], np.asarray(grid["steps"], np.float32), QuantGroup(grid["group"]), grid["bits"]
    key = f"{layer}/{weight}"
    if group == QuantGroup.CHANNEL and k.ndim == 4:
        return [Layout(key, layer, k.transpose(3, 0, 1, 2), steps, 0, bits)]
    if group == QuantGroup.CHANNEL and k.ndim == 2:
        return [Layout(key, layer, k.T, steps, 0, bits)]
    if group == QuantGroup.DEPTHWISE and k.ndim == 4:
        return [Layout(key, layer, k.reshape(k.shape[0], k.shape[1], -1)[None], steps, 3, bits)]
    if group == QuantGroup.GATES:
        u = k.shape[1] // int(grid["gates"])
        return [Layout(f"{key}/{g}", layer, k[:, g * u:(g + 1) * u].T, steps[g:g + 1], 0, bits)
                for g in range(int(grid["gates"]))]
    if group == QuantGroup.TENSOR and k.ndim == 2:
        return [Layout(key, layer, k.T, steps, 0, bits)]
    raise ConversionError(f"no file layout for a {group} grid of shape {list(k.shape)} ({key})")


def _distance(model_obj, ten, lay: Layout) -> float:
    """max |converter's dequantized weights - grid| in units of the converter's largest step."""
    q = ten.quantization
    if ten.type != passes.INT8 or list(ten.shape) != list(lay.k.shape) or q is None or q.scale is None:
        return np.inf
    scale = passes._scales(q, tuple(ten.shape), int(q.quantizedDimension or 0))  # noqa: SLF001
    old = fbgraph.const_array(model_obj, ten).astype(np.float64) * scale
    grid = lay.k.astype(np.float64) * passes._scales_from(lay.steps, tuple(ten.shape), lay.axis)  # noqa: SLF001
    return float(np.max(np.abs(old - grid)) / np.max(scale))


def apply_grids(model_obj, op_layer: list[str | None], grids: dict[tuple[str, str], dict],
                int4: bool = True) -> dict[str, dict]:
    """Snap every INT8 weight of the quantized layers to its grid; returns per layer
    ``{"weight_bits", "storage"}`` (``int4`` | ``int8``).  Every grid tensor of a layer that has
    INT8 ops must be found in the file, else :class:`ConversionError`."""
    sg = model_obj.subgraphs[0]
    by_layer: dict[str, list[Layout]] = {}
    for (layer, weight), grid in grids.items():
        by_layer.setdefault(layer, []).extend(layouts(layer, weight, grid))
    found: set[str] = set()
    out: dict[str, dict] = {}
    for i, op in enumerate(sg.operators):
        layer, name = op_layer[i], fbgraph.op_name(model_obj, op)
        if layer not in by_layer or name not in WEIGHT_INPUTS:
            continue
        for pos in WEIGHT_INPUTS[name]:
            if pos >= len(op.inputs) or op.inputs[pos] < 0:
                continue
            ten = sg.tensors[int(op.inputs[pos])]
            if ten.type != passes.INT8 or not fbgraph.is_constant(model_obj, ten):
                continue
            free = [lay for lay in by_layer[layer] if lay.key not in found]
            best = min(free, key=lambda lay: _distance(model_obj, ten, lay), default=None)
            if best is None or not np.isfinite(_distance(model_obj, ten, best)):
                raise ConversionError(f"{fbgraph.tensor_name(ten)} ({name} of {layer}): no trained "
                                      "grid tensor of that shape")
            packed = int4 and best.bits <= 4 and name in INT4_OPS
            passes.snap_weight(model_obj, i, pos, best.k, best.steps, best.axis, packed)
            found.add(best.key)
            entry = out.setdefault(layer, {"weight_bits": best.bits, "storage": "int8"})
            entry["storage"] = "int4" if packed else entry["storage"]
    for layer in out:
        missing = [lay.key for lay in by_layer[layer] if lay.key not in found]
        if missing:
            raise ConversionError(f"layer {layer}: grid tensors {', '.join(missing)} not found in the file")
    return out


def _interval(lo: float, hi: float) -> tuple[float, float]:
    """A trained range as the file's interval: ``(0, hi)`` where training kept it one-sided
    (``--qat-ranges asymmetric``: its low end is exactly 0, and a stage-2 run continues only
    with its own layout), else the symmetric ``(-r, r)``."""
    lo, hi = float(lo), float(hi)
    if lo >= 0.0:
        return (0.0, max(hi, MIN_RANGE))
    r = max(abs(lo), abs(hi), MIN_RANGE)
    return (-r, r)


def trained_ranges(model_obj, op_layer: list[str | None],
                   act_ranges: dict[str, list[float]]) -> dict[int, tuple[float, float]]:
    """Activation intervals ``{tensor index: (lo, hi)}`` a stage-2 checkpoint trained with, for
    the tensors of a calibrated denoiser flatbuffer: the graph input (``qat_input``), each fully
    connected op's output (``qat_act_<relu>`` after a folded ReLU, ``qat_pre_<layer>`` before a
    sigmoid, ``qat_act_<layer>`` otherwise) and each fused LSTM's output (``qat_<layer>``: the
    hidden state's learnt range, else 1: the int8 state over [-1, 1]); names map to layers by
    :func:`tfdenoise.qat.range_tensor`, as the QAT network names them."""
    sg = model_obj.subgraphs[0]
    by_layer: dict[str, tuple[float, float]] = {}
    for name, (lo, hi) in act_ranges.items():   # a pre-sigmoid range wins over the sigmoid's output
        if name.startswith(("qat_act_", "qat_pre_")) and \
                (name.startswith("qat_pre_") or range_tensor(name) not in by_layer):
            by_layer[range_tensor(name)] = _interval(lo, hi)
    out: dict[int, tuple[float, float]] = {}
    if "qat_input" in act_ranges and len(sg.inputs):
        out[int(sg.inputs[0])] = _interval(*act_ranges["qat_input"])
    for i, op in enumerate(sg.operators):
        name, layer = fbgraph.op_name(model_obj, op), op_layer[i]
        if name == "FULLY_CONNECTED" and layer in by_layer:
            out[int(op.outputs[0])] = by_layer[layer]
        elif name == "UNIDIRECTIONAL_SEQUENCE_LSTM":  # the learnt state range, else [-1, 1]
            out[int(op.outputs[0])] = _interval(*act_ranges.get(f"qat_{layer}", (-1.0, 1.0)))
    return out


def calibrated_act_ranges(model, calib, method, kind) -> dict[str, tuple[float, float]]:
    """The INT8 intervals the converter's calibration (``method``, laid out as ``kind``) gives
    the tensors a stage-2 QAT network quantizes, for ``tfdenoise train --qat-calib-ranges``:
    ``"input"`` (the network input) and, per deployment layer run by one op, that op's output
    (a fully connected op's after its folded ReLU or before its sigmoid; a fused LSTM's hidden
    state).  A GRU layer (several ops) is left out: its state range keeps being learnt."""
    f32 = build.convert_float(model)
    calibrated = build.calibrate_only(model, build.representative_inputs(f32, calib), f32)
    intervals = build.collect_ranges(calibrated, calib, method, kind)
    m = fbgraph.load(calibrated)
    sg = m.subgraphs[0]
    outputs: dict[str, list[int]] = {}
    for op, layer in zip(sg.operators, build.graph_of(model).op_layers(m)):
        if layer is not None and fbgraph.op_name(m, op) in ("FULLY_CONNECTED", "UNIDIRECTIONAL_SEQUENCE_LSTM"):
            outputs.setdefault(layer, []).append(int(op.outputs[0]))
    out = {layer: intervals[ts[0]] for layer, ts in outputs.items() if len(ts) == 1 and ts[0] in intervals}
    if int(sg.inputs[0]) in intervals:
        out["input"] = intervals[int(sg.inputs[0])]
    return out
