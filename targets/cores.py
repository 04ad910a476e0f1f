"""Instruction mixes and the issue rules of a CPU core: the pricing layer under targets/cortexm.py
(Cortex-M4 / M7, CMSIS-NN kernels) and targets/neon.py (Cortex-A53, NEON kernels).

A kernel is described as an instruction `Mix` per loop iteration, per output, per row...: counts
of instructions by class (what a core's pipelines care about), never cycles.  The core file
(targets/boards/cores/<core>.toml, loaded into the board's constants as ``core.<key>``) turns a
mix into cycles:

    occupancy of a class  c_k = n_k * cycles_k           (cycles_k: core.<k>, e.g. core.smlad)
                          loads on a single-issue core: the first load of each run of back-to-back
                          loads costs core.ldr, the next ones core.ldr_next (M4 TRM: N loads in a
                          row = N + 1 cycles); loop-closing branches cost core.branch
    single issue (width 1):  cycles = sum_k c_k
    dual issue   (width 2):  cycles = max( sum_k n_k / width,                    (issue slots)
                                        (smlad + mul + mull) / mac_slots,       (one MAC pipe)
                                        (dsp + smlad)        / dsp_slots,       (DSP: first slot)
                                        (shift + dsp)        / shift_slots,     (shifted operands)
                                        (ld + st + vldr + vstr) / load_slots,
                                        (vfma + fop)         / fp_slots,
                                        branch )                                 (each term x cycles_k)
    either:                  cycles >= fchain * core.vfma_latency   (dependent FP accumulations
                                                                      on one accumulator)

The dual-issue bound assumes the compiler schedules independent instructions into pairs (an
in-order core reaches it on unrolled loops without load-use stalls); `core.efficiency`
(targets/cortexm.py) is the one calibrated factor between this bound and whole-network silicon.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields

from tfdenoise.targets.types import Board

#: Instruction classes of a Mix and the core constant giving each one's cycles.
CLASSES = ("ld", "st", "alu", "shift", "dsp", "smlad", "mul", "mull", "vldr", "vstr", "vfma", "fop",
           "vdiv", "branch")
CYCLE_KEY = {"ld": "ldr", "st": "str", "alu": "alu", "shift": "shift", "dsp": "dsp", "smlad": "smlad",
             "mul": "mul", "mull": "mull", "vldr": "vldr", "vstr": "vstr", "vfma": "vfma", "fop": "fop",
             "vdiv": "vdiv", "branch": "branch"}


@dataclass(frozen=True)
class Mix:
    """Instruction counts by class for one block of code (fractions allowed: amortised overhead).

    ld     integer loads LDR/LDRB/LDRH/LDRSB/LDRSH/LDRD      st    integer stores
    alu    ADD/SUB/CMP/MOV/AND/ORR (IT-predicated included)  shift shifted operand, ASR/LSL by
           register, UBFX/SBFX, SSAT, SXTB (non-SIMD extension)
    dsp    SIMD without multiply: SXTB16/SXTAB16, PKHBT/PKHTB, SADD16/SSUB8, SEL
    smlad  SMLAD/SMLADX (2 MACs)                             mul   MUL/MLA/MLS (32-bit)
    mull   SMULL/SMLAL (64-bit)                              vldr/vstr  FP (or 64-bit NEON) loads/stores
    vfma   VFMA/VMLA (64-bit NEON MLA)                       fop   other FP / NEON ops (VADD, VMUL,
                                                                   VCVT, VMOV, VCMP, VMRS)
    vdiv   VDIV.F32                                          branch loop-closing / predicted taken
    ld_runs   runs of back-to-back integer or FP loads (None: every load alone)
    fchain    dependent VFMAs on one accumulator (latency chain)
    """

    ld: float = 0.0
    st: float = 0.0
    alu: float = 0.0
    shift: float = 0.0
    dsp: float = 0.0
    smlad: float = 0.0
    mul: float = 0.0
    mull: float = 0.0
    vldr: float = 0.0
    vstr: float = 0.0
    vfma: float = 0.0
    fop: float = 0.0
    vdiv: float = 0.0
    branch: float = 0.0
    ld_runs: float | None = None
    fchain: float = 0.0

    def __add__(self, other: "Mix") -> "Mix":
        runs = None if self.ld_runs is None and other.ld_runs is None else \
            _runs(self) + _runs(other)
        return Mix(**{k: getattr(self, k) + getattr(other, k) for k in CLASSES},
                   ld_runs=runs, fchain=self.fchain + other.fchain)

    def __mul__(self, k: float) -> "Mix":
        return Mix(**{c: getattr(self, c) * k for c in CLASSES},
                   ld_runs=None if self.ld_runs is None else self.ld_runs * k, fchain=self.fchain * k)

    __rmul__ = __mul__

    @property
    def instructions(self) -> float:
        return sum(getattr(self, k) for k in CLASSES)

    def as_dict(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}


def _runs(m: Mix) -> float:
    """Runs of back-to-back loads (every load alone when not given)."""
    loads = m.ld + m.vldr
    return loads if m.ld_runs is None else min(m.ld_runs, loads)


def cycles_of(board: Board, k: str) -> float:
    """Cycles of one instruction of class `k` on the board's core (core.<key>)."""
    return board.c(f"core.{CYCLE_KEY[k]}")


def price(board: Board, mix: Mix) -> float:
    """Cycles of `mix` on the board's core under its issue rules (module header)."""
    occ = {k: getattr(mix, k) * cycles_of(board, k) for k in CLASSES}
    runs = _runs(mix)
    loads = mix.ld + mix.vldr
    if board.c("core.width") <= 1:   # single issue: loads after the first of a run pipeline
        first = board.c("core.ldr")
        occ["ld"] = mix.ld * board.c("core.ldr_next") + runs * (first - board.c("core.ldr_next")) * \
            (mix.ld / loads if loads else 0.0)
        occ["vldr"] = mix.vldr * board.c("core.ldr_next") + runs * (board.c("core.vldr") - board.c("core.ldr_next")) * \
            (mix.vldr / loads if loads else 0.0)
        total = sum(occ.values())
    else:
        total = max(mix.instructions / board.c("core.width"),
                    (occ["smlad"] + occ["mul"] + occ["mull"]) / board.c("core.mac_slots"),
                    (occ["dsp"] + occ["smlad"]) / board.c("core.dsp_slots"),
                    (occ["shift"] + occ["dsp"]) / board.c("core.shift_slots"),
                    (occ["ld"] + occ["st"] + occ["vldr"] + occ["vstr"]) / board.c("core.load_slots"),
                    (occ["vfma"] + occ["fop"] + occ["vdiv"]) / board.c("core.fp_slots"),
                    occ["branch"])
    return max(total, mix.fchain * board.c("core.vfma_latency"))


def is_cortex_m(board: Board) -> bool:
    """True for a board whose core file is a Cortex-M core (targets/cortexm.py prices it)."""
    return board.core_family == "cortex-m"


def flash_wait_states(board: Board, freq_mhz: float) -> int:
    """Flash wait states at `freq_mhz` (STM32 reference manuals: one more wait state per
    ``mcu.flash_ws_step`` MHz of HCLK, 0 WS up to the first step)."""
    return max(0, math.ceil(freq_mhz / board.c("mcu.flash_ws_step") - 1e-9) - 1)

