"""One exception hierarchy for the whole toolkit.

Library code raises these; only ``tfdenoise.cli`` turns them into messages and exit codes.
Every message is one line that names the file (when there is one) and the problem.
"""
from __future__ import annotations


class TfdenoiseError(Exception):
    """Base class of every error tfdenoise raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, path: object | None = None) -> None:
        self.path = None if path is None else str(path)
        super().__init__(f"{self.path}: {message}" if self.path else message)


class InputError(TfdenoiseError):
    """Bad user input: missing file, wrong sample rate, stereo, silence, NaN, bad folder."""

    exit_code = 2


class AudioError(InputError):
    """An audio file that cannot be used as it is."""


class ModelError(TfdenoiseError):
    """A checkpoint or model file that cannot be loaded or does not match its config."""

    exit_code = 3


class TFLiteFormatError(ModelError):
    """A .tflite flatbuffer that is corrupt, truncated or not a TFLite model at all."""


class UnsupportedOpError(ModelError):
    """An operator the requested step cannot handle."""


class ConversionError(ModelError):
    """Keras -> .tflite conversion or calibration failed."""


class RecipeError(InputError):
    """A precision recipe that is malformed or names layers the model does not have."""


class BoardError(InputError):
    """A board description file with missing keys, wrong units or out-of-range values."""


class DoesNotFitError(TfdenoiseError):
    """A model that cannot be placed in the target's memories."""

    exit_code = 4
