"""Measure the room impulse responses of tfdenoise/rir.py: RT60 accuracy and speed.

    python tools/rir_check.py [--count N] [--rt60 LO HI] [--seed S] [--mixing SPEECH NOISE [--cache DIR]]

For N random rooms (as ``tfdenoise train --reverb`` draws them) it prints the RT60 measured
back from each response (Schroeder decay, T20) against the RT60 drawn, for the full response
(image sources + diffuse tail), its direct-to-reverberant ratio against diffuse-field theory
(``10 log10(R / (16 pi r^2))``, room constant ``R = S alpha / (1 - alpha)``, ``r`` the
source distance), and the time to simulate one response; then, for 20 rooms of
RT60 0.2-0.4 s, the image sources alone (order 60, no tail, cut where they stop being complete;
T15 so that the fit ends well before the cut) with the absorption from Sabine's and from
Eyring's formula: how the image part decays by itself. ``--mixing``: the time to make one
2 s training mixture (40 % synthetic noise) from those folders without and with reverberation.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _images_only(room, order: int = 60) -> np.ndarray:
    """The image-source part of a response alone, up to where it is complete."""
    from tfdenoise import SAMPLE_RATE, rir

    delays, amps, t_c = rir.image_sources(room, order)
    return rir.image_taps(delays, amps, int(t_c * SAMPLE_RATE), SAMPLE_RATE)


def _drr(h: np.ndarray) -> float:
    """Direct-to-reverberant energy ratio in dB (the direct path is one tap)."""
    from tfdenoise import rir

    d = rir.direct_index(h)
    return float(10 * np.log10(h[d] ** 2 / np.sum(h[d + 1:].astype(np.float64) ** 2)))


def _drr_theory(room) -> float:
    lx, ly, lz = room.size
    constant = 2 * (lx * ly + lx * lz + ly * lz) * room.alpha / (1 - room.alpha)
    r = float(np.linalg.norm(np.subtract(room.source, room.mic)))
    return float(10 * np.log10(constant / (16 * np.pi * r ** 2)))


def _summary(name: str, rel: list[float]) -> str:
    r = np.array(rel) * 100
    return (f"{name:<38} measured/drawn - 1: mean {r.mean():+5.1f} %, sd {r.std():4.1f} %, "
            f"range {r.min():+5.1f} .. {r.max():+5.1f} % ({len(r)} rooms)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=60)
    ap.add_argument("--rt60", type=float, nargs=2, default=(0.2, 1.0))
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--mixing", nargs=2, metavar=("SPEECH", "NOISE"), help="also time the mixing")
    ap.add_argument("--cache", default=None, help="decoded-audio cache of those folders")
    args = ap.parse_args()
    from tfdenoise import rir

    rng = np.random.default_rng(args.seed)
    rir.random_rirs(rng, tuple(args.rt60))  # warm-up
    full, seconds, drr = [], [], []
    for _ in range(args.count):
        t0 = time.perf_counter()
        room, (h,) = rir.random_rirs(rng, tuple(args.rt60))
        seconds.append(time.perf_counter() - t0)
        full.append(rir.estimate_rt60(h) / room.rt60 - 1)
        drr.append(_drr(h) - _drr_theory(room))
    print(_summary("image sources + tail (as trained)", full))
    d = np.array(drr)
    print(f"direct-to-reverberant ratio minus diffuse-field theory: mean {d.mean():+.1f} dB, "
          f"range {d.min():+.1f} .. {d.max():+.1f} dB")
    for formula in (rir.SABINE, rir.EYRING):
        rel, rng = [], np.random.default_rng(args.seed + 1)
        for _ in range(min(args.count, 20)):
            room = rir.draw_room(rng, (0.2, 0.4), formula)
            try:
                rel.append(rir.estimate_rt60(_images_only(room), span_db=(-5.0, -20.0)) / room.rt60 - 1)
            except ValueError:  # did not decay 20 dB within the complete part
                pass
        print(_summary(f"image sources only, order 60, {formula}", rel))
    print(f"time per response: median {np.median(seconds) * 1e3:.2f} ms, max {np.max(seconds) * 1e3:.2f} ms")
    if args.mixing:
        _mixing_time(*args.mixing, args.cache)
    return 0


def _mixing_time(speech: str, noise: str, cache: str | None, count: int = 128) -> None:
    from tfdenoise import mixtures
    from tfdenoise.augment import Augment

    corpora = [mixtures.load_corpus(folder, cache, progress=False) for folder in (speech, noise)]
    for i, reverb in enumerate((1.0, 0.0, 0.3, 1.0)):
        t0 = time.perf_counter()
        mixing = mixtures.Mixing(synthetic=0.4, augment=Augment(reverb=reverb))
        for _ in mixtures.mixtures(*corpora, count, 2.0, 5, mixing):
            pass
        print(f"--reverb {reverb:g}: {(time.perf_counter() - t0) / count * 1e3:.1f} ms per 2 s mixture"
              + (" (warm-up pass)" if i == 0 else ""))


if __name__ == "__main__":
    sys.exit(main())
