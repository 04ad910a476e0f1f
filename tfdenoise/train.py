"""Training (docs/design.md §3): waveform L1 + multi-resolution STFT loss, Adam 3e-4, batch 64.

The network sees STFT magnitudes and predicts gains; the training graph applies the gains
to the complex noisy spectrum and rebuilds the waveform (``tf_istft``), so the loss is
computed on audio exactly as inference produces it.

Run folder (every write is temp-then-rename, so ``kill -9`` loses at most the running epoch)::

    OUT/last/   config.json, weights.h5, optimizer/   after every epoch (resume point)
                (+ raw_weights.h5 with --ema)          (--ema: weights.h5 is the moving average,
                                                       raw_weights.h5 what trains: tfdenoise/ema.py)
    OUT/best/   config.json, weights.h5                best validation score so far (val_loss,
                                                       or PESQ on held-out mixtures: --valid-pesq)
    OUT/history.json                                   per-epoch metrics
    OUT/cache/                                         decoded corpora (int16 .npz; --cache DIR)

Training runs on one device (TensorFlow places it on the first GPU when there is one), on all
GPUs with MirroredStrategy when there are several, or on several workers with
MultiWorkerMirroredStrategy when TF_CONFIG names them (tfdenoise/distribute.py).

Steps run as ``tf.function``\ s with a fixed ``[batch, samples]`` signature rather than
``Model.fit``: on the 2-core CPU machine ``fit`` took 1.6 s per LSTM128 step of 32 x 1 s and
the compiled step 0.78 s (same graph; ``fit`` relaxes shapes and adds per-step overhead).
The training mixtures may be augmented (tfdenoise/augment.py), the held-out ones never.
"""
from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from tfdenoise import SAMPLE_RATE, ema, mixtures
from tfdenoise.errors import InputError, ModelError
from tfdenoise.fileio import check_outputs, write_json
from tfdenoise.distribute import DEFAULT_TIMEOUT_S, cluster_from_env, make_strategy, shard_seed
from tfdenoise.losses import LossWeights
from tfdenoise.models import CONFIG_FILE, TinyDenoiser, get_variant, read_config, save_checkpoint
from tfdenoise.selection import (VALID_PESQ_SECONDS, VALID_PESQ_SEED, VALID_PESQ_SNR_DB,  # noqa: F401 (re-exported:
                                 _load_pairs, _validation_scores, heldout_scores, net_mask,  # noqa: F401 tools, tests)
                                 pesq_validation_set, selection_score_name, split_corpora)
from tfdenoise.train_config import TrainConfig, check_resumable


class TrainHook:
    """A change to a training loop, given to :func:`train` or
    :func:`tfdenoise.kws.train.train_kws` (fine-tuning under pruning: :mod:`tfdenoise.prune`).
    This base class is plain training.

    Both trainers build the network with :attr:`units` (None: as configured), load ``last/``
    into it when resuming, then train the Keras model :meth:`start` returns (it must share the
    network's weights); after each epoch's steps they call :meth:`epoch_end` and add what it
    returns to both checkpoints' ``config.json``, and an epoch is a candidate for ``best/`` only
    while :meth:`at_target` holds.
    """

    #: the network's shape: RNN units of a denoiser, ``{layer: units}`` of a KWS network
    units: int | dict[str, int] | None = None

    def start(self, model, steps_per_epoch: int, epochs: int, resumed: dict | None):
        """The Keras model the steps train, given the network's (``model``); ``resumed`` is
        ``last/config.json`` when resuming, else None."""
        return model

    def epoch_end(self) -> dict:
        """Entries for the checkpoints' ``config.json`` after an epoch's steps."""
        return {}

    def at_target(self) -> bool:
        """Whether the network is what the run is meant to produce (may become ``best/``)."""
        return True


