"""Sub-8-bit QAT, the tfmot side (docs/design.md §8): quantizers and the ``QuantizeConfig`` of
dense and conv layers, the stage-2 activation quantizer layer, and BatchNorm folding.

* Dense / Conv2D / DepthwiseConv2D go through tensorflow-model-optimization: a
  :class:`KernelConfig` (``QuantizeConfig``) hands the kernel to :class:`TanhWeightQuantizer`
  (stage 1 and 2) and, in stage 2, the bias to :class:`BiasQuantizer` and the activation of a
  sigmoid / softmax layer to a pre-activation quantizer, inside ``QuantizeWrapperV2``.
* :class:`ActQuant`: stage-2 8-bit fake quantization where a full-INT8 file holds an int8
  tensor (the network input, after each kernel layer and its ReLU, the logits; a sigmoid's
  output on TFLite's fixed [0, 255/256] grid): min / max tracked as an exponential moving
  average (first batch: its own range).
* Each BatchNormalization after a kernel is folded into it before QAT (:func:`fold_batchnorm`:
  the BN becomes the identity and stops training), so the grid the layer trains on is the grid
  the folded file stores.

The recurrent layers, the QAT network and the checkpoint entry: :mod:`tfdenoise.qat_layers`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import tensorflow_model_optimization as tfmot

from tfdenoise.keras import keras, tf
from tfdenoise import qat
from tfdenoise.vocab import QuantGroup

Q = tfmot.quantization.keras
#: Decay of the activation ranges' moving average per training step.
EMA_DECAY = 0.99
#: TFLite's int8 LOGISTIC output grid: scale 1/256, zero point -128.
SIGMOID_RANGE = (0.0, 255.0 / 256.0)
KERNEL_LAYERS = (keras.layers.Dense, keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
#: Statistics of a stage-2 activation range (converters/calibration.py's, per batch).
RANGE_STATISTICS = ("max", "std3")


@dataclass(frozen=True)
class QuantSpec:
    """One quantized weight tensor: layer, attribute, width and grouping."""

    layer: str
    weight: str            # kernel | recurrent_kernel | depthwise_kernel
    bits: int
    group: QuantGroup
    gates: int = 1


# -- tfmot quantizers ------------------------------------------------------------------------

class TanhWeightQuantizer(Q.quantizers.Quantizer):
    """Stage-1 weights: tanh transform, symmetric ``bits`` grid, straight-through gradient."""

    def __init__(self, bits: int, group: str = QuantGroup.TENSOR, gates: int = 1) -> None:
        self.bits, self.group, self.gates = qat.check_bits(bits, "weight bits"), QuantGroup(group), int(gates)

    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        return qat.tanh_quantize(inputs, self.bits, self.group, self.gates)

    def get_config(self):
        return {"bits": self.bits, "group": str(self.group), "gates": self.gates}


class BiasQuantizer(Q.quantizers.Quantizer):
    """Stage-2 biases: symmetric linear 8-bit, step max|b| / 127."""

    def build(self, tensor_shape, name, layer):
        return {}

    def __call__(self, inputs, training, weights, **kwargs):
        return qat.linear_quantize(inputs, qat.ACT_BITS)

    def get_config(self):
        return {}


class EmaRangeQuantizer(Q.quantizers.Quantizer):
    """Stage-2 activations: 8-bit over [min, max], tracked as a moving average while training
    (the first batch sets them); ``symmetric``: over [-r, r], r the average of max|x| or, with
    ``statistic="std3"``, of ``|mean| + 3 std`` (never above max|x|: the denoiser's INT8
    calibration statistics, docs/design.md §4); ``one_sided`` (with ``symmetric``, for a
    tensor that is never negative): over [0, 2 r] instead, the export's asymmetric ranges;
    ``fixed`` pins the range (a sigmoid's TFLite output grid)."""

    def __init__(self, fixed: Sequence[float] | None = None, symmetric: bool = False,
                 statistic: str = "max", one_sided: bool = False) -> None:
        self.fixed = None if fixed is None else (float(fixed[0]), float(fixed[1]))
        self.symmetric = bool(symmetric)
        self.statistic = str(statistic)
        self.one_sided = bool(one_sided)
        self.frozen = False   # True: the range stays as set (tfdenoise.qat_layers.fix_ranges)
        if self.statistic not in RANGE_STATISTICS or (self.statistic != "max" and not self.symmetric):
            raise ValueError(f"range statistic {statistic!r}: max, or std3 with symmetric ranges")
        if self.one_sided and not self.symmetric:
            raise ValueError("one-sided ranges [0, 2 r] are laid out from a symmetric range r")

    def build(self, tensor_shape, name, layer):
        lo, hi = self.fixed or (0.0, 0.0)
        return {"min": layer.add_weight(f"{name}_min", shape=(), trainable=False,
                                        initializer=keras.initializers.Constant(lo)),
                "max": layer.add_weight(f"{name}_max", shape=(), trainable=False,
                                        initializer=keras.initializers.Constant(hi)),
                "seen": layer.add_weight(f"{name}_seen", shape=(), trainable=False,
                                         initializer=keras.initializers.Constant(1.0 if self.fixed else 0.0))}

    def __call__(self, inputs, training, weights, **kwargs):
        lo, hi = weights["min"], weights["max"]
        if training and self.fixed is None and not self.frozen:
            if self.symmetric:
                peak = tf.reduce_max(tf.abs(inputs))
                if self.statistic == "std3":  # as converters/calibration.py: |mean| + 3 std, <= max
                    peak = tf.minimum(tf.abs(tf.reduce_mean(inputs)) + 3.0 * tf.math.reduce_std(inputs), peak)
                b_lo, b_hi = (0.0 * peak, 2.0 * peak) if self.one_sided else (-peak, peak)
            else:
                b_lo = tf.minimum(tf.reduce_min(inputs), 0.0)
                b_hi = tf.maximum(tf.reduce_max(inputs), 0.0)
            first = weights["seen"] < 0.5
            decay = tf.where(first, 0.0, EMA_DECAY)
            lo = lo.assign(decay * lo + (1.0 - decay) * tf.stop_gradient(b_lo))
            hi = hi.assign(decay * hi + (1.0 - decay) * tf.stop_gradient(b_hi))
            with tf.control_dependencies([lo, hi]):
                weights["seen"].assign(1.0)
        hi = tf.maximum(hi, lo + 1e-6)
        return tf.quantization.fake_quant_with_min_max_vars(inputs, lo, hi, num_bits=qat.ACT_BITS)

    def get_config(self):
        return {"fixed": self.fixed, "symmetric": self.symmetric, "statistic": self.statistic,
                "one_sided": self.one_sided}


class KernelConfig(Q.QuantizeConfig):
    """QuantizeConfig of a dense / conv layer: the kernel on the tanh grid; in stage 2 also the
    bias (8-bit linear).  Activations are quantized by :class:`ActQuant` layers around it."""

    def __init__(self, bits: int, stage: int, group: str, weight: str = "kernel", gates: int = 1) -> None:
        self.bits, self.stage, self.group, self.weight, self.gates = bits, stage, group, weight, gates

    def get_weights_and_quantizers(self, layer):
        out = [(getattr(layer, self.weight), TanhWeightQuantizer(self.bits, self.group, self.gates))]
        if self.stage == 2 and getattr(layer, "bias", None) is not None:
            out.append((layer.bias, BiasQuantizer()))
        return out

    def get_activations_and_quantizers(self, layer):
        return []  # activations: ActQuant layers where the file holds int8 tensors

    def set_quantize_weights(self, layer, quantize_weights):
        setattr(layer, self.weight, quantize_weights[0])
        if len(quantize_weights) > 1:
            layer.bias = quantize_weights[1]

    def set_quantize_activations(self, layer, quantize_activations):
        if quantize_activations:
            layer.activation = quantize_activations[0]

    def get_output_quantizers(self, layer):
        return []

    def get_config(self):
        return {"bits": self.bits, "stage": self.stage, "group": str(self.group),
                "weight": self.weight, "gates": self.gates}


class ActQuant(keras.layers.Layer):
    """Stage-2 fake quantization of one activation tensor (:class:`EmaRangeQuantizer`)."""

    def __init__(self, fixed: Sequence[float] | None = None, symmetric: bool = False,
                 statistic: str = "max", one_sided: bool = False, **kwargs) -> None:
        super().__init__(**kwargs)
        self.quantizer = EmaRangeQuantizer(fixed, symmetric, statistic, one_sided)

    def build(self, input_shape):
        self.qvars = self.quantizer.build(input_shape, "act", self)
        super().build(input_shape)

    def call(self, x, training=None):
        training = bool(keras.backend.learning_phase()) if training is None else training
        return self.quantizer(x, training, self.qvars)

    def range(self) -> list[float]:
        return [float(self.qvars["min"].numpy()), float(self.qvars["max"].numpy())]

    def set_range(self, lo: float, hi: float) -> None:
        self.qvars["min"].assign(lo)
        self.qvars["max"].assign(hi)
        self.qvars["seen"].assign(1.0)


def kernel_spec(layer, bits: int) -> QuantSpec:
    """The quantized weight of a dense / conv / depthwise layer and its grouping: one step per
    output channel (TFLite's per-channel scales; after BatchNorm folding the channels' ranges
    differ: on the shipped KWS DNN's first layer a 4-bit per-tensor grid rounds 75 % of the
    weights to 0, per channel 26 %)."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        return QuantSpec(layer.name, "depthwise_kernel", bits, QuantGroup.DEPTHWISE)
    return QuantSpec(layer.name, "kernel", bits, QuantGroup.CHANNEL)  # dense, conv: per output channel


# -- BatchNorm folding -----------------------------------------------------------------------

def fold_batchnorm(kernel_layer, bn) -> None:
    """Fold inference-mode ``bn`` into ``kernel_layer`` (kernel scaled per output channel, bias
    shifted), then make ``bn`` the identity and stop training it.  Idempotent."""
    gamma, beta, mean, var = (np.asarray(w, np.float32) for w in bn.get_weights())
    inv = gamma / np.sqrt(var + np.float32(bn.epsilon))
    w, b = kernel_layer.get_weights()
    axis_shape = (1, 1, -1, 1) if isinstance(kernel_layer, keras.layers.DepthwiseConv2D) else (-1,)
    w = (w * inv.reshape(axis_shape) if len(axis_shape) == 4 else w * inv).astype(np.float32)
    kernel_layer.set_weights([w, ((b - mean) * inv + beta).astype(np.float32)])
    one = np.float32(1.0)
    ident_var = one - np.float32(bn.epsilon)
    while ident_var + np.float32(bn.epsilon) != one:  # var + eps must be exactly 1 in float32
        ident_var = np.nextafter(ident_var, np.float32(2.0))
    n = gamma.shape[0]
    bn.set_weights([np.ones(n, np.float32), np.zeros(n, np.float32), np.zeros(n, np.float32),
                    np.full(n, ident_var, np.float32)])
    bn.trainable = False


def fold_network(net) -> list[str]:
    """Fold every BatchNormalization that directly follows a kernel layer of ``net``; returns
    the folded BN names."""
    folded = []
    for prev, layer in zip(net.layers, net.layers[1:]):
        if isinstance(layer, keras.layers.BatchNormalization) and isinstance(prev, KERNEL_LAYERS):
            fold_batchnorm(prev, layer)
            folded.append(layer.name)
    return folded
