"""``tfdenoise evaluate [--pairs DIR] [--model SPEC|noisy] [--json F|-] [--streaming]``."""
from __future__ import annotations

import argparse

from tfdenoise.commands import HelpFormatter
from tfdenoise.commands._common import add_json, emit_json, human, json_files

EXAMPLE = """example:
  tfdenoise evaluate --model gru128 --json scores.json
  tfdenoise evaluate --pairs ../shared/data/valentini/test --model out/m.tflite --json - | jq .mean"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="PESQ-WB and STOI of a model on noisy/clean pairs",
        formatter_class=HelpFormatter, epilog=EXAMPLE,
        description="Score a model on a Valentini-layout folder (noisy/ and clean/ with the "
                    "same file names), next to the unprocessed noisy input.")
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="pairs folder (default: the 10 bundled Valentini test pairs)")
    p.add_argument("--model", default=None, metavar="SPEC|noisy",
                   help="checkpoint folder, MODEL.tflite, shipped variant name, or 'noisy' to "
                        "score the input itself (default: the shipped default model)")
    add_json(p, "the scores")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes, >= 1 (default: 1, one process whose TensorFlow uses every core; "
                        "a pool pays a model load per worker, for long batches on idle cores)")
    p.add_argument("--streaming", action="store_true",
                   help="enhance hop by hop as on the device (the reference path; slower for "
                        "a checkpoint, same scores to float rounding)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfdenoise.data import list_pairs
    from tfdenoise.evaluate import NOISY, evaluate_pairs, format_table
    from tfdenoise.fileio import check_outputs
    from tfdenoise.modelref import resolve
    from tfdenoise.samples import pairs_dir

    pairs = args.pairs or pairs_dir()
    list_pairs(pairs)  # a bad folder fails before the outputs are probed
    model = NOISY if args.model == NOISY else resolve(args.model)
    files, trees = ([], []) if model == NOISY else (model.files, model.folders)
    check_outputs(json_files(args.json), inputs=files, input_trees=[pairs, *trees])
    result = evaluate_pairs(pairs, model, args.jobs, streaming=args.streaming)
    print(format_table(result), file=human(args.json))
    emit_json(result, args.json)
    return 0
