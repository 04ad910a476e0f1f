"""`tfdenoise report --sweep`: the 4 variants x {fp16, mixed} x every operating point.

L3 = eMRAM where the parameters fit in it, flash otherwise (docs/design.md §5). Models come from a
`source(variant, precision)` callable returning a Graph or a .tflite path; by default the
files `{variant}_{precision}.tflite` of `models_dir` when present, else the analytic
reference graphs of `targets.reference` (same layer structure, zero weights).

`report --sweep --strategy`: the sparsity axis (docs/design.md §9). One model's weight tensors
made 0 to 90 % zero in the graph IR (no TensorFlow: targets.sparsity.sparsify rewrites the
constant tensors' data), unstructured and row-structured, each variant priced under every loop
strategy and code precision (targets.strategies); latency against sparsity per strategy.
"""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, Iterable

from tfdenoise.targets.boards import load_board
from tfdenoise.targets.graph import Graph
from tfdenoise.targets.pipeline import analyze_graph
from tfdenoise.targets.reader import read_tflite
from tfdenoise.targets.reference import VARIANTS, build_reference
from tfdenoise.targets.report import to_json
from tfdenoise.targets.types import Board
from tfdenoise.fileio import atomic_path, write_text

Source = Callable[[str, str], "Graph | str | Path"]
COLUMNS = ["variant", "precision", "vdd", "freq_mhz", "l3", "source", "param_bytes", "macs", "latency_ms",
           "mac_per_cycle", "rho_l3", "power_mw", "energy_uj", "avg_power_mw_at_hop", "realtime_ok", "fits"]


def files_or_reference(models_dir: str | Path | None) -> Source:
    """Source: `models_dir/{variant}_{precision}.tflite` if it exists, else the reference graph."""
    def source(variant: str, precision: str) -> Graph | Path:
        if models_dir is not None:
            p = Path(models_dir) / f"{variant}_{precision}.tflite"
            if p.is_file():
                return p
        return build_reference(variant, precision)
    return source


def exported_or_reference(out_dir: str | Path) -> Source:
    """Source: export `{variant}_{precision}.tflite` with random weights through
    `converters.export.export_variant(variant, precision, out_path)` (TensorFlow, slow), reusing
    files already in `out_dir`; the reference graph when the converters are not importable."""
    try:
        from tfdenoise.converters.convert import export_variant
    except ImportError:
        export_variant = None

    def source(variant: str, precision: str) -> Graph | Path:
        p = Path(out_dir) / f"{variant}_{precision}.tflite"
        if p.is_file():
            return p
        if export_variant is None:
            return build_reference(variant, precision)
        p.parent.mkdir(parents=True, exist_ok=True)
        return Path(export_variant(variant, precision, p))
    return source


def run_sweep(source: Source | None = None, board: str = "gap9", variants: Iterable[str] = tuple(VARIANTS),
              precisions: Iterable[str] = ("fp16", "mixed")) -> list[dict]:
    """One row per (variant, precision, operating point)."""
    b = load_board(board)
    source = source or files_or_reference(None)
    rows = []
    for v in variants:
        for p in precisions:
            got = source(v, p)
            graph = got if isinstance(got, Graph) else read_tflite(got)
            l3 = _pick_l3(b, graph.param_bytes)
            for op in b.operating_points:
                j = to_json(analyze_graph(graph, b, op.vdd, l3))
                rows.append({"variant": v, "precision": p, "source": "reference" if graph.schema_source ==
                             "targets.reference" else graph.path, **{k: j[k] for k in COLUMNS if k in j}})
    return rows


def _pick_l3(board, param_bytes: int) -> str:
    fitting = sorted((m for m in board.l3.values() if m.size >= param_bytes), key=lambda m: m.size)
    if "emram" in board.l3 and board.l3["emram"].size >= param_bytes:
        return "emram"
    return fitting[0].name if fitting else max(board.l3.values(), key=lambda m: m.size).name


def write_sweep(rows: list[dict], out_dir: str | Path) -> dict[str, Path]:
    """sweep.csv, sweep.json and sweep.png (MAC/cycle and power per configuration)."""
    out = Path(out_dir)
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    w.writeheader()
    w.writerows(rows)
    paths = {"csv": write_text(out / "sweep.csv", buf.getvalue()),
             "json": write_text(out / "sweep.json", json.dumps(rows, indent=2))}
    paths["png"] = _figure(rows, out / "sweep.png")
    return paths


