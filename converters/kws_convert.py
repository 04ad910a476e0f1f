"""Keyword-spotting networks (:mod:`tfdenoise.kws`) -> ``.tflite`` bytes: deployment layers,
precision recipes, the conversion and its ``tfdenoise`` metadata.

The deployment graph is the network at batch 1: input ``features`` ``[1, window_frames,
n_features]`` (float32, or int8 in an INT8 file), output ``probs`` ``[1, n_classes]``; the
network keeps no state, so one call per feature hop classifies the last ``window_frames``
frames (the streaming loop of :class:`tfdenoise.kws.models.KwsStream`, which also drives a
:class:`~tfdenoise.converters.kws_runner.TFLiteKws`).

Precision recipes are data, as for the denoiser (``recipes/kws_fp32.json``,
``recipes/kws_int8.json``, family ``kws``), resolved over the KWS deployment layers
(:func:`deploy_layers`: ``conv_0``, ``dw_<i>``, ``pw_<i>``, ``fc_<i>``, ``pool``, ``logits``,
``probs``; BatchNorm, ReLU, dropout and reshapes fold into the kernel layer next to them).
For now a recipe must give the whole model one precision:

* **fp32**: the stock converter (``TFLiteConverter.from_keras_model``), BatchNorm folded;
* **int8**: full integer (``Optimize.DEFAULT``, ``TFLITE_BUILTINS_INT8`` only, int8 input and
  output), activation ranges = the converter's min / max over ``calib_windows`` (feature
  windows of training clips, :func:`tfdenoise.converters.kws.training_windows`); weights
  symmetric, one scale per output channel in convolutions and one per tensor in dense layers
  (the recipe's ``"per_channel"``: ``"conv"``, the default; ``true``: per channel everywhere;
  ``false``: one scale per tensor everywhere, docs/design.md §4).  Per-channel scales cost a
  float scale and an int64 zero point per channel in the file; dense layers keep the CMSIS-NN
  s8 fully-connected form (one scale per tensor).

Every file carries the ``tfdenoise`` metadata of the KWS family
(:func:`tfdenoise.converters.metadata.build_kws_metadata`: labels, feature config, feature hop,
layers), which the MCU report reads to price feature extraction per hop and the runner reads
for the labels and features.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from pathlib import Path

import numpy as np

from tfdenoise.errors import ConversionError, InputError, RecipeError
from tfdenoise.kws.features import feature_fields
from tfdenoise.kws.layertable import LayerSpec, Op
from tfdenoise.kws.models import KwsModel
from tfdenoise.quiet import native_stderr_muted
from tfdenoise.vocab import CalibMethod, LayerKind, Precision, RangeKind

from tfdenoise.converters import fbgraph, metadata, passes
from tfdenoise.converters.qat_export import apply_grids
from tfdenoise.converters.recipe import Recipe, builtin_names, load as load_recipe

#: KWS precisions a recipe may give the whole model (full INT8 or float).
KWS_PRECISIONS = (Precision.FP32, Precision.INT8)
#: Built-in recipe of each plain precision name.
BUILTIN = {"fp32": "kws_fp32", "int8": "kws_int8"}
#: Kind of each kernel op of a layer table (everything else folds into a kernel layer).
KERNEL_KIND = {Op.CONV: LayerKind.CONV, Op.DEPTHWISE: LayerKind.DEPTHWISE_CONV,
               Op.DENSE: LayerKind.DENSE, Op.AVGPOOL: LayerKind.POOL, Op.SOFTMAX: LayerKind.SOFTMAX}
INPUT_NAME, OUTPUT_NAME = "features", "probs"


# -- layers -----------------------------------------------------------------------------------

def deploy_layers(model: KwsModel) -> tuple[list[tuple[str, LayerKind]], dict[str, str]]:
    """The deployment layers ``[(name, kind)]`` in graph order, and the Keras layer -> deployment
    layer map (a kernel maps to itself; BatchNorm, ReLU, dropout, reshapes to the kernel before
    them, or after them when they come first, e.g. the DNN's ``flatten``)."""
    rows: list[LayerSpec] = model.spec.layers(model.n_classes)
    kernels: list[tuple[str, LayerKind]] = []
    fold: dict[str, str] = {}
    pending: list[str] = []
    last = None
    for r in rows:
        if r.op in KERNEL_KIND:
            kernels.append((r.name, KERNEL_KIND[r.op]))
            fold[r.name] = last = r.name
            fold.update({p: r.name for p in pending})
            pending = []
        elif last is not None:
            fold[r.name] = last
        else:
            pending.append(r.name)
    return kernels, fold


def op_layers(model_obj, model: KwsModel) -> list[str | None]:
    """Deployment layer of every operator of subgraph 0, from the Keras layer names the
    converter leaves in tensor names (``kws_cnn/fc_1/MatMul;kws_cnn/fc_1/Relu`` -> ``fc_1``);
    the softmax (whose output is the graph output) by its op; anything else inherits the layer
    of its producer, else of its consumer."""
    kernels, fold = deploy_layers(model)
    softmax = [n for n, k in kernels if k == LayerKind.SOFTMAX]
    sg = model_obj.subgraphs[0]
    names = [fbgraph.op_name(model_obj, op) for op in sg.operators]
    layer: list[str | None] = [None] * len(sg.operators)
    for i, op in enumerate(sg.operators):
        parts = [p for t in op.outputs if t >= 0
                 for p in re.split(r"[/;:]", fbgraph.tensor_name(sg.tensors[t]))]
        own = [p for p in parts if fold.get(p) == p]
        folded = [fold[p] for p in parts if p in fold]
        layer[i] = own[0] if own else (folded[0] if folded else None)
        if names[i] == "SOFTMAX" and softmax:
            layer[i] = softmax[0]
    prod, cons = fbgraph.producers(sg), fbgraph.consumers(sg)
    for _ in range(len(layer)):
        changed = False
        for i, op in enumerate(sg.operators):
            if layer[i] is not None:
                continue
            near = [layer[prod[t]] for t in op.inputs if t >= 0 and t in prod and layer[prod[t]]]
            if not near:
                near = [layer[c] for t in op.outputs for c in cons.get(t, []) if layer[c]]
            if near:
                layer[i], changed = near[0], True
        if not changed:
            break
    return layer


# -- recipes ----------------------------------------------------------------------------------

def kws_recipe(recipe: Recipe | str | os.PathLike) -> Recipe:
    """A recipe object from a plain precision (``fp32``, ``int8``), a built-in name
    (``kws_int8``) or a JSON path."""
    if isinstance(recipe, Recipe):
        return recipe
    text = str(recipe)
    if Path(text).suffix:
        return load_recipe(text)
    name = BUILTIN.get(text.lower(), text.lower())
    if name not in builtin_names("kws"):
        raise RecipeError(f"no such KWS recipe (built-in: {', '.join(BUILTIN)}, i.e. "
                          f"{', '.join(builtin_names('kws'))}; or a recipe JSON file)", text)
    return load_recipe(name)


def layer_precisions(recipe: Recipe, model: KwsModel) -> dict[str, Precision]:
    """The precision ``recipe`` gives each deployment layer of ``model``: one for the whole
    model (fp32 or int8), or int8 with the final softmax in fp32 (a float softmax after a
    DEQUANTIZE of the int8 logits: :func:`tfdenoise.converters.passes.float_softmax`)."""
    kernels = deploy_layers(model)[0]
    prec = recipe.resolve(tuple(n for n, _ in kernels))
    softmax = {n for n, k in kernels if k == LayerKind.SOFTMAX}
    used = set(prec.values())
    core = {v for k, v in prec.items() if k not in softmax}
    float_softmax = core == {Precision.INT8} and {prec[n] for n in softmax} == {Precision.FP32}
    if not float_softmax and (len(used) != 1 or next(iter(used)) not in KWS_PRECISIONS):
        got = ", ".join(f"{k}={v.value}" for k, v in prec.items())
        raise RecipeError(f"recipe {recipe.name!r}: KWS export supports whole-model fp32 or int8 "
                          f"(or int8 with an fp32 softmax) for now (got {got})", recipe.source or None)
    return prec


def resolve_precision(recipe: Recipe, model: KwsModel) -> Precision:
    """The precision of the file ``recipe`` makes of ``model``: fp32 or int8 (an int8 file may
    run its final softmax in float, :func:`layer_precisions`)."""
    prec = layer_precisions(recipe, model)
    used = set(prec.values())
    if recipe.calibration is not CalibMethod.MAX or recipe.ranges is not RangeKind.SYMMETRIC:
        got = (recipe.calibration.value if recipe.calibration is not CalibMethod.MAX
               else f"{recipe.ranges.value} ranges")
        raise RecipeError(f"recipe {recipe.name!r}: KWS INT8 calibration is the converter's "
                          f"min/max over the calibration windows, not {got}", recipe.source or None)
    return Precision.INT8 if Precision.INT8 in used else next(iter(used))


#: Weight quantization granularities a KWS recipe's optional ``"per_channel"`` may ask for.
PER_CHANNEL = {True: "per-channel", "conv": "per-channel conv, per-tensor dense",
               False: "per-tensor"}


def per_channel(recipe: Recipe) -> bool | str:
    """The recipe file's optional ``"per_channel"``: ``true`` (one weight scale per output
    channel in every layer), ``"conv"`` (per channel in convolutions, one scale per tensor in
    dense layers: the CMSIS-NN s8 fully-connected kernel) or ``false`` (one scale per tensor,
    docs/design.md §4).  Default ``"conv"``."""
    if not recipe.source:
        return "conv"
    try:
        data = json.loads(Path(recipe.source).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "conv"
    value = data.get("per_channel", "conv") if isinstance(data, dict) else "conv"
    if not any(value is k or (isinstance(k, str) and value == k) for k in PER_CHANNEL):
        raise RecipeError(f"'per_channel' must be true, false or \"conv\", not {value!r}",
                          recipe.source)
    return value


# -- conversion -------------------------------------------------------------------------------

def deploy_model(model: KwsModel):
    """The network at batch 1 (``features`` [1, T, F] -> ``probs``), sharing the layers (and
    so the weights) of ``model.model``: static shapes, no shape arithmetic in the graph."""
    from tfdenoise.keras import keras

    inp = keras.Input(model.spec.input_shape, batch_size=1, name=INPUT_NAME)
    x = inp
    for layer in model.model.layers[1:]:
        x = layer(x, training=False) if isinstance(layer, keras.layers.Dropout) else layer(x)
    return keras.Model(inp, x, name=model.model.name)


def check_windows(windows: np.ndarray | None, model: KwsModel, what: str = "calibration windows"
                  ) -> np.ndarray | None:
    """``windows`` as float32 ``[N, window_frames, n_features]`` (N >= 1, finite), or None."""
    if windows is None:
        return None
    x = np.asarray(windows, np.float32)
    want = tuple(model.spec.input_shape)
    if x.ndim != 3 or tuple(x.shape[1:]) != want or len(x) == 0:
        raise InputError(f"{what} must be [N >= 1, {want[0]}, {want[1]}] for {model.name}, "
                         f"got shape {list(x.shape)}")
    if not np.all(np.isfinite(x)):
        raise InputError(f"{what} contain NaN or infinity")
    return x


def _int8_converter(conv, tf, windows: np.ndarray, recipe: Recipe, calib_source: str | None) -> dict:
    """Set ``conv`` up for a full-INT8 file calibrated on ``windows``; the metadata's
    ``calibration`` entry."""
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([w[None]] for w in windows)
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    granularity = per_channel(recipe)
    if granularity is False:
        conv._experimental_disable_per_channel = True  # noqa: SLF001 (converter flags)
    elif granularity == "conv":
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True  # noqa: SLF001
    return {"method": "minmax", "windows": int(len(windows)),
            "weights": PER_CHANNEL[granularity], "source": calib_source}


def convert_kws(model: KwsModel, recipe: Recipe | str = "int8",
                calib_windows: np.ndarray | None = None, *, random_weights: bool = False,
                calib_source: str | None = None) -> bytes:
    """The ``.tflite`` bytes of ``model`` under ``recipe`` (fp32 | int8 | Recipe), with metadata.

    INT8 needs ``calib_windows`` ``[N, window_frames, n_features]`` (feature windows of
    training clips); ``calib_source`` says where they come from (kept in the metadata).
    """
    from tfdenoise.keras import tf

    recipe = kws_recipe(recipe)
    precision = resolve_precision(recipe, model)
    per_layer = layer_precisions(recipe, model)
    grids = getattr(model, "qat_grid", None) or {}
    kernels = deploy_layers(model)[0]
    recipe.check_bits({layer: g["bits"] for (layer, _), g in grids.items()}, tuple(n for n, _ in kernels),
                      {n for n, k in kernels if k in (LayerKind.DENSE, LayerKind.CONV, LayerKind.DEPTHWISE_CONV)})
    windows = check_windows(calib_windows, model)
    conv = tf.lite.TFLiteConverter.from_keras_model(deploy_model(model))
    calibration = None
    if precision is Precision.INT8:
        if windows is None:
            raise InputError("an INT8 export needs calibration windows (feature windows of "
                             "training clips, e.g. converters.kws.training_windows)")
        calibration = _int8_converter(conv, tf, windows, recipe, calib_source)
    try:
        with warnings.catch_warnings(), native_stderr_muted():
            warnings.filterwarnings("ignore", message=".*Statistics for quantized inputs")
            data = bytes(conv.convert())
    except Exception as exc:
        raise ConversionError(f"{precision.value} conversion of {model.name} failed "
                              f"({str(exc).splitlines()[0][:160]})") from exc
    m = fbgraph.load(data)
    layer_of = op_layers(m, model)
    kernels = deploy_layers(model)[0]
    missing = [n for n, _ in kernels if n not in layer_of]
    if missing:
        raise ConversionError(f"converted {model.name} graph has no operator for layers "
                              f"{', '.join(missing)}")
    weight_bits = {}
    if precision is Precision.INT8 and grids:
        info = apply_grids(m, layer_of, grids)
        weight_bits = {layer: i["weight_bits"] for layer, i in info.items()}
        calibration["weights"] = "QAT grid, per channel (as trained)"
    if per_layer != {n: precision for n in per_layer}:
        passes.float_softmax(m)
    f = model.features
    meta = metadata.build_kws_metadata(
        m, model=model.name.value, precision=precision.value, labels=list(model.labels),
        features=feature_fields(f), hop_ms=1000.0 * f.hop / f.sample_rate,
        layers=[(n, k.value) for n, k in kernels], op_layer=op_layers(m, model),  # after the passes
        calibration=calibration, random_weights=random_weights, weight_bits=weight_bits,
        qat=getattr(model, "qat_info", None))
    wrong = [l["name"] for l in meta["layers"] if l["precision"] != per_layer[l["name"]].value]
    if wrong:
        raise ConversionError(f"recipe {recipe.name!r}: layers {', '.join(wrong)} did not "
                              f"convert to {', '.join(per_layer[n].value for n in wrong)}")
    metadata.attach(m, meta)
    return fbgraph.dump(m)

