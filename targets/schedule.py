"""Latency per layer and per inference (docs/design.md §5).

For each tile group g of a layer (streamed from L3, or resident in L2):

    t_L3->L2 = l3_bytes_per_tile / B3      B3 = L3 bandwidth x efficiency in B/cycle
                                           (flash: B/cycle, scales with the clock;
                                            eMRAM: MB/s / f_MHz, does not scale)
    t_L2->L1 = l2_bytes_per_tile / (dma_l2_l1 x dma_efficiency)
    t_core   = core cycles of the layer (kernels.core_cycles) x the group's share of MACs
               / tiles in the group
    t_g      = N_g * max(t_L3->L2, t_L2->L1, t_core)      (double buffering overlaps the three)

    t_layer  = sum_g t_g + layer_cycles + tile_cycles * N_tiles   (documented overheads)
    bound    = the term that dominates the most cycles of the layer

Cycles of L2-resident layers do not depend on the clock; eMRAM-bound layers take fewer
cycles (higher MAC/cycle) at a lower clock, as measured on silicon (docs/design.md §5).

Prefetch (a policy name ending in "+prefetch", `MemoryPlan.prefetch`; docs/promotion.md): the
L3 -> L2 load of layer i+1's first streamed tile runs during layer i, so that

    exposed_{i+1} = max(0, t_L3->L2 - max(t_L2->L1, t_core))   of layer i+1's first streamed
                    tile (its L3 time the double buffer does not already hide; 0 when layer
                    i+1 streams nothing)
    window_i      = min(cycles_i - dma_l3_i,                   (layer i's L3 DMA is idle)
                        cycles_i - (N_s,i - 1) * step_s,i)      (a streaming-buffer slot is free)
    saved_{i+1}   = floor(min(exposed_{i+1}, window_i))         (saved_0 = 0: no layer before)
    cycles_{i+1} -= saved_{i+1}

Assumption (stated, not measured): the L2 streaming buffer keeps its 2 slots of the largest
parameter tile (memory.py); no third slot is added.
Layer i+1's first tile goes to the slot layer i no longer uses: a layer that streams N_s
tiles (step_s = the max of the three terms) frees the slot of its second-to-last tile when its
last streamed step begins, and keeps it free through that step, its resident tiles (run after
its streamed ones, targets/tiling.py) and its overheads; a layer that streams nothing leaves
both slots free for all its cycles. Windows come from the schedule without prefetch (a layer
whose own first tile was prefetched only gains idle time). Only the layer just before is used
(layout layers with no cycles block the prefetch); boards without L1 (Cortex-M: no DMA) save
nothing.
"""
from __future__ import annotations

import math
from dataclasses import replace
from typing import Sequence

from tfdenoise.targets.kernels import core_cycles
from tfdenoise.targets import cortexm
from tfdenoise.targets.cores import is_cortex_m
from tfdenoise.targets.types import (Board, Layer, LayerTiming, MemoryPlan, OperatingPoint, Schedule, TileGroup,
                                    Tiling)
from tfdenoise.vocab import LayerKind


def group_terms(board: Board, op: OperatingPoint, l3: str, layer: Layer, tiling: Tiling,
                g: TileGroup) -> dict[str, float]:
    """Cycles of one tile of group `g`: the three terms of t_g = N_g * max(...) (module header)."""
    b3 = board.l3[l3].bytes_per_cycle(op.freq_mhz)
    b2 = board.c("memory.dma_l2_l1") * board.c("memory.dma_efficiency")
    share = (g.n_tiles * g.macs / layer.macs) if layer.macs else g.n_tiles / tiling.n_tiles
    return {"dma_l3": g.l3_bytes / b3 if g.l3_bytes else 0.0,
            "dma_l2": g.l2_bytes / b2 if g.l2_bytes and b2 > 0 else 0.0,
            "compute": core_cycles(board, layer) * share / g.n_tiles}


