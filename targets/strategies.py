"""Loop strategies for sparse weights on a Cortex-M core (docs/design.md §9; the STM32F7 paper,
Wang & Li 2022, arXiv 2208.02765, code RoboBachelor/Keyword-Spotting-STM32 Firmware/Core/Function/
model.c: FC_Relu / Conv2D_Relu with the fine-grain and vector-level lines, Conv2D_Relu_kernel).

Per layer with weight tensors and code precision P (fp32, q15, int8), from the layer's shapes, the
zero structure of its weights (targets/sparsity.py) and the Cortex-M kernel model
(targets/cortexm.py; its inner loops, targets/cortexm_loops.py, priced on the board's core by
targets/cores.py: Cortex-M4 single issue, Cortex-M7 dual issue):

    N  weight elements       Z  zero weights        U = MACs / N  uses of a weight per inference
    R  weight rows (vectors) Rz all-zero rows           (FC 1, conv out_h*out_w, LSTM the steps)
    L  weights per row       Sw zero<->nonzero switches along the rows, SR between rows (data)
    O  outputs per inference = U x filters (units)

    D          the kernel model's dense cycles of the layer at P (cortexm: compute / efficiency
               + weight stalls + activation stalls + call overhead; weights stored in P's format,
               resident or streamed as the report's memory plan keeps the file's)
    loop       its MAC loop: the kernel's inner loops over the weights with their row setups
               (cortexm_kernels.mac_loop_cycles: the FC / LSTM / GRU matrix-vector loop, conv's
               arm_nn_mat_mult_kernel_s8_s16, depthwise's window loop; SIMD where P has it, fp32
               has none), without the per-output work, im2col or activations

    dense        D                                                       zeros cost the same
    scalar       D - loop + MACs x scalar_mac + O / rows_per_block' x row_setup
                                                   (the CMSIS-NN non-DSP loop: inner_loop(P, False))
    skip-zero    D - loop + U (N - Z) use_nz + U Z use_z + U Sw mispredict + O row_setup
                   one row at a time, every use of a weight loads and tests it (the paper's
                   `if (w == 0) continue;`): a nonzero falls through to the input load and the
                   MAC, a zero takes the branch to the loop end; no SIMD (the test is per weight)
    skip-row     D - U sum_t Rz_t L_t (loop / MACs) + U (R - Rz) flag_nz + U Rz flag_z + U SR mispredict
                   a flag per row (the paper's `if (row_mask[o][c][i])`), the dense SIMD loop over
                   the rows with a nonzero weight
    weight-first D - loop + (N - Z)(wf_nz + U wf_use) + Z wf_z + Sw mispredict + O init
                   weight loop outermost (the paper's Conv2D_Relu_kernel), accumulators in memory:
                   one test per weight skips all its U uses; each use loads the input and the
                   accumulator, multiplies and stores it back; each output starts at its bias
                   and is reloaded for the requantization that D already counts

Per-event mixes (instruction counts, priced with cores.price, then / core.efficiency), with W, X,
M the weight load, input load and multiply-accumulate of the scalar loop (cortexm_loops.BODIES,
one weight / input / MAC of it), T = one compare (CMP), F = a conditional branch that falls
through (one issue slot), B = a taken branch (core.branch), l = loop overhead per iteration:

    use_nz = W + T + F + X + M + l   (fp32: the test is the paper's integer compare of the
    use_z  = W + T + B + l            weight's bits, its MAC path adds a VMOV to the FPU)
    flag_nz = LDRB + T + F           flag_z = LDRB + T + B
    wf_nz  = W + T + F + l + 3 ALU (inner-loop pointers)     wf_z = W + T + B + l
    wf_use = X + LDR acc + MAC + STR acc + l  (fp32: VLDR, VFMA, VSTR, no accumulation chain)
    init   = LDR bias + STR acc + LDR acc (fp32: VLDR, VSTR, VLDR)

Branch prediction (core file `strategies.branch_predictor`: the Cortex-M7 predicts, the Cortex-M4
does not): a predicting core pays for a data-dependent branch when it changes outcome, modeled
as a predictor that remembers the branch's last outcome: one mispredict (core.branch_mispredict)
per switch between zero and nonzero along the traversal (Sw, SR counted from the data; about
2 z (1 - z) per weight for an unstructured pattern at zero share z).  A core without prediction
(Cortex-M4: every taken branch refills the pipeline, core.branch = 1 + P) pays B on every taken
branch and nothing more.

Not modeled: a skipped row's weights are still streamed from flash (D's stalls stay), the 1-row
remainder of a 2-row SIMD block with one zero row, the per-segment setup of conv kernel rows;
the scalar and skipping loops of conv and depthwise layers are the fully connected scalar loop
(the paper's direct loops, no im2col kernel). Layers without weights cost cortexm.layer_cycles
at P under every strategy.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

from tfdenoise.errors import InputError
from tfdenoise.targets.graph import Graph
from tfdenoise.targets.layers import group_layers
from tfdenoise.targets.sparsity import model_sparsity
from tfdenoise.targets.types import (Board, Layer, LayerSparsity, MemoryPlan, OperatingPoint, StrategyCycles,
                                     StrategyPricing)
from tfdenoise.vocab import CodePrecision, LoopStrategy

ALL = "all"


@dataclass(frozen=True)
class LoopCosts:
    """Costs (cycles) of one layer's loops at one code precision on one core (module header)."""

    dense: float        # D: the whole layer, dense kernel
    loop: float         # the dense kernel's MAC loop inside D (SIMD where P has it)
    scalar_mac: float   # per MAC of the dense scalar loop
    row_scalar: float   # row setup of the dense scalar loop per output (setup / rows per block)
    row: float          # row setup of a one-row loop (skip-zero: per output)
    use_nz: float       # skip-zero: one use of a nonzero weight
    use_z: float        # skip-zero: one use of a zero weight
    flag_nz: float      # skip-row: the test of a row with a nonzero weight
    flag_z: float       # skip-row: the test of an all-zero row
    wf_nz: float        # weight-first: test + inner-loop setup of a nonzero weight
    wf_z: float         # weight-first: test of a zero weight
    wf_use: float       # weight-first: one use (accumulator in memory)
    init: float         # weight-first: per output, bias in + accumulator out and back
    mispredict: float   # per mispredicted data-dependent branch (0 on a core without prediction)


