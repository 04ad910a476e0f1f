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
log-linear from ``--lr`` to ``--lr-final`` (:func:`tfdenoise.train.learning_rate_at`, so a
resumed run gets the rate the uninterrupted one would have had).  Validation each epoch: the
held-out clips, centred in the window without noise (as :func:`tfdenoise.kws.evaluate.accuracy`
scores the test split), plus, for a keyword task, a fixed set of silence windows.

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
import math
import numbers
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tfdenoise import mixtures
from tfdenoise.errors import InputError, ModelError
from tfdenoise.fileio import check_outputs, write_json
from tfdenoise.kws import data
from tfdenoise.kws.data import Clip, Task
from tfdenoise.kws.features import FeatureConfig, features
from tfdenoise.kws.models import KwsModel, get_spec, read_kws_config, save_kws_checkpoint
from tfdenoise.models import CONFIG_FILE

DATASET_SPLIT = "dataset"
SPEAKER_PREFIX = "speaker:"
VALID_SEED = 7_919  # + the run's seed: the fixed silence windows of the validation set


@dataclass(frozen=True)
class KwsTrainConfig:
    """Everything that defines a KWS training run (saved as ``OUT/config.json``)."""

    model: str
    data: str
    out: str
    noise: str | None = None          # folder of noise recordings; None: no noise mixed in
    epochs: int = 30
    batch: int = 64
    learning_rate: float = 1e-3
    final_learning_rate: float | None = None  # None: constant learning_rate
    keywords: tuple[str, ...] | None = None   # None: every label is a class (the 10 digits)
    split: str = DATASET_SPLIT        # "dataset" (indices 0-4 = test) or "speaker:<name>"
    snr_db: tuple[float, float] = (0.0, 20.0)
    noise_prob: float = 0.8           # share of windows that get noise (when there is --noise)
    shift_seconds: float = 0.1
    gain_db: tuple[float, float] = (-10.0, 10.0)
    silence_share: float = 0.25       # keyword task: extra noise-only windows, share of the clips
    partial_share: float = 0.25       # keyword task: extra windows of a cut-off word (_unknown_)
    seed: int = 0
    windows_per_epoch: int = 0        # 0: one window per training clip
    valid_fraction: float = 0.1
    cache_dir: str | None = None      # decoded-audio cache; None: OUT/cache; "" disables it

    def check(self) -> None:
        """Raise a one-line :class:`InputError` naming the CLI option of the first value out
        of range; reads no data and touches no file."""
        def integer(option: str, value, low: int) -> None:
            if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
                raise InputError(f"{option} must be an integer >= {low}, got {value}")

        def number(option: str, value, ok, wanted: str) -> None:
            if (isinstance(value, bool) or not isinstance(value, numbers.Real)
                    or not math.isfinite(value) or not ok(value)):
                raise InputError(f"{option} must be {wanted}, got {value}")

        def pair(option: str, value, wanted: str) -> None:
            if (not isinstance(value, (tuple, list)) or len(value) != 2
                    or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                               and math.isfinite(v) for v in value) or value[0] > value[1]):
                shown = " ".join(map(str, value)) if isinstance(value, (tuple, list)) else value
                raise InputError(f"{option} must be two finite numbers LO HI ({wanted}) with LO <= HI, got {shown}")

        try:
            get_spec(self.model)
        except InputError as exc:
            raise InputError(f"--model: {exc}") from None
        integer("--epochs", self.epochs, 1)
        integer("--batch", self.batch, 1)
        number("--lr", self.learning_rate, lambda v: 0 < v <= 1, "a number in (0, 1]")
        if self.final_learning_rate is not None:
            number("--lr-final", self.final_learning_rate, lambda v: 0 < v <= 1, "a number in (0, 1]")
        if self.keywords is not None:
            if not self.keywords:
                raise InputError("--keywords needs at least one keyword (leave it out for the all-labels task)")
            for k in self.keywords:
                if not isinstance(k, str) or not k or k != k.strip():
                    raise InputError(f"--keywords: {k!r} is not a label name")
                if k in (data.UNKNOWN, data.SILENCE):
                    raise InputError(f"--keywords: {k!r} is a reserved class name")
            if len(set(self.keywords)) != len(self.keywords):
                raise InputError(f"--keywords repeat: {' '.join(self.keywords)}")
        split_speaker(self.split)
        pair("--snr", self.snr_db, "dB")
        number("--noise-prob", self.noise_prob, lambda v: 0 <= v <= 1, "a share in [0, 1]")
        number("--shift", self.shift_seconds, lambda v: 0 <= v <= 1, "seconds in [0, 1]")
        pair("--gain", self.gain_db, "dB")
        number("--silence-share", self.silence_share, lambda v: 0 <= v <= 1, "a share in [0, 1]")
        number("--partial-share", self.partial_share, lambda v: 0 <= v <= 1, "a share in [0, 1]")
        integer("--seed", self.seed, 0)
        integer("--windows-per-epoch", self.windows_per_epoch, 0)
        number("--valid-fraction", self.valid_fraction, lambda v: 0 < v < 1,
               "a share strictly between 0 and 1")

    def to_json(self) -> dict:
        out = asdict(self)
        for k in ("keywords", "snr_db", "gain_db"):
            if out[k] is not None:
                out[k] = list(out[k])
        return out


