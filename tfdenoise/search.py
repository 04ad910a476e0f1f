"""`tfdenoise search`: the lowest-energy deployment of a TinyDenoiser or a keyword spotter that
meets latency, energy, memory and quality budgets (issue 20).

Space (tfdenoise/search_space.py): the model searched and the ``--also`` checkpoints (QAT,
pruned) x their recipes (a precision per layer group, QAT weight widths) x every L2 promotion
policy x every L3 memory x every operating point of the board.

Order of work (cost first, quality only where it can matter):

1. each (checkpoint, recipe) is exported once into ``cache/`` (search_space.export_files);
2. every (file, policy, L3, operating point) is priced by ``targets.analyze_graph`` (no TF);
3. a candidate is within budget when it fits the memories, keeps up with the hop and meets
   ``--budget-ms`` / ``--budget-uj`` (denoiser: network latency / energy per inference; KWS: per
   decision, the feature frame included), ``--budget-l2-kb`` (L2 / SRAM the plan uses) and
   ``--budget-param-kb`` (parameter bytes as stored); the missed budgets are its ``reasons``;
4. :func:`choose`: the reference file (mixed FP16-INT8 for a denoiser, the fp32 file = the float
   model for KWS) is scored, then the cost-Pareto front over (latency, energy) of the candidates
   within budget; quality is measured per file (PESQ/STOI in LiteRT on the pairs; KWS accuracy
   and FRR at 1 FA/h, tfdenoise/search_kws.py) and cached by the file's sha256 and the data's
   digest in ``CACHE/quality_cache.json``.  While the lowest-energy candidate left fails the quality
   bound (:class:`QualityBound`), the candidates of the rejected files are dropped and the new
   front is scored: the answer is the exact lowest-energy candidate within budget and bound.

Outputs: tfdenoise/search_output.py.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Protocol, Sequence

from tfdenoise.errors import InputError
from tfdenoise.fileio import write_json
from tfdenoise.search_space import (GROUPS, REFERENCE, Candidate, Source, export_files, file_sha256,
                                   fingerprint, load_source, price_files, recipes_for, skipped_recipes)
from tfdenoise.vocab import ModelFamily

#: Cost keys (milliseconds, microjoules) the budgets and the cost-Pareto front use, per family.
COST = {ModelFamily.DENOISER: ("latency_ms", "energy_uj"),
        ModelFamily.KWS: ("decision_ms", "decision_energy_uj")}
#: Budget field -> its command-line flag (the reasons a candidate is dropped name them).
FLAGS = {"ms": "--budget-ms", "uj": "--budget-uj", "l2_kb": "--budget-l2-kb", "param_kb": "--budget-param-kb"}
KB = 1024  # a kB of --budget-l2-kb / --budget-param-kb


@dataclass(frozen=True)
class Budgets:
    """Upper bounds (None: none): ms and uJ per inference (KWS: per decision), L2 used and
    parameter bytes in kB (1024 B)."""

    ms: float | None = None
    uj: float | None = None
    l2_kb: float | None = None
    param_kb: float | None = None

    def check(self) -> None:
        """Every budget given is a positive finite number (one-line InputError)."""
        for name, flag in FLAGS.items():
            v = getattr(self, name)
            if v is not None and not (0 < v < float("inf")):
                raise InputError(f"{flag} must be a positive number, got {v:g}")

    def missed(self, cost: dict, family: ModelFamily) -> list[str]:
        """The reasons a candidate of ``cost`` is out of budget (empty: within)."""
        ms, uj = COST[family]
        out = [] if cost["fits"] else ["does not fit"]
        out += [] if cost["realtime_ok"] else ["misses the hop"]
        for name, value in (("ms", cost[ms]), ("uj", cost[uj]), ("l2_kb", cost["l2_bytes_used"] / KB),
                            ("param_kb", cost["param_bytes"] / KB)):
            limit = getattr(self, name)
            if limit is not None and value > limit:
                out.append(f"over {FLAGS[name]}")
        return out


@dataclass(frozen=True)
class QualityBound:
    """How much quality a candidate may lose against the reference: PESQ (denoiser), accuracy in
    percentage points and FRR at 1 FA/h in percent of the reference's (KWS)."""

    family: ModelFamily
    max_pesq_loss: float = 0.03
    max_accuracy_loss: float = 1.0
    max_frr_increase: float = 10.0

    def check(self) -> None:
        for flag, v in (("--max-pesq-loss", self.max_pesq_loss), ("--max-accuracy-loss", self.max_accuracy_loss),
                        ("--max-frr-increase", self.max_frr_increase)):
            if not (0 <= v < float("inf")):
                raise InputError(f"{flag} must be zero or more, got {v:g}")

    @property
    def primary(self) -> str:
        """The quality the plots and the quality-cost fronts use."""
        return "accuracy" if self.family is ModelFamily.KWS else "pesq"

    def limits(self, ref: dict) -> dict[str, tuple[str, float]]:
        """``{metric: (">=" | "<=", value)}`` a candidate's quality must meet."""
        if self.family is ModelFamily.DENOISER:
            return {"pesq": (">=", ref["pesq"] - self.max_pesq_loss)}
        out = {"accuracy": (">=", ref["accuracy"] - self.max_accuracy_loss / 100)}
        if ref.get("frr_1fa") is not None:
            out["frr_1fa"] = ("<=", ref["frr_1fa"] * (1 + self.max_frr_increase / 100))
        return out

    def order(self, q: dict) -> tuple:
        """Sort key of a quality, best first: PESQ then STOI; accuracy then FRR at 1 FA/h."""
        if self.family is ModelFamily.DENOISER:
            return (-q["pesq"], -q["stoi"])
        return (-q["accuracy"], q.get("frr_1fa") or 0.0)

    def accepts(self, q: dict, ref: dict, secondary_only: bool = False) -> bool:
        """``q`` meets every limit (``secondary_only``: every limit but the primary quality's)."""
        eps = 1e-9  # the reference itself always passes (float rounding of the limits)
        return all((q[k] >= v - eps) if op == ">=" else (q[k] <= v + eps)
                   for k, (op, v) in self.limits(ref).items()
                   if q.get(k) is not None and not (secondary_only and k == self.primary))


