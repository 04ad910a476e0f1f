"""The three reference keyword-spotting networks as layer tables (docs/design.md §7): dnn, cnn, dscnn.

Each network is a function of the number of classes (its table of :class:`LayerSpec` rows)
and has its own :class:`~tfdenoise.kws.features.FeatureConfig`.  Its input is one window of
feature frames ``[batch, window_frames, n_features]`` (time first, as the feature extractor
writes them) and its output is class probabilities ``[batch, n_classes]`` (softmax).  No
network keeps any state between windows: a stream classifies the last ``window_frames`` frames
once per hop.  :mod:`tfdenoise.kws.models` builds the Keras model of a table.

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

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import Callable

import numpy as np

from tfdenoise.errors import InputError
from tfdenoise.kws.features import (CNN_FEATURES, DNN_FEATURES, DSCNN_FEATURES, FeatureConfig,
                                    feature_summary)
from tfdenoise.vocab import KwsModelName


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
        """The Keras model of this network (:func:`tfdenoise.kws.models.build`)."""
        from tfdenoise.kws.models import build

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


def check_classes(n_classes: object) -> int:
    """``n_classes`` as an int (a one-line :class:`InputError` unless it is an integer >= 2)."""
    if isinstance(n_classes, bool) or not isinstance(n_classes, (int, np.integer)) or n_classes < 2:
        raise InputError(f"n_classes must be an integer >= 2, got {n_classes!r}")
    return int(n_classes)


def layer_table(name: str | KwsModelName, n_classes: int) -> list[dict]:
    """Every layer in graph order: name, op, output shape (no batch), params, MACs."""
    spec = get_spec(name)
    shape: tuple[int, ...] = spec.input_shape
    rows = []
    for layer in spec.layers(check_classes(n_classes)):
        shape, params, macs = count_layer(layer, shape)
        rows.append({"name": layer.name, "op": layer.op.value, "output_shape": list(shape),
                     "params": params, "macs": macs})
    return rows


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