def split_speaker(split: str) -> str | None:
    """The held-out speaker of ``split`` (``speaker:<name>``), None for the dataset split;
    a one-line :class:`InputError` naming ``--split`` for anything else."""
    if split == DATASET_SPLIT:
        return None
    if isinstance(split, str) and split.startswith(SPEAKER_PREFIX) and split[len(SPEAKER_PREFIX):].strip():
        return split[len(SPEAKER_PREFIX):].strip()
    raise InputError(f"--split must be '{DATASET_SPLIT}' or '{SPEAKER_PREFIX}<name>', got {split!r}")


def make_task(clips: Sequence[Clip], keywords: Sequence[str] | None) -> Task:
    """The digits (all-labels) task, or a keyword task (unknown keywords: one InputError line
    naming ``--keywords``)."""
    if keywords is None:
        return data.digits_task(clips)
    try:
        return data.keyword_task(clips, keywords)
    except InputError as exc:
        raise InputError(f"--keywords: {exc}") from None


def split_clips(clips: Sequence[Clip], split: str, valid_fraction: float = 0.1,
                seed: int = 0) -> tuple[list[Clip], list[Clip], list[Clip]]:
    """(train, valid, test) of ``split`` (:func:`split_speaker`)."""
    speaker = split_speaker(split)
    try:
        if speaker is None:
            return data.dataset_split(clips, valid_fraction, seed)
        return data.leave_one_speaker_out(clips, speaker, valid_fraction, seed)
    except InputError as exc:
        raise InputError(f"--split {split}: {exc}") from None


def task_of(config: dict) -> Task:
    """The :class:`Task` a KWS checkpoint's ``config.json`` was trained on."""
    keywords = config.get("keywords")
    return Task(tuple(config["labels"]), tuple(keywords) if keywords else None)


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


