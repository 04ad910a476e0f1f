"""Score a model on noisy/clean pairs (PESQ-WB, STOI), side by side with the noisy input.

``model`` is a spec: a checkpoint folder, a ``MODEL.tflite``, ``None`` (the shipped default
checkpoint) or ``"noisy"`` (no processing: scores the noisy input itself).  Files are scored
in parallel by a process pool whose workers load the model once each.  Enhancement takes the
fast path of :func:`tfdenoise.enhance.enhance_signal` (a checkpoint's compiled sequence model,
a ``.tflite`` file's LiteRT frame loop); ``streaming=True`` the hop-by-hop reference.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numpy as np

from tfdenoise.data import Pair, list_pairs, load_pair
from tfdenoise.enhance import enhance_signal, load_streaming_model, map_with_model, warn_if_random
from tfdenoise.modelref import ModelRef, resolve
from tfdenoise.metrics import score

#: The model spec that means "leave the noisy input as it is".
NOISY = "noisy"
METRICS = ("pesq", "stoi")


def _load(spec: str | None, backend: str = "litert") -> Any:
    return None if spec == NOISY else load_streaming_model(spec, backend=backend)


def _score_pair(model: Any, pair: Pair, streaming: bool = False) -> dict[str, Any]:
    noisy, clean = load_pair(pair)
    base = score(clean, noisy, name=str(pair.noisy))
    if model is None:
        out = base
    else:
        out = score(clean, enhance_signal(noisy, model, streaming=streaming), name=str(pair.noisy))
    return {"name": pair.name, "pesq": out["pesq"], "stoi": out["stoi"],
            "noisy_pesq": base["pesq"], "noisy_stoi": base["stoi"]}


def evaluate_pairs(pairs_dir: str | os.PathLike, model: "str | os.PathLike | ModelRef | None" = None,
                   jobs: int | None = None, backend: str = "litert",
                   streaming: bool = False) -> dict[str, Any]:
    """Mean and per-file PESQ/STOI of ``model`` and of the noisy input on ``pairs_dir``.

    ``backend`` is the interpreter for a ``.tflite`` model (``litert`` or ``tflite-runtime``);
    ``streaming`` scores the hop-by-hop reference path instead of the fast one.

    Returns ``{"model": str, "pairs": str, "mean": {"pesq", "stoi"},
    "noisy_mean": {"pesq", "stoi"}, "files": [{"name", "pesq", "stoi", "noisy_pesq",
    "noisy_stoi"}, ...]}``.
    """
    pairs = list_pairs(pairs_dir)
    if str(model) == NOISY:
        spec = NOISY
    else:
        ref = resolve(model)
        warn_if_random(ref)
        spec = str(ref.path)
    loader = functools.partial(_load, backend=backend)
    fn = functools.partial(_score_pair, streaming=streaming)
    files = map_with_model(fn, pairs, spec, loader=loader, jobs=jobs, desc="evaluate")
    return {
        "model": spec,
        "pairs": str(Path(pairs_dir)),
        "mean": {m: float(np.mean([f[m] for f in files])) for m in METRICS},
        "noisy_mean": {m: float(np.mean([f[f"noisy_{m}"] for f in files])) for m in METRICS},
        "files": files,
    }


def format_table(result: dict[str, Any]) -> str:
    """A text table: one row per file and the mean, model columns next to the noisy input."""
    label = "noisy" if result["model"] == NOISY else "model"
    names = [f["name"] for f in result["files"]] + ["mean"]
    width = max(12, *(len(n) for n in names))
    lines = [f"pairs: {result['pairs']}", f"model: {result['model']}",
             f"{'file':<{width}}  {'PESQ':>6} {'STOI':>6}  {'noisy PESQ':>10} {'noisy STOI':>10}"
             f"  {'dPESQ':>6} {'dSTOI':>6}"]
    rows = [(f["name"], f["pesq"], f["stoi"], f["noisy_pesq"], f["noisy_stoi"])
            for f in result["files"]]
    m, n = result["mean"], result["noisy_mean"]
    rule = "-" * len(lines[-1])
    lines.append(rule)
    for i, (name, p, s, np_, ns) in enumerate(rows + [("mean", m["pesq"], m["stoi"],
                                                         n["pesq"], n["stoi"])]):
        if i == len(rows):
            lines.append(rule)
        lines.append(f"{name:<{width}}  {p:>6.2f} {s:>6.3f}  {np_:>10.2f} {ns:>10.3f}"
                     f"  {p - np_:>+6.2f} {s - ns:>+6.3f}")
    lines.append(f"(PESQ/STOI: {label} output, PESQ-WB and STOI; noisy: the unprocessed input; "
                 f"d: difference)")
    return "\n".join(lines)
