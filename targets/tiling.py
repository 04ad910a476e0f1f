"""L1 tiling (docs/design.md §5): tiles sized to fill L1, double-buffered.

    L1_usable  = l1_budget - core_stack * (cores + 1)          (cluster controller included)
    tile_cap   = L1_usable / 2                                 (double buffering)
    io         = (input + output activation bytes) of the layer, kept in L1 for the layer
                 when io <= tile_cap / 2, else tiled together with the parameters
    N_tiles    = max(1, ceil(param_bytes / (tile_cap - io)))   or ceil((params + io) / tile_cap)
    A layer whose single weight row (in_features x element bytes) exceeds the parameter room
    does not fit L1 (fits_l1 = False).
Conv and depthwise layers with a geometry (DORY-style, docs/design.md §5 double buffering) tile
output channels and output rows instead: a tile of co_t channels x h_t rows holds

    weights    co_t * param_bytes / c_out                     (filters + bias / scales)
    input      rows(h_t) * W_i * c_t * b      rows(h) = min(H_i, (h - 1) * stride_h + k_h)
                                              (the halo of k_h - stride_h rows; c_t = c_in for
                                              conv, co_t / depth multiplier for depthwise)
    output     h_t * W_o * co_t * b
    tile_cap   = (L1_usable - buffers) / 2   buffers = per-core im2col buffers, not double
               buffered (conv: cores * 2 pixels * k_h k_w c_in * b; depthwise: cores * k_w * H_i * b)
    N_tiles    = ceil(c_out / co_t) * ceil(H_o / h_t), the fewest tiles that fit tile_cap
               (co_t a multiple of 4 channels, h_t >= 1 row); stride_h = the smallest s with
               ceil(H_i / s) = H_o ('same') or ceil((H_i - k_h + 1) / s) = H_o ('valid').
    L2 -> L1   weights once (a channel tile stays while its row tiles run) + the input of every
               tile (re-read per channel tile for conv) + every output once
A layer whose smallest tile (one output row x 4 channels) exceeds tile_cap does not fit L1.
Tiles split into a streamed group (parameters read L3 -> L2 at run time) and a resident
group (promoted), in proportion to their bytes, so that `schedule` can apply
`t = N_tiles * max(t_L3->L2, t_L2->L1, t_core)` per group. Boards without L1
(`l1_size = 0`, cores read L2/L3 directly) get one tile per group and no L2->L1 traffic.
Split layers (`MemoryPlan.resident_tiles`, docs/promotion.md): k tiles of whole weight rows

    rows       = units x gates (LSTM 4, GRU 3; else units or output elements), row = P / rows
    rows/tile  = max(1, floor(param_tile_bytes / row))
    R_k        = sum over the layer's tensors of floor(bytes * k rows/tile / rows)

are resident (a group of k tiles, no L3 term); the rest (P - R_k bytes) is tiled as above on
its own, its streamed and resident bytes in proportion. Groups run streamed first (output
rows are independent, so the order is free): the next layer's first L3 tile can then be
prefetched while this layer's resident tiles run (targets/schedule.py).
"""
from __future__ import annotations

import math

from typing import NamedTuple

from tfdenoise.targets.types import ACT_BYTES, Board, ConvGeometry, Layer, MemoryPlan, Overflow, TileGroup, Tiling
from tfdenoise.vocab import LayerKind

#: Output channels per conv tile step (the 4 channels of one matrix-loop block).
CHANNEL_STEP = 4


def l1_usable(board: Board) -> int:
    """L1 bytes available to the network's tiles."""
    return max(0, int(board.c("memory.l1_budget") - board.c("memory.core_stack") * (board.c("compute.cores") + 1)))


def io_bytes(layer: Layer) -> int:
    """Activation bytes a layer reads and writes (kernel precision)."""
    return (layer.in_elems + layer.out_elems) * ACT_BYTES.get(layer.precision, 4)


def param_tile_bytes(board: Board, layer: Layer) -> int:
    """Parameter bytes per L1 tile of `layer` (also the size of one streamed sub-tensor)."""
    cap = l1_usable(board) // 2
    if cap <= 0:
        return layer.param_bytes
    io = io_bytes(layer)
    room = cap - io if io <= cap // 2 else cap
    return max(1, min(layer.param_bytes, room))


