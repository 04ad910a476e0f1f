"""A user's own tf_keras model: load it, check that it can stream, run it, name its layers.

``tfdenoise export MODEL.h5|MODEL.keras|SAVEDMODEL_DIR`` takes any functional or Sequential
tf_keras model over ``[batch, time, features...]`` (``Input(shape=(None, F))``; the time axis
kept by every layer, the feature sizes fixed) built from standard layers:

* kernels (the deployment layers a recipe gives a precision): ``Dense``, ``Conv1D``,
  ``Conv2D``, ``DepthwiseConv1D/2D``, ``SeparableConv1D/2D``, ``GRU``, ``LSTM`` (also inside
  ``TimeDistributed``);
* layers folded into the kernel before them (or the first kernel, before any): normalization,
  activations, dropout and noise (inference: identity), reshapes, merges, pooling along
  features, nested functional / Sequential models (walked through).

Causality: the deployment graph runs one frame per call (:mod:`converters.keras_stream`), so a
layer may only look at the past: recurrent layers forward in time (not ``Bidirectional``,
``go_backwards`` or ``stateful``) returning sequences; ``Conv1D`` with ``padding="causal"``
(or kernel 1); 2-D convolutions and pooling of time kernel and stride 1 (``[time, freq, ch]``
inputs); normalization, softmax and concatenation never over the time axis.  Anything else is a
one-line :class:`~tfdenoise.errors.ModelError` naming the layer.

:class:`KerasModel` runs the model like a TinyDenoiser (``offline_mask``, ``sequence_mask``,
``streaming_mask``: gains of a 257-in / 257-out model for ``enhance`` / ``evaluate``) and is
exported by the same conversion (:mod:`converters.convert`) through its adapter
(:class:`tfdenoise.converters.keras_convert.KerasGraph`).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from tfdenoise.errors import InputError, ModelError
from tfdenoise.vocab import N_BINS, LayerKind

from tfdenoise.converters.keras_stream import Mode, State, build, conv_history, reserved

#: Keras layer types that are deployment layers, and their kind in the metadata.
KERNELS = {"Dense": LayerKind.DENSE, "Conv1D": LayerKind.CONV, "Conv2D": LayerKind.CONV,
           "SeparableConv1D": LayerKind.CONV, "SeparableConv2D": LayerKind.CONV,
           "DepthwiseConv1D": LayerKind.DEPTHWISE_CONV, "DepthwiseConv2D": LayerKind.DEPTHWISE_CONV,
           "GRU": LayerKind.GRU, "LSTM": LayerKind.LSTM}
RECURRENT = ("GRU", "LSTM")
#: Frame-wise layers folded into a kernel layer (checked for the time axis where they have one).
FOLDED = frozenset({
    "InputLayer", "BatchNormalization", "LayerNormalization", "Activation", "ReLU", "LeakyReLU",
    "PReLU", "ELU", "ThresholdedReLU", "Softmax", "Dropout", "SpatialDropout1D", "SpatialDropout2D",
    "Flatten",  # (flattens the time axis too: the time-axis check names it)
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization", "Reshape",
    "Permute", "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    "MaxPooling1D", "AveragePooling1D", "MaxPooling2D", "AveragePooling2D", "Rescaling", "Identity"})
NOT_CAUSAL = ("Bidirectional",)


@dataclass(frozen=True)
class DeployLayer:
    """One deployment layer: a Keras kernel layer and the names a recipe pattern may match."""

    name: str
    kind: LayerKind
    type: str
    units: int
    aliases: tuple[str, ...]


# -- checks -------------------------------------------------------------------------------------

def _axes(value) -> list[int]:
    return [int(a) for a in (value if isinstance(value, (list, tuple)) else [value])]


def _time_axis(axes: list[int], rank: int) -> bool:
    return any(a == 1 or a == 1 - rank for a in axes)


def _recurrent_problem(layer) -> str | None:
    if not layer.return_sequences:
        return "returns only its last step (return_sequences=False): a streaming model needs " \
               "return_sequences=True"
    if layer.go_backwards:
        return "runs backwards in time (go_backwards=True): not causal, cannot stream"
    if layer.stateful:
        return "is stateful=True: the deployment graph carries the state itself; export the " \
               "model with stateful=False"
    if getattr(layer, "time_major", False):
        return "is time_major: export needs [batch, time, features]"
    if type(layer).__name__ == "LSTM" and not (
            layer.cell.activation.__name__ == "tanh" and layer.cell.recurrent_activation.__name__
            == "sigmoid" and layer.cell.use_bias and not layer.cell.recurrent_dropout and not layer.unroll):
        return "is an LSTM the converter cannot fuse into UNIDIRECTIONAL_SEQUENCE_LSTM (needs " \
               "activation tanh, recurrent_activation sigmoid, use_bias, no recurrent_dropout, unroll=False)"
    return None


def _conv_problem(layer, kind: str) -> str | None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        return "is channels_first: export needs channels_last"
    k, s = int(layer.kernel_size[0]), int(layer.strides[0])
    if s != 1:
        return f"has stride {s} along time: the deployment graph keeps one output per frame"
    if k == 1:
        return None
    if kind == "Conv1D" and layer.padding == "causal":
        return "has groups > 1 (not supported with a causal kernel)" if layer.groups > 1 else None
    if kind == "Conv1D":
        return f"has padding={layer.padding!r} with kernel {k}: not causal, cannot stream " \
               "(use padding='causal')"
    return f"has a time kernel of {k}: only Conv1D(padding='causal') may look at past frames"


def _folded_problem(layer, kind: str, rank: int) -> str | None:
    if kind in ("BatchNormalization", "LayerNormalization", "Softmax", "Concatenate"):
        if _time_axis(_axes(layer.axis), rank):
            return "works along the time axis: not causal, cannot stream"
    if kind == "Permute" and int(layer.dims[0]) != 1:
        return "moves the time axis"
    if kind.endswith("Pooling1D") or kind.endswith("Pooling2D"):
        if int(layer.pool_size[0]) != 1 or int(layer.strides[0]) != 1:
            return "pools along time: the deployment graph keeps one output per frame"
    return None


def check_layer(layer, rank: int) -> None:
    """One-line :class:`ModelError` when ``layer`` (input rank ``rank``) cannot run frame by frame."""
    from tfdenoise.keras import keras

    kind = type(layer).__name__
    where = f"layer {layer.name!r} ({kind})"
    if isinstance(layer, keras.Model):
        check_graph(layer)
        return
    if kind in NOT_CAUSAL:
        raise ModelError(f"{where} is bidirectional: not causal, cannot stream")
    if kind == "TimeDistributed":
        inner = type(layer.layer).__name__
        if inner in RECURRENT or (inner not in KERNELS and inner not in FOLDED):
            raise ModelError(f"{where} wraps a {inner}, which export does not support "
                             "inside TimeDistributed")
        return
    if kind in RECURRENT:
        problem = _recurrent_problem(layer)
    elif kind in KERNELS:
        problem = _conv_problem(layer, kind) if kind != "Dense" else None
    elif kind in FOLDED:
        problem = _folded_problem(layer, kind, rank)
    else:
        raise ModelError(f"{where} is not supported for export (standard layers: "
                         f"{', '.join(sorted(KERNELS))}, normalization, activations, reshapes, "
                         "merges, dropout)")
    if problem:
        raise ModelError(f"{where} {problem}")


def _nodes(model):
    """The computing nodes of a functional model in the order Keras runs them."""
    for depth in sorted(model._nodes_by_depth, reverse=True):  # noqa: SLF001 (tf_keras internals)
        for node in model._nodes_by_depth[depth]:  # noqa: SLF001
            if not node.is_input:
                yield node


def check_graph(model) -> None:
    """Every layer of a functional model streams and keeps the time axis (axis 1) of its input."""
    if not getattr(model, "_is_graph_network", False):
        raise ModelError(f"model {model.name!r} is a subclassed Keras model: export needs a "
                         "functional or Sequential model")
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise ModelError(f"model {model.name!r} has {len(model.inputs)} inputs and "
                         f"{len(model.outputs)} outputs: export needs one of each")
    time = model.inputs[0].shape[1] if model.inputs[0].shape.rank >= 3 else "missing"
    for node in _nodes(model):
        rank = node.keras_inputs[0].shape.rank if node.keras_inputs else 3
        check_layer(node.layer, rank)
        for out in node.outputs if isinstance(node.outputs, (list, tuple)) else [node.outputs]:
            shape = out.shape
            if shape.rank is None or shape.rank < 3 or shape[1] != time:
                raise ModelError(f"layer {node.layer.name!r} ({type(node.layer).__name__}) gives "
                                 f"{tuple(shape)}: the time axis (axis 1) must run through every "
                                 "layer for the model to stream")


def check_io(model) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per-frame input and output shapes (time axis dropped); one-line errors otherwise."""
    shape = tuple(model.inputs[0].shape)
    if len(shape) < 3:
        raise ModelError(f"input shape {shape[1:]} has no time axis: export takes a model over "
                         "[batch, time, features] (Input(shape=(None, F)))")
    if shape[1] is not None:
        raise ModelError(f"input shape {shape[1:]} has a fixed time length: build the model with "
                         "Input(shape=(None, ...)) so that it runs on any number of frames")
    if any(s is None for s in shape[2:]):
        raise ModelError(f"input shape {shape[1:]} without a fixed feature size: export needs "
                         "every axis after time fixed")
    out = tuple(model.outputs[0].shape)
    if any(s is None for s in out[2:]):
        raise ModelError(f"output shape {out[1:]} without a fixed size")
    return tuple(int(s) for s in shape[2:]), tuple(int(s) for s in out[2:])


