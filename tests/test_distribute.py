"""Training on two CPU workers on loopback (tfdenoise/distribute.py, MultiWorkerMirroredStrategy):
both hold the same weights afterwards; a worker killed with SIGKILL costs at most the running
epoch after `--resume` on every worker."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from tfdenoise.distribute import Cluster, cluster_from_env, shard_seed
from tfdenoise.errors import InputError
from tfdenoise.train import TrainConfig

WORKER = """
import json, sys
from tfdenoise.train import TrainConfig, train
train(TrainConfig(**json.loads(sys.argv[1])), resume=sys.argv[2] == "1", verbose=0,
      worker_timeout_s=float(sys.argv[3]))
"""


def test_cluster_from_tf_config():
    assert cluster_from_env({}) == Cluster(1, 0)
    two = {"cluster": {"worker": ["a:1", "b:1"]}, "task": {"type": "worker", "index": 1}}
    assert cluster_from_env({"TF_CONFIG": json.dumps(two)}) == Cluster(2, 1)
    chief = {"cluster": {"chief": ["c:1"], "worker": ["a:1"]}, "task": {"type": "worker", "index": 0}}
    c = cluster_from_env({"TF_CONFIG": json.dumps(chief)})
    assert c == Cluster(2, 1) and not c.is_chief
    assert shard_seed(7, Cluster(1, 0)) == 7 and shard_seed(7, Cluster(2, 1)) == 15
    for bad in ("{", '{"cluster": {}}', json.dumps({**two, "task": {"type": "worker", "index": 2}}),
                json.dumps({**two, "task": {"type": "ps", "index": 0}})):
        with pytest.raises(InputError, match="TF_CONFIG"):
            cluster_from_env({"TF_CONFIG": bad})


def _ports(n: int) -> list[int]:
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _start(config: TrainConfig, resume: bool, tmp: Path, timeout_s: float = 120.0) -> list[subprocess.Popen]:
    """Two workers of the same run on loopback ports."""
    script = tmp / "worker.py"
    script.write_text(WORKER)
    hosts = [f"127.0.0.1:{p}" for p in _ports(2)]
    procs = []
    for i in range(2):
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "",
               "TF_CONFIG": json.dumps({"cluster": {"worker": hosts}, "task": {"type": "worker", "index": i}})}
        procs.append(subprocess.Popen([sys.executable, str(script), json.dumps(asdict(config)),
                                       "1" if resume else "0", str(timeout_s)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return procs


def _config(corpus_dirs, out: Path, epochs: int, segments: int = 4, **kw) -> TrainConfig:
    """A tiny gru128 run (also used by tests/test_ema.py; `kw`: more TrainConfig fields)."""
    speech, noise = corpus_dirs
    return TrainConfig(variant="gru128", speech=str(speech), noise=str(noise), out=str(out),
                       epochs=epochs, batch=2, segment_seconds=0.5, segments_per_epoch=segments,
                       valid_fraction=0.5, valid_segments=2, cache_dir="", **kw)


def _h5(path: Path) -> list[np.ndarray]:
    """Every dataset of an HDF5 weights file, in visiting order (also used by tests/test_ema.py)."""
    import h5py

    out: list[np.ndarray] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.append(np.array(obj)) if isinstance(obj, h5py.Dataset) else None)
    return out


def _weights(folder: Path) -> list[np.ndarray]:
    return _h5(folder / "weights.h5")


def test_two_workers_hold_the_same_weights(corpus_dirs, tmp_path):
    out = tmp_path / "run"
    procs = _start(_config(corpus_dirs, out, epochs=1), False, tmp_path)
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    chief, other = _weights(out / "last"), _weights(out / "workers" / "1")
    assert len(chief) == len(other) > 0
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    start = _weights(out / "best")  # best/ of epoch 1 = last/ (one epoch)
    assert all(np.array_equal(a, b) for a, b in zip(start, chief))
    assert [h["epoch"] for h in json.loads((out / "history.json").read_text())] == [1]
    assert not (out / "workers" / "0").exists()  # the chief writes the run, not a copy


@pytest.mark.slow
def test_killed_worker_then_resume_loses_at_most_the_running_epoch(corpus_dirs, tmp_path):
    out = tmp_path / "run"
    cfg = _config(corpus_dirs, out, epochs=4, segments=16)
    procs = _start(cfg, False, tmp_path, timeout_s=15.0)
    state = out / "last" / "config.json"
    deadline = time.time() + 600
    while not state.exists() and time.time() < deadline and procs[0].poll() is None:
        time.sleep(0.2)
    done = json.loads(state.read_text())["epoch"]
    assert done < cfg.epochs, "the run finished before the kill: make its epochs longer"
    procs[1].send_signal(signal.SIGKILL)
    procs[1].wait()
    procs[0].communicate(timeout=300)
    assert procs[0].returncode != 0  # the survivor fails at its next collective instead of hanging
    kept = json.loads(state.read_text())["epoch"]
    assert kept >= done  # finished epochs are kept; at most the running one is lost
    procs = _start(cfg, True, tmp_path)
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    history = json.loads((out / "history.json").read_text())
    assert [h["epoch"] for h in history] == list(range(1, cfg.epochs + 1))
    for a, b in zip(_weights(out / "last"), _weights(out / "workers" / "1")):
        np.testing.assert_array_equal(a, b)