def time_layer(board: Board, op: OperatingPoint, plan: MemoryPlan, layer: Layer, tiling: Tiling) -> LayerTiming:
    """Cycles of one layer at operating point `op` under memory plan `plan`."""
    if is_cortex_m(board):  # one core waiting on its own flash reads: targets/cortexm.py
        return cortexm.time_layer(board, op, plan, layer, tiling)
    n_total = tiling.n_tiles
    sums = {"dma_l3": 0.0, "dma_l2": 0.0, "compute": 0.0}
    dom = dict.fromkeys(sums, 0.0)
    cycles = 0.0
    l3_bytes = 0
    for g in tiling.groups:
        terms = group_terms(board, op, plan.l3, layer, tiling, g)
        worst = max(terms, key=terms.get)
        cycles += g.n_tiles * terms[worst]
        dom[worst] += g.n_tiles * terms[worst]
        for k, v in terms.items():
            sums[k] += g.n_tiles * v
        l3_bytes += g.n_tiles * g.l3_bytes
    overhead = board.c("overhead.layer_cycles") + board.c("overhead.tile_cycles") * n_total
    if layer.kind == LayerKind.LAYOUT and not layer.macs:
        overhead = 0.0   # reshapes/state handles: no kernel launched on the MCU
    bound = max(dom, key=dom.get) if cycles else "compute"
    return LayerTiming(name=layer.name, kind=layer.kind, precision=layer.precision, macs=layer.macs,
                       n_tiles=n_total, cycles=int(math.ceil(cycles + overhead)),
                       dma_l3_cycles=int(round(sums["dma_l3"])), dma_l2_cycles=int(round(sums["dma_l2"])),
                       compute_cycles=int(round(sums["compute"])), overhead_cycles=int(round(overhead)),
                       bound=bound, l3_bytes=int(l3_bytes), estimate=layer.estimate)


def prefetch_savings(exposed: Sequence[float], window: Sequence[float]) -> tuple[int, ...]:
    """saved_0 = 0, saved_{i+1} = floor(min(exposed_{i+1}, window_i)) (module header): the pure
    rule, on each layer's exposed first-tile L3 cycles and free-DMA window."""
    return (0,) + tuple(int(math.floor(max(0.0, min(e, w)))) for e, w in zip(exposed[1:], window[:-1]))


def first_tile_exposed(board: Board, op: OperatingPoint, l3: str, layer: Layer, tiling: Tiling) -> float:
    """L3 cycles of the layer's first tile that the double buffer does not hide (0: no L3 tile
    first; streamed groups come first, targets/tiling.py)."""
    if not tiling.groups or not tiling.groups[0].l3_bytes:
        return 0.0
    t = group_terms(board, op, l3, layer, tiling, tiling.groups[0])
    return max(0.0, t["dma_l3"] - max(t["dma_l2"], t["compute"]))


def prefetch_window(board: Board, op: OperatingPoint, l3: str, layer: Layer, tiling: Tiling,
                    timing: LayerTiming) -> float:
    """Cycles of `layer` during which the L3 DMA is idle and a streaming slot is free."""
    free = timing.cycles - timing.dma_l3_cycles
    for g in tiling.groups:
        if g.l3_bytes:
            t = group_terms(board, op, l3, layer, tiling, g)
            free = min(free, timing.cycles - (g.n_tiles - 1) * max(t.values()))
    return max(0.0, free)


def with_prefetch(board: Board, op: OperatingPoint, plan: MemoryPlan, layers: Sequence[Layer],
                  tilings: Sequence[Tiling], timings: Sequence[LayerTiming]) -> tuple[LayerTiming, ...]:
    """`timings` with each layer's first L3 tile prefetched during the layer before."""
    if is_cortex_m(board) or board.c("memory.l1_size") <= 0:
        return tuple(timings)
    exposed = [first_tile_exposed(board, op, plan.l3, la, t) for la, t in zip(layers, tilings)]
    window = [prefetch_window(board, op, plan.l3, la, t, tm) for la, t, tm in zip(layers, tilings, timings)]
    return tuple(replace(tm, cycles=tm.cycles - s, prefetch_cycles=s) if s else tm
                 for tm, s in zip(timings, prefetch_savings(exposed, window)))


def schedule(board: Board, op: OperatingPoint, plan: MemoryPlan, layers: Sequence[Layer],
             tilings: Sequence[Tiling]) -> Schedule:
    """Per-layer timings and totals for one inference."""
    timings = tuple(time_layer(board, op, plan, la, t) for la, t in zip(layers, tilings))
    if plan.prefetch:
        timings = with_prefetch(board, op, plan, layers, tilings, timings)
    return Schedule(layers=timings, total_cycles=sum(t.cycles for t in timings),
                    macs=sum(la.macs for la in layers), freq_mhz=op.freq_mhz)
