"""``tfdenoise export``: a checkpoint, a shipped model, a user's Keras model or random weights ->
quantized ``.tflite``."""
from __future__ import annotations

from pathlib import Path

from tfdenoise.commands import HelpFormatter
from tfdenoise.commands._common import add_json, emit_json, human, json_files
from tfdenoise.vocab import FILE_PRECISIONS

EXAMPLE = """example:
  tfdenoise export runs/gru128/best --mixed -o out/gru128.mixed.tflite
  tfdenoise export --pretrained lstm128 --all -o out/lstm128/
  tfdenoise export --variant gru256 --int8 -o out/random_gru256.tflite   # random weights
  tfdenoise export runs/kws_cnn/best --int8 -o out/kws.int8.tflite       # a KWS checkpoint
  tfdenoise export my_denoiser.h5 --mixed -o out/my.mixed.tflite         # your own Keras model
  tfdenoise export my_net.keras --recipe rnn8.json --calib-data inputs/ -o out/my.tflite"""


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export a TinyDenoiser to .tflite "
                                      "(FP32, FP16, INT8 or mixed FP16-INT8)",
                       formatter_class=HelpFormatter, epilog=EXAMPLE,
                       description="Convert a Keras TinyDenoiser to .tflite with tfdenoise "
                                   "metadata, then compare its masks with Keras on the "
                                   "calibration clips (max and 99th percentile; a warning above "
                                   "the precision's tolerance).")
    source = p.add_mutually_exclusive_group()
    source.add_argument("checkpoint", nargs="?", default=None, metavar="MODEL",
                        help="checkpoint folder, shipped variant name, or your own tf_keras model "
                             "(MODEL.h5, MODEL.keras, SavedModel folder: any functional / Sequential "
                             "model over [batch, time, features]; default: the shipped default model)")
    source.add_argument("--pretrained", metavar="NAME", default=None,
                        help="the shipped trained model of this variant (lstm256, gru256, "
                             "lstm128, gru128)")
    source.add_argument("--variant", metavar="NAME", default=None,
                        help="RANDOM (untrained) weights of this variant, for hardware studies; "
                             "marked as random in the file's metadata and every report")
    group = p.add_mutually_exclusive_group()
    for name in FILE_PRECISIONS:
        group.add_argument(f"--{name}", dest="precision", action="append_const", const=name,
                           help=f"{name} recipe" + (" (default)" if name == "mixed" else ""))
    group.add_argument("--all", dest="precision", action="store_const",
                       const=list(FILE_PRECISIONS), help="all four precisions (OUT is a folder)")
    p.add_argument("--calib", choices=("max", "std3"), default=None,
                   help="activation-range statistic (default: the recipe's, max)")
    p.add_argument("--ranges", choices=("symmetric", "asymmetric"), default=None,
                   help="INT8 activation ranges: symmetric [-r, r] (the reference design's), or "
                        "asymmetric: never-negative tensors (input magnitudes, ReLU outputs) on "
                        "[0, 2 r], the same step with twice the headroom (default: the recipe's, "
                        "symmetric; recipe int8_asym is full INT8 with std3 and asymmetric ranges)")
    p.add_argument("--calib-data", metavar="DIR", default=None,
                   help="folder of calibration clips (default: the 4 reference-design clips, "
                        "docs/design.md §4; for a KWS checkpoint, FSDD-style clips whose "
                        "training split calibrates INT8, default its training data or "
                        "../shared/data/kws/fsdd; for a Keras model, .npy arrays of its inputs "
                        "[T, features] or [N, T, features], or audio clips when it takes 257 "
                        "STFT magnitudes)")
    p.add_argument("--recipe", metavar="FILE", default=None,
                   help="precision recipe JSON (layer regex -> fp32|fp16|int8; for a Keras model "
                        "a pattern matches a layer's name, its type (GRU, Conv1D) or rnn_<i>)")
    p.add_argument("--no-check", action="store_true",
                   help="skip the Keras vs .tflite mask comparison")
    p.add_argument("-o", "--out", required=True, help="output .tflite (a folder with --all)")
    add_json(p, "what was written and measured")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfdenoise.converters.calibration import CalibrationSet, list_clips
    from tfdenoise.converters.convert import VARIANT_SEED, export_model
    from tfdenoise.converters.recipe import load as load_recipe
    from tfdenoise.errors import InputError, warn
    from tfdenoise.fileio import check_outputs
    from tfdenoise.modelref import require_checkpoint, resolve
    from tfdenoise.models import TinyDenoiser, get_variant, load_checkpoint

    precisions = args.precision or ["mixed"]
    if args.recipe and len(precisions) > 1:
        raise InputError("--recipe exports one file; do not combine it with --all")
    out = Path(args.out)
    if len(precisions) > 1 and out.suffix == ".tflite":
        raise InputError("with --all, -o names a folder", out)
    if len(precisions) == 1 and out.suffix != ".tflite":
        raise InputError("-o must name a .tflite file (or a folder with --all)", out)
    ref = None if args.variant else resolve(args.pretrained or args.checkpoint)
    if ref is not None and ref.is_keras:
        return _export_keras(args, ref, precisions, out)
    ref = ref if ref is None else require_checkpoint(ref, "export")
    if ref is not None and ref.is_kws:
        return _export_kws(args, ref)
    recipes = [load_recipe(args.recipe or prec) for prec in precisions]
    _check_ranges_apply(args.ranges, recipes)
    name = get_variant(args.variant).name if args.variant else ref.variant or "model"
    paths = [out / f"{name}_{r.name}.tflite" if len(precisions) > 1 else out for r in recipes]
    calib_dir = args.calib_data
    list_clips(calib_dir)  # a bad calibration folder fails before anything is written
    check_outputs(paths + json_files(args.json), [out] if len(precisions) > 1 else [],
                  inputs=[args.recipe] if args.recipe else [],
                  input_trees=[t for t in (ref and ref.path, calib_dir) if t])
    model = TinyDenoiser(get_variant(args.variant), seed=VARIANT_SEED) if args.variant \
        else load_checkpoint(ref.path)
    calib = CalibrationSet.load(calib_dir)
    results = []
    for recipe, path in zip(recipes, paths):
        res = export_model(model, path, recipe, calib=calib, method=args.calib,
                           check=not args.no_check, random_weights=bool(args.variant),
                           ranges=args.ranges)
        print(format_result(res), file=human(args.json))
        for w in res.warnings:
            warn(f"{res.path}: {w}")
        results.append(result_json(res))
    emit_json(results if len(results) > 1 else results[0], args.json)
    return 0