def waveform_enhancer(denoiser: TinyDenoiser, length: int, weights: LossWeights = LossWeights(),
                      net=None):
    """Keras training wrapper: noisy waveform -> masked STFT -> iSTFT -> enhanced waveform,
    trained on ``losses.enhancement_loss`` with ``weights``; ``net`` is the Keras model of the
    gains (default ``denoiser.sequence``; a :class:`TrainHook` may give one sharing its weights).

    Built inside a function so that importing this module does not import TensorFlow.
    """
    from tfdenoise.keras import keras, tf
    from tfdenoise.losses import enhancement_loss
    from tfdenoise.stft import tf_istft, tf_stft

    class _Enhancer(keras.Model):
        def __init__(self) -> None:
            super().__init__(name=f"{denoiser.variant.name}_enhancer")
            self.net = denoiser.sequence if net is None else net
            self.tracker = {k: keras.metrics.Mean(name=k) for k in ("loss", "l1", "sc", "mag", "comp")}

        @property
        def metrics(self):
            return list(self.tracker.values())

        def call(self, noisy, training=False):
            spec = tf_stft(noisy)
            gains = self.net(tf.abs(spec), training=training)
            return tf_istft(spec * tf.complex(gains, tf.zeros_like(gains)), length)

        def _update(self, clean, enhanced):
            loss, parts = enhancement_loss(clean, enhanced, weights)
            for k, v in {"loss": loss, **parts}.items():
                self.tracker[k].update_state(v)
            return loss

        def train_step(self, data):
            noisy, clean = data
            replicas = tf.distribute.get_strategy().num_replicas_in_sync  # 1 in one process
            with tf.GradientTape() as tape:
                loss = self._update(clean, self(noisy, training=True)) / replicas
            grads = tape.gradient(loss, self.net.trainable_variables)  # summed across replicas
            self.optimizer.apply_gradients(zip(grads, self.net.trainable_variables))
            return {k: m.result() for k, m in self.tracker.items()}

        def test_step(self, data):
            noisy, clean = data
            self._update(clean, self(noisy, training=False))
            return {k: m.result() for k, m in self.tracker.items()}

    return _Enhancer()


def learning_rate_at(config: TrainConfig, epoch: int) -> float:
    """Learning rate of (0-based) ``epoch``: log-linear from the first to the final rate (equal
    by default: constant), a function of the epoch index, so that a resumed run gets the rate
    the uninterrupted one would have had."""
    final = config.final_learning_rate or config.learning_rate
    if config.epochs <= 1:
        return config.learning_rate
    return float(config.learning_rate * (final / config.learning_rate) ** (epoch / (config.epochs - 1)))


def _compiled_steps(model, batch: int, length: int, strategy=None, average: ema.WeightAverage | None = None):
    """(train_step, test_step) as tf.functions over a fixed ``[batch, length]`` signature, run
    on every replica of ``strategy`` (default: TensorFlow's current one) with the metrics
    averaged across replicas; ``average`` (--ema) is updated after every train step, in
    cross-replica context."""
    from tfdenoise.keras import tf

    strategy = strategy or tf.distribute.get_strategy()
    spec = tf.TensorSpec((batch, length), tf.float32)

    def on_replicas(fn, after=None):
        def step(noisy, clean):
            logs = strategy.run(fn, args=((noisy, clean),))
            if after is not None:
                after()
            return {k: strategy.reduce(tf.distribute.ReduceOp.MEAN, v, axis=None) for k, v in logs.items()}
        return tf.function(step, input_signature=[spec, spec])

    return on_replicas(model.train_step, average.update if average else None), on_replicas(model.test_step)


def _run_epoch(step, model, dataset, steps: int, verbose: int, prefix: str = "") -> dict:
    """Run ``step`` over numpy ``(noisy, clean)`` batches; mean metrics named with ``prefix``."""
    from tfdenoise.keras import keras, tf

    for m in model.metrics:
        m.reset_state()
    bar = keras.utils.Progbar(steps, stateful_metrics=[m.name for m in model.metrics]) if verbose else None
    logs: dict = {}
    for i, (noisy, clean) in enumerate(dataset):
        logs = step(tf.constant(noisy), tf.constant(clean))
        if bar:
            bar.update(i + 1, [(k, float(v)) for k, v in logs.items()])
    return {prefix + k: float(v) for k, v in logs.items()}


