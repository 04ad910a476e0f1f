"""Real-time factor of streaming vs offline enhancement, per TinyDenoiser variant.

For each variant (random weights, so nothing needs training) one run measures, on the same
signal:

* streaming: :func:`tfdenoise.stft.process_streaming` with the step model, one inference per
  100-sample hop, as on the device (docs/design.md §1: one inference every 6.25 ms);
* offline: :func:`tfdenoise.stft.process_offline` with the sequence model, all frames at once,
  compiled with ``tf.function`` (the eager ``TinyDenoiser.offline_mask`` runs the RNN loop op
  by op and is ~100x slower, which would not be a fair comparison).

RTF = processing time / audio duration (< 1 means faster than real time).  Each mode is
warmed up once on the same signal (graph tracing excluded) and the best of ``--repeats`` is
kept.  Usage: ``python benchmarks/enhance_speed.py [--seconds 4] [--repeats 3]``.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from tfdenoise import SAMPLE_RATE
from tfdenoise.models import VARIANTS, TinyDenoiser
from tfdenoise.stft import N_BINS, num_frames, padded_length, process_offline, process_streaming
from tfdenoise.vocab import HOP_MS


def _best(fn, repeats: int) -> float:
    fn()  # warm-up: tracing / first-call overheads
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def compiled_offline_mask(model: TinyDenoiser):
    """``magnitudes[T, 257] -> gains[T, 257]`` through a traced sequence model."""
    from tfdenoise.keras import tf

    @tf.function(input_signature=[tf.TensorSpec([1, None, N_BINS], tf.float32)])
    def run(mags):
        return model.sequence(mags, training=False)

    return lambda mags: run(mags[None].astype(np.float32)).numpy()[0]


def measure(variant: str, x: np.ndarray, repeats: int) -> dict:
    """Streaming and offline timings of one variant on ``x``."""
    model = TinyDenoiser(variant, seed=0)
    offline_mask = compiled_offline_mask(model)
    seconds = len(x) / SAMPLE_RATE
    frames = num_frames(padded_length(len(x)))
    t_stream = _best(lambda: process_streaming(x, model.streaming_mask()), repeats)
    t_off = _best(lambda: process_offline(x, offline_mask), repeats)
    return {"variant": variant.upper(), "stream_rtf": t_stream / seconds,
            "stream_ms_per_frame": 1000 * t_stream / frames, "offline_rtf": t_off / seconds,
            "ratio": t_stream / t_off}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=4.0, help="test signal length")
    p.add_argument("--repeats", type=int, default=3, help="timed runs per mode (best kept)")
    args = p.parse_args(argv)
    x = np.random.default_rng(0).standard_normal(int(args.seconds * SAMPLE_RATE)) * 0.1
    rows = [measure(v, x.astype(np.float32), args.repeats) for v in VARIANTS]
    print(f"enhance speed, {args.seconds:g} s signal, best of {args.repeats}, random weights "
          f"(RTF = time / audio duration; real-time budget {HOP_MS:.2f} ms per frame)")
    print(f"{'variant':8} {'streaming RTF':>13} {'ms/frame':>9} {'offline RTF':>11} "
          f"{'streaming/offline':>17}")
    for r in rows:
        print(f"{r['variant']:8} {r['stream_rtf']:>13.3f} {r['stream_ms_per_frame']:>9.3f} "
              f"{r['offline_rtf']:>11.4f} {r['ratio']:>16.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
