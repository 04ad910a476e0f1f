"""`tfdenoise search`: the cheapest deployment of a TinyDenoiser that meets a latency, energy and
quality budget (issue 20 items 1-2, denoiser only).

Space: a precision per layer group (``GROUPS``: fc_in, the two RNN layers together, fc_mid,
fc_out; each fp16 or int8, written as recipe JSON, converters/recipe.py) x every L2 promotion
policy of targets/memory.py x every L3 memory of the board x every operating point of the board.

Order of work (cost first, quality only where it can matter):

1. each distinct recipe is exported once (TensorFlow) into ``cache/`` under a key that hashes
   the recipe JSON and the checkpoint's files, so a second search re-exports nothing;
2. every (file, policy, L3, operating point) is priced by ``targets.analyze_graph`` (no TF);
3. among candidates that fit, keep up with the hop and meet ``budget_ms`` (network latency
   per inference, ``latency_ms``) and ``budget_uj`` (network energy per inference,
   ``energy_uj``), the cost-Pareto set over (latency_ms, energy_uj) is taken; only its files
   are scored (PESQ/STOI through LiteRT on the pairs, :func:`tfdenoise.evaluate.evaluate_pairs`),
   cached by the file's sha256 and the pairs' digest in ``quality_cache.json``;
4. the chosen configuration is the lowest-energy candidate whose file's PESQ is at most
   ``max_pesq_loss`` below the reference (the ``mixed`` recipe, always scored).  When the
   front's files all lose too much, their candidates are dropped and the front of the rest is
   scored (peeling), so the answer is the exact minimum-energy candidate meeting the quality
   bound while scoring as few files as possible.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tfdenoise.errors import InputError
from tfdenoise.fileio import write_json

#: Layer groups a search gives one precision each (deployment layers of docs/design.md §4).
GROUPS: dict[str, tuple[str, ...]] = {"fc_in": ("fc_in",), "rnn": ("rnn_0", "rnn_1"),
                                      "fc_mid": ("fc_mid",), "fc_out": ("fc_out",)}
CHOICES: tuple[str, ...] = ("fp16", "int8")
REFERENCE = "mixed"
#: Cost fields of targets.report.to_json copied onto each candidate.
COST_KEYS = ("latency_ms", "decision_ms", "energy_uj", "decision_energy_uj", "power_mw", "rho_l3",
             "l2_bytes_used", "param_bytes", "mac_per_cycle", "fits", "realtime_ok")
Scorer = Callable[[Path, Path], dict]


@dataclass
class Candidate:
    """One configuration: a recipe's file priced at (policy, l3, vdd, freq_mhz)."""

    recipe: str
    precisions: dict[str, str]
    file: str
    policy: str
    l3: str
    vdd: float
    freq_mhz: float
    cost: dict
    within_budget: bool = False
    cost_pareto: bool = False
    pesq: float | None = None
    stoi: float | None = None
    sha256: str = field(default="", repr=False)


def _recipe_name(prec: dict[str, str], groups: dict[str, tuple[str, ...]]) -> str:
    used = set(prec.values())
    if len(used) == 1:
        return next(iter(used))
    if "rnn" in groups and prec == {g: ("int8" if g == "rnn" else "fp16") for g in groups}:
        return REFERENCE
    return "+".join(f"{g}-{p}" for g, p in prec.items())


def enumerate_recipes(groups: dict[str, tuple[str, ...]] = GROUPS,
                      choices: Sequence[str] = CHOICES) -> list[dict]:
    """Every per-group precision choice as recipe JSON (converters/recipe.py format);
    ``len(choices) ** len(groups)`` recipes, all fp16 first."""
    out = []
    for combo in itertools.product(choices, repeat=len(groups)):
        prec = dict(zip(groups, combo))
        out.append({"name": _recipe_name(prec, groups),
                    "description": "tfdenoise search: " + ", ".join(f"{g} {p}" for g, p in prec.items()),
                    "layers": [{"pattern": "|".join(groups[g]), "precision": p} for g, p in prec.items()],
                    "calibration": {"method": "max"}, "search_groups": prec})
    return out