def _check_ranges_apply(ranges: str | None, recipes) -> None:
    """``--ranges`` lays out INT8 activation ranges: refused where no recipe has an INT8 layer."""
    from tfdenoise.errors import InputError

    if ranges is not None and not any(r.needs_calibration for r in recipes):
        raise InputError(f"--ranges {ranges} lays out INT8 activation ranges; "
                         f"{', '.join(r.name for r in recipes)} has no INT8 layer")


def _export_keras(args, ref, precisions: list[str], out: Path) -> int:
    """``tfdenoise export`` of a user's Keras model (tfdenoise.converters.keras_convert): the same
    recipes and checks as a TinyDenoiser, calibrated on ``--calib-data`` (``.npy`` inputs, or
    audio through the STFT front end when the model takes 257 magnitudes)."""
    from tfdenoise.converters.convert import export_model
    from tfdenoise.converters.keras_convert import calibration_inputs
    from tfdenoise.converters.keras_model import load_keras_model
    from tfdenoise.converters.recipe import load as load_recipe
    from tfdenoise.errors import warn
    from tfdenoise.fileio import check_outputs

    recipes = [load_recipe(args.recipe or prec) for prec in precisions]
    _check_ranges_apply(args.ranges, recipes)
    stem = ref.path.stem if ref.path.is_file() else ref.path.name
    paths = [out / f"{stem}_{r.name}.tflite" if len(recipes) > 1 else out for r in recipes]
    check_outputs(paths + json_files(args.json), [out] if len(recipes) > 1 else [],
                  inputs=[*([args.recipe] if args.recipe else []), *ref.files],
                  input_trees=[t for t in (*ref.folders, args.calib_data) if t])
    model = load_keras_model(ref.path)
    for recipe in recipes:  # a recipe that does not fit the model fails before any work
        model.deploy_graph().resolve(recipe)
    needs = any(r.needs_calibration for r in recipes) or not args.no_check
    calib = calibration_inputs(model, args.calib_data) if needs else None
    results = []
    for recipe, path in zip(recipes, paths):
        res = export_model(model, path, recipe, calib=calib, method=args.calib,
                           check=not args.no_check, ranges=args.ranges)
        print(format_result(res, keras=True), file=human(args.json))
        for w in res.warnings:
            warn(f"{res.path}: {w}")
        results.append(result_json(res))
    emit_json(results if len(results) > 1 else results[0], args.json)
    return 0


