"""8-core CNN kernels (conv, depthwise conv, max/average pooling, softmax): pure cycle formulas.

PULP-NN style kernels as DORY runs them on a PULP cluster (Garofalo et al. 2020, arXiv
1908.11263; Burrello et al. 2021, arXiv 2008.07127), priced from their inner loops on a board
that gives the optional ``kernels.*`` constants below (targets/boards/gap9.toml); a board
without them (``has_kernel`` False) keeps the generic estimate of targets/kernels.py.  Every
formula is the whole layer on all cores = the slowest core (makespan), in cycles.

Symbols: C = cores; lanes = SIMD lanes of one word: lanes = int8_conv_loop_macs / (4 x 2) x r
(INT8 4, FP16 2, FP32 1 on gap9; r = kernels.precision_ratio: FP16 and FP32 kernels do r of
the INT8 MACs per loop); s = kernels.fpu_stall (1 for INT8); b = activation bytes (ACT_BYTES);
iters(n) = floor(n / lanes) + n mod lanes (SIMD iterations + scalar leftovers, each costing one
loop iteration).

Conv (CONV_2D) = im2col + the 4 x 2 matrix loop (4 output channels x 2 pixels per iteration):

    P      = k_h * k_w * c_in        (patch: MACs behind one output)
    block  = iters(P) * conv_loop_cycles * s + 8 * requant_cycles     (4 x 2 outputs)
    im2col = P * b * im2col_cycles per pixel a core computes (0 for a pointwise 1 x 1
             conv with the input's shape: PULP-NN's pointwise kernels read the input directly)
    split over output rows (pulp_nn_conv_Ho_parallel), pixels (_HoWo_parallel) or channel
    quads (_Co_parallel); the model takes the fastest, as DORY picks the kernel per layer:
      rows:     px = ceil(H_o / C) * W_o;  t = ceil(px / 2) * ceil(c_out / 4) * block + px * im2col
      pixels:   px = ceil(H_o W_o / C);    t = same
      channels: px = H_o W_o;              t = ceil(px / 2) * ceil(ceil(c_out / 4) / C) * block
                                               + px * im2col          (every core builds all rows)

Depthwise (DEPTHWISE_CONV_2D), channels split on the cores (pulp_nn_depthwise_generic: one
output channel at a time, no input reuse across channels, so 2 loads per SIMD MAC):

    K      = k_h * k_w
    t      = ceil(c_out / C) * (H_o W_o * (iters(K) * dw_loop_cycles * s + requant_cycles)
                                + W_o * H_i * k_w * b * im2col_cycles)   (column buffer per output column)

Pooling, output elements split on the cores (rows, or channels of a global pool):

    max:   t = ceil(N_out / C) * k_h k_w * pool_max_cycles * b        (SIMD max over b-byte lanes)
    avg:   t = ceil(N_out / C) * (k_h k_w * pool_avg_cycles * s + requant_cycles + div_cycles)

Softmax over N elements, split on the cores with two cross-core reductions (max, sum):

    t = ceil(N / C) * (exp + 3 * elementwise_cycles) + 2 * C * elementwise_cycles
    exp = kernels.act_elem_cycles (LUT in INT8, approximation in FP16/FP32)
    (the 3 element-wise passes: max search, sum, scale by 1/sum; LOG_SOFTMAX is priced as softmax)

Convolutions with another opcode (TRANSPOSE_CONV, CONV_3D), L2 pooling and layers without a
geometry keep the generic estimate.  Channel leftovers (c_out mod 4) are priced as a full quad
(PULP-NN runs them in a cheaper 1 x 2 loop: an upper bound).
"""
from __future__ import annotations

import math

from tfdenoise.targets import kernels
from tfdenoise.targets.types import ACT_BYTES, Board, ConvGeometry, Layer
from tfdenoise.vocab import LayerKind

#: Outputs per matrix-loop iteration of the conv kernel (PULP-NN's 4 x 2 MatMul).
BLOCK_CH, BLOCK_PX = 4, 2
#: Opcode of the geometry each kind needs for a kernel.
KERNEL_OPS = {LayerKind.CONV: ("CONV_2D",), LayerKind.DEPTHWISE_CONV: ("DEPTHWISE_CONV_2D",),
              LayerKind.POOL: ("MAX_POOL_2D", "AVERAGE_POOL_2D")}


