"""``tfdenoise demo [-o OUT]``: the main job on the shipped default model (``make demo``)."""
from __future__ import annotations

from tfdenoise.commands import HelpFormatter

EXAMPLE = """example:
  tfdenoise demo -o out/demo"""


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="export the default model to mixed FP16-INT8, validate it, "
                                    "enhance a sample and write the GAP9 report",
                       formatter_class=HelpFormatter, epilog=EXAMPLE)
    p.add_argument("-o", "--out", default="out/demo", help="output folder")
    p.add_argument("--jobs", type=int, default=None,
                   help="worker processes for scoring, >= 1 (default: 1, this process)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfdenoise.demo import run_demo

    run_demo(args.out, jobs=args.jobs)
    return 0
