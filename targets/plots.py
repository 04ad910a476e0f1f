"""Figures of a Report as inline data URIs (matplotlib Agg, PNG, base64): no external files."""
from __future__ import annotations

import base64
import io

from tfdenoise.targets.types import Report
from tfdenoise.vocab import BufferKind

COLORS = {"compute": "#4c72b0", "dma_l2": "#dd8452", "dma_l3": "#c44e52", "overhead": "#8c8c8c",
          "activation": "#55a868", "stream": "#dd8452", "promoted": "#4c72b0", "free": "#eeeeee"}


def _fig(width: float, height: float):
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt, plt.subplots(figsize=(width, height), dpi=80)


def _uri(plt, fig) -> str:
    buf = io.BytesIO()
    fig.subplots_adjust(left=0.2, right=0.97, top=0.88, bottom=0.2)  # fixed margins: tight_layout is slow
    fig.savefig(buf, format="png")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def latency_split(report: Report) -> str:
    """Per-layer latency (ms) split into compute, exposed L2/L3 DMA and overhead."""
    plt, (fig, ax) = _fig(7.5, 0.45 * len(report.schedule.layers) + 1.4)
    f = report.op.freq_mhz * 1e3
    names = [t.name for t in report.schedule.layers][::-1]
    left = [0.0] * len(names)
    for key, label in (("compute", "compute"), ("dma_l2", "exposed L2->L1 DMA"),
                       ("dma_l3", "exposed L3->L2 DMA"), ("overhead", "overhead")):
        vals = []
        for t in report.schedule.layers[::-1]:
            body = t.cycles - t.overhead_cycles
            comp = min(t.compute_cycles, body)
            rest = body - comp
            l3_share = 1.0 if t.bound == "dma_l3" else 0.0   # time beyond compute, charged to the bound
            v = {"compute": comp, "dma_l3": rest * l3_share, "dma_l2": rest * (1 - l3_share),
                 "overhead": t.overhead_cycles}[key]
            vals.append(v / f)
        ax.barh(names, vals, left=left, color=COLORS[key], label=label)
        left = [a + b for a, b in zip(left, vals)]
    ax.set_xlabel("ms per inference")
    ax.set_title("Latency per layer")
    ax.legend(fontsize=7, loc="lower right")
    return _uri(plt, fig)


def memory_map(report: Report) -> str:
    """L2 budget as one bar: activation buffer, streaming buffer, promoted weights per layer."""
    plt, (fig, ax) = _fig(7.5, 2.2)
    plan = report.memory
    acts = [b for b in plan.buffers if b.kind == BufferKind.ACTIVATION]
    if acts:
        ax.barh([0], [plan.activation_bytes / 1e3], left=[0], color=COLORS["activation"], label="activations")
    for b in plan.buffers:
        if b.kind == BufferKind.ACTIVATION:
            continue
        ax.barh([0], [b.size / 1e3], left=[b.offset / 1e3], color=COLORS[b.kind], edgecolor="white",
                label=b.name if b.kind == BufferKind.STREAM else None)
        if b.size > 0.04 * plan.l2_budget:
            ax.text((b.offset + b.size / 2) / 1e3, 0, b.layer or "stream", ha="center", va="center",
                    fontsize=7, color="white")
    ax.axvline(plan.l2_budget / 1e3, color="black", linestyle="--", label=f"budget {plan.l2_budget:,} B")
    ax.set_yticks([])
    ax.set_xlabel("L2 offset (kB)")
    ax.set_title(f"L2 memory map ({plan.policy}; rho_L3 = {plan.rho_l3:.2f})")
    ax.legend(fontsize=7, loc="upper right")
    return _uri(plt, fig)


def timeline(report: Report) -> str:
    """DMA and compute activity over one inference (busy time of each engine per layer)."""
    plt, (fig, ax) = _fig(7.5, 2.4)
    f = report.op.freq_mhz * 1e3
    start = 0.0
    rows = {"L3->L2 DMA": 2, "L2->L1 DMA": 1, "cores": 0}
    for t in report.schedule.layers:
        for lane, busy, key in (("L3->L2 DMA", t.dma_l3_cycles, "dma_l3"),
                                ("L2->L1 DMA", t.dma_l2_cycles, "dma_l2"), ("cores", t.compute_cycles, "compute")):
            if busy:
                ax.barh([rows[lane]], [min(busy, t.cycles) / f], left=[start / f], color=COLORS[key],
                        edgecolor="white")
        start += t.cycles
    ax.set_yticks(list(rows.values()), list(rows.keys()))
    ax.axvline(report.power.hop_ms, color="black", linestyle=":", label="hop")
    ax.set_xlabel("ms")
    ax.set_title("Activity timeline (engines overlap inside a layer)")
    return _uri(plt, fig)