class Scorer(Protocol):
    """Quality of one ``.tflite``; ``digest`` names the data it is measured on (cache key)."""

    digest: str

    def __call__(self, file: Path) -> dict: ...


class PairsScorer:
    """Mean PESQ/STOI of a denoiser .tflite on a pairs folder (LiteRT, :func:`evaluate_pairs`)."""

    def __init__(self, pairs: str | os.PathLike | None = None, jobs: int | None = None) -> None:
        """Checks ``pairs`` (a noisy/ + clean/ folder, default the bundled pairs) and ``jobs``
        (None or >= 1) at once: one-line errors before any export."""
        from tfdenoise.data import list_pairs
        from tfdenoise.samples import pairs_dir

        if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
            raise InputError(f"--jobs must be a whole number >= 1, got {jobs!r}")
        self.pairs = Path(pairs) if pairs is not None else pairs_dir()
        list_pairs(self.pairs)
        self.jobs = jobs
        self.digest = fingerprint(p for p in self.pairs.rglob("*.wav"))

    def describe(self) -> str:
        return f"PESQ-WB / STOI on {self.pairs}"

    def __call__(self, file: Path) -> dict:
        from tfdenoise.evaluate import evaluate_pairs

        r = evaluate_pairs(self.pairs, str(file), jobs=self.jobs)
        return {"pesq": r["mean"]["pesq"], "stoi": r["mean"]["stoi"], "noisy_pesq": r["noisy_mean"]["pesq"]}


