"""Sub-8-bit QAT, the Keras side (docs/design.md §8): our own recurrent layers, the network
trained in QAT, and its checkpoint entry.

* tfmot has no LSTM/GRU QAT (its issue 1114): :class:`QuantizedRNN` runs the Keras LSTM
  (gates i, f, c, o) or GRU (``reset_after``: z, r, h) equations with the tanh-grid kernel and
  recurrent kernel, and in stage 2 the 8-bit bias, the int8 hidden state and the int16
  power-of-two cell state of TFLite's integer LSTM (:mod:`tfdenoise.qat`).
* Dense and conv layers go through tfmot's ``QuantizeWrapperV2`` with the quantizers of
  :mod:`tfdenoise.qat_quantizers`, and stage-2 activations through its :class:`ActQuant`.

The QAT network (:func:`qat_network`) shares every weight variable with the plain network it
is built from, so checkpoints keep the plain layout and hold the latent float weights; each
BatchNormalization after a kernel is folded into it first
(:func:`tfdenoise.qat_quantizers.fold_network`), so the grid the layer trains on is the grid
the folded file stores.  A checkpoint's ``config.json`` ``"qat"`` entry (:func:`qat_record`)
says which layers are quantized to how many bits; :func:`apply_grid` turns its latent weights
into the grid values every consumer (evaluate, export) sees.
"""
from __future__ import annotations

import re
from typing import Sequence

import numpy as np

from tfdenoise.errors import InputError, ModelError
from tfdenoise.keras import keras, tf
from tfdenoise import qat
from tfdenoise.qat_quantizers import (KERNEL_LAYERS, SIGMOID_RANGE, ActQuant, EmaRangeQuantizer, KernelConfig,
                                      Q, QuantSpec, TanhWeightQuantizer, kernel_spec)
from tfdenoise.vocab import QuantGroup

RNN_LAYERS = {keras.layers.LSTM: "lstm", keras.layers.GRU: "gru"}


# -- recurrent layers ------------------------------------------------------------------------

class QuantizedRNN(keras.layers.Layer):
    """An LSTM or GRU (``return_sequences``) computed from the variables of a plain Keras layer
    with quantized kernels: :mod:`tfdenoise.qat` stage 1 / 2 (see the module docstring)."""

    def __init__(self, plain, bits: int, stage: int, statistic: str | None = None, **kwargs) -> None:
        super().__init__(name=f"qat_{plain.name}", **kwargs)
        self.kind = RNN_LAYERS[type(plain)]
        self.units, self.bits, self.stage = plain.units, bits, stage
        cell = plain.cell
        self.kernel, self.recurrent_kernel, self.bias = cell.kernel, cell.recurrent_kernel, cell.bias
        self._trainable_weights = [cell.kernel, cell.recurrent_kernel, cell.bias]
        # stage 2: the int8 hidden state (the op's output tensor, fed back) over [-1, 1], or,
        # with a range ``statistic``, over a symmetric range learnt like an activation's
        self.state_q = EmaRangeQuantizer(None, True, statistic) if stage == 2 and statistic else None

    def build(self, input_shape):
        if self.state_q is not None:
            self.qvars = self.state_q.build(None, "state", self)
        super().build(input_shape)

    def _state_range(self):
        """(lo, hi) of the hidden state's int8 grid for this batch: [-1, 1] until learnt."""
        if self.state_q is None:
            return -1.0, 1.0
        seen = self.qvars["seen"] > 0.5
        return tf.where(seen, self.qvars["min"], -1.0), tf.where(seen, self.qvars["max"], 1.0)

    def range(self) -> list[float]:
        lo, hi = self._state_range()
        return [float(lo), float(hi)]

    def set_range(self, lo: float, hi: float) -> None:
        self.qvars["min"].assign(lo)
        self.qvars["max"].assign(hi)
        self.qvars["seen"].assign(1.0)

    def quantized(self) -> tuple:
        spec = rnn_spec(self.kind, "kernel", self.bits)
        k = qat.tanh_quantize(self.kernel, self.bits, spec.group, spec.gates)
        r = qat.tanh_quantize(self.recurrent_kernel, self.bits, spec.group, spec.gates)
        b = qat.linear_quantize(self.bias) if self.stage == 2 else tf.convert_to_tensor(self.bias)
        return k, r, b

    def call(self, x, training=None):
        training = bool(keras.backend.learning_phase()) if training is None else training
        k, r, b = self.quantized()
        stage2 = self.stage == 2
        lo, hi = self._state_range()

        def state_q(h):
            return qat.state_quantize(h, lo, hi)

        batch = tf.shape(x)[0]
        zeros = tf.zeros([batch, self.units], x.dtype)
        if self.kind == "lstm":
            xw = tf.transpose(tf.einsum("btf,fg->btg", x, k) + b, [1, 0, 2])

            def step(state, zx):
                h, c = state
                i, f, g, o = tf.split(zx + tf.matmul(h, r), 4, axis=-1)
                c = tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(g)
                c = qat.pot16_quantize(c) if stage2 else c
                h = tf.sigmoid(o) * tf.tanh(c)
                return (state_q(h) if stage2 else h), c

            hs, _ = tf.scan(step, xw, initializer=(zeros, zeros))
        else:
            xw = tf.transpose(tf.einsum("btf,fg->btg", x, k) + b[0], [1, 0, 2])

            def step(h, zx):
                x_z, x_r, x_h = tf.split(zx, 3, axis=-1)
                h_z, h_r, h_h = tf.split(tf.matmul(h, r) + b[1], 3, axis=-1)
                z, rr = tf.sigmoid(x_z + h_z), tf.sigmoid(x_r + h_r)
                h = z * h + (1.0 - z) * tf.tanh(x_h + rr * h_h)
                return state_q(h) if stage2 else h

            hs = tf.scan(step, xw, initializer=zeros)
        if self.state_q is not None and training:  # learn the range from this batch's states
            self.state_q(tf.stop_gradient(hs), True, self.qvars)
        return tf.transpose(hs, [1, 0, 2])


