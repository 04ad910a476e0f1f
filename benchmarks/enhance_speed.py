"""Host enhancement speed: the fast paths beside today's frame-by-frame Keras path, in one run.

Per variant (the shipped checkpoint and its shipped mixed FP16-INT8 ``.tflite``), on the same
real signal (the first ``--seconds`` of the bundled noisy test files, end to end), one run
times four paths of :func:`tfdenoise.enhance.enhance_signal`, interleaved, best of
``--repeats`` after one warm-up call each (graph tracing excluded):

* ``keras step``: the Keras step model once per 100-sample hop
  (:func:`tfdenoise.stft.process_streaming`; ``enhance --streaming``, the only Keras path
  before issue 18);
* ``checkpoint``: the default Keras path, the compiled sequence model over blocks of frames
  (:func:`tfdenoise.stft.process_blocks`);
* ``tflite runner``: the ``.tflite`` loop before issue 18, LiteRT's signature runner called
  once per hop (``TFLiteDenoiser.runner_stepper``, kept as the reference);
* ``tflite``: the default ``.tflite`` path, the same frames through the preallocated LiteRT
  loop (``set_tensor`` / ``invoke`` / ``get_tensor`` per frame); its output must be
  bit-identical to ``tflite runner``'s (printed).

``x RT`` = audio duration / processing time (30x = 0.208 ms per 6.25 ms hop).  Then, end to
end through the command line (process start, imports and model loading included):
``tfdenoise enhance`` of the 10 noisy test files, and of ``--batch-copies`` copies of them,
with a process pool of 2 workers (``--jobs 2``) against one process using TensorFlow's
intra-op threads (``--jobs 1``; the default, :data:`tfdenoise.enhance.DEFAULT_JOBS`), and
the time of ``tfdenoise validate --table`` on the 10 pairs.  Every time is given as wall
and CPU seconds (CPU: the process, all its threads, and its worker processes).  The machine
is shared: the load average is printed before and after, the CPU times are the steadier
measure, and only ratios measured in the same run compare.  Usage:
``python benchmarks/enhance_speed.py [--seconds 4] [--repeats 5] [--variants lstm128 ...]
[--batch-copies 6] [--no-batch] [--no-table]``.
"""
from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

from tfdenoise import SAMPLE_RATE, pretrained
from tfdenoise.converters.interpreter import TFLiteDenoiser
from tfdenoise.data import list_pairs, load_pair
from tfdenoise.enhance import enhance_signal
from tfdenoise.models import VARIANTS, load_checkpoint
from tfdenoise.samples import pairs_dir
from tfdenoise.stft import num_frames, padded_length, process_streaming

PATHS = ("keras step", "checkpoint", "tflite runner", "tflite")
CLI = [sys.executable, "-c", "import sys; from tfdenoise.cli import main; sys.exit(main())"]


def test_signal(pairs: Path, seconds: float) -> np.ndarray:
    """The first ``seconds`` of the noisy files of ``pairs``, end to end."""
    x = np.concatenate([load_pair(p)[0] for p in list_pairs(pairs)])
    return x[:int(seconds * SAMPLE_RATE)]


