"""The three reference keyword-spotting networks (docs/design.md §7): dnn, cnn, dscnn.

Each network is a function of the number of classes and has its own
:class:`~tfdenoise.kws.features.FeatureConfig`.  Its input is one window of feature frames
``[batch, window_frames, n_features]`` (time first, as the feature extractor writes them) and
its output is class probabilities ``[batch, n_classes]`` (softmax).  No network keeps any
state between windows: a stream classifies the last ``window_frames`` frames once per hop.

* ``cnn`` -- the STM32F7 system's network (Sainath & Parada's ``cnn-one-fstride4`` as
  published in ARM's ML-KWS-for-MCU code): log-mel 40 x 30 frames, read as the image
  ``[30 (time), 40 (mel), 1]`` (the window's own layout: no transpose op on the MCU), so the
  kernel ``(30, 8)`` with stride ``(1, 4)`` is the paper's 8 (mel) x 30 (time) kernel with
  stride 4 (mel) x 1 (time) and gives ``[1, 9, 186]``; Conv2D 186 + ReLU -> flatten 1674 ->
  FC 32 (linear low-rank layer, as in that code) -> FC 128 + ReLU -> FC 128 + ReLU -> classes.
  With 6 classes: 119,936 parameters and 476,576 MACs (84 % in the conv), every layer with
  its bias and no BatchNorm.
* ``dscnn`` -- the MLPerf Tiny KWS reference (DS-CNN small): MFCC 49 x 10 as ``[49, 10, 1]``;
  Conv2D 64 (10 x 4, stride 2 x 2, same) + BN + ReLU -> ``[25, 5, 64]``; 4 x (depthwise 3 x 3
  + BN + ReLU + pointwise 64 + BN + ReLU); average pool over the whole remaining 25 x 5 map
  (MLPerf's code pools ``(49 // 2, 10 // 2) = (24, 5)`` and so ignores the last row; the
  counts are the same); FC classes.  Dropout 0.2 after the first block and 0.4 before the
  pool as in MLPerf (inactive at inference); its L2 weight decay is the trainer's business.
  2,656,768 MACs with 12 classes.
* ``dnn`` -- the Amazon feedforward model: the stacked window ``[49, 40]`` flattened to 1,960
  -> 3 x (FC 112 + BN + ReLU) -> FC classes: 247,418 parameters with 10 classes and
  247,644 with 12 (89 % in the first layer).

Layer names are a contract with the exporter's recipes and the MCU report: ``conv_0``,
``dw_<i>`` / ``pw_<i>`` (block i = 1..4), ``fc_<i>``, ``bn_<i>`` / ``bn_dw_<i>`` /
``bn_pw_<i>`` (each folds into the conv or FC just before it), ``relu_*``, ``pool``,
``flatten``, ``logits`` (the last FC, linear) and ``probs`` (softmax).

:func:`describe` counts parameters and MACs by hand from each network's layer table
(:func:`layer_table`), without TensorFlow; the tests check every count against Keras.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tfdenoise.errors import InputError, ModelError
from tfdenoise.fileio import ordinary_mode
from tfdenoise.kws.features import CNN_FEATURES, DNN_FEATURES, DSCNN_FEATURES, FeatureConfig
from tfdenoise.models import CONFIG_FILE, WEIGHTS_FILE
from tfdenoise.vocab import KwsModelName

#: What ``config.json`` says to mark a keyword-spotting checkpoint (a denoiser's has "variant").
FAMILY = "kws"


class Op(StrEnum):
    """What one row of a layer table does (how it is built and counted)."""

    RESHAPE = "reshape"        # the window [T, F] as an image [T, F, 1]
    CONV = "conv"              # Conv2D with bias
    DEPTHWISE = "depthwise"    # DepthwiseConv2D (multiplier 1) with bias
    DENSE = "dense"            # fully connected with bias
    BATCHNORM = "batchnorm"    # gamma, beta, moving mean, moving variance
    RELU = "relu"
    DROPOUT = "dropout"        # training only
    AVGPOOL = "avgpool"
    FLATTEN = "flatten"
    SOFTMAX = "softmax"


@dataclass(frozen=True)
class LayerSpec:
    """One Keras layer of a network, as built and as counted."""

    name: str
    op: Op
    units: int = 0                       # conv filters / dense units
    kernel: tuple[int, int] = (1, 1)     # conv / depthwise kernel, pool size
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"               # "valid" | "same"
    activation: str | None = None        # fused activation of a conv / dense ("relu")
    rate: float = 0.0                    # dropout rate


def _out_len(n: int, k: int, s: int, padding: str) -> int:
    return math.ceil(n / s) if padding == "same" else (n - k) // s + 1


def count_layer(spec: LayerSpec, shape: tuple[int, ...]) -> tuple[tuple[int, ...], int, int]:
    """Hand count of one layer on its input ``shape`` (no batch): output shape, params, MACs.

    conv: ``out_h*out_w*kh*kw*cin*cout`` MACs, ``kh*kw*cin*cout + cout`` parameters;
    depthwise: ``out_h*out_w*kh*kw*c`` MACs, ``kh*kw*c + c`` parameters; dense: ``in*out``
    MACs, ``in*out + out`` parameters; batchnorm: 4 parameters per channel (2 trainable);
    everything else: no parameters and no MACs.
    """
    op = spec.op
    if op is Op.RESHAPE:
        return (*shape, 1), 0, 0
    if op in (Op.CONV, Op.DEPTHWISE, Op.AVGPOOL):
        h, w, c = shape
        (kh, kw), (sh, sw) = spec.kernel, spec.strides
        oh, ow = _out_len(h, kh, sh, spec.padding), _out_len(w, kw, sw, spec.padding)
        if op is Op.CONV:
            weights = kh * kw * c * spec.units
            return (oh, ow, spec.units), weights + spec.units, oh * ow * weights
        if op is Op.DEPTHWISE:
            return (oh, ow, c), kh * kw * c + c, oh * ow * kh * kw * c
        return (oh, ow, c), 0, 0
    if op is Op.DENSE:
        (n,) = shape
        return (spec.units,), n * spec.units + spec.units, n * spec.units
    if op is Op.BATCHNORM:
        return shape, 4 * shape[-1], 0
    if op is Op.FLATTEN:
        return (math.prod(shape),), 0, 0
    return shape, 0, 0  # relu, dropout, softmax


# -- the three networks ------------------------------------------------------------------------

def _head(n_classes: int) -> list[LayerSpec]:
    return [LayerSpec("logits", Op.DENSE, n_classes), LayerSpec("probs", Op.SOFTMAX)]


def cnn_layers(n_classes: int) -> list[LayerSpec]:
    """STM32F7 / ``cnn-one-fstride4``: the window [30 (time), 40 (mel)] as a [30, 40, 1] image."""
    t = CNN_FEATURES.window_frames
    return [
        LayerSpec("to_image", Op.RESHAPE),
        LayerSpec("conv_0", Op.CONV, 186, kernel=(t, 8), strides=(1, 4), activation="relu"),
        LayerSpec("flatten", Op.FLATTEN),
        LayerSpec("fc_0", Op.DENSE, 32),  # linear low-rank layer
        LayerSpec("fc_1", Op.DENSE, 128, activation="relu"),
        LayerSpec("fc_2", Op.DENSE, 128, activation="relu"),
        *_head(n_classes),
    ]


DSCNN_FILTERS = 64
DSCNN_BLOCKS = 4


def dscnn_layers(n_classes: int) -> list[LayerSpec]:
    """MLPerf Tiny DS-CNN small on MFCC [49, 10]."""
    f = DSCNN_FILTERS
    t, n = DSCNN_FEATURES.window_frames, DSCNN_FEATURES.n_features
    out = [
        LayerSpec("to_image", Op.RESHAPE),
        LayerSpec("conv_0", Op.CONV, f, kernel=(10, 4), strides=(2, 2), padding="same"),
        LayerSpec("bn_0", Op.BATCHNORM),
        LayerSpec("relu_0", Op.RELU),
        LayerSpec("drop_0", Op.DROPOUT, rate=0.2),
    ]
    for i in range(1, DSCNN_BLOCKS + 1):
        out += [
            LayerSpec(f"dw_{i}", Op.DEPTHWISE, kernel=(3, 3), padding="same"),
            LayerSpec(f"bn_dw_{i}", Op.BATCHNORM),
            LayerSpec(f"relu_dw_{i}", Op.RELU),
            LayerSpec(f"pw_{i}", Op.CONV, f),
            LayerSpec(f"bn_pw_{i}", Op.BATCHNORM),
            LayerSpec(f"relu_pw_{i}", Op.RELU),
        ]
    pool = (math.ceil(t / 2), math.ceil(n / 2))  # the whole map after conv_0: 25 x 5
    return out + [
        LayerSpec("drop_pool", Op.DROPOUT, rate=0.4),
        LayerSpec("pool", Op.AVGPOOL, kernel=pool, strides=pool),
        LayerSpec("flatten", Op.FLATTEN),
        *_head(n_classes),
    ]


DNN_UNITS = (112, 112, 112)


def dnn_layers(n_classes: int) -> list[LayerSpec]:
    """Amazon feedforward: the stacked window [49, 40] -> 1,960 -> 3 x (FC 112 + BN + ReLU)."""
    out = [LayerSpec("flatten", Op.FLATTEN)]
    for i, units in enumerate(DNN_UNITS):
        out += [LayerSpec(f"fc_{i}", Op.DENSE, units), LayerSpec(f"bn_{i}", Op.BATCHNORM),
                LayerSpec(f"relu_{i}", Op.RELU)]
    return out + _head(n_classes)


@dataclass(frozen=True)
class KwsSpec:
    """One reference network: its features, its layer table and where it comes from."""

    name: KwsModelName
    features: FeatureConfig
    layers: Callable[[int], list[LayerSpec]]
    reference: str

    def build(self, n_classes: int, seed: int | None = None):
        """The Keras model of this network (:func:`build`)."""
        return build(self.name, n_classes, seed=seed)

    @property
    def input_shape(self) -> tuple[int, int]:
        return (self.features.window_frames, self.features.n_features)


MODELS: dict[KwsModelName, KwsSpec] = {
    KwsModelName.DNN: KwsSpec(KwsModelName.DNN, DNN_FEATURES, dnn_layers,
                              "Amazon streaming state-free feedforward DNN (about 250 K parameters)"),
    KwsModelName.CNN: KwsSpec(KwsModelName.CNN, CNN_FEATURES, cnn_layers,
                              "STM32F7 KWS network (cnn-one-fstride4, 186 filters)"),
    KwsModelName.DSCNN: KwsSpec(KwsModelName.DSCNN, DSCNN_FEATURES, dscnn_layers,
                                "MLPerf Tiny KWS reference (DS-CNN small)"),
}


def get_spec(name: str | KwsModelName) -> KwsSpec:
    """Look a network up by case-insensitive name (``DSCNN`` == ``dscnn``)."""
    try:
        return MODELS[KwsModelName(str(name).lower())]
    except ValueError:
        raise InputError(f"unknown KWS model {name!r}; choose one of "
                         f"{', '.join(m.value for m in MODELS)}") from None


def _check_classes(n_classes: object) -> int:
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise InputError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    return int(n_classes)


def layer_table(name: str | KwsModelName, n_classes: int) -> list[dict]:
    """Every layer in graph order: name, op, output shape (no batch), params, MACs."""
    spec = get_spec(name)
    shape: tuple[int, ...] = spec.input_shape
    rows = []
    for layer in spec.layers(_check_classes(n_classes)):
        shape, params, macs = count_layer(layer, shape)
        rows.append({"name": layer.name, "op": layer.op.value, "output_shape": list(shape),
                     "params": params, "macs": macs})
    return rows


def feature_summary(features: FeatureConfig) -> dict:
    """A FeatureConfig as plain JSON values, with its derived sizes."""
    out = {k: (v.value if isinstance(v, StrEnum) else v) for k, v in asdict(features).items()}
    out["n_features"] = features.n_features
    out["window_seconds"] = round(features.window_seconds, 6)
    return out


def describe(name: str | KwsModelName, n_classes: int) -> dict:
    """Hand-counted summary of one network (plain JSON values; no TensorFlow needed).

    ``params`` counts every Keras weight (BatchNorm's moving statistics included);
    ``trainable_params`` leaves those out; ``deploy_params`` is what remains once every
    BatchNorm is folded into the conv / FC before it (the ``.tflite`` weights and biases).
    ``macs`` is per inference, i.e. per window (one per feature hop when streaming).
    """
    spec = get_spec(name)
    rows = layer_table(spec.name, n_classes)
    params = sum(r["params"] for r in rows)
    bn = sum(r["params"] for r in rows if r["op"] == Op.BATCHNORM)
    macs = sum(r["macs"] for r in rows)
    by_op: dict[str, int] = {}
    for r in rows:
        if r["macs"]:
            by_op[r["op"]] = by_op.get(r["op"], 0) + r["macs"]
    f = spec.features
    return {
        "model": spec.name.value,
        "reference": spec.reference,
        "n_classes": int(n_classes),
        "input_shape": list(spec.input_shape),
        "features": feature_summary(f),
        "params": params,
        "trainable_params": params - bn // 2,
        "deploy_params": params - bn,
        "macs": macs,
        "mac_share": {op: round(m / macs, 4) for op, m in by_op.items()},
        "inferences_per_second": round(f.sample_rate / f.hop, 3),
        "layers": rows,
    }


# -- Keras ------------------------------------------------------------------------------------

def _keras_layer(spec: LayerSpec, shape: tuple[int, ...], layers):
    op = spec.op
    if op is Op.RESHAPE:
        return layers.Reshape((*shape, 1), name=spec.name)
    if op is Op.CONV:
        return layers.Conv2D(spec.units, spec.kernel, strides=spec.strides, padding=spec.padding,
                             activation=spec.activation, name=spec.name)
    if op is Op.DEPTHWISE:
        return layers.DepthwiseConv2D(spec.kernel, strides=spec.strides, padding=spec.padding,
                                      depth_multiplier=1, activation=spec.activation, name=spec.name)
    if op is Op.DENSE:
        return layers.Dense(spec.units, activation=spec.activation, name=spec.name)
    if op is Op.BATCHNORM:
        return layers.BatchNormalization(name=spec.name)
    if op is Op.RELU:
        return layers.ReLU(name=spec.name)
    if op is Op.DROPOUT:
        return layers.Dropout(spec.rate, name=spec.name)
    if op is Op.AVGPOOL:
        return layers.AveragePooling2D(spec.kernel, strides=spec.strides, name=spec.name)
    if op is Op.FLATTEN:
        return layers.Flatten(name=spec.name)
    if op is Op.SOFTMAX:
        return layers.Softmax(name=spec.name)
    raise AssertionError(op)


def build(name: str | KwsModelName, n_classes: int, seed: int | None = None):
    """The Keras model of one network: ``[batch, window_frames, n_features]`` -> probabilities."""
    from tfdenoise.keras import keras, layers

    spec = get_spec(name)
    n_classes = _check_classes(n_classes)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inp = keras.Input(spec.input_shape, name="features")
    x, shape = inp, spec.input_shape
    for layer in spec.layers(n_classes):
        x = _keras_layer(layer, shape, layers)(x)
        shape = count_layer(layer, shape)[0]
    return keras.Model(inp, x, name=f"kws_{spec.name.value}")


class KwsModel:
    """One keyword-spotting network, its class labels and the Keras model (``model``)."""

    def __init__(self, name: str | KwsModelName, n_classes: int | None = None,
                 labels: Sequence[str] | None = None, seed: int | None = None) -> None:
        self.spec = get_spec(name)
        if labels is not None:
            labels = [str(x) for x in labels]
            if n_classes is None:
                n_classes = len(labels)
            if len(labels) != n_classes:
                raise InputError(f"{len(labels)} labels for {n_classes} classes")
            if len(set(labels)) != len(labels):
                raise InputError(f"duplicate labels in {labels}")
        if n_classes is None:
            raise InputError("give n_classes or labels")
        self.n_classes = _check_classes(n_classes)
        if labels is None:
            labels = [f"class_{i}" for i in range(self.n_classes)]
        self.labels: list[str] = labels
        self.model = build(self.spec.name, self.n_classes, seed=seed)
        self._predict_fn = None

    @property
    def name(self) -> KwsModelName:
        return self.spec.name

    @property
    def features(self) -> FeatureConfig:
        return self.spec.features

    @property
    def window_frames(self) -> int:
        return self.spec.features.window_frames

    @property
    def n_features(self) -> int:
        return self.spec.features.n_features

    def describe(self) -> dict:
        return {**describe(self.spec.name, self.n_classes), "labels": list(self.labels)}

    # -- inference ------------------------------------------------------------------------------
    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, n_classes]`` of windows ``[n, window_frames, n_features]``."""
        if self._predict_fn is None:
            from tfdenoise.keras import tf

            sig = tf.TensorSpec((None, *self.spec.input_shape), tf.float32)
            self._predict_fn = tf.function(lambda x: self.model(x, training=False),
                                           input_signature=[sig])
        return np.asarray(self._predict_fn(np.ascontiguousarray(windows, np.float32)))

    def offline_probs(self, features: np.ndarray, batch: int = 256) -> np.ndarray:
        """Classify every window of ``features [T, n_features]``: ``[T - window_frames + 1, n_classes]``.

        Row ``i`` is the decision once frame ``i + window_frames - 1`` has arrived (one per hop
        once the window is full), exactly what :meth:`stream` returns for that frame.
        """
        x = self._check_features(features)
        w = self.window_frames
        if len(x) < w:
            return np.zeros((0, self.n_classes), np.float32)
        windows = np.lib.stride_tricks.sliding_window_view(x, w, axis=0).transpose(0, 2, 1)
        return np.concatenate([self.predict_windows(windows[i:i + batch])
                               for i in range(0, len(windows), batch)])

    def stream(self) -> "KwsStream":
        """A stateful ``step(feature_frame [n_features]) -> probs [n_classes] | None``."""
        return KwsStream(self)

    def _check_features(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.n_features:
            raise InputError(f"{self.name} expects features [frames, {self.n_features}], "
                             f"got shape {list(x.shape)}")
        if not np.all(np.isfinite(x)):
            raise InputError("features contain NaN or infinity")
        return x


class KwsStream:
    """Streaming classification: a ring buffer of the last ``window_frames`` feature frames.

    Each call adds one frame and returns the probabilities of the window ending with it, or
    ``None`` while fewer than ``window_frames`` frames have arrived.  The network keeps no
    state, so the buffer is all there is: :meth:`reset` starts a new stream.
    """

    def __init__(self, model: KwsModel) -> None:
        self.model = model
        self._buf = np.zeros((model.window_frames, model.n_features), np.float32)
        self.frames = 0  # frames seen since the last reset

    def reset(self) -> None:
        self._buf[:] = 0.0
        self.frames = 0

    def __call__(self, frame: np.ndarray) -> np.ndarray | None:
        m = self.model
        x = m._check_features(np.asarray(frame, np.float32).reshape(1, -1))[0]
        w = m.window_frames
        self._buf[self.frames % w] = x
        self.frames += 1
        if self.frames < w:
            return None
        start = self.frames % w  # the oldest frame
        window = np.concatenate([self._buf[start:], self._buf[:start]])
        return m.predict_windows(window[None])[0]


# -- checkpoints -------------------------------------------------------------------------------

_CORE_KEYS = ("family", "name", "n_classes", "labels", "features")


def save_kws_checkpoint(model: KwsModel, path: str | os.PathLike, extra: dict | None = None) -> Path:
    """Write ``config.json`` (name, n_classes, labels, features, ``extra``) + ``weights.h5``
    into the folder ``path``, atomically (a temporary folder renamed over the old one)."""
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_CORE_KEYS))
    if clash:
        raise InputError(f"extra checkpoint keys {clash} are reserved")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    os.chmod(tmp, ordinary_mode(folder=True))
    try:
        model.model.save_weights(str(tmp / WEIGHTS_FILE))
        config = {"family": FAMILY, "name": model.name.value, "n_classes": model.n_classes,
                  "labels": list(model.labels), "features": feature_summary(model.features),
                  **extra}
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        os.replace(tmp, path)
        if old.exists():
            shutil.rmtree(old)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def read_kws_config(path: str | os.PathLike) -> dict:
    """The checked ``config.json`` of a KWS checkpoint folder (ModelError naming the file)."""
    cfg = Path(path) / CONFIG_FILE
    if not cfg.is_file():
        raise ModelError(f"not a KWS checkpoint (no {CONFIG_FILE})", Path(path))
    try:
        config = json.loads(cfg.read_text())
    except (ValueError, OSError) as exc:
        raise ModelError(f"corrupt {CONFIG_FILE} ({str(exc).splitlines()[0][:120]})", cfg) from exc
    if not isinstance(config, dict) or config.get("family") != FAMILY:
        raise ModelError("not a KWS checkpoint config (no \"family\": \"kws\")", cfg)
    try:
        spec = get_spec(str(config.get("name")))
    except InputError as exc:
        raise ModelError(str(exc), cfg) from None
    n, labels = config.get("n_classes"), config.get("labels")
    if isinstance(n, bool) or not isinstance(n, int) or n < 2:
        raise ModelError(f"bad n_classes {n!r}", cfg)
    if (not isinstance(labels, list) or len(labels) != n
            or not all(isinstance(x, str) for x in labels) or len(set(labels)) != n):
        raise ModelError(f"labels must be {n} distinct strings", cfg)
    saved = config.get("features")
    if saved != feature_summary(spec.features):
        raise ModelError(f"feature config does not match model {spec.name}'s", cfg)
    return config


def load_kws_checkpoint(path: str | os.PathLike) -> KwsModel:
    """Rebuild the network named in ``config.json`` and load its weights."""
    path = Path(path)
    config = read_kws_config(path)
    model = KwsModel(config["name"], config["n_classes"], labels=config["labels"])
    weights = path / WEIGHTS_FILE
    if not weights.is_file():
        raise ModelError(f"checkpoint has no {WEIGHTS_FILE}", path)
    try:
        model.model.load_weights(str(weights))
    except Exception as exc:  # h5py/keras raise many types for bad files
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        raise ModelError(f"corrupt or mismatched weights ({first})", weights) from exc
    return model
