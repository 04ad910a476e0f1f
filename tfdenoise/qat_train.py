"""Two-stage QAT as a change to the training loops (docs/design.md §8): :class:`QatHook`, a
:class:`tfdenoise.train.TrainHook` given to :func:`tfdenoise.train.train` (``tfdenoise train
--qat-bits B``) and :func:`tfdenoise.kws.train.train_kws` (``tfdenoise kws train --qat-bits B``).

At the start the hook loads the starting checkpoint (``--init``: a float checkpoint for stage
1, a QAT checkpoint of the same widths for stage 2; or nothing on ``--resume``, the trainer
has loaded ``last/``), folds the BatchNorms into their kernels and returns the QAT network
(:func:`tfdenoise.qat_layers.qat_network`) that shares the plain network's variables, so the
trainers' checkpoints keep the plain layout and hold the latent weights.  After every epoch
the checkpoints' ``config.json`` gets the ``"qat"`` entry (:func:`~tfdenoise.qat_layers.qat_record`),
from which every loader rebuilds the grid weights (:func:`~tfdenoise.qat_layers.apply_grid`).
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Callable, Sequence

from tfdenoise import qat
from tfdenoise.errors import InputError, ModelError
from tfdenoise.train import TrainHook
from tfdenoise.vocab import RangeKind

CONFIG_FILE, WEIGHTS_FILE = "config.json", "weights.h5"


class QatHook(TrainHook):
    """Stage ``stage`` QAT at ``bits`` (``layer_bits``: ``(pattern, bits)`` overrides), starting
    from the checkpoint folder ``init`` unless the run is resumed; ``symmetric``: stage-2
    activation ranges symmetric (the denoiser's INT8 export) rather than [min, max] (KWS), each
    range a moving average of the batches' ``statistic`` (max, or std3 with symmetric ranges);
    ``ranges="asymmetric"`` (with ``symmetric``): the never-negative input and ReLU outputs on
    ``[0, 2 r]`` (:class:`~tfdenoise.vocab.RangeKind`, as ``tfdenoise export --ranges``);
    ``calib_ranges``: stage 2 sets its ranges to what this function returns (the export's
    calibration of the start checkpoint: :func:`tfdenoise.converters.qat_export.calibrated_act_ranges`)
    and keeps them fixed, so the network trains on the ranges its file will hold."""

    def __init__(self, bits: int, stage: int = 1, layer_bits: Sequence[tuple[str, int]] = (),
                 init: str | os.PathLike | None = None, symmetric: bool = False,
                 statistic: str = "max", latent_init: str | None = None,
                 train_layers: str | None = None, ranges: str | None = None,
                 calib_ranges: Callable[[], dict] | None = None) -> None:
        self.default_bits = qat.check_bits(bits)
        self.stage = qat.check_stage(stage)
        self.layer_bits = tuple(layer_bits)
        self.symmetric = bool(symmetric)  # activation ranges as the export calibrates them
        self.statistic = statistic
        self.ranges = RangeKind(ranges or RangeKind.SYMMETRIC)
        if self.ranges is RangeKind.ASYMMETRIC and not (self.symmetric and self.stage == 2):
            raise InputError("asymmetric activation ranges are for the denoiser's QAT stage 2")
        self.calib_ranges = calib_ranges
        if calib_ranges is not None and not (self.symmetric and self.stage == 2):
            raise InputError("calibrated fixed ranges are for the denoiser's QAT stage 2")
        self.train_layers = qat.check_pattern(train_layers) if train_layers else None
        self.init = None if init is None else Path(init)
        self.init_config = check_init(self.init, self.default_bits, self.stage, self.layer_bits)
        if latent_init is not None and latent_init not in qat.LATENT_INITS:
            raise InputError(f"--qat-latent-init {latent_init!r}: one of {', '.join(qat.LATENT_INITS)}")
        if latent_init is not None and (self.init_config or {}).get("qat"):
            raise InputError("--qat-latent-init applies to a start from float weights; --init "
                             f"{self.init} is a QAT checkpoint (its latent weights carry on)")
        self.latent_init = latent_init or qat.LATENT_INITS[0]
        prev = (self.init_config or {}).get("qat") or {}
        kind = prev.get("act_ranges_kind", RangeKind.SYMMETRIC.value)
        if prev.get("stage") == 2 and kind != self.ranges.value:
            raise InputError(f"--init {self.init}: a stage-2 checkpoint trained with {kind} activation "
                             f"ranges continues with them, not --qat-ranges {self.ranges.value}"
                             + (" (the default)" if self.ranges is RangeKind.SYMMETRIC else ""))
        # computed now, before training sets up its distribution strategy; a fresh start only
        # (a resumed run keeps the ranges it saved)
        self.calibrated = calib_ranges() if calib_ranges is not None and self.init is not None else None
        self.net = self.qnet = None
        self.fixed: list[str] = []
        self.bits: dict[str, int] = {}

    def start(self, model, steps_per_epoch: int, epochs: int, resumed: dict | None):
        from tfdenoise import qat_layers, qat_quantizers

        if resumed is not None:
            check_same_run(resumed.get("qat"), self.default_bits, self.stage, self.layer_bits)
            record = resumed["qat"]   # a dict: check_same_run refuses anything else
            kind = record.get("act_ranges_kind", RangeKind.SYMMETRIC.value)
            if self.stage == 2 and kind != self.ranges.value:
                raise InputError(f"--resume: the run trained {kind} activation ranges, not "
                                 f"--qat-ranges {self.ranges.value}"
                                 + (" (the default)" if self.ranges is RangeKind.SYMMETRIC else "")
                                 + ": pass the run's")
            if bool(record.get("act_ranges_fixed")) != (self.calib_ranges is not None):
                raise InputError("--resume: pass --qat-calib-ranges exactly when the run was started with it")
            trained = record.get("train_layers")
            if trained != self.train_layers:
                raise InputError(f"--resume: the run trained {trained or 'every layer'!r}, not "
                                 f"--qat-train-layers {self.train_layers or '(all)'!r}: pass the run's")
            source = resumed
        elif self.init is not None:
            _load_latent(model, self.init)
            source = self.init_config
        else:
            raise InputError("a --qat-bits run starts from a checkpoint: pass --init CHECKPOINT "
                             "(a float checkpoint for --qat-stage 1) or --resume")
        qat_quantizers.fold_network(model)
        self.net = model
        self.bits = qat_layers.plan_bits(model, self.default_bits, self.layer_bits)
        prev = source.get("qat") if isinstance(source, dict) else None
        if resumed is None and not prev and self.latent_init == "atanh":  # from float weights
            qat_layers.init_latent(model, self.bits)
        self.from_float = self.latent_init if resumed is None and not prev else \
            (prev or {}).get("latent_init", "copy")
        self.qnet = qat_layers.qat_network(model, self.bits, self.stage, self.symmetric, self.statistic,
                                           one_sided=self.ranges is RangeKind.ASYMMETRIC)
        if prev and prev.get("stage") == 2:
            qat_layers.restore_ranges(self.qnet, prev)
        if self.calib_ranges is not None:   # resumed (no calibration): the ranges its start fixed
            self.fixed = qat_layers.fix_ranges(self.qnet, self.calibrated,
                                               names=(prev or {}).get("act_ranges_fixed") or [])
        if self.train_layers:
            qat_layers.freeze_except(self.qnet, self.train_layers)
        return self.qnet

    def epoch_end(self) -> dict:
        from tfdenoise import qat_layers

        record = qat_layers.qat_record(self.net, self.qnet, self.bits, self.stage)
        record["latent_init"] = self.from_float   # how stage 1 started from the float weights
        if self.train_layers:
            record["train_layers"] = self.train_layers
        if self.stage == 2:
            record["act_statistic"] = ("symmetric " if self.symmetric else "") + self.statistic
            if self.symmetric:
                record["act_ranges_kind"] = self.ranges.value
            if self.calib_ranges is not None:
                record["act_ranges_fixed"] = self.fixed   # set from the calibration clips, not trained
        return {"qat": record}


def _load_latent(model, folder: Path) -> None:
    """The weights of checkpoint ``folder`` (float, or a QAT checkpoint's latent weights) into
    the layers of ``model`` with the same names."""
    path = folder / WEIGHTS_FILE
    if not path.is_file():
        raise ModelError(f"checkpoint has no {WEIGHTS_FILE}", folder)
    try:
        model.load_weights(str(path), by_name=True, skip_mismatch=False)
    except Exception as exc:  # h5py / Keras raise many types for bad files
        raise ModelError(f"corrupt or mismatched weights ({str(exc).splitlines()[0][:120]})", path) from exc


def _read(folder: Path) -> dict:
    cfg = folder / CONFIG_FILE
    if not cfg.is_file():
        raise InputError(f"--init: not a checkpoint (no {CONFIG_FILE})", folder)
    try:
        data = json.loads(cfg.read_text())
    except (ValueError, OSError) as exc:
        raise ModelError(f"corrupt {CONFIG_FILE} ({exc})", cfg) from None
    if not isinstance(data, dict):
        raise ModelError(f"{CONFIG_FILE} is not a JSON object", cfg)
    return data


def check_init(init: Path | None, bits: int, stage: int, layer_bits: Sequence[tuple[str, int]]) -> dict | None:
    """The starting checkpoint's config, checked before any work: stage 2 needs a QAT checkpoint
    with the same widths (stage 1's, or a stage-2 one to continue); stage 1 takes a float one
    (or a QAT one, retrained at these widths)."""
    if init is None:
        return None
    config = _read(init)
    prev = config.get("qat")
    if stage == 2:
        if not isinstance(prev, dict):
            raise InputError(f"--qat-stage 2 starts from a stage-1 checkpoint of the same --qat-bits "
                             f"(--init RUN/best of a --qat-stage 1 run); {init} holds float weights")
        check_same_run(prev, bits, None, layer_bits, option="--init")
    return config


def check_same_run(prev: object, bits: int, stage: int | None, layer_bits: Sequence[tuple[str, int]],
                   option: str = "--resume") -> None:
    """One-line :class:`InputError` when a checkpoint's ``"qat"`` entry was trained with other
    weight widths (or, ``stage`` given, another stage) than this run's."""
    if not isinstance(prev, dict):
        raise InputError(f"{option}: the checkpoint was not trained with --qat-bits")
    if stage is not None and prev.get("stage") != stage:
        raise InputError(f"{option}: the checkpoint is QAT stage {prev.get('stage')}, not --qat-stage {stage}")
    want = {name: qat.bits_for(name, bits, layer_bits) for name in (prev.get("bits") or {})}
    if want != prev.get("bits"):
        diff = ", ".join(f"{n} {prev['bits'][n]} -> {b}" for n, b in want.items() if prev["bits"][n] != b)
        raise InputError(f"{option}: the checkpoint's weight widths differ from this run's ({diff})")
