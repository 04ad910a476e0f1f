"""Keyword-spotting models (docs/design.md §7): the Keras network of a layer table, the
inference interface every KWS model shares, the streaming loop, and checkpoints.

* :func:`build`: the Keras model of one network of :mod:`tfdenoise.kws.layertable` (the layer
  table is the contract: names, shapes and counts);
* :class:`KwsClassifier`: what every KWS model offers evaluation and streaming -- ``name``,
  ``labels``, ``features``, :meth:`~KwsClassifier.predict_windows` (given by each model) and
  ``n_classes``, ``window_frames``, ``n_features``, :meth:`~KwsClassifier.offline_probs`,
  :meth:`~KwsClassifier.stream` (built on them).  :class:`KwsModel` is the Keras one;
  ``tfdenoise.converters.kws_runner.TFLiteKws`` runs a ``.tflite``;
* :class:`KwsStream`: one decision per feature frame from a ring buffer of the last window;
* :func:`save_kws_checkpoint` / :func:`read_kws_config` / :func:`load_kws_checkpoint`: a
  folder with ``config.json`` (``"family": "kws"``, network, labels, features) + ``weights.h5``,
  written atomically.
"""
from __future__ import annotations

import json
import os
from abc import ABC, abstractmethod
from dataclasses import replace
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np

from tfdenoise.errors import InputError, ModelError
from tfdenoise.fileio import atomic_folder
from tfdenoise.kws.features import FeatureConfig, feature_summary
from tfdenoise.kws.layertable import LayerSpec, Op, check_classes, count_layer, describe, get_spec
from tfdenoise.models import CONFIG_FILE, WEIGHTS_FILE, load_weights
from tfdenoise.vocab import KwsModelName, ModelFamily

#: What ``config.json`` says to mark a keyword-spotting checkpoint (a denoiser's has "variant").
FAMILY = ModelFamily.KWS


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


def build(name: str | KwsModelName, n_classes: int, seed: int | None = None,
          units: Mapping[str, int] | None = None):
    """The Keras model of one network: ``[batch, window_frames, n_features]`` -> probabilities.
    ``units`` overrides the units / filters of named layers (a structurally pruned network:
    :func:`check_units`)."""
    from tfdenoise.keras import keras, layers

    spec = get_spec(name)
    n_classes = check_classes(n_classes)
    units = check_units(spec.name, n_classes, units)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    inp = keras.Input(spec.input_shape, name="features")
    x, shape = inp, spec.input_shape
    for layer in spec.layers(n_classes):
        if layer.name in units:
            layer = replace(layer, units=units[layer.name])
        x = _keras_layer(layer, shape, layers)(x)
        shape = count_layer(layer, shape)[0]
    return keras.Model(inp, x, name=f"kws_{spec.name.value}")


def check_units(name: str | KwsModelName, n_classes: int, units: Mapping[str, int] | None) -> dict[str, int]:
    """``units`` as a dict (empty for None): each key a dense or conv layer of the network other
    than ``logits``, each value an integer >= 1 (one-line :class:`InputError` otherwise)."""
    if not units:
        return {}
    if not isinstance(units, Mapping):
        raise InputError(f"units must map layer names to unit counts, got {units!r}")
    rows = {r.name: r for r in get_spec(name).layers(n_classes)}
    for layer, n in units.items():
        row = rows.get(layer)
        if row is None or row.op not in (Op.DENSE, Op.CONV) or layer == "logits":
            raise InputError(f"units: {layer!r} is not a dense or conv layer of {name} with prunable units")
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise InputError(f"units of {layer} must be an integer >= 1, got {n!r}")
    return {k: int(v) for k, v in units.items()}


# -- the inference interface ---------------------------------------------------------------------