# -- deployment layers ------------------------------------------------------------------------

def _flat_layers(model) -> list:
    """Layers in the order they run, nested models walked through."""
    from tfdenoise.keras import keras

    out = []
    for node in _nodes(model):
        layer = node.layer
        if isinstance(layer, keras.Model):
            out += [layer, *_flat_layers(layer)]
        elif layer not in out:
            out.append(layer)
    return out


def deploy_layers(model) -> tuple[tuple[DeployLayer, ...], dict[str, str]]:
    """The kernel layers (with their recipe aliases) and the map Keras layer -> kernel layer
    (folded layers to the kernel before them, those before any kernel to the first one;
    streaming helpers ``<layer>__<role>`` to their layer)."""
    layers, fold, pending, last, rnn = [], {}, [], None, 0
    for layer in _flat_layers(model):
        kind = type(layer).__name__
        inner = type(layer.layer).__name__ if kind == "TimeDistributed" else None
        key = inner if inner in KERNELS else kind
        if key in KERNELS:
            aliases = [kind, *([inner] if inner else [])]
            if key in RECURRENT:
                aliases.append(f"rnn_{rnn}")
                rnn += 1
            units = getattr(layer.layer if inner else layer, "units", None) or \
                getattr(layer.layer if inner else layer, "filters", None) or 0
            layers.append(DeployLayer(layer.name, KERNELS[key], kind if not inner else f"{kind}({inner})",
                                      int(units), tuple(aliases)))
            fold.update({p: layer.name for p in pending})
            pending, last = [], layer.name
            fold[layer.name] = layer.name
            for role in ("cell", "in", "out", "blocks", "cat", "keep", "stream"):
                fold[f"{layer.name}__{role}"] = layer.name
        elif last is not None:
            fold[layer.name] = last
        else:
            pending.append(layer.name)
    if not layers:
        raise ModelError(f"model {model.name!r} has no layer with weights to export "
                         f"(kernels: {', '.join(sorted(KERNELS))})")
    return tuple(layers), fold


