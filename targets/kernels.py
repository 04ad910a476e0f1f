"""Kernel cycle models: pure functions of (board, layer), no state.

Matrix part (FC, LSTM, GRU, generic conv), outer loop over output features split on cores:

    loop(kind)      = (loop_macs, loop_cycles) from the board, INT8:
                        LSTM 16 MACs / 9 cycles (4x4 MACs: 5 loads + 4 SIMD MACs, docs/design.md §5)
                        GRU  12 MACs / 7 cycles (3x4 MACs: 4 loads + 3 SIMD MACs, docs/design.md §5)
                        FC   16 MACs / 9 cycles (assumed: LSTM loop shape)
    macs_per_loop   = loop_macs * r(precision),  r = 1 (INT8), fp16_mac_ratio (0.5, docs/design.md §5:
                      "half the MACs in the same time"), fp32_mac_ratio (FP32 and hybrid: float MACs)
    stall(prec)     = 1 for INT8, else 1 + fpu_contention * max(0, cores/fpus - 1)
                      (4 FPUs shared by 8 cores -> 1 + fpu_contention; FP16, FP32 and hybrid)
    t_mac           = ceil(macs / (cores * macs_per_loop)) * loop_cycles * stall
    generic kinds   (conv, depthwise, pooling, softmax without a kernel on the board):
                      t_mac(FC loop) / generic_efficiency
    CNN kernels     (conv, depthwise, max/avg pooling, softmax on a board with the optional
                     CNN constants, e.g. gap9): t_mac + t_ew of those layers are replaced by
                     targets/cnn_kernels.py (im2col + 4x2 matrix loop, depthwise loop, pooling
                     windows, softmax), t_act and t_deq are added as below

Element-wise part, also split on cores:

    t_act  = act_elems * (act_int8_cycles | act_fp16_cycles) / cores    (LUT vs approximation;
             FP32 and hybrid use the FP16 cost x fp16_mac_ratio / fp32_mac_ratio)
    t_ew   = ew_elems  * (conversion_cycles if kind == conversion else elementwise_cycles) / cores

Hybrid layers (INT8 weights, FP32 activations; docs/design.md §4) also convert every INT8
weight element they read to float before the float MAC:

    t_deq  = dequant_elems * hybrid_dequant_cycles / cores     (0 for other precisions;
             dequant_elems = INT8 weight elements read per inference: once per time
             step for sequence ops, else once, see targets/layers.py)

    t_unpack = INT4 weights unpacked to INT8 before the MAC (targets/int4.py, 0 without INT4)

    t_core = t_mac + t_act + t_ew + t_deq + t_unpack   (cycles for the whole layer, all tiles)
"""
from __future__ import annotations

import math

from tfdenoise.targets import cnn_kernels, cortexm, neon
from tfdenoise.targets.int4 import int4_unpack_cycles
from tfdenoise.targets.types import Board, Layer
from tfdenoise.vocab import LayerKind, Precision

#: Board loop constants (kernels.int8_<loop>_loop_*) per layer kind; every other kind with MACs
#: uses the FC loop.
LOOP_KIND = {LayerKind.LSTM: "lstm", LayerKind.GRU: "gru"}
GENERIC = {LayerKind.CONV, LayerKind.DEPTHWISE_CONV, LayerKind.POOL, LayerKind.SOFTMAX, LayerKind.GENERIC}


def precision_ratio(board: Board, precision: str) -> float:
    """MACs per inner loop relative to INT8."""
    return {Precision.INT8: 1.0, Precision.FP16: board.c("kernels.fp16_mac_ratio"),
            Precision.FP32: board.c("kernels.fp32_mac_ratio"),
            Precision.HYBRID: board.c("kernels.fp32_mac_ratio")}.get(precision, board.c("kernels.fp32_mac_ratio"))


def fpu_stall(board: Board, precision: str) -> float:
    """Slow-down of float kernels from cores sharing FPUs (1.0 for INT8)."""
    if precision == Precision.INT8:
        return 1.0
    cores, fpus = board.c("compute.cores"), board.c("compute.fpus")
    if fpus <= 0:
        return 1.0 + board.c("compute.fpu_contention")
    return 1.0 + board.c("compute.fpu_contention") * max(0.0, cores / fpus - 1.0)