def rnn_spec(kind: str, weight: str, bits: int, layer: str = "") -> QuantSpec:
    """LSTM weights: one step per gate (the fused op's per-gate tensors, one scale each); GRU
    weights: one per output column (the fully connected ops of the unrolled cell, per channel)."""
    if kind == "lstm":
        return QuantSpec(layer, weight, bits, QuantGroup.GATES, 4)
    return QuantSpec(layer, weight, bits, QuantGroup.CHANNEL, 1)


def layer_specs(layer, bits: int) -> list[QuantSpec]:
    """Every quantized weight of one plain layer (empty for layers without weight matrices)."""
    if type(layer) in RNN_LAYERS:
        kind = RNN_LAYERS[type(layer)]
        return [rnn_spec(kind, w, bits, layer.name) for w in ("kernel", "recurrent_kernel")]
    if isinstance(layer, KERNEL_LAYERS):
        return [kernel_spec(layer, bits)]
    return []


def init_latent(net, bits: dict[str, int]) -> int:
    """Set the quantized weights of the (BN-folded) float network ``net`` to the latent values
    whose stage-1 grid is their linear quantization (:func:`tfdenoise.qat.latent_for`);
    returns how many tensors changed."""
    n = 0
    for layer in net.layers:
        if layer.name not in bits:
            continue
        owner = layer.cell if type(layer) in RNN_LAYERS else layer
        for spec in layer_specs(layer, bits[layer.name]):
            var = getattr(owner, spec.weight)
            var.assign(qat.latent_for(var.numpy(), spec.bits, spec.group, spec.gates))
            n += 1
    return n


def freeze_except(qnet, pattern: str) -> list[str]:
    """Freeze every weighted layer of the QAT network whose plain layer's name does not match
    the regular expression ``pattern`` (``--qat-train-layers``); returns the trained names."""
    trained = []
    for layer in qnet.layers:
        plain = getattr(getattr(layer, "layer", None), "name", None) or layer.name.removeprefix("qat_")
        if not layer.weights or isinstance(layer, ActQuant):
            continue
        if re.fullmatch(pattern, plain):
            trained.append(plain)
        else:
            layer.trainable = False
            if getattr(layer, "layer", None) is not None:  # tfmot's wrapper lists the weights it
                layer.layer.trainable = False                # quantizes as its own, flag or not
                layer._non_trainable_weights += layer._trainable_weights  # noqa: SLF001
                layer._trainable_weights = []  # noqa: SLF001
    if not trained:
        raise InputError(f"--qat-train-layers {pattern!r} names no layer with weights")
    return trained


# -- the QAT network -------------------------------------------------------------------------

def _shared_clone(layer):
    """A copy of a built dense / conv ``layer`` whose weights are ``layer``'s variables (tfmot's
    wrapper rewrites its layer's attributes while it runs; the plain layer stays untouched)."""
    clone = type(layer).from_config({**layer.get_config(), "name": layer.name})
    clone.build(layer.get_input_shape_at(0))  # a layer shared by several models has several
    for attr in ("kernel", "depthwise_kernel", "bias"):
        if getattr(layer, attr, None) is not None:
            setattr(clone, attr, getattr(layer, attr))
    clone._trainable_weights = list(layer.trainable_weights)  # noqa: SLF001 (share, not copy)
    clone._non_trainable_weights = []  # noqa: SLF001
    return clone