class KwsClassifier(ABC):
    """A keyword-spotting model as evaluation and streaming see it: one decision per window of
    feature frames.

    A subclass sets or defines ``name``, ``labels`` (class ``i`` is ``labels[i]``), ``features``
    (its :class:`FeatureConfig`) and :meth:`predict_windows`; the rest is built on them.
    """

    name: str
    labels: list[str]
    features: FeatureConfig

    @property
    def n_classes(self) -> int:
        return len(self.labels)

    @property
    def window_frames(self) -> int:
        return self.features.window_frames

    @property
    def n_features(self) -> int:
        return self.features.n_features

    @abstractmethod
    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, n_classes]`` (float32) of windows ``[n, window_frames, n_features]``."""

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


class KwsModel(KwsClassifier):
    """One keyword-spotting network, its class labels and the Keras model (``model``)."""

    def __init__(self, name: str | KwsModelName, n_classes: int | None = None,
                 labels: Sequence[str] | None = None, seed: int | None = None,
                 units: Mapping[str, int] | None = None) -> None:
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
        n_classes = check_classes(n_classes)
        if labels is None:
            labels = [f"class_{i}" for i in range(n_classes)]
        self.labels: list[str] = labels
        #: layers whose units differ from the layer table's (a structurally pruned network)
        self.units: dict[str, int] = check_units(self.spec.name, n_classes, units)
        self.model = build(self.spec.name, n_classes, seed=seed, units=self.units)
        self._predict_fn = None

    @property
    def name(self) -> KwsModelName:
        return self.spec.name

    @property
    def features(self) -> FeatureConfig:
        return self.spec.features

    def describe(self) -> dict:
        """The layer table's counts (of the unpruned network), the labels and any ``units`` overrides."""
        return {**describe(self.spec.name, self.n_classes), "labels": list(self.labels),
                **({"units": dict(self.units)} if self.units else {})}

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, n_classes]`` of windows ``[n, window_frames, n_features]``."""
        if self._predict_fn is None:
            from tfdenoise.keras import tf

            sig = tf.TensorSpec((None, *self.spec.input_shape), tf.float32)
            self._predict_fn = tf.function(lambda x: self.model(x, training=False),
                                           input_signature=[sig])
        return np.asarray(self._predict_fn(np.ascontiguousarray(windows, np.float32)))


class KwsStream:
    """Streaming classification: a ring buffer of the last ``window_frames`` feature frames.

    Each call adds one frame and returns the probabilities of the window ending with it, or
    ``None`` while fewer than ``window_frames`` frames have arrived.  The network keeps no
    state, so the buffer is all there is: :meth:`reset` starts a new stream.
    """

    def __init__(self, model: KwsClassifier) -> None:
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

_CORE_KEYS = ("family", "name", "n_classes", "labels", "features", "units")


def save_kws_checkpoint(model: KwsModel, path: str | os.PathLike, extra: dict | None = None,
                        extra_writer: Callable[[Path], None] | None = None) -> Path:
    """Write ``config.json`` (name, n_classes, labels, features, ``extra``) + ``weights.h5``
    into the folder ``path``, atomically (a temporary folder renamed over the old one).

    ``extra_writer(tmp_folder)`` may add files (the trainer's optimizer state) before the
    rename, as :func:`tfdenoise.models.save_checkpoint` does for a denoiser.
    """
    extra = dict(extra or {})
    clash = sorted(set(extra) & set(_CORE_KEYS))
    if clash:
        raise InputError(f"extra checkpoint keys {clash} are reserved")
    with atomic_folder(path) as tmp:
        model.model.save_weights(str(tmp / WEIGHTS_FILE))
        config = {"family": FAMILY.value, "name": model.name.value, "n_classes": model.n_classes,
                  "labels": list(model.labels), "features": feature_summary(model.features),
                  **({"units": model.units} if model.units else {}), **extra}
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        if extra_writer is not None:
            extra_writer(tmp)
    return Path(path)


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
    try:
        check_units(spec.name, n, config.get("units"))
    except InputError as exc:
        raise ModelError(str(exc), cfg) from None
    return config


def load_kws_checkpoint(path: str | os.PathLike) -> KwsModel:
    """Rebuild the network named in ``config.json`` and load its weights."""
    path = Path(path)
    config = read_kws_config(path)
    model = KwsModel(config["name"], config["n_classes"], labels=config["labels"], units=config.get("units"))
    load_weights(model.model, path)
    if "qat" in config:  # latent QAT weights -> the grid they trained on (docs/design.md §8)
        from tfdenoise.qat_layers import load_grid

        load_grid(model, model.model, config, path / CONFIG_FILE)
    return model
