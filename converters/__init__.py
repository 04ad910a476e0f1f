"""Keras TinyDenoiser -> quantized ``.tflite`` (FP32, FP16, INT8, mixed FP16-INT8; docs/design.md §4).

Front door::

    from tfdenoise.converters import export
    result = export("lstm128", "mixed", "out/model.tflite", calib="max")
    result = export("my_denoiser.h5", "mixed", "out/my.tflite")   # a user's own Keras model

Modules, in the order of the data flow: ``recipe`` (precision recipes as data),
``calibration`` (activation ranges), ``build`` (Keras -> float/calibrated/quantized
flatbuffers), ``passes`` (FP16 weights, INT8 state I/O), ``fbgraph`` + ``metadata`` (op ->
layer map, the ``tfdenoise`` metadata), ``convert`` (the whole conversion, written and
summarised), ``interpreter`` (run a file frame by frame), ``check`` (Keras vs .tflite);
``keras_model`` / ``keras_stream`` / ``keras_convert`` (a user's own Keras model: checks,
streaming forms, the conversion's adapter and calibration inputs).
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tfdenoise.converters.convert import ExportResult
    from tfdenoise.models import TinyDenoiser


def export(model: "TinyDenoiser | str | os.PathLike | None" = None, precision: str = "mixed",
           out: str | os.PathLike = "model.tflite", calib: str | None = None,
           recipe: str | os.PathLike | None = None, calib_data: str | os.PathLike | None = None,
           check: bool = True) -> "ExportResult":
    """Export a TinyDenoiser (or a user's Keras model) to ``out``; return what was written and measured.

    ``model`` is a TinyDenoiser, a :class:`~tfdenoise.converters.keras_model.KerasModel` or a
    model spec (:func:`tfdenoise.modelref.resolve`: a checkpoint folder, a shipped variant's
    name, a Keras model file or SavedModel folder, or ``None`` for the default model).
    ``precision`` is a built-in recipe name (fp32, fp16, int8, mixed); ``recipe`` (a JSON
    path) overrides it; ``calib`` (max|std3) overrides the recipe's calibration statistic;
    ``calib_data`` is a folder of calibration clips (default: the 4 reference-design clips;
    a Keras model: :func:`~tfdenoise.converters.keras_convert.calibration_inputs`).
    """
    from tfdenoise.converters.calibration import CalibrationSet
    from tfdenoise.converters.convert import export_model
    from tfdenoise.converters.keras_convert import calibration_inputs
    from tfdenoise.converters.keras_model import KerasModel, load_keras_model
    from tfdenoise.converters.recipe import load as load_recipe
    from tfdenoise.modelref import resolve
    from tfdenoise.models import TinyDenoiser, load_denoiser

    rec = load_recipe(recipe if recipe is not None else precision)
    if not isinstance(model, (TinyDenoiser, KerasModel)) and resolve(model).is_keras:
        model = load_keras_model(resolve(model).path)
    if isinstance(model, KerasModel):
        cal = calibration_inputs(model, calib_data) if (rec.needs_calibration or check) else None
        return export_model(model, out, rec, calib=cal, method=calib, check=check)
    den = model if isinstance(model, TinyDenoiser) else load_denoiser(model)
    cal = CalibrationSet.load(calib_data) if (rec.needs_calibration or check) else None
    return export_model(den, out, rec, calib=cal, method=calib, check=check)


__all__ = ["export"]