def _save_optimizer(optimizer, folder: Path) -> None:
    from tfdenoise.keras import tf

    tf.train.Checkpoint(optimizer=optimizer).write(str(folder / "optimizer" / "state"))


def _restore_optimizer(optimizer, folder: Path) -> None:
    from tfdenoise.keras import tf

    if (folder / "optimizer").is_dir():
        tf.train.Checkpoint(optimizer=optimizer).read(str(folder / "optimizer" / "state")).expect_partial()


def _build(config: TrainConfig, variant, hook: TrainHook, state: dict | None, last: Path, strategy,
           steps: int, length: int):
    """(denoiser, the network the steps train, the Keras training model, the weight average or
    None) built inside ``strategy``'s scope (variables mirrored on every replica / worker);
    weights, optimizer state and average from ``last/`` when ``state`` (its config.json) is
    given (tfdenoise/ema.py: which weights file trains on)."""
    from tfdenoise.keras import keras

    with strategy.scope():
        denoiser = TinyDenoiser(variant, seed=config.seed)
        start = ema.restore(denoiser.sequence, last, bool(config.ema)) if state is not None else None
        net = hook.start(denoiser.sequence, steps, config.epochs, state)
        weights = LossWeights(mag=config.mag_loss, compressed=config.compressed_loss)
        model = waveform_enhancer(denoiser, length, weights, net)
        model.compile(optimizer=keras.optimizers.Adam(config.learning_rate))
        model.optimizer.build(net.trainable_variables)
        if state is not None:
            _restore_optimizer(model.optimizer, last)
        average = ema.WeightAverage(net, config.ema, start) if config.ema else None
    return denoiser, net, model, average


def _save_epoch(cluster, out: Path, writer: TinyDenoiser, optimizer, meta: dict, improved: bool,
                history: list[dict], raw: list | None = None) -> None:
    """The chief writes best/ (when improved), last/ (with the optimizer, and ``raw``, the raw
    weights, when the writer holds averaged ones: --ema) and history.json; any other worker
    only its copy of the weights, OUT/workers/<index>/ (a consistency check)."""
    if not cluster.is_chief:
        save_checkpoint(writer, out / "workers" / str(cluster.index), meta)
        return
    if improved:
        save_checkpoint(writer, out / "best", meta)

    def extra(folder: Path) -> None:
        _save_optimizer(optimizer, folder)
        if raw is not None:
            ema.write_raw(writer.sequence, raw, folder)

    save_checkpoint(writer, out / "last", meta, extra_writer=extra)
    write_json(out / "history.json", history)


def _check_run(config: TrainConfig, cluster, hook: TrainHook | None, resume: bool):
    """The network :func:`train` trains (``hook.units`` may shrink it), after everything it
    refuses before it reads data or imports TensorFlow."""
    config.check()
    variant = get_variant(config.variant)
    if hook is not None and hook.units is not None:
        variant = replace(variant, units=int(hook.units))
    if cluster.distributed and hook is not None:
        raise InputError("pruning / QAT fine-tuning runs on one worker: unset TF_CONFIG")
    if config.ema and hook is not None:
        raise InputError("--ema: not available with pruning / QAT fine-tuning (their hooks change "
                         "the network that trains)")
    out = Path(config.out)
    if not resume and (out / "last").exists():
        raise InputError("already holds a training run; pass --resume to continue it "
                         "or choose another --out", out)
    if resume and not (out / "last").exists():
        raise ModelError("nothing to resume (no last/ checkpoint)", out)
    if resume:
        check_resumable(config, variant)
    reads = [p for p in (config.speech, config.noise, config.valid_pairs) if p]
    check_outputs(folders=[out] + ([config.cache_dir] if config.cache_dir else []),
                  input_trees=reads)
    return variant


#: history-row keys copied from the run's config: what each epoch trained on (tools/ship_model.py)
ROW_OPTIONS = ("snr_db", "snr_level", "noise_exclude", "synthetic_noise", "min_clean_snr", "compressed_loss",
               "mag_loss")


