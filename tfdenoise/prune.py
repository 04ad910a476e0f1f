"""Pruning with tensorflow-model-optimization (docs/design.md §9): masks, fine-tuning, strip.

Methods (:class:`~tfdenoise.vocab.PruneMethod`), for denoisers and keyword spotters alike:

* ``unstructured``: tfmot ``prune_low_magnitude``, the smallest-magnitude ``sparsity`` share
  of every weight tensor (dense and conv kernels, LSTM / GRU ``kernel`` *and*
  ``recurrent_kernel``) set to zero;
* ``2:4``: ``sparsity_m_by_n=(2, 4)``: in every 4 consecutive weights along the input axis
  (tfmot's rearranged layout: a dense kernel ``[in, out]`` is read as ``[out, in]``, a conv
  kernel ``[kh, kw, cin, cout]`` as ``[cout * kh * kw, cin]``) at most 2 are nonzero; a last
  group shorter than 4 (257 inputs) keeps its largest 2;
* ``block``: ``block_size=(R, C)``: whole ``R x C`` blocks of a rank-2 kernel ``[in, out]``
  (R inputs x C outputs; in the ``.tflite`` layout ``[out, in]`` that is C rows x R columns)
  ranked by their mean magnitude; conv kernels (rank 4) cannot be block-pruned by tfmot and
  stay dense (the checkpoint's record says which tensors were pruned);
* ``structured``: whole units / filters removed and the layers rebuilt smaller
  (:mod:`tfdenoise.prune_structured`).

Schedules (:class:`~tfdenoise.vocab.PruneSchedule`; :func:`tfdenoise.prune_masks.pruning_params`): ``constant``
(the target from the first step, masks recomputed once per epoch) or ``polynomial`` (tfmot
``PolynomialDecay``, exponent 3: 0 -> target over the first half of the fine-tuning steps in
:data:`~tfdenoise.prune_masks.RAMP_UPDATES` mask updates, then held; an epoch can become ``best/`` only once the
target is reached).  ``2:4`` masks are computed once, at the first step (tfmot).

The masks (tfmot wrapping, the schedules' steps, stripping): :mod:`tfdenoise.prune_masks`.
Front door: :func:`prune_denoiser`, :func:`prune_kws`.
"""
from __future__ import annotations

import json
import math
import numbers
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfdenoise.errors import InputError, OutputError
from tfdenoise.vocab import ModelFamily, PruneMethod, PruneSchedule

#: The m:n pattern of :attr:`PruneMethod.M_BY_N`: m zeros in every n weights.
M_BY_N = (2, 4)


