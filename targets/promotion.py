"""L2 promotion policies (docs/design.md §5, docs/promotion.md): which constant tensors are copied
L3 -> L2 before the inference loop, inside the room the memory plan leaves them.

A policy maps a `PromotionContext` (board, operating point, L3 memory, layers in execution
order, room in bytes) to a `Promotion` (whole tensors, and split layers: the rows of k whole L1
tiles). Sizes count 4-byte aligned, as the L2 layout places them (targets/memory.py).

    layer-order     whole layers in execution order while they fit (first fit; the default)
    tensor-order    single tensors in execution order, first fit (can split a layer L2/L3)
    largest-first   whole layers, largest parameter footprint first
    smallest-first  whole layers, smallest first (promotes the most layers)
    none            nothing: every parameter streams from L3
    time-per-byte   single tensors by decreasing L3 time saved per byte of L2 (the greedy of
                    the 0/1 knapsack: value = cycles saved, weight = bytes, capacity = room):
        saving(layer) = cycles(layer, all streamed) - cycles(layer, all in L2)
                      = sum_g N_g * (max(t_L3->L2, t_L2->L1, t_core) - max(t_L2->L1, t_core))
                        on gap9 (targets/schedule.py; the L3 wait promotion removes); the flash
                        stalls on Cortex-M boards (targets/cortexm.py)
        ratio         = saving(layer) / param_bytes(layer), the same for each of its tensors
                        (the saving is spread over the layer's bytes, as its tiles are)
        Layers in decreasing ratio (ties: execution order); each tensor of the layer, in order,
        is taken when it fits the room left, else skipped. Layers that never wait on L3
        (ratio 0) come last: their tensors save no time, only L3 read energy.
    time-per-byte-split  time-per-byte, and after a layer's whole tensors the layer's still
                    streamed tensors get the rows of as many whole L1 tiles as fit the room
                    left (targets/tiling.py: rows, R_k; at most all tiles but one), before the
                    next layer: the fractional knapsack at L1-tile granularity. Only layers a
                    board can split (L1, row tiles: targets/tiling.can_split).
    NAME+prefetch   NAME's promotion; the schedule also loads each layer's first L3 tile during
                    the layer before where that layer leaves the L3 DMA idle (targets/schedule.py)
"""
from __future__ import annotations

from typing import Callable, Iterable

from tfdenoise.targets.schedule import time_layer
from tfdenoise.targets.tiling import can_split, rows_per_tile, split_share, tile_layer, weight_rows
from tfdenoise.targets.types import Layer, MemoryPlan, ParamTensor, Promotion, PromotionContext

Policy = Callable[[PromotionContext], Promotion]
#: Policy-name suffix that turns on the first-tile prefetch of targets/schedule.py.
PREFETCH = "+prefetch"


def align(n: int, a: int = 4) -> int:
    """`n` rounded up to a multiple of `a` (L2 buffers are word aligned)."""
    return (n + a - 1) // a * a


def _whole_layers(order, budget: int) -> frozenset[int]:
    chosen: set[int] = set()
    used = 0
    for layer in order:
        need = align(sum(p.nbytes for p in layer.params if p.tensor not in chosen))
        if need and used + need <= budget:
            chosen.update(p.tensor for p in layer.params)
            used += need
    return frozenset(chosen)


def _first_fit(params: Iterable[ParamTensor], chosen: set[int], used: int, room: int) -> int:
    """Add to `chosen`, in order, each tensor of `params` not yet chosen whose aligned size fits
    `room` with `used` bytes taken (first fit); returns the bytes used after."""
    for p in params:
        if p.tensor not in chosen and used + align(p.nbytes) <= room:
            chosen.add(p.tensor)
            used += align(p.nbytes)
    return used


def layer_order(ctx: PromotionContext) -> Promotion:
    """docs/design.md §5 default: whole layers in execution order while they fit (first fit)."""
    return Promotion(_whole_layers(ctx.layers, ctx.room))


def tensor_order(ctx: PromotionContext) -> Promotion:
    """Individual tensors in execution order, first fit (can split a layer L2/L3)."""
    chosen: set[int] = set()
    _first_fit((p for layer in ctx.layers for p in layer.params), chosen, 0, ctx.room)
    return Promotion(frozenset(chosen))


def largest_first(ctx: PromotionContext) -> Promotion:
    """Whole layers, largest parameter footprint first."""
    return Promotion(_whole_layers(sorted(ctx.layers, key=lambda la: -la.param_bytes), ctx.room))


