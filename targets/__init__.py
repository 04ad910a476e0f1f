"""targets: .tflite -> modeled MCU execution (no TensorFlow import)."""
