"""`tfdenoise report --sweep`: the 4 variants x {fp16, mixed} x every operating point.

L3 = eMRAM where the parameters fit in it, flash otherwise (docs/design.md §5). Models come from a
`source(variant, precision)` callable returning a Graph or a .tflite path; by default the
files `{variant}_{precision}.tflite` of `models_dir` when present, else the analytic
reference graphs of `targets.reference` (same layer structure, zero weights).
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
