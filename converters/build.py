"""Keras TinyDenoiser -> float ``.tflite`` -> calibrated -> quantized flatbuffer.

Deployment graphs (batch 1, one frame per call, no WHILE loop):

* GRU: the ``step`` model; inputs ``frame``, ``h0``, ``h1``; outputs ``mask``, ``h0_out``,
  ``h1_out`` (states are fed back by the caller);
* LSTM: the ``sequence`` model with a fixed ``[1, 1, 257]`` input; the converter fuses each
  LSTM into ``UNIDIRECTIONAL_SEQUENCE_LSTM`` whose states are variable tensors that persist
  across invocations (streaming with sequence length 1).  Only the Keras SavedModel path
  fuses the LSTM (a plain ``tf.function`` gives a WHILE loop, which full-INT8 conversion
  cannot handle), so LSTM models are saved once per model and converted from there.

A user's Keras model (:mod:`tfdenoise.converters.keras_model`) goes the same way: its
``deploy_graph()`` adapter (:class:`TinyGraph` is TinyDenoiser's) gives the step model, the
:class:`DeployIO` signature (GRU states and causal-conv buffers in and out; converted from a
SavedModel when it has LSTM layers), the recipe resolution, the op -> layer map and the metadata.

INT8 ranges: the converter's own calibrator only records min/max, so the model is
converted with ``_experimental_calibrate_only``, every recorded activation range is
replaced by the one :mod:`converters.calibration` computed, and ``mlir_quantize`` then
quantizes (per tensor) the ops of INT8 layers; ops of other layers are denylisted.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import Iterable, Iterator

import numpy as np

from tfdenoise.errors import ConversionError
from tfdenoise.models import TinyDenoiser
from tfdenoise.quiet import native_stderr_muted
from tfdenoise.stft import N_BINS

from tfdenoise.converters import fbgraph
from tfdenoise.converters.calibration import CalibrationSet, RangeCollector
from tfdenoise.converters.interpreter import TFLiteDenoiser
from tfdenoise.vocab import CalibMethod, CellKind, RangeKind

#: How many calibration frames the converter's own calibrator sees (it only fills the
#: ranges that are then overwritten, plus the LSTM's internal intermediates).
CONVERTER_CALIB_FRAMES = 400


@dataclass(frozen=True)
class DeployIO:
    """The signature of a deployment graph (batch 1, one frame per call)."""

    frame: tuple[int, ...]  # [1, 1, *features]
    mask: tuple[int, ...]   # [1, 1, *outputs]
    #: explicit states (name, shape): input ``name``, output ``<name>_out``
    states: tuple[tuple[str, tuple[int, ...]], ...] = ()
    #: convert from a Keras SavedModel (the only path that fuses LSTM layers)
    saved_model: bool = False

    @property
    def state_names(self) -> tuple[str, ...]:
        return tuple(n for n, _ in self.states)

    def shape_of(self, output: str) -> list[int]:
        """Expected shape of a signature output."""
        if output == "mask":
            return list(self.mask)
        return list(dict(self.states)[output.removesuffix("_out")])


def tiny_io(variant) -> DeployIO:
    """TinyDenoiser's signature: GRU states ``h0``, ``h1`` in and out; LSTM none (fused)."""
    lstm = variant.cell == CellKind.LSTM
    states = () if lstm else tuple((n, (1, variant.units)) for n in variant.state_names)
    return DeployIO((1, 1, N_BINS), (1, 1, N_BINS), states, saved_model=lstm)


def io_names(variant) -> tuple[list[str], list[str]]:
    """Signature input names, and output names sorted (the tf.nest order of a function's outputs)."""
    io = variant if isinstance(variant, DeployIO) else tiny_io(variant)
    return ["frame", *io.state_names], sorted(["mask", *(f"{n}_out" for n in io.state_names)])


