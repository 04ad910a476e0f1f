"""Enhance audio with a TinyDenoiser: a Keras checkpoint, a ``.tflite`` model or the default.

A *model* (:class:`DenoiserModel`: :class:`tfdenoise.models.TinyDenoiser`,
``converters.interpreter.TFLiteDenoiser``) gives two stateful mask functions, and
:func:`enhance_signal` returns as many samples as it got with either:

* ``sequence_mask()`` (the default): the STFT of a block of frames at once
  (:func:`tfdenoise.stft.process_blocks`), then a Keras checkpoint's compiled sequence model
  over the whole block, or a ``.tflite`` file's LiteRT loop, one ``invoke()`` per frame as
  on the MCU;
* ``streaming_mask()`` (``streaming=True``, ``enhance --streaming``): the device's
  hop-by-hop processing (:func:`tfdenoise.stft.process_streaming`), one model call per
  100-sample hop, the Keras step model for a checkpoint.  The reference the fast path is
  tested against: the models are causal, so both give the same gains to float rounding
  (bit for bit for a ``.tflite``).

Files are processed in this process, the model loaded once, or with ``jobs`` > 1 by a
process pool whose workers each load the model once (:func:`map_with_model`, also used by
:mod:`tfdenoise.evaluate`); :data:`DEFAULT_JOBS` says why one process is the default.
"""
from __future__ import annotations

import multiprocessing
import os
import sys
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from tfdenoise import audio
from tfdenoise.errors import (BatchError, InputError, TfdenoiseError, show_warnings_as_lines, warn,
                              warning_prefix)
from tfdenoise.fileio import check_outputs
from tfdenoise.modelref import ModelRef, resolve
from tfdenoise.stft import process_blocks, process_streaming
from tfdenoise.vocab import N_BINS


class DenoiserModel(Protocol):
    """What :func:`enhance_signal` needs from a model: two fresh stateful mask functions."""

    def sequence_mask(self) -> Callable[[np.ndarray], np.ndarray]:
        """``magnitudes[T, 257] -> gains[T, 257]``, state carried from call to call."""

    def streaming_mask(self) -> Callable[[np.ndarray], np.ndarray]:
        """``magnitudes[257] -> gains[257]``, one frame per call."""



# -- models ---------------------------------------------------------------------------------

def load_streaming_model(spec: "str | os.PathLike | ModelRef | None",
                         backend: str = "litert") -> DenoiserModel:
    """The streaming model a spec names (:func:`tfdenoise.modelref.resolve`): a Keras
    checkpoint, a shipped variant, the default (``None``), a ``MODEL.tflite`` run in
    ``backend`` (``litert`` or ``tflite-runtime``), or a user's Keras model that keeps the
    denoiser's I/O contract (257 magnitudes in, 257 gains out)."""
    ref = resolve(spec)
    if ref.is_tflite:
        from tfdenoise.converters.interpreter import TFLiteDenoiser

        den = TFLiteDenoiser(ref.path, backend=backend)
        shapes = (den.inputs["frame"].shape[2:], den.outputs["mask"].shape[2:])
        if shapes != ((N_BINS,), (N_BINS,)):
            raise InputError(f"takes {list(shapes[0])} and gives {list(shapes[1])} per frame; "
                             f"enhancing audio needs {N_BINS} STFT magnitudes in, {N_BINS} gains out",
                             ref.path)
        return den
    if ref.is_keras:
        from tfdenoise.converters.keras_model import load_keras_model, streamable

        return streamable(load_keras_model(ref.path))
    from tfdenoise.models import load_checkpoint

    return load_checkpoint(ref.path)


def warn_if_random(ref: ModelRef) -> None:
    """Warn when a ``.tflite`` holds random (untrained) weights (``export --variant``)."""
    if ref.is_tflite:
        from tfdenoise.converters.metadata import read_metadata

        if (read_metadata(ref.path.read_bytes(), ref.path) or {}).get("random_weights"):
            warn(f"{ref.path}: holds RANDOM (untrained) weights: its output and scores "
                 "say nothing about a trained model")


