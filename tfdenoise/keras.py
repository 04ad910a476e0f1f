"""The only module that imports Keras.

tfdenoise uses legacy Keras 2 (``tf_keras``): only it converts an LSTM layer to the fused
TFLite ``UNIDIRECTIONAL_SEQUENCE_LSTM`` op (Keras 3 unrolls it into WHILE loops, which crash
full-INT8 conversion), and only it works with ``tensorflow-model-optimization``.
Everything else in the package does ``from tfdenoise.keras import keras``.
"""
from __future__ import annotations

import logging
import os

from tfdenoise.quiet import native_stderr_muted

# Quiet TensorFlow's C++ start-up chatter unless the user asked for it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")

# Messages tf_keras logs on every .tflite export of an uncompiled model; they describe
# Keras training metrics, which a converted model never has.
_IRRELEVANT_WARNINGS = ("compiled metrics have yet to be built",)


class _DropIrrelevant(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not any(s in record.getMessage() for s in _IRRELEVANT_WARNINGS)


def _import_quietly():
    """Import TensorFlow with its C++ start-up lines (CUDA probing on CPU machines) muted."""
    with native_stderr_muted():
        import tensorflow
        import tf_keras
    return tensorflow, tf_keras


tf, keras = _import_quietly()
tf.get_logger().addFilter(_DropIrrelevant())

layers = keras.layers

__all__ = ["keras", "layers", "tf"]