def _figure(rows: list[dict], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    labels = [f"{r['variant']} {r['precision']}\n{r['vdd']}V {r['l3']}" for r in rows]
    fig, (a1, a2) = plt.subplots(2, 1, figsize=(max(8, 0.6 * len(rows)), 6.5), dpi=90, sharex=True)
    colors = ["#4c72b0" if r["precision"] == "mixed" else "#dd8452" for r in rows]
    a1.bar(range(len(rows)), [r["mac_per_cycle"] for r in rows], color=colors)
    a1.set_ylabel("MAC/cycle")
    a2.bar(range(len(rows)), [r["power_mw"] for r in rows], color=colors)
    a2.set_ylabel("power while running (mW)")
    a2.set_xticks(range(len(rows)), labels, rotation=90, fontsize=7)
    a1.set_title("TinyDenoiser sweep (blue: mixed FP16-INT8, orange: FP16)")
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


# -- sparsity axis (docs/design.md §9): one model, sparse variants, every loop strategy ----------

#: Sparsities of the synthesized variants (share of zero weights per weight tensor, or of zero rows).
SPARSITIES: tuple[float, ...] = tuple(round(0.1 * i, 1) for i in range(10))
SPARSITY_COLUMNS = ["structure", "sparsity", "zero_fraction", "zero_row_fraction", "strategy", "precision",
                    "cycles", "latency_ms", "speedup_vs_dense"]


def run_sparsity_sweep(graph: Graph, board: Board | str, strategies: Iterable[str],
                       precisions: Iterable[str] | None = None, sparsities: Iterable[float] = SPARSITIES,
                       structures: Iterable[str] | None = None, vdd: float | None = None,
                       l3: str | None = None, policy: str | None = None,
                       freq_mhz: float | None = None) -> list[dict]:
    """One row per (structure, sparsity, strategy, code precision): the weight tensors of `graph`
    made `sparsity` zero in the graph IR (targets.sparsity.sparsify: smallest-magnitude weights,
    or the rows with the smallest L1 norm), priced by targets.strategies at the operating point
    and with the memory plan that `vdd`, `l3`, `policy` and `freq_mhz` give the file."""
    from tfdenoise.targets.sparsity import Structure, sparsify
    from tfdenoise.targets.strategies import price_strategies
    from tfdenoise.vocab import CodePrecision

    b = board if isinstance(board, Board) else load_board(board)
    base = analyze_graph(graph, b, vdd, l3, policy, freq_mhz=freq_mhz)   # layers, op, memory plan
    strategies, precisions = tuple(strategies), tuple(precisions or CodePrecision)
    rows = []
    for structure in tuple(structures or Structure):
        for s in sparsities:
            p = price_strategies(sparsify(graph, s, structure, base.layers), b, strategies, precisions,
                                 base.layers, base.op, base.memory)
            sp = list(p.sparsity.values())
            n = sum(x.elements for x in sp) or 1
            zf = sum(x.zeros for x in sp) / n
            rows_n = sum(t.rows for x in sp for t in x.tensors) or 1
            zr = sum(t.zero_rows for x in sp for t in x.tensors) / rows_n
            for strat in strategies:
                for prec in precisions:
                    cyc, dense = p.cycles(strat, prec), p.cycles("dense", prec) if "dense" in strategies else None
                    rows.append({"structure": str(structure), "sparsity": s, "zero_fraction": round(zf, 4),
                                 "zero_row_fraction": round(zr, 4), "strategy": str(strat), "precision": str(prec),
                                 "cycles": cyc, "latency_ms": round(p.latency_ms(strat, prec), 4),
                                 "speedup_vs_dense": round(dense / cyc, 4) if dense and cyc else None})
    return rows


def sparsity_markdown(rows: list[dict], title: str) -> str:
    """One table per code precision: sparsity x structure -> latency (ms) per strategy."""
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    lines = [f"# {title}", "", "Latency per inference in ms (targets/strategies.py, docs/design.md §9); "
             "`unstructured`: the smallest-magnitude weights zeroed, `row`: the rows with the smallest L1 "
             "norm zeroed (targets/sparsity.py).", ""]
    for prec in dict.fromkeys(r["precision"] for r in rows):
        lines += [f"## {prec}", "", "| structure | sparsity | zeros | zero rows | " + " | ".join(strategies) + " |",
                  "|---|---|---|---|" + "---|" * len(strategies)]
        keys = dict.fromkeys((r["structure"], r["sparsity"]) for r in rows if r["precision"] == prec)
        for st, s in keys:
            sel = {r["strategy"]: r for r in rows if (r["structure"], r["sparsity"], r["precision"]) == (st, s, prec)}
            first = next(iter(sel.values()))
            lines.append(f"| {st} | {s:g} | {100 * first['zero_fraction']:.1f} % | "
                         f"{100 * first['zero_row_fraction']:.1f} % | "
                         + " | ".join(f"{sel[x]['latency_ms']:.3f}" for x in strategies) + " |")
        lines.append("")
    return "\n".join(lines)


def write_sparsity_sweep(rows: list[dict], out_dir: str | Path, title: str) -> dict[str, Path]:
    """sparsity_sweep.json, sparsity_sweep.md and sparsity_sweep.png (latency vs sparsity per
    strategy, one panel per code precision), each written atomically."""
    out = Path(out_dir)
    paths = {"json": write_text(out / "sparsity_sweep.json", json.dumps(rows, indent=2)),
             "markdown": write_text(out / "sparsity_sweep.md", sparsity_markdown(rows, title))}
    paths["png"] = _sparsity_figure(rows, out / "sparsity_sweep.png", title)
    return paths


def _sparsity_figure(rows: list[dict], path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    precisions = list(dict.fromkeys(r["precision"] for r in rows))
    strategies = list(dict.fromkeys(r["strategy"] for r in rows))
    colors = dict(zip(strategies, plt.get_cmap("tab10").colors))
    fig, axes = plt.subplots(1, len(precisions), figsize=(4.2 * len(precisions), 4), dpi=90, squeeze=False)
    for ax, prec in zip(axes[0], precisions):
        for strat in strategies:
            for structure, style in (("unstructured", "-"), ("row", "--")):
                pts = [(r["sparsity"], r["latency_ms"]) for r in rows
                       if (r["precision"], r["strategy"], r["structure"]) == (prec, strat, structure)]
                if pts:
                    ax.plot(*zip(*pts), style, marker=".", color=colors[strat])
        ax.set_title(prec)
        ax.set_xlabel("sparsity")
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("latency per inference (ms)")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=colors[s], marker=".", label=s) for s in strategies] + \
        [Line2D([], [], color="grey", ls="-", label="unstructured"), Line2D([], [], color="grey", ls="--", label="row")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    fig.suptitle(f"{title}: latency against weight sparsity per loop strategy", fontsize=10)
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path
