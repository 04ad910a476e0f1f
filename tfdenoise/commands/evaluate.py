"""``tfdenoise evaluate [--pairs DIR] [--model CHECKPOINT|MODEL.tflite|noisy] [--json F]``."""
from __future__ import annotations

import argparse
from pathlib import Path

from tfdenoise.fileio import write_json


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="PESQ-WB and STOI of a model on noisy/clean pairs",
        description="Score a model on a Valentini-layout folder (noisy/ and clean/ with the "
                    "same file names), next to the unprocessed noisy input.")
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="pairs folder (default: the 10 bundled Valentini test pairs)")
    p.add_argument("--model", default=None, metavar="CHECKPOINT|MODEL.tflite|noisy",
                   help="checkpoint folder, .tflite model, or 'noisy' to score the input "
                        "itself (default: the shipped model)")
    p.add_argument("--json", default=None, metavar="F", help="also write the results as JSON")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="parallel worker processes (default: one per CPU core)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfdenoise.evaluate import evaluate_pairs, format_table
    from tfdenoise.samples import pairs_dir

    result = evaluate_pairs(args.pairs or pairs_dir(), args.model, args.jobs)
    print(format_table(result))
    if args.json:
        write_json(Path(args.json), result)
    return 0
