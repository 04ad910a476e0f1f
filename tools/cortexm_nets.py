"""The published networks of the Cortex-M / Cortex-A validation (tools/cortexm_validation.py).

Each network is rebuilt from its published description as a tf_keras model (through
``tfdenoise.keras``) and has a MAC count by hand: the formula below applied to the published
layer list, without Keras or TensorFlow.  The validation compares three counts per network:
the hand count, the count of the Keras model (:func:`keras_macs`, from the built layers' shapes)
and the count of the converted ``.tflite`` as the cost model reads it; the published MAC figure
where a source states one (``Net.published_macs``).

MAC conventions (the cost model's, targets/layers.py): Conv2D = H_out*W_out*C_out*kh*kw*C_in;
DepthwiseConv2D = H_out*W_out*C*kh*kw; Dense = n_in*n_out; pooling, residual adds, BatchNorm
(folded into the conv) and activations count no MACs.

Networks (sources in tools/cortexm_measurements.toml and docs/boards.md):

* ``mlperf_kws`` -- MLPerf Tiny KWS DS-CNN: this repository's ``dscnn`` layer table
  (tfdenoise/kws/layertable.py, 12 classes, docs/design.md §7).
* ``mlperf_ic`` -- MLPerf Tiny image classification, ResNet-8 ``resnet_v1_eembc`` with 16 filters
  (mlcommons/tiny benchmark/training/image_classification/keras_model.py, v0.5-v1.1): 32x32x3.
* ``mlperf_vww`` -- MLPerf Tiny visual wake words, MobileNetV1 alpha 0.25 on 96x96x3, 2 classes
  (benchmark/training/visual_wake_words/vww_model.py).
* ``mlperf_ad`` -- MLPerf Tiny anomaly detection, dense autoencoder 640-128x4-8-128x4-640
  (benchmark/training/anomaly_detection/keras_model.py).
* ``wang_li_cnn`` -- the STM32F7 KWS system's ``cnn`` (Wang & Li 2022), 6 classes.
* ``mobilenet_v1_224`` -- MobileNet v1 1.0 on 224x224x3, 1000 classes (tf_keras.applications).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

#: (kind, filters, kernel, stride): "conv" 2-D convolution, "dw" depthwise 3x3, "pw" 1x1 conv
Block = tuple[str, int, int, int]


@dataclass(frozen=True)
class Net:
    """One published network: how to build it and what its MACs are."""

    key: str
    title: str
    input_shape: tuple[int, ...]
    build: Callable[[], object]          # -> tf_keras Model (float, untrained)
    hand_macs: Callable[[], int]
    published_macs: int | None = None    # as stated by a source (see published_source)
    published_source: str = ""
    published_tolerance: int = 0         # the rounding of the published figure (absolute MACs)

    def matches_published(self, macs: int) -> bool | None:
        """Whether ``macs`` equals the published figure within its rounding (None: none published)."""
        if self.published_macs is None:
            return None
        return abs(macs - self.published_macs) <= self.published_tolerance


def _same(n: int, stride: int) -> int:
    return -(-n // stride)


# -- hand counts ----------------------------------------------------------------------------

def conv_stack_macs(h: int, w: int, c: int, blocks: list[Block]) -> tuple[int, tuple[int, int, int]]:
    """MACs of a chain of 'same'-padded conv / depthwise / pointwise blocks, and the output shape."""
    total = 0
    for kind, filters, k, s in blocks:
        h, w = _same(h, s), _same(w, s)
        if kind == "dw":
            total += h * w * c * k * k
        else:
            total += h * w * filters * k * k * c
            c = filters
    return total, (h, w, c)


def resnet8_macs(filters: int = 16) -> int:
    """ResNet-8 (resnet_v1_eembc): stem, three stacks of two 3x3 convs, 1x1/2 shortcuts, FC 10."""
    total, (h, w, c) = conv_stack_macs(32, 32, 3, [("conv", filters, 3, 1)])
    for stack, f in enumerate((filters, 2 * filters, 4 * filters)):
        s = 1 if stack == 0 else 2
        main, (h2, w2, _) = conv_stack_macs(h, w, c, [("conv", f, 3, s), ("conv", f, 3, 1)])
        total += main + (h2 * w2 * f * c if stack else 0)   # 1x1 stride-2 shortcut conv
        h, w, c = h2, w2, f
    return total + c * 10


def mobilenet_v1_blocks(alpha: float) -> list[Block]:
    """MobileNet v1's 13 depthwise-separable blocks (after the 3x3/2 stem), widths times alpha."""
    widths = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2)] + [(512, 1)] * 5 \
        + [(1024, 2), (1024, 1)]
    blocks: list[Block] = []
    for f, s in widths:
        blocks += [("dw", 0, 3, s), ("pw", int(f * alpha), 1, 1)]
    return blocks


def mobilenet_v1_macs(alpha: float, size: int, classes: int) -> int:
    stem = int(32 * alpha)
    total, (_, _, c) = conv_stack_macs(size, size, 3, [("conv", stem, 3, 2)] + mobilenet_v1_blocks(alpha))
    return total + c * classes


def dense_macs(sizes: list[int]) -> int:
    return sum(a * b for a, b in zip(sizes, sizes[1:]))


AD_SIZES = [640, 128, 128, 128, 128, 8, 128, 128, 128, 128, 640]


