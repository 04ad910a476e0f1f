"""Export a TinyDenoiser to ``.tflite`` at a precision recipe (fp32, fp16, int8, mixed, custom).

:func:`convert` returns the flatbuffer bytes; :func:`export_model` writes them atomically,
checks them against Keras and reports size, ops and per-layer precision;
:func:`export_variant` is the random-weight shortcut for hardware sweeps.
"""
from __future__ import annotations

import os
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tfdenoise.errors import ConversionError, ModelError
from tfdenoise.fileio import write_bytes
from tfdenoise.models import TinyDenoiser, get_variant, load_checkpoint
from tfdenoise.vocab import FILE_PRECISIONS

from tfdenoise.converters import build, fbgraph, metadata, passes
from tfdenoise.converters.calibration import CalibrationSet
from tfdenoise.converters.check import compare
from tfdenoise.converters.recipe import CalibMethod, Precision, Recipe, load as load_recipe

MB = float(2 ** 20)
PRECISIONS = FILE_PRECISIONS
#: Seed of the random weights of ``--variant`` exports.
VARIANT_SEED = 0


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote and measured."""

    path: Path
    variant: str
    precision: str
    file_bytes: int
    param_bytes: int
    ops: tuple[str, ...]
    layers: tuple[dict, ...]
    calibration: dict | None
    max_mask_diff: float | None

    @property
    def param_mb(self) -> float:
        return self.param_bytes / MB

    @property
    def file_mb(self) -> float:
        return self.file_bytes / MB


def load_model(model_or_checkpoint: TinyDenoiser | str | os.PathLike | None = None,
               variant: str | None = None) -> TinyDenoiser:
    """A TinyDenoiser from an object, a checkpoint folder, a variant (random) or the default."""
    if isinstance(model_or_checkpoint, TinyDenoiser):
        return model_or_checkpoint
    if model_or_checkpoint is not None:
        return load_checkpoint(model_or_checkpoint)
    if variant is not None:
        return TinyDenoiser(get_variant(variant), seed=VARIANT_SEED)
    try:
        from tfdenoise.pretrained import default_checkpoint
    except ImportError:
        raise ModelError("no checkpoint or --variant given and no default pretrained "
                         "model is available (tfdenoise.pretrained is missing)") from None
    return load_checkpoint(default_checkpoint())


def convert(model: TinyDenoiser, recipe: Recipe | str = "mixed",
            calib: CalibrationSet | None = None,
            method: CalibMethod | str | None = None) -> bytes:
    """The ``.tflite`` bytes of ``model`` under ``recipe``, with ``tfdenoise`` metadata."""
    recipe = load_recipe(recipe) if isinstance(recipe, str) else recipe
    prec = recipe.resolve()
    method = CalibMethod(method) if method is not None else recipe.calibration
    f32 = build.convert_float(model)
    int8_layers = {k for k, p in prec.items() if p is Precision.INT8}
    cal_info = None
    if int8_layers:
        calib = calib if calib is not None else CalibrationSet.load()
        feeds = build.representative_inputs(f32, calib)
        calibrated = build.calibrate_only(model, feeds, f32)
        ranges = build.collect_ranges(calibrated, calib, method)
        calibrated = build.rewrite_ranges(calibrated, ranges)
        cal_obj = fbgraph.load(calibrated)
        sg = cal_obj.subgraphs[0]
        deny: set[str] = set()
        for op, layer in zip(sg.operators, fbgraph.op_layers(cal_obj)):
            if layer not in int8_layers:  # an op's node name: its output name(s)
                outs = [fbgraph.tensor_name(sg.tensors[t]) for t in op.outputs]
                deny.update(outs + [";".join(outs)])
        m = fbgraph.load(build.add_signature(build.quantize(calibrated, deny), model.variant))
        passes.states_to_int8_io(m, model.variant.state_names)
        passes.unquantize_islands(m, {i for i, l in enumerate(fbgraph.op_layers(m))
                                      if l is not None and l not in int8_layers})
        cal_info = {"method": method.value, "clips": calib.names,
                    "frames": int(sum(len(f) for f in calib.frames)),
                    "moving_average": "cumulative"}
    else:
        m = fbgraph.load(f32)
    fp16_layers = {k for k, p in prec.items() if p is Precision.FP16}
    if fp16_layers:
        layers = fbgraph.op_layers(m)
        passes.weights_to_fp16(m, {i for i, l in enumerate(layers) if l in fp16_layers})
    meta = metadata.build_metadata(m, model.variant, recipe.label(), cal_info)
    wrong = [l["name"] for l in meta["layers"] if l["precision"] != prec[l["name"]].value]
    if wrong:
        raise ConversionError(f"recipe {recipe.name!r}: layers {', '.join(wrong)} did not "
                              "convert to the requested precision")
    metadata.attach(m, meta)
    return fbgraph.dump(m)


def summarize(path: Path, data: bytes, max_diff: float | None) -> ExportResult:
    """Size, ops and layers of a written file (read back from its bytes and metadata)."""
    m = fbgraph.load(data)
    meta = metadata.read_metadata(data, path) or {}
    return ExportResult(path=path, variant=meta.get("variant", "?"),
                        precision=meta.get("precision", "?"), file_bytes=len(data),
                        param_bytes=fbgraph.param_bytes_by_layer(m)["*"],
                        ops=tuple(o["op"] for o in fbgraph.op_list(m)),
                        layers=tuple(meta.get("layers", ())),
                        calibration=meta.get("calibration"), max_mask_diff=max_diff)


def export_model(model: TinyDenoiser, out: str | os.PathLike, recipe: Recipe | str = "mixed",
                 calib: CalibrationSet | None = None, method: CalibMethod | str | None = None,
                 check: bool = True) -> ExportResult:
    """Convert, write atomically, and (``check``) measure max |mask diff| on the calibration clips."""
    data = convert(model, recipe, calib, method)
    path = write_bytes(out, data)
    diff = None
    if check:
        calib = calib if calib is not None else CalibrationSet.load()
        diff = compare(model, data, calib.frames).max_abs
    return summarize(path, data, diff)


def export_variant(variant: str, precision: str, out_path: str | os.PathLike) -> Path:
    """Random-weight ``variant`` (deterministic seed) exported at ``precision``; returns the path."""
    model = TinyDenoiser(get_variant(variant), seed=VARIANT_SEED)
    return write_bytes(out_path, convert(model, precision))


class _CallableModule(types.ModuleType):
    """``converters.export`` is both this module and the front-door function."""

    def __call__(self, *args: Any, **kwargs: Any) -> ExportResult:
        from tfdenoise.converters import _export

        return _export(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