def mac_cycles(board: Board, layer: Layer) -> float:
    """t_mac: cycles of the matrix part of `layer` on all cores."""
    if layer.macs <= 0:
        return 0.0
    loop = LOOP_KIND.get(layer.kind, "fc")
    loop_macs = board.c(f"kernels.int8_{loop}_loop_macs") * precision_ratio(board, layer.precision)
    loop_cycles = board.c(f"kernels.int8_{loop}_loop_cycles")
    cycles = math.ceil(layer.macs / (board.c("compute.cores") * loop_macs)) * loop_cycles
    cycles *= fpu_stall(board, layer.precision)
    if layer.kind in GENERIC:
        cycles /= board.c("kernels.generic_efficiency")
    return cycles


def act_elem_cycles(board: Board, precision: str) -> float:
    """Cycles of one sigmoid/tanh/exp on one core at `precision`."""
    if precision == Precision.INT8:
        return board.c("kernels.act_int8_cycles")
    per = board.c("kernels.act_fp16_cycles") * fpu_stall(board, precision)
    if precision in (Precision.FP32, Precision.HYBRID):
        per *= board.c("kernels.fp16_mac_ratio") / board.c("kernels.fp32_mac_ratio")
    return per


def act_cycles(board: Board, layer: Layer) -> float:
    """t_act: sigmoid/tanh/exp (LUT in INT8, vectorised approximation in FP16, FP32 for FP32 and hybrid)."""
    return layer.act_elems * act_elem_cycles(board, layer.precision) / board.c("compute.cores")


def ew_cycles(board: Board, layer: Layer) -> float:
    """t_ew: additions, multiplications, conversions, pooling windows."""
    key = "kernels.conversion_cycles" if layer.kind == LayerKind.CONVERSION else "kernels.elementwise_cycles"
    return layer.ew_elems * board.c(key) / board.c("compute.cores")


def dequant_cycles(board: Board, layer: Layer) -> float:
    """t_deq: hybrid layers convert each INT8 weight element they read to float (0 otherwise)."""
    if layer.precision != Precision.HYBRID:
        return 0.0
    return layer.dequant_elems * board.c("kernels.hybrid_dequant_cycles") / board.c("compute.cores")


def core_cycles(board: Board, layer: Layer) -> float:
    """t_core = t_mac + t_act + t_ew + t_deq (+ t_unpack of INT4 weights) for the whole layer."""
    return _kernel_cycles(board, layer) + int4_unpack_cycles(board, layer)


def _kernel_cycles(board: Board, layer: Layer) -> float:
    """t_mac + t_act + t_ew + t_deq of the board's kernel for `layer` (or the generic estimate)."""
    if board.core:  # a core file: Cortex-M (targets/cortexm.py) or Cortex-A NEON (targets/neon.py) kernels
        c = (cortexm.core_cycles if board.core_family == "cortex-m" else neon.core_cycles)(board, layer)
        if c is not None:
            return c
    if cnn_kernels.has_kernel(board, layer):  # CNN kernel replaces t_mac (and the pool/softmax t_ew)
        ew = ew_cycles(board, layer) if layer.kind in (LayerKind.CONV, LayerKind.DEPTHWISE_CONV) else 0.0
        return cnn_kernels.cnn_cycles(board, layer) + act_cycles(board, layer) + ew + \
            dequant_cycles(board, layer)
    return mac_cycles(board, layer) + act_cycles(board, layer) + ew_cycles(board, layer) + \
        dequant_cycles(board, layer)


def core_has_kernel(board: Board, layer: Layer) -> bool:
    """True when the board's core file model (Cortex-M / Cortex-A) prices `layer` itself."""
    if not board.core:
        return False
    return (cortexm.core_cycles if board.core_family == "cortex-m" else neon.core_cycles)(board, layer) is not None
