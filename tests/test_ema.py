"""Weight averaging (tfdenoise/ema.py, ``tfdenoise train --ema``): the average after k steps is
the closed form; the run validates and saves the average, keeps the raw weights for --resume,
and a resumed run continues as the uninterrupted one; the options are recorded in config.json
and the history; two workers hold the same average."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from tfdenoise import ema
from tfdenoise.errors import InputError
from tfdenoise.train import TrainHook, train

from test_distribute import _config, _h5, _start  # the tiny run, HDF5 reader and workers (pythonpath = tests)


def test_average_after_k_steps_is_the_closed_form():
    """a_k = d^k w_0 + (1 - d) sum_i d^(k-i) w_i over the raw weights w_i after each step, with
    the update inside a compiled step as train() runs it; averaged() swaps and restores exactly."""
    from tfdenoise.keras import keras, tf

    net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.BatchNormalization()])
    opt = keras.optimizers.SGD(0.1)
    decay, k = 0.8, 6
    average = ema.WeightAverage(net, decay)
    assert len(average.variables) == 4 and len(net.weights) == 6  # BatchNorm's moving stats not averaged
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((8, 4)).astype(np.float32), rng.standard_normal((8, 3)).astype(np.float32)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((net(x, training=True) - y) ** 2)
        opt.apply_gradients(zip(tape.gradient(loss, net.trainable_variables), net.trainable_variables))
        average.update()

    raw = [[v.numpy() for v in net.trainable_variables]]
    for _ in range(k):
        step()
        raw.append([v.numpy() for v in net.trainable_variables])
    for j, got in enumerate(average.values()):
        closed = decay ** k * raw[0][j] + (1 - decay) * sum(decay ** (k - i) * raw[i][j] for i in range(1, k + 1))
        np.testing.assert_allclose(got, closed, rtol=1e-5, atol=1e-7)
    assert not np.allclose(average.values()[0], raw[-1][0], rtol=1e-3)  # the kernel: not the last raw one
    full_raw = net.get_weights()
    with ema.averaged(average) as kept:
        for a, v in zip(average.values(), net.trainable_variables):
            np.testing.assert_array_equal(v.numpy(), a)
        assert all(np.array_equal(p, q) for p, q in zip(kept, full_raw))
    assert all(np.array_equal(p, q) for p, q in zip(net.get_weights(), full_raw))
    with pytest.raises(ValueError):
        ema.WeightAverage(net, 1.0)


AUGMENTED = {"reverb": 0.5, "rt60": (0.3, 0.6), "reverb_target": "early", "level_db": (-10.0, 6.0),
             "tilt_db": (-6.0, 6.0), "ema": 0.9}


def test_ema_run_saves_the_average_and_resumes_exactly(corpus_dirs, tmp_path):
    """Two epochs straight vs one epoch and --resume (after a restart, as a new process would):
    the same raw weights, average and optimizer step; weights.h5 is the average."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_config(corpus_dirs, straight, 2, **AUGMENTED), verbose=0)
    train(_config(corpus_dirs, split, 1, **AUGMENTED), verbose=0)
    train(_config(corpus_dirs, split, 2, **AUGMENTED), resume=True, verbose=0)
    for name in ("weights.h5", ema.RAW_WEIGHTS_FILE):
        for a, b in zip(_h5(straight / "last" / name), _h5(split / "last" / name)):
            np.testing.assert_array_equal(a, b)  # bit for bit on one machine (measured)
    averaged, raw = _h5(straight / "last" / "weights.h5"), _h5(straight / "last" / ema.RAW_WEIGHTS_FILE)
    assert len(averaged) == len(raw) and not all(np.array_equal(a, b) for a, b in zip(averaged, raw))
    assert not (straight / "best" / ema.RAW_WEIGHTS_FILE).exists()
    # the options are recorded: the run's config.json (read back as the config) and every row
    from tfdenoise.train_config import read_run_config

    assert read_run_config(straight) == _config(corpus_dirs, straight, 2, **AUGMENTED)
    saved = json.loads((straight / "config.json").read_text())
    assert saved["reverb"] == 0.5 and saved["rt60"] == [0.3, 0.6] and saved["reverb_target"] == "early"
    assert saved["level_db"] == [-10.0, 6.0] and saved["tilt_db"] == [-6.0, 6.0] and saved["ema"] == 0.9
    rows = json.loads((straight / "history.json").read_text())
    assert all(r["reverb"] == 0.5 and r["ema"] == 0.9 and r["tilt_db"] == [-6.0, 6.0] for r in rows)
    assert json.loads((straight / "last" / "config.json").read_text())["training"]["ema"] == 0.9


def test_resume_without_ema_trains_on_the_raw_weights(corpus_dirs, tmp_path):
    """A run with --ema resumed without it: the raw weights continue (no average, no raw file),
    and a row without augmentation records none of its options."""
    out = tmp_path / "run"
    train(_config(corpus_dirs, out, 1, ema=0.5), verbose=0)
    from tfdenoise.models import TinyDenoiser

    net = TinyDenoiser("gru128").sequence
    assert ema.restore(net, out / "last", with_average=False) is None
    net.save_weights(str(tmp_path / "loaded.h5"))
    loaded, raw = _h5(tmp_path / "loaded.h5"), _h5(out / "last" / ema.RAW_WEIGHTS_FILE)
    assert all(np.array_equal(a, b) for a, b in zip(loaded, raw))
    averaged = ema.restore(net, out / "last", with_average=True)  # weights.h5's values: the average
    assert not all(np.array_equal(a, b) for a, b in zip(averaged, net.get_weights()))
    train(_config(corpus_dirs, out, 2), resume=True, verbose=0)
    assert not (out / "last" / ema.RAW_WEIGHTS_FILE).exists()
    rows = json.loads((out / "history.json").read_text())
    assert rows[0]["ema"] == 0.5 and "ema" not in rows[1] and "reverb" not in rows[1]


def test_ema_is_refused_with_a_training_hook(corpus_dirs, tmp_path):
    with pytest.raises(InputError, match="--ema"):
        train(_config(corpus_dirs, tmp_path / "run", 1, ema=0.9), hook=TrainHook(), verbose=0)
    assert not (tmp_path / "run").exists()
    with pytest.raises(InputError, match="--ema"):
        train(replace(_config(corpus_dirs, tmp_path / "run", 1), ema=1.0), verbose=0)


def test_two_workers_hold_the_same_average(corpus_dirs, tmp_path):
    out = tmp_path / "run"
    procs = _start(_config(corpus_dirs, out, 1, ema=0.5, reverb=0.5), False, tmp_path)
    logs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], logs
    chief, other = _h5(out / "last" / "weights.h5"), _h5(out / "workers" / "1" / "weights.h5")
    assert len(chief) == len(other) > 0
    for a, b in zip(chief, other):
        np.testing.assert_array_equal(a, b)
    raw = _h5(out / "last" / ema.RAW_WEIGHTS_FILE)
    assert len(raw) == len(chief) and not all(np.array_equal(a, b) for a, b in zip(raw, chief))
