"""Structured pruning (docs/design.md §9): whole units / filters removed, the layers rebuilt smaller.

A layer keeps ``round(units x (1 - sparsity))`` of its units (at least 1, else a one-line
error), the ones with the largest score

    score_c = a_c x || w_out,c ||_2

where ``w_out,c`` are the weights that read unit ``c``'s output (the next dense / conv
layer's input rows of ``c``, every position of ``c`` after a flatten, and for an LSTM / GRU
unit also its own recurrent-kernel row) and ``a_c`` stands for the size of that output: 1 for
an LSTM / GRU unit (``|h| < 1``), ``|gamma_c|`` when a BatchNorm follows the layer (it sets the
output's scale), else the L2 norm of the unit's incoming weights (kernel column / filter).

Surviving weights are copied into a network built with fewer units:

* LSTM (gates i, f, c, o) / GRU (z, r, h; ``reset_after``: bias ``[2, 3u]``, input and recurrent
  bias): the kept columns of every gate block of ``kernel``, ``recurrent_kernel`` (whose rows
  are kept too) and ``bias``; the next layer keeps the input rows of the kept units;
* dense / conv: kept output columns / filters and their bias, the following BatchNorm's four
  vectors, the next layer's input rows (after a flatten: the rows of every position of a
  kept channel).

Removing a unit is exact once its outgoing weights are zero: the shrunk network computes what
the original computes with those rows zeroed (the tests check it), and fine-tuning then
recovers what the zeroed rows carried.  TinyDenoiser: the units of ``rnn_0`` and ``rnn_1``
(both keep the same count; the checkpoint records ``units``, :func:`tfdenoise.models.checkpoint_variant`).
KWS: every dense and conv layer but ``logits`` (``units`` per layer in the checkpoint,
:func:`tfdenoise.kws.models.check_units`); a layer whose channels go through a depthwise
convolution (dscnn) is refused.
"""
from __future__ import annotations

from dataclasses import replace

import numpy as np

from tfdenoise.errors import InputError
from tfdenoise.kws.layertable import Op, count_layer
from tfdenoise.kws.models import KwsModel
from tfdenoise.models import TinyDenoiser
from tfdenoise.prune_masks import set_layer_weights
from tfdenoise.train import TrainHook

#: Layer-table ops a pruned layer's channels may pass through on the way to the layer reading them.
_PASS = (Op.BATCHNORM, Op.RELU, Op.DROPOUT, Op.FLATTEN, Op.AVGPOOL)


def keep_count(units: int, sparsity: float, layer: str) -> int:
    """Units a layer of ``units`` keeps at ``sparsity`` (one-line error if none would be left)."""
    keep = int(round(units * (1.0 - sparsity)))
    if keep < 1:
        raise InputError(f"--sparsity {sparsity:g} would leave 0 of the {units} units of {layer}; "
                         f"at most {1 - 0.5 / units:.4g} keeps one")
    return keep


def top_units(score: np.ndarray, keep: int) -> np.ndarray:
    """Indices of the ``keep`` largest scores, in increasing index order (ties: lower index)."""
    order = np.argsort(-score, kind="stable")[:keep]
    return np.sort(order)


def gate_columns(kept: np.ndarray, units: int, gates: int) -> np.ndarray:
    """Columns of ``kept`` units in every gate block of an RNN kernel ``[., gates * units]``."""
    return np.concatenate([g * units + kept for g in range(gates)])


def _norm_rows(*matrices: np.ndarray) -> np.ndarray:
    return np.sqrt(sum(np.sum(np.asarray(m, np.float64) ** 2, axis=1) for m in matrices))


# -- TinyDenoiser -----------------------------------------------------------------------------

def shrink_denoiser(model: TinyDenoiser, sparsity: float) -> tuple[TinyDenoiser, dict]:
    """``model`` with ``sparsity`` of the units of each RNN layer removed, and the record of what
    was kept (``{"units": {layer: {"before", "after", "kept"}}, "weights_before", "weights_after"}``)."""
    v = model.variant
    u, g = v.units, v.gates
    keep = keep_count(u, sparsity, "rnn_0")
    lay = model.layers
    k0, r0, b0 = lay["rnn_0"].get_weights()
    k1, r1, b1 = lay["rnn_1"].get_weights()
    wm, bm = lay["fc_mid"].get_weights()
    kept0 = top_units(_norm_rows(r0, k1), keep)
    kept1 = top_units(_norm_rows(r1, wm), keep)
    c0, c1 = gate_columns(kept0, u, g), gate_columns(kept1, u, g)
    small = TinyDenoiser(replace(v, units=keep))
    for name in ("fc_in", "bn_in", "bn_mid", "fc_out"):
        small.layers[name].set_weights(lay[name].get_weights())
    small.layers["rnn_0"].set_weights([k0[:, c0], r0[np.ix_(kept0, c0)], b0[..., c0]])
    small.layers["rnn_1"].set_weights([k1[np.ix_(kept0, c1)], r1[np.ix_(kept1, c1)], b1[..., c1]])
    small.layers["fc_mid"].set_weights([wm[kept1], bm])
    record = {"units": {name: {"before": u, "after": keep, "kept": kept.tolist()}
                        for name, kept in (("rnn_0", kept0), ("rnn_1", kept1))},
              "weights_before": model.weight_matrix_params(), "weights_after": small.weight_matrix_params()}
    return small, record


