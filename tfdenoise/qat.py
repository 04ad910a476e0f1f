"""Sub-8-bit quantization-aware training, the arithmetic (docs/design.md §8; Zeng et al. 2022).

Stage 1 puts every weight matrix (dense and conv kernels, LSTM/GRU kernels and recurrent
kernels) through the tanh transform onto a symmetric b-bit grid::

    t  = tanh(w)                      u = t / max|t|  in [-1, 1]   (max over the group)
    L  = 2^(b-1) - 1                  (b >= 2; b = 1: L = 1)
    k  = round(L * u)                 integers in [-L, L]  (b = 1: k = sign(u) in {-1, +1})
    a  = max|w| (b >= 2), mean|w| (b = 1)  over the group, no gradient
    w' = k * s,  s = a / L            the grid value the layer uses (its "step" s)

``round`` and ``sign`` pass the gradient straight through (d k / d(L u) = 1), so the latent
float weights ``w`` are what the optimizer updates and ``w'`` what the forward pass uses.
The levels are symmetric around zero: ``k`` maps onto TFLite's int4 ([-7, 7], 1-4 bits) or
int8 ([-127, 127], 5-8 bits) grids with zero point 0 and scale ``s``.  Level counts: 8 bits
255, 5 bits 31, 4 bits 15, 2 bits 3 ({-1, 0, +1}: ternary), 1 bit 2 ({-1, +1}: binary, no
zero; scale mean|w| as in XNOR-Net, since max|w| would inflate every weight to the largest).

A stage-1 run from a float checkpoint starts its latent weights at the inverse of the transform
(``latent_init="atanh"``, the default), so that ``w'`` is the float weight on the grid::

    w_latent = atanh(w * tanh(M) / M),   M = max|w| over the group

gives ``max|w_latent| = M`` and ``u = w / M``: ``k = round(L w / M)``, linear symmetric
quantization of the float weights (b >= 2).  Copying the float weights in as latent ones
(``"copy"``) would start from ``tanh``-distorted weights: on the default LSTM128 (8 bits) the
stage-1 network before any training scores 1.890 instead of 1.966 PESQ-WB (float: 1.967) on 96
held-out mixtures (``tools/qat_heldout.py --epoch0``, docs/qat.md), and training spends its
epochs undoing the distortion.

A group is one output channel (dense, conv and GRU kernels: TFLite's per-channel scales),
the channel of a depthwise kernel, one gate of an LSTM kernel (the fused LSTM op stores each
gate's weights as its own tensor with one scale), or a whole tensor.

Stage 2 (from a stage-1 checkpoint) adds 8-bit linear fake quantization of the rest, as the
full-INT8 TFLite kernels run them: biases (symmetric, max range: :func:`linear_quantize`),
inputs and activations (tfmot's moving-average min/max quantizer, :mod:`tfdenoise.qat_quantizers`),
the LSTM/GRU hidden state (int8 over [-1, 1], where ``h = o tanh(c)`` and the GRU's convex mix
of tanh values stay, or over a learnt symmetric range) and the LSTM cell state as TFLite's integer LSTM holds it: int16
with a power-of-two scale (``2^ceil(log2 max|c|) / 2^15``, :func:`pot16_quantize`).

This module holds the math and the bit-width checks; the Keras side is
:mod:`tfdenoise.qat_quantizers` (tfmot QuantizeConfig for dense/conv, BatchNorm folding) and
:mod:`tfdenoise.qat_layers` (recurrent layers, the QAT network, the checkpoint entry);
:mod:`tfdenoise.qat_train` the train hook.
"""
from __future__ import annotations

import math
import numbers
import re
from typing import Sequence

import numpy as np

from tfdenoise.errors import InputError
from tfdenoise.vocab import FOLDED, QuantGroup

