"""Run an exported TinyDenoiser ``.tflite`` file frame by frame.

Files written by :mod:`converters.export` have one signature (``serving_default``) whose
inputs are ``frame`` ``[1, 1, 257]`` plus, for GRU models, the states ``h0``, ``h1``; its
outputs are ``mask`` ``[1, 1, 257]`` plus, for GRU, ``h0_out``, ``h1_out``.  LSTM models
keep their states inside the interpreter (variable tensors of the fused
``UNIDIRECTIONAL_SEQUENCE_LSTM`` op), so they have no state inputs.  Inputs or outputs of
integer type (INT8 states of quantized GRU models) are (de)quantized here.  A user's Keras
model exported by :mod:`tfdenoise.converters.keras_model` has the same signature, with its own
frame and output sizes and states (every input ``<name>`` beside ``frame`` with an output
``<name>_out``: GRU states, causal-conv buffers).

Every path runs the file one frame per ``invoke()``, as the MCU does.  The loop
(:meth:`TFLiteDenoiser.sequence_mask`) resolves tensor indices, dtypes and the state
feedback once; per frame it only calls ``set_tensor`` / ``invoke`` / ``get_tensor`` (the
signature runner would resize and re-allocate every input on every call).  The signature's
tensors are those of the primary subgraph, which ``set_tensor`` / ``get_tensor`` address
(checked when the file is opened).
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
        known = ("h0", "c0", "h1", "c1")
        self.state_names = tuple(n for n in known if n in self.inputs) + tuple(
            sorted(n for n in self.inputs if n not in known and n != "frame"))
        missing = [n for n in self.state_names if f"{n}_out" not in self.outputs]
        if missing:
            raise ModelError(f"state inputs without outputs: {', '.join(missing)}", self.path)
        primary = ({int(d["index"]) for d in self.interpreter.get_input_details()},
                   {int(d["index"]) for d in self.interpreter.get_output_details()})
        if primary != ({t.index for t in self.inputs.values()},
                       {t.index for t in self.outputs.values()}):
            raise ModelError(f"signature {SIGNATURE!r} is not the model's primary subgraph",
                             self.path)

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

    def sequence_mask(self, on_step: Callable[[Any], None] | None = None
                      ) -> Callable[[np.ndarray], np.ndarray]:
        """A fresh stateful ``magnitudes[T, 257] -> gains[T, 257]``, one ``invoke()`` per frame.

        The state runs on from call to call (blocks of one signal, in order), starting from
        zero.  ``on_step(interpreter)`` is called right after each ``invoke()``.
        """
        it = self._new_interpreter()
        set_tensor, get_tensor, invoke = it.set_tensor, it.get_tensor, it.invoke
        frame_io, mask_io = self.inputs["frame"], self.outputs["mask"]
        frame_index, mask_index = frame_io.index, mask_io.index
        float_frame = frame_io.scale == 0.0 and frame_io.dtype == np.float32
        float_mask = mask_io.scale == 0.0 and mask_io.dtype == np.float32
        copied, requantized = [], []  # (input, output) state pairs fed back after each frame
        for n in self.state_names:
            i, o = self.inputs[n], self.outputs[f"{n}_out"]
            set_tensor(i.index, i.from_float(np.zeros(i.shape, np.float32)))
            same = (o.dtype, o.scale, o.zero_point, o.shape) == (i.dtype, i.scale, i.zero_point,
                                                                  i.shape)
            if same:
                copied.append((i.index, o.index))
            else:
                requantized.append((i, o))

        def run(magnitudes: np.ndarray) -> np.ndarray:
            frames = np.ascontiguousarray(magnitudes, np.float32).reshape(-1, *frame_io.shape)
            gains = np.empty((len(frames), *mask_io.shape[2:]), np.float32)
            flat = gains.reshape(len(frames), *mask_io.shape)
            for t in range(len(frames)):
                set_tensor(frame_index,
                           frames[t] if float_frame else frame_io.from_float(frames[t]))
                invoke()
                if on_step is not None:
                    on_step(it)
                flat[t] = get_tensor(mask_index) if float_mask else mask_io.to_float(
                    get_tensor(mask_index))
                for i_index, o_index in copied:
                    set_tensor(i_index, get_tensor(o_index))
                for i, o in requantized:
                    set_tensor(i.index, i.from_float(o.to_float(get_tensor(o.index))))
            return gains

        return run

    def stepper(self, on_step: Callable[[Any], None] | None = None
                ) -> Callable[[np.ndarray], np.ndarray]:
        """A fresh stateful ``frame[257] -> gains[257]``; ``on_step(interpreter)`` after each."""
        run = self.sequence_mask(on_step)
        return lambda frame: run(np.asarray(frame)[None])[0]

    def streaming_mask(self) -> Callable[[np.ndarray], np.ndarray]:
        """A stateful function ``magnitudes[257] -> gains[257]`` starting from zero state."""
        return self.stepper()

    def runner_stepper(self) -> Callable[[np.ndarray], np.ndarray]:
        """:meth:`stepper` through LiteRT's signature runner, states passed by name each frame.

        The loop every path used before :meth:`sequence_mask`; kept as the reference that
        tests and ``benchmarks/enhance_speed.py`` hold the fast loop to, bit for bit.
        """
        runner = self._new_interpreter().get_signature_runner(SIGNATURE)
        frame_io, mask_io = self.inputs["frame"], self.outputs["mask"]
        state = {n: self.inputs[n].from_float(np.zeros(self.inputs[n].shape, np.float32))
                 for n in self.state_names}

        def step(frame: np.ndarray) -> np.ndarray:
            out = runner(frame=frame_io.from_float(np.reshape(frame, frame_io.shape)), **state)
            for n in self.state_names:
                o, i = self.outputs[f"{n}_out"], self.inputs[n]
                raw = out[f"{n}_out"]
                state[n] = raw if (o.dtype == i.dtype and o.scale == i.scale
                                   and o.zero_point == i.zero_point) else i.from_float(o.to_float(raw))
            return mask_io.to_float(out["mask"]).reshape(mask_io.shape[2:])

        return step

    def offline_mask(self, magnitudes: np.ndarray) -> np.ndarray:
        """Gains ``[T, 257]`` for all frames, run frame by frame from zero state."""
        return self.sequence_mask()(magnitudes)
