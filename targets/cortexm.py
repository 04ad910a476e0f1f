"""Cortex-M4 / Cortex-M7 execution model (docs/design.md §10): one layer on one core, weights
executed in place from flash (or copied to SRAM by a promotion policy), activations in
SRAM / TCM / external SDRAM. Pure functions of (board, operating point, layer).

    t_layer   = t_compute / core.efficiency + t_weights + t_acts + layer_cycles
    t_compute = CMSIS-NN kernel cycles at zero wait states (targets/cortexm_kernels.py, from the
                inner-loop instruction mixes of targets/cortexm_loops.py priced by the core's
                issue rules, targets/cores.py: Cortex-M4 single issue, Cortex-M7 dual issue with
                one MAC pipe, DSP/SIMD from the first slot only, one shifted operand per cycle,
                two loads per cycle)
    t_weights = misses * per_miss          (weights of this layer read from the L3 memory)
                reads    = weight bytes read per inference: dense / LSTM / GRU once per time
                           step, conv once per pair of output pixels (arm_convolve_s8 re-reads the
                           filter for every im2col pair), depthwise once per output pixel
                misses   = streamed bytes / line          if the layer's weights fit half the data
                                                          cache (re-reads hit; cold misses only)
                         = reads x streamed share / line  otherwise (every re-read misses again)
                per_miss = flash: wait_states(f) + mcu.flash_miss_overhead
                                   wait_states(f) = ceil(f / mcu.flash_ws_step) - 1  (ST RM tables)
                                   line = mcu.flash_line_bytes (one flash read)
                           other L3 (SDRAM): line / bytes_per_cycle(f), line = mcu.dcache_line_bytes
    t_acts    = mcu.act_miss_cycles * (input + output activation bytes) / mcu.dcache_line_bytes
                (cold misses of the activation traffic: 0 for SRAM / DTCM; the SDRAM board pays
                each 32-byte line; conv inputs larger than the D-cache are re-read k_h x k_w times)
    layer_cycles = overhead.layer_cycles (TFLM node dispatch + kernel setup) + core.call_cycles
Flash stalls add to the compute (the core waits for its own loads; no DMA overlaps them): the
layer's `bound` is dma_l3 when t_weights > t_compute. Layers without a kernel (kind generic)
keep the generic estimate of targets/kernels.py and stay flagged `estimate`.

Calibration: core.efficiency (targets/boards/cores/*.toml) is the one factor between the
instruction-level bound and whole-network silicon; it is named in the core file with its
measurement. The loop-strategy API (inner_loop, matvec_cycles, price, Mix) is documented in
targets/cortexm_loops.py and re-exported here.
"""
from __future__ import annotations

import math

from tfdenoise.targets.cores import Mix, flash_wait_states, is_cortex_m, price
from tfdenoise.targets.cortexm_kernels import code_precision, layer_compute_cycles, lstm_steps
from tfdenoise.targets.cortexm_loops import InnerLoop, inner_loop, matvec_cycles
from tfdenoise.targets.int4 import int4_unpack_cycles
from tfdenoise.targets.types import ACT_BYTES, Board, Layer, LayerTiming, MemoryPlan, OperatingPoint, Tiling
from tfdenoise.vocab import CodePrecision, LayerKind

__all__ = ["Mix", "InnerLoop", "inner_loop", "matvec_cycles", "price", "is_cortex_m", "has_core", "code_precision",
           "core_cycles", "has_kernel", "weight_reads", "weight_stall_cycles", "act_stall_cycles",
           "layer_cycles", "time_layer", "flash_wait_states"]
#: Bytes per weight element of each code precision (the strategies' hypothetical stores).
CODE_BYTES = {CodePrecision.INT8: 1, CodePrecision.Q15: 2, CodePrecision.FP32: 4}


def has_core(board: Board) -> bool:
    """True for a Cortex-M board (this model prices it; targets/strategies.py needs it)."""
    return is_cortex_m(board)


def has_kernel(board: Board, layer: Layer) -> bool:
    """True when the Cortex-M model prices `layer` (not the generic estimate)."""
    return layer_compute_cycles(board, layer) is not None


def core_cycles(board: Board, layer: Layer, code: CodePrecision | None = None) -> float | None:
    """t_compute / core.efficiency: the layer at zero wait states (in code precision `code`
    when given); None when no kernel."""
    c = layer_compute_cycles(board, layer, code)
    return None if c is None else c / board.c("core.efficiency")


def weight_reads(layer: Layer) -> tuple[float, int]:
    """(weight bytes the kernel reads per inference, bytes of the re-read working set)."""
    wbytes = layer.param_bytes
    g = layer.geometry
    if layer.kind == LayerKind.CONV and g is not None:
        return wbytes * math.ceil(g.out_h * g.out_w / 2), wbytes
    if layer.kind == LayerKind.DEPTHWISE_CONV and g is not None:
        return wbytes * g.out_h * g.out_w, wbytes
    if layer.kind == LayerKind.LSTM:
        return wbytes * lstm_steps(layer), wbytes
    return float(wbytes), wbytes


