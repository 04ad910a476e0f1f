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
"""
from __future__ import annotations

import math
from typing import Sequence

from tfdenoise.targets.kernels import core_cycles
from tfdenoise.targets import cortexm
from tfdenoise.targets.cores import is_cortex_m
from tfdenoise.targets.types import Board, Layer, LayerTiming, MemoryPlan, OperatingPoint, Schedule, Tiling
from tfdenoise.vocab import LayerKind


def time_layer(board: Board, op: OperatingPoint, plan: MemoryPlan, layer: Layer, tiling: Tiling) -> LayerTiming:
    """Cycles of one layer at operating point `op` under memory plan `plan`."""
    if is_cortex_m(board):  # one core waiting on its own flash reads: targets/cortexm.py
        return cortexm.time_layer(board, op, plan, layer, tiling)
    b3 = board.l3[plan.l3].bytes_per_cycle(op.freq_mhz)
    b2 = board.c("memory.dma_l2_l1") * board.c("memory.dma_efficiency")
    t_core_total = core_cycles(board, layer)
    n_total = tiling.n_tiles
    sums = {"dma_l3": 0.0, "dma_l2": 0.0, "compute": 0.0}
    dom = dict.fromkeys(sums, 0.0)
    cycles = 0.0
    l3_bytes = 0
    for g in tiling.groups:
        share = (g.n_tiles * g.macs / layer.macs) if layer.macs else g.n_tiles / n_total
        terms = {"dma_l3": g.l3_bytes / b3 if g.l3_bytes else 0.0,
                 "dma_l2": g.l2_bytes / b2 if g.l2_bytes and b2 > 0 else 0.0,
                 "compute": t_core_total * share / g.n_tiles}
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


def schedule(board: Board, op: OperatingPoint, plan: MemoryPlan, layers: Sequence[Layer],
             tilings: Sequence[Tiling]) -> Schedule:
    """Per-layer timings and totals for one inference."""
    timings = tuple(time_layer(board, op, plan, la, t) for la, t in zip(layers, tilings))
    return Schedule(layers=timings, total_cycles=sum(t.cycles for t in timings),
                    macs=sum(la.macs for la in layers), freq_mhz=op.freq_mhz)