#: What to do with input whose peak exceeds full scale (|x| > 1): the output would clip.
OVERRANGE = ("warn", "normalize", "refuse")


def enhance_signal(x: np.ndarray, model: DenoiserModel, overrange: str = "warn",
                   name: str = "input signal", streaming: bool = False) -> np.ndarray:
    """Enhance a 16 kHz mono signal; the output has ``len(x)`` samples.

    ``streaming=False`` runs the model's ``sequence_mask`` on blocks of frames, ``True`` the
    hop-by-hop reference with its ``streaming_mask`` (module docstring).  A peak above 1.0
    (float input) would clip in a PCM16 output: ``overrange`` says whether to warn (and
    clip), scale the input to a 0.99 peak, or refuse with an AudioError.
    """
    x = audio.check_signal(x, name)
    peak = float(np.max(np.abs(x)))
    if peak > 1.0:
        if overrange == "refuse":
            raise audio.AudioError(f"peak {peak:.3g} is above full scale (1.0); rescale it or "
                                   "pass --overrange normalize", name)
        if overrange == "normalize":
            x = x * (0.99 / peak)
        else:
            warn(f"{name}: peak {peak:.3g} is above full scale (1.0): the output will clip; "
                 "--overrange normalize scales the input first")
    if streaming:
        return process_streaming(x, model.streaming_mask())
    return process_blocks(x, model.sequence_mask())


# -- process pool with one model per worker -------------------------------------------------

_WORKER_MODEL: Any = None


def _init_worker(spec: str | None, loader: Callable[[str | None], Any], prefix: str = "tfdenoise") -> None:
    global _WORKER_MODEL
    show_warnings_as_lines(prefix)  # the same prefix as the command's own warnings
    # Workers share the machine: one TensorFlow thread each avoids oversubscription.
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    _WORKER_MODEL = loader(spec)


def _call_with_model(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    return fn(_WORKER_MODEL, item)


#: Processes when ``jobs`` is not given: one, TensorFlow spreading a checkpoint's ops over
#: the cores with its intra-op threads.  Measured faster than a pool of 2 on this shared
#: 2-core machine, for the 10 test pairs and for 60 files (``benchmarks/enhance_speed.py``
#: prints both): each worker pays its own imports and model load (TensorFlow's, ~5 s of CPU,
#: for a checkpoint), which the fast paths' short per-file work does not repay.  ``--jobs 2``
#: starts the pool: for long batches on idle cores.
DEFAULT_JOBS = 1


def map_with_model(fn: Callable[[Any, Any], Any], items: Sequence[Any], spec: str | None, *,
                   loader: Callable[[str | None], Any] = load_streaming_model, jobs: int | None = None,
                   desc: str = "files") -> list[Any]:
    """``[fn(model, item) for item in items]``, in this process or a pool, in input order.

    ``jobs`` (default :data:`DEFAULT_JOBS`) above 1 starts a process pool of that many
    workers (never more than items), each calling ``loader(spec)`` once; ``fn`` and
    ``loader`` must then be module-level functions (workers are spawned).  ``jobs=1`` (or a
    single item) loads the model once here.
    A tqdm progress bar goes to stderr when it is a terminal.  The first error stops the
    run and is raised here.
    """
    from tqdm import tqdm

    if jobs is not None and jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    jobs = min(DEFAULT_JOBS if jobs is None else jobs, max(1, len(items)))
    bar = tqdm(total=len(items), desc=desc, unit="file", file=sys.stderr, disable=None,
               leave=False)
    try:
        if jobs == 1:
            model = loader(spec)
            results = []
            for item in items:
                results.append(fn(model, item))
                bar.update()
            return results
        return _pool_map(fn, items, spec, loader, jobs, bar)
    finally:
        bar.close()


def _pool_map(fn, items, spec, loader, jobs, bar) -> list[Any]:
    ctx = multiprocessing.get_context("spawn")  # fork after TensorFlow init can deadlock
    results: list[Any] = [None] * len(items)
    with ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_init_worker,
                             initargs=(spec, loader, warning_prefix())) as pool:
        futures = {pool.submit(_call_with_model, fn, item): i for i, item in enumerate(items)}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_EXCEPTION)
            for fut in done:
                exc = fut.exception()
                if exc is not None:
                    for other in pending:
                        other.cancel()
                    raise exc
                results[futures[fut]] = fut.result()
                bar.update()
    return results


