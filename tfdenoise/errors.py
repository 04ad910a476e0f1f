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


class OutputError(InputError):
    """An output path that cannot be used: it would overwrite an input, or cannot be written."""


class BatchError(InputError):
    """Some files of a batch failed; the others were written (``written``, ``failed``)."""

    def __init__(self, message: str, written: list, failed: list) -> None:
        super().__init__(message)
        self.written, self.failed = written, failed


class ModelError(TfdenoiseError):
    """A checkpoint or model file that cannot be loaded or does not match its config."""

    exit_code = 3


class TFLiteFormatError(ModelError):
    """A .tflite flatbuffer that is corrupt, truncated or not a TFLite model at all."""


class ConversionError(ModelError):
    """Keras -> .tflite conversion or calibration failed."""


class RecipeError(InputError):
    """A precision recipe that is malformed or names layers the model does not have."""


class BoardError(InputError):
    """A board description file with missing keys, wrong units or out-of-range values."""


class DoesNotFitError(TfdenoiseError):
    """A model that cannot be placed in the target's memories (raised after its report is written)."""

    exit_code = 4


class TfdenoiseWarning(UserWarning):
    """Something the user must hear about but that does not stop the work (resampled input,
    narrowband material scored as wide-band, clipped output, random weights)."""


def warn(message: str) -> None:
    """Issue a :class:`TfdenoiseWarning`; shown once per distinct message."""
    import warnings

    warnings.warn(message, TfdenoiseWarning, stacklevel=2)


_WARNING_PREFIX: list[str] = ["tfdenoise"]


def show_warnings_as_lines(prefix: str = "tfdenoise") -> None:
    """Print every :class:`TfdenoiseWarning` as one line ``<prefix>: warning: <message>`` on stderr.

    Installed by the CLI and by worker processes; installing it again only changes the prefix
    (no wrapper around a wrapper); other warnings keep Python's format.
    """
    import sys
    import warnings

    _WARNING_PREFIX[0] = prefix
    if getattr(warnings.showwarning, "_tfdenoise", False):
        return
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, TfdenoiseWarning):
            print(f"{_WARNING_PREFIX[0]}: warning: {message}", file=sys.stderr, flush=True)
        else:
            default(message, category, filename, lineno, file, line)

    show._tfdenoise = True
    warnings.showwarning = show
    warnings.simplefilter("default", TfdenoiseWarning)


def warning_prefix() -> str:
    """The prefix of warning lines in this process (``tfdenoise`` before the CLI sets one)."""
    return _WARNING_PREFIX[0]
