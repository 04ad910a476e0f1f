"""Keyword-spotting networks (:mod:`tfdenoise.kws`) -> ``.tflite`` (FP32 or full INT8) and back.

Front door::

    from tfdenoise.converters.kws import export_kws, training_windows, TFLiteKws
    windows, source = training_windows("../shared/data/kws/fsdd", model.features)
    result = export_kws(model, "out/kws_cnn.int8.tflite", "int8", windows)
    TFLiteKws(result.path).predict_windows(windows)      # probabilities [N, classes]

The deployment graph is the network at batch 1: input ``features`` ``[1, window_frames,
n_features]`` (float32, or int8 in an INT8 file), output ``probs`` ``[1, n_classes]``; the
network keeps no state, so one call per feature hop classifies the last ``window_frames``
frames (the streaming loop of :class:`tfdenoise.kws.models.KwsStream`, which also drives a
:class:`TFLiteKws`).

Precision recipes are data, as for the denoiser (``recipes/kws_fp32.json``,
``recipes/kws_int8.json``, family ``kws``), resolved over the KWS deployment layers
(:func:`deploy_layers`: ``conv_0``, ``dw_<i>``, ``pw_<i>``, ``fc_<i>``, ``pool``, ``logits``,
``probs``; BatchNorm, ReLU, dropout and reshapes fold into the kernel layer next to them).
For now a recipe must give the whole model one precision:

* **fp32**: the stock converter (``TFLiteConverter.from_keras_model``), BatchNorm folded;
* **int8**: full integer (``Optimize.DEFAULT``, ``TFLITE_BUILTINS_INT8`` only, int8 input and
  output), activation ranges = the converter's min / max over ``calib_windows`` (feature
  windows of training clips, :func:`training_windows`); weights symmetric, one scale per
  output channel in convolutions and one per tensor in dense layers (the recipe's
  ``"per_channel"``: ``"conv"``, the default; ``true``: per channel everywhere; ``false``: one
  scale per tensor everywhere, docs/design.md §4).  Per-channel scales cost a float scale and
  an int64 zero point per channel in the file; dense layers keep the CMSIS-NN s8
  fully-connected form (one scale per tensor).

Every file carries the ``tfdenoise`` metadata of the KWS family
(:func:`tfdenoise.converters.metadata.build_kws_metadata`: labels, feature config, feature hop,
layers), which the MCU report reads to price feature extraction per hop.  :func:`export_kws`
writes the file atomically and compares it with Keras on the calibration windows (max
|probability difference| and top-1 agreement).
"""
from __future__ import annotations

import json
import os
import re
import warnings
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tfdenoise.errors import ConversionError, InputError, ModelError, RecipeError
from tfdenoise.fileio import write_bytes
from tfdenoise.kws.features import FeatureConfig, features as compute_features
from tfdenoise.kws.models import KwsModel, LayerSpec, Op
from tfdenoise.quiet import native_stderr_muted
from tfdenoise.vocab import CalibMethod, LayerKind, Precision

from tfdenoise.converters import fbgraph, metadata
from tfdenoise.converters.interpreter import IOTensor, _interpreter_class, check_flatbuffer
from tfdenoise.converters.recipe import Recipe, builtin_names, load as load_recipe

#: KWS precisions a recipe may give the whole model (full INT8 or float).
KWS_PRECISIONS = (Precision.FP32, Precision.INT8)
#: Built-in recipe of each plain precision name.
BUILTIN = {"fp32": "kws_fp32", "int8": "kws_int8"}
#: Kind of each kernel op of a layer table (everything else folds into a kernel layer).
KERNEL_KIND = {Op.CONV: LayerKind.CONV, Op.DEPTHWISE: LayerKind.DEPTHWISE_CONV,
               Op.DENSE: LayerKind.DENSE, Op.AVGPOOL: LayerKind.POOL, Op.SOFTMAX: LayerKind.SOFTMAX}
#: How many training windows calibrate an INT8 export by default (on the FSDD CNN, 1,000
#: windows kept the INT8 test accuracy within 1 clip of Keras, 256 lost 2-3 of 300).
CALIB_WINDOWS = 1000
#: Seed of the choice of calibration clips.
CALIB_SEED = 0
#: Equivalence check tolerances (a warning beyond them): FP32 max |probability difference|;
#: INT8 share of windows whose top-1 class agrees with Keras.
FP32_MAX_ABS = 1e-4
INT8_MIN_AGREEMENT = 0.95
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


