"""Memory plan (docs/design.md §5): L2 activation buffer, parameter streaming buffer, tensor promotion.

1. Activation buffer: every tensor passed between layers gets an L2 interval [first layer
   that touches it, last layer that reads it] (graph inputs/outputs and RNN states included);
   offsets are assigned greedily by size, first fit among tensors whose lifetimes overlap
   (TFLite's "greedy by size" arena planner). Element width = the kernel precision (INT8 1 B,
   FP16 2 B, FP32 and hybrid 4 B), since on the MCU FP16-weight models run FP16 activations.
2. Parameter streaming buffer: 2 x the largest L1 parameter tile (double-buffered sub-tensors
   streamed L3 -> L2 at run time); 0 if every parameter is promoted or the board has no L1
   (cores read the L3 directly, e.g. STM32 internal flash).
3. Promotion: before the inference loop, a named policy (`POLICIES`, targets/promotion.py)
   chooses the constant tensors copied L3 -> L2 inside `l2_budget - activations - streaming
   buffer`. The default `layer-order` promotes whole layers in execution order, skipping layers
   that do not fit. A split layer (time-per-byte-split) has the rows of k whole L1 tiles in L2
   (`MemoryPlan.partial`: bytes per tensor; `resident_tiles`: k), the rest streamed.
4. rho_L3 = parameters (elements) read from L3 at run time / all parameters (a split tensor
   counts its streamed rows: elements - floor(elements * k rows/tile / rows)).
A plan that cannot work is returned with `fits=False` and the reasons; it never raises.
"""
from __future__ import annotations

from typing import Sequence

from tfdenoise.targets.promotion import (DEFAULT_POLICY, POLICIES, Policy, align as _align,  # noqa: F401
                                         parse_policy)
from tfdenoise.targets.tiling import param_tile_bytes, split_share
from tfdenoise.targets.types import (ACT_BYTES, Board, Buffer, Layer, MemoryPlan, OperatingPoint, Overflow,
                                    PromotionContext)
from tfdenoise.errors import InputError
from tfdenoise.vocab import BufferKind


def plan_activations(layers: Sequence[Layer], tensor_elems: dict[int, int]) -> tuple[int, tuple[Buffer, ...]]:
    """Greedy-by-size L2 arena for tensors crossing layers. Returns (arena bytes, buffers)."""
    life: dict[int, list[int]] = {}
    width: dict[int, int] = {}
    last = len(layers) - 1
    for i, layer in enumerate(layers):
        for t in layer.inputs + layer.outputs:
            lo, hi = life.get(t, [i, i])
            life[t] = [min(lo, i), max(hi, i)]
            width[t] = max(width.get(t, 0), ACT_BYTES.get(layer.precision, 4))
    consumed = {t for la in layers for t in la.inputs}
    produced = {t for la in layers for t in la.outputs}
    for t, span in life.items():
        if t not in produced:           # graph input or persistent state: from the start
            span[0] = 0
        if t not in consumed:           # graph output: kept to the end of the inference
            span[1] = last
    placed: list[tuple[int, int, int, int, int]] = []  # (offset, size, lo, hi, tensor)
    for t in sorted(life, key=lambda t: -tensor_elems.get(t, 0) * width[t]):
        size = _align(tensor_elems.get(t, 0) * width[t])
        lo, hi = life[t]
        offset = 0
        for o, s, l2, h2, _ in sorted(p for p in placed if not (p[3] < lo or p[2] > hi)):
            if offset + size <= o:
                break
            offset = max(offset, o + s)
        placed.append((offset, size, lo, hi, t))
    arena = max((o + s for o, s, *_ in placed), default=0)
    buffers = tuple(Buffer(f"t{t}", BufferKind.ACTIVATION, o, s, f"{layers[lo].name}..{layers[hi].name}")
                    for o, s, lo, hi, t in sorted(placed))
    return arena, buffers


