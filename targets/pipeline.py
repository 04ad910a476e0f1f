"""The one driver: read -> layers -> memory -> tiling -> schedule -> power -> Report.

Each step's output is checked before the next runs (`_check_*`); a failed check is a bug in
the cost model, not in the user's file, and raises ModelError with what went wrong.
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from tfdenoise.targets.boards import load_board
from tfdenoise.targets.cnn_kernels import has_kernel
from tfdenoise.targets.kernels import core_has_kernel
from tfdenoise.targets.features import denoiser_cost, feature_cost, is_denoiser, kws_features, hop_ms as feature_hop_ms
from tfdenoise.targets.graph import Graph
from tfdenoise.targets.layers import group_layers
from tfdenoise.targets.memory import DEFAULT_POLICY, plan_memory
from tfdenoise.targets.power import core_power_mw, estimate_power
from tfdenoise.vocab import HOP_MS
from tfdenoise.targets.reader import read_tflite
from tfdenoise.targets.schedule import schedule
from tfdenoise.targets.tiling import tile_layer
from tfdenoise.targets.types import Board, FeatureCost, Layer, MemoryPlan, Report, Schedule
from tfdenoise.errors import ModelError


def analyze_graph(graph: Graph, board: Board | str = "gap9", vdd: float | None = None,
                  l3: str | None = None, policy: str | None = None, hop_ms: float | None = None,
                  freq_mhz: float | None = None) -> Report:
    """Model `graph` on `board` at supply `vdd` with parameters in `l3`.

    `hop_ms` (the real-time budget of one decision) defaults to the file's: the feature hop of a
    keyword-spotting file (its metadata), else the denoiser's 6.25 ms.  A KWS file's decision
    also computes one feature frame, a denoiser file's hop its STFT and inverse STFT
    (targets/features.py), priced on the board.  Layers a board kernel prices
    (targets/cnn_kernels.py) lose the generic-estimate flag and warning.
    """
    board = board if isinstance(board, Board) else load_board(board)
    op = board.operating_point(vdd, freq_mhz)
    policy = policy or board.default_policy or DEFAULT_POLICY
    meta = graph.tfdenoise_metadata() or {}
    feat_cfg, feat_problem = kws_features(meta)
    if hop_ms is None:
        hop_ms = _file_hop_ms(meta, feat_cfg)
    layers, warnings = _kernel_priced(board, *group_layers(graph))
    _check_layers(graph, layers)
    plan = plan_memory(layers, {t.index: t.size for t in graph.main.tensors}, board, l3, policy, op)
    _check_memory(layers, plan)
    tilings = tuple(tile_layer(board, la, plan) for la in layers)
    sched = schedule(board, op, plan, layers, tilings)
    _check_schedule(layers, sched)
    power = estimate_power(board, op, plan, sched, hop_ms)
    features = None
    if feat_cfg is not None:
        features, power = _with_features(board, op, power, sched.latency_ms, feature_cost(board, op, feat_cfg))
    elif is_denoiser(meta):
        features, power = _with_features(board, op, power, sched.latency_ms, denoiser_cost(board, op))
    warnings = list(warnings)
    if feat_problem:
        warnings.append(f"feature extraction not priced: {feat_problem}")
    warnings += [f"does not fit: {r}" for r in plan.reasons]
    warnings += [f"layer {t.layer} does not fit L1: {t.l1_overflow}" for t in tilings if not t.fits_l1]
    if len(graph.main.operators) == 0:
        warnings.append("model has no operators")
    if meta.get("random_weights"):
        warnings.insert(0, "the file holds RANDOM (untrained) weights (tfdenoise export --variant): "
                           "its costs are real, any quality score of it is not")
    return Report(model=graph.path, board=board, op=op, layers=layers, memory=plan, tilings=tilings,
                  schedule=sched, power=power, warnings=tuple(warnings),
                  metadata=meta, features=features)


def _file_hop_ms(meta: dict, feat_cfg: dict | None) -> float:
    """The hop of a KWS file (its metadata's ``hop_ms``, else its feature config's), else HOP_MS."""
    if meta.get("family") == "kws":
        h = meta.get("hop_ms")
        if isinstance(h, (int, float)) and not isinstance(h, bool) and 0 < h < float("inf"):
            return float(h)
        if feat_cfg is not None:
            return feature_hop_ms(feat_cfg)
    return HOP_MS


def _with_features(board: Board, op, power, latency_ms: float, cost: FeatureCost):
    """The per-hop signal-processing cost, and the power estimate with its energy in the average:
    P_avg = (E_inference + P_core * t_features + P_sleep * (hop - latency - t_features)) / hop."""
    e_feat = core_power_mw(board, op) * cost.ms  # mW * ms = uJ
    busy = latency_ms + cost.ms
    hop = power.hop_ms
    energy = power.energy_uj + e_feat
    avg = (energy + power.sleep_mw * (hop - busy)) / hop if busy <= hop else energy / busy
    return replace(cost, energy_uj=e_feat), replace(power, avg_power_mw_at_hop=avg)


def _kernel_priced(board: Board, layers: tuple[Layer, ...], warnings: tuple[str, ...]):
    """Layers a kernel of `board` prices are no estimate: flag cleared, warning dropped."""
    priced = {la.name for la in layers if la.estimate and (has_kernel(board, la) or core_has_kernel(board, la))}
    if not priced:
        return layers, warnings
    kept = tuple(w for w in warnings if not (w.endswith("generic estimate") and
                                              any(w.startswith(f"layer {n} (") for n in priced)))
    return tuple(replace(la, estimate=False) if la.name in priced else la for la in layers), kept


def analyze(path: str | Path, board: Board | str = "gap9", vdd: float | None = None,
            l3: str | None = None, policy: str | None = None, freq_mhz: float | None = None) -> Report:
    """Read a .tflite file and model it (the `targets` front door)."""
    return analyze_graph(read_tflite(path), board, vdd, l3, policy, freq_mhz=freq_mhz)


def _check_layers(graph: Graph, layers: tuple[Layer, ...]) -> None:
    claimed = [o for la in layers for o in la.ops]
    if sorted(claimed) != list(range(len(graph.main.operators))):
        raise ModelError("layer grouping lost or duplicated operators", graph.path)


def _check_memory(layers: tuple[Layer, ...], plan: MemoryPlan) -> None:
    if not 0.0 <= plan.rho_l3 <= 1.0:
        raise ModelError(f"rho_L3 = {plan.rho_l3} outside [0, 1]")
    if plan.param_bytes != sum(la.param_bytes for la in layers):
        raise ModelError("memory plan lost parameters")
    if plan.l2_bytes_used > plan.l2_budget and plan.activation_bytes + plan.stream_buffer_bytes <= plan.l2_budget:
        raise ModelError(f"memory plan uses {plan.l2_bytes_used} B of L2 over the budget {plan.l2_budget}")


def _check_schedule(layers: tuple[Layer, ...], sched: Schedule) -> None:
    if len(sched.layers) != len(layers) or any(t.cycles < 0 for t in sched.layers):
        raise ModelError("schedule does not cover every layer")
    if sched.macs != sum(la.macs for la in layers):
        raise ModelError("schedule lost MACs")
