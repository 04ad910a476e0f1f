"""tfmot pruning wrappers around a network, masks kept through fine-tuning, stripped before saving.

Why a mask can silently not apply: tfmot's wrapper counts its own ``pruning_step`` (-1 until
the ``UpdatePruningStep`` callback's ``on_train_begin`` sets it to 0, + 1 in every training
call, before the mask update) and recomputes the masks only at steps ``s >= begin_step`` with
``(s - begin_step) % frequency == 0``; ``frequency`` defaults to 100.  ``ConstantSparsity(0.5,
begin_step=0)`` trained for one step has step 1, ``1 % 100 != 0``: no update, the masks stay
all ones and ``strip_pruning`` returns dense weights (measured, LSTM and dense alike).  Here
``begin_step = 1``, so the first step computes the masks; the trainers' loops are not
``Model.fit``, so :class:`MaskedFineTune` does the callback's work: it sets ``pruning_step``
(0, or the resumed run's step) and applies the masks after every epoch (the optimizer's update
at the end of a step writes into pruned weights; only the next forward pass masks them again).

The wrapped model is a clone whose wrappers hold the *same* layers as the network, so the
network's own weights are the pruned ones.  Stripping (``strip_pruning``) drops the wrappers'
masks, thresholds and step counters: the checkpoint holds only the network's weights (zeros
stored densely), in the normal format every command loads, plus a ``"prune"`` record in its
``config.json`` (method, target, schedule, step, the measured sparsity of every tensor).  A
resumed run rebuilds the masks from the stored zeros.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field

import numpy as np

from tfdenoise.prune import M_BY_N, PruneSpec, m_by_n_violations, zero_blocks
from tfdenoise.train import TrainHook
from tfdenoise.vocab import PruneMethod, PruneSchedule

#: Mask updates while a polynomial schedule ramps up (tfmot ``frequency`` = ramp steps / this).
RAMP_UPDATES = 16
#: Share of the fine-tuning steps over which a polynomial schedule ramps from 0 to the target.
RAMP_SHARE = 0.5
#: tfmot ``PolynomialDecay`` exponent (its default).
RAMP_EXPONENT = 3
#: Keras layer classes whose weights are pruned (tfmot's registry names the same tensors).
PRUNED_CLASSES = ("Dense", "Conv2D", "LSTM", "GRU")


# -- tfmot wrapping ---------------------------------------------------------------------------

def _sparsity_api():
    """``tfmot.sparsity.keras``, imported after :mod:`tfdenoise.keras` (TF_USE_LEGACY_KERAS=1:
    tfmot then works on tf_keras layers)."""
    importlib.import_module("tfdenoise.keras")
    import tensorflow_model_optimization as tfmot

    return tfmot.sparsity.keras


def _wrapper_class():
    _sparsity_api()
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

    return PruneLowMagnitude


def ramp_steps(steps_per_epoch: int, epochs: int) -> tuple[int, int] | None:
    """``(frequency, end_step)`` of a polynomial schedule over ``RAMP_SHARE`` of the run's steps:
    mask updates at steps 1, 1 + frequency, ... and the last on ``end_step`` (the target), which
    the run reaches; None when the run is too short to ramp (the target from the first step)."""
    ramp = round(RAMP_SHARE * steps_per_epoch * epochs) - 1  # steps after the first update
    if ramp < 1:
        return None
    frequency = max(1, ramp // RAMP_UPDATES)
    return frequency, 1 + frequency * (ramp // frequency)


def pruning_params(spec: PruneSpec, steps_per_epoch: int, epochs: int) -> dict:
    """Keyword arguments of tfmot ``prune_low_magnitude`` for ``spec`` (begin_step 1: the
    first training step computes the masks; see the module docstring)."""
    sp = _sparsity_api()
    if spec.method is PruneMethod.M_BY_N:
        return {"pruning_schedule": sp.ConstantSparsity(0.5, begin_step=1, frequency=max(1, steps_per_epoch)),
                "sparsity_m_by_n": M_BY_N}
    ramp = ramp_steps(steps_per_epoch, epochs) if spec.schedule_used is PruneSchedule.POLYNOMIAL else None
    if ramp is None:
        schedule = sp.ConstantSparsity(spec.sparsity, begin_step=1, frequency=max(1, steps_per_epoch))
    else:
        schedule = sp.PolynomialDecay(0.0, spec.sparsity, begin_step=1, end_step=ramp[1],
                                      power=RAMP_EXPONENT, frequency=ramp[0])
    params = {"pruning_schedule": schedule}
    if spec.method is PruneMethod.BLOCK:
        params["block_size"] = spec.block
    return params


def weight_tensors(layer) -> list[tuple[str, object]]:
    """``[(name, variable)]`` of the weights pruning touches in ``layer`` (unwrapped first):
    ``kernel`` of a dense or conv layer, ``kernel`` and ``recurrent_kernel`` of an LSTM / GRU."""
    layer = getattr(layer, "layer", layer) if type(layer).__name__ == "PruneLowMagnitude" else layer
    kind = type(layer).__name__
    if kind in ("LSTM", "GRU"):
        return [("kernel", layer.cell.kernel), ("recurrent_kernel", layer.cell.recurrent_kernel)]
    if kind in ("Dense", "Conv2D"):
        return [("kernel", layer.kernel)]
    return []


def _is_pruned(layer, spec: PruneSpec) -> bool:
    """Whether ``spec`` wraps ``layer``: its class is pruned and, for block pruning, every
    weight it prunes is rank 2 (tfmot refuses others)."""
    if type(layer).__name__ not in PRUNED_CLASSES:
        return False
    return spec.method is not PruneMethod.BLOCK or all(len(v.shape) == 2 for _, v in weight_tensors(layer))


def wrap(model, spec: PruneSpec, steps_per_epoch: int, epochs: int):
    """A clone of the Keras ``model`` with tfmot wrappers around the layers ``spec`` prunes; the
    clone holds the same layer objects (and so the same weights) as ``model``."""
    from tfdenoise.keras import keras

    sp = _sparsity_api()
    params = pruning_params(spec, steps_per_epoch, epochs)

    def clone(layer):
        return sp.prune_low_magnitude(layer, **params) if _is_pruned(layer, spec) else layer

    return keras.models.clone_model(model, clone_function=clone)


def wrappers(model) -> list:
    """The tfmot pruning wrappers of ``model``, in layer order."""
    cls = _wrapper_class()
    return [layer for layer in model.layers if isinstance(layer, cls)]


def strip(model):
    """``model`` without its pruning wrappers (tfmot ``strip_pruning``), masks applied first."""
    for w in wrappers(model):
        w.pruning_obj.weight_mask_op()
    return _sparsity_api().strip_pruning(model)


def sparsity_table(model, spec: PruneSpec | None = None) -> dict:
    """The measured zeros of every prunable weight tensor of the Keras ``model`` (wrapped or
    not): ``{"tensors": [{layer, tensor, shape, weights, zeros, sparsity, pruned}], "weights",
    "zeros", "sparsity"}``, totals over the pruned tensors (the wrapped layers' or, in a model
    without wrappers, all).  With a 2:4 ``spec`` each row also counts the groups of 4 with more
    than 2 nonzeros (``m_by_n_violations``); with a block ``spec`` the share of all-zero blocks
    (``zero_blocks``) and of partly zero ones (``partial_blocks``)."""
    pruned = {w.layer.name for w in wrappers(model)}
    rows = []
    for layer in model.layers:
        inner = getattr(layer, "layer", layer) if type(layer).__name__ == "PruneLowMagnitude" else layer
        for name, var in weight_tensors(inner):
            w = np.asarray(var.numpy())
            zeros = int(np.count_nonzero(w == 0))
            row = {"layer": inner.name, "tensor": name, "shape": list(w.shape), "weights": int(w.size),
                   "zeros": zeros, "sparsity": round(zeros / w.size, 6),
                   "pruned": not pruned or inner.name in pruned}
            if spec is not None and spec.method is PruneMethod.M_BY_N:
                row["m_by_n_violations"] = m_by_n_violations(w, *M_BY_N)
            if spec is not None and spec.method is PruneMethod.BLOCK and w.ndim == 2:
                full, partial, total = zero_blocks(w, spec.block)
                row.update(zero_blocks=round(full / total, 6), partial_blocks=round(partial / total, 6))
            rows.append(row)
    done = [r for r in rows if r["pruned"]]
    weights, zeros = sum(r["weights"] for r in done), sum(r["zeros"] for r in done)
    return {"tensors": rows, "weights": weights, "zeros": zeros,
            "sparsity": round(zeros / weights, 6) if weights else 0.0}


# -- fine-tuning hooks ------------------------------------------------------------------------

def layer_weights(model) -> dict[str, list[np.ndarray]]:
    """``{layer name: weights}`` of every Keras layer with weights (what a hook starts from)."""
    return {layer.name: layer.get_weights() for layer in model.layers if layer.weights}


def set_layer_weights(model, weights: dict[str, list[np.ndarray]]) -> None:
    """Load :func:`layer_weights` output into the layers of the same names (every one must exist)."""
    for name, values in weights.items():
        model.get_layer(name).set_weights(values)


@dataclass
class MaskedFineTune(TrainHook):
    """The trainers' hook for ``unstructured``, ``2:4`` and ``block``: start from ``initial``
    (a fresh run), train the tfmot-wrapped clone, apply the masks after each epoch and record
    the measured sparsity; ``best/`` only once the schedule reached the target."""

    spec: PruneSpec
    initial: dict[str, list[np.ndarray]]
    record: dict = field(default_factory=dict)  # extra entries of the "prune" record (source ...)
    units: int | dict[str, int] | None = None    # the source's shape when it differs from the table's
    _model: object = field(default=None, init=False, repr=False)
    _end_step: int = field(default=1, init=False)

    def start(self, model, steps_per_epoch: int, epochs: int, resumed: dict | None):
        if resumed is None:
            set_layer_weights(model, self.initial)
        self._model = wrap(model, self.spec, steps_per_epoch, epochs)
        ramp = ramp_steps(steps_per_epoch, epochs) if self.spec.schedule_used is PruneSchedule.POLYNOMIAL else None
        self._end_step = ramp[1] if ramp else 1
        step = int((resumed or {}).get("prune", {}).get("step", 0))
        for w in wrappers(self._model):
            w.pruning_step.assign(step)
            if resumed is not None:  # the stored zeros are the masks (tfmot starts from all ones)
                for weight, mask, _ in w.pruning_vars:
                    mask.assign(np.asarray(weight.numpy() != 0, np.float32))
        return self._model

    def step(self) -> int:
        ws = wrappers(self._model)
        return int(ws[0].pruning_step.numpy()) if ws else 0

    def at_target(self) -> bool:
        return self.step() >= self._end_step

    def epoch_end(self) -> dict:
        for w in wrappers(self._model):
            w.pruning_obj.weight_mask_op()
        return {"prune": {**self.spec.to_json(), **self.record, "step": self.step(), "end_step": self._end_step,
                          "at_target": self.at_target(), **sparsity_table(self._model, self.spec)}}