# -- files ------------------------------------------------------------------------------------

def _enhance_file(model: DenoiserModel, job: tuple[Path, Path, str, bool]
                  ) -> tuple[Path, Path, TfdenoiseError | None]:
    """Enhance one file; a bad file is reported back (``(src, dst, error)``), not raised."""
    src, dst, overrange, streaming = job
    try:
        audio.write(dst, enhance_signal(audio.read(src), model, overrange, name=str(src),
                                        streaming=streaming))
        return src, dst, None
    except TfdenoiseError as exc:
        return src, dst, exc


def plan_outputs(inputs: str | os.PathLike, out: str | os.PathLike, model: ModelRef | None = None
                 ) -> list[tuple[Path, Path]]:
    """``(input, output)`` wav paths: a file to a file (or into a folder), a folder to a folder.

    Outputs are always 16 kHz PCM16 ``.wav``; a folder's layout is mirrored below ``out``,
    which must not lie inside the input folder (a rerun would enhance its own outputs), nor
    overwrite or land inside what ``model`` reads (checked once, before any work).
    """
    model_files, model_folders = (model.files, model.folders) if model is not None else ([], [])
    src, out = Path(inputs), Path(out)
    if src.is_file():
        if out.is_dir() or not out.suffix:
            dst = out / f"{src.stem}.wav"
        elif out.suffix.lower() == ".wav":
            dst = out
        else:
            raise InputError("output file must end in .wav", out)
        check_outputs([dst], inputs=[src, *model_files], input_trees=model_folders)
        return [(src, dst)]
    if not src.exists():
        raise InputError("no such input file or folder", src)
    files = audio.list_audio(src)
    if not files:
        raise InputError("folder holds no audio files (.wav, .flac, .ogg, .opus)", src)
    if out.suffix.lower() in audio.AUDIO_SUFFIXES or (out.exists() and not out.is_dir()):
        raise InputError("input is a folder, so the output must be a folder", out)
    jobs, seen = [], {}
    for f in files:
        dst = out / f.relative_to(src).with_suffix(".wav")
        if dst in seen:
            raise InputError(f"would be written twice (also from {seen[dst].name})", dst)
        seen[dst] = f
        jobs.append((f, dst))
    check_outputs([d for _, d in jobs], [out], inputs=model_files, input_trees=[src, *model_folders])
    return jobs


def enhance_files(inputs: str | os.PathLike, out: str | os.PathLike,
                  model_spec: "str | os.PathLike | ModelRef | None" = None,
                  jobs: int | None = None, overrange: str = "warn",
                  streaming: bool = False) -> list[Path]:
    """Enhance a file or every audio file of a folder; return the written wav paths.

    ``streaming`` selects the hop-by-hop reference path of :func:`enhance_signal`.
    Each output has the duration (sample count at 16 kHz) of its input.  The model spec and
    every output location are checked before any worker starts; outputs are written
    atomically.  A bad file in a folder does not stop the others: they are written, and a
    :class:`BatchError` then lists what failed (its ``written`` holds the outputs).
    """
    if overrange not in OVERRANGE:
        raise InputError(f"--overrange must be one of {', '.join(OVERRANGE)}, got {overrange!r}")
    ref = resolve(model_spec)
    plan = plan_outputs(inputs, out, ref)
    warn_if_random(ref)
    done = map_with_model(_enhance_file, [(s, d, overrange, streaming) for s, d in plan],
                          str(ref.path), jobs=jobs, desc="enhance")
    written = [d for _, d, err in done if err is None]
    failed = [(s, err) for s, _, err in done if err is not None]
    if failed and Path(inputs).is_file():
        raise failed[0][1]
    if failed:
        raise BatchError(f"{len(failed)} of {len(done)} files failed, {len(written)} written; "
                         "failed: " + "; ".join(str(err) for _, err in failed), written, failed)
    return written