def smallest_first(ctx: PromotionContext) -> Promotion:
    """Whole layers, smallest parameter footprint first (promotes the most layers)."""
    return Promotion(_whole_layers(sorted(ctx.layers, key=lambda la: la.param_bytes), ctx.room))


def no_promotion(ctx: PromotionContext) -> Promotion:
    """Stream every parameter from L3 (lower bound on L2 use)."""
    return Promotion(frozenset())


def l3_saving(ctx: PromotionContext, layer: Layer) -> int:
    """Modeled cycles `layer` saves when all its parameters are in L2 instead of L3."""
    def cycles(streamed: int) -> int:
        probe = MemoryPlan(l3=ctx.l3, policy="probe", l2_budget=0, activation_bytes=0, stream_buffer_bytes=0,
                           promoted=frozenset(), streamed_bytes={layer.name: streamed}, buffers=(),
                           param_bytes=layer.param_bytes, param_elements=layer.param_elements,
                           rho_l3=0.0, fits=True)
        return time_layer(ctx.board, ctx.op, probe, layer, tile_layer(ctx.board, layer, probe)).cycles

    return max(0, cycles(layer.param_bytes) - cycles(0)) if layer.params else 0


def by_time_per_byte(ctx: PromotionContext) -> list[tuple[float, Layer]]:
    """(saving per byte, layer) for layers with parameters, best ratio first (ties: execution order)."""
    rated = [(l3_saving(ctx, la) / la.param_bytes, i, la) for i, la in enumerate(ctx.layers) if la.param_bytes]
    return [(r, la) for r, _, la in sorted(rated, key=lambda t: (-t[0], t[1]))]


def split_tiles(ctx: PromotionContext, layer: Layer, chosen: frozenset[int], left: int) -> tuple[int, int]:
    """(k, aligned bytes): the most whole L1 tiles whose rows of `layer`'s not-chosen tensors fit
    `left` bytes, keeping at least one row streamed; (0, 0) when none or the layer cannot split."""
    rest = [p for p in layer.params if p.tensor not in chosen]
    if not rest or not can_split(ctx.board, layer):
        return 0, 0
    best = (0, 0)
    for k in range(1, weight_rows(layer) // rows_per_tile(ctx.board, layer) + 1):
        if k * rows_per_tile(ctx.board, layer) >= weight_rows(layer):
            break
        need = align(sum(split_share(p.nbytes, k, ctx.board, layer) for p in rest))
        if need > left:
            break
        best = (k, need)
    return best


def _greedy(ctx: PromotionContext, split: bool) -> Promotion:
    """time-per-byte (split=False) and time-per-byte-split (module header)."""
    chosen: set[int] = set()
    tiles: dict[str, int] = {}
    used = 0
    for _, layer in by_time_per_byte(ctx):
        used = _first_fit(layer.params, chosen, used, ctx.room)
        if split:
            k, need = split_tiles(ctx, layer, frozenset(chosen), ctx.room - used)
            if k:
                tiles[layer.name] = k
                used += need
    return Promotion(frozenset(chosen), tiles)


def time_per_byte(ctx: PromotionContext) -> Promotion:
    """Whole tensors by decreasing L3 cycles saved per byte of L2 (0/1 knapsack greedy)."""
    return _greedy(ctx, split=False)


def time_per_byte_split(ctx: PromotionContext) -> Promotion:
    """time-per-byte, then the rows of whole L1 tiles of each still-streamed layer (fractional)."""
    return _greedy(ctx, split=True)


BASE_POLICIES: dict[str, Policy] = {
    "layer-order": layer_order,
    "tensor-order": tensor_order,
    "largest-first": largest_first,
    "smallest-first": smallest_first,
    "none": no_promotion,
    "time-per-byte": time_per_byte,
    "time-per-byte-split": time_per_byte_split,
}
#: Every policy name: the base policies, then each with the first-tile prefetch.
POLICIES: dict[str, Policy] = {**BASE_POLICIES, **{n + PREFETCH: f for n, f in BASE_POLICIES.items()}}
DEFAULT_POLICY = "layer-order"


def parse_policy(name: str) -> tuple[str, bool]:
    """(base policy name, prefetch on) of a policy name (no validation: see `POLICIES`)."""
    return (name[:-len(PREFETCH)], True) if name.endswith(PREFETCH) else (name, False)


def policy_help() -> str:
    """One line naming the policies, for --policy help texts."""
    return ", ".join(BASE_POLICIES) + f"; each also with '{PREFETCH}' (e.g. time-per-byte{PREFETCH})"
