"""Memory plan (docs/design.md §5): L2 activation buffer, parameter streaming buffer, tensor promotion.

1. Activation buffer: every tensor passed between layers gets an L2 interval [first layer
   that touches it, last layer that reads it] (graph inputs/outputs and RNN states included);
   offsets are assigned greedily by size, first fit among tensors whose lifetimes overlap
   (TFLite's "greedy by size" arena planner). Element width = the kernel precision (INT8 1 B,
   FP16 2 B, FP32 and hybrid 4 B), since on the MCU FP16-weight models run FP16 activations.
2. Parameter streaming buffer: 2 x the largest L1 parameter tile (double-buffered sub-tensors
   streamed L3 -> L2 at run time); 0 if every parameter is promoted or the board has no L1
   (cores read the L3 directly, e.g. STM32 internal flash).
3. Promotion: before the inference loop, a named policy (`POLICIES`) chooses the constant
   tensors copied L3 -> L2 inside `l2_budget - activations - streaming buffer`. The default
   `layer-order` promotes whole layers in execution order, skipping layers that do not fit.
4. rho_L3 = parameters (elements) read from L3 at run time / all parameters.
A plan that cannot work is returned with `fits=False` and the reasons; it never raises.
"""
from __future__ import annotations

from typing import Callable, Sequence

from tfdenoise.targets.tiling import param_tile_bytes
from tfdenoise.targets.types import ACT_BYTES, Board, Buffer, Layer, MemoryPlan, Overflow
from tfdenoise.errors import InputError
from tfdenoise.vocab import BufferKind

Policy = Callable[[Sequence[Layer], int], frozenset[int]]


def _whole_layers(order: Sequence[Layer], budget: int) -> frozenset[int]:
    chosen: set[int] = set()
    used = 0
    for layer in order:
        need = _align(sum(p.nbytes for p in layer.params if p.tensor not in chosen))
        if need and used + need <= budget:
            chosen.update(p.tensor for p in layer.params)
            used += need
    return frozenset(chosen)


def layer_order(layers: Sequence[Layer], budget: int) -> frozenset[int]:
    """docs/design.md §5 default: whole layers in execution order while they fit (first fit)."""
    return _whole_layers(layers, budget)


def tensor_order(layers: Sequence[Layer], budget: int) -> frozenset[int]:
    """Individual tensors in execution order, first fit (can split a layer L2/L3)."""
    chosen: set[int] = set()
    used = 0
    for layer in layers:
        for p in layer.params:
            if p.tensor not in chosen and used + _align(p.nbytes) <= budget:
                chosen.add(p.tensor)
                used += _align(p.nbytes)
    return frozenset(chosen)


def largest_first(layers: Sequence[Layer], budget: int) -> frozenset[int]:
    """Whole layers, largest parameter footprint first."""
    return _whole_layers(sorted(layers, key=lambda la: -la.param_bytes), budget)


def smallest_first(layers: Sequence[Layer], budget: int) -> frozenset[int]:
    """Whole layers, smallest parameter footprint first (promotes the most layers)."""
    return _whole_layers(sorted(layers, key=lambda la: la.param_bytes), budget)


def no_promotion(layers: Sequence[Layer], budget: int) -> frozenset[int]:
    """Stream every parameter from L3 (lower bound on L2 use)."""
    return frozenset()


POLICIES: dict[str, Policy] = {
    "layer-order": layer_order,
    "tensor-order": tensor_order,
    "largest-first": largest_first,
    "smallest-first": smallest_first,
    "none": no_promotion,
}
DEFAULT_POLICY = "layer-order"


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


def _align(n: int, a: int = 4) -> int:
    return (n + a - 1) // a * a


