"""Export a TinyDenoiser to ``.tflite`` at a precision recipe (fp32, fp16, int8, mixed, custom).

The same conversion exports a user's Keras model (:class:`tfdenoise.converters.keras_model.KerasModel`):
what differs (signature, recipe resolution over its layer names and types, op -> layer map,
metadata) comes from the model's deployment-graph adapter (:func:`build.graph_of`).

:func:`convert` returns the flatbuffer bytes; :func:`export_model` writes them atomically,
checks them against Keras and reports size, ops and per-layer precision;
:func:`export_variant` is the random-weight shortcut for hardware sweeps.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tfdenoise.errors import ConversionError
from tfdenoise.fileio import write_bytes
from tfdenoise.models import TinyDenoiser, get_variant
from tfdenoise.vocab import FILE_PRECISIONS, RangeKind

from tfdenoise.converters import build, fbgraph, metadata, passes
from tfdenoise.converters.calibration import CalibrationSet
from tfdenoise.converters.check import WARN_P99, CheckResult, compare
from tfdenoise.converters.qat_export import apply_grids, trained_ranges
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
    #: Keras vs .tflite mask difference on the calibration clips (None: not checked)
    mask_check: CheckResult | None = None
    random_weights: bool = False

    @property
    def max_mask_diff(self) -> float | None:
        return None if self.mask_check is None else self.mask_check.max_abs

    @property
    def warnings(self) -> tuple[str, ...]:
        """What a user must hear about this file (random weights, mask check out of tolerance)."""
        out = []
        if self.random_weights:
            out.append("RANDOM (untrained) weights: export a checkpoint or a shipped model "
                       "(--pretrained NAME) for a model that denoises")
        if self.mask_check is not None and not self.mask_check.within(self.precision):
            out.append(f"|mask diff| vs Keras: 99th percentile {self.mask_check.p99_abs:.3g} is "
                       f"above the {WARN_P99.get(self.precision, WARN_P99['int8']):g} tolerance of "
                       f"{self.precision} (max {self.mask_check.max_abs:.3g}): expect a quality "
                       "loss; score it with tfdenoise validate")
        return tuple(out)

    @property
    def param_mb(self) -> float:
        return self.param_bytes / MB

    @property
    def file_mb(self) -> float:
        return self.file_bytes / MB


def _quantize_int8(model, graph, f32: bytes, calib: CalibrationSet | None, method: CalibMethod,
                   int8_layers: set[str], kind: RangeKind = RangeKind.SYMMETRIC) -> tuple[object, dict]:
    """Calibrate ``model`` and quantize the ops of ``int8_layers`` to INT8 (the others stay float).

    Activation ranges come from the calibration clips by ``method``, laid out as ``kind``
    says (:class:`~tfdenoise.vocab.RangeKind`); a stage-2 QAT checkpoint's
    trained ranges replace them where the graph has the tensor. Returns the quantized flatbuffer
    model object and the metadata ``calibration`` entry.
    """
    calib = calib if calib is not None else CalibrationSet.load()
    feeds = build.representative_inputs(f32, calib)
    calibrated = build.calibrate_only(model, feeds, f32)
    ranges = build.collect_ranges(calibrated, calib, method, kind)
    qat, n_trained = getattr(model, "qat_info", None) or {}, 0
    if qat.get("act_ranges"):  # a stage-2 QAT checkpoint: the ranges it trained with
        cal_obj = fbgraph.load(calibrated)
        trained = trained_ranges(cal_obj, graph.op_layers(cal_obj), qat["act_ranges"])
        trained = {t: r for t, r in trained.items() if t in ranges}
        ranges.update(trained)
        n_trained = len(trained)
    calibrated = build.rewrite_ranges(calibrated, ranges)
    cal_obj = fbgraph.load(calibrated)
    sg = cal_obj.subgraphs[0]
    deny: set[str] = set()
    for op, layer in zip(sg.operators, graph.op_layers(cal_obj)):
        if layer not in int8_layers:  # an op's node name: its output name(s)
            outs = [fbgraph.tensor_name(sg.tensors[t]) for t in op.outputs]
            deny.update(outs + [";".join(outs)])
    m = fbgraph.load(build.add_signature(build.quantize(calibrated, deny), graph.io))
    passes.states_to_int8_io(m, graph.io.state_names)
    passes.unquantize_islands(m, {i for i, l in enumerate(graph.op_layers(m))
                                  if l is not None and l not in int8_layers})
    one_sided = any(lo == 0.0 for lo, _ in ranges.values())   # calibrated or trained: as written
    written = RangeKind.ASYMMETRIC if one_sided else RangeKind.SYMMETRIC
    cal_info = {"method": method.value, "ranges": written.value, "clips": calib.names,
                "frames": int(sum(len(f) for f in calib.frames)),
                "moving_average": "cumulative",
                **({"qat_trained_ranges": n_trained} if n_trained else {})}
    return m, cal_info


def convert(model, recipe: Recipe | str = "mixed",
            calib: CalibrationSet | None = None,
            method: CalibMethod | str | None = None, random_weights: bool = False,
            ranges: RangeKind | str | None = None) -> bytes:
    """The ``.tflite`` bytes of ``model`` (a TinyDenoiser or a user's Keras model) under
    ``recipe``, with ``tfdenoise`` metadata.  ``method`` and ``ranges`` (INT8 activation
    statistic and layout) default to the recipe's.

    ``random_weights`` marks an untrained model in the metadata, so that every report and
    score of the file can say so.
    """
    recipe = load_recipe(recipe) if isinstance(recipe, str) else recipe
    graph = build.graph_of(model)
    prec = graph.resolve(recipe)
    method = CalibMethod(method) if method is not None else recipe.calibration
    kind = RangeKind(ranges) if ranges is not None else recipe.ranges
    f32 = build.convert_float(model)
    graph.check_float(f32)
    int8_layers = {k for k, p in prec.items() if p is Precision.INT8}
    if int8_layers:
        m, cal_info = _quantize_int8(model, graph, f32, calib, method, int8_layers, kind)
    else:
        m, cal_info = fbgraph.load(f32), None
    grids = getattr(model, "qat_grid", None) or {}
    graph.check_bits(recipe, {layer: g["bits"] for (layer, _), g in grids.items()})
    weight_bits = {}
    int8_grids = {key: g for key, g in grids.items() if prec.get(key[0]) is Precision.INT8}
    if int8_grids:  # a QAT checkpoint: its trained grid, not the converter's scales
        info = apply_grids(m, graph.op_layers(m), int8_grids)
        weight_bits = {layer: i["weight_bits"] for layer, i in info.items()}
    fp16_layers = {k for k, p in prec.items() if p is Precision.FP16}
    if fp16_layers:
        layers = graph.op_layers(m)
        passes.weights_to_fp16(m, {i for i, l in enumerate(layers) if l in fp16_layers})
    meta = graph.metadata(m, graph.label(recipe), cal_info, random_weights, weight_bits,
                          getattr(model, "qat_info", None))
    wrong = [f"{l['name']}" + (f" ({l['type']})" if l.get("type") else "") + f": {l['precision']}"
             for l in meta["layers"] if l["precision"] != prec[l["name"]].value]
    if wrong:
        raise ConversionError(f"recipe {recipe.name!r}: layers did not convert to the requested "
                              f"precision ({'; '.join(wrong)}: the converter keeps their ops "
                              "in another precision)")
    metadata.attach(m, meta)
    return fbgraph.dump(m)


def summarize(path: Path, data: bytes, mask_check: CheckResult | None) -> ExportResult:
    """Size, ops and layers of a written file (read back from its bytes and metadata)."""
    m = fbgraph.load(data)
    meta = metadata.read_metadata(data, path) or {}
    name = meta.get("variant") or (meta.get("keras") or {}).get("model", "?")
    return ExportResult(path=path, variant=name,
                        precision=meta.get("precision", "?"), file_bytes=len(data),
                        param_bytes=fbgraph.param_bytes_by_layer(m)["*"],
                        ops=tuple(o["op"] for o in fbgraph.op_list(m)),
                        layers=tuple(meta.get("layers", ())),
                        calibration=meta.get("calibration"), mask_check=mask_check,
                        random_weights=bool(meta.get("random_weights", False)))


def export_model(model, out: str | os.PathLike, recipe: Recipe | str = "mixed",
                 calib: CalibrationSet | None = None, method: CalibMethod | str | None = None,
                 check: bool = True, random_weights: bool = False,
                 ranges: RangeKind | str | None = None) -> ExportResult:
    """Convert, write atomically, and (``check``) measure max |mask diff| on the calibration clips."""
    data = convert(model, recipe, calib, method, random_weights, ranges)
    path = write_bytes(out, data)
    result = None
    if check:
        calib = calib if calib is not None else CalibrationSet.load()
        result = compare(model, data, calib.frames)
    return summarize(path, data, result)


def export_variant(variant: str, precision: str, out_path: str | os.PathLike) -> Path:
    """Random-weight ``variant`` (deterministic seed) exported at ``precision``; returns the path."""
    model = TinyDenoiser(get_variant(variant), seed=VARIANT_SEED)
    return write_bytes(out_path, convert(model, precision, random_weights=True))