class QualityCache:
    """Quality per (file sha256, data digest) in a JSON file; ``scored`` counts new scores."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.data: dict = {}
        self.scored = 0
        if self.path.is_file():
            try:
                self.data = json.loads(self.path.read_text(encoding="utf-8"))
            except ValueError:
                raise InputError("quality cache is not valid JSON; delete it to rescore", self.path) from None

    def get(self, sha: str, digest: str, compute: Callable[[], dict]) -> dict:
        key = f"{sha}:{digest}"
        if key not in self.data:
            self.data[key] = compute()
            self.scored += 1
            write_json(self.path, self.data)
        return self.data[key]


def pareto_indices(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices (ascending) of the 2-D points no other point dominates (both minimised); of equal
    points the first is kept."""
    order = sorted(range(len(points)), key=lambda i: (points[i], i))
    front, best = [], float("inf")
    for i in order:
        if points[i][1] < best:
            front.append(i)
            best = points[i][1]
    return sorted(front)


def pareto_front(cands: Sequence[Candidate], keys: Sequence[str] = ("latency_ms", "energy_uj")) -> list[int]:
    """Indices of the candidates no other candidate dominates on the two cost ``keys``."""
    return pareto_indices([(c.cost[keys[0]], c.cost[keys[1]]) for c in cands])


def rank(c: Candidate, family: ModelFamily, prefer: tuple[str, str], bound: QualityBound | None = None) -> tuple:
    """Order of preference: energy, latency, better quality (with ``bound``, once scored), L2
    used, then the board's default promotion policy and L3 among equals."""
    ms, uj = COST[family]
    q = bound.order(c.quality) if bound is not None and c.quality else ()
    return (c.cost[uj], c.cost[ms], q, c.cost["l2_bytes_used"], c.policy != prefer[0], c.l3 != prefer[1])


class _Quality:
    """Scores files through the cache and copies the result onto every candidate of each file."""

    def __init__(self, cands: Sequence[Candidate], scorer: Scorer, cache: QualityCache,
                 bound: QualityBound) -> None:
        self.cands, self.scorer, self.cache, self.bound = cands, scorer, cache, bound
        self.ref: dict | None = None

    def score(self, files: Sequence[str]) -> None:
        from tqdm import tqdm

        todo = list(dict.fromkeys(f for f in files if not any(c.file == f and c.quality for c in self.cands)))
        for f in tqdm(todo, desc="score", unit="file", file=sys.stderr, disable=True if not todo else None):
            sha = file_sha256(f)
            q = self.cache.get(sha, self.scorer.digest, lambda: self.scorer(Path(f)))
            for c in self.cands:
                if c.file == f:
                    c.quality = q
                    c.accepted = None if self.ref is None else self.bound.accepts(q, self.ref)


def choose(cands: list[Candidate], quality: _Quality, family: ModelFamily, prefer: tuple[str, str],
           score_all: bool = False) -> Candidate | None:
    """The lowest-energy candidate within budget whose file meets the quality bound, scoring the
    cost-Pareto fronts of what is left until the lowest-energy candidate left passes; the
    unscored files of that same energy are scored too, and the best quality among them wins
    (``score_all``: every file within budget is scored first)."""
    pool = sorted((c for c in cands if c.within_budget), key=lambda c: rank(c, family, prefer))
    if score_all:
        quality.score([c.file for c in pool])
    first = True
    while pool:
        front = [pool[i] for i in pareto_front(pool, COST[family])]
        for c in front:
            c.cost_pareto = c.cost_pareto or first
        first = False
        quality.score([c.file for c in front])
        uj = COST[family][1]
        floor = min((c.cost[uj] for c in pool if c.quality is None), default=float("inf"))
        ok = [c for c in pool if c.accepted]
        if ok and min(c.cost[uj] for c in ok) <= floor:
            best = min(c.cost[uj] for c in ok)  # files of the same cost: the best quality wins
            quality.score([c.file for c in pool if c.quality is None and c.cost[uj] <= best])
            return min((c for c in pool if c.accepted), key=lambda c: rank(c, family, prefer, quality.bound))
        left = [c for c in pool if c.accepted is not False]
        if len(left) == len(pool):  # nothing rejected: score the cheapest unscored file
            quality.score([next(c.file for c in pool if c.quality is None)])
        pool = [c for c in pool if c.accepted is not False]
    return None