def parse_strategies(spec: str) -> tuple[LoopStrategy, ...]:
    """`all`, one strategy name or a comma-separated list of them; InputError naming the known ones."""
    names = [s.strip() for s in str(spec).split(",") if s.strip()]
    known = f"known: {', '.join(LoopStrategy)}, {ALL}"
    if not names:
        raise InputError(f"empty loop strategy ({known})")
    if ALL in names:
        return tuple(LoopStrategy)
    for n in names:
        if n not in tuple(LoopStrategy):
            raise InputError(f"unknown loop strategy {n!r} ({known})")
    return tuple(dict.fromkeys(LoopStrategy(n) for n in names))


def strategy_cycles(strategy: LoopStrategy | str, layer: Layer, sp: LayerSparsity, c: LoopCosts,
                    precision: str = "") -> StrategyCycles:
    """Cycles of `layer` under `strategy` (formulas in the module header)."""
    n, z = sp.elements, sp.zeros
    u = layer.macs / n if n else 0.0
    macs = float(layer.macs)
    sw = sum(t.switches for t in sp.tensors)
    rows = sum(t.rows for t in sp.tensors)
    zrows = sum(t.zero_rows for t in sp.tensors)
    outputs = u * sum(t.outputs for t in sp.tensors)
    loop = c.loop
    strategy = LoopStrategy(strategy)
    tests = mis = 0.0
    if strategy == LoopStrategy.DENSE:
        cyc = c.dense
    elif strategy == LoopStrategy.SCALAR:
        cyc = c.dense - loop + macs * c.scalar_mac + outputs * c.row_scalar
    elif strategy == LoopStrategy.SKIP_ZERO:
        tests, mis, macs = u * n, u * sw, u * (n - z)
        cyc = c.dense - loop + u * (n - z) * c.use_nz + u * z * c.use_z + mis * c.mispredict + outputs * c.row
    elif strategy == LoopStrategy.SKIP_ROW:
        tests, mis = u * rows, u * sum(t.row_switches for t in sp.tensors)
        skipped = u * sum(t.zero_rows * t.row_len for t in sp.tensors)
        cyc = (c.dense - skipped * (loop / macs if macs else 0.0) + u * (rows - zrows) * c.flag_nz
               + u * zrows * c.flag_z + mis * c.mispredict)
        macs -= skipped
    else:  # weight-first
        tests, mis, macs = float(n), float(sw), u * (n - z)
        cyc = c.dense - loop + (n - z) * (c.wf_nz + u * c.wf_use) + z * c.wf_z + mis * c.mispredict + outputs * c.init
    return StrategyCycles(layer=layer.name, strategy=str(strategy), precision=str(precision),
                          cycles=int(round(max(cyc, 0.0))), macs=int(round(macs)), tests=int(round(tests)),
                          mispredicts=int(round(mis)))


