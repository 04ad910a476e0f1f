"""L1 tiling (docs/design.md §5): tiles sized to fill L1, double-buffered.

    L1_usable  = l1_budget - core_stack * (cores + 1)          (cluster controller included)
    tile_cap   = L1_usable / 2                                 (double buffering)
    io         = (input + output activation bytes) of the layer, kept in L1 for the layer
                 when io <= tile_cap / 2, else tiled together with the parameters
    N_tiles    = max(1, ceil(param_bytes / (tile_cap - io)))   or ceil((params + io) / tile_cap)
    A layer whose single weight row (in_features x element bytes) exceeds the parameter room
    does not fit L1 (fits_l1 = False).
Tiles split into a streamed group (parameters read L3 -> L2 at run time) and a resident
group (promoted), in proportion to their bytes, so that `schedule` can apply
`t = N_tiles * max(t_L3->L2, t_L2->L1, t_core)` per group. Boards without L1
(`l1_size = 0`, cores read L2/L3 directly) get one tile per group and no L2->L1 traffic.
"""
from __future__ import annotations

import math

from tfdenoise.targets.types import ACT_BYTES, Board, Layer, MemoryPlan, Overflow, TileGroup, Tiling
from tfdenoise.vocab import LayerKind


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
    resident = layer.param_bytes - streamed
    io = io_bytes(layer)
    cap = l1_usable(board) // 2
    has_l1 = board.c("memory.l1_size") > 0 and cap > 0
    fits, row, room = True, 0, 0
    if not has_l1:
        n_total = 1
    elif layer.param_bytes == 0:
        n_total = max(1, math.ceil(io / cap))
    else:
        keep_io = io <= cap // 2
        room = cap - io if keep_io else cap
        row = _row_bytes(layer)
        fits = row <= room
        n_total = max(1, math.ceil(layer.param_bytes / room)) if keep_io else \
            max(1, math.ceil((layer.param_bytes + io) / cap))
    groups = []
    if layer.param_bytes == 0:
        groups.append(TileGroup(n_total, 0, io // n_total if has_l1 else 0, layer.macs // n_total))
    else:
        n_s = 0 if streamed == 0 else max(1, round(n_total * streamed / layer.param_bytes))
        n_r = 0 if resident == 0 else max(1, n_total - n_s)
        if not has_l1:
            n_s, n_r = min(n_s, 1), min(n_r, 1)
        for n, pbytes, l3 in ((n_s, streamed, True), (n_r, resident, False)):
            if n == 0:
                continue
            share = pbytes / layer.param_bytes
            l2 = (pbytes + io * share) / n if has_l1 else 0
            groups.append(TileGroup(n, int(pbytes / n) if l3 else 0, int(l2), int(layer.macs * share / n)))
    tile = min(cap, layer.param_bytes + io) if has_l1 else 0
    over = None if fits else Overflow("the L1 tile", f"one weight row of {layer.name}", row, room)
    return Tiling(layer.name, tile, tuple(groups), fits, over)


def _row_bytes(layer: Layer) -> int:
    """Bytes of one output row of weights: the smallest unit a tile can hold."""
    rows = layer.units * (4 if layer.kind == LayerKind.LSTM else 3 if layer.kind == LayerKind.GRU else 1)
    if rows <= 0:
        rows = max(1, layer.out_elems)
    return math.ceil(layer.param_bytes / rows)
