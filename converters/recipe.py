"""Precision recipes as data: which deployment layer is stored in FP32, FP16 or INT8.

A recipe is a JSON file::

    {"name": "mixed",
     "description": "...",
     "layers": [{"pattern": "rnn_.*", "precision": "int8"},
                {"pattern": ".*", "precision": "fp16"}],
     "calibration": {"method": "max"}}

``calibration`` gives the INT8 activation-range statistic (``max`` or ``std3``) and, optionally,
``"ranges": "asymmetric"`` (never-negative tensors on ``[0, 2 r]``, :class:`RangeKind`; default
``symmetric``, the reference design's).  Rules are tried in order; the first whose regular
expression fully matches a layer name wins.  An int8 rule may add ``"weight_bits": B`` (1, 2, 4, 5 or 8): the layer's weights
must hold a B-bit QAT grid (docs/design.md §8; a checkpoint trained with ``--qat-bits``),
stored as packed INT4 for B <= 4 in fully connected and conv ops, else in INT8 containers::

    {"name": "qat_rnn8_fc4", "layers": [{"pattern": "rnn_.*", "precision": "int8", "weight_bits": 8},
                                        {"pattern": ".*", "precision": "int8", "weight_bits": 4}]}
  The deployment layers are ``fc_in`` (with ``bn_in``/``relu_in`` folded in),
``rnn_0``, ``rnn_1``, ``fc_mid`` (with ``bn_mid``/``relu_mid``) and ``fc_out``.
A pattern that matches none of them, or a layer matched by no rule, is a
:class:`~tfdenoise.errors.RecipeError`.  For a user's Keras model
(:mod:`tfdenoise.converters.keras_model`) the layers are its Keras layers with weights, and a
pattern matches a layer's name, its Keras type (``GRU``, ``Conv1D``, ``Dense``) or, for its
i-th recurrent layer, ``rnn_<i>``: so ``mixed`` (``rnn_.*`` INT8, the rest FP16) applies to
any model with LSTM or GRU layers.

An optional ``"family"`` says which exporter a recipe is for: ``"denoiser"`` (the default)
or ``"kws"`` (keyword-spotting networks, :mod:`tfdenoise.converters.kws`, which passes its own
layer names to :meth:`Recipe.resolve`: ``conv_0``, ``dw_<i>``, ``pw_<i>``, ``fc_<i>``,
``pool``, ``logits``, ``probs``).  :func:`builtin_names` lists one family's built-in recipes.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from tfdenoise.errors import RecipeError
from tfdenoise.vocab import DEPLOY_LAYERS, FOLDED, CalibMethod, Precision, RangeKind

RECIPES_DIR = Path(__file__).with_name("recipes")
#: Precisions a recipe rule may ask for (hybrid is what other converters produce, not ours).
RECIPE_PRECISIONS = (Precision.FP32, Precision.FP16, Precision.INT8)
#: Exporters a recipe can be written for (the optional ``"family"`` key).
RECIPE_FAMILIES = ("denoiser", "kws")


@dataclass(frozen=True)
class Rule:
    """``pattern`` (full-match regex over layer names) -> ``precision`` (and, for int8 rules,
    an optional ``weight_bits``: the QAT width the layer's weights must hold)."""

    pattern: str
    precision: Precision
    weight_bits: int | None = None


@dataclass(frozen=True)
class Recipe:
    """A named, ordered list of rules plus calibration defaults."""

    name: str
    rules: tuple[Rule, ...]
    calibration: CalibMethod = CalibMethod.MAX
    description: str = ""
    ranges: RangeKind = RangeKind.SYMMETRIC
    source: str = field(default="", compare=False)
    family: str = "denoiser"

    def resolve(self, layers: tuple[str, ...] = DEPLOY_LAYERS,
                aliases: dict[str, tuple[str, ...]] | None = None) -> dict[str, Precision]:
        """Precision of every layer in ``layers``; checks that every rule is used.

        ``aliases`` gives a layer more names a pattern may match (a user's Keras model: its
        layer type, ``GRU``, and ``rnn_<i>`` for its i-th recurrent layer)."""
        names = {n: (n, *(aliases or {}).get(n, ())) for n in layers}
        known = {a for n in names.values() for a in n} | {k for k, v in FOLDED.items() if v in layers}
        for rule in self.rules:
            if not any(re.fullmatch(rule.pattern, name) for name in known):
                raise RecipeError(f"recipe {self.name!r}: pattern {rule.pattern!r} matches no "
                                  f"layer (layers: {', '.join(layers)})", self.source or None)
        out: dict[str, Precision] = {}
        for name in layers:
            for rule in self.rules:
                if any(re.fullmatch(rule.pattern, a) for a in names[name]):
                    out[name] = rule.precision
                    break
            else:
                raise RecipeError(f"recipe {self.name!r} gives no precision for layer "
                                  f"{name!r}", self.source or None)
        return out

    def resolve_bits(self, layers: tuple[str, ...] = DEPLOY_LAYERS) -> dict[str, int | None]:
        """The ``weight_bits`` the first matching rule gives each layer (None: not stated)."""
        self.resolve(layers)
        return {name: next(r.weight_bits for r in self.rules if re.fullmatch(r.pattern, name))
                for name in layers}

    def check_bits(self, trained: dict[str, int], layers: tuple[str, ...] = DEPLOY_LAYERS,
                   weighted: set[str] | None = None) -> None:
        """A rule's ``weight_bits`` must be the width the layer was trained with (``trained``: a QAT
        checkpoint's per-layer widths; a layer missing from it holds float weights).  Layers not
        in ``weighted`` (default: all) have no weight matrix and are not checked."""
        for name, bits in self.resolve_bits(layers).items():
            if weighted is not None and name not in weighted:
                continue
            if bits is not None and trained.get(name) != bits:
                got = (f"trained with {trained[name]}-bit weights" if name in trained
                       else "not trained with --qat-bits")
                raise RecipeError(f"recipe {self.name!r} asks {bits}-bit weights for layer {name}, "
                                  f"which was {got} (tfdenoise train --qat-bits)", self.source or None)

    @property
    def needs_calibration(self) -> bool:
        return any(r.precision is Precision.INT8 for r in self.rules)

    def label(self, layers: tuple[str, ...] = DEPLOY_LAYERS) -> str:
        """One word for the whole file: fp32, fp16, int8 or mixed."""
        used = set(self.resolve(layers).values())
        return next(iter(used)).value if len(used) == 1 else "mixed"


def _family_of(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return "denoiser"
    return str(data.get("family", "denoiser")).lower() if isinstance(data, dict) else "denoiser"


def builtin_names(family: str | None = "denoiser") -> list[str]:
    """Names of the built-in recipes of ``family`` (``None``: every family)."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.json")
                  if family is None or _family_of(p) == family)


def parse(data: dict, source: str = "") -> Recipe:
    """Build a :class:`Recipe` from its JSON object, validating every field."""
    where = source or None
    if not isinstance(data, dict):
        raise RecipeError("recipe must be a JSON object", where)
    rules_in = data.get("layers")
    if not isinstance(rules_in, list) or not rules_in:
        raise RecipeError("recipe needs a non-empty 'layers' list of "
                          "{pattern, precision} rules", where)
    rules = []
    for i, r in enumerate(rules_in):
        if not isinstance(r, dict) or "pattern" not in r or "precision" not in r:
            raise RecipeError(f"layers[{i}] must have 'pattern' and 'precision'", where)
        try:
            re.compile(str(r["pattern"]))
        except re.error as exc:
            raise RecipeError(f"layers[{i}]: bad regular expression {r['pattern']!r} ({exc})",
                              where) from None
        try:
            prec = Precision(str(r["precision"]).lower())
            if prec not in RECIPE_PRECISIONS:
                raise ValueError(prec)
        except ValueError:
            raise RecipeError(f"layers[{i}]: precision {r['precision']!r} is not one of "
                              "fp32, fp16, int8", where) from None
        rules.append(Rule(str(r["pattern"]), prec, _weight_bits(r, i, prec, where)))
    cal = data.get("calibration", {}) or {}
    try:
        method = CalibMethod(str(cal.get("method", "max")).lower())
    except ValueError:
        raise RecipeError(f"calibration method {cal.get('method')!r} is not max or std3",
                          where) from None
    try:
        ranges = RangeKind(str(cal.get("ranges", "symmetric")).lower())
    except ValueError:
        raise RecipeError(f"calibration ranges {cal.get('ranges')!r} is not "
                          f"{' or '.join(k.value for k in RangeKind)}", where) from None
    family = str(data.get("family", "denoiser")).lower()
    if family not in RECIPE_FAMILIES:
        raise RecipeError(f"family {data.get('family')!r} is not one of "
                          f"{', '.join(RECIPE_FAMILIES)}", where)
    return Recipe(name=str(data.get("name", Path(source).stem if source else "custom")),
                  rules=tuple(rules), calibration=method, ranges=ranges,
                  description=str(data.get("description", "")), source=source, family=family)


def _weight_bits(rule: dict, i: int, prec: Precision, where: str | None) -> int | None:
    """A rule's optional ``weight_bits`` (1, 2, 4, 5 or 8; int8 rules only)."""
    if rule.get("weight_bits") is None:
        return None
    from tfdenoise.errors import InputError
    from tfdenoise.qat import check_bits

    try:
        bits = check_bits(rule["weight_bits"], f"layers[{i}]: weight_bits")
    except InputError as exc:
        raise RecipeError(str(exc), where) from None
    if prec is not Precision.INT8:
        raise RecipeError(f"layers[{i}]: weight_bits is for int8 layers (got {prec.value})", where)
    return bits


def load(name_or_path: str | os.PathLike) -> Recipe:
    """A built-in recipe by name (``mixed``) or a recipe JSON file by path."""
    text = str(name_or_path)
    path = Path(text)
    if not path.suffix and (RECIPES_DIR / f"{text.lower()}.json").is_file():
        path = RECIPES_DIR / f"{text.lower()}.json"
    if not path.is_file():
        raise RecipeError(f"no such recipe (built-in: {', '.join(builtin_names())})", text)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as exc:
        raise RecipeError(f"cannot read recipe JSON ({exc})", path) from None
    return parse(data, str(path))
