"""Speech-quality metrics of docs/design.md §3: PESQ wide-band (ITU-T P.862.2) and STOI (not extended).

:func:`score` validates its inputs first, so a silent, too-short, non-finite or
length-mismatched pair raises an :class:`~tfdenoise.errors.AudioError` with one clear
line instead of a warning or a meaningless score deep inside ``pesq``/``pystoi``.
"""
from __future__ import annotations

import warnings

import numpy as np

from tfdenoise import SAMPLE_RATE
from tfdenoise.errors import AudioError, warn

#: Shortest signal scored.  STOI needs 30 frames of 384 ms of speech after its own
#: silence removal, and PESQ refuses buffers below ~0.25 s; half a second is safe.
MIN_SECONDS = 0.5
#: A signal whose peak is below this is treated as silent.
SILENCE_PEAK = 1e-6
#: A reference with less than this share of its energy above 4 kHz is narrowband material
#: (telephone speech, 8 kHz recordings resampled): -40 dB.
NARROWBAND_SHARE = 1e-4


def upper_band_share(x: np.ndarray, sr: int = SAMPLE_RATE, edge_hz: float = 4000.0) -> float:
    """Share of the signal's energy above ``edge_hz`` (0 for narrowband material)."""
    spec = np.abs(np.fft.rfft(np.asarray(x, np.float64))) ** 2
    freqs = np.fft.rfftfreq(len(x), 1.0 / sr)
    total = float(spec.sum())
    return float(spec[freqs > edge_hz].sum()) / total if total > 0 else 0.0


def _check(x: np.ndarray, what: str, sr: int, name: str | None) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    label = f"{what} signal"
    if x.ndim != 1:
        raise AudioError(f"{label} must be 1-D mono audio, got shape {x.shape}", name)
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{label} contains NaN or infinite samples", name)
    if x.size < MIN_SECONDS * sr:
        raise AudioError(f"{label} is too short to score ({x.size / sr:.3f} s; "
                         f"PESQ/STOI need at least {MIN_SECONDS} s)", name)
    if np.max(np.abs(x)) < SILENCE_PEAK:
        raise AudioError(f"{label} is silent; PESQ/STOI are undefined", name)
    return x


def score(clean: np.ndarray, enhanced: np.ndarray, sr: int = SAMPLE_RATE,
          name: str | None = None) -> dict[str, float]:
    """PESQ-WB and STOI of ``enhanced`` against the reference ``clean``.

    Both signals are mono, at ``sr`` Hz (8 or 16 kHz for PESQ), and of the same length.
    ``name`` (e.g. the file name) is put into error messages.  Returns
    ``{"pesq": float, "stoi": float}``.
    """
    from pesq import PesqError, pesq
    from pystoi import stoi

    if sr not in (8000, SAMPLE_RATE):
        raise AudioError(f"PESQ needs 8000 or 16000 Hz audio, got {sr} Hz", name)
    ref = _check(clean, "clean", sr, name)
    deg = _check(enhanced, "enhanced", sr, name)
    if ref.shape != deg.shape:
        raise AudioError(f"clean and enhanced signals differ in length "
                         f"({ref.size} vs {deg.size} samples)", name)
    if sr == SAMPLE_RATE and upper_band_share(ref, sr) < NARROWBAND_SHARE:
        warn(f"{name or 'clean reference'}: narrowband material (no energy above 4 kHz) scored "
             "with PESQ-WB; its scores are not comparable with wide-band speech")
    try:
        p = pesq(sr, ref, deg, "wb" if sr == SAMPLE_RATE else "nb")
    except PesqError as exc:
        raise AudioError(f"PESQ failed ({type(exc).__name__}: {exc})", name) from exc
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s = stoi(ref, deg, sr, extended=False)
    if any("Not enough STFT frames" in str(w.message) for w in caught):
        # pystoi returns a meaningless 1e-5 when too little speech is left after VAD.
        raise AudioError("too little speech for STOI (under 30 frames after silence "
                         "removal)", name)
    return {"pesq": float(p), "stoi": float(s)}
