"""``tfdenoise prune``: prune a denoiser or KWS checkpoint and fine-tune it (docs/design.md §9)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from tfdenoise.commands import HelpFormatter
from tfdenoise.commands._common import add_json, emit_json, human, json_files

EXAMPLE = """examples:
  the shipped KWS model, 75 % of every weight tensor pruned (polynomial ramp), fine-tuned with
  the shipped model's augmentation, then exported to INT8:
    tfdenoise prune tfdenoise/pretrained/kws_dnn --method unstructured --sparsity 0.75 \\
        --noise ../shared/data/noise --shift 0.2 --epochs 10 -o runs/prune/kws_dnn_u75
    tfdenoise export runs/prune/kws_dnn_u75/best --int8 -o runs/prune/kws_dnn_u75.int8.tflite
  2:4 and 4x1-block sparsity of the same model:
    tfdenoise prune tfdenoise/pretrained/kws_dnn --method 2:4 --sparsity 0.5 ... -o runs/prune/kws_24
    tfdenoise prune tfdenoise/pretrained/kws_dnn --method block --block 4x1 --sparsity 0.5 ... -o runs/prune/kws_b41
  LSTM128 with 25 % of its RNN units removed (128 -> 96 per layer), fine-tuned on speech + noise,
  then continued for 2 more epochs:
    tfdenoise prune lstm128 --method structured --sparsity 0.25 --speech ../shared/data/speech \\
        --noise ../shared/data/noise --batch 32 --epochs 3 -o runs/prune/lstm128_s25
    tfdenoise prune lstm128 ... (the same options) --epochs 5 -o runs/prune/lstm128_s25 --resume"""

DESCRIPTION = """\
Prune a trained model and fine-tune it: unstructured (smallest weights of every tensor), 2:4
(2 zeros in every 4 weights along the input axis), block (whole RxC blocks) or structured (whole
units / filters removed: the layers shrink). The output is a training run folder (best/, last/,
history.json; resumable with --resume) whose checkpoints load everywhere a trained model does
(export, report, evaluate, enhance, kws evaluate); their config.json holds a "prune" record:
method, target and the measured sparsity of every weight tensor (structured: the units kept).