def tile_layer(board: Board, layer: Layer, plan: MemoryPlan) -> Tiling:
    """N_tiles of `layer` and the bytes/MACs each tile moves, split streamed/resident."""
    streamed = plan.streamed_bytes.get(layer.name, 0)
    k = getattr(plan, "resident_tiles", {}).get(layer.name, 0)   # (duck-typed plans: none split)
    split = split_bytes(board, layer, k) if k else 0
    rest = layer.param_bytes - split         # bytes tiled by the formulas of the module header
    io = io_bytes(layer)
    cap = l1_usable(board) // 2
    has_l1 = board.c("memory.l1_size") > 0 and cap > 0
    fits, row, room = True, 0, 0
    tile = min(cap, layer.param_bytes + io) if has_l1 else 0
    over = None
    if not has_l1:
        n_total = 1
    elif is_conv_tiled(layer):
        conv = conv_tiles(board, layer)
        n_total, io, tile, fits = conv.n_tiles, conv.l2_bytes - layer.param_bytes, conv.tile_bytes, conv.fits
        if not fits:
            over = Overflow("the L1 tile", f"the smallest tile (1 output row x {conv.co_t} channels with "
                                           f"its input rows and weights) of {layer.name}", conv.tile_bytes, conv.cap)
    elif layer.param_bytes == 0:
        n_total = max(1, math.ceil(io / cap))
    else:
        keep_io = io <= cap // 2
        room = cap - io if keep_io else cap
        row = _row_bytes(layer)
        fits = row <= room
        n_total = max(1, math.ceil(rest / room)) if keep_io else \
            max(1, math.ceil((rest + (io * rest / layer.param_bytes if split else io)) / cap))
        if not fits:
            over = Overflow("the L1 tile", f"one weight row of {layer.name}", row, room)
    if layer.param_bytes == 0:
        groups = [TileGroup(n_total, 0, io // n_total if has_l1 else 0, layer.macs // n_total)]
    else:
        groups = _param_groups(layer, n_total, streamed, rest - streamed, io, has_l1)
        if split:
            groups += _param_groups(layer, k, 0, split, io, has_l1)
    return Tiling(layer.name, tile, tuple(groups), fits, over)


def _param_groups(layer: Layer, n_total: int, streamed: int, resident: int, io: int,
                  has_l1: bool) -> list[TileGroup]:
    """`n_total` tiles holding `streamed` + `resident` of the layer's parameter bytes: a streamed
    group then a resident group, tiles in proportion to bytes; activations and MACs in
    proportion to the layer's parameter bytes."""
    groups = []
    n_s = 0 if streamed == 0 else max(1, round(n_total * streamed / (streamed + resident)))
    n_r = 0 if resident == 0 else max(1, n_total - n_s)
    if not has_l1:
        n_s, n_r = min(n_s, 1), min(n_r, 1)
    for n, pbytes, l3 in ((n_s, streamed, True), (n_r, resident, False)):
        if n == 0:
            continue
        share = pbytes / layer.param_bytes
        l2 = (pbytes + io * share) / n if has_l1 else 0
        groups.append(TileGroup(n, int(pbytes / n) if l3 else 0, int(l2), int(layer.macs * share / n)))
    return groups


def weight_rows(layer: Layer) -> int:
    """Output rows of weights (units x gates, else output elements): the unit of a split."""
    rows = layer.units * (4 if layer.kind == LayerKind.LSTM else 3 if layer.kind == LayerKind.GRU else 1)
    return rows if rows > 0 else max(1, layer.out_elems)


def rows_per_tile(board: Board, layer: Layer) -> int:
    """Whole weight rows in one L1 parameter tile of `layer` (at least 1)."""
    return max(1, min(weight_rows(layer), param_tile_bytes(board, layer) // max(1, _row_bytes(layer))))


def can_split(board: Board, layer: Layer) -> bool:
    """A layer whose rows can be split L2/L3 in whole L1 tiles: a board with L1, a row-tiled
    layer (not conv) with weights whose rows fit a tile, more than one tile of rows."""
    return (layer.param_bytes > 0 and board.c("memory.l1_size") > 0 and l1_usable(board) > 0
            and not is_conv_tiled(layer) and _row_bytes(layer) <= param_tile_bytes(board, layer)
            and rows_per_tile(board, layer) < weight_rows(layer))


def split_share(n: int, k: int, board: Board, layer: Layer) -> int:
    """Of a quantity `n` spread evenly over the layer's rows (a tensor's bytes or elements), the
    part in the rows of `k` whole L1 tiles: floor(n * k rows/tile / rows)."""
    rows = weight_rows(layer)
    return n * min(rows, k * rows_per_tile(board, layer)) // rows


def split_bytes(board: Board, layer: Layer, k: int) -> int:
    """Parameter bytes (all tensors) in the rows of `k` whole L1 tiles of `layer` (R_k)."""
    return sum(split_share(p.nbytes, k, board, layer) for p in layer.params)


def _row_bytes(layer: Layer) -> int:
    """Bytes of one output row of weights: the smallest unit a tile can hold."""
    return math.ceil(layer.param_bytes / weight_rows(layer))


class ConvTiles(NamedTuple):
    """The L1 tiling of one conv / depthwise layer (see the module header)."""

    co_t: int          # output channels per tile
    h_t: int           # output rows per tile
    n_tiles: int
    tile_bytes: int    # one tile: weights + input rows (halo included) + output rows
    l2_bytes: int      # L2 -> L1 and L1 -> L2 bytes of the whole layer
    cap: int           # L1 bytes one tile may use (double buffered)
    fits: bool


def is_conv_tiled(layer: Layer) -> bool:
    """Conv and depthwise layers with a geometry tile by channels x rows."""
    g = layer.geometry
    return g is not None and layer.kind in (LayerKind.CONV, LayerKind.DEPTHWISE_CONV) and \
        g.op in ("CONV_2D", "DEPTHWISE_CONV_2D")


def stride_h(g: ConvGeometry) -> int:
    """Row stride that maps in_h to out_h ('same' or 'valid' padding); 1 when none does."""
    for s in range(1, max(1, g.in_h) + 1):
        if math.ceil(g.in_h / s) == g.out_h or math.ceil(max(1, g.in_h - g.k_h + 1) / s) == g.out_h:
            return s
    return 1


def conv_tiles(board: Board, layer: Layer) -> ConvTiles:
    """The fewest channel x row tiles of a conv / depthwise layer that fit the L1 tile cap."""
    g, b = layer.geometry, ACT_BYTES.get(layer.precision, 4)
    depthwise = layer.kind == LayerKind.DEPTHWISE_CONV
    cores = board.c("compute.cores")
    buffers = cores * (g.k_w * g.in_h if depthwise else 2 * g.k_h * g.k_w * g.in_ch) * b
    cap = max(0, (l1_usable(board) - buffers) // 2)
    mult = max(1, g.out_ch // max(1, g.in_ch)) if depthwise else 1
    s = stride_h(g)
    w_ch = layer.param_bytes / max(1, g.out_ch)

    def in_rows(h: int) -> int:
        return min(g.in_h, (h - 1) * s + g.k_h)

    def in_ch(co: int) -> int:
        return math.ceil(co / mult) if depthwise else g.in_ch

    def size(co: int, h: int) -> int:
        return int(math.ceil(co * w_ch + in_rows(h) * g.in_w * in_ch(co) * b + h * g.out_w * co * b))

    step = min(CHANNEL_STEP, g.out_ch)
    best = None
    for co in sorted({min(g.out_ch, math.ceil(g.out_ch / n / step) * step) for n in range(1, g.out_ch + 1)},
                     reverse=True):
        h = _largest(lambda r: size(co, r) <= cap, g.out_h)
        if h == 0:
            continue
        n = math.ceil(g.out_ch / co) * math.ceil(g.out_h / h)
        if best is None or n < best[2]:
            best = (co, h, n)
    co, h, n = best or (step, 1, math.ceil(g.out_ch / step) * g.out_h)
    n_c, n_h = math.ceil(g.out_ch / co), math.ceil(g.out_h / h)
    reads = n_h * in_rows(h) * g.in_w * (g.in_ch * n_c if not depthwise else g.in_ch) * b
    l2 = layer.param_bytes + reads + g.outputs * b
    return ConvTiles(co, h, n, size(co, h), int(l2), cap, best is not None)


def _largest(ok, hi: int) -> int:
    """The largest r in [1, hi] with ok(r) (ok monotone decreasing), 0 if none."""
    lo, top = 0, hi
    while lo < top:
        mid = (lo + top + 1) // 2
        if ok(mid):
            lo = mid
        else:
            top = mid - 1
    return lo
