"""Training on several workers or GPUs with TensorFlow's own engine (tf.distribute).

    TF_CONFIG names >= 2 tasks  -> MultiWorkerMirroredStrategy: one process per machine (or
                                   per port on one machine), each with its own data shard;
                                   gradients are summed across workers every step
    else >= 2 visible GPUs      -> MirroredStrategy on them
    else                        -> TensorFlow's default strategy (one device, as before)

TF_CONFIG is TensorFlow's JSON (https://www.tensorflow.org/guide/distributed_training), e.g.
``{"cluster": {"worker": ["10.0.0.1:23456", "10.0.0.2:23456"]}, "task": {"type": "worker",
"index": 0}}``; task 0 of type ``worker`` (or the ``chief`` task when the cluster has one) is
the chief. What the trainer does with it (tfdenoise/train.py):

- every worker runs the same command with the same ``--out`` on a shared folder and ``--batch``
  per worker (global batch = batch x workers); worker i draws its own mixtures (seed of the
  epoch x workers + i), so one worker's data is the single-process run's;
- the loss is divided by the number of replicas before the summed gradients are applied, so
  one process computes exactly what it computed before this module existed;
- only the chief writes ``last/``, ``best/``, ``history.json`` and scores PESQ; each other
  worker writes its own copy of the weights to ``OUT/workers/<index>/`` (a consistency check:
  all copies are equal after every epoch);
- a worker that dies makes the others fail at their next collective after ``timeout_s``; run
  the same command again with ``--resume`` on every worker: ``last/`` holds the last finished
  epoch, so at most the running epoch is lost.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Mapping

from tfdenoise.errors import InputError

#: seconds a collective (the per-step gradient all-reduce) waits for the other workers
DEFAULT_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Cluster:
    """This process's place in a training cluster (one worker: ``Cluster(1, 0)``)."""

    workers: int
    index: int

    @property
    def is_chief(self) -> bool:
        return self.index == 0

    @property
    def distributed(self) -> bool:
        return self.workers > 1


def cluster_from_env(environ: Mapping[str, str] = os.environ) -> Cluster:
    """The cluster TF_CONFIG describes (none: one worker); a malformed TF_CONFIG is an InputError."""
    raw = environ.get("TF_CONFIG", "").strip()
    if not raw:
        return Cluster(1, 0)
    try:
        cfg = json.loads(raw)
        cluster, task = cfg["cluster"], cfg["task"]
        chiefs = list(cluster.get("chief", []))
        workers = list(cluster.get("worker", []))
        kind, index = str(task["type"]), int(task["index"])
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise InputError(f"TF_CONFIG is not TensorFlow's cluster JSON ({type(e).__name__}: {e})") from None
    if len(chiefs) > 1 or kind not in ("chief", "worker"):
        raise InputError(f"TF_CONFIG: only one 'chief' and 'worker' tasks are supported (task type {kind!r})")
    pool = chiefs if kind == "chief" else workers
    if not 0 <= index < len(pool):
        raise InputError(f"TF_CONFIG: task index {index} outside the {len(pool)} {kind} address(es)")
    return Cluster(len(chiefs) + len(workers), index + (len(chiefs) if kind == "worker" else 0))


def make_strategy(cluster: Cluster, timeout_s: float = DEFAULT_TIMEOUT_S):
    """The tf.distribute strategy for ``cluster`` (see the module header)."""
    from tfdenoise.keras import tf

    if cluster.distributed:
        options = tf.distribute.experimental.CommunicationOptions(timeout_seconds=float(timeout_s))
        return tf.distribute.MultiWorkerMirroredStrategy(communication_options=options)
    if len(tf.config.list_logical_devices("GPU")) > 1:
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def shard_seed(seed: int, cluster: Cluster) -> int:
    """Data seed of this worker for a run seed (unchanged on one worker)."""
    return seed * cluster.workers + cluster.index
