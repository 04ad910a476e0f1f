"""Report -> JSON dict, Markdown, self-contained HTML; atomic file writing."""
from __future__ import annotations

import html
import json
from pathlib import Path

from tfdenoise.targets.strategy_report import strategies_html, strategies_json, strategies_markdown
from tfdenoise.targets.int4 import int4_unpack_cycles, param_bytes_at_bit_width
from tfdenoise.targets.types import Report
from tfdenoise.fileio import write_text


def to_json(r: Report) -> dict:
    """Stable JSON view (top-level keys documented in the documentation of `tfdenoise report`)."""
    s, m, p = r.schedule, r.memory, r.power
    return {
        "model": r.model, "target": r.board.name, "vdd": r.op.vdd, "freq_mhz": r.op.freq_mhz,
        "l3": m.l3, "policy": m.policy, "macs": s.macs, "total_cycles": s.total_cycles,
        "latency_ms": round(s.latency_ms, 4), "mac_per_cycle": round(s.mac_per_cycle, 4),
        "rho_l3": round(m.rho_l3, 4), "param_bytes": m.param_bytes, "param_count": m.param_elements,
        "param_bytes_at_bit_width": param_bytes_at_bit_width(r.layers, r.metadata),
        "int4_unpack_cycles": int(round(sum(int4_unpack_cycles(r.board, la) for la in r.layers))),
        "l2_bytes_used": m.l2_bytes_used, "l2_budget": m.l2_budget, "activation_bytes": m.activation_bytes,
        "stream_buffer_bytes": m.stream_buffer_bytes,
        "power_mw": round(p.power_mw, 3), "core_power_mw": round(p.core_mw, 3), "l3_power_mw": round(p.l3_mw, 3),
        "energy_uj": round(p.energy_uj, 3), "decision_energy_uj": round(r.decision_energy_uj, 3),
        "avg_power_mw_at_hop": round(p.avg_power_mw_at_hop, 3),
        "sleep_power_mw": p.sleep_mw, "hop_ms": p.hop_ms,
        "feature_cycles": r.features.cycles if r.features else 0,
        "feature_ms": round(r.features.ms, 4) if r.features else 0.0,
        "decision_ms": round(r.decision_ms, 4),
        "features": _features_json(r),
        "realtime_ok": r.realtime_ok,
        "realtime_margin_ms": round(p.hop_ms - r.decision_ms, 4),
        "fits": r.fits, "fit_reasons": list(m.reasons) + [f"L1: {t.layer}" for t in r.tilings if not t.fits_l1],
        "overflows": [{"memory": o.memory, "what": o.what, "needed_bytes": o.needed,
                       "available_bytes": o.available, "over_by_bytes": o.over_by} for o in r.overflows],
        "random_weights": bool(r.metadata.get("random_weights", False)),
        "warnings": list(r.warnings),
        "layers": [{
            "name": t.name, "kind": t.kind, "precision": t.precision, "macs": t.macs, "cycles": t.cycles,
            "ms": round(t.cycles / (r.op.freq_mhz * 1e3), 5), "mac_per_cycle": round(t.mac_per_cycle, 3),
            "bound": t.bound, "n_tiles": t.n_tiles, "dma_l3_cycles": t.dma_l3_cycles,
            "dma_l2_cycles": t.dma_l2_cycles, "compute_cycles": t.compute_cycles,
            "overhead_cycles": t.overhead_cycles, "param_bytes": la.param_bytes,
            "l3_bytes_per_inference": t.l3_bytes,
            "params_in": "L2" if la.params and m.streamed_bytes.get(la.name, 0) == 0
            else ("L3" if la.params and m.streamed_bytes.get(la.name) == la.param_bytes
                  else ("L2+L3" if la.params else "-")),
            "estimate": t.estimate, "ops": list(la.ops),
        } for t, la in zip(s.layers, r.layers)],
        "tensors": [{"name": b.name, "kind": b.kind, "l2_offset": b.offset, "bytes": b.size, "layer": b.layer}
                    for b in m.buffers],
        "board_constants": {k: {"value": c.value, "unit": c.unit, "source": c.source}
                            for k, c in r.board.constants.items()},
        **({"strategies": strategies_json(r.strategies)} if r.strategies else {}),
    }


def _features_json(r: Report) -> dict | None:
    """Signal processing per hop: a KWS file's feature frame, a denoiser file's STFT + inverse
    STFT (kind "stft"); None for other files."""
    f = r.features
    if f is None:
        return None
    return {"kind": f.kind, "n_fft": f.n_fft, "hop_ms": f.hop_ms, "cycles": f.cycles, "ms": round(f.ms, 5),
            "fft_cycles": f.fft_cycles, "mac_cycles": f.mac_cycles, "log_cycles": f.log_cycles,
            "sqrt_cycles": f.sqrt_cycles, "overhead_cycles": f.overhead_cycles, "macs": f.macs,
            "mel_weights": f.mel_weights, "energy_uj": round(f.energy_uj, 4)}