def has_kernel(board: Board, layer: Layer) -> bool:
    """True when `board` has the CNN kernel constants and `layer` is a shape they price."""
    if "kernels.int8_conv_loop_macs" not in board.constants:
        return False
    if layer.kind == LayerKind.SOFTMAX:
        return True
    ops = KERNEL_OPS.get(layer.kind)
    return ops is not None and layer.geometry is not None and layer.geometry.op in ops


def lanes(board: Board, precision: str) -> int:
    """Elements per SIMD word of the conv loop at `precision` (INT8 4 on gap9)."""
    int8 = board.c("kernels.int8_conv_loop_macs") / (BLOCK_CH * BLOCK_PX)
    return max(1, int(round(int8 * kernels.precision_ratio(board, precision))))


def iters(n: int, width: int) -> int:
    """Loop iterations over `n` elements `width` at a time, leftovers one by one."""
    return n // width + n % width


def conv_cycles(board: Board, layer: Layer) -> float:
    """Conv as im2col + the 4 x 2 matrix loop: the fastest of the three splits."""
    g, p = layer.geometry, layer.precision
    cores, b = board.c("compute.cores"), ACT_BYTES.get(p, 4)
    patch = g.k_h * g.k_w * g.in_ch
    block = iters(patch, lanes(board, p)) * board.c("kernels.int8_conv_loop_cycles") * kernels.fpu_stall(board, p) \
        + BLOCK_CH * BLOCK_PX * board.c("kernels.requant_cycles")
    im2col = 0.0 if is_pointwise(g) else patch * b * board.c("kernels.im2col_cycles")
    quads = math.ceil(g.out_ch / BLOCK_CH)
    pixels = g.out_h * g.out_w

    def t(px: int, q: int) -> float:
        return math.ceil(px / BLOCK_PX) * q * block + px * im2col

    return min(t(math.ceil(g.out_h / cores) * g.out_w, quads), t(math.ceil(pixels / cores), quads),
               t(pixels, math.ceil(quads / cores)))


def is_pointwise(g: ConvGeometry) -> bool:
    """A 1 x 1 stride-1 conv: no im2col (the input already is the matrix)."""
    return g.k_h == g.k_w == 1 and (g.in_h, g.in_w) == (g.out_h, g.out_w)


def depthwise_cycles(board: Board, layer: Layer) -> float:
    """Depthwise conv, one channel per accumulator, channels split on the cores."""
    g, p = layer.geometry, layer.precision
    cores, b = board.c("compute.cores"), ACT_BYTES.get(p, 4)
    per_out = iters(g.k_h * g.k_w, lanes(board, p)) * board.c("kernels.int8_dw_loop_cycles") \
        * kernels.fpu_stall(board, p) + board.c("kernels.requant_cycles")
    column = g.in_h * g.k_w * b * board.c("kernels.im2col_cycles")
    return math.ceil(g.out_ch / cores) * (g.out_h * g.out_w * per_out + g.out_w * column)


def pool_cycles(board: Board, layer: Layer) -> float:
    """Max or average pooling, output elements split on the cores."""
    g, p = layer.geometry, layer.precision
    per_core = math.ceil(g.outputs / board.c("compute.cores"))
    window = g.k_h * g.k_w
    if g.op == "MAX_POOL_2D":
        return per_core * window * board.c("kernels.pool_max_cycles") * ACT_BYTES.get(p, 4)
    per_out = window * board.c("kernels.pool_avg_cycles") * kernels.fpu_stall(board, p) \
        + board.c("kernels.requant_cycles") + board.c("kernels.div_cycles")
    return per_core * per_out


def softmax_cycles(board: Board, layer: Layer) -> float:
    """Softmax over the layer's output elements, two cross-core reductions."""
    cores, ew = board.c("compute.cores"), board.c("kernels.elementwise_cycles")
    n = layer.out_elems
    return math.ceil(n / cores) * (kernels.act_elem_cycles(board, layer.precision) + 3 * ew) + 2 * cores * ew


def cnn_cycles(board: Board, layer: Layer) -> float:
    """Cycles of the layer's CNN kernel (call only when `has_kernel`)."""
    return {LayerKind.CONV: conv_cycles, LayerKind.DEPTHWISE_CONV: depthwise_cycles,
            LayerKind.POOL: pool_cycles, LayerKind.SOFTMAX: softmax_cycles}[layer.kind](board, layer)
