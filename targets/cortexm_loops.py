"""CMSIS-NN inner loops as instruction mixes (targets/cores.py prices them on a core).

Counted from the CMSIS-NN sources (github.com/ARM-software/CMSIS-NN, Source/, DSP path
``ARM_MATH_DSP`` of Cortex-M4/M7; the pure-C path for the scalar variants), instructions per
iteration as GCC emits them with post-increment addressing:

  int8 SIMD  arm_nn_vec_mat_mult_t_s8.c (also arm_nn_vec_mat_mul_result_acc_s8_s16.c, the LSTM
             gates): 2 rows x 4 columns = 8 MACs per iteration:
             3 LDR (1 input word, 1 weight word per row), 6 SXTB16/SXTAB16 (2 per word),
             4 SMLAD                                                   -> Mix(ld=3, dsp=6, smlad=4)
  int8 scalar  the #else (no DSP) path: 3 rows x 1 column: 4 LDRSB, 1 ADD (input offset),
             3 MLA                                                     -> Mix(ld=4, alu=1, mul=3)
  q15 SIMD   arm_fully_connected_q15 (CMSIS-NN legacy q15 kernel): 2 rows x 4 columns:
             2 LDR input words + 2 LDR weight words per row, 4 SMLAD -> Mix(ld=6, smlad=4)
  q15 scalar 2 rows x 1 column: 3 LDRSH, 2 MLA                          -> Mix(ld=3, mul=2)
  fp32       arm_nn_mat_mult_nt_t_f32.c dot_nt_t_f32_scalar: 1 row x 1 column: 2 VLDR, 1 VFMA
             on one accumulator (latency chain; FPv4/FPv5 have no float SIMD) -> Mix(vldr=2, vfma=1,
             fchain=1)
  loop       per iteration SUBS + branch, divided by the unroll factor core.unroll
             (``#pragma GCC optimize("unroll-loops")`` in the CMSIS-NN matrix files)
  per output int8: arm_nn_requantize (default double rounding, arm_nnsupportfunctions.h):
             LSL + SMLAL-based doubling high multiply (MOV, MOV, SMLAL, LSR/ORR) + rounding divide
             by a power of two (mask, AND, ASR, threshold, 2 x CMP/IT/ADD) + output offset + MAX/MIN
             clamp + STRB, bias LDR                 -> Mix(ld=1, alu=15, shift=5, mull=1, st=1)
             q15: bias LDR, 2 shifts, SSAT, STRH    -> Mix(ld=1, shift=3, alu=1, st=1)
             fp32: bias VLDR, VADD, 2 x (VCMP, VMRS, VMOV) clamp, VSTR -> Mix(vldr=1, fop=7, vstr=1)
  per row block  pointer and counter setup + outer-loop branch -> Mix(alu=5, branch=1)
  column tail (cols % columns-per-iteration), per column and row: LDRSB x 2, MLA -> Mix(ld=2, mul=1)

Loop-strategy API (for targets/strategies.py): ``inner_loop(board, precision, simd)`` returns an
`InnerLoop`: the mixes above for one (code precision, SIMD/scalar) and their prices on the
board's core --
    per_iter_cycles     one iteration (body + loop overhead share), issue rules applied
    per_mac_cycles      per_iter_cycles / macs (the dense loop's cost of one MAC, zeros included)
    mac_cycles          the multiply instructions' share per MAC (SMLAD = 2 MACs)
    weight_load_cycles  loading + unpacking one weight element (its LDR share + SXTB16 share)
    input_load_cycles   loading + unpacking one input element, per row that uses it
    loop_cycles         loop overhead per iteration (counter + branch / unroll)
    per_output_cycles   requantization / bias / clamp / store of one output
    row_cycles          setup of one row block (`rows` rows)
    test_cycles         a compare against zero (CMP) on the core
    branch_taken_cycles / branch_not_taken_cycles / branch_mispredict_cycles   from the core file
and ``price(board, mix)`` (targets/cores.py) prices any other mix built from `Mix` pieces.
``matvec_cycles(board, precision, simd, rows, cols)`` is the dense kernel for one matrix-vector
product:
    blocks = rows / loop.rows;  iters = cols // loop.cols;  tail = cols % loop.cols
    cycles = blocks * (iters * per_iter + tail * loop.rows * price(tail) + row_cycles)
             + rows * per_output_cycles
"""
from __future__ import annotations

from dataclasses import dataclass

from tfdenoise.targets.cores import Mix, price
from tfdenoise.targets.types import Board
from tfdenoise.vocab import CodePrecision


@dataclass(frozen=True)
class LoopBody:
    """One inner-loop iteration: `rows` outputs x `cols` columns = macs, and its instructions."""

    rows: int
    cols: int
    body: Mix
    weight: Mix     # the part of `body` that loads and unpacks the rows x cols weights
    inputs: Mix     # the part of `body` that loads and unpacks the cols inputs
    macs_instr: Mix  # the multiply-accumulate instructions of `body`

    @property
    def macs(self) -> int:
        return self.rows * self.cols


