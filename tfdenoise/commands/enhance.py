"""``tfdenoise enhance IN.wav|DIR -o OUT [--model SPEC] [--jobs N] [--streaming] [--overrange MODE]``."""
from __future__ import annotations

import argparse

from tfdenoise.commands import HelpFormatter

EXAMPLE = """example:
  tfdenoise enhance noisy/ -o enhanced/ --model lstm128
  tfdenoise enhance call.wav -o call.clean.wav --model out/lstm128.mixed.tflite"""


def add_parser(sub) -> None:
    p = sub.add_parser(
        "enhance", help="denoise a wav file or every audio file of a folder",
        formatter_class=HelpFormatter, epilog=EXAMPLE,
        description="Denoise audio with a causal model: a checkpoint's compiled sequence "
                    "model over each file, a .tflite file frame by frame in LiteRT (as on the "
                    "device); --streaming runs hop by hop. Outputs are "
                    "16 kHz PCM16 wav files with the duration of their inputs. Other sample "
                    "rates are resampled (with a warning). In a folder, a bad file does not stop "
                    "the others: they are written, the failures listed, and the exit code is 2.")
    p.add_argument("input", help="input audio file or folder")
    p.add_argument("-o", "--output", required=True,
                   help="output .wav file, or folder (required for a folder input; not inside it)")
    p.add_argument("--model", default=None, metavar="SPEC",
                   help="checkpoint folder, MODEL.tflite or shipped variant name "
                        "(default: the shipped default model)")
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="worker processes, >= 1 (default: 1, one process whose TensorFlow uses every core; "
                        "a pool pays a model load per worker, for long batches on idle cores)")
    p.add_argument("--streaming", action="store_true",
                   help="run hop by hop as on the device (the Keras step model per 100-sample "
                        "hop); the default runs a checkpoint's sequence model over the file, "
                        "same output to float rounding, and a .tflite frame by frame either way")
    p.add_argument("--overrange", choices=("warn", "normalize", "refuse"), default="warn",
                   help="input peaks above full scale: warn (the output clips), normalize "
                        "(scale the input to a 0.99 peak) or refuse the file")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tfdenoise.enhance import enhance_files
    from tfdenoise.errors import BatchError

    try:
        paths = enhance_files(args.input, args.output, args.model, args.jobs, args.overrange,
                              streaming=args.streaming)
    except BatchError as exc:
        for path in exc.written:
            print(path)
        raise
    for path in paths:
        print(path)
    return 0
