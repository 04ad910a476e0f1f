"""Exponential moving average (EMA) of the weights during training: ``tfdenoise train --ema DECAY``.

With decay ``d`` and ``w_k`` the trainable weights after optimizer step ``k``::

    a_0 = w_0                                  the weights the run starts (or resumes) from
    a_k = d a_(k-1) + (1 - d) w_k              after every step, inside the compiled step
        = d^k w_0 + (1 - d) sum_(i=1..k) d^(k-i) w_i

No bias correction: ``a_0`` is the starting network, and the average spans about
``1 / (1 - d)`` steps (0.999: 1000 steps, i.e. 16 epochs of 2048 segments at batch 32; 0.99:
100 steps). Only trainable weights are averaged; BatchNormalization's moving mean and
variance (non-trainable, running averages of their own) are the raw network's.

What uses the average: after each epoch's steps the averaged weights are put into the network
(:func:`averaged`) for the validation loss, the held-out PESQ (``--valid-pesq``) that picks
``best/``, and the checkpoints' ``weights.h5``; then the raw weights go back and training
continues on them. Where the weights of a run with ``--ema`` live::

    last/weights.h5       the average (what enhance, export, heldout_scores and --init load)
    last/raw_weights.h5   the raw weights the optimizer state in last/optimizer/ belongs to
    best/weights.h5       the average of the best epoch

``--resume`` trains on from ``last/raw_weights.h5`` with the average restarting from
``last/weights.h5``, so an interrupted run continues as the uninterrupted one (float32 values
written and read exactly). Resumed without ``--ema``, the raw weights continue without an
average; a run without ``raw_weights.h5`` (started without ``--ema``) resumed with it starts
its average from its last weights.

Several replicas or workers (tfdenoise/distribute.py): the averages are variables created in
the strategy's scope and updated in cross-replica context after each step's ``strategy.run``,
so every replica holds the same average, as it holds the same weights.
"""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np

from tfdenoise.models import WEIGHTS_FILE

RAW_WEIGHTS_FILE = "raw_weights.h5"


class WeightAverage:
    """The moving average of ``net``'s trainable weights; create it inside the strategy's
    scope. ``start``: the full weight list (``net.get_weights()`` order) the average starts
    from (default: the network's current weights)."""

    def __init__(self, net, decay: float, start: list[np.ndarray] | None = None) -> None:
        from tfdenoise.keras import tf

        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.net, self.decay = net, float(decay)
        self.variables = list(net.trainable_variables)
        position = {id(w): i for i, w in enumerate(net.weights)}
        self.positions = [position[id(v)] for v in self.variables]
        values = [start[i] for i in self.positions] if start is not None else [v.numpy() for v in self.variables]
        self.average = [tf.Variable(np.asarray(x, dtype=v.dtype.as_numpy_dtype), trainable=False,
                                    name=f"ema_{i}") for i, (x, v) in enumerate(zip(values, self.variables))]

    def update(self) -> None:
        """``a <- d a + (1 - d) w`` for every trainable weight (call in the compiled step, after
        the optimizer's; in cross-replica context under a distribution strategy)."""
        d = self.decay
        for a, w in zip(self.average, self.variables):
            a.assign(d * a + (1.0 - d) * w)

    def values(self) -> list[np.ndarray]:
        return [a.numpy() for a in self.average]

    def full(self, weights: list[np.ndarray]) -> list[np.ndarray]:
        """``weights`` (the network's full list) with the trainable ones replaced by the average."""
        out = list(weights)
        for i, a in zip(self.positions, self.values()):
            out[i] = a
        return out

    def assign(self, values: list[np.ndarray]) -> None:
        """Set the network's trainable weights (in :attr:`variables` order)."""
        for v, x in zip(self.variables, values):
            v.assign(x)


@contextmanager
def averaged(average: WeightAverage | None) -> Iterator[list[np.ndarray] | None]:
    """Inside: the network holds the averaged trainable weights; yields its full raw weight
    list (None, and nothing changes, without an average). On exit the raw weights are back."""
    if average is None:
        yield None
        return
    raw = average.net.get_weights()  # every worker reads (BatchNorm statistics sync on read)
    average.assign(average.values())
    try:
        yield raw
    finally:
        average.assign([raw[i] for i in average.positions])


def restore(net, folder: Path, with_average: bool) -> list[np.ndarray] | None:
    """Load ``folder``'s (a run's ``last/``) weights into ``net`` to train on: its raw weights
    when it has them (a run with ``--ema``), else ``weights.h5``. Returns ``weights.h5``'s
    values (where an average continues from) when ``with_average``, else None."""
    net.load_weights(str(folder / WEIGHTS_FILE))
    saved = net.get_weights() if with_average else None
    if (folder / RAW_WEIGHTS_FILE).is_file():
        net.load_weights(str(folder / RAW_WEIGHTS_FILE))
    return saved


def write_raw(model, raw: list[np.ndarray], folder: Path) -> None:
    """Write ``raw`` as ``folder/raw_weights.h5`` through the Keras ``model`` (its weights are
    put back afterwards)."""
    kept = model.get_weights()
    model.set_weights(raw)
    try:
        model.save_weights(str(folder / RAW_WEIGHTS_FILE))
    finally:
        model.set_weights(kept)
