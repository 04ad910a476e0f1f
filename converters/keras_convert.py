"""A user's Keras model (:mod:`tfdenoise.converters.keras_model`) -> ``.tflite`` through the
TinyDenoiser conversion (:func:`tfdenoise.converters.convert.convert`): its adapter, its
calibration inputs, the front door.

Front door::

    from tfdenoise.converters.keras_convert import export_keras
    from tfdenoise.converters.keras_model import load_keras_model
    model = load_keras_model("my_denoiser.h5")
    res = export_keras(model, "out/my.mixed.tflite", "mixed")      # RNN layers INT8, rest FP16
    res.mask_check.max_abs                                       # max |tflite - Keras| outputs

:class:`KerasGraph` is what the conversion reads of the model: the signature
(:class:`~tfdenoise.converters.build.DeployIO`: ``frame`` -> ``mask`` plus the GRU states and
causal-conv buffers; converted from a SavedModel when an LSTM must fuse), the recipe resolved
over the kernel layers by name, Keras type or ``rnn_<i>``, the operator -> layer map (Keras
layer names in the converter's tensor names, folded layers to their kernel), and the metadata
(:func:`tfdenoise.converters.metadata.build_keras_metadata`).

Calibration inputs (:func:`calibration_inputs`, ``--calib-data DIR``): ``.npy`` arrays of model
inputs, each ``[T, *features]`` (one sequence) or ``[N, T, *features]`` (N sequences), for any
model; audio files through the STFT front end (docs/design.md §1) for a model that takes 257
magnitudes per frame, by default the 4 reference-design clips.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np

from tfdenoise.errors import ConversionError, InputError, RecipeError
from tfdenoise.vocab import N_BINS, Precision

from tfdenoise.converters import fbgraph
from tfdenoise.converters.build import DeployIO
from tfdenoise.converters.calibration import CalibrationSet
from tfdenoise.converters.keras_model import KerasModel
from tfdenoise.converters.metadata import build_keras_metadata


class KerasGraph:
    """The deployment graph of a :class:`KerasModel`, as the conversion reads it."""

    def __init__(self, model: KerasModel) -> None:
        self.model = model
        self.io = DeployIO((1, 1, *model.features), (1, 1, *model.out_features),
                           tuple((s.name, (1, *s.shape)) for s in model.states),
                           saved_model=bool(model.lstm_layers))
        self.names = tuple(la.name for la in model.layers)

    def keras(self):
        return self.model.step

    def resolve(self, recipe) -> dict[str, Precision]:
        """Precision of every kernel layer: patterns match its name, Keras type or ``rnn_<i>``."""
        where = recipe.source or None
        if recipe.family != "denoiser":
            raise RecipeError(f"recipe {recipe.name!r} is a {recipe.family} recipe", where)
        bits = [r.pattern for r in recipe.rules if r.weight_bits is not None]
        if bits:
            raise RecipeError(f"recipe {recipe.name!r} asks QAT weight_bits ({', '.join(bits)}): "
                              "a Keras model has float weights; drop weight_bits", where)
        return recipe.resolve(self.names, {la.name: la.aliases for la in self.model.layers})

    def label(self, recipe) -> str:
        used = set(self.resolve(recipe).values())
        return next(iter(used)).value if len(used) == 1 else "mixed"

    def check_bits(self, recipe, trained: dict[str, int]) -> None:
        """Nothing to check: :meth:`resolve` refuses ``weight_bits``."""

    def check_float(self, data: bytes) -> None:
        """The float graph must be flat: a WHILE loop means an LSTM did not fuse."""
        m = fbgraph.load(data)
        loops = [fbgraph.op_name(m, op) for op in m.subgraphs[0].operators
                 if fbgraph.op_name(m, op) in ("WHILE", "IF", "CALL_ONCE")]
        if loops or len(m.subgraphs) > 1:
            raise ConversionError(f"model {self.model.name!r}: the converter left control flow "
                                  f"({', '.join(sorted(set(loops))) or 'subgraphs'}) in the "
                                  "deployment graph; LSTM layers "
                                  f"{', '.join(self.model.lstm_layers) or '(none)'} did not fuse")

    def _token(self, tensor: str) -> str | None:
        parts = re.split(r"[/;:]", tensor)
        own = [p for p in parts if p in self.names]
        folded = [self.model.fold[p] for p in parts if p in self.model.fold]
        return own[0] if own else (folded[0] if folded else None)

    def op_layers(self, model_obj) -> list[str | None]:
        return fbgraph.op_layers(model_obj, self._token, self.model.lstm_layers)

    def metadata(self, model_obj, precision: str, calibration: dict | None, random_weights: bool,
                 weight_bits: dict[str, int], qat: dict | None) -> dict:
        m = self.model
        keras = {"model": m.name, "source": m.source.name,
                 "states": [{"name": s.name, "layer": s.layer, "shape": list(s.shape)}
                            for s in m.states]}
        layers = [{"name": la.name, "kind": la.kind.value, "type": la.type, "units": la.units}
                  for la in m.layers]
        return build_keras_metadata(model_obj, keras=keras, layers=layers,
                                    op_layer=self.op_layers(model_obj), precision=precision,
                                    calibration=calibration, denoiser=m.io_contract)


# -- calibration inputs -------------------------------------------------------------------------

def _npy_sequences(path: Path, features: tuple[int, ...]) -> list[np.ndarray]:
    """The sequences ``[T, *features]`` of one ``.npy`` file (one line naming it when wrong)."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the array ({str(exc).splitlines()[0][:100]})", path) from None
    if not np.issubdtype(x.dtype, np.number):
        raise InputError(f"array of {x.dtype} is not numeric", path)
    x = x.astype(np.float32)
    n = len(features)
    if x.ndim == n + 1 and tuple(x.shape[1:]) == features:
        seqs = [x]
    elif x.ndim == n + 2 and tuple(x.shape[2:]) == features:
        seqs = list(x)
    else:
        raise InputError(f"array of shape {list(x.shape)} is not [T, {', '.join(map(str, features))}] "
                         f"or [N, T, {', '.join(map(str, features))}] (the model's input per frame)", path)
    if not all(len(s) for s in seqs):
        raise InputError("array holds no frames", path)
    if not np.all(np.isfinite(x)):
        raise InputError("array holds NaN or infinity", path)
    return seqs


