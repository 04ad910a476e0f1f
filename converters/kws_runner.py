"""Run a keyword-spotting ``.tflite`` behind the interface of every KWS model
(:class:`~tfdenoise.kws.models.KwsClassifier`: ``labels``, ``features``, ``predict_windows``,
``offline_probs``, ``stream``), the one LiteRT runner of KWS files.

Files written by :mod:`tfdenoise.converters.kws` carry the ``tfdenoise`` metadata of the KWS
family: the runner takes the labels and the feature config from there.  A file without any
``tfdenoise`` metadata (converted by hand with the stock ``TFLiteConverter``) is read as the
KWS network whose input shape it has (``[1, 49, 40]`` dnn, ``[1, 30, 40]`` cnn, ``[1, 49, 10]``
dscnn), with that network's features, and its labels come from a sidecar next to it:
``<stem>.json`` or ``config.json`` (a KWS checkpoint config) with ``"labels"``.  A file with
a denoiser's metadata is refused.

INT8 inputs and outputs are (de)quantized with their scale and zero point.  A file whose
input has a dynamic batch dimension runs a whole batch of windows per invoke; the exported
files (batch 1) run one window per invoke.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from tfdenoise.errors import InputError, ModelError
from tfdenoise.kws.features import FeatureConfig
from tfdenoise.kws.layertable import MODELS, KwsSpec
from tfdenoise.kws.models import KwsClassifier
from tfdenoise.models import CONFIG_FILE
from tfdenoise.quiet import native_stderr_muted

from tfdenoise.converters import metadata
from tfdenoise.converters.interpreter import _interpreter_class, _io, check_flatbuffer


class TFLiteKws(KwsClassifier):
    """A KWS ``.tflite`` file (a path, or its bytes) run by LiteRT (``backend``: ``litert`` or
    ``tflite-runtime``).

    ``predict_windows`` quantizes the float feature windows with the input tensor's scale and
    zero point (INT8 files) and dequantizes the output; ``labels`` and ``features`` come from
    the file's metadata (or, for a file without any, from its input shape and a sidecar).
    :meth:`stream` is the streaming loop (one decision per hop).
    """

    def __init__(self, path_or_bytes: str | os.PathLike | bytes, backend: str = "litert") -> None:
        if isinstance(path_or_bytes, (bytes, bytearray)):
            self.path, self.data = Path("<memory>"), bytes(path_or_bytes)
        else:
            self.path = Path(path_or_bytes)
            if not self.path.is_file():
                raise ModelError("no such .tflite file", self.path)
            self.data = self.path.read_bytes()
        check_flatbuffer(self.data, self.path)
        meta = metadata.read_metadata(self.data, self.path)
        if meta is not None and not metadata.is_kws(meta):
            raise ModelError("not a tfdenoise keyword-spotting model (no \"family\": \"kws\" "
                             "metadata)", self.path)
        self.metadata: dict = meta or {}
        self.backend = backend
        self.interpreter = _new_interpreter(self.data, self.path, backend)
        (inp,), (out,) = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        self.input, self.output = _io(inp), _io(out)
        if meta is None:
            self._from_shape_and_sidecar()
        else:
            self._from_metadata(meta)
        want = (1, self.features.window_frames, self.features.n_features)
        if self.input.shape != want or self.output.shape != (1, len(self.labels)):
            raise ModelError(f"input {list(self.input.shape)} / output {list(self.output.shape)} do "
                             f"not match the metadata ({list(want)}, {len(self.labels)} labels)",
                             self.path)
        self._batched = _try_batch(self.interpreter, inp)

    def _from_metadata(self, meta: dict) -> None:
        try:
            self.labels: list[str] = [str(x) for x in meta["labels"]]
            self.features: FeatureConfig = FeatureConfig(**meta["features"])
        except (KeyError, TypeError, InputError) as exc:
            raise ModelError(f"bad KWS metadata ({exc})", self.path) from None
        self.model_name: str = str(meta.get("model", "?"))
        self.precision: str = str(meta.get("precision", "?"))

    def _from_shape_and_sidecar(self) -> None:
        spec = _network_of(self.input.shape, self.path)
        self.features = spec.features
        self.labels = _sidecar_labels(self.path, self.output.shape[-1])
        self.model_name, self.precision = spec.name.value, "?"

    @property
    def name(self) -> str:
        return self.model_name

    def predict_windows(self, windows: np.ndarray) -> np.ndarray:
        """Probabilities ``[n, n_classes]`` (float32) of windows ``[n, window_frames, n_features]``."""
        x = np.asarray(windows, np.float32)
        if x.ndim == 2:
            x = x[None]
        want = (self.window_frames, self.n_features)
        if x.ndim != 3 or tuple(x.shape[1:]) != want:
            raise InputError(f"{self.name} expects windows [n, {want[0]}, {want[1]}], got shape "
                             f"{list(x.shape)}")
        if self._batched and len(x):
            return self._invoke_batch(x)
        it, out = self.interpreter, np.empty((len(x), self.n_classes), np.float32)
        for i, w in enumerate(x):
            it.set_tensor(self.input.index, self.input.from_float(w[None]))
            it.invoke()
            out[i] = self.output.to_float(it.get_tensor(self.output.index)).reshape(-1)
        return out

    def _invoke_batch(self, x: np.ndarray) -> np.ndarray:
        """All windows in one invoke (the input resized to ``[n, T, F]``)."""
        it, inp = self.interpreter, self.input
        it.resize_tensor_input(inp.index, [len(x), *inp.shape[1:]])
        it.allocate_tensors()
        q = x.astype(inp.dtype) if inp.scale == 0.0 else np.concatenate([inp.from_float(w[None]) for w in x])
        it.set_tensor(inp.index, q)
        it.invoke()
        return self.output.to_float(it.get_tensor(self.output.index)).reshape(len(x), -1)


def _new_interpreter(data: bytes, path: Path, backend: str):
    try:
        with native_stderr_muted():
            interpreter = _interpreter_class(backend)(model_content=data)
            interpreter.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        raise ModelError(f"the interpreter rejects the file ({str(exc).splitlines()[0][:120]})",
                         path) from None
    return interpreter


def _network_of(shape: tuple[int, ...], path: Path) -> KwsSpec:
    """The KWS network whose input is ``shape`` (``[1, window_frames, n_features]``)."""
    matches = [spec for spec in MODELS.values() if (1, *spec.input_shape) == tuple(shape)]
    if not matches:
        known = ", ".join(f"{s.name}: [1, {s.input_shape[0]}, {s.input_shape[1]}]" for s in MODELS.values())
        raise ModelError(f"no tfdenoise metadata, and the input shape {list(shape)} is none of the "
                         f"KWS networks' ({known})", path)
    return matches[0]


def _sidecar_labels(path: Path, n: int) -> list[str]:
    """The ``"labels"`` of ``<stem>.json`` or ``config.json`` next to a file without metadata."""
    for side in (path.with_suffix(".json"), path.parent / CONFIG_FILE):
        if side.is_file():
            try:
                cfg = json.loads(side.read_text())
            except (ValueError, OSError):
                continue
            labels = cfg.get("labels") if isinstance(cfg, dict) else None
            if isinstance(labels, list) and len(labels) == n and all(isinstance(x, str) for x in labels):
                return list(labels)
    raise ModelError(f"no tfdenoise metadata and no labels for its {n} outputs: put a config.json "
                     f"or {path.stem}.json with \"labels\" next to it", path)


def _try_batch(interp, inp: dict) -> bool:
    """Resize the input to a dynamic batch if the file allows it (True), else one window per
    invoke (False)."""
    if inp["shape"][0] != 1 or "shape_signature" not in inp or inp["shape_signature"][0] != -1:
        return False
    try:
        interp.resize_tensor_input(inp["index"], [2, *inp["shape"][1:]])
        interp.allocate_tensors()
        ok = True
    except Exception:  # the interpreter raises several types when a file cannot resize
        ok = False
    interp.resize_tensor_input(inp["index"], list(inp["shape"]))
    interp.allocate_tensors()
    return ok


__all__ = ["TFLiteKws"]