def fingerprint(paths: Iterable[Path]) -> str:
    """sha256 over the names and bytes of files (a checkpoint folder's, a pairs folder's)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def recipe_key(recipe: dict, model_digest: str) -> str:
    """Cache key of one export: the recipe JSON and the checkpoint's digest."""
    text = json.dumps({k: recipe[k] for k in ("layers", "calibration")}, sort_keys=True) + model_digest
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def export_recipes(checkpoint: Path, recipes: Sequence[dict], cache_dir: Path) -> dict[str, Path]:
    """Each recipe's .tflite, exported once into ``cache_dir/<key>.tflite`` (reused when there)."""
    from tqdm import tqdm

    digest = fingerprint(p for p in Path(checkpoint).rglob("*") if p.is_file())
    files, todo = {}, []
    for r in recipes:
        path = Path(cache_dir) / f"{r['name']}.{recipe_key(r, digest)}.tflite"
        files[r["name"]] = path
        if not path.is_file():
            todo.append((r, path))
    if not todo:
        return files
    from tfdenoise.converters import export
    from tfdenoise.models import load_denoiser

    model = load_denoiser(checkpoint)
    for r, path in tqdm(todo, desc="export", unit="recipe", file=sys.stderr, disable=None):
        recipe_path = write_json(path.with_suffix(".recipe.json"), r)
        export(model, out=path, recipe=recipe_path, check=False)
    return files


def cost_candidates(files: dict[str, Path], recipes: Sequence[dict], board,
                    policies: Sequence[str] | None = None) -> list[Candidate]:
    """Every (file, policy, L3, operating point), priced by targets (no TensorFlow)."""
    from tfdenoise.targets.memory import POLICIES
    from tfdenoise.targets.pipeline import analyze_graph
    from tfdenoise.targets.reader import read_tflite
    from tfdenoise.targets.report import to_json

    out = []
    for r in recipes:
        graph = read_tflite(files[r["name"]])
        for policy in policies or tuple(POLICIES):
            for l3 in board.l3:
                for op in board.operating_points:
                    j = to_json(analyze_graph(graph, board, op.vdd, l3, policy, freq_mhz=op.freq_mhz))
                    out.append(Candidate(r["name"], dict(r["search_groups"]), str(files[r["name"]]), policy,
                                         l3, op.vdd, op.freq_mhz, {k: j[k] for k in COST_KEYS}))
    return out


def check_budgets(budget_ms: float | None, budget_uj: float | None, max_pesq_loss: float) -> None:
    """Budgets must be positive numbers, the PESQ loss zero or more (InputError, one line)."""
    for name, v in (("--budget-ms", budget_ms), ("--budget-uj", budget_uj)):
        if v is not None and not (v > 0 and v < float("inf")):
            raise InputError(f"{name} must be a positive number, got {v:g}")
    if not (max_pesq_loss >= 0 and max_pesq_loss < float("inf")):
        raise InputError(f"--max-pesq-loss must be zero or more, got {max_pesq_loss:g}")


def meets_budget(c: Candidate, budget_ms: float | None, budget_uj: float | None) -> bool:
    """Fits the memories, keeps up with the hop, and meets the latency and energy budgets."""
    k = c.cost
    return bool(k["fits"] and k["realtime_ok"] and (budget_ms is None or k["latency_ms"] <= budget_ms)
                and (budget_uj is None or k["energy_uj"] <= budget_uj))


def pareto_front(cands: Sequence[Candidate], keys: Sequence[str] = ("latency_ms", "energy_uj")) -> list[int]:
    """Indices of the candidates no other candidate dominates on ``keys`` (all minimised)."""
    pts = [tuple(c.cost[k] for k in keys) for c in cands]
    front = []
    for i, p in enumerate(pts):
        dominated = any(all(a <= b for a, b in zip(q, p)) and q != p for q in pts)
        if not dominated and p not in [pts[j] for j in front]:
            front.append(i)
    return front


