"""What `tfdenoise search` writes (issue 20): ``candidates.json`` (the whole result: every
candidate with its cost, budgets missed, quality when measured), ``pareto.md`` (summary, the
chosen configuration beside the reference, the quality-energy and quality-latency Pareto fronts
and every scored file), ``pareto.png`` (quality against energy and against latency),
``chosen.json`` (the chosen recipe with its deployment settings: ``tfdenoise export CHECKPOINT
--recipe chosen.json`` remakes the file), ``chosen.tflite`` and its hardware report
``chosen.<board>.md/.html/.json``.  The ``chosen*`` files an earlier run left in the folder and
this run does not write (nothing chosen, or another board's report) are removed, so what is
there always belongs to the ``pareto.md`` beside it.
"""
from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from tfdenoise.fileio import write_json

#: Quality columns per family: (header, key, scale, format).
QUALITY = {"denoiser": (("PESQ", "pesq", 1, ".3f"), ("STOI", "stoi", 1, ".4f")),
           "kws": (("accuracy %", "accuracy", 100, ".2f"), ("FRR @ 1 FA/h %", "frr_1fa", 100, ".1f"))}
UNITS = {"denoiser": ("ms / inference", "uJ / inference"), "kws": ("ms / decision", "uJ / decision")}


def _quality_cells(c: dict, family: str) -> list[str]:
    q = c.get("quality")
    return ["" if q is None or q.get(k) is None else format(s * q[k], f) for _, k, s, f in QUALITY[family]]


def _head(family: str) -> str:
    cols = ["model", "recipe", "policy", "L3", "operating point", *UNITS[family], "L2 used (B)",
            "params (B)", "zeros", "rho_L3", *(h for h, *_ in QUALITY[family]), "meets bound"]
    return "| " + " | ".join(cols) + " |\n|" + "---|" * len(cols)


def _row(c: dict, result: dict, note: str = "") -> str:
    k, (ms, uj) = c["cost"], result["cost_keys"]
    ok = {True: "yes", False: "no", None: ""}[c.get("accepted")]
    cells = [c["model"], c["recipe"], c["policy"], c["l3"], f"{c['vdd']:g} V / {c['freq_mhz']:g} MHz",
             f"{k[ms]:.3f}", f"{k[uj]:.2f}", f"{k['l2_bytes_used']:,}", f"{k['param_bytes']:,}",
             f"{100 * c.get('sparsity', 0.0):.1f} %", f"{k['rho_l3']:.3f}",
             *_quality_cells(c, result["family"]), ok + (f" {note}" if note else "")]
    return "| " + " | ".join(cells) + " |"


def _key(result: dict):
    """Lowest energy first, then latency, the board's default policy and L3."""
    ms, uj = result["cost_keys"]
    policy, l3 = result["prefer"]
    return lambda c: (c["cost"][uj], c["cost"][ms], c["policy"] != policy, c["l3"] != l3)


def reference_at(result: dict, chosen: dict) -> dict | None:
    """The reference file at the chosen candidate's L3 and operating point (default policy when
    priced), for the side-by-side line."""
    ref = result["reference"]
    same = [c for c in result["candidates"] if c["file"] == ref["file"] and c["l3"] == chosen["l3"]
            and c["vdd"] == chosen["vdd"] and c["freq_mhz"] == chosen["freq_mhz"]]
    return next((c for c in same if c["policy"] == result["prefer"][0]), same[0] if same else None)


def _limits(result: dict) -> str:
    names = {"pesq": "PESQ", "accuracy": "accuracy", "frr_1fa": "FRR at 1 FA/h"}
    scale = {"pesq": 1, "accuracy": 100, "frr_1fa": 100}
    unit = {"pesq": "", "accuracy": " %", "frr_1fa": " %"}
    return ", ".join(f"{names[k]} {op} {scale[k] * v:.{3 if k == 'pesq' else 2}f}{unit[k]}"
                     for k, (op, v) in result["reference"]["limits"].items())


def _source(s: dict, n_recipes: int) -> str:
    """``label (kind, QAT widths / pruning, N recipes)``."""
    notes = [s["kind"]]
    if s["qat_bits"]:
        notes.append("QAT " + "/".join(str(b) for b in sorted(set(s["qat_bits"].values()))) + "-bit weights")
    if s["prune"]:
        notes.append(f"pruned {s['prune']['method']} {s['prune']['target']}")
    return f"{s['label']} ({', '.join(notes)}, {n_recipes} recipe{'s' if n_recipes != 1 else ''})"


