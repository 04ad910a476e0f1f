"""Detection error trade-off (docs/design.md §7): FRR against false alarms per hour.

* :func:`det_curve`: from a model's posteriors over a stream (:mod:`tfdenoise.kws.stream`),
  one decision per feature hop.  For every keyword class and every threshold of the sweep
  (:func:`thresholds`), a trigger fires when the class posterior (averaged over
  ``smooth_frames`` decisions; 1 = raw) reaches the threshold, after which that class cannot
  trigger again for ``suppression_s``.  A trigger whose input window overlaps an occurrence
  of its class detects it (hit); any other trigger is a false alarm (a wrong digit counts as
  one).  FRR = share of keyword occurrences never detected; FA/h = false alarms per hour of
  stream.  For the 10-digit task every digit is a keyword (pooled); for a keyword task the
  keywords.
* :func:`frr_at`: FRR at a false-alarm rate, interpolated linearly on the curve (which
  always includes the no-trigger point FA/h 0, FRR 1).
* :func:`plot_det`: FRR vs FA/h (log x) of one or more curves, as a PNG.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from tfdenoise.errors import InputError
from tfdenoise.fileio import atomic_path
from tfdenoise.kws.features import FeatureConfig

DEFAULT_SUPPRESSION_S = 1.0
FA_POINTS = (0.5, 1.0, 2.0)          # FA/h of the quoted operating points


def thresholds() -> np.ndarray:
    """The threshold sweep: 0.01 .. 0.99 in steps of 0.01, and 1 - 10^-1 .. 1 - 10^-7 in
    20 steps per decade (a trained model's posteriors crowd next to 1)."""
    return np.unique(np.concatenate([np.round(np.linspace(0.01, 0.99, 99), 6),
                                     1.0 - np.logspace(-1, -7, 121)]))


def _triggers(score: np.ndarray, threshold: float, suppress: int) -> np.ndarray:
    """Decision indices where ``score`` reaches ``threshold``, each followed by ``suppress``
    decisions that cannot trigger."""
    above = np.flatnonzero(score >= threshold)
    out = []
    i = 0
    while i < len(above):
        t = int(above[i])
        out.append(t)
        i = int(np.searchsorted(above, t + suppress, side="left"))
    return np.asarray(out, np.int64)


def _covered(occ: Sequence[tuple[float, float, str]], label: str, n: int, hop_s: float,
             win_s: float) -> np.ndarray:
    """For each of ``n`` decisions (window ``i`` covers ``[i * hop_s, i * hop_s + win_s)``),
    the index in ``occ`` of the (latest) occurrence of ``label`` inside it, else -1."""
    cov = np.full(n, -1, np.int64)
    for j, (s, e, lab) in enumerate(occ):
        if lab == label:
            lo = max(0, int(math.floor((s - win_s) / hop_s)) + 1)
            hi = min(n, int(math.ceil(e / hop_s)))
            cov[lo:hi] = j
    return cov


def det_curve(probs: np.ndarray, events: Sequence[tuple[float, float, str]], labels: Sequence[str],
              keywords: Sequence[str], cfg: FeatureConfig, hours: float,
              sweep: Sequence[float] | None = None, suppression_s: float = DEFAULT_SUPPRESSION_S,
              smooth_frames: int = 1) -> dict:
    """FRR and false alarms per hour over a threshold sweep, from a stream's posteriors.

    ``probs[i]`` is the decision on the window ending with frame ``i + window_frames - 1``,
    i.e. covering ``[i * hop, i * hop + window_samples)`` samples.  ``events`` are the words
    ``(start_s, end_s, label)``; those whose label is in ``keywords`` are the occurrences
    to detect.  Returns ``{"thresholds", "frr", "fa_per_hour", "false_alarms", "hits",
    "occurrences", "curve"}`` with ``curve`` = ``[[fa_per_hour, frr], ...]`` by rising FA/h.
    """
    sweep = thresholds() if sweep is None else np.asarray(sweep, np.float64)
    if suppression_s < 0 or smooth_frames < 1:
        raise InputError(f"suppression must be >= 0 s and smoothing >= 1 frame, got "
                         f"{suppression_s}, {smooth_frames}")
    n = len(probs)
    hop_s, win_s = cfg.hop / cfg.sample_rate, cfg.window_samples / cfg.sample_rate
    suppress = max(1, int(math.ceil(suppression_s / hop_s)))
    occ = [(s, e, lab) for s, e, lab in events if lab in keywords]
    covered = {k: _covered(occ, k, n, hop_s, win_s) for k in keywords}
    scores = {}
    for k in keywords:
        s = probs[:, list(labels).index(k)].astype(np.float64)
        if smooth_frames > 1:
            s = np.convolve(s, np.ones(smooth_frames) / smooth_frames)[:n]
        scores[k] = s
    frr, fa, fas, hits_all = [], [], [], []
    for th in sweep:
        hit: set[int] = set()
        false = 0
        for k in keywords:
            t = _triggers(scores[k], th, suppress)
            c = covered[k][t]
            hit.update(int(j) for j in c[c >= 0])
            false += int(np.sum(c < 0))
        frr.append(1.0 - len(hit) / len(occ) if occ else 0.0)
        fas.append(false)
        fa.append(false / hours)
        hits_all.append(len(hit))
    curve = sorted({(f, r) for f, r in zip(fa, frr)} | {(0.0, 1.0)})
    return {"thresholds": [float(t) for t in sweep], "frr": frr, "fa_per_hour": fa,
            "false_alarms": fas, "hits": hits_all, "occurrences": len(occ),
            "suppression_s": suppression_s, "smooth_frames": smooth_frames,
            "curve": [[round(f, 6), round(r, 6)] for f, r in curve]}


def frr_at(curve: Sequence[Sequence[float]], fa_per_hour: float) -> float:
    """FRR at ``fa_per_hour`` on a DET ``curve`` (``[[fa_per_hour, frr], ...]``): the lower
    envelope (the best FRR reachable at or below each FA rate), interpolated linearly."""
    pts = sorted((float(f), float(r)) for f, r in curve)
    if not pts:
        raise InputError("empty DET curve")
    fa = np.array([p[0] for p in pts])
    frr = np.minimum.accumulate(np.array([p[1] for p in pts]))
    # several points at one FA rate: keep the best (the envelope) before interpolating
    keep = np.r_[fa[1:] != fa[:-1], True]
    return float(np.interp(fa_per_hour, fa[keep], frr[keep]))


def envelope(curve: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    """The lower envelope of a DET curve: by rising FA/h, the best FRR reachable so far."""
    pts = sorted((float(f), float(r)) for f, r in curve)
    out: list[tuple[float, float]] = []
    for f, r in pts:
        r = min(r, out[-1][1]) if out else r
        if out and out[-1][0] == f:
            out[-1] = (f, r)
        else:
            out.append((f, r))
    return out


def plot_det(curves: dict[str, Sequence[Sequence[float]]], path: str | os.PathLike, title: str = "") -> Path:
    """FRR (%) against false alarms per hour (log x) of one or more curves (their lower
    envelopes, :func:`envelope`; the FRR at 0.5, 1 and 2 FA/h marked), as a PNG written
    atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for name, curve in curves.items():
        pts = [(f, r) for f, r in envelope(curve) if f > 0]
        if pts:
            line, = ax.step([p[0] for p in pts], [100 * p[1] for p in pts], where="post", label=name)
            ax.plot(FA_POINTS, [100 * frr_at(curve, f) for f in FA_POINTS], "o",
                    color=line.get_color(), ms=4)
    for f in FA_POINTS:
        ax.axvline(f, color="0.8", lw=0.8, ls="--")
    ax.set_xscale("log")
    ax.set_xlabel("false alarms per hour")
    ax.set_ylabel("false rejection rate (%)")
    ax.set_title(title or "detection error trade-off")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    path = Path(path)
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path

