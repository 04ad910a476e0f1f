"""``tfdenoise train``: train a TinyDenoiser on clean speech + noise mixed on the fly."""
from __future__ import annotations


EPILOG = """\
example: LSTM128 on 1 s segments, learning rate decaying from 1e-3 to 1e-4 over 20 epochs,
best checkpoint by PESQ on 32 held-out mixtures; then the same run continued to 30 epochs:
  tfdenoise train --variant LSTM128 --speech ../shared/data/speech --noise ../shared/data/noise \\
      --epochs 20 --batch 32 --segment 1 --lr 1e-3 --lr-final 1e-4 --exclude-noise 'voice/*' \\
      --synthetic-noise 0.2 --valid-pesq 32 --out runs/lstm128
  tfdenoise train ... (the same options) --epochs 30 --out runs/lstm128 --resume

augmentation and weight averaging (docs/training.md): a third of the training mixtures
reverberant (RT60 0.2-1.0 s, dry target), +-6 dB tilt, -20..0 dB gain, moving average 0.99:
  tfdenoise train ... --reverb 0.3 --rt60 0.2 1.0 --tilt-db -6 6 --level-db -20 0 --ema 0.99

several workers (TensorFlow's MultiWorkerMirroredStrategy): the same command on each, with
TF_CONFIG naming the cluster and this worker, --out on a shared folder, --batch per worker:
  TF_CONFIG='{"cluster": {"worker": ["host1:23456", "host2:23456"]}, "task": {"type": "worker", "index": 0}}' \
      tfdenoise train ... --out /shared/runs/lstm128        # index 1 on host2
"""


