"""``tfdenoise report [MODEL.tflite] --target gap9 [...]``: model a .tflite on an MCU.

Thin: converts flags to typed arguments and calls `targets` (which raises TfdenoiseError).
"""
from __future__ import annotations

import json
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="fit, memory map, latency, energy and real-time verdict of a "
                                      ".tflite on an MCU (no board needed)")
    p.add_argument("model", nargs="?", help=".tflite file (default: the shipped default model)")
    p.add_argument("--target", default="gap9", help="board name or .toml file (default gap9)")
    p.add_argument("--vdd", type=float, default=None, help="operating point supply in V, e.g. 0.8 or 0.65")
    p.add_argument("--l3", default=None, help="parameter memory: flash | emram (board default otherwise)")
    p.add_argument("--policy", default="layer-order",
                   help="L2 promotion policy: layer-order, tensor-order, largest-first, smallest-first, none")
    p.add_argument("--precision", default="mixed", help="precision of the default model when MODEL is omitted")
    p.add_argument("-o", "--out", default=None, help="folder for the Markdown, HTML and JSON report")
    p.add_argument("--json", default=None, help="also write the JSON report to this file ('-' = stdout)")
    p.add_argument("--sweep", action="store_true",
                   help="4 variants x {fp16, mixed} x operating points: CSV + figure in -o (default ./report-sweep)")
    p.add_argument("--models-dir", default=None,
                   help="with --sweep: folder of {variant}_{precision}.tflite (missing ones use reference graphs)")
    p.add_argument("--export", action="store_true",
                   help="with --sweep: export each model with random weights through converters.export "
                        "(TensorFlow, slow) into --models-dir or OUT/models, instead of reference graphs")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.sweep:
        from tfdenoise.targets.sweep import exported_or_reference, files_or_reference, run_sweep, write_sweep

        out = Path(args.out or "report-sweep")
        source = exported_or_reference(args.models_dir or out / "models") if args.export \
            else files_or_reference(args.models_dir)
        rows = run_sweep(source, board=args.target)
        paths = write_sweep(rows, out)
        for r in rows:
            print(f"{r['variant']:8} {r['precision']:6} {r['vdd']:>5} V {r['l3']:6} {r['latency_ms']:7.3f} ms "
                  f"{r['mac_per_cycle']:5.2f} MAC/cycle {r['power_mw']:6.1f} mW "
                  f"{'real-time' if r['realtime_ok'] else 'TOO SLOW'}")
        print("wrote " + ", ".join(str(p) for p in paths.values()))
        return 0
    from tfdenoise.targets import analyze
    from tfdenoise.targets.report import to_json, to_markdown, write_report

    model = Path(args.model) if args.model else _default_model(args.precision)
    report = analyze(model, board=args.target, vdd=args.vdd, l3=args.l3, policy=args.policy)
    json_path = None if args.json in (None, "-") else Path(args.json)
    written = write_report(report, args.out, json_path)
    if args.json == "-":
        print(json.dumps(to_json(report), indent=2))
    else:
        print(to_markdown(report))
    for p in written.values():
        print(f"wrote {p}")
    return 0


def _default_model(precision: str) -> Path:
    from tfdenoise.errors import InputError

    try:
        from tfdenoise.pretrained import default_tflite
    except ImportError:
        raise InputError("no MODEL.tflite given and no default model is available "
                         "(tfdenoise.pretrained.default_tflite missing); pass a .tflite file") from None
    return Path(default_tflite(precision))