def interleaved_best(fns: dict[str, Callable[[], object]], repeats: int
                     ) -> dict[str, tuple[float, float]]:
    """Best ``(wall, CPU)`` seconds of each function (CPU: this process, all its threads);
    one warm-up call each, then ``repeats`` rounds taking the functions in turn."""
    for fn in fns.values():
        fn()
    best = {k: (float("inf"), float("inf")) for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            w0, c0 = time.perf_counter(), time.process_time()
            fn()
            w, c = time.perf_counter() - w0, time.process_time() - c0
            best[k] = (min(best[k][0], w), min(best[k][1], c))
    return best


def measure_variant(variant: str, x: np.ndarray, repeats: int) -> dict:
    """Times of the four paths of one shipped variant on ``x``, and their agreement."""
    model = load_checkpoint(pretrained.checkpoint(variant))
    den = TFLiteDenoiser(pretrained.tflite(variant, "mixed"))
    fns = {"keras step": lambda: enhance_signal(x, model, streaming=True),
           "checkpoint": lambda: enhance_signal(x, model),
           "tflite runner": lambda: process_streaming(x, den.runner_stepper()),
           "tflite": lambda: enhance_signal(x, den)}
    times = interleaved_best(fns, repeats)
    outs = {k: fn() for k, fn in fns.items()}
    return {"variant": variant.upper(), "seconds": len(x) / SAMPLE_RATE, "times": times,
            "hops": num_frames(padded_length(len(x))),
            "keras_max_diff": float(np.max(np.abs(outs["keras step"] - outs["checkpoint"]))),
            "tflite_identical": bool(np.array_equal(outs["tflite runner"], outs["tflite"]))}


def cli_seconds(*args: str) -> tuple[float, float]:
    """``(wall, CPU)`` seconds of one ``tfdenoise`` command in a fresh process (CPU: it and
    its worker processes); its failure is raised."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"tfdenoise {' '.join(map(str, args))} failed: {proc.stderr[-500:]}")
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def measure_batch(noisy: Path, tmp: Path, reference: bool = True
                  ) -> list[tuple[str, tuple[float, float]]]:
    """``tfdenoise enhance`` of the files in ``noisy`` (LSTM128), pool against one process;
    ``reference`` adds today's frame-by-frame Keras path (``--streaming``, pool of 2)."""
    mixed = pretrained.default_tflite("mixed")
    runs = [("checkpoint, pool of 2 (--jobs 2)", ["--jobs", "2"]),
            ("checkpoint, 1 process, TF threads (--jobs 1)", ["--jobs", "1"]),
            ("keras step (--streaming --jobs 2)", ["--streaming", "--jobs", "2"]),
            (".tflite mixed, pool of 2 (--jobs 2)", ["--model", mixed, "--jobs", "2"]),
            (".tflite mixed, 1 process (--jobs 1)", ["--model", mixed, "--jobs", "1"])]
    runs = [r for r in runs if reference or "--streaming" not in r[1]]
    return [(label, cli_seconds("enhance", noisy, "-o", tmp / f"enh{i}", *extra))
            for i, (label, extra) in enumerate(runs)]


def print_batches(pairs: Path, tmp: Path, copies: int) -> None:
    """The enhance runs on the 10 noisy test files, then on ``copies`` copies of them."""
    noisy = pairs / "noisy"
    files = sorted(noisy.glob("*.wav"))
    audio_s = sum(len(load_pair(q)[0]) for q in list_pairs(pairs)) / SAMPLE_RATE
    batches = [(noisy, len(files), audio_s, True)]
    if copies > 1:
        big = tmp / "copies"
        big.mkdir()
        for k in range(copies):
            for f in files:
                (big / f"{f.stem}_{k}.wav").write_bytes(f.read_bytes())
        batches.append((big, copies * len(files), copies * audio_s, False))
    for folder, n, seconds, reference in batches:
        print(f"\ntfdenoise enhance of {n} noisy test files ({seconds:.1f} s of audio), LSTM128, "
              "the whole command (start, imports, model loads)")
        for label, (wall, cpu) in measure_batch(folder, tmp / f"out{n}", reference):
            print(f"  {label:46} {wall:6.2f} s wall ({seconds / wall:5.1f}x real time), "
                  f"{cpu:6.2f} s CPU")


def print_variants(rows: list[dict], repeats: int) -> None:
    """x real time of each path (wall and CPU) and the speed-ups, one column per variant."""
    print(f"\nper variant, {rows[0]['seconds']:.2f} s of real noisy speech, best of {repeats}; "
          "x real time = audio duration / processing time, wall (CPU time of the process)")
    head = f"{'':28}" + "".join(f"{r['variant']:>17}" for r in rows)
    print(head)
    print("-" * len(head))
    for path in PATHS:
        cells = (r["seconds"] / np.array(r["times"][path]) for r in rows)
        print(f"{path + ' x RT':28}" + "".join(f"{w:>8.1f} ({c:>6.1f})" for w, c in cells))
    for a, b in (("checkpoint", "keras step"), ("tflite", "keras step"),
                 ("tflite", "tflite runner")):
        cells = (np.array(r["times"][b]) / np.array(r["times"][a]) for r in rows)
        print(f"{a + ' / ' + b + ' speed':28}"
              + "".join(f"{w:>7.1f}x ({c:>5.1f}x)" for w, c in cells))
    for path in ("checkpoint", "tflite"):
        cells = (1000 * np.array(r["times"][path]) / r["hops"] for r in rows)
        print(f"{'ms per 6.25 ms hop, ' + path:28}" + "".join(f"{w:>8.3f} ({c:>6.3f})"
                                                              for w, c in cells))
    for r in rows:
        print(f"{r['variant']}: checkpoint vs keras step max |diff| {r['keras_max_diff']:.1e}; "
              f"tflite vs tflite runner "
              f"{'bit-identical' if r['tflite_identical'] else 'DIFFERENT'}")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--seconds", type=float, default=4.0, help="test signal length")
    p.add_argument("--repeats", type=int, default=5, help="timed runs per path (best kept)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--pairs", type=Path, default=pairs_dir(), help="the 10 test pairs")
    p.add_argument("--no-batch", action="store_true", help="skip the enhance pool/threads runs")
    p.add_argument("--batch-copies", type=int, default=6,
                   help="also enhance this many copies of the 10 files (1: only the 10)")
    p.add_argument("--no-table", action="store_true", help="skip validate --table")
    args = p.parse_args(argv)
    print("load average (1, 5, 15 min) at start: %.2f %.2f %.2f; %d CPUs"
          % (*os.getloadavg(), os.cpu_count() or 0))
    x = test_signal(args.pairs, args.seconds)
    rows = [measure_variant(v, x, args.repeats) for v in args.variants]
    print_variants(rows, args.repeats)
    with tempfile.TemporaryDirectory(prefix="tfdenoise-bench-") as tmp:
        if not args.no_batch:
            print_batches(args.pairs, Path(tmp), args.batch_copies)
        if not args.no_table:
            wall, cpu = cli_seconds("validate", "--table", "lstm128", "--pairs", args.pairs,
                                    "--json", Path(tmp) / "table.json")
            print(f"\ntfdenoise validate --table lstm128 on the 10 pairs (6 exports, each "
                  f"scored): {wall:.1f} s wall, {cpu:.1f} s CPU")
    print("load average (1, 5, 15 min) at end: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