def plan_bits(net, default: int, rules: Sequence[tuple[str, int]] = ()) -> dict[str, int]:
    """Weight width of every layer of ``net`` with weight matrices."""
    return {la.name: qat.bits_for(la.name, default, rules) for la in net.layers if layer_specs(la, 8)}


def qat_network(net, bits: dict[str, int], stage: int, symmetric: bool = False,
                statistic: str = "max", one_sided: bool = False):
    """The QAT model of the plain chain model ``net`` (every layer fed by the one before),
    sharing its weights; BatchNorms after kernels must already be folded.  Stage 2 quantizes
    activations over symmetric ranges with ``symmetric`` (the denoiser's INT8 export; range
    ``statistic`` max or std3), else over [min, max] (the KWS converter's calibration);
    ``one_sided`` (with ``symmetric``): the network input (magnitudes) and every ReLU output
    over ``[0, 2 r]`` instead (the export's asymmetric ranges)."""
    def act(name, fixed=None, nonneg=False):
        return ActQuant(fixed, symmetric, statistic if fixed is None else "max",
                        one_sided=one_sided and nonneg, name=name)

    x = inp = keras.Input(net.input_shape[1:], name=net.layers[0].name)
    if stage == 2:
        x = act("qat_input", nonneg=True)(x)
    layers = net.layers[1:]
    for i, layer in enumerate(layers):
        nxt = layers[i + 1] if i + 1 < len(layers) else None
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.trainable:
            continue  # folded: the identity
        if type(layer) in RNN_LAYERS:
            x = QuantizedRNN(layer, bits[layer.name], stage, statistic if symmetric else None)(x)
            continue
        if not isinstance(layer, KERNEL_LAYERS):
            x = layer(x)
        else:
            spec = kernel_spec(layer, bits[layer.name])
            clone = _shared_clone(layer)
            activation = getattr(clone.activation, "__name__", "linear")
            split = stage == 2 and activation not in ("linear", "relu")
            if split:  # TFLite: an int8 kernel output, then the activation op (sigmoid: fixed grid)
                clone.activation = keras.activations.linear
            x = Q.QuantizeWrapperV2(clone, KernelConfig(spec.bits, stage, str(spec.group), spec.weight))(x)
            if split:
                x = act(f"qat_pre_{layer.name}")(x)
                x = keras.layers.Activation(activation, name=f"qat_{activation}_{layer.name}")(x)
        if stage == 2 and _ends_int8_tensor(layer, nxt):
            activation = getattr(getattr(layer, "activation", None), "__name__", "")
            relu = isinstance(layer, keras.layers.ReLU) or activation == "relu"
            x = act(f"qat_act_{layer.name}", SIGMOID_RANGE if activation == "sigmoid" else None,
                    nonneg=relu)(x)
    return keras.Model(inp, x, name=f"{net.name}_qat{stage}")


def _ends_int8_tensor(layer, nxt) -> bool:
    """Whether a full-INT8 file holds an int8 tensor after ``layer``: after a kernel (unless a
    BN or ReLU folds into it next), after the ReLU that ends a kernel group."""
    folds_next = isinstance(nxt, (keras.layers.BatchNormalization, keras.layers.ReLU))
    if isinstance(layer, KERNEL_LAYERS):
        return not folds_next
    if isinstance(layer, keras.layers.BatchNormalization):
        return not isinstance(nxt, keras.layers.ReLU)
    return isinstance(layer, keras.layers.ReLU)


# -- checkpoints -----------------------------------------------------------------------------

def qat_record(net, qnet, bits: dict[str, int], stage: int) -> dict:
    """The ``config.json`` ``"qat"`` entry: stage, bits and grouping per quantized weight, and
    the stage-2 activation ranges (which the next run restores)."""
    specs = [s for la in net.layers for s in layer_specs(la, bits.get(la.name, 8)) if la.name in bits]
    return {"stage": int(stage), "weights": "latent", "bits": dict(bits),
            "tensors": [{"layer": s.layer, "weight": s.weight, "bits": s.bits, "group": str(s.group),
                         "gates": s.gates} for s in specs],
            "act_ranges": {la.name: la.range() for la in qnet.layers
                           if isinstance(la, ActQuant) or getattr(la, "state_q", None) is not None}}


def restore_ranges(qnet, record: dict | None) -> int:
    """Set the activation ranges of ``qnet`` from a checkpoint's ``"qat"`` entry; returns how many."""
    ranges = (record or {}).get("act_ranges") or {}
    n = 0
    for la in qnet.layers:
        if (isinstance(la, ActQuant) or getattr(la, "state_q", None) is not None) and la.name in ranges:
            la.set_range(*ranges[la.name])
            n += 1
    return n


