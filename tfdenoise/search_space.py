"""The space `tfdenoise search` walks (issue 20): checkpoints, recipes, exported files, and every
file priced by the cost model under each promotion policy x L3 memory x operating point.

Sources: the model searched and each ``--also`` checkpoint (:func:`load_source`).  A QAT
checkpoint (``"qat"`` in its config.json) exports with the weight widths it trained
(:func:`qat_recipes`); a pruned one (``"prune"``) exports with every recipe of its family: its
shapes are the pruned ones (structured pruning), its zeros are read back from the file by
``targets.sparsity`` and reported per candidate (unstructured zeros cost the same on these boards'
dense kernels, docs/pruning.md).

Recipes (converters/recipe.py JSON, written next to each file):

* denoiser: every fp16 / int8 choice per layer group (``GROUPS``): 2^4 = 16 recipes, the 15
  with an int8 group twice: calibrated as the reference design (``max``, symmetric) and with
  ``std3`` and asymmetric ranges (``@asym``, docs/design.md §4): 31 recipes;
* keyword spotting: what converters/kws_convert.py produces: fp32, full int8, int8 with an fp32
  softmax, each int8 form with the three weight granularities of its ``"per_channel"`` (conv
  layers per channel, every layer per channel, per tensor): 7 recipes.  A network without conv
  layers (the DNN) skips the two per-tensor ones (:func:`skipped_recipes`): its default
  granularity (conv layers per channel, dense per tensor) is per tensor everywhere, and the
  files differ only in the metadata string naming the granularity, so 5 recipes;
* QAT checkpoint: full int8 holding each layer's trained width (denoiser 1 recipe; KWS 2: int8
  or fp32 softmax).

Files: each (source, recipe) is exported once into ``cache/`` under a key that hashes the recipe,
the checkpoint's files and, for an export that calibrates on ``--data`` (KWS int8), the
calibration clips (their folder resolved and the names and sizes of its files,
``search_kws.calibration_digest``) (:func:`export_files`); files with identical bytes are kept
once.

Cost: a :class:`Candidate` is (file, policy, L3, operating point) priced by
``targets.analyze_graph`` (no TensorFlow; ``tfdenoise.targets.memory.POLICIES`` lists the
policies, so a new policy joins the search without a change here).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

from tfdenoise.errors import InputError
from tfdenoise.fileio import write_json
from tfdenoise.vocab import ModelFamily

#: Layer groups a denoiser search gives one precision each (deployment layers, docs/design.md §4).
GROUPS: dict[str, tuple[str, ...]] = {"fc_in": ("fc_in",), "rnn": ("rnn_0", "rnn_1"),
                                      "fc_mid": ("fc_mid",), "fc_out": ("fc_out",)}
CHOICES: tuple[str, ...] = ("fp16", "int8")
#: Name suffix of a denoiser recipe calibrated with std3 and asymmetric ranges (recipe int8_asym's).
ASYM_SUFFIX = "@asym"
#: The recipe every other one is compared with: mixed FP16-INT8 (denoiser), the float model (KWS).
REFERENCE = {ModelFamily.DENOISER: "mixed", ModelFamily.KWS: "fp32"}
#: KWS int8 weight granularities: name suffix -> the recipe's "per_channel" (kws_convert.PER_CHANNEL).
KWS_GRANULARITY: dict[str, bool | str] = {"": "conv", "/per-channel": True, "/per-tensor": False}
#: KWS granularities (name suffix) that make the default's file (suffix "": conv layers per channel,
#: dense per tensor) in a network without conv layers, but for the metadata naming the granularity.
SAME_WITHOUT_CONV: dict[str, str] = {"/per-tensor": ""}
#: Cost fields of targets.report.to_json copied onto each candidate.
COST_KEYS = ("latency_ms", "decision_ms", "energy_uj", "decision_energy_uj", "power_mw", "rho_l3",
             "l2_bytes_used", "l2_budget", "param_bytes", "param_bytes_at_bit_width", "mac_per_cycle",
             "feature_ms", "fits", "realtime_ok")


@dataclass(frozen=True)
class Source:
    """One checkpoint the search exports: the model searched (``kind`` model) or an ``--also``
    one (qat, pruned or checkpoint)."""

    label: str
    path: str
    kind: str
    qat_bits: dict[str, int] | None = None
    prune: dict | None = None


@dataclass(frozen=True)
class ModelFile:
    """One exported file: a source under a recipe."""

    source: str
    recipe: dict
    path: str
    sha256: str


@dataclass
class Candidate:
    """One configuration: a file priced at (policy, l3, vdd, freq_mhz).  ``reasons``: the budgets
    it misses (empty: within budget); ``quality``: its file's scores once measured."""

    model: str
    recipe: str
    file: str
    policy: str
    l3: str
    vdd: float
    freq_mhz: float
    cost: dict
    sparsity: float = 0.0
    precisions: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    within_budget: bool = False
    cost_pareto: bool = False
    quality: dict | None = None
    accepted: bool | None = None
    fronts: list[str] = field(default_factory=list)
    sha256: str = field(default="", repr=False)


