"""``tfdenoise report [MODEL] --target gap9 [...]``: model a .tflite on an MCU.

Thin: converts flags to typed arguments and calls ``tfdenoise.targets`` (or the sweep).  A
model that does not fit still gets its whole report (printed, and written with ``-o`` /
``--json``); the command then exits with code 4.
"""
from __future__ import annotations

from pathlib import Path

from tfdenoise.commands import HelpFormatter
from tfdenoise.commands._common import add_json, emit_json, human, json_files

EXAMPLE = """example:
  tfdenoise report                                   # the shipped default model on gap9
  tfdenoise report out/m.tflite --target stm32f746 -o out/report --json -
  tfdenoise report --pretrained gru128 --precision fp16 --vdd 0.65 --l3 flash
  tfdenoise report tfdenoise/pretrained/kws_dnn --target stm32f767 --strategy all
  tfdenoise report tfdenoise/pretrained/kws_dnn --target stm32f767 --strategy all --sweep -o out/sp"""


def add_parser(sub) -> None:
    from tfdenoise.targets.promotion import policy_help   # the promotion policy names (no TensorFlow)

    p = sub.add_parser("report", help="fit, memory map, latency, energy and real-time verdict of a "
                                      ".tflite on an MCU (no board needed)",
                       formatter_class=HelpFormatter, epilog=EXAMPLE,
                       description="Model a .tflite on a target MCU: memory plan, L1 tiling, "
                                   "latency per layer, power and energy. Exit code 4 when the "
                                   "model does not fit (the report is still written).")
    source = p.add_mutually_exclusive_group()
    source.add_argument("model", nargs="?", metavar="MODEL",
                        help=".tflite file or shipped variant name (default: the shipped default "
                             "model)")
    source.add_argument("--pretrained", metavar="NAME", default=None,
                        help="the shipped .tflite of this variant (with --precision)")
    p.add_argument("--target", default="gap9", help="board name or .toml file")
    p.add_argument("--vdd", type=float, default=None,
                   help="operating point supply in V, e.g. 0.8 or 0.65 (default: the board's first)")
    p.add_argument("--freq", type=float, default=None, metavar="MHZ",
                   help="run the board at this clock in MHz, up to its operating point's (flash wait "
                        "states follow the clock on STM32 boards; --vdd keeps the supply)")
    p.add_argument("--l3", default=None, help="parameter memory: flash | emram (default: the board's)")
    p.add_argument("--policy", default=None,
                   help=f"L2 promotion policy: {policy_help()} (docs/promotion.md; default: the "
                        "board's; layer-order on gap9, none on the STM32 boards: weights stay in flash)")
    p.add_argument("--precision", default="mixed",
                   help="precision of a shipped model: fp32, fp16, int8, int8-std3, int8-asym (only in models "
                        "shipped after it joined the table; else tfdenoise export --recipe int8_asym), "
                        "mixed, mixed-std3")
    p.add_argument("-o", "--out", default=None, help="folder for the Markdown, HTML and JSON report")
    add_json(p, "the report")
    p.add_argument("--sweep", action="store_true",
                   help="4 variants x {fp16, mixed} x operating points: CSV + figure in -o "
                        "(default ./report-sweep); with --strategy: the sparsity sweep of MODEL")
    p.add_argument("--strategy", default=None, metavar="NAME|all",
                   help="price loop strategies for sparse weights side by side, each at code precision "
                        "fp32, q15 and int8 (docs/design.md §9): dense, scalar, skip-zero, skip-row, "
                        "weight-first, a comma-separated list of them, or all. Cortex-M boards only "
                        "(an error on gap9, whose cost model has no loop strategies). With --sweep: "
                        "sweep the sparsity of MODEL's weights instead (0 to 0.9, unstructured and "
                        "row-structured) and plot latency against sparsity per strategy in -o")
    p.add_argument("--models-dir", default=None,
                   help="with --sweep: folder of {variant}_{precision}.tflite (missing ones use "
                        "reference graphs)")
    p.add_argument("--export", action="store_true",
                   help="with --sweep: export each model with RANDOM weights (TensorFlow, slow) "
                        "into --models-dir or OUT/models, instead of reference graphs")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.sweep:
        return _sparsity_sweep(args) if args.strategy else _sweep(args)
    from dataclasses import replace

    from tfdenoise.errors import DoesNotFitError
    from tfdenoise.fileio import check_outputs
    from tfdenoise.targets import analyze_graph
    from tfdenoise.targets.boards import load_board
    from tfdenoise.targets.reader import read_tflite
    from tfdenoise.targets.report import report_paths, to_json, to_markdown, write_report
    from tfdenoise.targets.strategies import check_board, parse_strategies, price_strategies

    strategies = parse_strategies(args.strategy) if args.strategy else ()
    model = model_file(args.pretrained or args.model, args.precision)
    board = load_board(args.target)
    if strategies:
        check_board(board)
    json_path = json_files(args.json)
    outputs = list(report_paths(model, board.name, args.out).values()) if args.out else []
    check_outputs(outputs + json_path, inputs=[model, Path(board.path)])
    graph = read_tflite(model)
    report = analyze_graph(graph, board=board, vdd=args.vdd, l3=args.l3, policy=args.policy, freq_mhz=args.freq)
    if strategies:
        report = replace(report, strategies=price_strategies(graph, board, strategies, layers=report.layers,
                                                             op=report.op, plan=report.memory))
    written = write_report(report, args.out)
    emit_json(to_json(report), args.json)
    out = human(args.json)
    print(to_markdown(report), file=out)
    for p in [*written.values(), *json_path]:
        print(f"wrote {p}", file=out)
    if not report.fits:
        raise DoesNotFitError(f"does not fit {board.name}: "
                              + "; ".join(list(report.memory.reasons) + [str(t.l1_overflow) for t in
                                                                         report.tilings if t.l1_overflow])
                              + (" (full report above" + (f" and in {args.out}" if args.out else "")
                                 + ")"), model)
    return 0


