"""Equivalence check: Keras TinyDenoiser vs exported ``.tflite``, max |mask difference|.

Both run from zero state over each block of frames (one block per clip): Keras with the
sequence model (identical to its streaming step model), the ``.tflite`` file frame by frame
as it would run on the device.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from tfdenoise.converters.interpreter import TFLiteDenoiser

#: Tolerances on max |mask difference| vs Keras used by tests and ``export``.
TOLERANCE = {"fp32": 1e-5, "fp16": 1e-3, "int8": 0.1, "mixed": 0.05}


@dataclass(frozen=True)
class CheckResult:
    """Max and mean |Keras mask - .tflite mask| over all frames checked."""

    max_abs: float
    mean_abs: float
    frames: int


def compare(model, tflite: str | os.PathLike | bytes | TFLiteDenoiser,
            clips: Sequence[np.ndarray]) -> CheckResult:
    """Mask differences of ``model`` (a TinyDenoiser) and ``tflite`` on blocks of frames."""
    den = tflite if isinstance(tflite, TFLiteDenoiser) else TFLiteDenoiser(tflite)
    diffs = []
    for mags in clips:
        mags = np.asarray(mags, np.float32)
        if not len(mags):
            continue
        ref = model.offline_mask(mags)
        diffs.append(np.abs(den.offline_mask(mags) - ref).ravel())
    if not diffs:
        return CheckResult(0.0, 0.0, 0)
    d = np.concatenate(diffs)
    return CheckResult(float(d.max()), float(d.mean()), int(d.size // 257))


def max_mask_diff(model, tflite: str | os.PathLike | bytes | TFLiteDenoiser,
                  clips: Sequence[np.ndarray]) -> float:
    """Shortcut for ``compare(...).max_abs``."""
    return compare(model, tflite, clips).max_abs