def calibration_inputs(model: KerasModel, folder: str | os.PathLike | None = None,
                       max_frames: int | None = None) -> CalibrationSet:
    """Calibration (and check) inputs of ``model``: the ``.npy`` arrays of ``folder``, else its
    audio files through the STFT front end (a model taking 257 magnitudes; without a folder the
    4 reference-design clips); ``max_frames`` cuts each sequence."""
    takes_mags = model.features == (N_BINS,)
    if folder is None:
        if takes_mags:
            return CalibrationSet.load(None, max_frames)
        raise InputError(f"model {model.name!r} takes {list(model.features)} per frame, not STFT "
                         "magnitudes: pass --calib-data DIR with .npy arrays of its inputs "
                         "([T, features] or [N, T, features])")
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("calibration folder does not exist", folder)
    arrays = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".npy")
    if not arrays:
        if takes_mags:
            return CalibrationSet.load(folder, max_frames)
        raise InputError(f"calibration folder has no .npy arrays of model inputs (model "
                         f"{model.name!r} takes {list(model.features)} per frame)", folder)
    names, seqs = [], []
    for p in arrays:
        got = _npy_sequences(p, model.features)
        for i, s in enumerate(got):
            names.append(p.with_suffix("") if len(got) == 1 else p.with_name(f"{p.stem}_{i}"))
            seqs.append(s[:max_frames] if max_frames else s)
    return CalibrationSet(tuple(names), tuple(seqs))


def export_keras(model: KerasModel, out: str | os.PathLike, recipe="mixed",
                 calib: CalibrationSet | None = None, method=None, check: bool = True):
    """Convert ``model`` under ``recipe`` (a built-in name, a JSON path or a Recipe), write
    ``out`` atomically and, with ``check``, compare the file with Keras on the calibration
    inputs (:class:`~tfdenoise.converters.convert.ExportResult`; ``mask_check.max_abs`` is the
    max |difference| of the outputs)."""
    from tfdenoise.converters.convert import export_model
    from tfdenoise.converters.recipe import Recipe, load as load_recipe

    rec = recipe if isinstance(recipe, Recipe) else load_recipe(recipe)
    if calib is None and (check or rec.needs_calibration):
        calib = calibration_inputs(model)
    return export_model(model, out, rec, calib=calib, method=method, check=check)


__all__ = ["KerasGraph", "calibration_inputs", "export_keras"]