class TinyGraph:
    """What the conversion needs of a TinyDenoiser's deployment graph (a user's Keras model has
    its own, :class:`tfdenoise.converters.keras_convert.KerasGraph`)."""

    def __init__(self, model: TinyDenoiser) -> None:
        self.model = model
        self.io = tiny_io(model.variant)

    def keras(self):
        """The Keras model converted: the step model (GRU), the one-frame sequence model (LSTM)."""
        return _keras_deploy_model(self.model) if self.io.saved_model else self.model.step

    def resolve(self, recipe) -> dict:
        return recipe.resolve()

    def label(self, recipe) -> str:
        return recipe.label()

    def check_bits(self, recipe, trained: dict[str, int]) -> None:
        recipe.check_bits(trained)

    def check_float(self, data: bytes) -> None:
        """Nothing to check: TinyDenoiser's graph is known to convert."""

    def op_layers(self, model_obj) -> list[str | None]:
        return fbgraph.op_layers(model_obj)

    def metadata(self, model_obj, precision: str, calibration: dict | None, random_weights: bool,
                 weight_bits: dict[str, int], qat: dict | None) -> dict:
        from tfdenoise.converters.metadata import build_metadata

        return build_metadata(model_obj, self.model.variant, precision, calibration,
                              random_weights, weight_bits, qat)


def graph_of(model):
    """The deployment-graph adapter of ``model``: its own ``deploy_graph()``, else TinyDenoiser's."""
    own = getattr(model, "deploy_graph", None)
    return own() if callable(own) else TinyGraph(model)


def deploy_function(model):
    """Concrete function of the batch-1 step graph (and the module that owns it), for graphs
    without LSTM layers (those go through a Keras SavedModel: only that path fuses the LSTM)."""
    from tfdenoise.keras import tf

    graph = graph_of(model)
    io = graph.io
    if io.saved_model:
        raise ConversionError("LSTM models convert from a Keras SavedModel, not a function")
    step = graph.keras()
    specs = {"frame": tf.TensorSpec(list(io.frame), tf.float32, name="frame")}
    specs.update({n: tf.TensorSpec(list(s), tf.float32, name=n) for n, s in io.states})
    names = io.state_names

    def fn(**kw):
        out = step([kw["frame"], *(kw[n] for n in names)], training=False)
        out = list(out) if isinstance(out, (list, tuple)) else [out]
        return {"mask": out[0], **{f"{n}_out": s for n, s in zip(names, out[1:])}}

    owner = tf.Module()
    owner.fn = tf.function(fn)
    return owner.fn.get_concrete_function(**specs), owner


def _keras_deploy_model(model: TinyDenoiser):
    """LSTM only: batch-1, one-frame Keras model named ``frame`` -> ``mask``."""
    from tfdenoise.keras import keras, layers

    frame = keras.Input((1, N_BINS), batch_size=1, name="frame")
    mask = layers.Activation("linear", name="mask")(model.sequence(frame))
    return keras.Model(frame, mask, name=f"{model.variant.name}_deploy")


class ConverterFactory:
    """Fresh ``TFLiteConverter`` objects for one model, sharing the expensive export.

    GRU: a concrete function of the step graph (fast).  LSTM: the converter fuses Keras
    LSTM layers into ``UNIDIRECTIONAL_SEQUENCE_LSTM`` only from a Keras SavedModel, so the
    deployment model is saved once to a temporary folder and converted from there.
    """

    def __init__(self, model) -> None:
        self.model = model
        self._dir: tempfile.TemporaryDirectory | None = None

    def __call__(self):
        from tfdenoise.keras import tf

        graph = graph_of(self.model)
        if not graph.io.saved_model:
            cf, owner = deploy_function(self.model)
            return tf.lite.TFLiteConverter.from_concrete_functions([cf], owner)
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="tfdenoise-savedmodel-")
            graph.keras().save(self._dir.name, save_format="tf", include_optimizer=False)
        return tf.lite.TFLiteConverter.from_saved_model(self._dir.name)

    def close(self) -> None:
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None


_FACTORIES: dict[int, ConverterFactory] = {}


def _converter(model):
    fac = _FACTORIES.get(id(model))
    if fac is None or fac.model is not model:
        for f in _FACTORIES.values():
            f.close()
        _FACTORIES.clear()
        fac = _FACTORIES[id(model)] = ConverterFactory(model)
    return fac()


