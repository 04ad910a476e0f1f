"""``tfdenoise models [--json]``: the four TinyDenoiser variants and their sizes."""
from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the TinyDenoiser variants (params, MACs, RNN share)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfdenoise.models import VARIANTS, describe

    rows = [describe(v) for v in VARIANTS.values()]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'variant':8} {'cell':4} {'k':>4} {'weight-matrix params':>21} "
          f"{'(= MACs/frame)':>14} {'all params':>11} {'RNN share':>9}")
    for r in rows:
        print(f"{r['variant']:8} {r['cell']:4} {r['units']:>4} {r['weight_matrix_params']:>21,} "
              f"{r['macs_per_frame']:>14,} {r['all_params']:>11,} {r['rnn_share']:>9.1%}")
    return 0
