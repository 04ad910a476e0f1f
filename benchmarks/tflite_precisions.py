"""Per-frame LiteRT latency and file size of each export precision, side by side.

For one variant (random weights, deterministic seed) the model is exported at fp32, fp16,
int8 and mixed FP16-INT8 and each file runs frame by frame (``TFLiteDenoiser``, as on the
device: one inference per 6.25 ms hop) on the same real noisy frames.  Printed: parameter
MB (2^20 B), median microseconds per frame, the ratio to fp32, and max |mask diff| vs Keras.
Host CPU timings say nothing about the MCU (see ``targets/`` for that); they show the
relative cost of the (de)quantization ops LiteRT runs.
Usage: ``python benchmarks/tflite_precisions.py [--variant gru128] [--frames 400]``.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", default="gru128")
    ap.add_argument("--frames", type=int, default=400)
    args = ap.parse_args()
    from tfdenoise.converters.calibration import CalibrationSet
    from tfdenoise.converters.check import compare
    from tfdenoise.converters.convert import MB, PRECISIONS, export_model
    from tfdenoise.converters.interpreter import TFLiteDenoiser
    from tfdenoise.models import TinyDenoiser

    model = TinyDenoiser(args.variant, seed=0)
    calib = CalibrationSet.load()
    frames = calib.all_frames()[: args.frames]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for p in PRECISIONS:
            res = export_model(model, Path(tmp) / f"{p}.tflite", p, calib=calib, check=False)
            step = TFLiteDenoiser(res.path).streaming_mask()
            step(frames[0])  # warm-up
            times = []
            for f in frames:
                t0 = time.perf_counter()
                step(f)
                times.append(time.perf_counter() - t0)
            diff = compare(model, res.path, [frames]).max_abs
            rows.append((p, res.param_bytes / MB, 1e6 * float(np.median(times)), diff))
    base = rows[0][2]
    print(f"{args.variant.upper()}: {args.frames} frames, LiteRT, host CPU")
    print(f"{'precision':9} {'param MB':>8} {'us/frame':>9} {'vs fp32':>8} {'max|dmask|':>11}")
    for p, mb, us, d in rows:
        print(f"{p:9} {mb:8.3f} {us:9.1f} {us / base:8.2f} {d:11.2e}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
