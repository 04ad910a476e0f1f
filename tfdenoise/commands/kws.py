"""``tfdenoise kws models|train|evaluate``: keyword spotting on the digits of FSDD (docs/design.md §7)."""
from __future__ import annotations

import argparse
from pathlib import Path

from tfdenoise.commands import HelpFormatter
from tfdenoise.commands._common import add_json, emit_json, human, json_files
from tfdenoise.commands._qat import add_qat_options, qat_hook

#: Where ``--data`` and ``--noise`` point by default when run from the project root.
DEFAULT_DATA = Path("..") / "shared" / "data" / "kws" / "fsdd"
SHARED_NOISE = Path("..") / "shared" / "data" / "noise"

EXAMPLE = """examples:
  tfdenoise kws models --classes 6 --json - | jq '.[] | {model, params, macs}'
  tfdenoise kws train --model dnn --noise ../shared/data/noise --keywords 0 1 2 3 4 5 6 7 8 9 \\
      --shift 0.2 --epochs 150 --out runs/kws_dnn
  tfdenoise kws evaluate --model runs/kws_dnn/best --split all --plot det.png --json det.json"""

MODELS_EXAMPLE = """example:
  tfdenoise kws models                       # the 10-digit task
  tfdenoise kws models --classes 6 --json -  # the STM32F7 paper's 6 classes"""

TRAIN_EXAMPLE = """examples:
  the shipped model (tfdenoise/pretrained/kws_dnn): the ten digits as keywords + _unknown_ +
  _silence_, real noise at 0-20 dB SNR; then the same run continued to 200 epochs:
    tfdenoise kws train --model dnn --data ../shared/data/kws/fsdd --noise ../shared/data/noise \\
        --keywords 0 1 2 3 4 5 6 7 8 9 --shift 0.2 --lr 1e-3 --lr-final 1e-4 --epochs 150 \\
        --out runs/kws_dnn
    tfdenoise kws train ... (the same options) --epochs 200 --out runs/kws_dnn --resume
  the plain 10-class digit task (no _silence_ class: fine for clips, poor in a stream):
    tfdenoise kws train --model dnn --noise ../shared/data/noise --epochs 80 --out runs/digits
  a keyword task (digits 3 and 7; other digits = _unknown_, noise-only windows = _silence_),
  leaving speaker jackson out:
    tfdenoise kws train --model cnn --keywords 3 7 --split speaker:jackson \\
        --noise ../shared/data/noise --out runs/kws_cnn_37_jackson"""

EVALUATE_EXAMPLE = """examples:
  tfdenoise kws evaluate                                  # the shipped model, dataset split
  tfdenoise kws evaluate --model runs/kws_dnn/best --hours 2 --plot det.png --json -
  tfdenoise kws evaluate --model out/kws_dnn_int8.tflite --json det.json
  tfdenoise kws evaluate --model runs/kws_dnn_loso_jackson/best --split speaker:jackson"""


def add_parser(sub) -> None:
    p = sub.add_parser("kws", help="keyword spotting: list, train and evaluate KWS networks",
                       formatter_class=HelpFormatter, epilog=EXAMPLE,
                       description="Keyword spotting with the streaming, state-free networks dnn, cnn\n"
                                   "(STM32F7) and dscnn (MLPerf Tiny) on FSDD-style clips.")
    kws = p.add_subparsers(dest="kws_command", metavar="KWS_COMMAND")
    kws.required = True
    _add_models(kws)
    _add_train(kws)
    _add_evaluate(kws)


# -- models --------------------------------------------------------------------------------

def _add_models(kws) -> None:
    p = kws.add_parser("models", help="the KWS networks: parameters and MACs per inference",
                       formatter_class=HelpFormatter, epilog=MODELS_EXAMPLE)
    p.add_argument("--classes", type=int, default=10, metavar="N",
                   help="output classes, >= 2 (10 digits; a keyword task has keywords + 2)")
    add_json(p, "the table (one object per network, with its layer table)")
    p.set_defaults(func=run_models)