def mark_fronts(cands: Sequence[Candidate], family: ModelFamily, bound: QualityBound, ref: dict,
                prefer: tuple[str, str]) -> None:
    """Flag the candidates on the quality-energy and quality-latency Pareto fronts (``fronts``:
    "energy", "latency"; quality = the bound's primary metric) among the scored ones within
    budget that meet the other quality limits (KWS: FRR); of equal points the one kept meets
    the bound, has the better other metrics (STOI; FRR) and the board's default policy and L3."""
    primary = bound.primary
    scored = sorted((c for c in cands if c.within_budget and c.quality is not None
                     and bound.accepts(c.quality, ref, secondary_only=True)),
                    key=lambda c: (not c.accepted, bound.order(c.quality), c.policy != prefer[0], c.l3 != prefer[1]))
    for name, key in (("latency", COST[family][0]), ("energy", COST[family][1])):
        for i in pareto_indices([(c.cost[key], -c.quality[primary]) for c in scored]):
            scored[i].fronts.append(name)


def load_sources(model: str | os.PathLike | None, family: ModelFamily, also: Sequence[str] = ()) -> list[Source]:
    """The model searched and the ``--also`` checkpoints, checked (family, KWS classes; no TF)."""
    sources = [load_source(model, family)]
    for spec in also:
        sources.append(load_source(spec, family, role="also", taken=[s.label for s in sources]))
    if family is ModelFamily.KWS:
        from tfdenoise.kws.models import read_kws_config
        from tfdenoise.search_kws import check_labels

        check_labels(sources[1:], read_kws_config(sources[0].path)["labels"])
    return sources


def _exporter_for(family: ModelFamily, calib_data: str | None, cache: str):
    """(exporter of a source, digest of the data its int8 exports calibrate on, or None)."""
    from tfdenoise.search_space import denoiser_exporter

    if family is ModelFamily.DENOISER:  # calibrates on the bundled clips, which no option changes
        return (lambda s: denoiser_exporter(s.path)), None
    from tfdenoise.search_kws import calibration_digest, calibration_folder, kws_exporter

    return ((lambda s: kws_exporter(s.path, calib_data, cache)),
            lambda s: calibration_digest(calibration_folder(s.path, calib_data)))


