"""Score checkpoints on fresh held-out mixtures of a training run: a second opinion on the
run's own PESQ selection (32 mixtures move by a few hundredths between epochs), never the
Valentini test pairs.

    python tools/heldout_scores.py RUN CKPT [CKPT ...] [--count 96] [--seed 3000000]
                                   [--synthetic-noise SHARE] [--reverb P [--rt60 LO HI]
                                   [--reverb-target dry|early]] [--average] [--json]

The mixtures are made as RUN makes its selection set (same held-out speakers and noise,
noise exclusions, clean-speech filter, the test SNRs 2.5-17.5 dB), from ``--seed``;
``--synthetic-noise 0`` scores on real noise only.  ``--reverb P`` makes a share P of the
mixtures reverberant as ``tfdenoise train --reverb`` does (tfdenoise/augment.py; the PESQ
reference is then the run's reverberation target).  ``--average`` scores one model whose
weights are the mean of the checkpoints' weights.
"""
from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].replace("\n", " "))
    ap.add_argument("run", help="training run folder (its config.json makes the mixtures)")
    ap.add_argument("checkpoints", nargs="+", help="checkpoint folders to score")
    ap.add_argument("--count", type=int, default=96, help="held-out mixtures of 4 s (default 96)")
    ap.add_argument("--seed", type=int, default=3 * 10**6,
                    help="mixture seed (default 3000000; the run's own selection set is "
                         "train.VALID_PESQ_SEED = 2000000 + the run's seed)")
    ap.add_argument("--synthetic-noise", type=float, default=None,
                    help="share of babble / speech-shaped noise (default: the run's)")
    ap.add_argument("--reverb", type=float, default=0.0, metavar="P",
                    help="share of reverberant held-out mixtures (default 0: as the run's selection set)")
    ap.add_argument("--rt60", type=float, nargs=2, default=None, metavar=("LO", "HI"),
                    help="their RT60 range in seconds (default: tfdenoise train's)")
    ap.add_argument("--reverb-target", default=None, metavar="dry|early", help="their clean reference (default dry)")
    ap.add_argument("--average", action="store_true", help="score the mean of the checkpoints' weights")
    ap.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = ap.parse_args(argv)

    from tfdenoise.augment import Augment
    from tfdenoise.errors import TfdenoiseError
    from tfdenoise.train import heldout_scores
    from tfdenoise.train_config import read_run_config

    try:
        config = read_run_config(args.run)
        if args.synthetic_noise is not None:
            config = replace(config, synthetic_noise=args.synthetic_noise)
        reverb = {k: v for k, v in (("rt60", tuple(args.rt60) if args.rt60 else None),
                                    ("reverb_target", args.reverb_target)) if v is not None}
        augment = Augment(reverb=args.reverb, **reverb) if args.reverb else None
        scores = heldout_scores(config, args.checkpoints, args.count, args.seed, average=args.average,
                                augment=augment)
    except TfdenoiseError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code  # the codes the tfdenoise CLI uses
    names = [" + ".join(args.checkpoints)] if args.average else args.checkpoints
    rows = [{"checkpoint": n, **s} for n, s in zip(names, scores)]
    if args.json:
        print(json.dumps({"count": args.count, "seed": args.seed, "synthetic_noise": config.synthetic_noise,
                          **({"augment": augment.record()} if augment else {}), "scores": rows}, indent=2))
    else:
        print(f"{args.count} held-out mixtures, seed {args.seed}, synthetic noise {config.synthetic_noise:g}"
              + (f", {args.reverb:.0%} reverberant (RT60 {augment.rt60[0]:g}-{augment.rt60[1]:g} s, "
                 f"{augment.reverb_target} reference)" if augment else ""))
        for r in rows:
            print(f"  PESQ-WB {r['pesq']:.3f}  STOI {r['stoi']:.4f}  {r['checkpoint']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
