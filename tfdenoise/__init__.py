"""tfdenoise: TinyDenoiser speech enhancement from training to a modeled multi-core MCU.

Data flow: wav -> STFT -> model -> train -> convert -> .tflite -> read -> plan memory
-> tile -> schedule -> cost -> report.  Heavy modules (TensorFlow) are imported lazily.
"""
import os

# TensorFlow is imported lazily; keep its C++ start-up logging quiet unless asked for.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

__version__ = "0.1.0"

from tfdenoise.vocab import SAMPLE_RATE  # noqa: E402  (re-exported)
