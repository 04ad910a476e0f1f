"""Keras TinyDenoiser -> float ``.tflite`` -> calibrated -> quantized flatbuffer.

Deployment graphs (batch 1, one frame per call, no WHILE loop):

* GRU: the ``step`` model; inputs ``frame``, ``h0``, ``h1``; outputs ``mask``, ``h0_out``,
  ``h1_out`` (states are fed back by the caller);
* LSTM: the ``sequence`` model with a fixed ``[1, 1, 257]`` input; the converter fuses each
  LSTM into ``UNIDIRECTIONAL_SEQUENCE_LSTM`` whose states are variable tensors that persist
  across invocations (streaming with sequence length 1).

INT8 ranges: the converter's own calibrator only records min/max, so the model is
converted with ``_experimental_calibrate_only``, every recorded activation range is
replaced by the one :mod:`converters.calibration` computed, and ``mlir_quantize`` then
quantizes (per tensor) the ops of INT8 layers; ops of other layers are denylisted.
"""
from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from tfdenoise.errors import ConversionError
from tfdenoise.models import TinyDenoiser
from tfdenoise.stft import N_BINS

from converters.calibration import CalibrationSet, RangeCollector
from converters.interpreter import TFLiteDenoiser
from converters.recipe import CalibMethod

#: How many calibration frames the converter's own calibrator sees (it only fills the
#: ranges that are then overwritten, plus the LSTM's internal intermediates).
CONVERTER_CALIB_FRAMES = 400


def deploy_model(model: TinyDenoiser):
    """A batch-1, one-frame Keras model on the shared weights, with named I/O."""
    from tfdenoise.keras import keras, layers

    v = model.variant
    frame = keras.Input((1, N_BINS), batch_size=1, name="frame")
    if v.cell == "lstm":
        mask = model.sequence(frame)
        return keras.Model(frame, layers.Activation("linear", name="mask")(mask),
                           name=f"{v.name}_deploy")
    states = [keras.Input((v.units,), batch_size=1, name=n) for n in v.state_names]
    outs = model.step([frame, *states])
    named = [layers.Activation("linear", name="mask")(outs[0])]
    named += [layers.Activation("linear", name=f"{n}_out")(o)
              for n, o in zip(v.state_names, outs[1:])]
    return keras.Model([frame, *states], named, name=f"{v.name}_deploy")


def _converter(kmodel):
    from tfdenoise.keras import tf

    return tf.lite.TFLiteConverter.from_keras_model(kmodel)


def convert_float(model: TinyDenoiser) -> bytes:
    """The FP32 ``.tflite`` of the deployment graph (BN folded by the converter)."""
    try:
        return bytes(_converter(deploy_model(model)).convert())
    except Exception as exc:
        raise ConversionError(f"float conversion failed ({str(exc).splitlines()[0][:160]})") from exc


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
            feed = {"frame": f.reshape(1, 1, N_BINS).astype(np.float32), **state}
            out.append(feed)
            res = runner(**feed)
            state = {n: np.asarray(res[f"{n}_out"], np.float32) for n in den.state_names}
    return out


def calibrate_only(model: TinyDenoiser, feeds: list[dict[str, np.ndarray]]) -> bytes:
    """Float flatbuffer annotated with the converter's min/max of every activation."""
    from tfdenoise.keras import tf

    conv = _converter(deploy_model(model))
    conv.optimizations = [tf.lite.Optimize.DEFAULT]

    def gen() -> Iterator[dict[str, np.ndarray]]:
        yield from feeds

    conv.representative_dataset = gen
    conv._experimental_calibrate_only = True  # noqa: SLF001 (documented experimental flag)
    try:
        return bytes(conv.convert())
    except Exception as exc:
        raise ConversionError(f"calibration failed ({str(exc).splitlines()[0][:160]})") from exc


def activation_tensors(model_obj) -> list[int]:
    """Indices of float activation tensors (no constant data) that carry recorded ranges."""
    sg = model_obj.subgraphs[0]
    out = []
    for i, t in enumerate(sg.tensors):
        q = t.quantization
        buf = model_obj.buffers[t.buffer]
        has_data = buf.data is not None and len(buf.data) > 0
        if t.type == 0 and not has_data and q is not None and q.min is not None \
                and len(q.min) == 1:
            out.append(i)
    return out


def collect_ranges(calibrated: bytes, calib: CalibrationSet,
                   method: CalibMethod) -> dict[int, float]:
    """Run the calibrated (still float) model over every clip, statistics per tensor index."""
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
    return collector.ranges()


def rewrite_ranges(calibrated: bytes, ranges: dict[int, float]) -> bytes:
    """Set each recorded activation range to the symmetric ``[-r, r]`` of ``ranges``."""
    from tensorflow.lite.tools import flatbuffer_utils as fu

    m = fu.convert_bytearray_to_object(calibrated)
    sg = m.subgraphs[0]
    for i, r in ranges.items():
        q = sg.tensors[i].quantization
        if q is not None and q.min is not None:
            q.min = np.array([-r], np.float32)
            q.max = np.array([r], np.float32)
    return bytes(fu.convert_object_to_bytearray(m))


def quantize(calibrated: bytes, denylisted_nodes: Iterable[str] = ()) -> bytes:
    """``mlir_quantize`` per tensor; ops whose first output is in ``denylisted_nodes`` stay float."""
    from tensorflow.lite.python import convert

    deny = sorted(set(denylisted_nodes))
    try:
        return bytes(convert.mlir_quantize(calibrated, disable_per_channel=True,
                                           fully_quantize=False, denylisted_nodes=deny or None))
    except Exception as exc:
        raise ConversionError(f"quantization failed ({str(exc).splitlines()[0][:160]})") from exc