# -- the model --------------------------------------------------------------------------------

class KerasModel:
    """A user's Keras model behind the interface of a TinyDenoiser (masks, export)."""

    def __init__(self, model, source: str | os.PathLike = "<memory>") -> None:
        self.model = model
        self.source = Path(source)
        self.name = str(model.name)
        check_graph(model)
        self.features, self.out_features = check_io(model)
        self.layers, self.fold = deploy_layers(model)
        for layer in _flat_layers(model):
            if type(layer).__name__ in RECURRENT:  # unique cell names: the step model holds them
                layer.cell._name = f"{layer.name}__cell"  # noqa: SLF001
        self._step = self._blocks = self._offline = None
        self.states: tuple[State, ...] = self._stream(Mode.STEP)[1]
        taken = reserved(self.states) & {la.name for la in _flat_layers(model)}
        if taken:
            raise ModelError(f"layer name(s) {', '.join(sorted(taken))} are reserved for the "
                             "deployment graph's inputs and outputs: rename them")

    def __repr__(self) -> str:
        return f"KerasModel({self.name!r}, {self.source})"

    @property
    def io_contract(self) -> bool:
        """True when the model keeps the denoiser's contract: 257 magnitudes in, 257 gains out."""
        return self.features == (N_BINS,) and self.out_features == (N_BINS,)

    @property
    def lstm_layers(self) -> tuple[str, ...]:
        return tuple(la.name for la in self.layers if la.kind == LayerKind.LSTM)

    def _stream(self, mode: Mode):
        attr = "_step" if mode is Mode.STEP else "_blocks"
        if getattr(self, attr) is None:
            setattr(self, attr, build(self.model, self.features, mode))
        return getattr(self, attr)

    @property
    def step(self):
        """The deployment step model (batch 1, one frame; :mod:`converters.keras_stream`)."""
        return self._stream(Mode.STEP)[0]

    def deploy_graph(self):
        """The adapter the conversion reads (:mod:`tfdenoise.converters.build`)."""
        from tfdenoise.converters.keras_convert import KerasGraph

        return KerasGraph(self)

    # -- inference ------------------------------------------------------------------------
    def offline_mask(self, frames: np.ndarray) -> np.ndarray:
        """The model's outputs ``[T, *out]`` for the inputs ``[T, *features]`` (the model itself)."""
        from tfdenoise.keras import tf

        if self._offline is None:
            spec = tf.TensorSpec((1, None, *self.features), tf.float32)
            self._offline = tf.function(lambda x: self.model(x, training=False),
                                        input_signature=[spec])
        return np.asarray(self._offline(np.asarray(frames, np.float32)[None]))[0]

    def sequence_mask(self) -> Callable[[np.ndarray], np.ndarray]:
        """A stateful ``frames[T, *features] -> outputs[T, *out]`` through the block model,
        each call continuing from the states (RNN, conv history) the previous one ended with."""
        from tfdenoise.keras import tf

        blocks, states = self._stream(Mode.BLOCKS)
        if not hasattr(self, "_blocks_fn"):
            specs = [tf.TensorSpec((1, None, *self.features), tf.float32),
                     *(tf.TensorSpec((1, *s.shape), tf.float32) for s in states)]
            self._blocks_fn = tf.function(lambda x, *s: blocks([x, *s], training=False),
                                          input_signature=specs)
        run = self._blocks_fn
        state = [tf.zeros((1, *s.shape), tf.float32) for s in states]

        def mask(frames: np.ndarray) -> np.ndarray:
            nonlocal state
            out = run(np.asarray(frames, np.float32).reshape(1, -1, *self.features), *state)
            out = list(out) if isinstance(out, (list, tuple)) else [out]
            state = out[1:]
            return out[0].numpy()[0]

        return mask

    def streaming_mask(self) -> Callable[[np.ndarray], np.ndarray]:
        """A stateful ``frame[*features] -> output[*out]``, one frame per call."""
        run = self.sequence_mask()
        return lambda frame: run(np.asarray(frame)[None])[0]


