"""Loop-strategy pricing (targets/strategies.py) -> the "strategies" JSON of a report and its
Markdown section: one table strategy x code precision -> latency per inference, one table of
cycles per layer with weights."""
from __future__ import annotations

import html

from tfdenoise.targets.types import StrategyPricing

DENSE = "dense"


def strategies_json(p: StrategyPricing) -> dict:
    """Stable JSON view (keys documented in the documentation of `tfdenoise report --strategy`)."""
    totals = []
    for s in p.strategies:
        for prec in p.precisions:
            base = p.cycles(DENSE, prec) if DENSE in p.strategies else None
            cyc = p.cycles(s, prec)
            totals.append({"strategy": s, "precision": prec, "cycles": cyc,
                           "latency_ms": round(p.latency_ms(s, prec), 4),
                           "speedup_vs_dense": round(base / cyc, 4) if base and cyc else None})
    layers = []
    for name in dict.fromkeys(c.layer for c in p.layers):
        rows = [c for c in p.layers if c.layer == name]
        sp = p.sparsity.get(name)
        layers.append({
            "name": name, "weights": sp.elements if sp else 0,
            "zero_fraction": round(sp.zero_fraction, 4) if sp else 0.0,
            "zero_row_fraction": round(sp.zero_row_fraction, 4) if sp else 0.0,
            "mn_2_4_compliance": round(sp.mn_compliance, 4) if sp else 1.0,
            "cycles": {s: {c.precision: c.cycles for c in rows if c.strategy == s} for s in p.strategies},
            "macs_executed": {s: {c.precision: c.macs for c in rows if c.strategy == s} for s in p.strategies},
            "zero_tests": {s: {c.precision: c.tests for c in rows if c.strategy == s} for s in p.strategies},
            "mispredicts": {s: {c.precision: c.mispredicts for c in rows if c.strategy == s} for s in p.strategies},
        })
    return {"board": p.board, "freq_mhz": p.freq_mhz, "strategies": list(p.strategies),
            "precisions": list(p.precisions), "totals": totals, "other_cycles": dict(p.other_cycles),
            "layers": layers}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def strategies_markdown(p: StrategyPricing) -> list[str]:
    """The Markdown section (lines) of a report with loop strategies."""
    j = strategies_json(p)
    tot = {(t["strategy"], t["precision"]): t for t in j["totals"]}
    lines = ["## Loop strategies", "",
             f"Latency per inference in ms on {p.board} at {p.freq_mhz:g} MHz: the layers with weights under "
             "each loop strategy, the other layers as the dense kernels of the same code precision "
             f"({', '.join(f'{k} {v:,} cycles' for k, v in p.other_cycles.items())}); in brackets the "
             "speed-up over dense (targets/strategies.py, docs/design.md §9).", "",
             "| strategy | " + " | ".join(p.precisions) + " |", "|---|" + "---|" * len(p.precisions)]
    for s in p.strategies:
        cells = []
        for prec in p.precisions:
            t = tot[(s, prec)]
            sp = f" ({t['speedup_vs_dense']:.2f}x)" if t["speedup_vs_dense"] is not None else ""
            cells.append(f"{t['latency_ms']:.3f}{sp}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Cycles per layer with weights (zeros: share of zero weights; zero rows: share of all-zero "
              "weight rows; 2:4: share of 4-weight groups with at most 2 nonzeros):", "",
              "| layer | weights | zeros | zero rows | 2:4 | code | " + " | ".join(p.strategies) + " |",
              "|---|---|---|---|---|---|" + "---|" * len(p.strategies)]
    for la in j["layers"]:
        for prec in p.precisions:
            lines.append(f"| {la['name']} | {la['weights']:,} | {_pct(la['zero_fraction'])} | "
                         f"{_pct(la['zero_row_fraction'])} | {_pct(la['mn_2_4_compliance'])} | {prec} | "
                         + " | ".join(f"{la['cycles'][s][prec]:,}" for s in p.strategies) + " |")
    return lines + [""]


def strategies_html(p: StrategyPricing) -> str:
    """The same section for the HTML report: the Markdown tables as HTML tables."""
    e = html.escape
    out, table = [], []
    for line in strategies_markdown(p):
        if line.startswith("|"):
            if not line.startswith("|---"):
                cells = [c.strip() for c in line.strip("|").split("|")]
                tag = "th" if not table else "td"
                table.append("<tr>" + "".join(f"<{tag}>{e(c)}</{tag}>" for c in cells) + "</tr>")
            continue
        if table:
            out.append("<table>" + "".join(table) + "</table>")
            table = []
        if line.startswith("## "):
            out.append(f"<h2>{e(line[3:])}</h2>")
        elif line:
            out.append(f"<p>{e(line)}</p>")
    if table:
        out.append("<table>" + "".join(table) + "</table>")
    return "\n".join(out)
