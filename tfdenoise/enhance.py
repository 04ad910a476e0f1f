"""Enhance audio with a TinyDenoiser: a Keras checkpoint, a ``.tflite`` model or the default.

A *model* is anything with ``streaming_mask() -> (magnitudes[257] -> gains[257])`` that
keeps its own recurrent state (:class:`tfdenoise.models.TinyDenoiser`,
``converters.interpreter.TFLiteDenoiser``).  Enhancement always runs frame by frame, as on
the device (:func:`tfdenoise.stft.process_streaming`), and returns as many samples as it got.

Files are processed in parallel by a process pool whose workers each load the model once
(:func:`map_with_model`, also used by :mod:`tfdenoise.evaluate`).
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
from tfdenoise.errors import InputError, ModelError
from tfdenoise.stft import process_streaming


class StreamingModel(Protocol):
    """What :func:`enhance_signal` needs from a model."""

    def streaming_mask(self) -> Callable[[np.ndarray], np.ndarray]: ...


# -- models ---------------------------------------------------------------------------------

def resolve_model(spec: str | os.PathLike | None) -> Path:
    """Check a model spec cheaply (no TensorFlow) and return its path.

    ``None`` means the shipped default checkpoint; a path ending in ``.tflite`` must be a
    file; anything else must be a checkpoint folder with a readable ``config.json``.
    """
    if spec is None:
        from tfdenoise.pretrained import default_checkpoint

        return default_checkpoint()
    path = Path(spec)
    if path.suffix.lower() == ".tflite":
        if not path.is_file():
            raise ModelError("no such .tflite model file", path)
        return path
    if path.is_dir():
        from tfdenoise.models import read_config

        read_config(path)  # raises ModelError for a folder that is not a checkpoint
        return path
    if path.exists():
        raise ModelError("not a checkpoint folder or a .tflite model", path)
    raise ModelError("no such checkpoint folder or .tflite model", path)


def load_model(spec: str | os.PathLike | None, backend: str = "litert") -> StreamingModel:
    """Load a checkpoint folder, a ``MODEL.tflite`` or (``None``) the default model.

    ``backend`` picks the interpreter of ``.tflite`` files (``litert`` or ``tflite-runtime``).
    """
    path = resolve_model(spec)
    if path.suffix.lower() == ".tflite":
        try:
            from tfdenoise.converters.interpreter import TFLiteDenoiser
        except ImportError as exc:
            raise ModelError(f"TFLite inference is not available ({exc})", path) from exc
        return TFLiteDenoiser(path, backend=backend)
    from tfdenoise.models import load_checkpoint

    return load_checkpoint(path)


def enhance_signal(x: np.ndarray, model: StreamingModel) -> np.ndarray:
    """Enhance a 16 kHz mono signal frame by frame; the output has ``len(x)`` samples."""
    x = audio.check_signal(x, "input signal")
    return process_streaming(x, model.streaming_mask())


# -- process pool with one model per worker -------------------------------------------------

_WORKER_MODEL: Any = None


def _init_worker(spec: str | None, loader: Callable[[str | None], Any]) -> None:
    global _WORKER_MODEL
    # Workers share the machine: one TensorFlow thread each avoids oversubscription.
    for var in ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS", "OMP_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    _WORKER_MODEL = loader(spec)


def _call_with_model(fn: Callable[[Any, Any], Any], item: Any) -> Any:
    return fn(_WORKER_MODEL, item)


def default_jobs(n_items: int) -> int:
    """One worker per CPU core, never more than there are items."""
    return max(1, min(n_items, os.cpu_count() or 1))


def map_with_model(fn: Callable[[Any, Any], Any], items: Sequence[Any], spec: str | None, *,
                   loader: Callable[[str | None], Any] = load_model, jobs: int | None = None,
                   desc: str = "files") -> list[Any]:
    """``[fn(model, item) for item in items]`` in a process pool, results in input order.

    Every worker calls ``loader(spec)`` once.  ``fn`` and ``loader`` must be module-level
    functions (workers are spawned).  ``jobs=1`` (or a single item) runs in this process.
    A tqdm progress bar goes to stderr when it is a terminal.  The first error stops the
    run and is raised here.
    """
    from tqdm import tqdm

    if jobs is not None and jobs < 1:
        raise InputError(f"--jobs must be at least 1, got {jobs}")
    jobs = default_jobs(len(items)) if jobs is None else min(jobs, max(1, len(items)))
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
                             initargs=(spec, loader)) as pool:
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

def _enhance_file(model: StreamingModel, job: tuple[Path, Path]) -> Path:
    src, dst = job
    return audio.write(dst, enhance_signal(audio.read(src), model))


def plan_outputs(inputs: str | os.PathLike, out: str | os.PathLike) -> list[tuple[Path, Path]]:
    """``(input, output)`` wav paths: a file to a file (or into a folder), a folder to a folder.

    Outputs are always 16 kHz PCM16 ``.wav``; a folder's layout is mirrored below ``out``.
    """
    src, out = Path(inputs), Path(out)
    if src.is_file():
        if out.is_dir() or not out.suffix:
            dst = out / f"{src.stem}.wav"
        elif out.suffix.lower() == ".wav":
            dst = out
        else:
            raise InputError("output file must end in .wav", out)
        if dst.resolve() == src.resolve():
            raise InputError("output would overwrite the input file", dst)
        return [(src, dst)]
    if not src.exists():
        raise InputError("no such input file or folder", src)
    files = audio.list_audio(src)
    if not files:
        raise InputError("folder holds no audio files (.wav, .flac, .ogg, .opus)", src)
    if out.exists() and not out.is_dir():
        raise InputError("input is a folder, so the output must be a folder", out)
    jobs, seen = [], {}
    for f in files:
        dst = out / f.relative_to(src).with_suffix(".wav")
        if dst in seen:
            raise InputError(f"would be written twice (also from {seen[dst].name})", dst)
        if dst.resolve() == f.resolve():
            raise InputError("output would overwrite the input file", dst)
        seen[dst] = f
        jobs.append((f, dst))
    return jobs


def enhance_files(inputs: str | os.PathLike, out: str | os.PathLike,
                  model_spec: str | os.PathLike | None = None,
                  jobs: int | None = None) -> list[Path]:
    """Enhance a file or every audio file of a folder; return the written wav paths.

    Each output has the duration (sample count at 16 kHz) of its input.  The model spec is
    checked before any worker starts; outputs are written atomically.
    """
    plan = plan_outputs(inputs, out)
    spec = str(resolve_model(model_spec))
    return map_with_model(_enhance_file, plan, spec, jobs=jobs, desc="enhance")