def resolve_precision(recipe: Recipe, model: KwsModel) -> Precision:
    """The one precision ``recipe`` gives every deployment layer of ``model``."""
    names = tuple(n for n, _ in deploy_layers(model)[0])
    prec = recipe.resolve(names)
    used = set(prec.values())
    if len(used) != 1 or next(iter(used)) not in KWS_PRECISIONS:
        got = ", ".join(f"{k}={v.value}" for k, v in prec.items())
        raise RecipeError(f"recipe {recipe.name!r}: KWS export supports whole-model fp32 or int8 "
                          f"for now (got {got})", recipe.source or None)
    if recipe.calibration is not CalibMethod.MAX:
        raise RecipeError(f"recipe {recipe.name!r}: KWS INT8 calibration is the converter's "
                          f"min/max over the calibration windows, not {recipe.calibration.value}",
                          recipe.source or None)
    return next(iter(used))


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
    windows = check_windows(calib_windows, model)
    conv = tf.lite.TFLiteConverter.from_keras_model(deploy_model(model))
    calibration = None
    if precision is Precision.INT8:
        if windows is None:
            raise InputError("an INT8 export needs calibration windows (feature windows of "
                             "training clips, e.g. converters.kws.training_windows)")
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
        calibration = {"method": "minmax", "windows": int(len(windows)),
                       "weights": PER_CHANNEL[granularity], "source": calib_source}
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
    f = model.features
    meta = metadata.build_kws_metadata(
        m, model=model.name.value, precision=precision.value, labels=list(model.labels),
        features=feature_fields(f), hop_ms=1000.0 * f.hop / f.sample_rate,
        layers=[(n, k.value) for n, k in kernels], op_layer=layer_of, calibration=calibration,
        random_weights=random_weights)
    wrong = [l["name"] for l in meta["layers"] if l["precision"] != precision.value]
    if wrong:
        raise ConversionError(f"recipe {recipe.name!r}: layers {', '.join(wrong)} did not "
                              f"convert to {precision.value}")
    metadata.attach(m, meta)
    return fbgraph.dump(m)


def feature_fields(cfg: FeatureConfig) -> dict[str, Any]:
    """The fields of a FeatureConfig as plain JSON values (``FeatureConfig(**fields)`` rebuilds it)."""
    return {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(cfg).items()}


# -- running a KWS file -----------------------------------------------------------------------