def has_strategies(board: Board) -> bool:
    """True when `board`'s cost model prices loop strategies (a Cortex-M core; not gap9)."""
    from tfdenoise.targets import cortexm

    return cortexm.has_core(board)


def check_board(board: Board) -> None:
    """InputError unless `board` prices loop strategies, naming the boards that do."""
    if has_strategies(board):
        return
    from tfdenoise.targets.boards import available_boards, load_board

    ok = [b for b in available_boards() if has_strategies(load_board(b))]
    raise InputError(f"board {board.name} has no loop-strategy pricing (its cost model has no "
                     f"Cortex-M core; --strategy needs one of: {', '.join(ok)})")


def predicts(board: Board) -> bool:
    """True for a core with dynamic branch prediction (core file: strategies.branch_predictor)."""
    return bool(board.c("core.branch_predictor"))


def event_costs(board: Board, precision: CodePrecision | str) -> dict[str, float]:
    """The per-event costs of the module header for `precision` on `board`'s core (cycles,
    / core.efficiency): every LoopCosts field but `dense` and `loop`."""
    from tfdenoise.targets.cores import Mix, price
    from tfdenoise.targets.cortexm_loops import BODIES, TEST, inner_loop, loop_overhead

    p = CodePrecision(precision)
    simd, scal = inner_loop(board, p, True), inner_loop(board, p, False)   # simd: its row setup
    b = BODIES[(p, False)]
    w = b.weight * (1.0 / (b.rows * b.cols))
    x = b.inputs * (1.0 / b.cols)
    m = b.macs_instr * (1.0 / (b.rows * b.cols))
    fp = p == CodePrecision.FP32
    test_w = (Mix(ld=1) if fp else w) + TEST          # fp32: the paper's integer test of the bits
    to_fpu = Mix(fop=1) if fp else Mix()              # VMOV of the tested weight into the FPU
    fall, take, lp = Mix(alu=1), Mix(branch=1), loop_overhead(board)
    acc = Mix(vldr=1, vstr=1) if fp else Mix(ld=1, st=1)
    mac_free = Mix(vfma=1) if fp else m                # weight-first: no accumulation chain
    eff = board.c("core.efficiency")
    mix_costs = {
        "use_nz": test_w + fall + to_fpu + x + m + lp, "use_z": test_w + take + lp,
        "flag_nz": Mix(ld=1) + TEST + fall, "flag_z": Mix(ld=1) + TEST + take,
        "wf_nz": test_w + fall + to_fpu + lp + Mix(alu=3), "wf_z": test_w + take + lp,
        "wf_use": x + acc + mac_free + lp,
        "init": (Mix(vldr=2, vstr=1) if fp else Mix(ld=2, st=1)) + lp}
    out = {k: price(board, v) / eff for k, v in mix_costs.items()}
    out.update(scalar_mac=scal.per_mac_cycles / eff, row_scalar=scal.row_cycles / scal.rows / eff,
               row=simd.row_cycles / eff,
               mispredict=board.c("core.branch_mispredict") / eff if predicts(board) else 0.0)
    return out