# -- sources -----------------------------------------------------------------------------------

def _family_of(config: dict) -> ModelFamily:
    return ModelFamily.KWS if config.get("family") == ModelFamily.KWS else ModelFamily.DENOISER


def detect_family(spec: str | os.PathLike | None) -> ModelFamily:
    """The family of the checkpoint ``spec`` names (no spec: the denoiser)."""
    if spec is None:
        return ModelFamily.DENOISER
    from tfdenoise.modelref import resolve

    return resolve(_best(spec)).family


def _best(spec: str | os.PathLike | None):
    """A run folder's ``best/`` checkpoint, else ``spec`` unchanged."""
    if spec is not None and (Path(spec) / "best" / "config.json").is_file():
        return Path(spec) / "best"
    return spec


def _label(path: Path, taken: Iterable[str]) -> str:
    """A short unique name: the run folder's for ``best/`` / ``last/``, else the folder's."""
    name = path.parent.name + ("" if path.name == "best" else "/last") if path.name in ("best", "last") \
        else path.name
    taken = set(taken)
    label, i = name, 2
    while label in taken:
        label, i = f"{name}#{i}", i + 1
    return label


def load_source(spec: str | os.PathLike | None, family: ModelFamily, role: str = "model",
                taken: Iterable[str] = ()) -> Source:
    """The checkpoint ``spec`` names (None: the family's shipped default; a run folder: its
    ``best/``) as a :class:`Source`; one-line errors for a .tflite or a checkpoint of the other
    family."""
    from tfdenoise.modelref import require_checkpoint, resolve
    from tfdenoise.models import read_config

    ref = require_checkpoint(resolve(_best(spec), family), "tfdenoise search")
    config = read_config(ref.path)
    got = _family_of(config if isinstance(config, dict) else {})
    if got is not family:
        raise InputError(f"is a {got.value} checkpoint; this search is over {family.value} models "
                         "(--family)", ref.path)
    qat = config.get("qat") if isinstance(config.get("qat"), dict) else {}
    bits = {str(k): int(v) for k, v in (qat.get("bits") or {}).items()} or None
    prune = config.get("prune") if isinstance(config.get("prune"), dict) else None
    kind = role if role == "model" else ("qat" if bits else ("pruned" if prune else "checkpoint"))
    summary = None if prune is None else {"method": prune.get("method"), "target": prune.get("target")}
    return Source(_label(ref.path, taken), str(ref.path), kind, bits, summary)


# -- recipes -----------------------------------------------------------------------------------

def _recipe_name(prec: dict[str, str], groups: dict[str, tuple[str, ...]]) -> str:
    used = set(prec.values())
    if len(used) == 1:
        return next(iter(used))
    if "rnn" in groups and prec == {g: ("int8" if g == "rnn" else "fp16") for g in groups}:
        return REFERENCE[ModelFamily.DENOISER]
    return "+".join(f"{g}-{p}" for g, p in prec.items())


def enumerate_recipes(groups: dict[str, tuple[str, ...]] = GROUPS,
                      choices: Sequence[str] = CHOICES) -> list[dict]:
    """Every per-group precision choice of a denoiser as recipe JSON, all fp16 first: each at
    the reference calibration (``max``, symmetric ranges) and, when it has an int8 group, also
    with ``std3`` and asymmetric ranges (name suffix :data:`ASYM_SUFFIX`, docs/design.md §4):
    ``2 len(choices) ** len(groups) - 1`` recipes."""
    out = []
    for combo in itertools.product(choices, repeat=len(groups)):
        prec = dict(zip(groups, combo))
        recipe = {"name": _recipe_name(prec, groups),
                  "description": "tfdenoise search: " + ", ".join(f"{g} {p}" for g, p in prec.items()),
                  "layers": [{"pattern": "|".join(groups[g]), "precision": p} for g, p in prec.items()],
                  "calibration": {"method": "max"}, "search_groups": prec}
        out.append(recipe)
        if "int8" in combo:
            out.append({**recipe, "name": recipe["name"] + ASYM_SUFFIX,
                        "description": recipe["description"] + "; std3, asymmetric ranges",
                        "calibration": {"method": "std3", "ranges": "asymmetric"}})
    return out