def _stft(j: dict) -> bool:
    """The report's per-hop processing is the denoiser's STFT + inverse STFT."""
    return bool(j.get("features")) and j["features"]["kind"] == "stft"


def _rows(j: dict) -> list[list[str]]:
    rows = [[la["name"], la["kind"], la["precision"], f"{la['macs']:,}", f"{la['cycles']:,}", f"{la['ms']:.3f}",
             f"{la['mac_per_cycle']:.2f}", la["bound"], la["params_in"], str(la["n_tiles"]),
             "estimate" if la["estimate"] else ""] for la in j["layers"]]
    f = j.get("features")
    if f and _stft(j):  # the denoiser's STFT front end and inverse-STFT back end (targets/features.py)
        rows.append(["STFT + inverse STFT per hop", "stft", "fp32", f"{f['macs']:,}", f"{f['cycles']:,}",
                     f"{f['ms']:.3f}", "", "compute", "-", "-", f"2 x FFT {f['n_fft']}"])
    elif f:  # one new feature frame per hop, before the network runs (targets/features.py)
        rows.insert(0, ["feature extraction per hop", f["kind"], "fp32", f"{f['macs']:,}", f"{f['cycles']:,}",
                        f"{f['ms']:.3f}", "", "compute", "-", "-", "FFT " + f"{f['n_fft']}"])
    return rows


HEAD = ["layer", "kind", "precision", "MACs", "cycles", "ms", "MAC/cycle", "bound", "params", "tiles", ""]


def _verdict(j: dict) -> str:
    over = [f"{o['what']} exceed {o['memory']} by {o['over_by_bytes']:,} B" for o in j["overflows"]]
    fit = "fits" if j["fits"] else "DOES NOT FIT (" + "; ".join(over or j["fit_reasons"]) + ")"
    rt = "keeps up with" if j["realtime_ok"] else "does NOT keep up with"
    if _stft(j):
        return (f"{fit}; {j['decision_ms']:.3f} ms per hop (inference {j['latency_ms']:.3f} ms + STFT / inverse "
                f"STFT {j['feature_ms']:.3f} ms), {rt} the {j['hop_ms']:g} ms hop "
                f"(margin {j['realtime_margin_ms']:+.3f} ms)")
    if j.get("features"):
        return (f"{fit}; {j['decision_ms']:.3f} ms per decision (inference {j['latency_ms']:.3f} ms + feature "
                f"extraction {j['feature_ms']:.3f} ms), {rt} the {j['hop_ms']:g} ms feature hop "
                f"(margin {j['realtime_margin_ms']:+.3f} ms)")
    return (f"{fit}; {j['latency_ms']:.3f} ms per inference, {rt} the {j['hop_ms']} ms hop "
            f"(margin {j['realtime_margin_ms']:+.3f} ms)")


def _summary(j: dict) -> list[tuple[str, str]]:
    return [("target", f"{j['target']} @ {j['vdd']} V / {j['freq_mhz']:g} MHz, L3 = {j['l3']}, policy {j['policy']}"),
            ("MACs / inference", f"{j['macs']:,}"), ("cycles", f"{j['total_cycles']:,}"),
            ("latency", f"{j['latency_ms']:.3f} ms"), *_feature_summary(j),
            ("MAC/cycle", f"{j['mac_per_cycle']:.2f}"),
            ("parameters", f"{j['param_count']:,} ({j['param_bytes']:,} B" + (
                f"; {j['param_bytes_at_bit_width']:,} B at the trained weight widths"
                if j["param_bytes_at_bit_width"] != j["param_bytes"] else "") + ")"),
            ("rho_L3", f"{j['rho_l3']:.3f}"),
            ("L2 used", f"{j['l2_bytes_used']:,} / {j['l2_budget']:,} B (activations {j['activation_bytes']:,} B, "
                        f"streaming buffer {j['stream_buffer_bytes']:,} B)"),
            ("power running", f"{j['power_mw']:.1f} mW (SoC {j['core_power_mw']:.1f} + L3 {j['l3_power_mw']:.1f})"),
            ("energy / inference", f"{j['energy_uj']:.1f} uJ"), *_decision_energy(j),
            ("average power at 1 hop (STFT + network + inverse STFT)" if _stft(j) else
             "average power at 1 decision / hop (features included)" if j.get("features") else
             "average power at 1 inference / hop", f"{j['avg_power_mw_at_hop']:.2f} mW (sleep {j['sleep_power_mw']} mW)")]


def _decision_energy(j: dict) -> list[tuple[str, str]]:
    if not _stft(j):
        return []
    return [("energy / hop (STFT + network + inverse STFT)",
             f"{j['decision_energy_uj']:.1f} uJ (STFT / inverse STFT {j['features']['energy_uj']:.1f} uJ)")]


