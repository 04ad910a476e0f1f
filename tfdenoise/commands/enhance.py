"""``tfdenoise enhance IN.wav|DIR -o OUT [--model CHECKPOINT|MODEL.tflite] [--jobs N]``."""
from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser(
        "enhance", help="denoise a wav file or every audio file of a folder",
        description="Denoise audio frame by frame (streaming, as on the device). Outputs are "
                    "16 kHz PCM16 wav files with the duration of their inputs.")
    p.add_argument("input", help="input audio file or folder")
    p.add_argument("-o", "--output", required=True,
                   help="output .wav file, or folder (required for a folder input)")
    p.add_argument("--model", default=None, metavar="CHECKPOINT|MODEL.tflite",
                   help="checkpoint folder or .tflite model (default: the shipped model)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="parallel worker processes (default: one per CPU core)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfdenoise.enhance import enhance_files

    for path in enhance_files(args.input, args.output, args.model, args.jobs):
        print(path)
    return 0