MODEL is a denoiser or KWS checkpoint folder, a run folder (its best/) or a shipped variant name.
The fine-tuning options are those of `tfdenoise train` (a denoiser) or `tfdenoise kws train`
(a KWS model), with the same defaults; options both have (--noise --epochs --batch --lr
--lr-final --snr --valid-fraction --seed --cache) take the default of MODEL's train command. A
KWS model keeps its task: the keywords and split come from its checkpoint."""

#: Options only one family's fine-tuning reads (given for the other: one error line).
DENOISER_ONLY = ("speech", "valid_pairs", "valid_pesq", "segment", "segments_per_epoch", "exclude_noise",
                 "synthetic_noise", "min_clean_snr", "compressed_loss", "mag_loss", "snr_level")
KWS_ONLY = ("data", "noise_prob", "shift", "gain", "silence_share", "partial_share", "windows_per_epoch")


def add_parser(sub) -> None:
    from tfdenoise.commands import kws, train
    from tfdenoise.vocab import PruneMethod, PruneSchedule

    p = sub.add_parser("prune", help="prune a denoiser or KWS model and fine-tune it (resumable)",
                       formatter_class=HelpFormatter, epilog=EXAMPLE, description=DESCRIPTION)
    p.add_argument("model", metavar="MODEL", help="checkpoint folder, run folder or shipped variant name")
    p.add_argument("--method", required=True, choices=[m.value for m in PruneMethod],
                   help="unstructured | 2:4 | block | structured")
    p.add_argument("--sparsity", type=float, required=True, metavar="SHARE",
                   help="share of each weight tensor set to zero (structured: of each layer's units "
                        "removed), in (0, 1); 2:4 takes 0.5")
    p.add_argument("--block", default=None, metavar="RxC",
                   help="--method block: R inputs x C outputs of a kernel [in, out] (e.g. 4x1)")
    p.add_argument("--schedule", default=None, choices=[s.value for s in PruneSchedule],
                   help="how the sparsity grows: at once (constant) or from 0 over the first half of the "
                        "steps (polynomial; the default for unstructured and block)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="run folder (best/, last/, history.json)")
    train.add_data_options(p, defaults=False)
    kws.add_data_options(p, defaults=False, shared=False)
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from OUT/last (same options)")
    p.add_argument("--quiet", action="store_true", help="print no progress")
    add_json(p, "the pruning record and the best epoch's metrics")
    p.set_defaults(func=run)


def _checkpoint(spec: str) -> str:
    """A run folder means its ``best/`` checkpoint."""
    from tfdenoise.models import CONFIG_FILE

    path = Path(spec)
    return str(path / "best") if (path / "best" / CONFIG_FILE).is_file() else spec


def _refuse_others(args: argparse.Namespace, family: str, options: tuple[str, ...]) -> None:
    from tfdenoise.errors import InputError

    given = [f"--{o.replace('_', '-')}" for o in options if getattr(args, o) is not None]
    if given:
        raise InputError(f"{' '.join(given)}: not an option for a {family} model ({args.model})")


def run(args: argparse.Namespace) -> int:
    from tfdenoise.errors import InputError
    from tfdenoise.fileio import check_outputs
    from tfdenoise.models import CONFIG_FILE
    from tfdenoise.modelref import require_checkpoint, resolve
    from tfdenoise.prune import PruneSpec, parse_block, prune_denoiser, prune_kws

    spec = PruneSpec(args.method, args.sparsity, parse_block(args.block) if args.block is not None else None,
                     args.schedule)
    check_outputs(json_files(args.json))
    ref = require_checkpoint(resolve(_checkpoint(args.model)), "pruning")
    verbose = 0 if args.quiet or args.json == "-" else 1
    if ref.is_kws:
        from tfdenoise.commands.kws import config_from_args
        from tfdenoise.kws.models import read_kws_config

        _refuse_others(args, "keyword-spotting", DENOISER_ONLY)
        saved = read_kws_config(ref.path)
        training = saved.get("training") or {}
        config = config_from_args(args, saved["name"], args.out, split=saved.get("split") or "dataset",
                                  keywords=tuple(saved["keywords"]) if saved.get("keywords") else None,
                                  **{k: training[k] for k in ("valid_fraction", "seed")
                                     if k in training and getattr(args, k) is None})
        best = prune_kws(ref, spec, config, resume=args.resume, verbose=verbose)
    else:
        from tfdenoise.commands.train import config_from_args

        _refuse_others(args, "denoiser", KWS_ONLY)
        for option in ("speech", "noise"):
            if getattr(args, option) is None:
                raise InputError(f"--{option} is needed to fine-tune a denoiser ({args.model})")
        config = config_from_args(args, ref.variant or "", args.out)
        best = prune_denoiser(ref, spec, config, resume=args.resume, verbose=verbose)
    saved = json.loads((best / CONFIG_FILE).read_text())
    out = human(args.json)
    print(f"best checkpoint: {best} (epoch {saved.get('epoch')})", file=out)
    print(format_record(saved.get("prune") or {}), file=out)
    emit_json({"checkpoint": str(best), "epoch": saved.get("epoch"), "prune": saved.get("prune"),
               "metrics": saved.get("metrics")}, args.json)
    return 0


def format_record(record: dict) -> str:
    """The ``"prune"`` record of a checkpoint as lines: per tensor (masks) or per layer (structured)."""
    if "units" in record:
        lines = [f"structured {record['target']:g}: weight-matrix elements {record['weights_before']:,} -> "
                 f"{record['weights_after']:,}"]
        lines += [f"  {name:<8} units {u['before']} -> {u['after']}" for name, u in record["units"].items()]
        return "\n".join(lines)
    lines = [f"{record.get('method')} {record.get('target', 0):g}: measured sparsity {record.get('sparsity', 0):.4f} "
             f"of {record.get('weights', 0):,} pruned weights (step {record.get('step')}, "
             f"{'at' if record.get('at_target') else 'below'} target)"]
    for r in record.get("tensors", []):
        extra = "".join(f" {k} {r[k]}" for k in ("m_by_n_violations", "zero_blocks", "partial_blocks") if k in r)
        lines.append(f"  {r['layer']:<8} {r['tensor']:<16} {'x'.join(map(str, r['shape'])):>10} "
                     f"sparsity {r['sparsity']:.4f}{'' if r['pruned'] else ' (not pruned)'}{extra}")
    return "\n".join(lines)