def _kws(name: str, layers: list[dict], groups: dict, per_channel: bool | str = "conv") -> dict:
    return {"name": name, "family": "kws", "description": f"tfdenoise search: KWS {name}",
            "layers": layers, "calibration": {"method": "max"}, "per_channel": per_channel,
            "search_groups": groups}


def kws_recipes(conv_layers: bool = True) -> list[dict]:
    """The KWS recipes the converter can make: fp32, and int8 (int8 or fp32 softmax) at each
    weight granularity; fp32 first (the reference).  ``conv_layers=False`` (a network without
    conv or depthwise layers): no per-tensor recipes (:data:`SAME_WITHOUT_CONV`)."""
    out = [_kws("fp32", [{"pattern": ".*", "precision": "fp32"}], {"network": "fp32", "softmax": "fp32"})]
    for softmax in ("int8", "fp32"):
        head = [{"pattern": "probs", "precision": "fp32"}] if softmax == "fp32" else []
        for suffix, granularity in KWS_GRANULARITY.items():
            if not conv_layers and suffix in SAME_WITHOUT_CONV:
                continue
            name = "int8" + suffix + ("+fp32-softmax" if softmax == "fp32" else "")
            out.append(_kws(name, head + [{"pattern": ".*", "precision": "int8"}],
                            {"network": "int8", "softmax": softmax, "weights": suffix.strip("/") or "per-channel conv"},
                            granularity))
    return out


def qat_recipes(family: ModelFamily, bits: dict[str, int]) -> list[dict]:
    """Full int8 holding each layer's trained weight width (recipe ``"weight_bits"``); KWS also
    with the fp32 softmax that keeps its detection threshold (docs/qat.md)."""
    tag = "qat" + "/".join(str(b) for b in sorted(set(bits.values())))
    rules = [{"pattern": layer, "precision": "int8", "weight_bits": b} for layer, b in bits.items()]
    groups = {layer: f"int8 w{b}" for layer, b in bits.items()}
    if family is ModelFamily.DENOISER:
        return [{"name": tag, "description": f"tfdenoise search: QAT weights {bits}", "layers": rules,
                 "calibration": {"method": "max"}, "search_groups": groups}]
    rest = [{"pattern": ".*", "precision": "int8"}]
    return [_kws(tag, rules + rest, {**groups, "softmax": "int8"}),
            _kws(tag + "+fp32-softmax", [{"pattern": "probs", "precision": "fp32"}] + rules + rest,
                 {**groups, "softmax": "fp32"})]


def kws_conv_layers(checkpoint: str | os.PathLike) -> bool:
    """Whether the KWS checkpoint's network has conv or depthwise layers (its layer table; no TF)."""
    from tfdenoise.kws.layertable import Op, get_spec
    from tfdenoise.kws.models import read_kws_config

    config = read_kws_config(checkpoint)
    return any(layer.op in (Op.CONV, Op.DEPTHWISE) for layer in get_spec(config["name"]).layers(config["n_classes"]))


def skipped_recipes(source: Source, family: ModelFamily) -> dict[str, str]:
    """``{recipe not exported: the recipe whose file it would repeat}`` for ``source``: the
    per-tensor KWS recipes of a network without conv layers (:data:`SAME_WITHOUT_CONV`)."""
    only_qat = source.qat_bits is not None and source.kind != "model"  # no granularity recipes
    if family is not ModelFamily.KWS or only_qat or kws_conv_layers(source.path):
        return {}
    names = [r["name"] for r in kws_recipes()]
    return {n: n.replace(suffix, same, 1) for n in names for suffix, same in SAME_WITHOUT_CONV.items()
            if suffix in n}


def recipes_for(source: Source, family: ModelFamily,
                groups: dict[str, tuple[str, ...]] = GROUPS) -> list[dict]:
    """The model searched: every recipe of its family (and its QAT ones); an ``--also`` QAT
    checkpoint: its QAT recipes; any other: every recipe of the family (KWS without conv
    layers: less the per-tensor ones, :func:`skipped_recipes`)."""
    base = enumerate_recipes(groups) if family is ModelFamily.DENOISER else \
        kws_recipes(conv_layers=not skipped_recipes(source, family))
    if source.qat_bits is None:
        return base
    qat = qat_recipes(family, source.qat_bits)
    return base + qat if source.kind == "model" else qat


# -- files -------------------------------------------------------------------------------------

def fingerprint(paths: Iterable[Path]) -> str:
    """sha256 over the names and bytes of files (a checkpoint folder's, a pairs folder's)."""
    h = hashlib.sha256()
    for p in sorted(paths):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def file_sha256(path: str | os.PathLike) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def calibrates(recipe: dict) -> bool:
    """Whether exporting ``recipe`` calibrates on data (an int8 rule)."""
    return any(rule.get("precision") == "int8" for rule in recipe.get("layers", ()))


