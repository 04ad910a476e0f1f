"""Signal processing per hop on the MCU: KWS features (docs/design.md §7) and the denoiser's
STFT / inverse STFT (docs/design.md §1): pure functions.

A keyword-spotting file (``tfdenoise`` metadata with ``"family": "kws"``) classifies the last
``window_frames`` feature frames once per feature hop, so every decision first computes ONE
new frame: window, real FFT of ``n_fft`` points, power spectrum, mel filterbank, log, and for
MFCC the DCT.  Its cost on a board, in FP32 (the Cortex-M reference MFCC code runs float:
CMSIS-DSP ``arm_rfft_fast_f32`` + float mel / log / DCT loops):

    t_fft    = fft_cycles * n_fft * log2(n_fft) / cores
               (fft_cycles: cycles per point per radix-2 stage of a real FFT on one core)
    MACs     = frame                        (window: one multiply per sample)
             + 2 * (n_fft // 2 + 1)         (power: re^2 + im^2 per bin)
             + mel_weights                  (the nonzero weights of the mel filterbank: each
                                             band multiplies only the bins under its triangle,
                                             as the ML-KWS MFCC loop first..last bin; about
                                             2 x the bins between f_min and f_max, where a
                                             dense matrix would be n_bins_used x n_mels)
             + n_mels * n_mfcc              (DCT-II, MFCC only)
    t_mac    = MACs / (cores * fc_rate)     fc_rate = FP32 MACs per cycle of the board's dense
               loop = int8_fc_loop_macs * fp32_mac_ratio / int8_fc_loop_cycles / fpu_stall
               (targets/kernels.py, the "FC rate" the network's dense layers get in FP32)
    t_log    = n_mels * log_cycles / cores
    cycles   = t_fft + t_mac + t_log + overhead_cycles      (one new frame = one hop)

Board constants (``[features]`` in targets/boards/*.toml, each with unit and source):
``fft_cycles`` (cycle/(point*stage)), ``log_cycles`` (cycle/elem), ``overhead_cycles``
(cycle per hop: calls, the frame buffer shift, sample conversion).

The real-time verdict of a KWS file compares ``latency + feature time`` (one decision) with
the feature hop; the average power at one decision per hop adds the feature energy
``core_power * t_features`` (no parameter-memory traffic).

Denoiser files (``tfdenoise`` metadata with a ``variant`` and no other family, as ``tfdenoise
export`` writes them) run, per 6.25 ms hop around the network (docs/design.md §1, the
constants of tfdenoise.vocab / tfdenoise.stft: frame F = 400, n_fft N = 512, B = N/2 + 1 = 257
bins), in FP32 with the same ``[features]`` constants:

    front end  shift in the new hop, Hann window (F MACs), real FFT of N points,
               |X| = sqrt(re^2 + im^2) of the B bins (2B MACs + B square roots)
    back end   gains x complex spectrum (2B MACs), inverse real FFT of N points, synthesis
               window (F MACs), overlap-add of the frame (F adds, counted as MACs), emit a hop
               (the steady-state 1 / sum(window^2) = 1 / 1.5 folds into the synthesis window)
    t_fft      = 2 * fft_cycles * N * log2(N) / cores           (forward + inverse)
    MACs       = 3F + 4B
    t_mac      = MACs / (cores * fc_rate)
    t_sqrt     = B * sqrt_cycles / cores
    cycles     = t_fft + t_mac + t_sqrt + 2 * overhead_cycles    (two passes: before and after the
                                                               network, each with its call / fork)
The verdict then compares ``network + front/back end`` with the hop, energy and average power
add it as for KWS.  Files of neither family (no ``tfdenoise`` metadata) get no cost here.
"""
from __future__ import annotations

import math
from typing import Any

from tfdenoise.targets.cores import is_cortex_m
from tfdenoise.targets.cortexm_loops import inner_loop
from tfdenoise.targets.kernels import fpu_stall
from tfdenoise.targets.types import Board, FeatureCost, OperatingPoint
from tfdenoise.vocab import FRAME, HOP_MS, N_BINS, N_FFT, CodePrecision, ModelFamily, Precision

#: Feature-config fields the cost needs, and their kinds (the metadata holds every field of
#: tfdenoise.kws.features.FeatureConfig).
FIELDS = {"kind": str, "frame": int, "hop": int, "n_fft": int, "n_mels": int, "n_mfcc": int,
          "f_min": float, "f_max": float, "sample_rate": int}
KINDS = ("logmel", "mfcc")


def kws_features(meta: dict | None) -> tuple[dict[str, Any] | None, str | None]:
    """The feature config of a KWS file's metadata, checked: ``(config, None)``, or
    ``(None, why)`` when the file is not a KWS file (why None) or its config is unusable."""
    if not isinstance(meta, dict) or meta.get("family") != "kws":
        return None, None
    raw = meta.get("features")
    if not isinstance(raw, dict):
        return None, "KWS metadata without a feature config"
    out: dict[str, Any] = {}
    for key, kind in FIELDS.items():
        v = raw.get(key)
        if kind is str:
            if v not in KINDS:
                return None, f"KWS feature kind {v!r} is not one of {', '.join(KINDS)}"
        elif isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
                or (kind is int and v != int(v)):
            return None, f"KWS feature field {key!r} = {v!r} is not a number"
        out[key] = kind(v)
    if not (1 <= out["frame"] <= out["n_fft"] and out["n_fft"] >= 2 and out["hop"] >= 1
            and out["n_mels"] >= 1 and out["sample_rate"] >= 1
            and 0 <= out["f_min"] < out["f_max"] <= out["sample_rate"] / 2
            and (out["kind"] != "mfcc" or 1 <= out["n_mfcc"] <= out["n_mels"])):
        return None, f"KWS feature config out of range: {raw}"
    return out, None


