"""Sub-8-bit weights on the MCU (docs/design.md §8): INT4 unpacking and bytes at bit width.

A file from a QAT checkpoint stores <= 4-bit weights of fully connected and conv ops as packed
INT4 tensors (two per byte; the reader charges those container bytes) and 5-8-bit weights in
INT8 containers; its ``tfdenoise`` metadata gives each layer's trained ``weight_bits``.

Unpacking.  CMSIS-NN's int4 kernels (``arm_nn_vec_mat_mult_t_s4``, ``arm_convolve_s4``) run
int8 activations against int4 weights: the inner loop loads two bytes and sign-extends four
nibbles (``read_and_pad_s4``: a halfword load, masks and shifts, four ``SXTB16``) where the s8
loop loads one word and widens four weights with two ``SXTB16`` -- memory saving, not cycle
saving.  Each weight nibble is unpacked every time the loop reads it, i.e. once per MAC of the
layer::

    t_unpack = macs(layer with INT4 weights) * kernels.int4_unpack_cycles / compute.cores

(``kernels.int4_unpack_cycles``: extra cycles per weight element read, a board constant with
its source).  :func:`int4_unpack_cycles` is that term; the kernel models add it to a layer's
compute (targets/kernels.py, targets/cortexm.py).

Bytes at bit width.  Accelerators that pack 1-5-bit weights (Zeng et al. 2022's projection for
neural accelerators) store each weight element in ``weight_bits`` bits:
:func:`param_bytes_at_bit_width` counts the integer weights (INT8 / INT4 tensors) of layers whose
metadata gives ``weight_bits`` at ``ceil(elements * bits / 8)`` and every other parameter
(INT32 biases, float weights) at its stored size.
"""
from __future__ import annotations

import math
from typing import Sequence

from tfdenoise.errors import BoardError
from tfdenoise.targets.types import Board, Layer, ParamTensor

UNPACK_KEY = "kernels.int4_unpack_cycles"


def is_packed(p: ParamTensor) -> bool:
    """A packed sub-byte tensor (INT4: ``ceil(n / 2)`` bytes for ``n`` elements)."""
    return p.elements > 1 and p.nbytes < p.elements


def int4_weight_elements(layer: Layer) -> int:
    """Elements of the layer's packed INT4 parameters."""
    return sum(p.elements for p in layer.params if is_packed(p))


def int4_unpack_cycles(board: Board, layer: Layer) -> float:
    """t_unpack of one layer on all cores (0 for a layer without INT4 weights); a board without
    ``kernels.int4_unpack_cycles`` cannot price an INT4 layer (one-line :class:`BoardError`)."""
    if not int4_weight_elements(layer) or layer.macs <= 0:
        return 0.0
    if UNPACK_KEY not in board.constants:
        raise BoardError(f"board {board.name} has no {UNPACK_KEY}: it cannot price the INT4 "
                         f"weights of layer {layer.name}", board.path)
    return layer.macs * float(board.c(UNPACK_KEY)) / float(board.c("compute.cores"))


def layer_weight_bits(meta: dict | None) -> dict[str, int]:
    """``{layer name: weight_bits}`` from a file's ``tfdenoise`` metadata (empty when absent)."""
    out = {}
    for entry in (meta or {}).get("layers", []) if isinstance((meta or {}).get("layers"), list) else []:
        bits = entry.get("weight_bits") if isinstance(entry, dict) else None
        if isinstance(bits, int) and not isinstance(bits, bool) and 1 <= bits <= 32:
            out[str(entry.get("name"))] = bits
    return out


def param_bytes_at_bit_width(layers: Sequence[Layer], meta: dict | None) -> int:
    """Parameter bytes when the integer weights (stored at <= 1 byte per element: INT8 or INT4)
    of every layer whose metadata gives ``weight_bits`` take that many bits per element, and
    everything else (INT32 biases, float weights, layers without ``weight_bits``) its stored bytes."""
    bits = layer_weight_bits(meta)
    total = 0
    for la in layers:
        b = bits.get(la.name)
        for p in la.params:
            integer_weight = p.elements > 0 and p.nbytes <= p.elements
            total += math.ceil(p.elements * b / 8) if b is not None and b <= 8 and integer_weight else p.nbytes
    return total
