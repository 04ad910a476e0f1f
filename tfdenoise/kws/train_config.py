"""The KWS training configuration: every option of ``tfdenoise kws train``, checked before any work.

:class:`KwsTrainConfig` is what a run folder's ``config.json`` holds; :meth:`KwsTrainConfig.check`
validates every range (one-line :class:`~tfdenoise.errors.InputError` naming the CLI option)
before data is read, a folder created or TensorFlow imported, with the range checks
the shared range checks of :mod:`tfdenoise.checks` (``tfdenoise kws evaluate``'s
request uses them too).  The options that name clips: :func:`split_speaker` / :func:`split_clips`
(``--split``) and :func:`make_task` (``--keywords``).  :func:`check_resumable` refuses to
continue a run with another network or other classes (as :mod:`tfdenoise.train_config` does
for the denoiser).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from tfdenoise.checks import check_integer, check_number, check_pair, check_schedule
from tfdenoise.errors import InputError
from tfdenoise.kws import data
from tfdenoise.kws.data import Clip, Task
from tfdenoise.kws.layertable import get_spec
from tfdenoise.kws.models import read_kws_config

DATASET_SPLIT = "dataset"
SPEAKER_PREFIX = "speaker:"


# -- range checks ----------------------------------------------------------------------------

def _share(option: str, value: object) -> None:
    check_number(option, value, lambda v: 0 <= v <= 1, "a share in [0, 1]")


# -- the configuration -----------------------------------------------------------------------

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
        try:
            get_spec(self.model)
        except InputError as exc:
            raise InputError(f"--model: {exc}") from None
        check_schedule(self.epochs, self.batch, self.learning_rate, self.final_learning_rate)
        if self.keywords is not None:
            _check_keywords(self.keywords)
        split_speaker(self.split)
        check_pair("--snr", self.snr_db, "dB")
        _share("--noise-prob", self.noise_prob)
        check_number("--shift", self.shift_seconds, lambda v: 0 <= v <= 1, "seconds in [0, 1]")
        check_pair("--gain", self.gain_db, "dB")
        _share("--silence-share", self.silence_share)
        _share("--partial-share", self.partial_share)
        check_integer("--seed", self.seed, 0)
        check_integer("--windows-per-epoch", self.windows_per_epoch, 0)
        check_number("--valid-fraction", self.valid_fraction, lambda v: 0 < v < 1,
                     "a share strictly between 0 and 1")

    def to_json(self) -> dict:
        out = asdict(self)
        for k in ("keywords", "snr_db", "gain_db"):
            if out[k] is not None:
                out[k] = list(out[k])
        return out


def _check_keywords(keywords: Sequence[str]) -> None:
    if not keywords:
        raise InputError("--keywords needs at least one keyword (leave it out for the all-labels task)")
    for k in keywords:
        if not isinstance(k, str) or not k or k != k.strip():
            raise InputError(f"--keywords: {k!r} is not a label name")
        if k in (data.UNKNOWN, data.SILENCE):
            raise InputError(f"--keywords: {k!r} is a reserved class name")
    if len(set(keywords)) != len(keywords):
        raise InputError(f"--keywords repeat: {' '.join(keywords)}")


# -- the options that name clips -------------------------------------------------------------

def split_speaker(split: str) -> str | None:
    """The held-out speaker of ``split`` (``speaker:<name>``), None for the dataset split;
    a one-line :class:`InputError` naming ``--split`` for anything else."""
    if split == DATASET_SPLIT:
        return None
    if isinstance(split, str) and split.startswith(SPEAKER_PREFIX) and split[len(SPEAKER_PREFIX):].strip():
        return split[len(SPEAKER_PREFIX):].strip()
    raise InputError(f"--split must be '{DATASET_SPLIT}' or '{SPEAKER_PREFIX}<name>', got {split!r}")


def split_clips(clips: Sequence[Clip], split: str, valid_fraction: float = 0.1,
                seed: int = 0) -> tuple[list[Clip], list[Clip], list[Clip]]:
    """(train, valid, test) of ``split`` (:func:`split_speaker`)."""
    speaker = split_speaker(split)
    try:
        return data.split_of(clips, speaker, valid_fraction, seed)
    except InputError as exc:
        raise InputError(f"--split {split}: {exc}") from None


def make_task(clips: Sequence[Clip], keywords: Sequence[str] | None) -> Task:
    """The digits (all-labels) task, or a keyword task (unknown keywords: one InputError line
    naming ``--keywords``)."""
    if keywords is None:
        return data.digits_task(clips)
    try:
        return data.keyword_task(clips, keywords)
    except InputError as exc:
        raise InputError(f"--keywords: {exc}") from None


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