def recipe_key(recipe: dict, model_digest: str, calib_digest: str = "") -> str:
    """Cache key of one export: the recipe's rules and options, the checkpoint's digest and
    ``calib_digest`` (the calibration data's; empty: the export reads none)."""
    fields = {k: recipe.get(k) for k in ("layers", "calibration", "family", "per_channel")}
    text = json.dumps(fields, sort_keys=True) + model_digest + (f"|calib:{calib_digest}" if calib_digest else "")
    return hashlib.sha256(text.encode()).hexdigest()[:16]


Exporter = Callable[[Path, Path], None]


def denoiser_exporter(checkpoint: str | os.PathLike) -> Exporter:
    """Export (recipe JSON path, out .tflite) for a denoiser checkpoint, loaded once."""
    from tfdenoise.converters import export
    from tfdenoise.models import load_checkpoint

    model = load_checkpoint(checkpoint)
    return lambda recipe, out: export(model, out=out, recipe=recipe, check=False)


def export_files(jobs: Sequence[tuple[Source, dict]], cache_dir: str | os.PathLike,
                 exporter_for: Callable[[Source], Exporter],
                 calib_digest: Callable[[Source], str] | None = None) -> tuple[list[ModelFile], dict[str, str]]:
    """Each (source, recipe) exported once into ``cache_dir`` (reused when there), with a
    progress bar; files whose bytes repeat an earlier file's are dropped.  ``calib_digest``:
    the digest of the data a source's int8 exports calibrate on (part of their cache key; None:
    the exports calibrate on nothing the search is given).  Returns the files and
    ``{"source/recipe": "source/recipe it repeats"}``."""
    from tqdm import tqdm

    unique = {s.label: s for s, _ in jobs}.values()
    digests = {s.label: fingerprint(p for p in Path(s.path).rglob("*") if p.is_file()) for s in unique}
    calib = {s.label: calib_digest(s) if calib_digest is not None else "" for s in unique}
    planned = []
    for s, r in jobs:
        stem = f"{s.label}.{r['name']}".replace("/", "_").replace("#", "_")
        key = recipe_key(r, digests[s.label], calib[s.label] if calibrates(r) else "")
        planned.append((s, r, Path(cache_dir) / f"{stem}.{key}.tflite"))
    todo = [(s, r, p) for s, r, p in planned if not p.is_file()]
    exporters: dict[str, Exporter] = {}
    for s, r, path in tqdm(todo, desc="export", unit="file", file=sys.stderr, disable=None):
        if s.label not in exporters:
            exporters = {s.label: exporter_for(s)}  # one model in memory at a time
        exporters[s.label](write_json(path.with_suffix(".recipe.json"), r), path)
    files, seen, repeats = [], {}, {}
    for s, r, path in planned:
        sha = file_sha256(path)
        name = f"{s.label}/{r['name']}"
        if sha in seen:
            repeats[name] = seen[sha]
            continue
        seen[sha] = name
        files.append(ModelFile(s.label, r, str(path), sha))
    return files, repeats


# -- cost --------------------------------------------------------------------------------------

def zero_share(graph, layers) -> float:
    """Share of zero weights over every weight tensor of the file (targets.sparsity)."""
    from tfdenoise.targets.sparsity import model_sparsity

    stats = model_sparsity(graph, tuple(layers)).values()
    elements = sum(s.elements for s in stats)
    return sum(s.zeros for s in stats) / elements if elements else 0.0


def price_files(files: Sequence[ModelFile], board, policies: Sequence[str] | None = None) -> list[Candidate]:
    """Every (file, policy, L3, operating point), priced by targets (no TensorFlow)."""
    from tqdm import tqdm

    from tfdenoise.targets.memory import POLICIES
    from tfdenoise.targets.pipeline import analyze_graph
    from tfdenoise.targets.reader import read_tflite
    from tfdenoise.targets.report import to_json

    out = []
    for f in tqdm(files, desc="price", unit="file", file=sys.stderr, disable=None):
        graph = read_tflite(f.path)
        sparsity = None
        for policy, l3, op in itertools.product(policies or tuple(POLICIES), board.l3, board.operating_points):
            rep = analyze_graph(graph, board, op.vdd, l3, policy, freq_mhz=op.freq_mhz)
            sparsity = zero_share(graph, rep.layers) if sparsity is None else sparsity
            j = to_json(rep)
            out.append(Candidate(f.source, f.recipe["name"], f.path, policy, l3, op.vdd, op.freq_mhz,
                                 {k: j[k] for k in COST_KEYS}, round(sparsity, 4),
                                 dict(f.recipe.get("search_groups", {})), sha256=f.sha256))
    return out
