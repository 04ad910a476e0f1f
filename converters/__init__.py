"""Keras TinyDenoiser -> quantized ``.tflite`` (FP32, FP16, INT8, mixed FP16-INT8; docs/design.md §4).

Front door::

    from tfdenoise.converters import export
    result = export("path/to/checkpoint", "mixed", "out/model.tflite", calib="max")

Modules: ``recipe`` (precision recipes as data), ``calibration`` (activation ranges),
``build`` (Keras -> float/calibrated/quantized flatbuffers), ``passes`` (FP16 weights,
INT8 state I/O), ``fbgraph`` + ``metadata`` (op -> layer map, the ``tfdenoise`` metadata),
``interpreter`` (run a file frame by frame), ``check`` (Keras vs .tflite), ``export``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def _export(model_or_checkpoint: Any, precision: str = "mixed", out: str | os.PathLike = "model.tflite",
           calib: str | None = None, recipe: str | os.PathLike | None = None,
           calib_data: str | os.PathLike | None = None, check: bool = True):
    """Export a TinyDenoiser (object, checkpoint folder, or variant name) to ``out``.

    ``precision`` is a built-in recipe name (fp32, fp16, int8, mixed); ``recipe`` (a JSON
    path) overrides it; ``calib`` (max|std3) overrides the recipe's calibration statistic;
    ``calib_data`` is a folder of calibration clips (default: the 4 reference-design clips (docs/design.md §4)).
    Returns a :class:`converters.export.ExportResult`.
    """
    from tfdenoise.converters.calibration import CalibrationSet
    from tfdenoise.converters.export import export_model, load_model
    from tfdenoise.converters.recipe import load as load_recipe
    from tfdenoise.models import VARIANTS

    if isinstance(model_or_checkpoint, str) and model_or_checkpoint.lower() in VARIANTS \
            and not Path(model_or_checkpoint).is_dir():
        model = load_model(None, variant=model_or_checkpoint)
    else:
        model = load_model(model_or_checkpoint)
    rec = load_recipe(recipe if recipe is not None else precision)
    cal = CalibrationSet.load(calib_data) if (rec.needs_calibration or check) else None
    return export_model(model, out, rec, calib=cal, method=calib, check=check)


#: ``converters.export(...)``.  Importing the submodule ``converters.export`` rebinds this
#: name to that module, which is itself callable with the same signature (see its end).
export = _export

__all__ = ["export"]