class QualityCache:
    """PESQ/STOI per (file sha256, pairs digest) in a JSON file; ``scored`` counts new scores."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data: dict = {}
        self.scored = 0
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except ValueError:
                raise InputError("quality cache is not valid JSON; delete it to rescore", self.path) from None

    def get(self, sha: str, pairs_digest: str, file: Path, pairs: Path, scorer: Scorer) -> dict:
        key = f"{sha}:{pairs_digest}"
        if key not in self.data:
            self.data[key] = scorer(file, pairs)
            self.scored += 1
            write_json(self.path, self.data)
        return self.data[key]


def litert_scorer(jobs: int | None = None) -> Scorer:
    """Mean PESQ/STOI of a .tflite on a pairs folder (LiteRT, :func:`evaluate_pairs`)."""
    def score(file: Path, pairs: Path) -> dict:
        from tfdenoise.evaluate import evaluate_pairs

        r = evaluate_pairs(pairs, str(file), jobs=jobs)
        return {"pesq": r["mean"]["pesq"], "stoi": r["mean"]["stoi"], "noisy_pesq": r["noisy_mean"]["pesq"]}
    return score


def _score(files: Sequence[str], pairs: Path, cache: QualityCache, scorer: Scorer, cands: Sequence[Candidate]) -> None:
    """Score ``files`` (progress bar) and copy their quality onto every candidate of theirs."""
    from tqdm import tqdm

    digest = fingerprint(p for p in Path(pairs).rglob("*.wav"))
    for f in tqdm(files, desc="score", unit="file", file=sys.stderr, disable=None):
        sha = file_sha256(Path(f))
        q = cache.get(sha, digest, Path(f), Path(pairs), scorer)
        for c in cands:
            if c.file == f:
                c.pesq, c.stoi, c.sha256 = q["pesq"], q["stoi"], sha


def rank(c: Candidate) -> tuple:
    """Order of preference: energy, latency, L2 used, then the board-default promotion policy
    (layer-order) and eMRAM among configurations the cost model prices the same."""
    k = c.cost
    return (k["energy_uj"], k["latency_ms"], k["l2_bytes_used"], c.policy != "layer-order", c.l3 != "emram")


def choose(cands: list[Candidate], pairs: Path, cache: QualityCache, scorer: Scorer,
           max_pesq_loss: float) -> tuple[Candidate | None, float]:
    """Score the reference file and the budget-meeting cost-Pareto files (peeling the front
    while none meets the quality bound); the lowest-energy acceptable candidate and the
    reference PESQ."""
    ref_file = next(c.file for c in cands if c.recipe == REFERENCE)
    _score([ref_file], pairs, cache, scorer, cands)
    ref_pesq = next(c.pesq for c in cands if c.recipe == REFERENCE)
    pool = sorted((c for c in cands if c.within_budget), key=rank)
    first = True
    while pool:
        front = [pool[i] for i in pareto_front(pool)]
        for c in front:
            c.cost_pareto = c.cost_pareto or first
        _score(list(dict.fromkeys(c.file for c in front if c.pesq is None)), pairs, cache, scorer, cands)
        ok = [c for c in front if c.pesq >= ref_pesq - max_pesq_loss]
        if ok:
            return min(ok, key=rank), ref_pesq
        bad = {c.file for c in front}
        pool = [c for c in pool if c.file not in bad]
        first = False
    return None, ref_pesq


def search(checkpoint: str | os.PathLike | None, board: str = "gap9", pairs: str | os.PathLike | None = None,
           out_dir: str | os.PathLike = "search", budget_ms: float | None = 6.25, budget_uj: float | None = None,
           max_pesq_loss: float = 0.03, groups: dict[str, tuple[str, ...]] = GROUPS,
           policies: Sequence[str] | None = None, scorer: Scorer | None = None, jobs: int | None = None) -> dict:
    """The whole search (module docstring); returns the result written by :func:`write_outputs`."""
    from tfdenoise.modelref import require_checkpoint, resolve
    from tfdenoise.samples import pairs_dir
    from tfdenoise.targets.boards import load_board

    check_budgets(budget_ms, budget_uj, max_pesq_loss)
    ckpt = require_checkpoint(resolve(checkpoint), "tfdenoise search").path
    b = load_board(board)
    pairs = Path(pairs) if pairs is not None else pairs_dir()
    out = Path(out_dir)
    recipes = enumerate_recipes(groups)
    if REFERENCE not in {r["name"] for r in recipes}:
        raise InputError(f"the layer groups give no {REFERENCE!r} recipe (an 'rnn' group is needed)")
    files = export_recipes(ckpt, recipes, out / "cache")
    cands = cost_candidates(files, recipes, b, policies)
    for c in cands:
        c.within_budget = meets_budget(c, budget_ms, budget_uj)
    cache = QualityCache(out / "quality_cache.json")
    chosen, ref_pesq = choose(cands, pairs, cache, scorer or litert_scorer(jobs), max_pesq_loss)
    return {"checkpoint": str(ckpt), "target": b.name, "pairs": str(pairs), "budget_ms": budget_ms,
            "budget_uj": budget_uj, "max_pesq_loss": max_pesq_loss, "reference": REFERENCE,
            "reference_pesq": ref_pesq, "recipes": recipes, "scored_now": cache.scored,
            "candidates": [asdict(c) for c in cands],
            "chosen": None if chosen is None else cands.index(chosen)}


# -- outputs ------------------------------------------------------------------------------------

def _mixed_at(result: dict, chosen: dict) -> dict | None:
    """The reference recipe at the chosen candidate's L3 and operating point, board-default
    promotion policy (layer-order when priced), for the side-by-side line."""
    same = [c for c in result["candidates"] if c["recipe"] == REFERENCE and c["l3"] == chosen["l3"]
            and c["vdd"] == chosen["vdd"]]
    return next((c for c in same if c["policy"] == "layer-order"), same[0] if same else None)


def _row(c: dict) -> str:
    k = c["cost"]
    q = "" if c["pesq"] is None else f"{c['pesq']:.3f} | {c['stoi']:.4f}"
    return (f"| {c['recipe']} | {c['policy']} | {c['l3']} | {c['vdd']:g} V / {c['freq_mhz']:g} MHz | "
            f"{k['latency_ms']:.3f} | {k['energy_uj']:.2f} | {k['l2_bytes_used']:,} | {k['rho_l3']:.3f} | "
            + (q or " | ") + " |")


def to_markdown(result: dict) -> str:
    """The measured candidates (cost-Pareto fronts scored) and the chosen one, as Markdown."""
    cands = result["candidates"]
    groups: dict[tuple, list[dict]] = {}
    for c in sorted((c for c in cands if c["pesq"] is not None and c["within_budget"]),
                    key=lambda c: rank(Candidate(**c))):
        k = c["cost"]
        groups.setdefault((c["recipe"], c["vdd"], c["freq_mhz"], k["latency_ms"], k["energy_uj"],
                           k["l2_bytes_used"], k["rho_l3"]), []).append(c)
    head = ("| recipe | policy | L3 | operating point | latency (ms) | energy (uJ) | L2 used (B) | rho_L3 "
            "| PESQ | STOI |\n|---|---|---|---|---|---|---|---|---|---|")
    lines = [f"# tfdenoise search: {Path(result['checkpoint']).name} on {result['target']}", "",
             f"{len(cands)} candidates ({len(result['recipes'])} recipes), "
             f"{sum(c['within_budget'] for c in cands)} within the budgets "
             f"(latency <= {result['budget_ms'] or 'any'} ms, energy <= {result['budget_uj'] or 'any'} uJ, "
             "fits, real-time); "
             f"{sum(c['cost_pareto'] for c in cands)} on the cost-Pareto front. Reference: "
             f"{result['reference']} PESQ {result['reference_pesq']:.3f} on {result['pairs']}; "
             f"max PESQ loss {result['max_pesq_loss']}.", "",
             "## Chosen", ""]
    if result["chosen"] is None:
        lines.append("No candidate meets the budgets and the quality bound.")
    else:
        ch = cands[result["chosen"]]
        mixed = _mixed_at(result, ch)
        lines += [head, _row(ch) + " chosen"] + ([_row(mixed) + " reference"] if mixed else [])
    lines += ["", "## Scored candidates within the budgets (lowest energy first; equal-cost policy/L3 "
              "choices collapsed into the preferred one)", "", head]
    lines += [_row(g[0]) + (f" (+{len(g) - 1} policy/L3 choices of the same cost)" if len(g) > 1 else "")
              + (" **Pareto**" if any(c["cost_pareto"] for c in g) else "") for g in groups.values()]
    return "\n".join(lines) + "\n"


def _figure(result: dict, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    from tfdenoise.fileio import atomic_path

    cands = [c for c in result["candidates"] if c["pesq"] is not None and c["within_budget"]]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=90)
    for ax, key, label in ((axes[0], "energy_uj", "energy per inference (uJ)"),
                           (axes[1], "latency_ms", "latency per inference (ms)")):
        ax.scatter([c["cost"][key] for c in cands], [c["pesq"] for c in cands], s=12, color="#999999",
                   label="scored")
        front = [c for c in cands if c["cost_pareto"]]
        ax.scatter([c["cost"][key] for c in front], [c["pesq"] for c in front], s=24, color="#4c72b0",
                   label="cost-Pareto")
        if result["chosen"] is not None:
            ch = result["candidates"][result["chosen"]]
            ax.scatter([ch["cost"][key]], [ch["pesq"]], s=90, marker="*", color="#c44e52", label="chosen")
        ax.axhline(result["reference_pesq"] - result["max_pesq_loss"], ls="--", color="grey", lw=0.8)
        ax.set_xlabel(label)
        ax.set_ylabel("PESQ")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle(f"{Path(result['checkpoint']).name} on {result['target']}: quality against cost "
                 f"(dashed: {result['reference']} PESQ - {result['max_pesq_loss']})", fontsize=10)
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
             "png": _figure(result, out / "pareto.png")}
    if result["chosen"] is None:
        return paths
    from tfdenoise.targets.pipeline import analyze
    from tfdenoise.targets.report import write_report

    ch = result["candidates"][result["chosen"]]
    recipe = next(r for r in result["recipes"] if r["name"] == ch["recipe"])
    config = {k: ch[k] for k in ("policy", "l3", "vdd", "freq_mhz")}
    paths["chosen_json"] = write_json(out / "chosen.json", {**recipe, "deployment": {"target": result["target"],
                                      **config}, "cost": ch["cost"], "pesq": ch["pesq"], "stoi": ch["stoi"]})
    paths["chosen_tflite"] = write_bytes(out / "chosen.tflite", Path(ch["file"]).read_bytes())
    rep = analyze(paths["chosen_tflite"], result["target"], ch["vdd"], ch["l3"], ch["policy"], freq_mhz=ch["freq_mhz"])
    paths.update({f"report_{k}": v for k, v in write_report(rep, out).items()})
    return paths