#: Weight widths the two-stage QAT trains (docs/design.md §8; 2 bits: ternary).
WEIGHT_BITS: tuple[int, ...] = (1, 2, 4, 5, 8)
#: Width of biases, inputs and activations in stage 2 (the INT8 kernels'), and of the LSTM cell.
ACT_BITS = 8
CELL_BITS = 16
STAGES: tuple[int, ...] = (1, 2)
#: How a stage-1 run from a float checkpoint sets its latent weights (module docstring).
LATENT_INITS: tuple[str, ...] = ("atanh", "copy")
#: Weight widths that fit TFLite's packed INT4 tensors (2 per byte; ops that run INT4 filters).
INT4_MAX_BITS = 4


# -- bit widths ------------------------------------------------------------------------------

def check_bits(value: object, option: str = "--qat-bits") -> int:
    """``value`` as one of :data:`WEIGHT_BITS` (an int, or a string of one); anything else
    (0, 9, 3.5, "four") is one :class:`InputError` line naming ``option``."""
    text = str(value).strip()
    bits = int(text) if re.fullmatch(r"[+]?\d+", text) else None
    if isinstance(value, bool) or (isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)):
        bits = None
    if bits not in WEIGHT_BITS:
        raise InputError(f"{option} {value}: weight bits must be one of "
                         f"{', '.join(map(str, WEIGHT_BITS))}")
    return bits


def check_stage(value: object) -> int:
    """``value`` as a QAT stage, 1 or 2 (one-line :class:`InputError` otherwise)."""
    if isinstance(value, bool) or value not in STAGES:
        raise InputError(f"--qat-stage must be 1 (weights) or 2 (weights, biases, inputs and "
                         f"activations; starts from a stage-1 checkpoint), got {value}")
    return int(value)


def parse_layer_bits(specs: Sequence[str]) -> tuple[tuple[str, int], ...]:
    """``--qat-layer-bits PATTERN=B ...`` as ``((pattern, bits), ...)``: each pattern a regular
    expression matched against whole layer names (first match wins), each B a weight width."""
    rules = []
    for spec in specs:
        pattern, sep, bits = str(spec).rpartition("=")
        if not sep or not pattern:
            raise InputError(f"--qat-layer-bits {spec}: expected PATTERN=BITS, e.g. 'rnn_.*=4'")
        try:
            re.compile(pattern)
        except re.error as exc:
            raise InputError(f"--qat-layer-bits {spec}: bad regular expression ({exc})") from None
        rules.append((pattern, check_bits(bits, f"--qat-layer-bits {pattern}=")))
    return tuple(rules)


def check_pattern(pattern: str, option: str = "--qat-train-layers") -> str:
    """``pattern`` if it compiles as a regular expression, else a one-line :class:`InputError`."""
    try:
        re.compile(pattern)
    except re.error as exc:
        raise InputError(f"{option} {pattern}: bad regular expression ({exc})") from None
    return pattern


def bits_for(layer: str, default: int, rules: Sequence[tuple[str, int]] = ()) -> int:
    """The weight width of ``layer``: the first rule whose pattern fully matches, else ``default``."""
    for pattern, bits in rules:
        if re.fullmatch(pattern, layer):
            return int(bits)
    return int(default)


def range_tensor(name: str) -> str:
    """The deployment tensor a stage-2 range layer quantizes (the contract between
    :mod:`tfdenoise.qat_layers` and ``converters/qat_export``): ``qat_input`` -> ``input``,
    ``qat_act_relu_in`` -> ``fc_in`` (folded), ``qat_pre_fc_out`` -> ``fc_out``,
    ``qat_rnn_0`` -> ``rnn_0``."""
    name = name.removeprefix("qat_")
    for prefix in ("act_", "pre_"):
        if name.startswith(prefix):
            layer = name[len(prefix):]
            return FOLDED.get(layer, layer)
    return name


def levels(bits: int) -> int:
    """L: the largest level index of a ``bits``-wide symmetric grid (levels ``-L..L``; 1 bit: 1)."""
    bits = check_bits(bits, "weight bits")
    return 1 if bits == 1 else 2 ** (bits - 1) - 1


def level_count(bits: int) -> int:
    """How many distinct values a ``bits``-wide grid has (255, 31, 15, 3, 2)."""
    return 2 if bits == 1 else 2 * levels(bits) + 1