def _signature_outputs(m, names: list[str]) -> list[int] | None:
    """Tensor index of each output name per the flatbuffer's own signature (the SavedModel
    path keeps one, whose outputs need not follow the subgraph's output order), or None."""
    for sig in m.signatureDefs or []:
        got = {(t.name.decode() if isinstance(t.name, bytes) else t.name): int(t.tensorIndex)
               for t in sig.outputs or []}
        if set(got) == set(names) and set(got.values()) == {int(i) for i in m.subgraphs[0].outputs}:
            return [got[n] for n in names]
    return None


def add_signature(data: bytes, io) -> bytes:
    """Give the flatbuffer a ``serving_default`` signature with the tfdenoise I/O names
    (``io``: a :class:`DeployIO`, or a TinyDenoiser variant)."""
    from tensorflow.lite.python import schema_py_generated as schema

    io = io if isinstance(io, DeployIO) else tiny_io(io)
    m = fbgraph.load(data)
    sg = m.subgraphs[0]
    ins, outs = io_names(io)
    if len(sg.inputs) != len(ins) or len(sg.outputs) != len(outs):
        raise ConversionError(f"converted graph has {len(sg.inputs)} inputs/{len(sg.outputs)} "
                              f"outputs, expected {len(ins)}/{len(outs)}")
    by_name = {}
    for idx in sg.inputs:
        raw = fbgraph.tensor_name(sg.tensors[idx])
        by_name[raw.removeprefix("serving_default_").split(":")[0]] = int(idx)
    if set(by_name) != set(ins):
        raise ConversionError(f"unexpected input names {sorted(by_name)}")
    sig = schema.SignatureDefT()
    sig.signatureKey = "serving_default"
    sig.subgraphIndex = 0
    sig.inputs, sig.outputs = [], []
    for name, idx in [(n, by_name[n]) for n in ins]:
        tm = schema.TensorMapT()
        tm.name, tm.tensorIndex = name, idx
        sig.inputs.append(tm)
    out_idx = _signature_outputs(m, outs) or [int(i) for i in sg.outputs]
    for name, idx in zip(outs, out_idx):
        want = io.shape_of(name)
        if list(sg.tensors[int(idx)].shape) != want:
            raise ConversionError(f"output {name!r} has shape "
                                  f"{list(sg.tensors[int(idx)].shape)}, expected {want}")
        tm = schema.TensorMapT()
        tm.name, tm.tensorIndex = name, int(idx)
        sig.outputs.append(tm)
    m.signatureDefs = [sig]
    return fbgraph.dump(m)


def convert_float(model) -> bytes:
    """The FP32 ``.tflite`` of the deployment graph (BN folded by the converter)."""
    try:
        with native_stderr_muted():
            data = bytes(_converter(model).convert())
    except Exception as exc:
        raise ConversionError(f"float conversion failed ({str(exc).splitlines()[0][:160]})") from exc
    return add_signature(data, graph_of(model).io)


