"""``tfdenoise train``: train a TinyDenoiser on clean speech + noise mixed on the fly."""
from __future__ import annotations


EPILOG = """\
example: LSTM128 on 1 s segments, learning rate decaying from 1e-3 to 1e-4 over 20 epochs,
best checkpoint by PESQ on 32 held-out mixtures; then the same run continued to 30 epochs:
  tfdenoise train --variant LSTM128 --speech ../shared/data/speech --noise ../shared/data/noise \\
      --epochs 20 --batch 32 --segment 1 --lr 1e-3 --lr-final 1e-4 --exclude-noise 'voice/*' \\
      --synthetic-noise 0.2 --valid-pesq 32 --out runs/lstm128
  tfdenoise train ... (the same options) --epochs 30 --out runs/lstm128 --resume
"""


def add_parser(sub) -> None:
    from tfdenoise.commands import HelpFormatter
    from tfdenoise.mixtures import DEFAULT_SNR_DB, DEFAULT_SNR_LEVEL, SNR_LEVELS
    from tfdenoise.train_config import MAX_SEGMENT_SECONDS, MIN_SEGMENT_SECONDS

    p = sub.add_parser("train", help="train a variant on speech + noise folders (resumable)",
                       description="Train a TinyDenoiser variant on clean speech mixed with noise on\n"
                                   "the fly. Every option is range-checked before any data is read.",
                       epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("--variant", required=True, help="LSTM256, GRU256, LSTM128 or GRU128")
    p.add_argument("--speech", required=True, help="folder of clean speech (wav/flac/ogg/opus)")
    p.add_argument("--noise", required=True, help="folder of noise recordings")
    p.add_argument("--valid-pairs", help="Valentini-layout folder scored (PESQ/STOI) every epoch")
    p.add_argument("--valid-pesq", type=int, default=0, metavar="N",
                   help="N >= 0: score N held-out speech+noise mixtures (4 s, Valentini test SNRs) with "
                        "PESQ every epoch and keep the best checkpoint by it (0: by val_loss)")
    p.add_argument("--epochs", type=int, default=10, metavar="N", help="epochs to train, >= 1")
    p.add_argument("--batch", type=int, default=64, metavar="N", help="segments per step, >= 1")
    p.add_argument("--lr", type=float, default=3e-4, help="Adam learning rate, in (0, 1]")
    p.add_argument("--lr-final", type=float,
                   help="learning rate of the last epoch, in (0, 1] (log-linear decay; "
                        "default: constant --lr)")
    p.add_argument("--segment", type=float, default=2.0, metavar="SECONDS",
                   help=f"segment length in seconds, {MIN_SEGMENT_SECONDS:g} to {MAX_SEGMENT_SECONDS:g}")
    p.add_argument("--segments-per-epoch", type=int, default=0, metavar="N",
                   help="mixtures per epoch, >= 0 (0: training speech duration / segment)")
    p.add_argument("--valid-fraction", type=float, default=0.05, metavar="SHARE",
                   help="share of speakers held out for validation, in (0, 1)")
    p.add_argument("--snr", type=float, nargs=2, default=DEFAULT_SNR_DB, metavar=("LO", "HI"),
                   help="SNR range in dB of the mixtures, LO <= HI")
    p.add_argument("--exclude-noise", nargs="+", default=(), metavar="GLOB",
                   help="leave out noise clips whose path below --noise matches, e.g. 'voice/*' "
                        "(a single talker or singer is a second speaker, not noise)")
    p.add_argument("--synthetic-noise", type=float, default=0.0, metavar="SHARE",
                   help="share in [0, 1] of noise segments replaced by babble or speech-shaped noise "
                        "made from other training speakers, as in the Valentini training set")
    p.add_argument("--min-clean-snr", type=float, default=0.0, metavar="DB",
                   help="DB >= 0: leave out speech clips whose estimated SNR (95th - 5th percentile "
                        "of 32 ms frame levels) is below DB, in training (their noise floor would be "
                        "learnt as speech) and held out (PESQ against a noisy reference rewards "
                        "keeping noise); 0: keep all")
    p.add_argument("--compressed-loss", type=float, default=0.0, metavar="W",
                   help="W >= 0: add W x a power-law compressed spectral loss (Braun & Tashev 2021; "
                        "tracks PESQ more closely) to L1 + multi-resolution STFT; 0: off")
    p.add_argument("--snr-level", choices=SNR_LEVELS, default=DEFAULT_SNR_LEVEL,
                   help="speech power the SNR refers to: active speech frames, as the Valentini set "
                        "(ITU-T P.56), or the whole segment with its pauses (before 2026-11-21)")
    p.add_argument("--seed", type=int, default=0, help="random seed, >= 0")
    p.add_argument("--cache", metavar="DIR",
                   help="folder caching decoded audio (default: OUT/cache; '' disables)")
    p.add_argument("--out", required=True, help="run folder (checkpoints, history)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from OUT/last (same --variant)")
    p.add_argument("--quiet", action="store_true", help="print no progress")
    p.set_defaults(func=run)


def run(args) -> int:
    from tfdenoise.train import TrainConfig, train

    config = TrainConfig(
        variant=args.variant.lower(), speech=args.speech, noise=args.noise, out=args.out,
        epochs=args.epochs, batch=args.batch, learning_rate=args.lr, final_learning_rate=args.lr_final,
        segment_seconds=args.segment, segments_per_epoch=args.segments_per_epoch,
        valid_fraction=args.valid_fraction, valid_pairs=args.valid_pairs, valid_pesq=args.valid_pesq,
        snr_db=tuple(args.snr), snr_level=args.snr_level,
        noise_exclude=tuple(args.exclude_noise), synthetic_noise=args.synthetic_noise,
        min_clean_snr=args.min_clean_snr, compressed_loss=args.compressed_loss, seed=args.seed, cache_dir=args.cache)
    best = train(config, resume=args.resume, verbose=0 if args.quiet else 1)
    print(f"best checkpoint: {best}")
    return 0
