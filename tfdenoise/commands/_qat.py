"""The QAT options of ``tfdenoise train`` and ``tfdenoise kws train`` (docs/design.md §8)."""
from __future__ import annotations

import argparse

QAT_HELP = """sub-8-bit quantization-aware training (docs/design.md §8): stage 1 trains the weights
on a symmetric tanh grid of --qat-bits (1, 2, 4, 5 or 8) from --init CHECKPOINT (a float
checkpoint); stage 2 (--qat-stage 2 --init STAGE1_RUN/best) adds 8-bit biases, inputs and
activations. Checkpoints hold the latent float weights and a "qat" entry; every loader
(evaluate, export) sees the grid weights. Export: tfdenoise export RUN/best --int8 (<= 4-bit
weights of dense/conv ops as packed INT4)."""


def add_qat_options(p: argparse.ArgumentParser) -> None:
    """``--qat-bits B``, ``--qat-stage 1|2``, ``--qat-layer-bits PATTERN=B ...``, ``--init DIR``."""
    g = p.add_argument_group("quantization-aware training", QAT_HELP)
    g.add_argument("--qat-bits", default=None, metavar="B",
                   help="weight width of every dense, conv and recurrent kernel: 1, 2, 4, 5 or 8")
    g.add_argument("--qat-stage", type=int, default=1, choices=(1, 2),
                   help="1: weights only; 2: also biases, inputs and activations (starts from a "
                        "stage-1 checkpoint)")
    g.add_argument("--qat-layer-bits", nargs="+", default=(), metavar="PATTERN=B",
                   help="other widths for the layers a regular expression names, e.g. 'rnn_.*=4' "
                        "(first match wins)")
    g.add_argument("--init", default=None, metavar="CHECKPOINT",
                   help="checkpoint folder a --qat-bits run starts from (not with --resume)")
    g.add_argument("--qat-train-layers", default=None, metavar="PATTERN",
                   help="train only the layers whose names the regular expression matches, e.g. "
                        "'fc_in' (the others keep their weights; default: all)")
    g.add_argument("--qat-ranges", choices=("symmetric", "asymmetric"), default=None,
                   help="denoiser stage 2: activation ranges as tfdenoise export --ranges lays them "
                        "out (default symmetric [-r, r]; asymmetric: the input magnitudes and ReLU "
                        "outputs on [0, 2 r]); the export follows the trained ranges")
    g.add_argument("--qat-calib-ranges", action="store_true",
                   help="denoiser stage 2: set the activation ranges to the export's std3 calibration "
                        "of the --init checkpoint (4 reference clips, laid out as --qat-ranges) and keep "
                        "them fixed, instead of learning them from the training batches")
    g.add_argument("--qat-latent-init", choices=("atanh", "copy"), default=None,
                   help="stage 1 from float weights (default atanh): atanh starts the latent weights at the inverse "
                        "of the tanh transform (the grid = the float weights linearly quantized); "
                        "copy takes the float weights as latent ones (tanh-distorted: how the KWS "
                        "runs of docs/qat.md started)")


def qat_hook(args: argparse.Namespace, symmetric: bool = False, statistic: str = "max"):
    """The :class:`~tfdenoise.qat_train.QatHook` the options ask for, checked before any data
    is read (None: a plain run); ``symmetric``: stage-2 activation ranges as the denoiser's
    INT8 export calibrates them, over the moving average of the batches' ``statistic``."""
    from tfdenoise.errors import InputError

    if args.qat_bits is None:
        if args.init is not None or args.qat_layer_bits or args.qat_stage != 1 or \
                args.qat_latent_init is not None or args.qat_train_layers is not None or \
                args.qat_ranges is not None or args.qat_calib_ranges:
            raise InputError("--init, --qat-stage, --qat-layer-bits, --qat-latent-init, "
                             "--qat-train-layers, --qat-ranges and --qat-calib-ranges go with --qat-bits "
                             "(a plain run continues with --resume)")
        return None
    for flag, given in ((f"--qat-ranges {args.qat_ranges}", args.qat_ranges is not None),
                        ("--qat-calib-ranges", args.qat_calib_ranges)):
        if given and not symmetric:
            raise InputError(f"{flag}: for the denoiser (tfdenoise train); a KWS network trains "
                             "[min, max] ranges")
        if given and args.qat_stage != 2:
            raise InputError(f"{flag}: for stage 2 (--qat-stage 2), where activations are quantized")
    if args.init is not None and args.resume:
        raise InputError("--init starts a run, --resume continues one: give one of them")
    if args.qat_latent_init is not None and args.resume:
        raise InputError("--qat-latent-init applies to a start from float weights, not to --resume")
    from tfdenoise import qat
    from tfdenoise.qat_train import QatHook

    return QatHook(qat.check_bits(args.qat_bits), args.qat_stage,
                   qat.parse_layer_bits(args.qat_layer_bits), args.init, symmetric, statistic,
                   args.qat_latent_init, args.qat_train_layers, args.qat_ranges,
                   _calibrated(args.init, args.qat_ranges) if args.qat_calib_ranges else None)


def _calibrated(init: str | None, ranges: str | None):
    """The function that computes the export's calibrated ranges of checkpoint ``init`` (std3,
    the 4 reference clips, laid out as ``ranges``), for a stage-2 hook to call on a fresh start."""
    def compute() -> dict:
        from tfdenoise.converters.calibration import CalibrationSet
        from tfdenoise.converters.qat_export import calibrated_act_ranges
        from tfdenoise.models import load_checkpoint
        from tfdenoise.vocab import CalibMethod, RangeKind

        return calibrated_act_ranges(load_checkpoint(init), CalibrationSet.load(), CalibMethod.STD3,
                                     RangeKind(ranges or RangeKind.SYMMETRIC))
    return compute
