"""Fixtures for `targets` tests: tiny .tflite files built in code with TensorFlow.

Built once per session (and kept in pytest's cache folder between runs, keyed by
TensorFlow version + MODELS_VERSION) because each conversion takes 1-5 s on a small machine.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

MODELS_VERSION = "3"
NAMES = ("lstm_fp32", "lstm_fp16", "lstm_int8", "gru_fp32", "gru_fp16", "foreign_int8", "foreign_fp32")


def _build_all(folder: Path) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    import tf_keras as keras

    def convert(model, mode: str, shapes) -> bytes:
        c = tf.lite.TFLiteConverter.from_keras_model(model)
        if mode == "fp16":
            c.optimizations = [tf.lite.Optimize.DEFAULT]
            c.target_spec.supported_types = [tf.float16]
        elif mode == "int8":
            rng = np.random.default_rng(0)
            c.optimizations = [tf.lite.Optimize.DEFAULT]
            c.representative_dataset = lambda: ([rng.random(s).astype(np.float32) for s in shapes] for _ in range(4))
        return c.convert()

    keras.utils.set_random_seed(0)
    lstm = keras.Sequential([keras.layers.InputLayer(batch_input_shape=(1, 1, 16)),
                             keras.layers.Dense(12, activation="relu", name="fc_in"),
                             keras.layers.LSTM(8, return_sequences=True, name="rnn_0"),
                             keras.layers.Dense(16, activation="sigmoid", name="fc_out")])
    x = keras.Input(batch_shape=(1, 16), name="frame")
    h = keras.Input(batch_shape=(1, 8), name="h0")
    y = keras.layers.Dense(12, activation="relu", name="fc_in")(x)
    o, hs = keras.layers.GRUCell(8, name="rnn_0")(y, [h])
    mask = keras.layers.Dense(16, activation="sigmoid", name="fc_out")(o)
    gru = keras.Model([x, h], [mask, hs[0] if isinstance(hs, (list, tuple)) else hs])
    img = keras.Input(batch_shape=(1, 16, 16, 3))
    z = keras.layers.Conv2D(8, 3, padding="same", activation="relu")(img)
    z = keras.layers.DepthwiseConv2D(3, padding="same")(z)
    z = keras.layers.MaxPooling2D(2)(z)
    z = keras.layers.AveragePooling2D(2)(z)
    z = keras.layers.Flatten()(z)
    z = keras.layers.Dense(10)(z)
    z = keras.layers.Softmax()(z)
    foreign = keras.Model(img, z)
    out = {"lstm_fp32": convert(lstm, "fp32", [(1, 1, 16)]),
           "lstm_fp16": convert(lstm, "fp16", [(1, 1, 16)]),
           "lstm_int8": convert(lstm, "int8", [(1, 1, 16)]),
           "gru_fp32": convert(gru, "fp32", [(1, 16), (1, 8)]),
           "gru_fp16": convert(gru, "fp16", [(1, 16), (1, 8)]),
           "foreign_int8": convert(foreign, "int8", [(1, 16, 16, 3)]),
           "foreign_fp32": convert(foreign, "fp32", [(1, 16, 16, 3)])}
    for name, data in out.items():
        (folder / f"{name}.tflite").write_bytes(data)
    (folder / "VERSION").write_text(f"{tf.__version__} {MODELS_VERSION}")


@pytest.fixture(scope="session")
def gap9():
    """The gap9 board (targets/boards/gap9.toml); boards are frozen, shared by every test."""
    from tfdenoise.targets.boards import load_board

    return load_board("gap9")


@pytest.fixture(scope="session")
def tflite_dir(request, tmp_path_factory) -> Path:
    """Folder holding `{name}.tflite` for every name in NAMES."""
    try:
        folder = Path(request.config.cache.mkdir("tfdenoise-targets-models"))
    except Exception:  # cache plugin disabled
        folder = tmp_path_factory.mktemp("tflite")
    import importlib.metadata as md

    want = f"{md.version('tensorflow')} {MODELS_VERSION}"
    stamp = folder / "VERSION"
    if not (stamp.is_file() and stamp.read_text() == want and all((folder / f"{n}.tflite").is_file() for n in NAMES)):
        _build_all(folder)
    return folder


@pytest.fixture(scope="session")
def tflite(tflite_dir):
    """tflite("lstm_int8") -> path of a tiny model file."""
    return lambda name: tflite_dir / f"{name}.tflite"


def add_metadata(src: Path, dst: Path, entries: dict[str, bytes]) -> Path:
    """Copy `src` to `dst` with extra flatbuffer metadata entries (name -> bytes)."""
    from ai_edge_litert import schema_py_generated as s
    import flatbuffers

    model = s.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    for name, data in entries.items():
        buf = s.BufferT()
        buf.data = list(data)
        model.buffers.append(buf)
        meta = s.MetadataT()
        meta.name = name
        meta.buffer = len(model.buffers) - 1
        model.metadata = (model.metadata or []) + [meta]
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    dst.write_bytes(bytes(b.Output()))
    return dst


def with_offset_buffers(src: Path, dst: Path, min_size: int = 64) -> Path:
    """Rewrite `src` with buffers >= min_size bytes stored after the flatbuffer (offset/size)."""
    from ai_edge_litert import schema_py_generated as s
    import flatbuffers

    model = s.ModelT.InitFromPackedBuf(bytearray(src.read_bytes()), 0)
    moved = []
    for buf in model.buffers:
        if buf.data is not None and len(buf.data) >= min_size:
            moved.append((buf, bytes(bytearray(np.asarray(buf.data, dtype=np.uint8)))))
            buf.data = None
            buf.offset, buf.size = 1 << 40, 1  # placeholders: same encoded size as the real values

    def pack() -> bytes:
        b = flatbuffers.Builder(1024)
        b.Finish(model.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())

    head = pack()
    pos = (len(head) + 15) // 16 * 16
    tail = b""
    for buf, data in moved:
        buf.offset, buf.size = pos + len(tail), len(data)
        tail += data + bytes((-len(data)) % 16)
    head2 = pack()
    assert len(head2) == len(head)
    dst.write_bytes(head2 + bytes(pos - len(head2)) + tail)
    return dst


@pytest.fixture
def tfdenoise_meta() -> callable:
    """Builds the `tfdenoise` metadata JSON bytes from a list of layer dicts."""
    return lambda layers, **kw: json.dumps({"format": 1, "layers": layers, **kw}).encode()


@pytest.fixture
def metadata_writer():
    """metadata_writer(src, dst, {name: bytes}) -> dst (see add_metadata)."""
    return add_metadata


@pytest.fixture
def offset_writer():
    """offset_writer(src, dst, min_size) -> dst (see with_offset_buffers)."""
    return with_offset_buffers