def container_bits(bits: int, int4_op: bool = True) -> int:
    """Bits per stored weight in the file: 4 (packed INT4) for <= 4-bit weights of an op that runs
    INT4 filters, else 8 (INT8 container holding the b-bit grid)."""
    return 4 if int4_op and bits <= INT4_MAX_BITS else 8


# -- groups ------------------------------------------------------------------------------------

def group_axes(shape: Sequence[int], group: QuantGroup, gates: int = 1) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """``(view shape, reduce axes)``: the tensor seen as ``view`` so that reducing ``axes``
    gives one scale per group (tensor, output channel, depthwise input channel or gate)."""
    shape = tuple(int(d) for d in shape)
    if group == QuantGroup.TENSOR:
        return shape, tuple(range(len(shape)))
    if group == QuantGroup.CHANNEL:
        return shape, tuple(range(len(shape) - 1))
    if group == QuantGroup.DEPTHWISE:  # [kh, kw, cin, multiplier]: one scale per cin x multiplier
        return (*shape[:2], shape[2] * shape[3]), (0, 1)
    if group == QuantGroup.GATES:  # [in, gates * units] -> [in, gates, units]
        if shape[-1] % gates:
            raise InputError(f"a kernel of {shape[-1]} columns has no {gates} equal gates")
        return (*shape[:-1], gates, shape[-1] // gates), tuple(i for i in range(len(shape) + 1)
                                                               if i != len(shape) - 1)
    raise InputError(f"unknown quantization group {group!r}")


# -- TensorFlow (training) --------------------------------------------------------------------

def ste_round(x):
    """``round(x)`` (half to even) with the straight-through gradient (identity)."""
    from tfdenoise.keras import tf

    @tf.custom_gradient
    def _round(v):
        return tf.round(v), lambda dy: dy

    return _round(x)


def ste_sign(x):
    """``sign(x)`` with sign(0) = +1, straight-through gradient (identity)."""
    from tfdenoise.keras import tf

    @tf.custom_gradient
    def _sign(v):
        return tf.where(v >= 0, tf.ones_like(v), -tf.ones_like(v)), lambda dy: dy

    return _sign(x)


def tanh_grid(w, bits: int, group: QuantGroup = QuantGroup.TENSOR, gates: int = 1):
    """``(k, step)`` of latent weights ``w``: integer levels (as floats, straight-through
    gradient) shaped like ``w``, and the step of each group, shaped to broadcast against the
    group view; ``w' = k * step`` (see the module docstring)."""
    from tfdenoise.keras import tf

    view, axes = group_axes(w.shape, group, gates)
    v = tf.reshape(w, view)
    t = tf.tanh(v)
    m = tf.maximum(tf.reduce_max(tf.abs(t), axis=axes, keepdims=True), 1e-12)
    u = t / m
    if bits == 1:
        k = ste_sign(u)
        alpha = tf.stop_gradient(tf.reduce_mean(tf.abs(v), axis=axes, keepdims=True))
    else:
        k = ste_round(u * float(levels(bits)))
        alpha = tf.stop_gradient(tf.reduce_max(tf.abs(v), axis=axes, keepdims=True))
    step = tf.maximum(alpha, 1e-12) / float(levels(bits))
    return k, step


def tanh_quantize(w, bits: int, group: QuantGroup = QuantGroup.TENSOR, gates: int = 1):
    """Stage-1 weights: the grid value ``k * step`` of every latent weight, shaped like ``w``."""
    from tfdenoise.keras import tf

    k, step = tanh_grid(w, bits, group, gates)
    return tf.reshape(k * step, tf.shape(w))


def linear_quantize(x, bits: int = ACT_BITS):
    """Stage-2 symmetric linear fake quantization of a parameter tensor (biases): step
    ``max|x| / (2^(b-1) - 1)`` over the tensor, straight-through rounding."""
    from tfdenoise.keras import tf

    step = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(x)), 1e-12)) / float(2 ** (bits - 1) - 1)
    return ste_round(x / step) * step


