"""``tfdenoise validate``: PESQ/STOI of a ``.tflite`` beside the float model, or the quantization table of docs/design.md §4."""
from __future__ import annotations

from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="score a .tflite frame by frame (PESQ/STOI) beside "
                                        "the float model, or build docs/design.md §4's quantization table")
    p.add_argument("model", nargs="?", default=None, help="MODEL.tflite to score")
    p.add_argument("--table", metavar="CHECKPOINT", default=None,
                   help="export CHECKPOINT at fp32, fp16, int8 (max/std3), mixed (max/std3) "
                        "and score each")
    p.add_argument("--pairs", metavar="DIR", required=True,
                   help="noisy/ + clean/ pairs folder (Valentini layout)")
    p.add_argument("--checkpoint", default=None,
                   help="float checkpoint to compare with (default: the default model)")
    p.add_argument("--calib-data", metavar="DIR", default=None,
                   help="calibration clips for --table (default: the 4 reference-design clips (docs/design.md §4))")
    p.add_argument("--jobs", type=int, default=None, help="worker processes for scoring")
    p.add_argument("--backend", choices=("litert", "tflite-runtime"), default="litert",
                   help="interpreter for MODEL.tflite (tflite-runtime only when installed)")
    p.add_argument("--json", metavar="FILE", default=None, help="also write the result as JSON")
    p.add_argument("--markdown", metavar="FILE", default=None,
                   help="also write the table as Markdown")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfdenoise.fileio import write_text
    from tfdenoise.converters.validation import quant_table, to_json, to_markdown, validate_file
    from tfdenoise.errors import InputError

    if (args.model is None) == (args.table is None):
        raise InputError("give either MODEL.tflite or --table CHECKPOINT")
    if args.table is not None:
        result = quant_table(args.table, args.pairs, calib_dir=args.calib_data, jobs=args.jobs)
    else:
        result = validate_file(args.model, args.pairs, checkpoint=args.checkpoint, jobs=args.jobs,
                               backend=args.backend)
    md = to_markdown(result)
    print(md)
    if args.json:
        write_text(Path(args.json), to_json(result))
    if args.markdown:
        write_text(Path(args.markdown), md + "\n")
    return 0