def _summary(result: dict) -> list[str]:
    cands, b = result["candidates"], result["budgets"]
    files = {c["file"] for c in cands}
    scored = {c["file"] for c in cands if c["quality"] is not None}
    dropped = Counter(r for c in cands for r in c["reasons"])
    given = ", ".join(f"{k} {v:g}" for k, v in (("ms", b["ms"]), ("uJ", b["uj"]), ("L2 kB", b["l2_kb"]),
                                                  ("param kB", b["param_kb"])) if v is not None) or "none"
    ref, s = result["reference"], result["seconds"]
    srcs = "; ".join(_source(x, len(result["recipes"][x["label"]])) for x in result["sources"])
    return [f"Checkpoints: {srcs}.", "",
            f"{len(cands)} candidates ({len(files)} distinct files x promotion policy x L3 x operating point); "
            f"budgets: {given}; {sum(c['within_budget'] for c in cands)} within the budgets (fit, keep up with "
            "the hop, budgets met); dropped for: "
            + (", ".join(f"{r} {n}" for r, n in dropped.most_common()) or "nothing") + f". "
            f"{sum(c['cost_pareto'] for c in cands)} on the first cost-Pareto front; {len(scored)} files scored "
            f"({result['scored_now']} new, the rest from the cache).", "",
            f"Quality: {result['quality_data']}. Reference: {ref['model']} {ref['recipe']}; a candidate must "
            f"reach {_limits(result)}.", "",
            f"Time: export {s['export']:.0f} s, pricing {s['price']:.0f} s, scoring {s['score']:.0f} s, "
            f"total {s['total']:.0f} s."]


def to_markdown(result: dict) -> str:
    """Summary, chosen vs reference, both quality-cost fronts and the scored files, as Markdown."""
    cands, fam = result["candidates"], result["family"]
    lines = [f"# tfdenoise search: {Path(result['checkpoint']).name} ({fam}) on {result['target']}", "",
             *_summary(result), "", "## Chosen", ""]
    if result["chosen"] is None:
        lines.append("No candidate meets the budgets and the quality bound.")
    else:
        ch = cands[result["chosen"]]
        ref = reference_at(result, ch)
        lines += [_head(fam), _row(ch, result, "(chosen)")] + ([_row(ref, result, "(reference)")] if ref else [])
    scored = sorted((c for c in cands if c["within_budget"] and c["quality"] is not None), key=_key(result))
    for front, title in (("energy", "quality vs energy"), ("latency", "quality vs latency")):
        rows = [c for c in scored if front in c["fronts"]]
        if front == "latency":
            rows.sort(key=lambda c: c["cost"][result["cost_keys"][0]])
        within = "scored candidates within the budgets" + (" that meet the FRR bound" if fam == "kws" else "")
        lines += ["", f"## Pareto front: {title} ({within})", "", _head(fam)]
        lines += [_row(c, result) for c in rows]
    best: dict[str, dict] = {}
    for c in scored:
        best.setdefault(c["file"], c)
    lines += ["", "## Scored files, each at its lowest-energy configuration within the budgets", "",
              _head(fam)] + [_row(c, result, "**chosen**" if result["chosen"] is not None and
                                  c["file"] == cands[result["chosen"]]["file"] else "") for c in best.values()]
    if result["repeats"]:
        lines += ["", "Recipes that made the same bytes as another (kept once): "
                  + ", ".join(f"{a} = {b}" for a, b in result["repeats"].items()) + "."]
    if result.get("skipped"):
        lines += ["", "Not exported (a network without conv layers: per-tensor weights are what the default "
                  "granularity gives, the file would differ only in its metadata): "
                  + ", ".join(f"{a} = {b}" for a, b in result["skipped"].items()) + "."]
    return "\n".join(lines) + "\n"