#: (code precision, SIMD) -> the CMSIS-NN inner loop (module header). FP32 has no SIMD on the
#: Cortex-M4/M7 FPUs: its SIMD entry is the scalar loop.
BODIES: dict[tuple[CodePrecision, bool], LoopBody] = {
    (CodePrecision.INT8, True): LoopBody(2, 4, Mix(ld=3, ld_runs=1, dsp=6, smlad=4), weight=Mix(ld=2, dsp=4),
                                         inputs=Mix(ld=1, dsp=2), macs_instr=Mix(smlad=4)),
    (CodePrecision.INT8, False): LoopBody(3, 1, Mix(ld=4, ld_runs=1, alu=1, mul=3), weight=Mix(ld=3),
                                          inputs=Mix(ld=1, alu=1), macs_instr=Mix(mul=3)),
    (CodePrecision.Q15, True): LoopBody(2, 4, Mix(ld=6, ld_runs=1, smlad=4), weight=Mix(ld=4),
                                        inputs=Mix(ld=2), macs_instr=Mix(smlad=4)),
    (CodePrecision.Q15, False): LoopBody(2, 1, Mix(ld=3, ld_runs=1, mul=2), weight=Mix(ld=2),
                                         inputs=Mix(ld=1), macs_instr=Mix(mul=2)),
    (CodePrecision.FP32, False): LoopBody(1, 1, Mix(vldr=2, ld_runs=1, vfma=1, fchain=1), weight=Mix(vldr=1),
                                          inputs=Mix(vldr=1), macs_instr=Mix(vfma=1, fchain=1)),
}
BODIES[(CodePrecision.FP32, True)] = BODIES[(CodePrecision.FP32, False)]

#: Per output: requantization (int8), shift + saturate (q15), bias + clamp (fp32).
REQUANT_CORE = Mix(alu=10, shift=5, mull=1)             # arm_nn_requantize without offset/clamp
REQUANT = REQUANT_CORE + Mix(ld=1, alu=5, st=1)           # + bias LDR, offset, MAX/MIN, STRB
PER_OUTPUT: dict[CodePrecision, Mix] = {
    CodePrecision.INT8: REQUANT,
    CodePrecision.Q15: Mix(ld=1, shift=3, alu=1, st=1),
    CodePrecision.FP32: Mix(vldr=1, fop=7, vstr=1),
}
ROW_SETUP = Mix(alu=5, branch=1)
TAIL = {CodePrecision.INT8: Mix(ld=2, mul=1), CodePrecision.Q15: Mix(ld=2, mul=1),
        CodePrecision.FP32: Mix(vldr=2, vfma=1, fchain=1)}
#: Compare of one weight against zero (CMP / CBZ) for the skipping strategies.
TEST = Mix(alu=1)


def loop_overhead(board: Board) -> Mix:
    """Counter update + loop branch per iteration, shared by the unrolled copies."""
    return Mix(alu=1, branch=1) * (1.0 / board.c("core.unroll"))


@dataclass(frozen=True)
class InnerLoop:
    """One dense matrix-vector inner loop on a board's core (see the module header)."""

    precision: CodePrecision
    simd: bool
    rows: int
    cols: int
    body: Mix
    per_output: Mix
    row_setup: Mix
    per_iter_cycles: float
    per_mac_cycles: float
    mac_cycles: float
    weight_load_cycles: float
    input_load_cycles: float
    loop_cycles: float
    per_output_cycles: float
    row_cycles: float
    tail_cycles: float           # one tail column of one row (cols % self.cols)
    test_cycles: float
    branch_taken_cycles: float
    branch_not_taken_cycles: float
    branch_mispredict_cycles: float

    @property
    def macs(self) -> int:
        return self.rows * self.cols


def inner_loop(board: Board, precision: CodePrecision | str, simd: bool = True) -> InnerLoop:
    """The dense CMSIS-NN inner loop of `precision` (SIMD or scalar) priced on `board`'s core."""
    precision = CodePrecision(precision)
    b = BODIES[(precision, bool(simd))]
    loop = loop_overhead(board)
    per_iter = price(board, b.body + loop)
    return InnerLoop(
        precision=precision, simd=bool(simd) and precision != CodePrecision.FP32, rows=b.rows, cols=b.cols,
        body=b.body, per_output=PER_OUTPUT[precision], row_setup=ROW_SETUP,
        per_iter_cycles=per_iter, per_mac_cycles=per_iter / b.macs,
        mac_cycles=price(board, b.macs_instr) / b.macs,
        weight_load_cycles=price(board, b.weight) / (b.rows * b.cols),
        input_load_cycles=price(board, b.inputs) / b.cols,
        loop_cycles=price(board, loop), per_output_cycles=price(board, PER_OUTPUT[precision]),
        row_cycles=price(board, ROW_SETUP), tail_cycles=price(board, TAIL[precision]),
        test_cycles=price(board, TEST), branch_taken_cycles=board.c("core.branch"),
        branch_not_taken_cycles=board.c("core.branch_not_taken"),
        branch_mispredict_cycles=board.c("core.branch_mispredict"))


def matvec_cycles(board: Board, precision: CodePrecision | str, simd: bool, rows: float, cols: float,
                  per_output: Mix | None = None) -> float:
    """Cycles of `rows` outputs of a dense `cols`-long dot product each (module header formula);
    `per_output` replaces the precision's per-output mix (e.g. the LSTM's 16-bit accumulate)."""
    if rows <= 0 or cols <= 0:
        return 0.0
    lp = inner_loop(board, precision, simd)
    iters, tail = divmod(int(round(cols)), lp.cols)
    out = lp.per_output_cycles if per_output is None else price(board, per_output)
    blocks = rows / lp.rows
    return blocks * (iters * lp.per_iter_cycles + tail * lp.rows * lp.tail_cycles + lp.row_cycles) + rows * out
