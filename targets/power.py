"""Power and energy of one inference (docs/design.md §5 whole-SoC figures).

    P_core(V, f) = p_static_ref * V / v_ref  +  c_eff * V^2 * f_MHz
                   (static leakage ~ linear in V, dynamic CV^2f; the two board constants are
                    the exact fit through 56.3 mW @ 0.8 V/370 MHz and 25.4 mW @ 0.65 V/240 MHz)
    P_L3         = read_energy_pJ/B * L3 bytes per inference / latency  +  active_power * busy
                   (flash read energy calibrated so FP16 LSTM256 from flash at 0.8 V spends the
                    40-45 mW of docs/design.md §5 on external memory; eMRAM: stated assumption)
    P_run        = P_core + P_L3;     E = P_run * latency
    P_avg(hop)   = (E + P_sleep * (hop - latency)) / hop    if latency <= hop, else P_run
The whole SoC is assumed active for the whole inference (the cluster waits on DMA while
clock-gated cores would lower this slightly: the estimate is an upper bound).
"""
from __future__ import annotations

from tfdenoise.vocab import HOP_MS
from tfdenoise.targets.types import Board, MemoryPlan, OperatingPoint, PowerEstimate, Schedule



def core_power_mw(board: Board, op: OperatingPoint) -> float:
    """Static + dynamic SoC power while computing at operating point `op`."""
    static = board.c("power.p_static_ref") * op.vdd / board.c("power.v_ref")
    return static + board.c("power.c_eff") * op.vdd ** 2 * op.freq_mhz


def l3_power_mw(board: Board, plan: MemoryPlan, sched: Schedule) -> float:
    """Average L3 memory power over one inference."""
    mem = board.l3[plan.l3]
    latency_s = sched.latency_ms * 1e-3
    if latency_s <= 0:
        return 0.0
    l3_bytes = sum(t.l3_bytes for t in sched.layers)
    busy = min(1.0, sum(t.dma_l3_cycles for t in sched.layers) / max(1, sched.total_cycles))
    return mem.read_energy_pj * 1e-12 * l3_bytes / latency_s * 1e3 + mem.active_power_mw * busy


def estimate_power(board: Board, op: OperatingPoint, plan: MemoryPlan, sched: Schedule,
                   hop_ms: float = HOP_MS) -> PowerEstimate:
    """Running power, energy per inference and average power at one inference per hop."""
    core = core_power_mw(board, op)
    l3 = l3_power_mw(board, plan, sched)
    run = core + l3
    lat = sched.latency_ms
    energy_uj = run * lat  # mW * ms = uJ
    sleep = board.c("power.sleep")
    avg = (energy_uj + sleep * (hop_ms - lat)) / hop_ms if lat <= hop_ms else run
    return PowerEstimate(power_mw=run, core_mw=core, l3_mw=l3, energy_uj=energy_uj,
                         avg_power_mw_at_hop=avg, sleep_mw=sleep, hop_ms=hop_ms)