def run_models(args: argparse.Namespace) -> int:
    from tfdenoise.checks import check_integer
    from tfdenoise.fileio import check_outputs
    from tfdenoise.kws.layertable import MODELS, describe

    check_integer("--classes", args.classes, 2)
    check_outputs(json_files(args.json))
    rows = [describe(name, args.classes) for name in MODELS]
    out = human(args.json)
    print(f"{'model':6} {'input':>8} {'params':>10} {'deploy params':>14} {'MACs/inference':>15} "
          f"{'inferences/s':>12}  reference", file=out)
    for r in rows:
        shape = "x".join(map(str, r["input_shape"]))
        print(f"{r['model']:6} {shape:>8} {r['params']:>10,} {r['deploy_params']:>14,} {r['macs']:>15,} "
              f"{r['inferences_per_second']:>12g}  {r['reference']}", file=out)
    print(f"({args.classes} classes)", file=out)
    emit_json(rows, args.json)
    return 0


# -- train ---------------------------------------------------------------------------------

def _add_train(kws) -> None:
    from tfdenoise.kws.train_config import KwsTrainConfig

    d = KwsTrainConfig(model="dnn", data="", out="")
    p = kws.add_parser("train", help="train a KWS network on clips + noise (resumable)",
                       formatter_class=HelpFormatter, epilog=TRAIN_EXAMPLE,
                       description="Train a KWS network. Each epoch places every training clip in the\n"
                                   "model's window with a random shift and gain and mixes in a random\n"
                                   "noise segment at a random SNR. Every option is checked before any\n"
                                   "data is read.")
    p.add_argument("--model", required=True, help="network: dnn, cnn or dscnn")
    p.add_argument("--out", required=True, metavar="DIR", help="run folder (best/, last/, history.json)")
    p.add_argument("--keywords", nargs="+", default=None, metavar="LABEL",
                   help="keyword task: these labels are classes, every other label is _unknown_, "
                        "noise-only windows _silence_ (default: every label is a class)")
    p.add_argument("--split", default=d.split, metavar="dataset|speaker:NAME",
                   help="'dataset': indices 0-4 are the test set (FSDD's convention); 'speaker:NAME': "
                        "leave speaker NAME out")
    add_data_options(p)
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from OUT/last (same --model)")
    p.add_argument("--quiet", action="store_true", help="print no progress")
    add_qat_options(p)
    p.set_defaults(func=run_train)


