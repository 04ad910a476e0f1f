"""Calibration statistics, written scales, recipes and clear errors."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfdenoise.converters import build, fbgraph
from tfdenoise.converters.calibration import CalibrationSet, RangeCollector, int8_scale, list_clips
from tfdenoise.converters.recipe import CalibMethod, Precision, load, parse
from tfdenoise.errors import InputError, ModelError, RecipeError, TFLiteFormatError


def test_max_and_std3_with_moving_average():
    col = RangeCollector("max")
    col3 = RangeCollector(CalibMethod.STD3)
    clips = [np.array([1.0, -2.0, 0.5]), np.array([4.0, 0.0, 0.0, 0.0])]
    for clip in clips:
        for v in clip:
            col.add_frame({"t": np.array([v])})
            col3.add_frame({"t": np.array([v])})
        col.end_clip()
        col3.end_clip()
    assert col.ranges()["t"] == pytest.approx((2.0 + 4.0) / 2)
    s = [min(np.abs(c).max(), abs(c.mean()) + 3 * c.std()) for c in clips]
    assert col3.ranges()["t"] == pytest.approx(np.mean(s))
    assert col3.ranges()["t"] <= col.ranges()["t"]


def test_asymmetric_intervals_only_for_never_negative_tensors():
    col = RangeCollector("max")
    for clip in ([1.0, 0.5], [3.0, -0.25]):
        for v in clip:
            col.add_frame({"pos": np.array([abs(v)]), "signed": np.array([v])})
        col.end_clip()
    assert col.ranges() == {"pos": pytest.approx(2.0), "signed": pytest.approx(2.0)}
    assert col.intervals() == {"pos": (-2.0, 2.0), "signed": (-2.0, 2.0)}
    assert col.intervals("asymmetric") == {"pos": (0.0, 4.0), "signed": (-2.0, 2.0)}


def test_written_scales_equal_computed_statistics(gru128, calib_small):
    f32 = build.convert_float(gru128)
    cal = build.calibrate_only(gru128, build.representative_inputs(f32, calib_small, 64), f32)
    ranges = build.collect_ranges(cal, calib_small, CalibMethod.STD3)
    names = {fbgraph.tensor_name(fbgraph.load(cal).subgraphs[0].tensors[i]): hi
             for i, (lo, hi) in ranges.items()}
    assert all(lo == -hi for lo, hi in ranges.values())
    q = fbgraph.load(build.quantize(build.rewrite_ranges(cal, ranges)))
    sg = q.subgraphs[0]
    checked = 0
    for op in sg.operators:  # ops free to choose their output scale
        if fbgraph.op_name(q, op) not in ("FULLY_CONNECTED", "ADD", "MUL", "SUB"):
            continue
        t = sg.tensors[op.outputs[0]]
        name = fbgraph.tensor_name(t)
        if name in names and t.type == 9:
            assert float(t.quantization.scale[0]) == pytest.approx(int8_scale(names[name]),
                                                                   rel=1e-5), name
            checked += 1
    assert checked >= 10


def test_shipped_calibration_clips_are_the_spec_set():
    assert [c.stem for c in list_clips()] == ["p286_035", "p286_166", "p287_151", "p287_269"]


def test_empty_calibration_folder_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="no audio files"):
        CalibrationSet.load(tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        CalibrationSet.load(tmp_path / "missing")


def test_builtin_recipes():
    assert load("mixed").resolve()["rnn_0"] is Precision.INT8
    assert load("mixed").resolve()["fc_in"] is Precision.FP16
    assert load("mixed").label() == "mixed" and load("int8").label() == "int8"
    assert load("fp16").needs_calibration is False


def test_unknown_recipe_layer_is_a_recipe_error(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"layers": [{"pattern": "rnn_7", "precision": "int8"},
                                           {"pattern": ".*", "precision": "fp16"}]}))
    with pytest.raises(RecipeError, match="rnn_7"):
        load(path).resolve()
    with pytest.raises(RecipeError, match="no precision"):
        parse({"layers": [{"pattern": "rnn_.*", "precision": "int8"}]}).resolve()
    with pytest.raises(RecipeError, match="precision"):
        parse({"layers": [{"pattern": ".*", "precision": "int4"}]})
    with pytest.raises(RecipeError, match="ranges 'one-sided'"):
        parse({"layers": [{"pattern": ".*", "precision": "int8"}],
               "calibration": {"method": "std3", "ranges": "one-sided"}})
    assert load("int8_asym").ranges.value == "asymmetric" and load("int8").ranges.value == "symmetric"
    with pytest.raises(RecipeError):
        load(tmp_path / "missing.json")


def test_corrupt_checkpoint_is_a_model_error(tmp_path):
    from tfdenoise.models import load_denoiser as load_model

    (tmp_path / "config.json").write_text(json.dumps({"variant": "gru128"}))
    (tmp_path / "weights.h5").write_bytes(b"not an h5 file")
    with pytest.raises(ModelError, match="weights"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ModelError, match="config.json"):
        load_model(tmp_path)


def test_corrupt_or_truncated_tflite(gru128_files, tmp_path):
    from tfdenoise.converters.interpreter import TFLiteDenoiser

    data = gru128_files["mixed"]
    for name, blob in [("trunc.tflite", data[: len(data) // 2]), ("junk.tflite", b"\0" * 64),
                       ("empty.tflite", b"")]:
        path = tmp_path / name
        path.write_bytes(blob)
        with pytest.raises(TFLiteFormatError, match=name):
            TFLiteDenoiser(path)


def test_tflite_runtime_backend_needs_its_package(gru128_files, tmp_path):
    from tfdenoise.converters.interpreter import TFLiteDenoiser

    try:
        import tflite_runtime  # noqa: F401
    except ImportError:
        path = tmp_path / "m.tflite"
        path.write_bytes(gru128_files["fp32"])
        with pytest.raises(InputError, match="tflite-runtime"):
            TFLiteDenoiser(path, backend="tflite-runtime")
    else:
        pytest.skip("tflite-runtime is installed")