def _feature_summary(j: dict) -> list[tuple[str, str]]:
    f = j.get("features")
    if not f:
        return []
    if _stft(j):
        return [("STFT + inverse STFT per hop",
                 f"{f['cycles']:,} cycles = {f['ms']:.3f} ms (2 real FFTs of {f['n_fft']}: {f['fft_cycles']:,} + "
                 f"windows/magnitude/mask/overlap-add {f['mac_cycles']:,} + square roots {f['sqrt_cycles']:,} + "
                 f"overhead {f['overhead_cycles']:,} cycles; targets/features.py)"),
                ("hop (network + STFT / inverse STFT)", f"{j['decision_ms']:.3f} ms per {j['hop_ms']:g} ms hop")]
    return [("feature extraction per hop",
             f"{f['cycles']:,} cycles = {f['ms']:.3f} ms ({f['kind']}, FFT {f['n_fft']}: FFT {f['fft_cycles']:,} + "
             f"window/power/mel/DCT {f['mac_cycles']:,} + log {f['log_cycles']:,} + overhead "
             f"{f['overhead_cycles']:,} cycles; targets/features.py)"),
            ("decision (inference + features)", f"{j['decision_ms']:.3f} ms per {j['hop_ms']:g} ms hop")]


def to_markdown(r: Report) -> str:
    j = to_json(r)
    lines = [f"# tfdenoise report: {Path(j['model']).name} on {j['target']}", "", f"**Verdict:** {_verdict(j)}", "",
             "| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in _summary(j)]
    lines += ["", "## Layers", "", "| " + " | ".join(HEAD) + " |", "|" + "---|" * len(HEAD)]
    lines += ["| " + " | ".join(row) + " |" for row in _rows(j)]
    if r.strategies:
        lines += [""] + strategies_markdown(r.strategies)
    if j["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in j["warnings"]]
    lines += ["", "Cost model: docs/design.md §5 (targets/schedule.py, targets/kernels.py); board constants and their "
              f"sources: {r.board.path}.", ""]
    return "\n".join(lines)


def to_html(r: Report, with_plots: bool = True) -> str:
    from tfdenoise.targets import plots

    j = to_json(r)
    e = html.escape
    figs = ""
    if with_plots:
        figs = "".join(f'<figure><img alt="{e(alt)}" src="{fn(r)}"><figcaption>{e(alt)}</figcaption></figure>'
                       for alt, fn in (("Latency per layer: compute vs DMA", plots.latency_split),
                                       ("L2 memory map", plots.memory_map),
                                       ("DMA / compute timeline", plots.timeline)))
    summary = "".join(f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in _summary(j))
    head = "".join(f"<th>{e(h)}</th>" for h in HEAD)
    rows = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in _rows(j))
    warn = "".join(f"<li>{e(w)}</li>" for w in j["warnings"])
    ok = "ok" if j["fits"] and j["realtime_ok"] else "bad"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>tfdenoise report: {e(Path(j['model']).name)}</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:1em auto;color:#222}}
table{{border-collapse:collapse;margin:.5em 0}}td,th{{border:1px solid #ccc;padding:2px 6px;text-align:left;font-size:13px}}
.ok{{background:#e6f4ea;padding:.5em}}.bad{{background:#fce8e6;padding:.5em}}img{{max-width:100%}}</style></head>
<body><h1>tfdenoise report: {e(Path(j['model']).name)} on {e(j['target'])}</h1>
<p class="{ok}"><b>Verdict:</b> {e(_verdict(j))}</p>
<table>{summary}</table>
<h2>Layers</h2><table><tr>{head}</tr>{rows}</table>
{f'<h2>Warnings</h2><ul>{warn}</ul>' if warn else ''}
{strategies_html(r.strategies) if r.strategies else ''}
<h2>Figures</h2>{figs}
<p>Cost model: docs/design.md §5; board constants with units and sources: {e(r.board.path)}</p>
</body></html>
"""


def report_paths(model: str | Path, board: str, out_dir: str | Path) -> dict[str, Path]:
    """Where :func:`write_report` puts the Markdown, HTML and JSON of ``model`` on ``board``."""
    stem = Path(str(model)).stem.strip("<>").replace(" ", "_") or "model"
    return {kind: Path(out_dir) / f"{stem}.{board}.{ext}"
            for kind, ext in (("markdown", "md"), ("html", "html"), ("json", "json"))}


def write_report(r: Report, out_dir: str | Path | None = None, json_path: str | Path | None = None,
                 with_plots: bool = True) -> dict[str, Path]:
    """Write report.md/.html/.json under `out_dir` (and/or JSON to `json_path`)."""
    written: dict[str, Path] = {}
    if out_dir is not None:
        paths = report_paths(r.model, r.board.name, out_dir)
        written["markdown"] = write_text(paths["markdown"], to_markdown(r))
        written["html"] = write_text(paths["html"], to_html(r, with_plots))
        written["json"] = write_text(paths["json"], json.dumps(to_json(r), indent=2))
    if json_path is not None:
        written["json_path"] = write_text(Path(json_path), json.dumps(to_json(r), indent=2))
    return written