def add_data_options(p, defaults: bool = True, shared: bool = True) -> None:
    """The data and schedule options of a KWS training run (``kws train``; ``prune`` with
    ``defaults=False``: every default None, left to :class:`~tfdenoise.kws.train_config.KwsTrainConfig`
    by :func:`config_from_args`, and ``shared=False``: without the options the denoiser's
    training options already define, ``--noise --epochs --batch --lr --lr-final --snr
    --valid-fraction --seed --cache``)."""
    from tfdenoise.kws.train_config import KwsTrainConfig

    c = KwsTrainConfig(model="dnn", data="", out="")

    def d(value):
        return value if defaults else None

    p.add_argument("--data", default=None, metavar="DIR",
                   help=f"clips folder (<label>_<speaker>_<index>.wav|flac, or <label>/<clip>.wav); "
                        f"default: {DEFAULT_DATA} when it exists")
    if shared:
        p.add_argument("--noise", default=None, metavar="DIR",
                       help=f"folder of noise recordings mixed into the training windows (e.g. {SHARED_NOISE}); "
                            "without it the clips are only shifted and scaled (keyword task: white-noise "
                            "silence windows)")
        p.add_argument("--epochs", type=int, default=d(c.epochs), metavar="N", help="epochs to train, >= 1")
        p.add_argument("--batch", type=int, default=d(c.batch), metavar="N", help="windows per step, >= 1")
        p.add_argument("--lr", type=float, default=d(c.learning_rate), help="Adam learning rate, in (0, 1]")
        p.add_argument("--lr-final", type=float, default=None,
                       help="learning rate of the last epoch, in (0, 1] (log-linear decay; default: constant --lr)")
        p.add_argument("--snr", type=float, nargs=2, default=d(c.snr_db), metavar=("LO", "HI"),
                       help="SNR range in dB of the noise mixed in, LO <= HI")
    p.add_argument("--noise-prob", type=float, default=d(c.noise_prob), metavar="SHARE",
                   help="share of training windows that get noise, in [0, 1]")
    p.add_argument("--shift", type=float, default=d(c.shift_seconds), metavar="SECONDS",
                   help="largest random time shift of a clip in its window, in [0, 1]")
    p.add_argument("--gain", type=float, nargs=2, default=d(c.gain_db), metavar=("LO", "HI"),
                   help="random gain range in dB, LO <= HI")
    p.add_argument("--silence-share", type=float, default=d(c.silence_share), metavar="SHARE",
                   help="keyword task: noise-only windows per epoch, as a share of the clips, in [0, 1]")
    p.add_argument("--partial-share", type=float, default=d(c.partial_share), metavar="SHARE",
                   help="keyword task: windows holding only the start or end (20-50 %%) of a word, "
                        "trained as _unknown_, as a share of the clips, in [0, 1]")
    p.add_argument("--windows-per-epoch", type=int, default=d(c.windows_per_epoch), metavar="N",
                   help="training windows per epoch, >= 0 (0: one per training clip)")
    if shared:
        p.add_argument("--valid-fraction", type=float, default=d(c.valid_fraction), metavar="SHARE",
                       help="share of the non-test clips held out for validation (stratified by label), in (0, 1)")
        p.add_argument("--seed", type=int, default=d(c.seed), help="random seed, >= 0")
        p.add_argument("--cache", metavar="DIR", help="folder caching decoded audio (default: OUT/cache; '' disables)")


#: option dest -> KwsTrainConfig field, for the options :func:`add_data_options` adds
DATA_FIELDS = {"noise": "noise", "epochs": "epochs", "batch": "batch", "lr": "learning_rate",
               "lr_final": "final_learning_rate", "snr": "snr_db", "noise_prob": "noise_prob",
               "shift": "shift_seconds", "gain": "gain_db", "silence_share": "silence_share",
               "partial_share": "partial_share", "windows_per_epoch": "windows_per_epoch",
               "valid_fraction": "valid_fraction", "seed": "seed", "cache": "cache_dir"}


def config_from_args(args: argparse.Namespace, model: str, out: str, **fields):
    """The :class:`~tfdenoise.kws.train_config.KwsTrainConfig` of the parsed options (those left
    None take the config's defaults; ``--data`` its default folder) and ``fields``."""
    from tfdenoise.kws.train_config import KwsTrainConfig

    given = {DATA_FIELDS[k]: tuple(v) if isinstance(v, list) else v
             for k, v in vars(args).items() if k in DATA_FIELDS and v is not None}
    return KwsTrainConfig(model=model, data=default_data(args.data), out=out, **{**given, **fields})


def _add_folders(p, data_help: str, noise_help: str) -> None:
    """``--data`` (the clips) and ``--noise`` (noise recordings) of evaluate."""
    p.add_argument("--data", default=None, metavar="DIR", help=data_help)
    p.add_argument("--noise", default=None, metavar="DIR", help=noise_help)


def default_data(given: str | None) -> str:
    """``--data`` or, without it, the shared FSDD folder when it exists (else one error line)."""
    from tfdenoise.errors import InputError

    if given is not None:
        return given
    if DEFAULT_DATA.is_dir():
        return str(DEFAULT_DATA)
    raise InputError(f"no --data given and the default {DEFAULT_DATA} does not exist here; "
                     "pass --data DIR (a folder of <label>_<speaker>_<index> clips)")


def run_train(args: argparse.Namespace) -> int:
    from tfdenoise.kws.train import train_kws

    hook = qat_hook(args)
    config = config_from_args(args, args.model.lower(), args.out,
                              keywords=tuple(args.keywords) if args.keywords else None, split=args.split)
    best = train_kws(config, resume=args.resume, verbose=0 if args.quiet else 1, hook=hook)
    print(f"best checkpoint: {best}")
    return 0