def _miss_cost(board: Board, op: OperatingPoint, l3: str) -> tuple[float, float]:
    """(bytes per miss, cycles per miss) of weights read from L3 memory `l3` at `op`."""
    if l3 == "flash":
        return board.c("mcu.flash_line_bytes"), \
            flash_wait_states(board, op.freq_mhz) + board.c("mcu.flash_miss_overhead")
    line = board.c("mcu.dcache_line_bytes")
    return line, line / board.l3[l3].bytes_per_cycle(op.freq_mhz)


def weight_stall_cycles(board: Board, op: OperatingPoint, layer: Layer, l3: str, streamed: int) -> tuple[float, float]:
    """(stall cycles, bytes read from L3) of the `streamed` weight bytes of `layer` (module header)."""
    if streamed <= 0 or layer.param_bytes <= 0:
        return 0.0, 0.0
    reads, working = weight_reads(layer)
    share = streamed / layer.param_bytes
    fits = working <= board.c("mcu.dcache_bytes") / 2
    l3_bytes = streamed if fits else reads * share
    line, per_miss = _miss_cost(board, op, l3)
    return l3_bytes / line * per_miss, l3_bytes


def act_stall_cycles(board: Board, layer: Layer) -> float:
    """Activation traffic that misses the D-cache, priced at mcu.act_miss_cycles per line."""
    miss = board.c("mcu.act_miss_cycles")
    if miss <= 0:
        return 0.0
    width = ACT_BYTES.get(layer.precision, 4)
    traffic = (layer.in_elems + layer.out_elems) * width
    g = layer.geometry
    if g is not None and layer.kind in (LayerKind.CONV, LayerKind.DEPTHWISE_CONV) and \
            g.in_h * g.in_w * g.in_ch * width > board.c("mcu.dcache_bytes"):
        traffic += layer.in_elems * width * (g.k_h * g.k_w - 1)
    return traffic / board.c("mcu.dcache_line_bytes") * miss


def time_layer(board: Board, op: OperatingPoint, plan: MemoryPlan, layer: Layer, tiling: Tiling) -> LayerTiming:
    """Cycles of one layer on a Cortex-M board at `op` (module header); the schedule's step
    for Cortex-M boards instead of the DMA-overlapped tile model."""
    from tfdenoise.targets import kernels

    compute = core_cycles(board, layer)
    estimate = compute is None
    if compute is None:   # no Cortex-M kernel: the generic estimate, flagged (INT4 unpack included)
        compute = kernels.core_cycles(board, layer)
    else:                 # INT4 weights: unpacked nibble by nibble before the s8 loop (targets/int4.py)
        compute += int4_unpack_cycles(board, layer)
    streamed = plan.streamed_bytes.get(layer.name, 0)
    w_stall, l3_bytes = weight_stall_cycles(board, op, layer, plan.l3, streamed)
    a_stall = act_stall_cycles(board, layer)
    overhead = 0.0 if layer.kind == LayerKind.LAYOUT and not layer.macs else \
        board.c("overhead.layer_cycles") + board.c("core.call_cycles")
    terms = {"compute": compute, "dma_l3": w_stall, "dma_l2": a_stall}
    bound = max(terms, key=terms.get) if compute or w_stall or a_stall else "compute"
    return LayerTiming(name=layer.name, kind=layer.kind, precision=layer.precision, macs=layer.macs,
                       n_tiles=tiling.n_tiles, cycles=int(math.ceil(compute + w_stall + a_stall + overhead)),
                       dma_l3_cycles=int(round(w_stall)), dma_l2_cycles=int(round(a_stall)),
                       compute_cycles=int(round(compute)), overhead_cycles=int(round(overhead)),
                       bound=bound, l3_bytes=int(round(l3_bytes)), estimate=estimate or layer.kind == LayerKind.GENERIC)


def layer_cycles(board: Board, layer: Layer, precision: CodePrecision | str, op: OperatingPoint | None = None,
                 l3: str | None = None) -> float:
    """Whole-layer cycles with the kernel coded in `precision` (fp32 / q15 / int8) and all its
    weights, stored in that format, read from `l3` (default: the board's, flash): t_compute +
    t_weights + t_acts + layer_cycles of the module header (generic estimate without a kernel)."""
    from tfdenoise.targets import kernels

    op = op or board.operating_point(None)
    code = CodePrecision(precision)
    compute = core_cycles(board, layer, code)
    if compute is None:
        compute = kernels.core_cycles(board, layer)
    streamed = layer.param_elements * CODE_BYTES[code]
    stall, _ = weight_stall_cycles(board, op, _with_bytes(layer, streamed), l3 or board.default_l3, streamed)
    overhead = 0.0 if layer.kind == LayerKind.LAYOUT and not layer.macs else \
        board.c("overhead.layer_cycles") + board.c("core.call_cycles")
    return compute + stall + act_stall_cycles(board, layer) + overhead


def _with_bytes(layer: Layer, nbytes: int) -> Layer:
    """`layer` with its parameters re-sized to `nbytes` in total (one tensor)."""
    from dataclasses import replace

    from tfdenoise.targets.types import ParamTensor

    return replace(layer, params=(ParamTensor(-1, "weights", int(nbytes), layer.param_elements),))
