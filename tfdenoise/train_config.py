"""The training configuration: every option of ``tfdenoise train``, checked before any work.

:class:`TrainConfig` is what a run folder's ``config.json`` holds; :meth:`TrainConfig.check`
validates every range (one-line :class:`~tfdenoise.errors.InputError` naming the CLI option)
before data is read, a folder created or TensorFlow imported; :func:`check_resumable` refuses
to continue a run with another network; :func:`read_run_config` reads a run's config back.
Options added later (augmentation, ``ema``) default to off, so an older ``config.json``
without them reads back as the run it was.
"""
from __future__ import annotations

import json
import math
import numbers
import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from tfdenoise import SAMPLE_RATE, augment, mixtures
from tfdenoise.checks import check_integer, check_number, check_schedule
from tfdenoise.errors import InputError, ModelError
from tfdenoise.losses import RESOLUTIONS, LossWeights
from tfdenoise.models import CONFIG_FILE, Variant, checkpoint_variant, get_variant, read_config
from tfdenoise.vocab import FRAME

#: Shortest training segment: the longest STFT window of the loss (1200 samples, 75 ms; it
#: is longer than the model's 400-sample frame, and a shorter segment fails inside the loss).
MIN_SEGMENT_SECONDS = max(FRAME, *(win for _, _, win in RESOLUTIONS)) / SAMPLE_RATE
MAX_SEGMENT_SECONDS = 60.0


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a training run (saved as ``config.json`` in the run)."""

    variant: str
    speech: str
    noise: str
    out: str
    epochs: int = 10
    batch: int = 64
    learning_rate: float = 3e-4
    final_learning_rate: float | None = None  # None: constant learning_rate
    segment_seconds: float = 2.0
    segments_per_epoch: int = 0  # 0: as many as the training speech has seconds / segment
    valid_fraction: float = 0.05
    valid_segments: int = 128
    valid_pairs: str | None = None
    valid_pesq: int = 0  # > 0: this many held-out mixtures scored with PESQ, which picks best/
    snr_db: tuple[float, float] = mixtures.DEFAULT_SNR_DB
    snr_level: str = mixtures.DEFAULT_SNR_LEVEL  # speech power an SNR refers to (mixtures.speech_power)
    seed: int = 0
    cache_dir: str | None = None  # decoded-audio cache; None: OUT/cache; "" disables it
    noise_exclude: tuple[str, ...] = ()  # globs of noise clips (relative paths) left out
    synthetic_noise: float = 0.0  # share of noise segments that are babble / speech-shaped noise
    min_clean_snr: float = 0.0  # > 0: speech clips with a lower mixtures.clean_snr_db are left out
    compressed_loss: float = 0.0  # weight of the compressed spectral loss term (losses.compressed_loss)
    mag_loss: float = LossWeights.mag  # weight of the log-magnitude STFT loss term (losses.stft_losses)
    reverb: float = 0.0  # probability of a reverberant training mixture (augment.Augment)
    rt60: tuple[float, float] = augment.DEFAULT_RT60  # seconds
    reverb_target: str = augment.DEFAULT_REVERB_TARGET  # dry | early
    level_db: tuple[float, float] = augment.OFF  # random gain of a training pair
    tilt_db: tuple[float, float] = augment.OFF  # random spectral tilt, dB per 8 kHz
    ema: float = 0.0  # > 0: decay of the moving average of the weights that is scored and saved (tfdenoise/ema.py)
    notes: dict = field(default_factory=dict)

    @property
    def mixing(self) -> mixtures.Mixing:
        """How the held-out mixtures are made (never augmented)."""
        return mixtures.Mixing(self.snr_db, self.snr_level, self.synthetic_noise)

    @property
    def augmentation(self) -> augment.Augment:
        """The augmentation of the training mixtures (checked on construction)."""
        return augment.Augment(self.reverb, tuple(self.rt60), self.reverb_target, tuple(self.level_db),
                               tuple(self.tilt_db))

    @property
    def train_mixing(self) -> mixtures.Mixing:
        """How the training mixtures are made: :attr:`mixing` plus :attr:`augmentation`."""
        return replace(self.mixing, augment=self.augmentation)

    def check(self) -> None:
        """Raise a one-line :class:`InputError` naming the CLI option of the first value
        out of range; reads no data and touches no file."""
        try:
            get_variant(self.variant)
        except InputError as exc:
            raise InputError(f"--variant: {exc}") from None
        check_schedule(self.epochs, self.batch, self.learning_rate, self.final_learning_rate)
        check_number("--segment", self.segment_seconds, lambda seg: seg <= MAX_SEGMENT_SECONDS
                     and int(seg * SAMPLE_RATE) >= round(MIN_SEGMENT_SECONDS * SAMPLE_RATE),
               f"seconds in [{MIN_SEGMENT_SECONDS:g}, {MAX_SEGMENT_SECONDS:g}] (the loss's longest "
               f"STFT window is {MIN_SEGMENT_SECONDS * 1000:g} ms)")
        check_integer("--segments-per-epoch", self.segments_per_epoch, 0)
        check_number("--valid-fraction", self.valid_fraction, lambda v: 0 < v < 1,
                     "a share strictly between 0 and 1")
        check_integer("--valid-pesq", self.valid_pesq, 0)
        check_integer("valid_segments", self.valid_segments, 1)
        if len(self.snr_db) != 2 or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in self.snr_db):
            raise InputError(f"--snr must be two finite numbers LO HI (dB), got {' '.join(map(str, self.snr_db))}")
        # The mixing options are checked by mixtures.Mixing; one at a time, to name the option.
        for option, kwargs in (("--snr", {"snr_db": tuple(self.snr_db)}), ("--snr-level", {"snr_level": self.snr_level}),
                               ("--synthetic-noise", {"synthetic": self.synthetic_noise})):
            try:
                mixtures.Mixing(**kwargs)
            except InputError as exc:
                raise InputError(f"{option}: {exc}") from None
        check_number("--min-clean-snr", self.min_clean_snr, lambda v: v >= 0, "a number of dB >= 0 (0: keep all)")
        check_number("--compressed-loss (compressed loss weight)", self.compressed_loss, lambda v: v >= 0,
                     "a number >= 0 (0: off)")
        check_number("--mag-loss (log-magnitude loss weight)", self.mag_loss, lambda v: v >= 0,
                     "a number >= 0 (0: off)")
        check_integer("--seed", self.seed, 0)
        _ = self.augmentation  # constructing it checks --reverb, --rt60, --reverb-target, --level-db, --tilt-db
        check_number("--ema", self.ema, lambda v: 0 <= v < 1, "a decay in [0, 1) (0: off)")


def read_run_config(run: str | os.PathLike) -> TrainConfig:
    """The :class:`TrainConfig` a run folder was last started with (its ``config.json``)."""
    path = Path(run) / CONFIG_FILE
    if not path.is_file():
        raise InputError(f"not a training run (no {CONFIG_FILE})", run)
    try:
        raw = json.loads(path.read_text())
        known = {f.name for f in fields(TrainConfig)}
        return TrainConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in known})
    except (ValueError, TypeError) as exc:
        raise InputError(f"unreadable run {CONFIG_FILE} ({exc})", path) from exc


def check_resumable(config: TrainConfig, variant: Variant | None = None) -> None:
    """Raise a one-line :class:`InputError` if ``config`` cannot continue the run in
    ``config.out`` (its ``last/`` checkpoint holds another network than ``variant``, by default
    ``config.variant``'s); reads only ``last/config.json``."""
    out = Path(config.out)
    saved = read_config(out / "last")
    name = saved.get("variant", saved.get("training", {}).get("variant"))
    try:
        old = checkpoint_variant({**saved, "variant": name}, out / "last")
    except InputError:
        raise ModelError(f"last/{CONFIG_FILE} names no known variant ({name!r})", out) from None
    new = variant or get_variant(config.variant)
    if (old.name, old.cell, old.units) != (new.name, new.cell, new.units):
        raise InputError(f"run {out} was trained as {_label(old)}; "
                         f"--variant {_label(new)} cannot resume it")


def _label(variant: Variant) -> str:
    """``LSTM128``, or ``LSTM128 with 96 units`` for a structurally pruned one."""
    name = variant.name.upper()
    return name if variant.units == get_variant(variant.name).units else f"{name} with {variant.units} units"
