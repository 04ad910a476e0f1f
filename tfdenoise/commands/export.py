"""``tfdenoise export``: a checkpoint (or a random ``--variant``) -> quantized ``.tflite``."""
from __future__ import annotations

from pathlib import Path

from tfdenoise.vocab import FILE_PRECISIONS as PRECISION_FLAGS


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a TinyDenoiser to .tflite "
                                      "(FP32, FP16, INT8 or mixed FP16-INT8)")
    p.add_argument("checkpoint", nargs="?", default=None,
                   help="checkpoint folder (default: the shipped default model)")
    p.add_argument("--variant", help="random-weight variant instead of a checkpoint "
                                     "(LSTM256, GRU256, LSTM128, GRU128)")
    group = p.add_mutually_exclusive_group()
    for name in PRECISION_FLAGS:
        group.add_argument(f"--{name}", dest="precision", action="append_const", const=name,
                           help=f"{name} recipe" + (" (default)" if name == "mixed" else ""))
    group.add_argument("--all", dest="precision", action="store_const",
                       const=list(PRECISION_FLAGS), help="all four precisions (OUT is a folder)")
    p.add_argument("--calib", choices=("max", "std3"), default=None,
                   help="activation-range statistic (default: the recipe's, max)")
    p.add_argument("--calib-data", metavar="DIR", default=None,
                   help="folder of calibration clips (default: the 4 reference-design clips (docs/design.md §4))")
    p.add_argument("--recipe", metavar="FILE", default=None,
                   help="precision recipe JSON (layer regex -> fp32|fp16|int8)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the Keras vs .tflite mask comparison")
    p.add_argument("-o", "--out", required=True, help="output .tflite (a folder with --all)")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfdenoise.converters.calibration import CalibrationSet
    from tfdenoise.converters.export import export_model, load_model
    from tfdenoise.converters.recipe import load as load_recipe
    from tfdenoise.errors import InputError

    if args.checkpoint and args.variant:
        raise InputError("give either CHECKPOINT or --variant, not both")
    precisions = args.precision or ["mixed"]
    if args.recipe and len(precisions) > 1:
        raise InputError("--recipe exports one file; do not combine it with --all")
    model = load_model(args.checkpoint, variant=args.variant)
    out = Path(args.out)
    if len(precisions) > 1 and out.suffix == ".tflite":
        raise InputError("with --all, -o names a folder", out)
    calib = CalibrationSet.load(args.calib_data)
    for prec in precisions:
        recipe = load_recipe(args.recipe or prec)
        path = out / f"{model.variant.name}_{recipe.name}.tflite" if len(precisions) > 1 else out
        res = export_model(model, path, recipe, calib=calib, method=args.calib,
                           check=not args.no_check)
        print(format_result(res))
    return 0


def format_result(res) -> str:
    """Human-readable summary of one :class:`converters.export.ExportResult`."""
    lines = [f"{res.path}: {res.variant.upper()} {res.precision}, file {res.file_mb:.3f} MB, "
             f"parameters {res.param_mb:.3f} MB (MB = 2^20 B)"]
    if res.calibration:
        lines.append(f"  calibration: {res.calibration['method']} on "
                     f"{len(res.calibration['clips'])} clips ({res.calibration['frames']} frames)")
    lines.append("  layers:")
    for layer in res.layers:
        lines.append(f"    {layer['name']:<7} {layer['kind']:<5} {layer['precision']:<5} "
                     f"{layer['param_bytes'] / 2**20:8.3f} MB  ops {layer['ops']}")
    counts: dict[str, int] = {}
    for op in res.ops:
        counts[op] = counts.get(op, 0) + 1
    lines.append("  ops: " + ", ".join(f"{k} x{v}" for k, v in counts.items()))
    lines.append("  op list: " + " ".join(res.ops))
    if res.max_mask_diff is not None:
        lines.append(f"  max |mask - Keras mask| on the calibration clips: {res.max_mask_diff:.3g}")
    return "\n".join(lines)