def model_file(spec: str | None, precision: str) -> Path:
    """The .tflite a report reads: a file, or the shipped export of a variant (default model)."""
    from tfdenoise.errors import InputError
    from tfdenoise.modelref import resolve
    from tfdenoise.pretrained import kws_tflite, tflite

    ref = resolve(spec)
    if ref.is_tflite:
        return ref.path
    if not ref.pretrained:
        raise InputError("report reads a .tflite file; export the checkpoint first "
                         "(tfdenoise export CHECKPOINT -o MODEL.tflite)", ref.path)
    if ref.is_kws:  # the shipped KWS model: its full-INT8 export unless --precision fp32
        return kws_tflite(ref.path.name, "fp32" if precision == "fp32" else "int8")
    return tflite(ref.variant, precision)


def _sweep(args) -> int:
    from tfdenoise.fileio import check_outputs
    from tfdenoise.sweep import exported_or_reference, files_or_reference, run_sweep, write_sweep

    out = Path(args.out or "report-sweep")
    check_outputs(folders=[out])
    source = exported_or_reference(args.models_dir or out / "models") if args.export \
        else files_or_reference(args.models_dir)
    rows = run_sweep(source, board=args.target)
    paths = write_sweep(rows, out)
    lines = human(args.json)
    for r in rows:
        print(f"{r['variant']:8} {r['precision']:6} {r['vdd']:>5} V {r['l3']:6} {r['latency_ms']:7.3f} ms "
              f"{r['mac_per_cycle']:5.2f} MAC/cycle {r['power_mw']:6.1f} mW "
              f"{'real-time' if r['realtime_ok'] else 'TOO SLOW'}", file=lines)
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=lines)
    emit_json(rows, args.json)
    return 0


def _sparsity_sweep(args) -> int:
    """--sweep --strategy: latency against the sparsity of MODEL's weights, per loop strategy."""
    from tfdenoise.fileio import check_outputs
    from tfdenoise.sweep import run_sparsity_sweep, write_sparsity_sweep
    from tfdenoise.targets.boards import load_board
    from tfdenoise.targets.reader import read_tflite
    from tfdenoise.targets.strategies import check_board, parse_strategies

    strategies = parse_strategies(args.strategy)
    board = load_board(args.target)
    check_board(board)
    model = model_file(args.pretrained or args.model, args.precision)
    out = Path(args.out or "report-sweep")
    json_path = json_files(args.json)
    check_outputs(json_path, folders=[out], inputs=[model, Path(board.path)])
    rows = run_sparsity_sweep(read_tflite(model), board, strategies, vdd=args.vdd, l3=args.l3,
                              policy=args.policy, freq_mhz=args.freq)
    paths = write_sparsity_sweep(rows, out, f"{model.name} on {board.name}")
    lines = human(args.json)
    print(paths["markdown"].read_text(encoding="utf-8"), file=lines)
    print("wrote " + ", ".join(str(p) for p in paths.values()), file=lines)
    emit_json(rows, args.json)
    return 0