class TFLiteKws:
    """A KWS ``.tflite`` file behind the interface of :class:`~tfdenoise.kws.models.KwsModel`.

    ``predict_windows`` quantizes the float feature windows with the input tensor's scale and
    zero point (INT8 files) and dequantizes the output; ``labels`` and ``features`` come from
    the file's metadata.  :meth:`stream` is the streaming loop (one decision per hop).
    """

    def __init__(self, path_or_bytes: str | os.PathLike | bytes, backend: str = "litert") -> None:
        if isinstance(path_or_bytes, (bytes, bytearray)):
            self.path, self.data = Path("<memory>"), bytes(path_or_bytes)
        else:
            self.path = Path(path_or_bytes)
            if not self.path.is_file():
                raise ModelError("no such .tflite file", self.path)
            self.data = self.path.read_bytes()
        check_flatbuffer(self.data, self.path)
        meta = metadata.read_metadata(self.data, self.path)
        if not metadata.is_kws(meta):
            raise ModelError("not a tfdenoise keyword-spotting model (no \"family\": \"kws\" "
                             "metadata)", self.path)
        self.metadata: dict = meta
        try:
            self.labels: list[str] = [str(x) for x in meta["labels"]]
            self.features = FeatureConfig(**meta["features"])
        except (KeyError, TypeError, InputError) as exc:
            raise ModelError(f"bad KWS metadata ({exc})", self.path) from None
        self.model_name: str = str(meta.get("model", "?"))
        self.precision: str = str(meta.get("precision", "?"))
        self.backend = backend
        try:
            with native_stderr_muted():
                self.interpreter = _interpreter_class(backend)(model_content=self.data)
                self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"the interpreter rejects the file ({str(exc).splitlines()[0][:120]})",
                             self.path) from None
        (inp,), (out,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        self.input, self.output = _io(inp), _io(out)
        want = (1, self.features.window_frames, self.features.n_features)
        if self.input.shape != want or self.output.shape != (1, len(self.labels)):
            raise ModelError(f"input {list(self.input.shape)} / output {list(self.output.shape)} do "
                             f"not match the metadata ({list(want)}, {len(self.labels)} labels)",
                             self.path)

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def window_frames(self) -> int:
        return self.features.window_frames

    @property
    def n_features(self) -> int:
        return self.features.n_features

    @property
    def name(self) -> str:
        return self.model_name

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, n_classes]`` (float32) of windows ``[n, window_frames, n_features]``."""
        x = np.asarray(windows, np.float32)
        if x.ndim == 2:
            x = x[None]
        want = (self.window_frames, self.n_features)
        if x.ndim != 3 or tuple(x.shape[1:]) != want:
            raise InputError(f"{self.name} expects windows [n, {want[0]}, {want[1]}], got shape "
                             f"{list(x.shape)}")
        it, out = self.interpreter, np.empty((len(x), self.n_classes), np.float32)
        for i, w in enumerate(x):
            it.set_tensor(self.input.index, self.input.from_float(w[None]))
            it.invoke()
            out[i] = self.output.to_float(it.get_tensor(self.output.index)).reshape(-1)
        return out

    def offline_probs(self, features: np.ndarray, batch: int = 256) -> np.ndarray:
        """Every window of ``features [T, n_features]``: ``[T - window_frames + 1, n_classes]``
        (as :meth:`tfdenoise.kws.models.KwsModel.offline_probs`)."""
        x = self._check_features(features)
        w = self.window_frames
        if len(x) < w:
            return np.zeros((0, self.n_classes), np.float32)
        return self.predict_windows(np.lib.stride_tricks.sliding_window_view(x, w, axis=0)
                                    .transpose(0, 2, 1))

    def stream(self):
        """A stateful ``step(feature_frame) -> probs | None`` (:class:`~tfdenoise.kws.models.KwsStream`)."""
        from tfdenoise.kws.models import KwsStream

        return KwsStream(self)

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(f"{self.name} expects features [frames, {self.n_features}], "
                             f"got shape {list(x.shape)}")
        if not np.all(np.isfinite(x)):
            raise InputError("features contain NaN or infinity")
        return x


def _io(details: dict) -> IOTensor:
    q = details.get("quantization_parameters", {})
    scales, zps = q.get("scales", np.zeros(0)), q.get("zero_points", np.zeros(0))
    return IOTensor(details["name"], int(details["index"]), tuple(int(s) for s in details["shape"]),
                    details["dtype"], float(scales[0]) if len(scales) else 0.0,
                    int(zps[0]) if len(zps) else 0)


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
        return {"path": str(self.path), "family": metadata.KWS_FAMILY, "model": self.model,
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
    centred in the window without noise; and a one-line description of where they come from.

    The training split is the checkpoint's: ``dataset`` (FSDD's indices 0-4 are test, a
    stratified ``valid_fraction`` held out) or ``speaker:<name>``.  Clips are drawn at random
    (``CALIB_SEED``) from the training split.
    """
    from tfdenoise.kws import data

    clips = data.list_clips(folder)
    if split.startswith("speaker:"):
        train, _, _ = data.leave_one_speaker_out(clips, split.split(":", 1)[1], valid_fraction, seed)
    else:
        train, _, _ = data.dataset_split(clips, valid_fraction, seed)
    if not train:
        raise InputError("no training clips for calibration", folder)
    rng = np.random.default_rng(CALIB_SEED)
    chosen = sorted(rng.permutation(len(train))[:max(1, int(limit))])
    picked = [train[i] for i in chosen]
    signals = data.load_clips(picked, cache_dir)
    windows = np.stack([compute_features(data.place(x, cfg.window_samples), cfg) for x in signals])
    source = (f"{Path(folder).name}: {len(picked)} of {len(train)} training clips ({split} split), "
              "centred, no noise")
    return windows.astype(np.float32), source


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


__all__ = ["BUILTIN", "KwsCheck", "KwsExportResult", "TFLiteKws", "compare_kws", "convert_kws",
           "default_calibration_data", "deploy_layers", "export_kws", "format_result",
           "kws_recipe", "training_windows"]
