"""``tfdenoise validate``: PESQ/STOI of a ``.tflite`` beside the float model, or the quantization table."""
from __future__ import annotations

from pathlib import Path

from tfdenoise.commands import HelpFormatter
from tfdenoise.commands._common import add_json, emit_json, human, json_files

EXAMPLE = """example:
  tfdenoise validate out/lstm128.mixed.tflite --pairs ../shared/data/valentini/test
  tfdenoise validate --table lstm128 --pairs ../shared/data/valentini/test --json table.json
  tfdenoise validate --table lstm128 --qat runs/qat/den8_s2L/best --pairs tfdenoise/samples/valentini"""


def add_parser(sub) -> None:
    p = sub.add_parser("validate", help="score a .tflite frame by frame (PESQ/STOI) beside "
                                        "the float model, or build the quantization table",
                       formatter_class=HelpFormatter, epilog=EXAMPLE)
    p.add_argument("model", nargs="?", default=None, help="MODEL.tflite to score")
    p.add_argument("--table", metavar="MODEL", default=None,
                   help="export MODEL (checkpoint folder or shipped variant name) at fp32, fp16, "
                        "int8 (max/std3, std3 with asymmetric ranges), mixed (max/std3) and score each "
                        "(docs/design.md §4)")
    p.add_argument("--pairs", metavar="DIR", required=True,
                   help="noisy/ + clean/ pairs folder (Valentini layout)")
    p.add_argument("--checkpoint", default=None, metavar="MODEL",
                   help="float checkpoint or shipped variant to compare with (default: the "
                        "default model)")
    p.add_argument("--qat", nargs="+", metavar="CHECKPOINT", default=(),
                   help="with --table: also one full-INT8 row per QAT checkpoint of the same "
                        "variant (tfdenoise train --qat-bits; exported with its trained grid "
                        "and stage-2 ranges, docs/qat.md)")
    p.add_argument("--cost", nargs="+", metavar="BOARD", default=(),
                   help="with --table: also each row's parameter bytes at its trained weight widths and "
                        "its modeled latency / energy per inference on each board (e.g. gap9 stm32f767)")
    p.add_argument("--calib-data", metavar="DIR", default=None,
                   help="calibration clips for --table (default: the 4 reference-design clips)")
    p.add_argument("--jobs", type=int, default=None, help="worker processes for scoring, >= 1")
    p.add_argument("--backend", choices=("litert", "tflite-runtime"), default="litert",
                   help="interpreter for MODEL.tflite (tflite-runtime only when installed)")
    add_json(p, "the result")
    p.add_argument("--markdown", metavar="FILE", default=None,
                   help="also write the table as Markdown")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfdenoise.data import list_pairs
    from tfdenoise.errors import InputError
    from tfdenoise.fileio import check_outputs, write_text
    from tfdenoise.modelref import resolve
    from tfdenoise.validation import quant_table, to_markdown, validate_file

    if (args.model is None) == (args.table is None):
        raise InputError("give either MODEL.tflite or --table MODEL")
    if args.table is not None and args.checkpoint is not None:
        raise InputError("--checkpoint goes with MODEL.tflite; --table MODEL exports and scores MODEL itself")
    if args.qat and args.table is None:
        raise InputError("--qat adds rows to --table MODEL")
    if args.cost and args.table is None:
        raise InputError("--cost adds columns to --table MODEL")
    list_pairs(args.pairs)
    refs = [resolve(s) for s in (args.model, args.table, *args.qat) if s is not None]
    if args.model is not None or args.checkpoint is not None:
        refs.append(resolve(args.checkpoint))
    outputs = json_files(args.json) + ([Path(args.markdown)] if args.markdown else [])
    check_outputs(outputs, inputs=[f for r in refs for f in r.files],
                  input_trees=[args.pairs, *(d for r in refs for d in r.folders),
                               *([args.calib_data] if args.calib_data else [])])
    if args.table is not None:
        result = quant_table(args.table, args.pairs, calib_dir=args.calib_data, jobs=args.jobs,
                             qat=args.qat, boards=args.cost)
    else:
        result = validate_file(args.model, args.pairs, checkpoint=args.checkpoint, jobs=args.jobs,
                               backend=args.backend)
    md = to_markdown(result)
    print(md, file=human(args.json))
    emit_json(result, args.json)
    if args.markdown:
        write_text(Path(args.markdown), md + "\n")
    return 0
