"""Fixtures of the converters tests: tiny calibration sets, models converted once per session."""
from __future__ import annotations

import numpy as np
import pytest

#: docs/design.md §4 parameter memory (MB = 2^20 B) per precision and variant.
SPEC_MB = {
    "fp32": {"lstm256": 4.75, "gru256": 3.76, "lstm128": 1.88, "gru128": 1.56},
    "fp16": {"lstm256": 2.37, "gru256": 1.88, "lstm128": 0.94, "gru128": 0.78},
    "int8": {"lstm256": 1.18, "gru256": 0.93, "lstm128": 0.47, "gru128": 0.39},
    "mixed": {"lstm256": 1.37, "gru256": 1.13, "lstm128": 0.67, "gru128": 0.55},
}
CALIB_FRAMES = 32  # frames per calibration clip in tests


@pytest.fixture(scope="session")
def spec_mb():
    return SPEC_MB


@pytest.fixture(scope="session")
def calib_small():
    from tfdenoise.converters.calibration import CalibrationSet

    return CalibrationSet.load(max_frames=CALIB_FRAMES)


@pytest.fixture(scope="session")
def frames():
    """40 frames of real noisy speech magnitudes (a calibration clip, past its start)."""
    from tfdenoise.converters.calibration import clip_magnitudes, list_clips

    return clip_magnitudes(list_clips()[0])[60:100]


@pytest.fixture(scope="session")
def gru128():
    from tfdenoise.models import TinyDenoiser

    return TinyDenoiser("gru128", seed=0)


@pytest.fixture(scope="session")
def gru128_files(gru128, calib_small):
    """GRU128 (random weights) converted at each built-in precision: name -> bytes."""
    from tfdenoise.converters.convert import PRECISIONS, convert

    return {p: convert(gru128, p, calib_small) for p in PRECISIONS}


@pytest.fixture(scope="session")
def lstm128():
    from tfdenoise.models import TinyDenoiser

    return TinyDenoiser("lstm128", seed=0)


@pytest.fixture(scope="session")
def lstm128_files(lstm128, calib_small):
    from tfdenoise.converters.convert import PRECISIONS, convert

    return {p: convert(lstm128, p, calib_small) for p in PRECISIONS}


@pytest.fixture
def rng():
    return np.random.default_rng(0)