def _row_options(config: TrainConfig, run_config: dict) -> dict:
    """The options of an epoch's history row; augmentation and --ema only when on (a row
    without them trained without)."""
    return {**{k: run_config[k] for k in ROW_OPTIONS}, **config.augmentation.record(),
            **({"ema": config.ema} if config.ema else {})}


@dataclass
class _Progress:
    """Where a run stands: the (0-based) epoch it starts at, the best selection score so far
    (lower is better), the training seconds and the per-epoch history rows."""

    epoch: int = 0
    best_score: float = np.inf
    elapsed: float = 0.0
    history: list[dict] = field(default_factory=list)

    @classmethod
    def resumed(cls, state: dict | None, out: Path, score_name: str, verbose: int) -> _Progress:
        """A new run's (``state`` None) or the one ``last/config.json`` (``state``) and
        OUT/history.json record; a changed selection metric restarts the best score."""
        if state is None:
            return cls()
        progress = cls(int(state["epoch"]), float(state["best_score"]), float(state.get("train_seconds", 0.0)))
        if state.get("score_name", "val_loss") != score_name:  # selection metric changed
            progress.best_score = np.inf
        if (out / "history.json").exists():
            progress.history = json.loads((out / "history.json").read_text())
        if verbose:
            print(f"resuming {out} after epoch {progress.epoch} (best valid score {progress.best_score:.4f})")
        return progress

    def record(self, row: dict, score: float, t0: float, hook: TrainHook) -> bool:
        """Add an epoch that started at ``t0`` (its seconds go in ``row``) and scored ``score``;
        returns whether it is the new best (a candidate only while ``hook.at_target()``)."""
        self.elapsed += time.time() - t0
        row["seconds"] = round(time.time() - t0, 1)
        self.history.append(row)
        improved = score < self.best_score and hook.at_target()
        self.best_score = min(self.best_score, score) if hook.at_target() else self.best_score
        return improved


def _score_epoch(row: dict, scored, pairs_valid: list, pesq_valid: list) -> float:
    """Add the held-out quality scores of the mask function ``scored`` to ``row`` (--valid-pairs:
    ``val_*``, --valid-pesq: ``val_mix_*``); returns the selection score (lower is better:
    minus the mixtures' PESQ with --valid-pesq, else the validation loss)."""
    if pairs_valid:
        row.update({f"val_{k}": v for k, v in _validation_scores(scored, pairs_valid).items()})
    if pesq_valid:
        row.update({f"val_mix_{k}": v for k, v in _validation_scores(scored, pesq_valid).items()})
    return -row["val_mix_pesq"] if pesq_valid else row["val_loss"]


