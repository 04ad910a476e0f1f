"""Streaming forms of a user's tf_keras model (:mod:`tfdenoise.converters.keras_model`).

A model over ``[batch, time, features...]`` is rebuilt layer by layer (its functional graph,
walked in the order Keras runs it) into one of two models that share its layers, so its
weights:

* ``step`` (the deployment graph, batch 1, one frame per call; what ``.tflite`` export
  converts): input ``frame`` ``[1, 1, *features]``, output ``mask`` ``[1, 1, *out]``.  As for
  TinyDenoiser (:mod:`tfdenoise.converters.build`): each **GRU** runs as its cell, one step,
  its state an input ``h<k>`` ``[1, units]`` and an output ``h<k>_out``; each **LSTM** layer
  runs on the one-frame sequence, which the converter fuses into
  ``UNIDIRECTIONAL_SEQUENCE_LSTM`` with its state in persistent variable tensors (sequence
  length 1); a **causal Conv1D** of kernel ``k`` and dilation ``d`` keeps the last
  ``n = (k - 1) d`` frames of its input as a state ``buf<j>`` ``[1, n, channels]``: it
  convolves ``[buffer, frame]`` with no padding (one output frame) and passes on the last
  ``n`` frames.
* ``blocks`` (Keras inference on the host, any batch and length): input ``frame``
  ``[batch, T, *features]`` plus every state, outputs ``mask`` and every new state; the GRU
  and LSTM cells run in ``RNN`` layers that take and return their states (an LSTM has two,
  ``h<k>`` and ``c<k>``), the conv buffers as above.  A signal in successive blocks gives the
  gains of the whole signal at once (the model is causal).

Every other layer is called on the one-frame (or block) tensor as it is: it acts frame by frame
(:func:`tfdenoise.converters.keras_model.check_layer` refused the others before).  Helper
layers are named ``<layer>__<role>`` so that the operators they become map back to the layer.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from enum import StrEnum

from tfdenoise.errors import ModelError


class Mode(StrEnum):
    """Which streaming form to build."""

    STEP = "step"      # batch 1, one frame, LSTM fused by the converter (deployment graph)
    BLOCKS = "blocks"  # any batch and length, every state explicit (Keras on the host)


@dataclass(frozen=True)
class State:
    """One state tensor of a streaming model: signature name, owning layer, per-example shape."""

    name: str
    layer: str
    shape: tuple[int, ...]


@functools.lru_cache(maxsize=1)
def _helpers():
    """The two helper layer classes (defined on first use: importing them imports Keras)."""
    from tfdenoise.keras import keras, tf

    class ConvStep(keras.layers.Layer):
        """A causal Conv1D's output frames from ``[history, new frames]``, no padding (its own
        kernel, bias and activation)."""

        def __init__(self, conv, **kwargs):
            super().__init__(**kwargs)
            self.conv = conv

        def call(self, x):
            c = self.conv
            y = c.convolution_op(x, c.kernel)
            if c.use_bias:
                y = tf.nn.bias_add(y, c.bias)
            return c.activation(y) if c.activation is not None else y

    class LastFrames(keras.layers.Layer):
        """The last ``n`` frames (axis 1) of a sequence: a conv buffer's next state."""

        def __init__(self, n: int, **kwargs):
            super().__init__(**kwargs)
            self.n = int(n)

        def call(self, x):
            return x[:, -self.n:]

    return ConvStep, LastFrames