# -- evaluate ------------------------------------------------------------------------------

def _add_evaluate(kws) -> None:
    from tfdenoise.kws.det import DEFAULT_SUPPRESSION_S
    from tfdenoise.kws.stream import DEFAULT_HOURS, DEFAULT_STREAM_SNR_DB

    p = kws.add_parser("evaluate", help="accuracy, confusion matrix and DET (FRR vs false alarms/hour)",
                       formatter_class=HelpFormatter, epilog=EVALUATE_EXAMPLE,
                       description="Score a KWS model on the test split: accuracy and confusion matrix\n"
                                   "(one window centred on each clip), and the detection error trade-off\n"
                                   "on a reproducible stream of test-split words in real noise: FRR\n"
                                   "against false alarms per hour, FRR at 0.5, 1 and 2 FA/h.")
    p.add_argument("--model", default=None, metavar="CHECKPOINT|MODEL.tflite",
                   help="KWS checkpoint folder (a run folder means its best/) or .tflite "
                        "(default: the shipped KWS model)")
    _add_folders(p, f"clips folder (default: {DEFAULT_DATA} when it exists)",
                 f"noise recordings for the DET stream (default: {SHARED_NOISE} when it exists; "
                 "without any, the stream's background is generated noise)")
    p.add_argument("--split", default="dataset", metavar="dataset|speaker:NAME|all",
                   help="test split: the dataset's (indices 0-4), one left-out speaker, or 'all': the "
                        "dataset split plus every speaker left out in turn (accuracy only; a fair "
                        "leave-one-speaker-out score needs a model trained with --split speaker:NAME)")
    p.add_argument("--hours", type=float, default=DEFAULT_HOURS, metavar="H",
                   help="length of the DET stream in hours, 0 to 100 (0: accuracy only, no DET)")
    p.add_argument("--snr", type=float, nargs=2, default=DEFAULT_STREAM_SNR_DB, metavar=("LO", "HI"),
                   help="SNR range in dB of the words in the DET stream, LO <= HI")
    p.add_argument("--suppression", type=float, default=DEFAULT_SUPPRESSION_S, metavar="SECONDS",
                   help="no second trigger within SECONDS after one, >= 0")
    p.add_argument("--seed", type=int, default=0, help="seed of the DET stream, >= 0")
    p.add_argument("--cache", default=None, metavar="DIR",
                   help="folder caching the decoded noise (int16 .npz; default: decode every time)")
    p.add_argument("--plot", default=None, metavar="FILE.png", help="write the DET curve as a plot")
    add_json(p, "the scores")
    p.set_defaults(func=run_evaluate)


def run_evaluate(args: argparse.Namespace) -> int:
    from tfdenoise.fileio import check_outputs
    from tfdenoise.kws.evaluate import EvalRequest, format_result, list_data
    from tfdenoise.kws_evaluate import evaluate_kws
    from tfdenoise.modelref import resolve
    from tfdenoise.vocab import ModelFamily

    data_dir = default_data(args.data)
    noise = args.noise if args.noise is not None else (str(SHARED_NOISE) if SHARED_NOISE.is_dir() else None)
    request = EvalRequest(data=data_dir, noise=noise, split=args.split, hours=args.hours,
                          snr_db=tuple(args.snr), suppression_s=args.suppression, seed=args.seed,
                          cache_dir=args.cache)
    request.check()
    ref = resolve(args.model, ModelFamily.KWS)
    clips = list_data(data_dir)  # a bad folder fails before the outputs are probed
    outputs = json_files(args.json) + ([Path(args.plot)] if args.plot else [])
    check_outputs(outputs, folders=[args.cache] if args.cache else [], inputs=ref.files,
                  input_trees=[data_dir] + ([noise] if noise else []) + ref.folders)
    result = evaluate_kws(ref, request, clips=clips, plot=args.plot, progress=human(args.json))
    print(format_result(result), file=human(args.json))
    emit_json(result, args.json)
    return 0