def state_quantize(h, lo=-1.0, hi=1.0, bits: int = ACT_BITS):
    """Stage-2 recurrent hidden state: ``bits``-wide over [lo, hi] (default [-1, 1]: ``h = o
    tanh(c)`` and the GRU's convex mix of tanh values never leave it; a learnt, tighter range
    gives the int8 state finer steps)."""
    from tfdenoise.keras import tf

    return tf.quantization.fake_quant_with_min_max_vars(h, lo, hi, num_bits=bits)


def pot16_quantize(c):
    """Stage-2 LSTM cell state as the integer LSTM holds it: int16, scale a power of two,
    ``2^ceil(log2 max|c|) / 2^15`` (the range from this batch and step, no gradient)."""
    from tfdenoise.keras import tf

    peak = tf.stop_gradient(tf.maximum(tf.reduce_max(tf.abs(c)), 2.0 ** -15))
    top = tf.pow(2.0, tf.math.ceil(tf.math.log(peak) / math.log(2.0)))
    return tf.quantization.fake_quant_with_min_max_vars(
        c, -top, top * (2 ** 15 - 1) / 2 ** 15, num_bits=CELL_BITS, narrow_range=False)


# -- numpy (checkpoints and export) ---------------------------------------------------------

def latent_for(w: np.ndarray, bits: int, group: QuantGroup = QuantGroup.TENSOR,
               gates: int = 1) -> np.ndarray:
    """Latent weights whose stage-1 grid is the linear ``bits``-bit quantization of the float
    weights ``w`` (inverse tanh per group, module docstring); 1 bit (sign and mean|w|): ``w``."""
    if bits == 1:
        return np.asarray(w, np.float32)
    view, axes = group_axes(w.shape, group, gates)
    v = np.asarray(w, np.float64).reshape(view)
    m = np.maximum(np.abs(v).max(axis=axes, keepdims=True), 1e-12)
    t = np.clip(v * (np.tanh(m) / m), -1.0 + 1e-15, 1.0 - 1e-15)
    return np.arctanh(t).reshape(w.shape).astype(np.float32)


def grid_of(latent: np.ndarray, bits: int, group: QuantGroup = QuantGroup.TENSOR,
            gates: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """``(k, steps)`` of a latent weight array, computed by the training graph's own functions:
    ``k`` int32 shaped like ``latent``, ``steps`` float32, one per group (flat)."""
    from tfdenoise.keras import tf

    k, step = tanh_grid(tf.constant(latent, tf.float32), bits, group, gates)
    k = np.asarray(tf.reshape(k, latent.shape)).astype(np.int32)
    return k, np.asarray(step, np.float32).reshape(-1)


def expand_steps(steps: np.ndarray, shape: Sequence[int], group: QuantGroup, gates: int = 1) -> np.ndarray:
    """``steps`` (one per group) broadcast to a full array of ``shape``."""
    view, axes = group_axes(shape, group, gates)
    keep = [d for i, d in enumerate(view) if i not in axes]
    full = np.asarray(steps, np.float32).reshape(keep)
    for a in sorted(axes):
        full = np.expand_dims(full, a)
    return np.broadcast_to(full, view).reshape(tuple(shape))


def grid_values(k: np.ndarray, steps: np.ndarray, group: QuantGroup, gates: int = 1) -> np.ndarray:
    """``k * step`` in float32: the weights a layer trained with (and a file must hold)."""
    return (k.astype(np.float32) * expand_steps(steps, k.shape, group, gates)).astype(np.float32)


def levels_of(weights: np.ndarray, steps: np.ndarray, group: QuantGroup, gates: int = 1) -> np.ndarray:
    """The integer levels of grid ``weights`` given their ``steps``; a weight off the grid (not
    exactly ``k * step`` in float32) is an :class:`InputError`."""
    full = expand_steps(steps, weights.shape, group, gates)
    k = np.round(weights / full).astype(np.int32)
    if not np.array_equal((k.astype(np.float32) * full).astype(np.float32), weights.astype(np.float32)):
        bad = int(np.sum((k.astype(np.float32) * full) != weights))
        raise InputError(f"{bad} weights are not on their recorded grid (k * step)")
    return k