def _range_layers(qnet) -> list[tuple[object, EmaRangeQuantizer]]:
    """(layer, its range quantizer) of every stage-2 activation / state range of ``qnet``."""
    out = []
    for la in qnet.layers:
        q = la.quantizer if isinstance(la, ActQuant) else getattr(la, "state_q", None)
        if q is not None and q.fixed is None:
            out.append((la, q))
    return out


def fix_ranges(qnet, by_layer: dict[str, Sequence[float]] | None = None,
               names: Sequence[str] = ()) -> list[str]:
    """Set stage-2 ranges of ``qnet`` from ``by_layer`` (``"input"`` and deployment layer ->
    ``(lo, hi)``: :func:`tfdenoise.converters.qat_export.calibrated_act_ranges`) and stop those
    ranges learning; ``by_layer=None``: keep the ranges of the layers ``names`` as they are and
    stop them (a resumed run: the ones its start fixed).  Returns the names of the fixed ranges."""
    fixed = []
    for la, q in _range_layers(qnet):
        key = qat.range_tensor(la.name)
        if (key in by_layer) if by_layer is not None else (la.name in names):
            if by_layer is not None:
                la.set_range(*by_layer[key])
            q.frozen = True
            fixed.append(la.name)
    return fixed


def check_record(record: object, where: object) -> dict:
    """A checkpoint's ``"qat"`` entry, checked (one-line :class:`ModelError` otherwise)."""
    if not isinstance(record, dict) or record.get("stage") not in qat.STAGES or \
            not isinstance(record.get("tensors"), list):
        raise ModelError("bad \"qat\" entry in config.json (needs stage 1|2 and tensors)", where)
    for t in record["tensors"]:
        if not isinstance(t, dict) or t.get("bits") not in qat.WEIGHT_BITS or \
                t.get("group") not in tuple(QuantGroup) or not isinstance(t.get("layer"), str):
            raise ModelError(f"bad \"qat\" tensor entry {t!r:.80}", where)
    return record


def apply_grid(keras_model, record: dict, where: object = "") -> dict[tuple[str, str], dict]:
    """Replace the latent weights named in ``record`` by their grid values (what training used)
    and return ``{(layer, weight): {"k", "steps", "bits", "group", "gates"}}`` for the exporter."""
    check_record(record, where)
    grids = {}
    for t in record["tensors"]:
        try:
            layer = keras_model.get_layer(t["layer"])
        except ValueError:
            raise ModelError(f"\"qat\" names layer {t['layer']!r}, which the network lacks", where) from None
        var = getattr(layer.cell if hasattr(layer, "cell") else layer, t["weight"], None)
        if var is None:
            raise ModelError(f"layer {t['layer']} has no {t['weight']}", where)
        group, gates = QuantGroup(t["group"]), int(t.get("gates", 1))
        k, steps = qat.grid_of(var.numpy(), int(t["bits"]), group, gates)
        var.assign(qat.grid_values(k, steps, group, gates))
        grids[(t["layer"], t["weight"])] = {"k": k, "steps": steps, "bits": int(t["bits"]),
                                            "group": group, "gates": gates}
    return grids


def quantized_weights(qnet) -> dict[tuple[str, str], np.ndarray]:
    """What the training graph of ``qnet`` multiplies with, per ``(layer, weight)``: the tanh-grid
    values of its current latent weights (for tests of export bit-exactness)."""
    out = {}
    for la in qnet.layers:
        if isinstance(la, QuantizedRNN):
            k, r, _ = la.quantized()
            name = re.sub(r"^qat_", "", la.name)
            out[(name, "kernel")], out[(name, "recurrent_kernel")] = np.asarray(k), np.asarray(r)
        elif isinstance(la, Q.QuantizeWrapperV2):
            for var, quantizer, qvars in la._weight_vars:  # noqa: SLF001 (tfmot's own list)
                if isinstance(quantizer, TanhWeightQuantizer):
                    out[(la.layer.name, la.quantize_config.weight)] = np.asarray(quantizer(var, False, qvars))
    return out


def load_grid(owner, keras_model, config: dict, where: object) -> None:
    """For a loader: when ``config`` (a checkpoint's ``config.json``) has a ``"qat"`` entry,
    replace ``keras_model``'s latent weights by their grid values and set ``owner.qat_grid``
    (for the exporter) and ``owner.qat_info`` (stage and widths, for the file's metadata)."""
    record = config.get("qat")
    owner.qat_grid, owner.qat_info = None, None
    if record is None:
        return
    owner.qat_grid = apply_grid(keras_model, record, where)
    owner.qat_info = {"stage": int(record["stage"]), "bits": dict(record.get("bits") or {}),
                      "act_ranges": dict(record.get("act_ranges") or {}),
                      **{k: record[k] for k in ("act_ranges_kind", "act_ranges_fixed") if k in record}}
