"""Run an exported TinyDenoiser ``.tflite`` file frame by frame.

Files written by :mod:`converters.export` have one signature (``serving_default``) whose
inputs are ``frame`` ``[1, 1, 257]`` plus, for GRU models, the states ``h0``, ``h1``; its
outputs are ``mask`` ``[1, 1, 257]`` plus, for GRU, ``h0_out``, ``h1_out``.  LSTM models
keep their states inside the interpreter (variable tensors of the fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` op), so they have no state inputs.  Inputs or outputs of
integer type (INT8 states of quantized GRU models) are (de)quantized here.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from tfdenoise.errors import InputError, ModelError, TFLiteFormatError
from tfdenoise.quiet import native_stderr_muted
from tfdenoise.stft import N_BINS

BACKENDS = ("litert", "tflite-runtime")
SIGNATURE = "serving_default"


@dataclass(frozen=True)
class IOTensor:
    """One signature input or output and its quantization (scale 0 = float)."""

    name: str
    index: int
    shape: tuple[int, ...]
    dtype: Any
    scale: float
    zero_point: int

    def to_float(self, x: np.ndarray) -> np.ndarray:
        if self.scale == 0.0:
            return np.asarray(x, np.float32)
        return ((x.astype(np.float32) - self.zero_point) * self.scale).astype(np.float32)

    def from_float(self, x: np.ndarray) -> np.ndarray:
        if self.scale == 0.0:
            return np.asarray(x, self.dtype).reshape(self.shape)
        info = np.iinfo(self.dtype)
        q = np.round(np.asarray(x, np.float32) / self.scale) + self.zero_point
        return np.clip(q, info.min, info.max).astype(self.dtype).reshape(self.shape)


def _interpreter_class(backend: str):
    if backend == "litert":
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    if backend == "tflite-runtime":
        try:
            from tflite_runtime.interpreter import Interpreter
        except ImportError:
            raise InputError("backend 'tflite-runtime' needs the tflite-runtime package "
                             "(pip install tfdenoise[tflite-runtime]); use --backend litert") from None
        return Interpreter
    raise InputError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


def check_flatbuffer(data: bytes, path: str | os.PathLike = "<bytes>") -> None:
    """Raise :class:`TFLiteFormatError` unless ``data`` is a complete TFLite model.

    Parsing is the ``targets`` reader's (flatbuffer bindings only, no TensorFlow import).
    """
    from tfdenoise.targets.reader import parse_tflite

    graph = parse_tflite(data, str(path))
    if not graph.subgraphs or not graph.subgraphs[0].operators:
        raise TFLiteFormatError("corrupt or truncated TFLite file (no operators)", path)


def _io(details: dict) -> IOTensor:
    q = details.get("quantization_parameters", {})
    scales = q.get("scales", np.zeros(0))
    zps = q.get("zero_points", np.zeros(0))
    return IOTensor(details["name"], int(details["index"]), tuple(int(s) for s in details["shape"]),
                    details["dtype"], float(scales[0]) if len(scales) else 0.0,
                    int(zps[0]) if len(zps) else 0)


class TFLiteDenoiser:
    """A TinyDenoiser ``.tflite`` file behind the same interface as the Keras model."""

    def __init__(self, path: str | os.PathLike | bytes, backend: str = "litert",
                 preserve_all_tensors: bool = False) -> None:
        if isinstance(path, (bytes, bytearray)):
            self.path, self.data = Path("<memory>"), bytes(path)
        else:
            self.path = Path(path)
            if not self.path.is_file():
                raise ModelError("no such .tflite file", self.path)
            self.data = self.path.read_bytes()
        check_flatbuffer(self.data, self.path)
        self.backend = backend
        self._cls = _interpreter_class(backend)
        self._preserve = preserve_all_tensors
        self.interpreter = self._new_interpreter()
        sig = self.interpreter.get_signature_list().get(SIGNATURE)
        if sig is None or "frame" not in sig["inputs"] or "mask" not in sig["outputs"]:
            raise ModelError("not a tfdenoise model (needs signature inputs 'frame' and "
                             "outputs 'mask')", self.path)
        runner = self.interpreter.get_signature_runner(SIGNATURE)
        self.inputs = {k: _io(v) for k, v in runner.get_input_details().items()}
        self.outputs = {k: _io(v) for k, v in runner.get_output_details().items()}
        self.state_names = tuple(n for n in ("h0", "c0", "h1", "c1") if n in self.inputs)
        missing = [n for n in self.state_names if f"{n}_out" not in self.outputs]
        if missing:
            raise ModelError(f"state inputs without outputs: {', '.join(missing)}", self.path)

    def _new_interpreter(self):
        kwargs: dict[str, Any] = {"model_content": self.data}
        if self._preserve:
            kwargs["experimental_preserve_all_tensors"] = True
        try:
            with warnings.catch_warnings():
                # Reading every intermediate tensor is the point of calibration here, not
                # the debugging mistake LiteRT's warning about this option assumes.
                warnings.filterwarnings("ignore", message=".*preserve_all_tensors")
                with native_stderr_muted():
                    it = self._cls(**kwargs)
                    it.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise TFLiteFormatError(f"the interpreter rejects the file "
                                    f"({str(exc).splitlines()[0][:120]})", self.path) from None
        return it

    @property
    def metadata(self) -> dict | None:
        from tfdenoise.converters.metadata import read_metadata

        return read_metadata(self.data, self.path)

    def stepper(self, on_step: Callable[[Any], None] | None = None
                ) -> Callable[[np.ndarray], np.ndarray]:
        """A fresh stateful ``frame[257] -> gains[257]``; ``on_step(interpreter)`` after each."""
        it = self._new_interpreter()
        runner = it.get_signature_runner(SIGNATURE)
        frame_io, mask_io = self.inputs["frame"], self.outputs["mask"]
        state = {n: self.inputs[n].from_float(np.zeros(self.inputs[n].shape, np.float32))
                 for n in self.state_names}

        def step(frame: np.ndarray) -> np.ndarray:
            out = runner(frame=frame_io.from_float(np.reshape(frame, (1, 1, N_BINS))), **state)
            for n in self.state_names:
                o, i = self.outputs[f"{n}_out"], self.inputs[n]
                raw = out[f"{n}_out"]
                state[n] = raw if (o.dtype == i.dtype and o.scale == i.scale
                                   and o.zero_point == i.zero_point) else i.from_float(o.to_float(raw))
            if on_step is not None:
                on_step(it)
            return mask_io.to_float(out["mask"]).reshape(N_BINS)

        return step

    def streaming_mask(self) -> Callable[[np.ndarray], np.ndarray]:
        """A stateful function ``magnitudes[257] -> gains[257]`` starting from zero state."""
        return self.stepper()

    def offline_mask(self, magnitudes: np.ndarray) -> np.ndarray:
        """Gains ``[T, 257]`` for all frames, run frame by frame from zero state."""
        step = self.stepper()
        mags = np.asarray(magnitudes, np.float32).reshape(-1, N_BINS)
        return np.stack([step(f) for f in mags]) if len(mags) else np.zeros((0, N_BINS), np.float32)