class _Builder:
    """Walks a functional model's nodes, calling each layer (or its streaming form)."""

    def __init__(self, mode: Mode) -> None:
        self.mode = mode
        self.state_inputs: list = []
        self.state_outputs: list = []
        self.states: list[State] = []
        self._rnn = 0
        self._conv = 0

    def _state(self, name: str, layer: str, shape: tuple[int, ...]):
        from tfdenoise.keras import keras

        batch = 1 if self.mode is Mode.STEP else None
        t = keras.Input(shape, batch_size=batch, name=name)
        self.state_inputs.append(t)
        self.states.append(State(name, layer, tuple(int(s) for s in shape)))
        return t

    def run(self, model, x):
        """``model``'s graph applied to ``x`` (a Keras tensor), recursing into nested models."""
        tensors = {}
        usage = model._tensor_usage_count  # noqa: SLF001 (tf_keras Functional internals)
        (ref,) = model.inputs
        tensors[str(id(ref))] = [x] * usage[str(id(ref))]
        for depth in sorted(model._nodes_by_depth, reverse=True):  # noqa: SLF001
            for node in model._nodes_by_depth[depth]:  # noqa: SLF001
                if node.is_input or any(t not in tensors for t in node.flat_input_ids):
                    continue
                args, kwargs = node.map_arguments(tensors)
                out = self.call(node.layer, args, kwargs)
                from tfdenoise.keras import tf

                for t_id, y in zip(node.flat_output_ids, tf.nest.flatten(out)):
                    tensors[t_id] = [y] * usage[t_id]
        (out,) = model.outputs
        return tensors[str(id(out))].pop()

    def call(self, layer, args, kwargs):
        from tfdenoise.keras import keras

        kind = type(layer).__name__
        if isinstance(layer, keras.Model):
            return self.run(layer, args[0])
        if kind == "GRU":
            return self.gru(layer, args[0])
        if kind == "LSTM":
            return self.lstm(layer, args[0])
        if kind == "Conv1D" and layer.padding == "causal" and conv_history(layer):
            return self.conv(layer, args[0])
        return layer(*args, **kwargs)

    def gru(self, layer, x):
        from tfdenoise.keras import layers

        k, units = self._rnn, int(layer.cell.units)
        self._rnn += 1
        h = self._state(f"h{k}", layer.name, (units,))
        if self.mode is Mode.BLOCKS:
            rnn = layers.RNN(layer.cell, return_sequences=True, return_state=True,
                             name=f"{layer.name}__blocks")
            y, h_out = rnn(x, initial_state=[h])
        else:
            flat = layers.Reshape((int(x.shape[-1]),), name=f"{layer.name}__in")(x)
            y, st = layer.cell(flat, [h])
            h_out = list(st)[0] if isinstance(st, (list, tuple)) else st
            y = layers.Reshape((1, units), name=f"{layer.name}__out")(y)
        self.state_outputs.append(h_out)
        return y

    def lstm(self, layer, x):
        from tfdenoise.keras import layers

        k, units = self._rnn, int(layer.cell.units)
        self._rnn += 1
        if self.mode is Mode.STEP:  # fused by the converter, state inside the op
            return layer(x)
        h = self._state(f"h{k}", layer.name, (units,))
        c = self._state(f"c{k}", layer.name, (units,))
        rnn = layers.RNN(layer.cell, return_sequences=True, return_state=True,
                         name=f"{layer.name}__blocks")
        y, h_out, c_out = rnn(x, initial_state=[h, c])
        self.state_outputs += [h_out, c_out]
        return y

    def conv(self, layer, x):
        from tfdenoise.keras import layers

        conv_step, last_frames = _helpers()
        j, n = self._conv, conv_history(layer)
        self._conv += 1
        buf = self._state(f"buf{j}", layer.name, (n, int(x.shape[-1])))
        joined = layers.Concatenate(axis=1, name=f"{layer.name}__cat")([buf, x])
        self.state_outputs.append(last_frames(n, name=f"{layer.name}__keep")(joined))
        return conv_step(layer, name=f"{layer.name}__stream")(joined)


def conv_history(layer) -> int:
    """Frames of history a causal Conv1D needs: ``(kernel - 1) * dilation``."""
    return (int(layer.kernel_size[0]) - 1) * int(layer.dilation_rate[0])


#: Names of the streaming models' own inputs, outputs and states (no user layer may take them).
def reserved(states: tuple[State, ...]) -> set[str]:
    return {"frame", "mask", *(s.name for s in states), *(f"{s.name}_out" for s in states)}


def build(model, features: tuple[int, ...], mode: Mode):
    """The ``mode`` streaming form of ``model`` and its states (in input order).

    Outputs are identity layers named ``mask`` and ``<state>_out``.  Raises
    :class:`ModelError` (one line) when Keras refuses to build it."""
    from tfdenoise.keras import keras, layers

    length, batch = (1, 1) if mode is Mode.STEP else (None, None)
    frame = keras.Input((length, *features), batch_size=batch, name="frame")
    b = _Builder(mode)
    try:
        y = b.run(model, frame)
        outs = [layers.Activation("linear", name="mask")(y)]
        outs += [layers.Activation("linear", name=f"{s.name}_out")(t)
                 for s, t in zip(b.states, b.state_outputs)]
        stream = keras.Model([frame, *b.state_inputs], outs, name=f"{model.name}_{mode.value}")
    except (ValueError, TypeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise ModelError(f"cannot build the streaming form of {model.name!r} ({first})") from None
    return stream, tuple(b.states)