def plan_memory(layers: Sequence[Layer], tensor_elems: dict[int, int], board: Board,
                l3: str | None = None, policy: str = DEFAULT_POLICY,
                op: OperatingPoint | None = None) -> MemoryPlan:
    """Place every parameter (L2 promoted or L3 streamed) and lay out the L2 budget; `op` (the
    board's first operating point by default) is the one policies such as time-per-byte price."""
    l3 = l3 or board.default_l3
    if l3 not in board.l3:
        raise InputError(f"board {board.name} has no L3 memory {l3!r} (known: {', '.join(board.l3)})")
    if policy not in POLICIES:
        raise InputError(f"unknown promotion policy {policy!r} (known: {', '.join(POLICIES)})")
    budget = int(board.c("memory.l2_budget"))
    arena, act_buffers = plan_activations(layers, tensor_elems)
    param_bytes = sum(la.param_bytes for la in layers)
    param_elems = sum(la.param_elements for la in layers)
    all_params = frozenset(p.tensor for la in layers for p in la.params)
    tiles: dict[str, int] = {}
    if parse_policy(policy)[0] != "none" and _align(arena) + sum(_align(la.param_bytes) for la in layers) <= budget:
        promoted = all_params
    else:
        room = budget - _align(arena) - _stream_bytes(board, layers, frozenset())
        ctx = PromotionContext(board, op or board.operating_point(None), l3, tuple(layers), room)
        choice = POLICIES[policy](ctx) if room > 0 else None
        promoted, tiles = (choice.tensors, dict(choice.resident_tiles)) if choice else (frozenset(), {})
    partial = _partial(board, layers, promoted, tiles)
    stream = _stream_bytes(board, layers, promoted)
    buffers = _layout(act_buffers, arena, stream, layers, promoted, partial)
    while _end(buffers) > budget and (promoted or tiles):  # a guard: the policies count aligned buffers
        last = next(la for la in reversed(layers)
                    if la.name in tiles or any(p.tensor in promoted for p in la.params))
        promoted = promoted - {p.tensor for p in last.params}
        tiles.pop(last.name, None)
        partial = _partial(board, layers, promoted, tiles)
        stream = _stream_bytes(board, layers, promoted)
        buffers = _layout(act_buffers, arena, stream, layers, promoted, partial)
    streamed = {la.name: sum(p.nbytes - partial.get(p.tensor, 0) for p in la.params if p.tensor not in promoted)
                for la in layers}
    streamed_elems = sum(p.elements - _share(board, la, tiles, p.elements) for la in layers for p in la.params
                         if p.tensor not in promoted)
    overflows, reasons = _fit(board, l3, param_bytes, arena, stream, budget)
    return MemoryPlan(l3=l3, policy=policy, l2_budget=budget, activation_bytes=arena,
                      stream_buffer_bytes=stream, promoted=promoted, streamed_bytes=streamed,
                      buffers=tuple(buffers), param_bytes=param_bytes, param_elements=param_elems,
                      rho_l3=streamed_elems / param_elems if param_elems else 0.0,
                      fits=not reasons, reasons=tuple(reasons), overflows=tuple(overflows),
                      partial=partial, resident_tiles=tiles, prefetch=parse_policy(policy)[1])


def _share(board: Board, layer: Layer, tiles: dict[str, int], n: int) -> int:
    """The part of a quantity `n` of a not-promoted tensor of `layer` that its split puts in L2."""
    k = tiles.get(layer.name, 0)
    return split_share(n, k, board, layer) if k else 0


def _partial(board: Board, layers: Sequence[Layer], promoted: frozenset[int],
             tiles: dict[str, int]) -> dict[int, int]:
    """Bytes in L2 of each not-promoted tensor of a split layer (tensor index -> bytes)."""
    return {p.tensor: _share(board, la, tiles, p.nbytes) for la in layers if la.name in tiles
            for p in la.params if p.tensor not in promoted}


def _fit(board: Board, l3: str, param_bytes: int, arena: int, stream: int,
         budget: int) -> tuple[list[Overflow], list[str]]:
    """The memories the plan overflows (L3 size, L2 budget), with one reason line each."""
    mem = board.l3[l3]
    overflows, reasons = [], []
    if param_bytes > mem.size:
        overflows.append(Overflow(f"L3 {l3}", "parameters", param_bytes, mem.size))
        reasons.append(str(overflows[-1])
                       + ("; try --l3 " + ", ".join(n for n, m in board.l3.items() if m.size >= param_bytes)
                          if any(m.size >= param_bytes for m in board.l3.values()) else ""))
    if arena + stream > budget:
        overflows.append(Overflow("the L2 budget", "activations + streaming buffer", arena + stream, budget))
        reasons.append(f"activations ({arena:,} B) + streaming buffer ({stream:,} B) exceed the "
                       f"L2 budget ({budget:,} B) by {arena + stream - budget:,} B")
    return overflows, reasons


def _stream_bytes(board: Board, layers: Sequence[Layer], promoted: frozenset[int]) -> int:
    """Double-buffered L2 room for the largest streamed sub-tensor (0: nothing streams, or no L1)."""
    if board.c("memory.l1_size") <= 0 or all(p.tensor in promoted for la in layers for p in la.params):
        return 0
    return 2 * max((param_tile_bytes(board, la) for la in layers if la.params), default=0)


def _layout(act_buffers: tuple[Buffer, ...], arena: int, stream: int, layers: Sequence[Layer],
            promoted: frozenset[int], partial: dict[int, int]) -> list[Buffer]:
    """L2 map: activations, then the streaming buffer, then each layer's promoted weights
    (whole tensors and the rows of a split layer)."""
    buffers = list(act_buffers)
    offset = _align(arena)
    if stream:
        buffers.append(Buffer("param streaming buffer", BufferKind.STREAM, offset, stream))
        offset += stream
    for la in layers:
        size = sum(p.nbytes if p.tensor in promoted else partial.get(p.tensor, 0) for p in la.params)
        if size:
            buffers.append(Buffer(f"{la.name} weights", BufferKind.PROMOTED, offset, _align(size), la.name))
            offset += _align(size)
    return buffers


def _end(buffers: Sequence[Buffer]) -> int:
    return max((b.offset + b.size for b in buffers), default=0)