def add_parser(sub) -> None:
    from tfdenoise.commands import HelpFormatter
    from tfdenoise.commands._qat import add_qat_options

    p = sub.add_parser("train", help="train a variant on speech + noise folders (resumable)",
                       description="Train a TinyDenoiser variant on clean speech mixed with noise on\n"
                                   "the fly. Every option is range-checked before any data is read.",
                       epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--variant", required=True, help="LSTM256, GRU256, LSTM128 or GRU128")
    add_data_options(p)
    add_augment_options(p)
    p.add_argument("--out", required=True, help="run folder (checkpoints, history)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from OUT/last (same --variant)")
    p.add_argument("--quiet", action="store_true", help="print no progress")
    p.add_argument("--worker-timeout", type=float, default=600.0, metavar="S",
                   help="with TF_CONFIG (several workers): seconds a worker waits for the others at "
                        "each step before it fails (a lost worker: run again with --resume)")
    add_qat_options(p)
    p.set_defaults(func=run)


def add_data_options(p, defaults: bool = True) -> None:
    """The data and schedule options of a denoiser training run (``train``; ``prune`` with
    ``defaults=False``: every default None, so that :func:`config_from_args` leaves it to
    :class:`~tfdenoise.train_config.TrainConfig`, and nothing required)."""
    from tfdenoise.losses import LossWeights
    from tfdenoise.mixtures import DEFAULT_SNR_DB, DEFAULT_SNR_LEVEL, SNR_LEVELS
    from tfdenoise.train_config import MAX_SEGMENT_SECONDS, MIN_SEGMENT_SECONDS

    def d(value):
        return value if defaults else None

    p.add_argument("--speech", required=defaults, help="folder of clean speech (wav/flac/ogg/opus)")
    p.add_argument("--noise", required=defaults, help="folder of noise recordings")
    p.add_argument("--valid-pairs", help="Valentini-layout folder scored (PESQ/STOI) every epoch")
    p.add_argument("--valid-pesq", type=int, default=d(0), metavar="N",
                   help="N >= 0: score N held-out speech+noise mixtures (4 s, Valentini test SNRs) with "
                        "PESQ every epoch and keep the best checkpoint by it (0: by val_loss)")
    p.add_argument("--epochs", type=int, default=d(10), metavar="N", help="epochs to train, >= 1")
    p.add_argument("--batch", type=int, default=d(64), metavar="N", help="segments per step, >= 1")
    p.add_argument("--lr", type=float, default=d(3e-4), help="Adam learning rate, in (0, 1]")
    p.add_argument("--lr-final", type=float,
                   help="learning rate of the last epoch, in (0, 1] (log-linear decay; "
                        "default: constant --lr)")
    p.add_argument("--segment", type=float, default=d(2.0), metavar="SECONDS",
                   help=f"segment length in seconds, {MIN_SEGMENT_SECONDS:g} to {MAX_SEGMENT_SECONDS:g}")
    p.add_argument("--segments-per-epoch", type=int, default=d(0), metavar="N",
                   help="mixtures per epoch, >= 0 (0: training speech duration / segment)")
    p.add_argument("--valid-fraction", type=float, default=d(0.05), metavar="SHARE",
                   help="share of speakers held out for validation, in (0, 1)")
    p.add_argument("--snr", type=float, nargs=2, default=d(DEFAULT_SNR_DB), metavar=("LO", "HI"),
                   help="SNR range in dB of the mixtures, LO <= HI")
    p.add_argument("--exclude-noise", nargs="+", default=d(()), metavar="GLOB",
                   help="leave out noise clips whose path below --noise matches, e.g. 'voice/*' "
                        "(a single talker or singer is a second speaker, not noise)")
    p.add_argument("--synthetic-noise", type=float, default=d(0.0), metavar="SHARE",
                   help="share in [0, 1] of noise segments replaced by babble or speech-shaped noise "
                        "made from other training speakers, as in the Valentini training set")
    p.add_argument("--min-clean-snr", type=float, default=d(0.0), metavar="DB",
                   help="DB >= 0: leave out speech clips whose estimated SNR (95th - 5th percentile "
                        "of 32 ms frame levels) is below DB, in training (their noise floor would be "
                        "learnt as speech) and held out (PESQ against a noisy reference rewards "
                        "keeping noise); 0: keep all")
    p.add_argument("--compressed-loss", type=float, default=d(0.0), metavar="W",
                   help="W >= 0: add W x a power-law compressed spectral loss (Braun & Tashev 2021; "
                        "tracks PESQ more closely) to L1 + multi-resolution STFT; 0: off")
    p.add_argument("--mag-loss", type=float, default=d(LossWeights.mag), metavar="W",
                   help="W >= 0: weight of the log-magnitude part of the multi-resolution STFT loss "
                        "(the default is the reference recipe's; 0: left out)")
    p.add_argument("--snr-level", choices=SNR_LEVELS, default=d(DEFAULT_SNR_LEVEL),
                   help="speech power the SNR refers to: active speech frames, as the Valentini set "
                        "(ITU-T P.56), or the whole segment with its pauses (before 2026-11-21)")
    p.add_argument("--seed", type=int, default=d(0), help="random seed, >= 0")
    p.add_argument("--cache", metavar="DIR",
                   help="folder caching decoded audio (default: OUT/cache; '' disables)")


def add_augment_options(p) -> None:
    """Augmentation of the training mixtures (tfdenoise/augment.py) and weight averaging
    (tfdenoise/ema.py): all off by default."""
    from tfdenoise.augment import (DEFAULT_REVERB_TARGET, DEFAULT_RT60, LEVEL_LIMITS_DB, OFF, REVERB_TARGETS,
                                   RT60_LIMITS, TILT_LIMIT_DB)

    p.add_argument("--reverb", type=float, default=0.0, metavar="P",
                   help="probability in [0, 1] that a training mixture is reverberant: speech and noise "
                        "through simulated shoebox-room impulse responses (0: off)")
    p.add_argument("--rt60", type=float, nargs=2, default=DEFAULT_RT60, metavar=("LO", "HI"),
                   help=f"reverberation time range in seconds, within [{RT60_LIMITS[0]:g}, {RT60_LIMITS[1]:g}]")
    p.add_argument("--reverb-target", default=DEFAULT_REVERB_TARGET, metavar="|".join(REVERB_TARGETS),
                   help="clean target of a reverberant mixture: dry = the speech (its direct path), "
                        "early = direct path + first 50 ms of reflections")
    p.add_argument("--level-db", type=float, nargs=2, default=OFF, metavar=("LO", "HI"),
                   help=f"random gain in dB of each training pair (mixture and target alike), within "
                        f"[{LEVEL_LIMITS_DB[0]:g}, {LEVEL_LIMITS_DB[1]:g}]; a gain that would lift a peak "
                        "above -1 dBFS is lowered to reach it (nothing clips); 0 0: off")
    p.add_argument("--tilt-db", type=float, nargs=2, default=OFF, metavar=("LO", "HI"),
                   help=f"random spectral tilt in dB from 0 Hz to 8 kHz (first-order shelf) of each "
                        f"training pair, mixture and target alike, within +-{TILT_LIMIT_DB:g}; 0 0: off")
    p.add_argument("--ema", type=float, default=0.0, metavar="DECAY",
                   help="DECAY in [0, 1): validate, pick and save the exponential moving average of the "
                        "weights (updated every step; spans ~1/(1-DECAY) steps); last/raw_weights.h5 "
                        "keeps the raw ones for --resume; 0: off")


#: option dest -> TrainConfig field, for the options :func:`add_augment_options` adds
AUGMENT_FIELDS = {"reverb": "reverb", "rt60": "rt60", "reverb_target": "reverb_target", "level_db": "level_db",
                  "tilt_db": "tilt_db", "ema": "ema"}

#: option dest -> TrainConfig field, for the options :func:`add_data_options` adds
DATA_FIELDS = {"speech": "speech", "noise": "noise", "epochs": "epochs", "batch": "batch",
               "lr": "learning_rate", "lr_final": "final_learning_rate", "segment": "segment_seconds",
               "segments_per_epoch": "segments_per_epoch", "valid_fraction": "valid_fraction",
               "valid_pairs": "valid_pairs", "valid_pesq": "valid_pesq", "snr": "snr_db",
               "snr_level": "snr_level", "exclude_noise": "noise_exclude",
               "synthetic_noise": "synthetic_noise", "min_clean_snr": "min_clean_snr",
               "compressed_loss": "compressed_loss", "mag_loss": "mag_loss", "seed": "seed", "cache": "cache_dir"}


def config_from_args(args, variant: str, out: str, **fields):
    """The :class:`~tfdenoise.train_config.TrainConfig` of the parsed options (those left None
    take the config's defaults) and ``fields``."""
    from tfdenoise.train_config import TrainConfig

    given = {DATA_FIELDS[k]: tuple(v) if isinstance(v, list) else v
             for k, v in vars(args).items() if k in DATA_FIELDS and v is not None}
    return TrainConfig(variant=variant, out=out, **{**given, **fields})


def run(args) -> int:
    from tfdenoise.commands._qat import qat_hook
    from tfdenoise.checks import check_number
    from tfdenoise.train import train

    # the denoiser's INT8 export: centred ranges (one-sided with --qat-ranges asymmetric); std3
    # (PTQ: 1.981 PESQ vs max 1.873, docs/qat.md)
    hook = qat_hook(args, symmetric=True, statistic="std3")
    augment = {field: tuple(v) if isinstance(v, list) else v for dest, field in AUGMENT_FIELDS.items()
               if (v := getattr(args, dest)) is not None}
    config = config_from_args(args, args.variant.lower(), args.out, **augment)
    check_number("--worker-timeout", args.worker_timeout, lambda v: v >= 1, "a number of seconds >= 1")
    best = train(config, resume=args.resume, verbose=0 if args.quiet else 1, hook=hook,
                 worker_timeout_s=args.worker_timeout)
    print(f"best checkpoint: {best}")
    return 0
