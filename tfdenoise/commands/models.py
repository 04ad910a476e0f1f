"""``tfdenoise models [--json F|-]``: the four TinyDenoiser variants and their sizes."""
from __future__ import annotations

from tfdenoise.commands import HelpFormatter
from tfdenoise.commands._common import add_json, emit_json, human, json_files

EXAMPLE = """example:
  tfdenoise models
  tfdenoise models --json - | jq '.[].macs_per_frame'"""


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list the TinyDenoiser variants (params, MACs, RNN share)",
                       formatter_class=HelpFormatter, epilog=EXAMPLE)
    add_json(p, "the table")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfdenoise.fileio import check_outputs
    from tfdenoise.models import VARIANTS, describe

    check_outputs(json_files(args.json))
    rows = [describe(v) for v in VARIANTS.values()]
    out = human(args.json)
    print(f"{'variant':8} {'cell':4} {'k':>4} {'weight-matrix params':>21} "
          f"{'(= MACs/frame)':>14} {'all params':>11} {'RNN share':>9}", file=out)
    for r in rows:
        print(f"{r['variant']:8} {r['cell']:4} {r['units']:>4} {r['weight_matrix_params']:>21,} "
              f"{r['macs_per_frame']:>14,} {r['all_params']:>11,} {r['rnn_share']:>9.1%}", file=out)
    emit_json(rows, args.json)
    return 0