def _panel(ax, result: dict, key: str, label: str) -> None:
    fam = result["family"]
    primary = "accuracy" if fam == "kws" else "pesq"
    scale = 100 if fam == "kws" else 1
    cands = [c for c in result["candidates"] if c["within_budget"] and c["quality"] is not None]
    for ok, style in ((True, dict(s=14, color="#4c72b0", label="meets the bound")),
                      (False, dict(s=14, color="#aaaaaa", marker="x", label="fails the bound"))):
        pts = [c for c in cands if bool(c["accepted"]) is ok]
        ax.scatter([c["cost"][key] for c in pts], [scale * c["quality"][primary] for c in pts], **style)
    front = sorted((c for c in cands if ("energy" if "energy" in key else "latency") in c["fronts"]),
                   key=lambda c: c["cost"][key])
    ax.step([c["cost"][key] for c in front], [scale * c["quality"][primary] for c in front], where="post",
            color="#dd8452", lw=1.2, label="Pareto front")
    if result["chosen"] is not None:
        ch = result["candidates"][result["chosen"]]
        ax.scatter([ch["cost"][key]], [scale * ch["quality"][primary]], s=110, marker="*", color="#c44e52",
                   label="chosen", zorder=5)
    op, limit = result["reference"]["limits"][primary]
    ax.axhline(scale * limit, ls="--", color="grey", lw=0.8)
    xs = [c["cost"][key] for c in cands]
    if xs and min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
    ax.set_xlabel(label + (" (log scale)" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel({"kws": "accuracy (%)", "denoiser": "PESQ-WB"}[fam])
    ax.grid(alpha=0.3)


def figure(result: dict, path: Path) -> Path:
    """Two panels: quality against energy and against latency (scored candidates within budget)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from tfdenoise.fileio import atomic_path

    ms, uj = result["cost_keys"]
    units = UNITS[result["family"]]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), dpi=90)
    _panel(axes[0], result, uj, f"energy ({units[1]})")
    _panel(axes[1], result, ms, f"latency ({units[0]})")
    axes[0].legend(fontsize=8)
    ref = result["reference"]
    fig.suptitle(f"{Path(result['checkpoint']).name} on {result['target']}: quality against cost (dashed: the "
                 f"bound against {ref['model']} {ref['recipe']})", fontsize=10)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return path


def write_outputs(result: dict, out_dir: str | os.PathLike) -> dict[str, Path]:
    """candidates.json, pareto.md, pareto.png and, when one is chosen, chosen.json (its recipe),
    chosen.tflite and its hardware report (targets.report.write_report), all atomic."""
    from tfdenoise.fileio import write_bytes, write_text

    out = Path(out_dir)
    paths = {"candidates": write_json(out / "candidates.json", result),
             "markdown": write_text(out / "pareto.md", to_markdown(result)),
             "png": figure(result, out / "pareto.png")}
    if result["chosen"] is None:
        remove_stale(out, ())
        return paths
    from tfdenoise.targets.pipeline import analyze
    from tfdenoise.targets.report import write_report

    ch = result["candidates"][result["chosen"]]
    recipe = next(r for r in result["recipes"][ch["model"]] if r["name"] == ch["recipe"])
    source = next(s for s in result["sources"] if s["label"] == ch["model"])
    config = {k: ch[k] for k in ("policy", "l3", "vdd", "freq_mhz")}
    paths["chosen_json"] = write_json(out / "chosen.json", {
        **recipe, "deployment": {"checkpoint": source["path"], "target": result["target"], **config},
        "cost": ch["cost"], "quality": ch["quality"]})
    paths["chosen_tflite"] = write_bytes(out / "chosen.tflite", Path(ch["file"]).read_bytes())
    rep = analyze(paths["chosen_tflite"], result["target"], ch["vdd"], ch["l3"], ch["policy"], freq_mhz=ch["freq_mhz"])
    paths.update({f"report_{k}": v for k, v in write_report(rep, out).items()})
    remove_stale(out, paths.values())
    return paths


def stale_chosen(out: Path, keep) -> list[Path]:
    """The ``chosen*`` files of an earlier run in ``out`` (chosen.json, chosen.tflite,
    chosen.<board>.md/.html/.json) that are not in ``keep``."""
    keep = {Path(k).resolve() for k in keep}
    found = [out / "chosen.json", out / "chosen.tflite",
             *(p for ext in ("md", "html", "json") for p in out.glob(f"chosen.*.{ext}"))]
    return sorted({p for p in found if p.is_file() and p.resolve() not in keep})


def remove_stale(out: Path, keep) -> None:
    """Delete :func:`stale_chosen` (OutputError naming a file that cannot be removed)."""
    from tfdenoise.errors import OutputError

    for p in stale_chosen(out, keep):
        try:
            p.unlink()
        except OSError as exc:
            raise OutputError(f"cannot remove the stale output ({exc.strerror or exc})", p) from None