def _steps_per_epoch(config: TrainConfig, speech_tr, noise_tr, speech_va, verbose: int) -> int:
    """Steps of ``config.batch`` segments per epoch (``--segments-per-epoch``, or as many
    segments as the training speech has seconds), said when ``verbose``."""
    seg = config.segment_seconds
    per_epoch = config.segments_per_epoch or max(config.batch, int(speech_tr.seconds / seg))
    steps = -(-per_epoch // config.batch)
    if verbose:
        print(f"speech: {speech_tr.seconds / 3600:.2f} h train, {speech_va.seconds / 60:.1f} min valid;"
              f" noise: {noise_tr.seconds / 3600:.2f} h train; {per_epoch} segments of {seg} s"
              f" per epoch ({steps} steps of {config.batch})")
    return steps


def _heldout_sets(config: TrainConfig, cluster, speech_va, noise_va) -> tuple[list, int, list, list]:
    """(validation-loss batches, their count, --valid-pairs pairs, --valid-pesq mixtures), all
    made with the run's held-out mixing (never augmented); the PESQ sets on the chief only."""
    count = max(1, config.valid_segments // config.batch)
    valid = list(mixtures.batches(speech_va, noise_va, count * config.batch, config.segment_seconds,
                                  config.batch, seed=10**6 + config.seed, mixing=config.mixing))
    pairs = _load_pairs(config.valid_pairs) if config.valid_pairs and cluster.is_chief else []
    pesq = pesq_validation_set(speech_va, noise_va, config.valid_pesq if cluster.is_chief else 0,
                               seed=VALID_PESQ_SEED + config.seed, mixing=config.mixing)
    return valid, count, pairs, pesq


def _print_row(row: dict, improved: bool) -> None:
    print("  " + "  ".join(f"{k}={v:.4g}" for k, v in row.items() if k != "epoch" and isinstance(v, (int, float)))
          + ("  [best]" if improved else ""))


def train(config: TrainConfig, resume: bool = False, verbose: int = 1, hook: TrainHook | None = None,
          worker_timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Train ``config.variant``; returns the folder of the best checkpoint.  ``hook`` changes
    the network and what is trained (:class:`TrainHook`; pruning's fine-tuning).  Runs on
    several workers when TF_CONFIG names them (tfdenoise/distribute.py; a collective waits
    ``worker_timeout_s`` for a lost worker).

    Bad settings fail (:meth:`TrainConfig.check`, :func:`check_resumable`) before any
    data is read, any folder is created or TensorFlow is imported."""
    cluster = cluster_from_env()
    variant = _check_run(config, cluster, hook, resume)
    hook = hook or TrainHook()
    out = Path(config.out)
    last, best = out / "last", out / "best"
    out.mkdir(parents=True, exist_ok=True)
    speech_tr, speech_va, noise_tr, noise_va = split_corpora(config, verbose)
    seg, steps = config.segment_seconds, _steps_per_epoch(config, speech_tr, noise_tr, speech_va, verbose)
    score_name = selection_score_name(config)
    length = int(seg * SAMPLE_RATE)
    state = read_config(last) if resume else None
    strategy = make_strategy(cluster, worker_timeout_s)
    denoiser, net, model, average = _build(config, variant, hook, state, last, strategy, steps, length)
    # several workers: BatchNorm statistics are synchronised on read, so every worker reads the
    # weights once per epoch (the same collective) into a plain copy that is scored and saved
    writer = TinyDenoiser(variant, seed=config.seed) if cluster.distributed else denoiser
    scored = writer.offline_mask if net is denoiser.sequence else net_mask(net)  # what trains
    progress = _Progress.resumed(state, out, score_name, verbose)

    valid, valid_batches, pairs_valid, pesq_valid = _heldout_sets(config, cluster, speech_va, noise_va)
    run_config = {**asdict(config), "snr_db": list(config.snr_db), "noise_exclude": list(config.noise_exclude)}
    if cluster.is_chief:
        write_json(out / CONFIG_FILE, run_config)
    train_step, test_step = _compiled_steps(model, config.batch, length, strategy, average)

    for epoch in range(progress.epoch, config.epochs):
        t0 = time.time()
        lr = learning_rate_at(config, epoch)
        model.optimizer.learning_rate.assign(lr)
        ds = mixtures.batches(speech_tr, noise_tr, steps * config.batch, seg, config.batch,
                              seed=shard_seed(config.seed * 100_003 + epoch, cluster), mixing=config.train_mixing)
        if verbose:
            print(f"epoch {epoch + 1}/{config.epochs} (lr {lr:.3g})")
        row = {"epoch": epoch + 1, **_run_epoch(train_step, model, ds, steps, verbose)}
        extra = hook.epoch_end()
        with ema.averaged(average) as raw:  # --ema: validated, scored and saved as averaged
            row = {**row, **_run_epoch(test_step, model, valid, valid_batches, 0, prefix="val_"),
                   "lr": lr, "segments": steps * config.batch, "segment_s": seg, **_row_options(config, run_config)}
            if writer is not denoiser:
                writer.sequence.set_weights(denoiser.sequence.get_weights())
            improved = progress.record(row, _score_epoch(row, scored, pairs_valid, pesq_valid), t0, hook)
            meta = {"epoch": epoch + 1, "best_score": progress.best_score, "score_name": score_name,
                    "train_seconds": round(progress.elapsed, 1), "training": run_config, "metrics": row, **extra}
            _save_epoch(cluster, out, writer, model.optimizer, meta, improved, progress.history, raw)
        if verbose and cluster.is_chief:
            _print_row(row, improved)
    if cluster.is_chief and not best.exists():  # resumed a run that was already complete
        shutil.copytree(last, best)
    return best