def _export_kws(args, ref) -> int:
    """``tfdenoise export`` of a keyword-spotting checkpoint: fp32 and/or full INT8
    (tfdenoise.converters.kws), INT8 calibrated on windows of the checkpoint's training split."""
    from tfdenoise.converters.kws import (checkpoint_split, default_calibration_data, export_kws,
                                          format_result as format_kws, training_windows)
    from tfdenoise.converters.kws_convert import BUILTIN, kws_recipe
    from tfdenoise.errors import InputError, warn
    from tfdenoise.fileio import check_outputs
    from tfdenoise.kws.data import list_clips
    from tfdenoise.kws.models import load_kws_checkpoint, read_kws_config

    config = read_kws_config(ref.path)
    precisions = args.precision or ["int8"]
    if precisions == list(FILE_PRECISIONS):  # --all: every precision a KWS file has
        precisions = list(BUILTIN)
    bad = [p for p in precisions if p not in BUILTIN]
    if bad and not args.recipe:
        raise InputError(f"a keyword-spotting checkpoint exports --fp32 or --int8, not "
                         f"--{' --'.join(bad)}", ref.path)
    if args.calib not in (None, "max") or args.ranges is not None:
        flag = f"--calib {args.calib}" if args.calib not in (None, "max") else f"--ranges {args.ranges}"
        raise InputError("KWS INT8 calibration is the converter's min/max over training windows; "
                         f"{flag} is for denoisers")
    recipes = [kws_recipe(args.recipe or prec) for prec in precisions]
    needs_windows = args.recipe is not None or "int8" in precisions
    calib_dir = args.calib_data or default_calibration_data(config)
    if calib_dir is None and needs_windows:
        raise InputError("no calibration clips for the INT8 export: pass --calib-data DIR (a "
                         "folder of FSDD-style clips, e.g. ../shared/data/kws/fsdd; its training "
                         "split calibrates)", ref.path)
    if calib_dir is not None:
        list_clips(calib_dir)  # a bad folder fails before anything is written
    out = Path(args.out)
    many = len(recipes) > 1
    paths = [out / f"kws_{config['name']}_{r.name.removeprefix('kws_')}.tflite" if many else out
             for r in recipes]
    check_outputs(paths + json_files(args.json), [out] if many else [],
                  inputs=[args.recipe] if args.recipe else [],
                  input_trees=[t for t in (ref.path, calib_dir) if t])
    model = load_kws_checkpoint(ref.path)
    windows, source = None, None
    if calib_dir is not None:
        split, valid_fraction, seed = checkpoint_split(config)
        windows, source = training_windows(calib_dir, model.features, split=split,
                                           valid_fraction=valid_fraction, seed=seed)
    results = []
    for recipe, path in zip(recipes, paths):
        res = export_kws(model, path, recipe, windows, check=not args.no_check,
                         calib_source=source)
        print(format_kws(res), file=human(args.json))
        for w in res.warnings:
            warn(f"{res.path}: {w}")
        results.append(res.to_json())
    emit_json(results if len(results) > 1 else results[0], args.json)
    return 0


def result_json(res) -> dict:
    """The JSON view of one :class:`tfdenoise.converters.convert.ExportResult`."""
    mc = res.mask_check
    return {"path": str(res.path), "variant": res.variant, "precision": res.precision,
            "random_weights": res.random_weights, "file_bytes": res.file_bytes,
            "param_bytes": res.param_bytes, "layers": list(res.layers), "ops": list(res.ops),
            "calibration": res.calibration,
            "mask_check": None if mc is None else {"max_abs": mc.max_abs, "p99_abs": mc.p99_abs,
                                                   "mean_abs": mc.mean_abs, "frames": mc.frames},
            "warnings": list(res.warnings)}


def format_result(res, keras: bool = False) -> str:
    """Human-readable summary of one :class:`tfdenoise.converters.convert.ExportResult`
    (``keras``: of a user's Keras model, whose outputs need not be gains)."""
    random = " RANDOM (untrained) weights" if res.random_weights else ""
    lines = [f"{res.path}: {res.variant.upper()} {res.precision}{random}, file {res.file_mb:.3f} MB, "
             f"parameters {res.param_mb:.3f} MB (MB = 2^20 B)"]
    if res.calibration:
        asym = ", asymmetric ranges" if res.calibration.get("ranges") == "asymmetric" else ""
        if res.calibration.get("qat_trained_ranges"):
            asym += f" ({res.calibration['qat_trained_ranges']} ranges as QAT trained them)"
        lines.append(f"  calibration: {res.calibration['method']}{asym} on "
                     f"{len(res.calibration['clips'])} {'inputs' if keras else 'clips'} "
                     f"({res.calibration['frames']} frames)")
    lines.append("  layers:")
    kinds = [f"{la['type']} ({la['kind']})" if la.get("type") else la["kind"] for la in res.layers]
    width, kw = max([7, *(len(la["name"]) for la in res.layers)]), max([5, *map(len, kinds)])
    for layer, kind in zip(res.layers, kinds):
        lines.append(f"    {layer['name']:<{width}} {kind:<{kw}} {layer['precision']:<5} "
                     f"{layer['param_bytes'] / 2**20:8.3f} MB  ops {layer['ops']}")
    counts: dict[str, int] = {}
    for op in res.ops:
        counts[op] = counts.get(op, 0) + 1
    lines.append("  ops: " + ", ".join(f"{k} x{v}" for k, v in counts.items()))
    lines.append("  op list: " + " ".join(res.ops))
    if res.mask_check is not None:
        what = ("output - Keras output", f"inputs, {res.mask_check.frames} frames") if keras \
            else ("mask - Keras mask", "clips")
        lines.append(f"  max |{what[0]}| on the calibration {what[1]}: {res.mask_check.max_abs:.3g} "
                     f"(99th percentile {res.mask_check.p99_abs:.3g})")
    return "\n".join(lines)
