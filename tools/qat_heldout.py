"""Held-out evidence for the denoiser's INT8 QAT (docs/qat.md): PESQ-WB / STOI on held-out
mixtures, never the Valentini test pairs.

    python tools/qat_heldout.py RUN [--count 96] [--seed 3000000] [--synthetic-noise 0]
        [--float CKPT] [--epoch0] [--input-ranges R ...] [--files F.tflite ...] [--json]

The mixtures are made as RUN's config makes its selection set (tools/heldout_scores.py), from
``--seed`` (the run's own selection set: 2000000 + its seed, with its synthetic-noise share).
Rows:

* ``--float CKPT`` (default: the shipped LSTM128): the float model;
* ``--epoch0``: the QAT networks of CKPT before any training, stage 1 with the latent weights
  copied from the float ones (tanh-distorted) and with the inverse-tanh start, and stage 2 on
  the inverse-tanh start with its ranges set by the 4 calibration clips;
* ``--input-ranges R ...``: the float model with only its input magnitudes on an int8 grid
  over the symmetric range [-R, R] (round to nearest, as TFLite's QUANTIZE);
* ``--files``: ``.tflite`` files, run frame by frame in LiteRT.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _epoch0_rows(ckpt: str) -> list[tuple[str, object]]:
    """(label, mask function) of the QAT networks of ``ckpt`` before training."""
    from tfdenoise import qat_layers, qat_quantizers
    from tfdenoise.converters.calibration import CalibrationSet
    from tfdenoise.models import load_checkpoint
    from tfdenoise.selection import net_mask

    rows = []
    for init in ("copy", "atanh"):
        net = load_checkpoint(ckpt).sequence
        qat_quantizers.fold_network(net)
        bits = qat_layers.plan_bits(net, 8)
        if init == "atanh":
            qat_layers.init_latent(net, bits)
        rows.append((f"stage 1, 8 bits, epoch 0, latent {init}", net_mask(qat_layers.qat_network(net, bits, 1))))
        if init == "atanh":
            q2 = qat_layers.qat_network(net, bits, 2, True, "std3")
            for frames in CalibrationSet.load().frames:  # the moving-average ranges, as training sets them
                q2(frames[None].astype(np.float32), training=True)
            rows.append(("stage 2, 8 bits, epoch 0, latent atanh, calibration-clip ranges", net_mask(q2)))
    return rows


def _input_rows(model, ranges: list[float]) -> list[tuple[str, object]]:
    def quantized(r: float):
        step = 2.0 * r / 255.0
        return lambda mags: model.offline_mask((np.clip(np.round(mags / step), -127, 127) * step)
                                               .astype(np.float32))
    return [(f"float, input on int8 over [-{r:g}, {r:g}]", quantized(r)) for r in ranges]


def _file_rows(files: list[str]) -> list[tuple[str, object]]:
    from tfdenoise.converters.interpreter import TFLiteDenoiser

    rows = []
    for f in files:
        lite = TFLiteDenoiser(f)
        rows.append((f, lambda mags, lite=lite: lite.sequence_mask()(mags)))  # fresh state per mixture
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("run", help="training run folder (its config.json makes the mixtures)")
    ap.add_argument("--count", type=int, default=96)
    ap.add_argument("--seed", type=int, default=3 * 10**6)
    ap.add_argument("--synthetic-noise", type=float, default=None, help="default: the run's")
    ap.add_argument("--float", dest="ckpt", default="tfdenoise/pretrained/lstm128")
    ap.add_argument("--epoch0", action="store_true")
    ap.add_argument("--input-ranges", type=float, nargs="+", default=())
    ap.add_argument("--files", nargs="+", default=())
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)

    from tfdenoise.models import load_checkpoint
    from tfdenoise.selection import _validation_scores, heldout_pairs
    from tfdenoise.train_config import read_run_config

    config = read_run_config(args.run)
    if args.synthetic_noise is not None:
        config = replace(config, synthetic_noise=args.synthetic_noise)
    pairs = heldout_pairs(config, args.count, args.seed)
    model = load_checkpoint(args.ckpt)
    rows = [("float " + args.ckpt, model.offline_mask)] + _input_rows(model, list(args.input_ranges))
    rows += (_epoch0_rows(args.ckpt) if args.epoch0 else []) + _file_rows(list(args.files))
    out = []
    for label, fn in rows:
        out.append({"row": label, **_validation_scores(fn, pairs)})
        if not args.json:
            print(f"  PESQ-WB {out[-1]['pesq']:.3f}  STOI {out[-1]['stoi']:.4f}  {label}", flush=True)
    if args.json:
        print(json.dumps({"run": args.run, "count": args.count, "seed": args.seed,
                          "synthetic_noise": config.synthetic_noise, "rows": out}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