def plan_memory(layers: Sequence[Layer], tensor_elems: dict[int, int], board: Board,
                l3: str | None = None, policy: str = DEFAULT_POLICY) -> MemoryPlan:
    """Place every parameter (L2 promoted or L3 streamed) and lay out the L2 budget."""
    l3 = l3 or board.default_l3
    if l3 not in board.l3:
        raise InputError(f"board {board.name} has no L3 memory {l3!r} (known: {', '.join(board.l3)})")
    if policy not in POLICIES:
        raise InputError(f"unknown promotion policy {policy!r} (known: {', '.join(POLICIES)})")
    budget = int(board.c("memory.l2_budget"))
    reasons: list[str] = []
    arena, act_buffers = plan_activations(layers, tensor_elems)
    param_bytes = sum(la.param_bytes for la in layers)
    param_elems = sum(la.param_elements for la in layers)
    all_params = frozenset(p.tensor for la in layers for p in la.params)
    if policy != "none" and _align(arena) + sum(_align(la.param_bytes) for la in layers) <= budget:
        promoted = all_params
    else:
        room = budget - _align(arena) - _stream_bytes(board, layers, frozenset())
        promoted = POLICIES[policy](layers, room) if room > 0 else frozenset()
    stream = _stream_bytes(board, layers, promoted)
    buffers = _layout(act_buffers, arena, stream, layers, promoted)
    while _end(buffers) > budget and promoted:  # a guard: the policies count aligned buffers
        last = next(la for la in reversed(layers) if any(p.tensor in promoted for p in la.params))
        promoted = promoted - {p.tensor for p in last.params}
        stream = _stream_bytes(board, layers, promoted)
        buffers = _layout(act_buffers, arena, stream, layers, promoted)
    streamed = {la.name: sum(p.nbytes for p in la.params if p.tensor not in promoted) for la in layers}
    streamed_elems = sum(p.elements for la in layers for p in la.params if p.tensor not in promoted)
    mem = board.l3[l3]
    overflows = []
    if param_bytes > mem.size:
        overflows.append(Overflow(f"L3 {l3}", "parameters", param_bytes, mem.size))
        reasons.append(str(overflows[-1])
                       + ("; try --l3 " + ", ".join(n for n, m in board.l3.items() if m.size >= param_bytes)
                          if any(m.size >= param_bytes for m in board.l3.values()) else ""))
    if arena + stream > budget:
        overflows.append(Overflow("the L2 budget", "activations + streaming buffer", arena + stream, budget))
        reasons.append(f"activations ({arena:,} B) + streaming buffer ({stream:,} B) exceed the "
                       f"L2 budget ({budget:,} B) by {arena + stream - budget:,} B")
    return MemoryPlan(l3=l3, policy=policy, l2_budget=budget, activation_bytes=arena,
                      stream_buffer_bytes=stream, promoted=promoted, streamed_bytes=streamed,
                      buffers=tuple(buffers), param_bytes=param_bytes, param_elements=param_elems,
                      rho_l3=streamed_elems / param_elems if param_elems else 0.0,
                      fits=not reasons, reasons=tuple(reasons), overflows=tuple(overflows))


def _stream_bytes(board: Board, layers: Sequence[Layer], promoted: frozenset[int]) -> int:
    """Double-buffered L2 room for the largest streamed sub-tensor (0: nothing streams, or no L1)."""
    if board.c("memory.l1_size") <= 0 or all(p.tensor in promoted for la in layers for p in la.params):
        return 0
    return 2 * max((param_tile_bytes(board, la) for la in layers if la.params), default=0)


def _layout(act_buffers: tuple[Buffer, ...], arena: int, stream: int, layers: Sequence[Layer],
            promoted: frozenset[int]) -> list[Buffer]:
    """L2 map: activations, then the streaming buffer, then each layer's promoted weights."""
    buffers = list(act_buffers)
    offset = _align(arena)
    if stream:
        buffers.append(Buffer("param streaming buffer", BufferKind.STREAM, offset, stream))
        offset += stream
    for la in layers:
        size = sum(p.nbytes for p in la.params if p.tensor in promoted)
        if size:
            buffers.append(Buffer(f"{la.name} weights", BufferKind.PROMOTED, offset, _align(size), la.name))
            offset += _align(size)
    return buffers


def _end(buffers: Sequence[Buffer]) -> int:
    return max((b.offset + b.size for b in buffers), default=0)