def _replace_folder(staged: Path, dest: Path) -> None:
    """Rename the finished folder ``staged`` onto ``dest`` (old content kept until the swap)."""
    old = dest.with_name(f".{dest.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if dest.exists():
        os.replace(dest, old)
    os.replace(staged, dest)
    if old.exists():
        shutil.rmtree(old)


def _save_last(model: KwsModel, optimizer, out: Path, meta: dict) -> None:
    """``OUT/last`` with the optimizer state, atomically: a complete staged checkpoint
    (:func:`save_kws_checkpoint` is atomic itself) gets its optimizer state, then is renamed."""
    from tfdenoise.train import _save_optimizer

    staged = out / ".last.staged"
    if staged.exists():
        shutil.rmtree(staged)
    try:
        save_kws_checkpoint(model, staged, meta)
        _save_optimizer(optimizer, staged)
        _replace_folder(staged, out / "last")
    finally:
        if staged.exists():
            shutil.rmtree(staged)


def check_resumable(config: KwsTrainConfig, task: Task) -> dict:
    """``OUT/last``'s config, or a one-line error when it holds another network or task."""
    out = Path(config.out)
    saved = read_kws_config(out / "last")
    new = get_spec(config.model).name.value
    if saved["name"] != new:
        raise InputError(f"run {out} was trained as {saved['name']}; --model {new} cannot resume it")
    if tuple(saved["labels"]) != task.labels:
        raise InputError(f"run {out} was trained on the classes {', '.join(saved['labels'])}; "
                         f"this data and --keywords give {', '.join(task.labels)}")
    return saved


def _loss_and_steps(model: KwsModel, optimizer):
    """(train_step, eval_step) tf.functions: sparse cross-entropy on the logits."""
    from tfdenoise.keras import keras, tf

    logits_model = keras.Model(model.model.input, model.model.get_layer("logits").output)
    xent = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    spec = [tf.TensorSpec((None, *model.spec.input_shape), tf.float32), tf.TensorSpec((None,), tf.int32)]

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

    return logits_model, train_step, eval_step


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


def train_kws(config: KwsTrainConfig, resume: bool = False, verbose: int = 1) -> Path:
    """Train ``config.model``; returns the folder of the best checkpoint (``OUT/best``).

    Bad settings and inputs (ranges, an empty or unknown-layout folder, a keyword not in
    the data, a split speaker not in it, a run to resume that holds another network) fail
    with one line before any folder is created or TensorFlow is imported."""
    task, train, valid, _ = prepare(config)
    spec = get_spec(config.model)
    out = Path(config.out)
    last, best = out / "last", out / "best"
    if not resume and last.exists():
        raise InputError("already holds a training run; pass --resume to continue it "
                         "or choose another --out", out)
    if resume and not last.exists():
        raise ModelError("nothing to resume (no last/ checkpoint)", out)
    saved = check_resumable(config, task) if resume else None
    cache = out / "cache" if config.cache_dir is None else (Path(config.cache_dir) if config.cache_dir else None)
    reads = [config.data] + ([config.noise] if config.noise else [])
    check_outputs(folders=[out] + ([cache] if cache else []), input_trees=reads)

    # Decoding reads every file before anything is written: a bad clip fails with nothing made.
    signals_tr = data.load_clips(train, cache)
    signals_va = data.load_clips(valid, cache)
    noise = mixtures.load_corpus(config.noise, cache, progress=verbose > 0) if config.noise else None

    from tfdenoise.keras import keras
    from tfdenoise.train import _restore_optimizer, learning_rate_at

    out.mkdir(parents=True, exist_ok=True)
    cfg = spec.features
    y_tr = task.targets(train)
    x_va, y_va = centred_windows(signals_va, cfg), task.targets(valid)
    if task.keywords is not None:
        rng = np.random.default_rng(VALID_SEED + config.seed)
        k = max(1, int(round(config.silence_share * len(valid))))
        sil = feature_windows([data.silence_window(rng, noise, cfg.window_samples) for _ in range(k)], cfg)
        x_va = np.concatenate([x_va, sil])
        y_va = np.concatenate([y_va, np.full(k, task.target(data.SILENCE), np.int32)])

    model = KwsModel(spec.name, labels=task.labels, seed=config.seed)
    optimizer = keras.optimizers.Adam(config.learning_rate)
    logits_model, train_step, eval_step = _loss_and_steps(model, optimizer)
    optimizer.build(logits_model.trainable_variables)
    history: list[dict] = []
    start_epoch, best_score, elapsed = 0, (-np.inf, -np.inf), 0.0
    if resume:
        model.model.load_weights(str(last / "weights.h5"))
        _restore_optimizer(optimizer, last)
        start_epoch, elapsed = int(saved["epoch"]), float(saved.get("train_seconds", 0.0))
        best_score = (float(saved["best_val_accuracy"]), -float(saved["best_val_loss"]))
        if (out / "history.json").is_file():
            history = json.loads((out / "history.json").read_text())[:start_epoch]
        if verbose:
            print(f"resuming {out} after epoch {start_epoch} "
                  f"(best val_accuracy {best_score[0]:.4f})")
    run_config = config.to_json()
    write_json(out / CONFIG_FILE, run_config)
    if verbose:
        print(f"{spec.name.value}: {len(train)} training clips, {len(valid)} validation clips, "
              f"classes {', '.join(task.labels)}; noise: "
              + (f"{noise.seconds / 3600:.2f} h" if noise is not None else "none"))

    for epoch in range(start_epoch, config.epochs):
        t0 = time.time()
        lr = learning_rate_at(config, epoch)
        optimizer.learning_rate.assign(lr)
        rng = np.random.default_rng([config.seed, epoch])
        x_tr, y_ep = epoch_windows(signals_tr, y_tr, task, config, cfg, noise, rng)
        steps = -(-len(y_ep) // config.batch)
        if verbose:
            print(f"epoch {epoch + 1}/{config.epochs} (lr {lr:.3g}, {len(y_ep)} windows)")
        bar = keras.utils.Progbar(steps, stateful_metrics=["loss", "accuracy"]) if verbose else None
        loss_sum = hits_sum = 0.0
        for i in range(steps):
            xb, yb = x_tr[i * config.batch:(i + 1) * config.batch], y_ep[i * config.batch:(i + 1) * config.batch]
            loss, hits = train_step(xb, yb)
            loss_sum, hits_sum = loss_sum + float(loss) * len(yb), hits_sum + float(hits) * len(yb)
            if bar:
                seen = min((i + 1) * config.batch, len(y_ep))
                bar.update(i + 1, [("loss", loss_sum / seen), ("accuracy", hits_sum / seen)])
        val_loss, val_acc = _validate(eval_step, x_va, y_va, 256)
        seconds = time.time() - t0
        elapsed += seconds
        row = {"epoch": epoch + 1, "loss": loss_sum / len(y_ep), "accuracy": hits_sum / len(y_ep),
               "val_loss": val_loss, "val_accuracy": val_acc, "lr": lr, "windows": int(len(y_ep)),
               "seconds": round(seconds, 1)}
        history.append(row)
        improved = (val_acc, -val_loss) > best_score
        best_score = max(best_score, (val_acc, -val_loss))
        meta = {"task": "digits" if task.keywords is None else "keywords",
                "keywords": list(task.keywords) if task.keywords else None, "split": config.split,
                "epoch": epoch + 1, "best_val_accuracy": best_score[0], "best_val_loss": -best_score[1],
                "train_seconds": round(elapsed, 1), "training": run_config, "metrics": row}
        if improved:
            save_kws_checkpoint(model, best, meta)
        _save_last(model, optimizer, out, meta)
        write_json(out / "history.json", history)
        if verbose:
            print(f"  loss={row['loss']:.4f} accuracy={row['accuracy']:.4f} val_loss={val_loss:.4f} "
                  f"val_accuracy={val_acc:.4f} ({seconds:.1f} s)" + ("  [best]" if improved else ""))
    if not best.exists():  # resumed a run that was already complete
        shutil.copytree(last, best, ignore=shutil.ignore_patterns("optimizer"))
    return best
