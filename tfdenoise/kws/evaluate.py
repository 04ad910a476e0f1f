"""Keyword-spotting evaluation (docs/design.md §7): accuracy, confusion matrix and DET of one model.

* :func:`accuracy`: one window centred on each test clip, without noise (as validation sees
  the held-out clips during training): accuracy and the confusion matrix (rows: true class,
  columns: predicted class).
* :func:`evaluate_model`: all of it for one model and one split (``dataset``,
  ``speaker:NAME`` or ``all``): the accuracy of each split, and for the first the DET on a
  reproducible stream (:mod:`tfdenoise.kws.stream`: words of the split in real noise;
  :mod:`tfdenoise.kws.det`: FRR against false alarms per hour), with a DET plot.

The model is any :class:`~tfdenoise.kws.models.KwsClassifier`: the Keras
:class:`~tfdenoise.kws.models.KwsModel` of a checkpoint or the converters' ``TFLiteKws`` (a
``.tflite``).  Naming one (``--model``: a checkpoint folder, a run folder, a ``.tflite``, or
nothing for the shipped model) and loading it is the app layer's:
:func:`tfdenoise.kws_evaluate.evaluate_kws`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, TextIO

import numpy as np

from tfdenoise import mixtures
from tfdenoise.errors import InputError
from tfdenoise.kws import data
from tfdenoise.kws.data import Clip, Task
from tfdenoise.kws.det import DEFAULT_SUPPRESSION_S, FA_POINTS, det_curve, frr_at, plot_det
from tfdenoise.kws.models import KwsClassifier
from tfdenoise.kws.stream import DEFAULT_HOURS, DEFAULT_STREAM_SNR_DB, build_stream, stream_probs
from tfdenoise.kws.train import centred_windows
from tfdenoise.checks import check_integer, check_number, check_pair
from tfdenoise.kws.train_config import DATASET_SPLIT, split_clips, split_speaker

ALL_SPLITS = "all"


# -- accuracy ----------------------------------------------------------------------------------

def accuracy(model: KwsClassifier, clips: Sequence[Clip], task: Task,
             signals: Sequence[np.ndarray] | None = None) -> dict:
    """Accuracy and confusion matrix of ``model`` on ``clips``: one window centred on each
    clip (no shift, gain or noise).  ``signals``: the clips' audio if already loaded."""
    if not clips:
        raise InputError("no clips to score")
    signals = data.load_clips(clips) if signals is None else signals
    x = centred_windows(signals, model.features)
    probs = np.concatenate([model.predict_windows(x[i:i + 512]) for i in range(0, len(x), 512)])
    pred = probs.argmax(-1)
    true = task.targets(clips)
    n = task.n_classes
    confusion = np.zeros((n, n), np.int64)
    np.add.at(confusion, (true, pred), 1)
    return {"accuracy": float(np.mean(pred == true)), "n": len(clips), "errors": int(np.sum(pred != true)),
            "labels": list(task.labels), "confusion": confusion.tolist()}


# -- the whole evaluation ------------------------------------------------------------------

@dataclass(frozen=True)
class EvalRequest:
    """What ``tfdenoise kws evaluate`` scores besides the model."""

    data: str
    noise: str | None = None
    split: str = DATASET_SPLIT      # "dataset", "speaker:<name>" or "all"
    hours: float = DEFAULT_HOURS     # 0: no DET
    snr_db: tuple[float, float] = DEFAULT_STREAM_SNR_DB
    suppression_s: float = DEFAULT_SUPPRESSION_S
    seed: int = 0
    cache_dir: str | None = None     # decoded noise cache (None: decode every time)

    def check(self) -> None:
        """Raise a one-line :class:`InputError` naming the option of the first value out of
        range (or a ``--noise`` folder that does not exist)."""
        if self.split != ALL_SPLITS:
            split_speaker(self.split)
        check_number("--hours", self.hours, lambda v: 0 <= v <= 100, "a number in [0, 100] (0: no DET)")
        check_pair("--snr", self.snr_db, "dB")
        check_number("--suppression", self.suppression_s, lambda v: v >= 0, "a number of seconds >= 0")
        check_integer("--seed", self.seed, 0)
        if self.noise is not None and not Path(self.noise).is_dir():
            raise InputError("--noise: no such folder", self.noise)


def list_data(folder: str | os.PathLike) -> list[Clip]:
    """The clips of ``--data`` (one-line errors for a missing, empty or unknown-layout folder)."""
    return data.list_clips(folder)


def _det_for(model: KwsClassifier, task: Task, test: Sequence[Clip], signals: Sequence[np.ndarray],
             noise: mixtures.Corpus | None, request: EvalRequest, progress: TextIO | None) -> dict:
    keywords = task.keywords if task.keywords is not None else task.labels
    kw = [(x, c.label) for c, x in zip(test, signals) if c.label in keywords]
    other = [(x, c.label) for c, x in zip(test, signals) if c.label not in keywords]
    stream = build_stream(kw, other, noise, request.hours, request.seed, request.snr_db)
    if progress:
        print(f"  DET stream: {stream.hours:.2f} h, {len(stream.events)} words "
              f"({sum(1 for e in stream.events if e[2] in keywords)} keyword occurrences)",
              file=progress, flush=True)
    probs = stream_probs(model, stream.audio)
    det = det_curve(probs, stream.events, list(model.labels), keywords, model.features,
                    stream.hours, suppression_s=request.suppression_s)
    points = {f"{f:g}": frr_at(det["curve"], f) for f in FA_POINTS}
    return {"frr_at_fa_per_hour": points, "curve": det["curve"], "keywords": list(keywords),
            "occurrences": det["occurrences"], "suppression_s": request.suppression_s,
            "stream": stream.info,
            "sweep": {k: det[k] for k in ("thresholds", "frr", "fa_per_hour", "false_alarms")}}


