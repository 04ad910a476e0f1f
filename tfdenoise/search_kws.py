"""Keyword spotting in `tfdenoise search`: export a KWS checkpoint under a recipe, and measure a
file's quality as ``tfdenoise kws evaluate`` does (issue 20).

Quality of a ``.tflite`` (:class:`KwsScorer`): what ``tfdenoise kws evaluate`` measures, with
its request (:class:`~tfdenoise.kws.evaluate.EvalRequest`) and its library functions: accuracy on
the test split of ``--data`` (FSDD's indices 0-4 by default: one window centred on each clip) and
the false rejection rate at 1 false alarm per hour on the reproducible DET stream (default one
hour of test-split words in real noise).  The test clips, the stream and its feature frames do
not depend on the model, so they are built once per search; a file then takes about 3 s (the
full ``evaluate_kws`` 7-15 s on this shared machine), with the same numbers (tests/test_search_kws.py).
The default one-hour stream is kept.  The decoded noise is cached in ``cache_dir`` (the first
search decodes it once, about a minute).  The scores of a file are cached by its sha256 and
:attr:`KwsScorer.digest`, which hashes the request and the listings (name, size) of the data
and noise folders.

Calibration of the INT8 exports (:func:`kws_exporter`): feature windows of the checkpoint's own
training split of ``--data`` (:func:`tfdenoise.converters.kws.training_windows`), as
``tfdenoise export`` calibrates a KWS checkpoint.  The cache key of such an export includes
:func:`calibration_digest` of that folder (its resolved path and the names and sizes of its
files), so a search on other clips exports again instead of reusing files calibrated on the
first ones.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tfdenoise.errors import InputError
from tfdenoise.kws.evaluate import EvalRequest

#: Where ``kws evaluate`` looks for data and noise when none is given (relative to the working
#: folder, as its --data / --noise defaults; the decoded-noise cache is keyed by this path).
DEFAULT_NOISE = Path("..") / "shared" / "data" / "noise"
#: The operating point the FRR bound is read at (false alarms per hour; a key of the DET result).
FA_PER_HOUR = "1"


def default_data(config: dict | None = None) -> str:
    """The clips folder: a checkpoint's training data, else ``../shared/data/kws/fsdd``
    (:func:`tfdenoise.converters.kws.default_calibration_data`); one line when none exists."""
    from tfdenoise.converters.kws import default_calibration_data

    folder = default_calibration_data(config)
    if folder is None:
        raise InputError("no KWS clips folder: pass --data DIR (FSDD-style <label>_<speaker>_<index> clips)")
    return str(folder)


def default_noise() -> str | None:
    """``../shared/data/noise`` when it exists (the DET stream's background), else None."""
    return str(DEFAULT_NOISE) if DEFAULT_NOISE.is_dir() else None


def calibration_folder(checkpoint: str | os.PathLike, calib_data: str | None) -> str:
    """The clips folder a KWS checkpoint's INT8 exports calibrate on: ``calib_data``, else its
    own training data (:func:`default_data`)."""
    from tfdenoise.kws.models import read_kws_config

    return calib_data or default_data(read_kws_config(checkpoint))


def calibration_digest(folder: str | os.PathLike) -> str:
    """sha256 of the resolved ``folder`` and the names and sizes of its files (a cache-key part
    of the exports calibrated on it)."""
    h = hashlib.sha256(str(Path(folder).resolve()).encode())
    h.update(_listing(str(folder)).encode())
    return h.hexdigest()


def kws_exporter(checkpoint: str | os.PathLike, calib_data: str | None, cache_dir: str | None):
    """Export (recipe JSON path, out .tflite) for a KWS checkpoint, loaded once; its INT8
    files calibrated on windows of its training split of :func:`calibration_folder`."""
    from tfdenoise.converters.kws import checkpoint_split, export_kws, training_windows
    from tfdenoise.kws.models import load_kws_checkpoint, read_kws_config

    config = read_kws_config(checkpoint)
    model = load_kws_checkpoint(checkpoint)
    split, valid_fraction, seed = checkpoint_split(config)
    windows, source = training_windows(calibration_folder(checkpoint, calib_data), model.features, split=split,
                                       valid_fraction=valid_fraction, seed=seed, cache_dir=cache_dir)

    def run(recipe: Path, out: Path) -> None:
        export_kws(model, out, str(recipe), windows, check=False, calib_source=source)
    return run


def kws_scorer(data: str | None, noise: str | None, hours: float | None, cache_dir: str,
               checkpoint: str | os.PathLike | None = None) -> KwsScorer:
    """The scorer of a search: ``kws evaluate``'s request on ``data`` (default: the training
    data of ``checkpoint``, the model searched, :func:`default_data`), ``noise`` (default
    :func:`default_noise`) and ``hours`` (default ``kws evaluate``'s)."""
    from tfdenoise.kws.models import read_kws_config
    from tfdenoise.kws.stream import DEFAULT_HOURS

    if data is None:
        data = default_data(read_kws_config(checkpoint) if checkpoint is not None else None)
    return KwsScorer(EvalRequest(data=data, noise=noise or default_noise(),
                                 hours=DEFAULT_HOURS if hours is None else hours, cache_dir=cache_dir))


def check_labels(sources, reference_labels: list[str]) -> None:
    """Every KWS checkpoint of a search has the classes of the model searched (else its
    accuracy is of another task)."""
    from tfdenoise.kws.models import read_kws_config

    for s in sources:
        labels = list(read_kws_config(s.path)["labels"])
        if labels != list(reference_labels):
            raise InputError(f"has the classes {', '.join(labels)}, the model searched "
                             f"{', '.join(reference_labels)}: not the same task", s.path)


def _listing(folder: str | None) -> str:
    """Names and sizes of the files below ``folder`` (cheap; changes when a file does)."""
    if folder is None:
        return ""
    root = Path(folder)
    return "\n".join(f"{p.relative_to(root)}|{p.stat().st_size}" for p in sorted(root.rglob("*")) if p.is_file())


@dataclass
class KwsScorer:
    """Accuracy and FRR at 1 FA/h of a KWS ``.tflite``: ``tfdenoise kws evaluate``'s request and
    library functions, with the model-independent work done once per search (the test clips,
    the DET stream and its feature frames) instead of once per file; the numbers are those of
    :func:`tfdenoise.kws_evaluate.evaluate_kws` (tests/test_search_kws.py compares them)."""

    request: EvalRequest
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        from tfdenoise.kws.evaluate import list_data

        self.request.check()
        if self.request.split == "all":
            raise InputError("the search scores one test split (dataset or speaker:NAME), not 'all'")
        self.clips = list_data(self.request.data)
        h = hashlib.sha256(json.dumps({**asdict(self.request), "data": str(Path(self.request.data).resolve()),
                                       "noise": None if self.request.noise is None
                                       else str(Path(self.request.noise).resolve()), "cache_dir": None},
                                      sort_keys=True).encode())
        h.update(_listing(self.request.data).encode())
        h.update(_listing(self.request.noise).encode())
        self.digest = "kws:" + h.hexdigest()
        self._prepared: dict | None = None

    def describe(self) -> str:
        r = self.request
        det = (f"FRR at {FA_PER_HOUR} FA/h on the {r.hours:g} h DET stream of `kws evaluate` (seed {r.seed}, "
               f"noise {r.noise or 'generated'})") if r.hours > 0 else "no DET stream (--hours 0): no FRR bound"
        return f"accuracy on the {r.split} test split of {r.data}; {det}"

    def _prepare(self, task) -> dict:
        """Test clips, their audio and the DET stream of ``task`` (as evaluate_model builds them)."""
        from tfdenoise import mixtures
        from tfdenoise.kws import data
        from tfdenoise.kws.evaluate import clips_to_score
        from tfdenoise.kws.stream import build_stream

        r = self.request
        test = next(iter(clips_to_score(self.clips, task, r).values()))
        signals = data.load_clips(test)
        keywords = task.keywords if task.keywords is not None else task.labels
        stream = None
        if r.hours > 0:
            noise = mixtures.load_corpus(r.noise, r.cache_dir, progress=True) if r.noise else None
            stream = build_stream([(x, c.label) for c, x in zip(test, signals) if c.label in keywords],
                                  [(x, c.label) for c, x in zip(test, signals) if c.label not in keywords],
                                  noise, r.hours, r.seed, r.snr_db)
        return {"task": task, "test": test, "signals": signals, "keywords": list(keywords), "stream": stream,
                "features": {}}

    def _det(self, model, prep: dict) -> dict:
        from tfdenoise.kws.det import FA_POINTS, det_curve, frr_at
        from tfdenoise.kws.stream import stream_features

        stream = prep["stream"]
        if model.features not in prep["features"]:
            prep["features"] = {model.features: stream_features(stream.audio, model.features)}
        probs = model.offline_probs(prep["features"][model.features], batch=2048)
        det = det_curve(probs, stream.events, list(model.labels), prep["keywords"], model.features,
                        stream.hours, suppression_s=self.request.suppression_s)
        return {f"{f:g}": frr_at(det["curve"], f) for f in FA_POINTS}

    def __call__(self, file: Path) -> dict:
        from tfdenoise.converters.kws_runner import TFLiteKws
        from tfdenoise.kws.data import task_for
        from tfdenoise.kws.evaluate import accuracy

        model = TFLiteKws(file)
        task = task_for(model.labels)
        if self._prepared is None or self._prepared["task"] != task:
            self._prepared = self._prepare(task)
        prep = self._prepared
        row = accuracy(model, prep["test"], task, prep["signals"])
        points = self._det(model, prep) if prep["stream"] is not None else None
        return {"accuracy": row["accuracy"], "errors": row["errors"], "n": row["n"],
                "frr_1fa": None if points is None else points[FA_PER_HOUR], "frr_at_fa_per_hour": points,
                "stream_hours": None if prep["stream"] is None else prep["stream"].info["hours"]}
