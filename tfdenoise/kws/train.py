"""Keyword-spotting training (docs/design.md §7): one network on FSDD-style clips + real noise.

Every epoch draws fresh training windows in numpy: each clip is placed in the model's window
with a random time shift and gain and mixed with a random segment of the noise corpus at a
random SNR (:func:`tfdenoise.kws.data.augment`); a keyword task also gets noise-only windows
(:func:`~tfdenoise.kws.data.silence_window`, the ``_silence_`` class).  The windows' features
are computed once per epoch with the numpy transform (:func:`~tfdenoise.kws.features.features`,
the one evaluation and streaming use), so a step is only the network: on 2 CPU cores an epoch
of ~2,400 FSDD windows takes seconds, where a ``tf.data`` map of ``tf_features`` per batch
would redo the FFTs inside every step.

Adam on the cross-entropy of the logits (the layer before the softmax), learning rate
log-linear from ``--lr`` to ``--lr-final`` (:func:`tfdenoise.train.learning_rate_at`, the
denoiser's schedule, so a resumed run gets the rate the uninterrupted one would have had).
Validation each epoch: the held-out clips, centred in the window without noise (as
:func:`tfdenoise.kws.evaluate.accuracy` scores the test split), plus, for a keyword task, a
fixed set of silence windows.  The options and their checks are
:mod:`tfdenoise.kws.train_config`'s.

Run folder (every write temp-then-rename, so ``kill -9`` loses at most the running epoch)::

    OUT/best/          config.json + weights.h5   best validation accuracy so far (ties: lower loss)
    OUT/last/          config.json + weights.h5 + optimizer/   after every epoch (the resume point)
    OUT/config.json    the run's KwsTrainConfig
    OUT/history.json   per-epoch metrics
    OUT/cache/         decoded clips and noise (int16 .npz; --cache DIR)

A checkpoint's ``config.json`` holds, besides the network and its labels, ``task``
(``digits`` or ``keywords``), ``keywords``, ``split`` and the training config: what
:mod:`tfdenoise.kws.evaluate` needs to score it on the right clips.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tfdenoise import mixtures
from tfdenoise.errors import InputError, ModelError
from tfdenoise.fileio import check_outputs, write_json
from tfdenoise.kws import data
from tfdenoise.kws.data import Clip, Task
from tfdenoise.kws.features import FeatureConfig, features
from tfdenoise.kws.layertable import KwsSpec, get_spec
from tfdenoise.kws.models import KwsModel, save_kws_checkpoint
from tfdenoise.kws.train_config import KwsTrainConfig, check_resumable, make_task, split_clips
from tfdenoise.models import CONFIG_FILE
from tfdenoise.train import TrainHook

VALID_SEED = 7_919  # + the run's seed: the fixed silence windows of the validation set


# -- windows ---------------------------------------------------------------------------------

def centred_windows(signals: Sequence[np.ndarray], cfg: FeatureConfig) -> np.ndarray:
    """Features ``[n, window_frames, n_features]`` of each signal centred in one window,
    without shift, gain or noise (how validation and :func:`evaluate.accuracy` see a clip)."""
    return feature_windows([data.place(x, cfg.window_samples) for x in signals], cfg)


def feature_windows(windows: Sequence[np.ndarray], cfg: FeatureConfig) -> np.ndarray:
    """Features ``[n, window_frames, n_features]`` (float32) of windows of ``window_samples``."""
    if not len(windows):
        return np.zeros((0, cfg.window_frames, cfg.n_features), np.float32)
    return np.stack([features(w, cfg) for w in windows]).astype(np.float32)


def epoch_windows(signals: Sequence[np.ndarray], targets: np.ndarray, task: Task,
                  config: KwsTrainConfig, cfg: FeatureConfig, noise: mixtures.Corpus | None,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One epoch of augmented training windows ``(features [n, T, F], targets [n])``, shuffled.

    ``windows_per_epoch`` clips (0: each clip once) in a random order, each augmented; a
    keyword task adds ``silence_share`` x that many noise-only windows and ``partial_share``
    x that many windows holding only 20-50 % of a clip at the window's start or end
    (:func:`partial_window`) as ``_unknown_``: in a stream every word enters and leaves the
    window, and a half-heard word must not fire.
    """
    n = config.windows_per_epoch or len(signals)
    order = np.concatenate([rng.permutation(len(signals)) for _ in range(-(-n // len(signals)))])[:n]
    windows = [data.augment(signals[i], rng, noise, cfg.window_samples, snr_db=tuple(config.snr_db),
                            shift_seconds=config.shift_seconds, gain_db=tuple(config.gain_db),
                            noise_prob=config.noise_prob) for i in order]
    y = list(targets[order])
    if task.keywords is not None:
        k = int(round(config.silence_share * n))
        windows += [data.silence_window(rng, noise, cfg.window_samples) for _ in range(k)]
        y += [task.target(data.SILENCE)] * k
        k = int(round(config.partial_share * n))
        windows += [partial_window(signals[i], rng, noise, cfg.window_samples, config)
                    for i in rng.integers(0, len(signals), k)]
        y += [task.target(data.UNKNOWN)] * k
    x, y = feature_windows(windows, cfg), np.asarray(y, np.int32)
    perm = rng.permutation(len(y))
    return x[perm], y[perm]


def epoch_size(config: KwsTrainConfig, task: Task, n_clips: int) -> int:
    """How many windows :func:`epoch_windows` makes per epoch from ``n_clips`` training clips."""
    n = config.windows_per_epoch or n_clips
    if task.keywords is None:
        return n
    return n + int(round(config.silence_share * n)) + int(round(config.partial_share * n))


def partial_window(x: np.ndarray, rng: np.random.Generator, noise: mixtures.Corpus | None,
                   window_samples: int, config: KwsTrainConfig) -> np.ndarray:
    """A window holding only the first or last 20-50 % of clip ``x`` (cut off by the window's
    end or start), with the random gain and noise of :func:`~tfdenoise.kws.data.augment`."""
    n = len(x)
    inside = max(1, int(rng.uniform(0.2, 0.5) * n))
    start = window_samples - inside if rng.random() < 0.5 else inside - n  # clip's first sample
    cut = data.place(x, window_samples, start - (window_samples - n) // 2)
    return data.augment(cut, rng, noise, window_samples, snr_db=tuple(config.snr_db), shift_seconds=0.0,
                        gain_db=tuple(config.gain_db), noise_prob=config.noise_prob)


# -- steps -----------------------------------------------------------------------------------

def logits_model(model: KwsModel):
    """The network up to its logits (the layer before the softmax), sharing its layers."""
    from tfdenoise.keras import keras

    return keras.Model(model.model.input, model.model.get_layer("logits").output)


def _loss_and_steps(logits_model, input_shape: tuple[int, int], optimizer):
    """(train_step, eval_step) tf.functions: sparse cross-entropy on the logits."""
    from tfdenoise.keras import keras, tf

    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    spec = [tf.TensorSpec((None, *input_shape), tf.float32), tf.TensorSpec((None,), tf.int32)]

    @tf.function(input_signature=spec)
    def train_step(x, y):
        with tf.GradientTape() as tape:
            logits = logits_model(x, training=True)
            loss = xent(y, logits)
        variables = logits_model.trainable_variables
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        hits = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
        return loss, hits

    @tf.function(input_signature=spec)
    def eval_step(x, y):
        logits = logits_model(x, training=False)
        hits = tf.reduce_sum(tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32))
        return xent(y, logits) * tf.cast(tf.shape(y)[0], tf.float32), hits

    return train_step, eval_step


def _validate(eval_step, x: np.ndarray, y: np.ndarray, batch: int) -> tuple[float, float]:
    loss = hits = 0.0
    for i in range(0, len(y), batch):
        l, h = eval_step(x[i:i + batch], y[i:i + batch])
        loss, hits = loss + float(l), hits + float(h)
    return loss / max(1, len(y)), hits / max(1, len(y))


def prepare(config: KwsTrainConfig) -> tuple[Task, list[Clip], list[Clip], list[Clip]]:
    """Check ``config`` and list and split its clips: ``(task, train, valid, test)``.  Reads
    only the folder listing; every error is one line."""
    config.check()
    clips = data.list_clips(config.data)
    task = make_task(clips, config.keywords)
    train, valid, test = split_clips(clips, config.split, config.valid_fraction, config.seed)
    if not train:
        raise InputError("no training clips left after the split", config.data)
    if not valid:
        raise InputError(f"--valid-fraction {config.valid_fraction:g} holds out no clip; "
                         "raise it or add clips", config.data)
    if task.keywords is None and len(task.labels) < 2:
        raise InputError(f"the data has one label ({task.labels[0]}); a classifier needs two",
                         config.data)
    if config.noise is not None and not Path(config.noise).is_dir():
        raise InputError("--noise: no such folder", config.noise)
    return task, train, valid, test


def validation_set(signals: Sequence[np.ndarray], targets: np.ndarray, task: Task,
                   config: KwsTrainConfig, noise: mixtures.Corpus | None,
                   cfg: FeatureConfig) -> tuple[np.ndarray, np.ndarray]:
    """The held-out clips centred in the window without noise and, for a keyword task, a
    fixed set of noise-only windows (``silence_share`` x the clips, at least one) as
    ``_silence_``: ``(features [n, T, F], targets [n])``, the same every epoch."""
    x, y = centred_windows(signals, cfg), targets
    if task.keywords is not None:
        rng = np.random.default_rng(VALID_SEED + config.seed)
        k = max(1, int(round(config.silence_share * len(signals))))
        sil = feature_windows([data.silence_window(rng, noise, cfg.window_samples) for _ in range(k)], cfg)
        x = np.concatenate([x, sil])
        y = np.concatenate([y, np.full(k, task.target(data.SILENCE), np.int32)])
    return x, y


# -- the run ---------------------------------------------------------------------------------

@dataclass
class RunState:
    """Where a run stands: the next epoch (0-based), the best ``(val_accuracy, -val_loss)`` so
    far, the training seconds and the per-epoch history rows."""

    epoch: int = 0
    best: tuple[float, float] = (-np.inf, -np.inf)
    seconds: float = 0.0
    history: list[dict] = field(default_factory=list)


def _open_run(config: KwsTrainConfig, task: Task, resume: bool) -> tuple[dict | None, Path | None]:
    """Refuse an ``OUT`` that holds a run (without ``resume``) or none to resume, or whose run
    is another network; probe the outputs.  Returns ``OUT/last``'s config (resume) and the
    decoded-audio cache folder (None: no cache)."""
    out = Path(config.out)
    last = out / "last"
    if not resume and last.exists():
        raise InputError("already holds a training run; pass --resume to continue it "
                         "or choose another --out", out)
    if resume and not last.exists():
        raise ModelError("nothing to resume (no last/ checkpoint)", out)
    saved = check_resumable(config, task) if resume else None
    cache = out / "cache" if config.cache_dir is None else (Path(config.cache_dir) if config.cache_dir else None)
    reads = [config.data] + ([config.noise] if config.noise else [])
    check_outputs(folders=[out] + ([cache] if cache else []), input_trees=reads)
    return saved, cache


def _resume(model: KwsModel, optimizer, out: Path, saved: dict, verbose: int) -> RunState:
    """Weights and optimizer state of ``OUT/last``, and where its run stood."""
    from tfdenoise.train import _restore_optimizer

    model.model.load_weights(str(out / "last" / "weights.h5"))
    _restore_optimizer(optimizer, out / "last")
    state = RunState(int(saved["epoch"]),
                     (float(saved["best_val_accuracy"]), -float(saved["best_val_loss"])),
                     float(saved.get("train_seconds", 0.0)))
    if (out / "history.json").is_file():
        state.history = json.loads((out / "history.json").read_text())[:state.epoch]
    if verbose:
        print(f"resuming {out} after epoch {state.epoch} (best val_accuracy {state.best[0]:.4f})")
    return state


def _fit_epoch(train_step, x: np.ndarray, y: np.ndarray, batch: int, verbose: int) -> tuple[float, float]:
    """One pass of ``train_step`` over ``(x, y)`` in batches: mean loss and accuracy."""
    from tfdenoise.keras import keras

    steps = -(-len(y) // batch)
    bar = keras.utils.Progbar(steps, stateful_metrics=["loss", "accuracy"]) if verbose else None
    loss_sum = hits_sum = 0.0
    for i in range(steps):
        xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
        loss, hits = train_step(xb, yb)
        loss_sum, hits_sum = loss_sum + float(loss) * len(yb), hits_sum + float(hits) * len(yb)
        if bar:
            seen = min((i + 1) * batch, len(y))
            bar.update(i + 1, [("loss", loss_sum / seen), ("accuracy", hits_sum / seen)])
    return loss_sum / len(y), hits_sum / len(y)


def _train_epoch(epoch: int, config: KwsTrainConfig, optimizer, steps: tuple,
                 make_windows: Callable[[np.random.Generator], tuple[np.ndarray, np.ndarray]],
                 valid: tuple[np.ndarray, np.ndarray], verbose: int,
                 hook: TrainHook) -> tuple[dict, float, dict]:
    """One epoch (0-based ``epoch``): its learning rate, fresh augmented windows, the steps,
    ``hook.epoch_end`` and validation.  Returns its history row, how many seconds it took and
    the hook's checkpoint entries."""
    from tfdenoise.train import learning_rate_at

    train_step, eval_step = steps
    t0 = time.time()
    lr = learning_rate_at(config, epoch)
    optimizer.learning_rate.assign(lr)
    x_tr, y_ep = make_windows(np.random.default_rng([config.seed, epoch]))
    if verbose:
        print(f"epoch {epoch + 1}/{config.epochs} (lr {lr:.3g}, {len(y_ep)} windows)")
    loss, accuracy = _fit_epoch(train_step, x_tr, y_ep, config.batch, verbose)
    extra = hook.epoch_end()
    val_loss, val_acc = _validate(eval_step, *valid, 256)
    seconds = time.time() - t0
    return {"epoch": epoch + 1, "loss": loss, "accuracy": accuracy, "val_loss": val_loss,
            "val_accuracy": val_acc, "lr": lr, "windows": int(len(y_ep)),
            "seconds": round(seconds, 1)}, seconds, extra


def _checkpoint_meta(task: Task, config: KwsTrainConfig, state: RunState, run_config: dict) -> dict:
    """What a checkpoint's ``config.json`` says besides the network: task, split, progress."""
    return {"task": "digits" if task.keywords is None else "keywords",
            "keywords": list(task.keywords) if task.keywords else None, "split": config.split,
            "epoch": state.history[-1]["epoch"], "best_val_accuracy": state.best[0],
            "best_val_loss": -state.best[1], "train_seconds": round(state.seconds, 1),
            "training": run_config, "metrics": state.history[-1]}


def _build_network(config: KwsTrainConfig, spec: KwsSpec, task: Task, n_train: int, hook: TrainHook,
                   saved: dict | None, resume: bool, verbose: int) -> tuple[KwsModel, object, RunState, tuple]:
    """The network (``hook.units`` wide), its Adam optimizer (built, so that ``OUT/last``'s state
    loads into it), where the run stands (``OUT/last``'s weights and progress with ``resume``)
    and the compiled ``(train_step, eval_step)`` of the network ``hook.start`` returns."""
    from tfdenoise.keras import keras

    model = KwsModel(spec.name, labels=task.labels, seed=config.seed, units=hook.units)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    net = logits_model(model)
    optimizer.build(net.trainable_variables)
    state = _resume(model, optimizer, Path(config.out), saved, verbose) if resume else RunState()
    steps = -(-epoch_size(config, task, n_train) // config.batch)
    net = hook.start(net, steps, config.epochs, saved)
    return model, optimizer, state, _loss_and_steps(net, spec.input_shape, optimizer)


def train_kws(config: KwsTrainConfig, resume: bool = False, verbose: int = 1,
              hook: TrainHook | None = None) -> Path:
    """Train ``config.model``; returns the folder of the best checkpoint (``OUT/best``).
    ``hook`` changes the network and what is trained (:class:`tfdenoise.train.TrainHook`).

    Bad settings and inputs (ranges, an empty or unknown-layout folder, a keyword not in
    the data, a split speaker not in it, a run to resume that holds another network) fail
    with one line before any folder is created or TensorFlow is imported."""
    task, train, valid, _ = prepare(config)
    spec = get_spec(config.model)
    out = Path(config.out)
    saved, cache = _open_run(config, task, resume)
    # Decoding reads every file before anything is written: a bad clip fails with nothing made.
    signals_tr = data.load_clips(train, cache)
    signals_va = data.load_clips(valid, cache)
    noise = mixtures.load_corpus(config.noise, cache, progress=verbose > 0) if config.noise else None

    from tfdenoise.train import _save_optimizer

    hook = hook or TrainHook()
    out.mkdir(parents=True, exist_ok=True)
    cfg = spec.features
    y_tr = task.targets(train)
    valid_set = validation_set(signals_va, task.targets(valid), task, config, noise, cfg)
    model, optimizer, state, (train_step, eval_step) = _build_network(
        config, spec, task, len(train), hook, saved, resume, verbose)
    run_config = config.to_json()
    write_json(out / CONFIG_FILE, run_config)
    if verbose:
        print(f"{spec.name.value}: {len(train)} training clips, {len(valid)} validation clips, "
              f"classes {', '.join(task.labels)}; noise: "
              + (f"{noise.seconds / 3600:.2f} h" if noise is not None else "none"))

    def make_windows(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return epoch_windows(signals_tr, y_tr, task, config, cfg, noise, rng)

    for epoch in range(state.epoch, config.epochs):
        row, seconds, extra = _train_epoch(epoch, config, optimizer, (train_step, eval_step), make_windows,
                                           valid_set, verbose, hook)
        state.seconds += seconds
        state.history.append(row)
        score = (row["val_accuracy"], -row["val_loss"])
        improved = score > state.best and hook.at_target()
        state.best = max(state.best, score) if hook.at_target() else state.best
        meta = {**_checkpoint_meta(task, config, state, run_config), **extra}
        if improved:
            save_kws_checkpoint(model, out / "best", meta)
        save_kws_checkpoint(model, out / "last", meta,  # the resume point, with the optimizer
                            extra_writer=lambda folder: _save_optimizer(optimizer, folder))
        write_json(out / "history.json", state.history)
        if verbose:
            print(f"  loss={row['loss']:.4f} accuracy={row['accuracy']:.4f} val_loss={row['val_loss']:.4f} "
                  f"val_accuracy={row['val_accuracy']:.4f} ({seconds:.1f} s)" + ("  [best]" if improved else ""))
    if not (out / "best").exists():  # resumed a run that was already complete
        shutil.copytree(out / "last", out / "best", ignore=shutil.ignore_patterns("optimizer"))
    return out / "best"
