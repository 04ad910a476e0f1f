"""Range checks of options, one line each (base layer: imports nothing of ours but errors).

Every command's library entry point checks its typed arguments with these before it reads
data or writes anything; the message names the option as the user typed it (``--epochs``).
"""
from __future__ import annotations

import math
import numbers
from typing import Callable

from tfdenoise.errors import InputError


def check_integer(option: str, value: object, low: int) -> None:
    """One-line error naming ``option`` unless ``value`` is an integer >= ``low``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise InputError(f"{option} must be an integer >= {low}, got {value}")


def check_number(option: str, value: object, ok: Callable[[float], bool], wanted: str) -> None:
    """One-line error naming ``option`` unless ``value`` is a finite number with ``ok(value)``
    (``wanted`` says what that means, e.g. ``"a share in [0, 1]"``)."""
    if (isinstance(value, bool) or not isinstance(value, numbers.Real)
            or not math.isfinite(value) or not ok(value)):
        raise InputError(f"{option} must be {wanted}, got {value}")


def check_pair(option: str, value: object, wanted: str) -> None:
    """One-line error naming ``option`` unless ``value`` is two finite numbers LO <= HI
    (``wanted``: their unit, e.g. ``"dB"``)."""
    if (not isinstance(value, (tuple, list)) or len(value) != 2
            or not all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                       and math.isfinite(v) for v in value) or value[0] > value[1]):
        shown = " ".join(map(str, value)) if isinstance(value, (tuple, list)) else value
        raise InputError(f"{option} must be two finite numbers LO HI ({wanted}) with LO <= HI, got {shown}")


def check_schedule(epochs: object, batch: object, lr: object, lr_final: object | None) -> None:
    """The options every training run has: ``--epochs``, ``--batch``, ``--lr``, ``--lr-final``."""
    check_integer("--epochs", epochs, 1)
    check_integer("--batch", batch, 1)
    check_number("--lr", lr, lambda v: 0 < v <= 1, "a number in (0, 1]")
    if lr_final is not None:
        check_number("--lr-final", lr_final, lambda v: 0 < v <= 1, "a number in (0, 1]")