def kws_macs(name: str, classes: int) -> int:
    """The layer-table hand count of a KWS network (tfdenoise.kws.layertable.describe)."""
    from tfdenoise.kws.layertable import describe

    return int(describe(name, classes)["macs"])


# -- Keras builders ---------------------------------------------------------------------------

def _conv_bn_relu(x, layers, filters: int, k: int, s: int, relu: bool = True):
    x = layers.Conv2D(filters, k, strides=s, padding="same")(x)
    x = layers.BatchNormalization()(x)
    return layers.ReLU()(x) if relu else x


def build_resnet8(filters: int = 16):
    from tfdenoise.keras import keras, layers

    inp = keras.Input((32, 32, 3), batch_size=1)
    x = _conv_bn_relu(inp, layers, filters, 3, 1)
    for stack, f in enumerate((filters, 2 * filters, 4 * filters)):
        s = 1 if stack == 0 else 2
        y = _conv_bn_relu(x, layers, f, 3, s)
        y = _conv_bn_relu(y, layers, f, 3, 1, relu=False)
        if stack:
            x = layers.Conv2D(f, 1, strides=2, padding="same")(x)
        x = layers.ReLU()(layers.Add()([x, y]))
    x = layers.Flatten()(layers.AveragePooling2D(pool_size=int(x.shape[1]))(x))
    return keras.Model(inp, layers.Dense(10, activation="softmax")(x), name="mlperf_ic_resnet8")


def build_vww(alpha: float = 0.25, size: int = 96, classes: int = 2):
    from tfdenoise.keras import keras, layers

    inp = keras.Input((size, size, 3), batch_size=1)
    x = _conv_bn_relu(inp, layers, int(32 * alpha), 3, 2)
    for kind, f, _, s in mobilenet_v1_blocks(alpha):
        if kind == "dw":
            x = layers.DepthwiseConv2D(3, strides=s, padding="same")(x)
            x = layers.ReLU()(layers.BatchNormalization()(x))
        else:
            x = _conv_bn_relu(x, layers, f, 1, 1)
    x = layers.Flatten()(layers.AveragePooling2D(pool_size=int(x.shape[1]))(x))
    return keras.Model(inp, layers.Dense(classes, activation="softmax")(x), name="mlperf_vww_mobilenet")


def build_ad():
    from tfdenoise.keras import keras, layers

    inp = keras.Input((AD_SIZES[0],), batch_size=1)
    x = inp
    for n in AD_SIZES[1:-1]:
        x = layers.ReLU()(layers.BatchNormalization()(layers.Dense(n)(x)))
    return keras.Model(inp, layers.Dense(AD_SIZES[-1])(x), name="mlperf_ad_autoencoder")


def build_kws(name: str, classes: int):
    from tfdenoise.kws.models import build

    return build(name, classes, seed=0)


def build_mobilenet_v1_224():
    from tfdenoise.keras import keras

    return keras.applications.MobileNet(input_shape=(224, 224, 3), alpha=1.0, weights=None,
                                        classes=1000)


# -- the Keras model's own count ----------------------------------------------------------------

def keras_macs(model) -> int:
    """MACs of the Conv2D / DepthwiseConv2D / Dense layers of a built Keras model (their shapes)."""
    from tfdenoise.keras import layers

    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.DepthwiseConv2D):   # before Conv2D: it subclasses it
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c = layer.output.shape
            kh, kw = layer.kernel_size
            total += h * w * c * kh * kw * int(layer.input.shape[-1])
        elif isinstance(layer, layers.Dense):
            total += int(layer.input.shape[-1]) * int(layer.units)
    return int(total)


NETS: dict[str, Net] = {n.key: n for n in (
    Net("mlperf_kws", "MLPerf Tiny KWS DS-CNN (49x10 MFCC, 12 classes)", (49, 10),
        lambda: build_kws("dscnn", 12), lambda: kws_macs("dscnn", 12),
        2_700_000, "docs/design.md §7: 'about 2.7 M MACs'", 50_000),
    Net("mlperf_ic", "MLPerf Tiny IC ResNet-8 (CIFAR-10 32x32x3)", (32, 32, 3),
        build_resnet8, resnet8_macs),
    Net("mlperf_vww", "MLPerf Tiny VWW MobileNetV1-0.25 (96x96x3)", (96, 96, 3),
        build_vww, lambda: mobilenet_v1_macs(0.25, 96, 2)),
    Net("mlperf_ad", "MLPerf Tiny AD FC autoencoder (640)", (640,),
        build_ad, lambda: dense_macs(AD_SIZES)),
    Net("wang_li_cnn", "STM32F7 KWS cnn-one-fstride4 (log-mel 40x30, 6 classes)", (30, 40),
        lambda: build_kws("cnn", 6), lambda: kws_macs("cnn", 6),
        476_576, "docs/design.md §7: 476,576 MACs with 6 classes (from its published code)"),
    Net("mobilenet_v1_224", "MobileNet v1 1.0 (224x224x3, 1000 classes)", (224, 224, 3),
        build_mobilenet_v1_224, lambda: mobilenet_v1_macs(1.0, 224, 1000),
        569_000_000, "tensorflow/models research/slim/nets/mobilenet_v1.md: 569 Million MACs", 500_000),
)}