# -- keyword spotting -------------------------------------------------------------------------

def _flat_rows(channels: np.ndarray, n_channels: int, positions: int) -> np.ndarray:
    """Rows of a dense kernel after a flatten of ``[..., n_channels]`` that read ``channels``."""
    return (np.arange(positions)[:, None] * n_channels + np.asarray(channels)[None, :]).ravel()


def _kws_plan(model: KwsModel) -> list[tuple]:
    """``[(row, input shape, weights)]`` of the network's layer table in order."""
    shape, plan = model.spec.input_shape, []
    for row in model.spec.layers(model.n_classes):
        row = replace(row, units=model.units.get(row.name, row.units))
        plan.append((row, shape, model.model.get_layer(row.name).get_weights()))
        shape = count_layer(row, shape)[0]
    return plan


def _kws_scores(plan: list[tuple], i: int, name: str) -> np.ndarray:
    """Scores (module docstring) of the units of the prunable layer at ``plan[i]``."""
    row, _, (kernel, _bias) = plan[i]
    size = np.sqrt(np.sum(kernel.reshape(-1, kernel.shape[-1]).astype(np.float64) ** 2, axis=0))
    flat = None
    for j, (nxt, shape, weights) in enumerate(plan[i + 1:]):
        if nxt.op is Op.BATCHNORM and j == 0:
            size = np.abs(weights[0]).astype(np.float64)
        elif nxt.op is Op.FLATTEN:
            flat = (shape[-1], int(np.prod(shape[:-1])))
        elif nxt.op in (Op.DENSE, Op.CONV):
            w = weights[0]
            if nxt.op is Op.CONV:
                return size * _norm_rows(np.moveaxis(w, 2, 0).reshape(w.shape[2], -1))
            rows = w.reshape(flat[1], flat[0], -1) if flat else w[None]
            return size * np.sqrt(np.sum(rows.astype(np.float64) ** 2, axis=(0, 2)))
        elif nxt.op not in _PASS:
            raise InputError(f"structured pruning: the channels of {name}'s {row.name} pass through a "
                             f"{nxt.op.value} layer ({nxt.name}); supported are networks whose units feed "
                             "the next dense / conv layer (dnn, cnn)")
    raise AssertionError(f"{row.name} feeds no layer")


def shrink_kws(model: KwsModel, sparsity: float) -> tuple[KwsModel, dict]:
    """``model`` with ``sparsity`` of the units / filters of each dense and conv layer but
    ``logits`` removed, and the record of what was kept (as :func:`shrink_denoiser`'s)."""
    plan = _kws_plan(model)
    kept: dict[str, np.ndarray] = {}
    for i, (row, _, weights) in enumerate(plan):
        if row.op in (Op.DENSE, Op.CONV) and row.name != "logits":
            n = weights[0].shape[-1]
            kept[row.name] = top_units(_kws_scores(plan, i, model.name), keep_count(n, sparsity, row.name))
    small = KwsModel(model.name, model.n_classes, labels=model.labels,
                     units={name: len(k) for name, k in kept.items()})
    rows_in = None  # indices kept along the current tensor's last axis (None: all)
    for row, shape, weights in plan:
        if row.op is Op.FLATTEN and rows_in is not None:
            rows_in = _flat_rows(rows_in, shape[-1], int(np.prod(shape[:-1])))
        elif row.op is Op.BATCHNORM and rows_in is not None:
            weights = [w[rows_in] for w in weights]
        elif row.op in (Op.DENSE, Op.CONV):
            kernel, bias = weights
            if rows_in is not None:
                kernel = np.take(kernel, rows_in, axis=kernel.ndim - 2)
            rows_in = kept.get(row.name)
            weights = [kernel, bias] if rows_in is None else [kernel[..., rows_in], bias[rows_in]]
        if weights:
            small.model.get_layer(row.name).set_weights(weights)
    before = sum(int(np.prod(w[0].shape)) for r, _, w in plan if r.op in (Op.DENSE, Op.CONV))
    after = sum(int(np.prod(small.model.get_layer(r.name).get_weights()[0].shape))
                for r, _, _ in plan if r.op in (Op.DENSE, Op.CONV))
    units = {r.name: int(w[0].shape[-1]) for r, _, w in plan if r.name in kept}
    record = {"units": {name: {"before": units[name], "after": len(k), "kept": k.tolist()}
                        for name, k in kept.items()},
              "weights_before": before, "weights_after": after}
    return small, record


class StructuredFineTune(TrainHook):
    """The trainers' hook for ``structured``: build the network with the shrunk ``units``, start
    from the shrunk weights ``initial`` (a fresh run) and record what was removed (``record``)."""

    def __init__(self, units: int | dict[str, int], initial: dict[str, list[np.ndarray]], record: dict) -> None:
        self.units, self.initial, self.record = units, initial, record

    def start(self, model, steps_per_epoch: int, epochs: int, resumed: dict | None):
        if resumed is None:
            set_layer_weights(model, self.initial)
        return model

    def epoch_end(self) -> dict:
        return {"prune": self.record}
