"""Reader: .tflite bytes -> graph IR, against files built in conftest with TensorFlow."""
from __future__ import annotations

import json

import pytest

from tfdenoise.targets.reader import parse_tflite, read_tflite
from tfdenoise.errors import InputError, TFLiteFormatError



@pytest.mark.parametrize("builtin", [False, True], ids=["ai_edge_litert", "own_bindings"])
@pytest.mark.parametrize("name,dtypes,ops", [
    ("lstm_fp32", {"FLOAT32"}, {"FULLY_CONNECTED", "UNIDIRECTIONAL_SEQUENCE_LSTM", "LOGISTIC"}),
    ("lstm_fp16", {"FLOAT16"}, {"DEQUANTIZE", "UNIDIRECTIONAL_SEQUENCE_LSTM"}),
    ("lstm_int8", {"INT8", "INT32"}, {"QUANTIZE", "UNIDIRECTIONAL_SEQUENCE_LSTM", "DEQUANTIZE"}),
    ("gru_fp32", {"FLOAT32"}, {"FULLY_CONNECTED", "LOGISTIC", "TANH", "MUL", "SUB"}),
    ("foreign_int8", {"INT8"}, {"CONV_2D", "DEPTHWISE_CONV_2D", "MAX_POOL_2D", "SOFTMAX"}),
])
def test_reads_models(tflite, builtin, name, dtypes, ops):
    g = read_tflite(tflite(name), prefer_builtin_schema=builtin)
    sg = g.main
    assert {op.opcode for op in sg.operators} >= ops
    assert dtypes <= {t.dtype for t in sg.tensors if t.is_constant}
    for t in sg.tensors:
        if t.is_constant:
            assert t.nbytes == len(t.data)
    assert g.schema_source.endswith("tflite_min" if builtin else "schema_py_generated")


def test_both_bindings_agree(tflite):
    a, b = read_tflite(tflite("lstm_int8")), read_tflite(tflite("lstm_int8"), prefer_builtin_schema=True)
    assert a.main.operators == b.main.operators and a.main.tensors == b.main.tensors


def test_int8_quantization_and_lstm_shapes(tflite):
    sg = read_tflite(tflite("lstm_int8")).main
    lstm = next(op for op in sg.operators if op.opcode == "UNIDIRECTIONAL_SEQUENCE_LSTM")
    assert len(lstm.inputs) == 24
    w = sg.tensors[lstm.inputs[1]]
    assert w.dtype == "INT8" and w.shape == (8, 12) and w.quant.scale[0] > 0
    assert any(sg.tensors[i].is_variable for i in lstm.inputs if i >= 0)


def test_metadata_entry(tflite, tmp_path, tfdenoise_meta, metadata_writer):
    p = metadata_writer(tflite("lstm_fp32"), tmp_path / "m.tflite",
                     {"tfdenoise": tfdenoise_meta([{"name": "x", "ops": [0]}], variant="lstm8")})
    g = read_tflite(p)
    assert json.loads(g.metadata["tfdenoise"])["variant"] == "lstm8"
    assert g.tfdenoise_metadata()["layers"][0]["name"] == "x"


def test_buffers_stored_by_offset(tflite, tmp_path, offset_writer):
    src = tflite("lstm_fp32")
    p = offset_writer(src, tmp_path / "offset.tflite", min_size=64)
    a, b = read_tflite(src), read_tflite(p)
    assert [t.data for t in a.main.tensors] == [t.data for t in b.main.tensors]
    # an offset pointing past the end of the file is a format error
    with pytest.raises(TFLiteFormatError, match="past end of file"):
        parse_tflite(p.read_bytes()[:-100], "cut.tflite")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="no such"):
        read_tflite(tmp_path / "nope.tflite")


@pytest.mark.parametrize("data,match", [
    (b"", "too short"),
    (b"\x00" * 7, "too short"),
    (b"\x10\x00\x00\x00ABCD" + b"\x00" * 40, "file identifier"),
    (b"\xff\xff\xff\x7fTFL3" + b"\x00" * 40, "root table offset"),
])
def test_garbage(data, match, tmp_path):
    p = tmp_path / "bad.tflite"
    p.write_bytes(data)
    with pytest.raises(TFLiteFormatError, match=match) as err:
        read_tflite(p)
    assert "bad.tflite" in str(err.value)


@pytest.mark.parametrize("frac", [0.05, 0.2, 0.5, 0.8, 0.95])
def test_truncated(tflite, frac):
    raw = tflite("lstm_int8").read_bytes()
    cut = raw[: int(len(raw) * frac)]
    with pytest.raises(TFLiteFormatError) as err:
        parse_tflite(cut, "cut.tflite")
    assert str(err.value).startswith("cut.tflite: ")


def test_corrupted_bytes_never_crash(tflite):
    import random

    raw = bytearray(tflite("gru_fp32").read_bytes())
    rng = random.Random(0)
    for _ in range(30):
        bad = bytearray(raw)
        for _ in range(20):
            bad[rng.randrange(8, len(bad))] = rng.randrange(256)
        try:
            parse_tflite(bytes(bad), "fuzz.tflite")
        except TFLiteFormatError as exc:
            assert "fuzz.tflite" in str(exc)