def hop_ms(cfg: dict[str, Any]) -> float:
    """The feature hop in ms: one decision per hop."""
    return 1000.0 * cfg["hop"] / cfg["sample_rate"]


def _hz_to_mel(f: float) -> float:
    return 2595.0 * math.log10(1.0 + f / 700.0)


def mel_weights(cfg: dict[str, Any]) -> int:
    """Nonzero weights of the HTK mel filterbank of ``cfg`` (tfdenoise.kws.features.mel_filterbank:
    ``n_mels + 2`` edges equally spaced in mel from f_min to f_max, triangles, DC bin unused)."""
    n_mels, n_fft, sr = cfg["n_mels"], cfg["n_fft"], cfg["sample_rate"]
    lo, hi = _hz_to_mel(cfg["f_min"]), _hz_to_mel(cfg["f_max"])
    edges = [lo + (hi - lo) * i / (n_mels + 1) for i in range(n_mels + 2)]
    count = 0
    for k in range(1, n_fft // 2 + 1):
        m = _hz_to_mel(k * sr / n_fft)
        count += sum(1 for j in range(n_mels) if edges[j] < m < edges[j + 2])
    return count


def fc_rate(board: Board) -> float:
    """FP32 MACs per cycle of one core in the board's dense (FC) loop: on a Cortex-M / NEON
    core the FP32 inner loop of targets/cortexm_loops.py at the core's calibrated efficiency
    (the rate the network's FP32 dense layers get), else the board's [kernels] FC loop."""
    if is_cortex_m(board):
        return board.c("core.efficiency") / inner_loop(board, CodePrecision.FP32).per_mac_cycles
    return (board.c("kernels.int8_fc_loop_macs") * board.c("kernels.fp32_mac_ratio")
            / board.c("kernels.int8_fc_loop_cycles") / fpu_stall(board, Precision.FP32))


def feature_cost(board: Board, op: OperatingPoint, cfg: dict[str, Any]) -> FeatureCost:
    """Cycles and time of one new feature frame (one hop) of ``cfg`` on ``board`` at ``op``."""
    cores = board.c("compute.cores")
    n_fft = cfg["n_fft"]
    mfcc = cfg["kind"] == "mfcc"
    fft = board.c("features.fft_cycles") * n_fft * math.log2(n_fft) / cores
    mel = mel_weights(cfg)
    dct = cfg["n_mels"] * cfg["n_mfcc"] if mfcc else 0
    macs = cfg["frame"] + 2 * (n_fft // 2 + 1) + mel + dct
    mac = macs / (cores * fc_rate(board))
    log = cfg["n_mels"] * board.c("features.log_cycles") / cores
    overhead = board.c("features.overhead_cycles")
    cycles = int(math.ceil(fft + mac + log + overhead))
    return FeatureCost(kind=cfg["kind"], n_fft=n_fft, hop_ms=hop_ms(cfg), cycles=cycles,
                       ms=cycles / (op.freq_mhz * 1e3), fft_cycles=int(round(fft)),
                       mac_cycles=int(round(mac)), log_cycles=int(round(log)),
                       overhead_cycles=int(round(overhead)), macs=int(macs), mel_weights=int(mel))


def is_denoiser(meta: dict | None) -> bool:
    """True for a denoiser file's metadata (a ``variant``, no family other than the denoiser's)."""
    return isinstance(meta, dict) and isinstance(meta.get("variant"), str) and \
        meta.get("family", ModelFamily.DENOISER.value) == ModelFamily.DENOISER.value


def denoiser_macs(frame: int = FRAME, n_fft: int = N_FFT) -> int:
    """Multiply-accumulates of the STFT front end + inverse-STFT back end per hop: 3F + 4B."""
    return 3 * frame + 4 * (n_fft // 2 + 1)


def denoiser_cost(board: Board, op: OperatingPoint) -> FeatureCost:
    """Cycles and time of the denoiser's STFT + inverse STFT per hop on ``board`` at ``op``."""
    cores = board.c("compute.cores")
    fft = 2 * board.c("features.fft_cycles") * N_FFT * math.log2(N_FFT) / cores
    macs = denoiser_macs()
    mac = macs / (cores * fc_rate(board))
    sqrt = N_BINS * board.c("features.sqrt_cycles") / cores
    overhead = 2 * board.c("features.overhead_cycles")
    cycles = int(math.ceil(fft + mac + sqrt + overhead))
    return FeatureCost(kind="stft", n_fft=N_FFT, hop_ms=HOP_MS, cycles=cycles, ms=cycles / (op.freq_mhz * 1e3),
                       fft_cycles=int(round(fft)), mac_cycles=int(round(mac)), log_cycles=0,
                       overhead_cycles=int(round(overhead)), macs=int(macs), mel_weights=0,
                       sqrt_cycles=int(round(sqrt)))