def representative_inputs(float_tflite: bytes, calib: CalibrationSet,
                          limit: int = CONVERTER_CALIB_FRAMES) -> list[dict[str, np.ndarray]]:
    """Signature-keyed input dicts in streaming order, GRU states from the float model."""
    den = TFLiteDenoiser(float_tflite)
    per_clip = max(1, limit // len(calib.frames))
    out: list[dict[str, np.ndarray]] = []
    for mags in calib.frames:
        runner = den._new_interpreter().get_signature_runner()
        state = {n: np.zeros(den.inputs[n].shape, np.float32) for n in den.state_names}
        for f in mags[:per_clip]:
            feed = {"frame": f.reshape(den.inputs["frame"].shape).astype(np.float32), **state}
            out.append(feed)
            res = runner(**feed)
            state = {n: np.asarray(res[f"{n}_out"], np.float32) for n in den.state_names}
    return out


def calibrate_only(model, feeds: list[dict[str, np.ndarray]],
                   float_tflite: bytes) -> bytes:
    """Float flatbuffer annotated with the converter's min/max of every activation.

    Without a signature the calibrator feeds inputs in flatbuffer order, which differs
    from the Keras order: ``feeds`` (keyed by name) are ordered like the inputs of
    ``float_tflite`` (the same graph converted without calibration).
    """
    from tfdenoise.keras import tf

    flat = fbgraph.load(float_tflite)
    sg = flat.subgraphs[0]
    names = [fbgraph.tensor_name(sg.tensors[i]).removeprefix("serving_default_").split(":")[0]
             for i in sg.inputs]
    conv = _converter(model)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def gen() -> Iterator[list[np.ndarray]]:
        for feed in feeds:
            yield [feed[n] for n in names]

    conv.representative_dataset = gen
    conv._experimental_calibrate_only = True  # noqa: SLF001 (documented experimental flag)
    try:
        with native_stderr_muted():
            data = bytes(conv.convert())
    except Exception as exc:
        raise ConversionError(f"calibration failed ({str(exc).splitlines()[0][:160]})") from exc
    return add_signature(data, graph_of(model).io)


def activation_tensors(model_obj) -> list[int]:
    """Indices of float activation tensors (no constant data) that carry recorded ranges."""
    sg = model_obj.subgraphs[0]
    # LSTM intermediates (gate scales) are not readable from the interpreter: keep the
    # converter's values for them.
    hidden = {int(t) for op in sg.operators for t in (op.intermediates if op.intermediates
                                                       is not None else [])}
    out = []
    for i, t in enumerate(sg.tensors):
        if i in hidden:
            continue
        q = t.quantization
        buf = model_obj.buffers[t.buffer]
        has_data = buf.data is not None and len(buf.data) > 0
        if t.type == 0 and not has_data and q is not None and q.min is not None \
                and len(q.min) == 1:
            out.append(i)
    return out


def collect_ranges(calibrated: bytes, calib: CalibrationSet, method: CalibMethod,
                   kind: RangeKind = RangeKind.SYMMETRIC) -> dict[int, tuple[float, float]]:
    """Run the calibrated (still float) model over every clip: the INT8 interval of every
    activation tensor index (:meth:`RangeCollector.intervals`)."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    targets = activation_tensors(fu.convert_bytearray_to_object(calibrated))
    collector = RangeCollector(method)
    den = TFLiteDenoiser(calibrated, preserve_all_tensors=True)

    def record(interpreter) -> None:
        collector.add_frame({i: interpreter.get_tensor(i) for i in targets})

    for mags in calib.frames:
        step = den.stepper(on_step=record)
        for f in mags:
            step(f)
        collector.end_clip()
    return collector.intervals(kind)


def rewrite_ranges(calibrated: bytes, ranges: dict[int, tuple[float, float]]) -> bytes:
    """Set each recorded activation range to its ``(lo, hi)`` interval in ``ranges``."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    m = fu.convert_bytearray_to_object(calibrated)
    sg = m.subgraphs[0]
    ranges = dict(ranges)
    # An LSTM intermediate that recorded the same range as the op's output (the hidden
    # state) must keep agreeing with it, or the INT8 kernel rescales the state wrongly.
    for op in sg.operators:
        for t in (op.intermediates if op.intermediates is not None else []):
            qi = sg.tensors[t].quantization
            if qi is None or qi.min is None:
                continue
            for o in op.outputs:
                qo = sg.tensors[o].quantization
                if int(o) in ranges and qo is not None and qo.min is not None and \
                        np.array_equal(qo.min, qi.min) and np.array_equal(qo.max, qi.max):
                    ranges[int(t)] = ranges[int(o)]
    for i, (lo, hi) in ranges.items():
        q = sg.tensors[i].quantization
        if q is not None and q.min is not None:
            q.min = np.array([lo], np.float32)
            q.max = np.array([hi], np.float32)
    return bytes(fu.convert_object_to_bytearray(m))


def quantize(calibrated: bytes, denylisted_nodes: Iterable[str] = ()) -> bytes:
    """``mlir_quantize`` per tensor; ops whose first output is in ``denylisted_nodes`` stay float."""
    from tensorflow.lite.python import convert

    deny = sorted(set(denylisted_nodes))
    try:
        with native_stderr_muted():
            return bytes(convert.mlir_quantize(calibrated, disable_per_channel=True,
                                               fully_quantize=False, denylisted_nodes=deny or None))
    except Exception as exc:
        raise ConversionError(f"quantization failed ({str(exc).splitlines()[0][:160]})") from exc
