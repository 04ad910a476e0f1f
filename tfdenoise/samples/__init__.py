"""Small demo audio shipped inside the package (see ``ATTRIBUTION.md``).

* ``valentini/{noisy,clean}/``: 10 Valentini (VoiceBank-DEMAND) test pairs, speakers
  p232 and p257, 16 kHz PCM16 -- the default of ``tfdenoise evaluate``;
* ``phone_call.wav``: a real noisy phone recording without a clean reference.
"""
from __future__ import annotations

from pathlib import Path

SAMPLES_DIR = Path(__file__).resolve().parent
PHONE_CALL = SAMPLES_DIR / "phone_call.wav"


def pairs_dir() -> Path:
    """The bundled Valentini-layout pairs folder (``noisy/`` + ``clean/``)."""
    return SAMPLES_DIR / "valentini"


def phone_call() -> Path:
    """The bundled real noisy phone recording."""
    return PHONE_CALL