def parse_block(text: str) -> tuple[int, int]:
    """``"4x1"`` -> ``(4, 1)``: a block of R inputs x C outputs (one-line error otherwise)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", str(text))
    if not m or int(m[1]) < 1 or int(m[2]) < 1 or int(m[1]) * int(m[2]) < 2:
        raise InputError(f"--block must be RxC with R, C >= 1 and R x C >= 2 (e.g. 4x1, 1x4, 2x2), got {text!r}")
    return int(m[1]), int(m[2])


@dataclass(frozen=True)
class PruneSpec:
    """What to prune and how; constructing one checks it (one-line :class:`InputError` naming
    the CLI option)."""

    method: PruneMethod
    sparsity: float
    block: tuple[int, int] | None = None
    schedule: PruneSchedule | None = None  # None: the method's default (:attr:`schedule_used`)

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "method", PruneMethod(self.method))
        except ValueError:
            raise InputError(f"--method must be one of {', '.join(m.value for m in PruneMethod)}, "
                             f"got {self.method!r}") from None
        s = self.sparsity
        if isinstance(s, bool) or not isinstance(s, numbers.Real) or not math.isfinite(s) or not 0 < s < 1:
            raise InputError(f"--sparsity must be a share in (0, 1) (0.5: half the weights), got {s}")
        object.__setattr__(self, "sparsity", float(s))
        if self.method is PruneMethod.M_BY_N and self.sparsity != M_BY_N[0] / M_BY_N[1]:
            raise InputError(f"--method 2:4 zeroes 2 of every 4 weights: --sparsity must be 0.5, got {s:g}")
        if self.method is PruneMethod.BLOCK:
            if self.block is None:
                raise InputError("--method block needs --block RxC (e.g. 4x1)")
            object.__setattr__(self, "block", parse_block("x".join(map(str, self.block))))
        elif self.block is not None:
            raise InputError(f"--block is for --method block, not {self.method}")
        if self.schedule is not None:
            try:
                object.__setattr__(self, "schedule", PruneSchedule(self.schedule))
            except ValueError:
                raise InputError(f"--schedule must be one of {', '.join(m.value for m in PruneSchedule)}, "
                                 f"got {self.schedule!r}") from None
            if self.method in (PruneMethod.STRUCTURED, PruneMethod.M_BY_N) and self.schedule is PruneSchedule.POLYNOMIAL:
                raise InputError(f"--method {self.method} takes its sparsity at once: --schedule polynomial "
                                 "is for unstructured and block pruning")

    @property
    def schedule_used(self) -> PruneSchedule:
        """The schedule: as given, else polynomial for unstructured / block, constant otherwise."""
        if self.schedule is not None:
            return self.schedule
        gradual = self.method in (PruneMethod.UNSTRUCTURED, PruneMethod.BLOCK)
        return PruneSchedule.POLYNOMIAL if gradual else PruneSchedule.CONSTANT

    def to_json(self) -> dict:
        return {"method": self.method.value, "target": self.sparsity,
                "block": list(self.block) if self.block else None,
                "schedule": None if self.method is PruneMethod.STRUCTURED else self.schedule_used.value}


# -- pattern checks ---------------------------------------------------------------------------

def m_by_n_violations(kernel: np.ndarray, m: int = 2, n: int = 4) -> int:
    """Groups of ``n`` consecutive weights along the input axis (tfmot's layout, module
    docstring) holding more than ``n - m`` nonzeros."""
    w = np.asarray(kernel)
    rows = w.T if w.ndim == 2 else np.transpose(w, (3, 0, 1, 2)).reshape(-1, w.shape[2])
    pad = (-rows.shape[1]) % n
    groups = np.pad(rows != 0, ((0, 0), (0, pad))).reshape(rows.shape[0], -1, n)
    return int(np.count_nonzero(groups.sum(-1) > n - m))


def zero_blocks(kernel: np.ndarray, block: tuple[int, int]) -> tuple[int, int, int]:
    """``(all-zero blocks, partly zero blocks, blocks)`` of a rank-2 ``kernel [in, out]`` cut
    into ``block`` = (inputs, outputs) tiles (edge tiles cut short): a block mask leaves no
    tile partly zero unless a kept tile holds an exact zero."""
    w = np.asarray(kernel)
    r, c = block
    pad = ((0, (-w.shape[0]) % r), (0, (-w.shape[1]) % c))
    tiles = (w.shape[0] + pad[0][1]) // r, (w.shape[1] + pad[1][1]) // c

    def per_tile(x: np.ndarray) -> np.ndarray:
        return np.pad(x, pad).reshape(tiles[0], r, tiles[1], c).sum(axis=(1, 3))

    nonzero, size = per_tile((w != 0).astype(np.int64)), per_tile(np.ones(w.shape, np.int64))
    return (int(np.count_nonzero(nonzero == 0)), int(np.count_nonzero((nonzero > 0) & (nonzero < size))),
            int(nonzero.size))


def check_resume(out: str | os.PathLike, spec: PruneSpec, source: str) -> None:
    """One-line error unless ``out/last`` holds a pruning run of ``spec`` from ``source``."""
    from tfdenoise.models import CONFIG_FILE

    cfg = Path(out) / "last" / CONFIG_FILE
    try:
        saved = json.loads(cfg.read_text()).get("prune")
    except (OSError, ValueError):
        saved = None
    if not isinstance(saved, dict):
        raise InputError("holds no pruning run to resume (no \"prune\" record in last/config.json)", out)
    want = spec.to_json()
    same_source = Path(str(saved.get("source"))).resolve() == Path(source).resolve()
    if {k: saved.get(k) for k in want} != want or not same_source:
        raise InputError(f"run {out} pruned {saved.get('source')} with --method {saved.get('method')} "
                         f"--sparsity {saved.get('target')}; this command ({source}, --method {spec.method} "
                         f"--sparsity {spec.sparsity:g}, same --block/--schedule) cannot resume it")



# -- the front door -----------------------------------------------------------------------------

def _open(source, out: str | os.PathLike, spec: PruneSpec, resume: bool, family: ModelFamily):
    """The checkpoint ``source`` names (of ``family``), checked against ``out`` and ``resume``."""
    from tfdenoise.fileio import check_outputs
    from tfdenoise.modelref import require_checkpoint, resolve

    ref = require_checkpoint(resolve(source, family), "pruning")
    if ref.family is not family:
        raise InputError(f"is a {ref.family} checkpoint, not a {family}", ref.path)
    src, dest = ref.path.resolve(), Path(out).resolve()
    if dest == src or dest in src.parents:
        raise OutputError(f"the run folder holds the model being pruned ({ref.path}); choose another", out)
    check_outputs(folders=[out], input_trees=[ref.path])
    if resume:
        check_resume(out, spec, str(ref.path))
    return ref


def prune_denoiser(source, spec: PruneSpec, config, resume: bool = False, verbose: int = 1) -> Path:
    """Prune the denoiser ``source`` (a :func:`tfdenoise.modelref.resolve` spec) by ``spec``
    and fine-tune it with :func:`tfdenoise.train.train` under ``config`` (a
    :class:`~tfdenoise.train_config.TrainConfig` whose ``variant`` is the source's and ``out``
    the run folder); returns ``OUT/best``.  Resumable (``resume``) like training."""
    from tfdenoise.models import get_variant, load_checkpoint
    from tfdenoise.prune_masks import MaskedFineTune, layer_weights
    from tfdenoise.prune_structured import StructuredFineTune, shrink_denoiser
    from tfdenoise.train import train

    config.check()
    ref = _open(source, config.out, spec, resume, ModelFamily.DENOISER)
    model = load_checkpoint(ref.path)
    variant = model.variant
    if get_variant(config.variant).name != variant.name:
        raise InputError(f"is a {variant.name.upper()}; the training config names {config.variant}", ref.path)
    record = {**spec.to_json(), "source": str(ref.path)}
    if spec.method is PruneMethod.STRUCTURED:
        small, shrunk = shrink_denoiser(model, spec.sparsity)
        hook = StructuredFineTune(small.variant.units, layer_weights(small.sequence), {**record, **shrunk})
    else:
        units = variant.units if variant.units != get_variant(variant.name).units else None
        hook = MaskedFineTune(spec, layer_weights(model.sequence), {"source": str(ref.path)}, units=units)
    return train(config, resume=resume, verbose=verbose, hook=hook)


def prune_kws(source, spec: PruneSpec, config, resume: bool = False, verbose: int = 1) -> Path:
    """Prune the keyword spotter ``source`` by ``spec`` and fine-tune it with
    :func:`tfdenoise.kws.train.train_kws` under ``config`` (a
    :class:`~tfdenoise.kws.train_config.KwsTrainConfig` of the source's network, whose task must
    give the source's labels); returns ``OUT/best``.  Resumable like training."""
    from tfdenoise.kws.models import load_kws_checkpoint
    from tfdenoise.kws.train import prepare, train_kws
    from tfdenoise.prune_masks import MaskedFineTune, layer_weights
    from tfdenoise.prune_structured import StructuredFineTune, shrink_kws

    task = prepare(config)[0]
    ref = _open(source, config.out, spec, resume, ModelFamily.KWS)
    model = load_kws_checkpoint(ref.path)
    if config.model != model.name or tuple(task.labels) != tuple(model.labels):
        raise InputError(f"is a {model.name} with classes {', '.join(model.labels)}; the training config "
                         f"gives a {config.model} with {', '.join(task.labels)}", ref.path)
    record = {**spec.to_json(), "source": str(ref.path)}
    if spec.method is PruneMethod.STRUCTURED:
        small, shrunk = shrink_kws(model, spec.sparsity)
        hook = StructuredFineTune(small.units, layer_weights(small.model), {**record, **shrunk})
    else:
        hook = MaskedFineTune(spec, layer_weights(model.model), {"source": str(ref.path)},
                              units=model.units or None)
    return train_kws(config, resume=resume, verbose=verbose, hook=hook)
