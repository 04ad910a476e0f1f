"""Cortex-A53 with NEON (board cortex_a53): a simpler throughput model of TFLite-style NEON
kernels (8-bit containers for INT8, float32 lanes for FP32) on one core, priced by the core
file's issue rules (targets/cores.py; targets/boards/cores/cortex-a53.toml: dual issue, one
64-bit NEON data-processing op and one 64-bit load per cycle; a 128-bit op counts as two).

Inner loops (batch-1 matrix-vector, as XNNPACK's / ruy's GEMV kernels):
  int8  4 rows x 16 columns = 64 MACs per iteration: 4 x 16 B weights + 16 B inputs = 10 64-bit
        loads; per row 2 widening multiply-accumulates (SMULL + SMLAL2, 8b x 8b -> 16b, 8 lanes
        each) and one SADALP (16b pairs -> 32b accumulators, 128-bit = 2 ops)
        -> Mix(vldr=10, vfma=8, fop=8)                        (bound: the NEON pipe, 16 cycles)
  fp32  4 rows x 4 columns = 16 MACs: 4 x 16 B weights + 16 B inputs = 10 64-bit loads, one
        128-bit FMLA per row (= 2 ops)  -> Mix(vldr=10, vfma=8)   (bound: the load pipe, 10 cycles)
  loop  SUBS + branch per iteration / core.unroll
  per output  horizontal add + requantize / bias + clamp + store: Mix(fop=4, st=1)
Layer kernels (same shapes as targets/cortexm_kernels.py):
  dense / gru  matvec(rows = out_elems | 6 H, cols = macs / rows)
  lstm         T x [4 matvec(H, I + H) + 5 H activations + 3 H products]
  conv         im2col copy (P x K bytes, 16 B per load/store pair) + matvec(P x O, K) (the NEON
               pipe bounds the GEMM as it does the GEMV)
  depthwise    per window element and 8 channels (int8) / 4 channels (fp32):
               int8 Mix(vldr=2, vfma=1, fop=2), fp32 Mix(vldr=4, vfma=2)
  pool / softmax / elementwise / conversion / activations per element:
               pool int8 Mix(vldr=1, fop=1) per 8 lanes, fp32 per 2 lanes; softmax and fp32
               sigmoid/tanh: vectorised exp (Mix(fop=10) per element); int8 sigmoid/tanh: table
               lookup Mix(ld=2, st=1, alu=1); int8 add/mul: Mix(vldr=0.25, fop=1.5, vstr=0.125);
               fp32 add/mul: Mix(vldr=0.5, fop=0.5, vstr=0.25); conversion Mix(vldr=0.25, fop=1, vstr=0.25)
    t_core = sum / core.efficiency
Weights stream from DRAM through the caches: the schedule's L3 term (targets/schedule.py, the
prefetcher overlaps the stream with compute) and the promotion policy (weights that fit the L2
cache budget stay cached between inferences).
"""
from __future__ import annotations

from tfdenoise.targets.cores import Mix, price
from tfdenoise.targets.types import Board, Layer
from tfdenoise.vocab import LayerKind, Precision

BODY = {True: (4, 16, Mix(vldr=10, ld_runs=1, vfma=8, fop=8)), False: (4, 4, Mix(vldr=10, ld_runs=1, vfma=8))}
PER_OUTPUT = Mix(fop=4, st=1)
ACT = {True: Mix(ld=2, st=1, alu=1), False: Mix(fop=10, vldr=0.25, vstr=0.25)}
EW = {True: Mix(vldr=0.25, fop=1.5, vstr=0.125), False: Mix(vldr=0.5, fop=0.5, vstr=0.25)}
CONVERT = Mix(vldr=0.25, fop=1, vstr=0.25)


def _int8(layer: Layer) -> bool:
    return layer.precision == Precision.INT8


def matvec(board: Board, int8: bool, rows: float, cols: float) -> float:
    """rows x cols dot products with the NEON GEMV loop (module header)."""
    if rows <= 0 or cols <= 0:
        return 0.0
    r, c, body = BODY[int8]
    loop = Mix(alu=1, branch=1) * (1.0 / board.c("core.unroll"))
    iters = -(-cols // c)   # partial vectors padded
    return rows / r * (iters * price(board, body + loop) + price(board, Mix(alu=5, branch=1))) + \
        rows * price(board, PER_OUTPUT)


def _elementwise(board: Board, layer: Layer) -> float:
    i8 = _int8(layer)
    ew = CONVERT if layer.kind == LayerKind.CONVERSION else EW[i8]
    return layer.act_elems * price(board, ACT[i8]) + layer.ew_elems * price(board, ew)


def _kernel(board: Board, layer: Layer) -> float | None:
    i8, g = _int8(layer), layer.geometry
    if layer.kind == LayerKind.DENSE:
        rows = max(1, layer.out_elems)
        return matvec(board, i8, rows, layer.macs / rows)
    if layer.kind in (LayerKind.LSTM, LayerKind.GRU) and layer.units:
        gates = 4 if layer.kind == LayerKind.LSTM else 3
        return matvec(board, i8, gates * layer.units, layer.macs / (gates * layer.units))
    if layer.kind == LayerKind.CONV and g is not None:
        copy = g.out_h * g.out_w * g.patch * (1 if i8 else 4) / 16 * price(board, Mix(vldr=2, vstr=2))
        return copy + matvec(board, i8, g.out_h * g.out_w * g.out_ch, g.patch)
    if layer.kind == LayerKind.DEPTHWISE_CONV and g is not None:
        lanes, mix = (8, Mix(vldr=2, vfma=1, fop=2)) if i8 else (4, Mix(vldr=4, vfma=2))
        return g.out_h * g.out_w * (g.out_ch / lanes * g.k_h * g.k_w * price(board, mix)) + \
            g.outputs * price(board, PER_OUTPUT) / 4
    if layer.kind == LayerKind.POOL and g is not None:
        return g.outputs * g.k_h * g.k_w / (8 if i8 else 2) * price(board, Mix(vldr=1, fop=1))
    if layer.kind == LayerKind.SOFTMAX:
        return max(1, layer.out_elems) * price(board, Mix(fop=12, vldr=0.5, vstr=0.25))
    if layer.kind in (LayerKind.ELEMENTWISE, LayerKind.CONVERSION, LayerKind.LAYOUT):
        return 0.0
    return None


def core_cycles(board: Board, layer: Layer) -> float | None:
    """Cycles of `layer` on the A53 (module header); None: no kernel (generic estimate)."""
    k = _kernel(board, layer)
    if k is None:
        return None
    extra = 0.0 if layer.kind in (LayerKind.POOL, LayerKind.SOFTMAX) else _elementwise(board, layer)
    return (k + extra) / board.c("core.efficiency")