def load_keras_model(path: str | os.PathLike) -> KerasModel:
    """Load a tf_keras model file or SavedModel folder and check that it can stream."""
    from tfdenoise.keras import keras
    from tfdenoise.quiet import native_stderr_muted

    path = Path(path)
    if not path.exists():
        raise InputError("no such Keras model file or SavedModel folder", path)
    try:
        with native_stderr_muted():
            model = keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # h5py / keras / SavedModel loaders raise many types
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:140]
        raise ModelError(f"not a Keras model ({first}); export takes a whole tf_keras model "
                         "saved with model.save()", path) from None
    if not isinstance(model, keras.Model):
        raise ModelError("not a Keras model (a TensorFlow SavedModel without Keras metadata)", path)
    try:
        return KerasModel(model, path)
    except ModelError as exc:
        raise ModelError(str(exc), path) from None


def streamable(model: KerasModel) -> KerasModel:
    """``model`` when it keeps the denoiser's I/O contract (``enhance`` / ``evaluate`` /
    ``validate`` run it on STFT magnitudes), else a one-line :class:`InputError`."""
    if not model.io_contract:
        raise InputError(f"takes {list(model.features)} and gives {list(model.out_features)} "
                         f"per frame; enhancing audio needs the denoiser's contract ({N_BINS} "
                         f"STFT magnitudes in, {N_BINS} gains out)", model.source)
    return model


__all__ = ["DeployLayer", "KerasModel", "check_graph", "check_layer", "conv_history",
           "deploy_layers", "load_keras_model", "streamable"]