def search(model: str | os.PathLike | None = None, *, family: ModelFamily | str | None = None,
           board: str = "gap9", out_dir: str | os.PathLike = "search", also: Sequence[str] = (),
           budgets: Budgets | None = None, bound: QualityBound | None = None, scorer: Scorer | None = None,
           calib_data: str | None = None, cache_dir: str | os.PathLike | None = None,
           groups: dict[str, tuple[str, ...]] = GROUPS, policies: Sequence[str] | None = None,
           only: Sequence[str] | None = None, score_all: bool = False) -> dict:
    """The whole search (module docstring); returns the result :func:`search_output.write_outputs`
    writes.  ``scorer`` defaults to :func:`default_scorer` (the bundled pairs; KWS: the model's data);
    ``only``: recipe names to keep (the reference recipe of the model searched always stays);
    ``cache_dir`` (default ``out_dir/cache``) holds the exports, the quality cache and decoded
    audio: none of them depends on the board, so searches on several boards can share it."""
    from tfdenoise.search_space import detect_family
    from tfdenoise.targets.boards import load_board

    t0 = time.perf_counter()
    fam = ModelFamily(family) if family else detect_family(model)
    budgets, bound = budgets or Budgets(), bound or QualityBound(fam)
    budgets.check()
    bound.check()
    b = load_board(board)
    out = Path(out_dir)
    cache = Path(cache_dir) if cache_dir is not None else out / "cache"
    sources = load_sources(model, fam, also)
    recipes = {s.label: [r for r in recipes_for(s, fam, groups) if only is None or r["name"] in only
                         or (s is sources[0] and r["name"] == REFERENCE[fam])] for s in sources}
    skipped = {f"{s.label}/{a}": f"{s.label}/{b}" for s in sources for a, b in skipped_recipes(s, fam).items()
               if only is None or a in only}
    jobs = [(s, r) for s in sources for r in recipes[s.label]]
    if not any(s is sources[0] and r["name"] == REFERENCE[fam] for s, r in jobs):
        raise InputError(f"the layer groups give no {REFERENCE[fam]!r} recipe (an 'rnn' group is needed)")
    scorer = scorer or default_scorer(fam, str(cache), data=calib_data, checkpoint=sources[0].path)
    files, repeats = export_files(jobs, cache, *_exporter_for(fam, calib_data, str(cache)))
    t1 = time.perf_counter()
    cands = price_files(files, b, policies)
    for c in cands:
        c.reasons = budgets.missed(c.cost, fam)
        c.within_budget = not c.reasons
    t2 = time.perf_counter()
    quality = _Quality(cands, scorer, QualityCache(cache / "quality_cache.json"), bound)
    ref_name = repeats.get(f"{sources[0].label}/{REFERENCE[fam]}", f"{sources[0].label}/{REFERENCE[fam]}")
    ref = next(c for c in cands if f"{c.model}/{c.recipe}" == ref_name)
    quality.score([ref.file])
    quality.ref = ref.quality
    for c in cands:
        c.accepted = None if c.quality is None else bound.accepts(c.quality, ref.quality)
    prefer = (b.default_policy or "layer-order", b.default_l3)
    chosen = choose(cands, quality, fam, prefer, score_all)
    mark_fronts(cands, fam, bound, ref.quality, prefer)
    t3 = time.perf_counter()
    return {"family": fam.value, "checkpoint": sources[0].path, "target": b.name,
            "sources": [asdict(s) for s in sources], "budgets": asdict(budgets), "bound": asdict(bound),
            "cost_keys": list(COST[fam]), "prefer": list(prefer), "quality_data": _describe(scorer),
            "reference": {"model": ref.model, "recipe": ref.recipe, "file": ref.file, "quality": ref.quality,
                          "limits": bound.limits(ref.quality)},
            "recipes": recipes, "repeats": repeats, "skipped": skipped,
            "scored_now": quality.cache.scored, "candidates": [asdict(c) for c in cands],
            "chosen": None if chosen is None else cands.index(chosen),
            "seconds": {"export": round(t1 - t0, 1), "price": round(t2 - t1, 1), "score": round(t3 - t2, 1),
                        "total": round(t3 - t0, 1)}}


def _describe(scorer: Scorer) -> str:
    return scorer.describe() if hasattr(scorer, "describe") else type(scorer).__name__


def default_scorer(family: ModelFamily, cache_dir: str, *, pairs: str | None = None, jobs: int | None = None,
                   data: str | None = None, noise: str | None = None, hours: float | None = None,
                   checkpoint: str | os.PathLike | None = None) -> Scorer:
    """The scorer of a search, its inputs checked: :class:`PairsScorer` on ``pairs`` with ``jobs``
    (denoiser); ``search_kws.kws_scorer`` on ``data`` (default: ``checkpoint``'s training data),
    ``noise`` and ``hours`` (KWS).  The options of the other family are ignored."""
    if family is ModelFamily.DENOISER:
        return PairsScorer(pairs, jobs)
    from tfdenoise.search_kws import kws_scorer

    return kws_scorer(data, noise, hours, cache_dir, checkpoint)
