"""Keyword-spotting networks (:mod:`tfdenoise.kws`) -> ``.tflite`` (FP32 or full INT8), written,
checked against Keras and summarised: the front door of KWS export.

Front door::

    from tfdenoise.converters.kws import export_kws, training_windows, TFLiteKws
    windows, source = training_windows("../shared/data/kws/fsdd", model.features)
    result = export_kws(model, "out/kws_cnn.int8.tflite", "int8", windows)
    TFLiteKws(result.path).predict_windows(windows)      # probabilities [N, classes]

The data flow: :func:`training_windows` (calibration windows of a checkpoint's training split)
-> :func:`tfdenoise.converters.kws_convert.convert_kws` (deployment layers, recipes
``kws_fp32`` / ``kws_int8``, the conversion and its KWS metadata) -> :func:`export_kws` (the
file written atomically, then compared with Keras on the calibration windows through the
LiteRT runner :class:`~tfdenoise.converters.kws_runner.TFLiteKws`: max |probability
difference| and top-1 agreement) -> :class:`KwsExportResult`.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tfdenoise.errors import InputError
from tfdenoise.fileio import write_bytes
from tfdenoise.kws import data as kws_data
from tfdenoise.kws.features import FeatureConfig
from tfdenoise.kws.models import KwsModel
from tfdenoise.kws.train import centred_windows
from tfdenoise.kws.train_config import split_speaker
from tfdenoise.vocab import ModelFamily, Precision

from tfdenoise.converters import fbgraph, metadata
from tfdenoise.converters.kws_convert import check_windows, convert_kws
from tfdenoise.converters.kws_runner import TFLiteKws
from tfdenoise.converters.recipe import Recipe

#: How many training windows calibrate an INT8 export by default (on the FSDD CNN, 1,000
#: windows kept the INT8 test accuracy within 1 clip of Keras, 256 lost 2-3 of 300).
CALIB_WINDOWS = 1000
#: Seed of the choice of calibration clips.
CALIB_SEED = 0
#: Equivalence check tolerances (a warning beyond them): FP32 max |probability difference|;
#: INT8 share of windows whose top-1 class agrees with Keras.
FP32_MAX_ABS = 1e-4
INT8_MIN_AGREEMENT = 0.95


# -- equivalence check and export -------------------------------------------------------------

@dataclass(frozen=True)
class KwsCheck:
    """Keras vs ``.tflite`` probabilities on the same windows."""

    windows: int
    max_abs: float        # max |probability difference|
    mean_abs: float
    top1_agreement: float  # share of windows with the same top-1 class

    def within(self, precision: str) -> bool:
        if precision == Precision.FP32:
            return self.max_abs <= FP32_MAX_ABS
        return self.top1_agreement >= INT8_MIN_AGREEMENT

    def to_json(self) -> dict:
        return {"windows": self.windows, "max_abs": self.max_abs, "mean_abs": self.mean_abs,
                "top1_agreement": self.top1_agreement}


def compare_kws(model: KwsModel, tflite: TFLiteKws | bytes | str | os.PathLike,
                windows: np.ndarray) -> KwsCheck:
    """Probabilities of ``model`` and ``tflite`` on ``windows`` [N, T, F]."""
    run = tflite if isinstance(tflite, TFLiteKws) else TFLiteKws(tflite)
    x = check_windows(windows, model, "check windows")
    ref, got = model.predict_windows(x), run.predict_windows(x)
    d = np.abs(got - ref)
    return KwsCheck(int(len(x)), float(d.max()), float(d.mean()),
                    float(np.mean(np.argmax(got, 1) == np.argmax(ref, 1))))


@dataclass(frozen=True)
class KwsExportResult:
    """What one KWS export wrote and measured."""

    path: Path
    model: str
    precision: str
    file_bytes: int
    param_bytes: int
    ops: tuple[str, ...]
    layers: tuple[dict, ...]
    labels: tuple[str, ...]
    hop_ms: float
    calibration: dict | None
    check: KwsCheck | None = None
    random_weights: bool = False

    @property
    def warnings(self) -> tuple[str, ...]:
        out = []
        if self.random_weights:
            out.append("RANDOM (untrained) weights: export a trained KWS checkpoint for a model "
                       "that spots keywords")
        c = self.check
        if c is not None and not c.within(self.precision):
            if self.precision == Precision.FP32:
                out.append(f"max |probability diff| vs Keras {c.max_abs:.3g} on {c.windows} windows "
                           f"is above {FP32_MAX_ABS:g}: the conversion changed the network")
            else:
                out.append(f"top-1 agreement with Keras {100 * c.top1_agreement:.1f} % on {c.windows} "
                           f"calibration windows (< {100 * INT8_MIN_AGREEMENT:.0f} %): expect an "
                           "accuracy loss; score the file on the test split")
        return tuple(out)

    @property
    def file_kb(self) -> float:
        return self.file_bytes / 1024.0

    def to_json(self) -> dict:
        return {"path": str(self.path), "family": ModelFamily.KWS.value, "model": self.model,
                "precision": self.precision, "random_weights": self.random_weights,
                "file_bytes": self.file_bytes, "param_bytes": self.param_bytes,
                "labels": list(self.labels), "hop_ms": self.hop_ms,
                "layers": list(self.layers), "ops": list(self.ops),
                "calibration": self.calibration,
                "check": None if self.check is None else self.check.to_json(),
                "warnings": list(self.warnings)}


def summarize(path: Path, data: bytes, check: KwsCheck | None) -> KwsExportResult:
    """Size, ops and layers of a written KWS file (read back from its bytes and metadata)."""
    meta = metadata.read_metadata(data, path) or {}
    m = fbgraph.load(data)
    return KwsExportResult(path=Path(path), model=str(meta.get("model", "?")),
                           precision=str(meta.get("precision", "?")), file_bytes=len(data),
                           param_bytes=int(meta.get("param_bytes", 0)),
                           ops=tuple(fbgraph.op_name(m, op) for op in m.subgraphs[0].operators),
                           layers=tuple(meta.get("layers", ())),
                           labels=tuple(meta.get("labels", ())), hop_ms=float(meta.get("hop_ms", 0)),
                           calibration=meta.get("calibration"), check=check,
                           random_weights=bool(meta.get("random_weights", False)))


def export_kws(model: KwsModel, out: str | os.PathLike, recipe: Recipe | str = "int8",
               calib_windows: np.ndarray | None = None, *, check: bool = True,
               random_weights: bool = False, calib_source: str | None = None) -> KwsExportResult:
    """Convert, write ``out`` atomically, and (``check``, when there are windows) compare the
    file with Keras on the calibration windows."""
    data = convert_kws(model, recipe, calib_windows, random_weights=random_weights,
                       calib_source=calib_source)
    path = write_bytes(out, data)
    result = None
    if check and calib_windows is not None:
        result = compare_kws(model, TFLiteKws(data), calib_windows)
    return summarize(path, data, result)


def format_result(res: KwsExportResult) -> str:
    """Human-readable summary of one :class:`KwsExportResult`."""
    random = " RANDOM (untrained) weights" if res.random_weights else ""
    lines = [f"{res.path}: KWS {res.model.upper()} {res.precision}{random}, file {res.file_bytes:,} B, "
             f"parameters {res.param_bytes:,} B; {len(res.labels)} classes, one decision per "
             f"{res.hop_ms:g} ms hop"]
    if res.calibration:
        c = res.calibration
        lines.append(f"  calibration: {c['method']} over {c['windows']} windows, {c['weights']} "
                     f"weights" + (f" ({c['source']})" if c.get("source") else ""))
    lines.append("  layers:")
    for la in res.layers:
        lines.append(f"    {la['name']:<7} {la['kind']:<14} {la['precision']:<5} "
                     f"{la['param_bytes']:>9,} B  ops {la['ops']}")
    lines.append("  op list: " + " ".join(res.ops))
    if res.check is not None:
        c = res.check
        lines.append(f"  vs Keras on {c.windows} windows: max |prob diff| {c.max_abs:.3g}, "
                     f"top-1 agreement {100 * c.top1_agreement:.1f} %")
    return "\n".join(lines)


# -- calibration windows ----------------------------------------------------------------------

def training_windows(folder: str | os.PathLike, cfg: FeatureConfig, limit: int = CALIB_WINDOWS,
                     split: str = "dataset", valid_fraction: float = 0.1, seed: int = 0,
                     cache_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, str]:
    """Feature windows ``[n, window_frames, n_features]`` of up to ``limit`` training clips of
    ``folder`` (FSDD / Speech Commands layout, :func:`tfdenoise.kws.data.list_clips`), each clip
    centred in the window without noise (:func:`tfdenoise.kws.train.centred_windows`); and a
    one-line description of where they come from.

    The training split is the checkpoint's: ``dataset`` (FSDD's indices 0-4 are test, a
    stratified ``valid_fraction`` held out) or ``speaker:<name>``.  Clips are drawn at random
    (``CALIB_SEED``) from the training split.
    """
    clips = kws_data.list_clips(folder)
    train, _, _ = kws_data.split_of(clips, split_speaker(split), valid_fraction, seed)
    if not train:
        raise InputError("no training clips for calibration", folder)
    rng = np.random.default_rng(CALIB_SEED)
    chosen = sorted(rng.permutation(len(train))[:max(1, int(limit))])
    picked = [train[i] for i in chosen]
    windows = centred_windows(kws_data.load_clips(picked, cache_dir), cfg)
    source = (f"{Path(folder).name}: {len(picked)} of {len(train)} training clips ({split} split), "
              "centred, no noise")
    return windows, source


#: Where calibration clips are looked for when none are given (relative to the working folder
#: and to the project root): the FSDD beside the project.
DEFAULT_DATA = Path("..") / "shared" / "data" / "kws" / "fsdd"


def default_calibration_data(config: dict | None = None) -> Path | None:
    """The folder of a checkpoint's training clips (its ``training.data`` when it exists), else
    ``../shared/data/kws/fsdd`` (working folder, then project root); None when neither exists."""
    root = Path(__file__).resolve().parents[1]
    cands: list[Path] = []
    trained = ((config or {}).get("training") or {}).get("data") if isinstance(config, dict) else None
    if isinstance(trained, str) and trained:
        cands += [Path(trained), root / trained]
    cands += [DEFAULT_DATA, root / DEFAULT_DATA]
    return next((p for p in cands if p.is_dir()), None)


def checkpoint_split(config: dict) -> tuple[str, float, int]:
    """(split, valid_fraction, seed) a KWS checkpoint was trained with (defaults if unsaid)."""
    training = config.get("training") if isinstance(config.get("training"), dict) else {}
    split = config.get("split") or training.get("split") or "dataset"
    return (str(split), float(training.get("valid_fraction", 0.1)), int(training.get("seed", 0)))


__all__ = ["CALIB_WINDOWS", "DEFAULT_DATA", "KwsCheck", "KwsExportResult", "TFLiteKws",
           "checkpoint_split", "compare_kws", "convert_kws", "default_calibration_data",
           "export_kws", "format_result", "training_windows"]
