"""``tfdenoise search [MODEL] --target gap9 [...]``: the lowest-energy deployment within budgets.

Thin: flags -> :func:`tfdenoise.search.search` and :func:`tfdenoise.search.write_outputs`.
Exit code 4 when no candidate meets the budgets and the quality bound (the table, plot and
candidates are still written).
"""
from __future__ import annotations

from pathlib import Path

from tfdenoise.commands import HelpFormatter
from tfdenoise.commands._common import add_json, emit_json, human, json_files

EXAMPLE = """example:
  tfdenoise search                                   # the default model on gap9, 6.25 ms budget
  tfdenoise search lstm256 --budget-ms 3 --max-pesq-loss 0.03 -o out/search --json -"""


def add_parser(sub) -> None:
    p = sub.add_parser("search", help="search precision x promotion x L3 x operating point for the "
                                      "lowest-energy deployment within latency/energy/PESQ budgets",
                       formatter_class=HelpFormatter, epilog=EXAMPLE,
                       description="Export a checkpoint at every per-layer-group precision (fp16/int8 "
                                   "for fc_in, the RNNs, fc_mid, fc_out), price each file under every "
                                   "promotion policy, L3 memory and operating point of the board, score "
                                   "PESQ/STOI (LiteRT) only for the cost-Pareto files within the "
                                   "budgets, and write the Pareto table, plot, all candidates and the "
                                   "chosen recipe, .tflite and hardware report.")
    p.add_argument("model", nargs="?", metavar="MODEL",
                   help="checkpoint folder or variant name (default: the shipped default model)")
    p.add_argument("--target", default="gap9", help="board name or .toml file")
    p.add_argument("--budget-ms", type=float, default=6.25,
                   help="max network latency per inference in ms")
    p.add_argument("--budget-uj", type=float, default=None,
                   help="max network energy per inference in uJ (default: no limit)")
    p.add_argument("--max-pesq-loss", type=float, default=0.03,
                   help="max PESQ below the mixed FP16-INT8 recipe's on the pairs")
    p.add_argument("--pairs", default=None, metavar="DIR",
                   help="noisy/ + clean/ pairs folder to score on (default: the bundled pairs)")
    p.add_argument("--jobs", type=int, default=None, help="scoring processes")
    p.add_argument("-o", "--out", default="search", help="output folder (also holds the export and "
                                                        "quality caches)")
    add_json(p, "the search result")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfdenoise.errors import DoesNotFitError
    from tfdenoise.fileio import check_outputs
    from tfdenoise.search import check_budgets, search, write_outputs

    check_budgets(args.budget_ms, args.budget_uj, args.max_pesq_loss)
    out = Path(args.out)
    json_path = json_files(args.json)
    check_outputs(json_path, folders=[out])
    result = search(args.model, board=args.target, pairs=args.pairs, out_dir=out, budget_ms=args.budget_ms,
                    budget_uj=args.budget_uj, max_pesq_loss=args.max_pesq_loss, jobs=args.jobs)
    paths = write_outputs(result, out)
    lines = human(args.json)
    print(paths["markdown"].read_text(encoding="utf-8"), file=lines)
    print(f"scored {result['scored_now']} new file(s); wrote " + ", ".join(str(p) for p in paths.values()),
          file=lines)
    emit_json(result, args.json)
    if result["chosen"] is None:
        raise DoesNotFitError(f"no configuration of {len(result['candidates'])} meets the budgets and "
                              f"loses at most {args.max_pesq_loss} PESQ (table in {paths['markdown']})")
    return 0