def dense_cycles(board: Board, layer: Layer, precision: CodePrecision | str, op: OperatingPoint,
                 plan: MemoryPlan | None = None) -> float:
    """D: the kernel model's cycles of `layer` coded in `precision`, its weights stored in that
    format and streamed from the plan's L3 in the share the plan streams the file's (all of them
    without a plan)."""
    from tfdenoise.targets import cortexm
    from tfdenoise.targets.cortexm import CODE_BYTES

    p = CodePrecision(precision)
    l3 = plan.l3 if plan is not None else board.default_l3
    full = cortexm.layer_cycles(board, layer, p, op, l3)          # every weight byte streamed
    share = plan.streamed_bytes.get(layer.name, 0) / layer.param_bytes \
        if plan is not None and layer.param_bytes else 1.0
    if share >= 1.0:
        return full
    nbytes = layer.param_elements * CODE_BYTES[p]
    sized = _sized(layer, nbytes)
    every = cortexm.weight_stall_cycles(board, op, sized, l3, nbytes)[0]
    part = cortexm.weight_stall_cycles(board, op, sized, l3, int(round(share * nbytes)))[0]
    return full - every + part


def _sized(layer: Layer, nbytes: int) -> Layer:
    """`layer` with its parameters as one tensor of `nbytes` (weights stored in another format)."""
    from dataclasses import replace

    from tfdenoise.targets.types import ParamTensor

    return replace(layer, params=(ParamTensor(-1, "weights", int(nbytes), layer.param_elements),))


def loop_costs(board: Board, layer: Layer, precision: CodePrecision | str, op: OperatingPoint,
               plan: MemoryPlan | None = None) -> LoopCosts:
    """The `LoopCosts` of `layer` at `precision` on `board` (module header)."""
    return LoopCosts(dense=dense_cycles(board, layer, precision, op, plan), loop=mac_loop(board, layer, precision),
                     **event_costs(board, precision))


def mac_loop(board: Board, layer: Layer, precision: CodePrecision | str) -> float:
    """The dense kernel's MAC loop of `layer` at `precision` (cortexm_kernels.mac_loop_cycles)
    / core.efficiency: the part of D the other strategies replace."""
    from tfdenoise.targets.cortexm_kernels import mac_loop_cycles

    return mac_loop_cycles(board, layer, CodePrecision(precision)) / board.c("core.efficiency")


def price_strategies(graph: Graph, board: Board, strategies: Iterable[LoopStrategy | str],
                     precisions: Sequence[CodePrecision | str] = tuple(CodePrecision),
                     layers: tuple[Layer, ...] | None = None, op: OperatingPoint | None = None,
                     plan: MemoryPlan | None = None) -> StrategyPricing:
    """Every (strategy, code precision) of `graph` on Cortex-M `board` at operating point `op`
    (default: the board's first), weights resident / streamed as `plan` keeps them."""
    check_board(board)
    op = op or board.operating_point(None)
    layers = layers if layers is not None else group_layers(graph)[0]
    strategies = tuple(LoopStrategy(s) for s in strategies)
    precisions = tuple(CodePrecision(p) for p in precisions)
    sparsity = model_sparsity(graph, layers)
    priced = {la.name for la in layers if la.name in sparsity and la.macs > 0}
    rows: list[StrategyCycles] = []
    other = {str(p): 0.0 for p in precisions}
    for p in precisions:
        events = event_costs(board, p)
        for la in layers:
            d = dense_cycles(board, la, p, op, plan)
            if la.name not in priced:
                other[str(p)] += d
                continue
            costs = LoopCosts(dense=d, loop=mac_loop(board, la, p), **events)
            rows += [strategy_cycles(s, la, sparsity[la.name], costs, str(p)) for s in strategies]
    return StrategyPricing(model=graph.path, board=board.name, freq_mhz=op.freq_mhz,
                           strategies=tuple(str(s) for s in strategies), precisions=tuple(str(p) for p in precisions),
                           layers=tuple(rows), other_cycles={k: int(round(v)) for k, v in other.items()},
                           sparsity={k: v for k, v in sparsity.items() if k in priced})