def _seen(split: str, trained_split: str | None) -> bool | None:
    """Whether the model saw ``split``'s test clips in training (None: unknown, a .tflite)."""
    if trained_split is None:
        return None
    if split == DATASET_SPLIT:
        return trained_split != DATASET_SPLIT  # a left-one-out run trained on indices 0-4 too
    return split != trained_split


def clips_to_score(clips: Sequence[Clip], task: Task, request: EvalRequest) -> dict[str, list[Clip]]:
    """The test clips of each split ``request.split`` names (``all``: the dataset split, then
    every speaker's), after checking that the data has every class of the model."""
    present = set(data.labels(clips))
    missing = [k for k in (task.keywords or task.labels) if k not in present]
    if missing:
        raise InputError(f"the model's classes {', '.join(missing)} are not labels of the data "
                         f"(labels: {', '.join(sorted(present))})", request.data)
    if request.split == ALL_SPLITS:
        splits = [DATASET_SPLIT] + [f"speaker:{s}" for s in data.speakers(clips)]
    else:
        splits = [request.split]
    return {split: split_clips(clips, split)[2] for split in splits}


def _score_splits(model: KwsClassifier, task: Task, tests: dict[str, list[Clip]],
                  request: EvalRequest, trained_split: str | None,
                  progress: TextIO | None) -> dict[str, dict]:
    """The accuracy row of every split; the first one's with its DET (``request.hours`` > 0)."""
    noise = None
    if request.hours > 0 and request.noise:
        noise = mixtures.load_corpus(request.noise, request.cache_dir, progress=progress is not None)
    results: dict[str, dict] = {}
    for i, (split, test) in enumerate(tests.items()):
        signals = data.load_clips(test)
        row = accuracy(model, test, task, signals)
        row["in_training"] = _seen(split, trained_split)
        if progress:
            print(f"  {split}: accuracy {row['accuracy']:.2%} ({row['errors']} errors of {row['n']})"
                  + ("  [speaker seen in training]" if row["in_training"] else ""), file=progress, flush=True)
        if i == 0 and request.hours > 0:
            row["det"] = _det_for(model, task, test, signals, noise, request, progress)
        results[split] = row
    return results


def evaluate_model(model: KwsClassifier, task: Task, request: EvalRequest, *, source: str,
                   model_format: str, trained_split: str | None = None,
                   clips: Sequence[Clip] | None = None, plot: str | os.PathLike | None = None,
                   progress: TextIO | None = None) -> dict:
    """Accuracy, confusion matrix and DET of ``model`` (whose classes are ``task``'s).

    ``source`` and ``model_format`` (``checkpoint`` or ``tflite``) say where the model comes
    from; ``trained_split`` the split it was trained on (None: unknown).  ``request.split``:
    ``dataset`` (indices 0-4), ``speaker:NAME`` (the whole speaker), or ``all`` (the dataset
    split with its DET, plus the accuracy of every speaker's clips, each marked
    ``in_training`` unless the model was trained without that speaker).  The top-level
    ``accuracy`` and ``det`` are the first split's.  Nothing is written but ``plot``, at the end.
    """
    request.check()
    clips = list_data(request.data) if clips is None else list(clips)
    tests = clips_to_score(clips, task, request)
    if progress:
        print(f"{Path(source)}: {model.name} ({model_format}), classes {', '.join(task.labels)}",
              file=progress, flush=True)
    results = _score_splits(model, task, tests, request, trained_split, progress)
    first_split = next(iter(results))
    first = results[first_split]
    out = {"model": str(source), "network": str(model.name), "format": str(model_format),
           "labels": list(task.labels), "keywords": list(task.keywords) if task.keywords else None,
           "trained_split": trained_split, "split": first_split,
           "accuracy": first["accuracy"], "confusion": first["confusion"],
           "det": first.get("det"), "splits": results}
    if plot and first.get("det"):
        plot_det({first_split: first["det"]["curve"]}, plot,
                 title=f"{model.name} ({Path(source).name}): DET, {request.hours:g} h stream")
    return out


def format_result(result: dict) -> str:
    """A few human-readable lines of :func:`evaluate_model`'s result."""
    lines = [f"{result['network']} {result['model']}: classes {', '.join(result['labels'])}"]
    for split, row in result["splits"].items():
        note = "  (speaker seen in training)" if row.get("in_training") else ""
        lines.append(f"  {split:24} accuracy {row['accuracy']:7.2%}  ({row['errors']}/{row['n']} wrong){note}")
    det = result.get("det")
    if det:
        pts = "  ".join(f"FRR@{k} FA/h {v:.2%}" for k, v in det["frr_at_fa_per_hour"].items())
        lines.append(f"  DET ({det['stream']['hours']:g} h, {det['occurrences']} keyword occurrences, "
                     f"suppression {det['suppression_s']:g} s): {pts}")
    return "\n".join(lines)
