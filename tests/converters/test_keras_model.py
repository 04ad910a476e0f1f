"""A user's own Keras model in: export (mixed PTQ), LiteRT vs Keras, the report, validate, errors.

Models are tiny and built here with their own layer names; calibration uses a few frames.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfdenoise.converters import fbgraph
from tfdenoise.converters.check import TOLERANCE
from tfdenoise.converters.interpreter import TFLiteDenoiser
from tfdenoise.converters.metadata import read_metadata

FRAMES = 40  # calibration frames per clip / array


def _user_gru(keras, layers):
    """The user-style denoiser of issue 18: causal Conv1D + 2 x GRU(96) + Dense, 257 -> 257."""
    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 257), name="spectrum")
    x = layers.Conv1D(64, 3, padding="causal", name="front_conv")(inp)
    x = layers.BatchNormalization(name="front_bn")(x)
    x = layers.ReLU(name="front_relu")(x)
    x = layers.GRU(96, return_sequences=True, name="gru_a")(x)
    x = layers.GRU(96, return_sequences=True, name="gru_b")(x)
    out = layers.Dense(257, activation="sigmoid", name="gain")(x)
    return keras.Model(inp, out, name="user_gru")


@pytest.fixture(scope="module")
def mags():
    """Real noisy-speech magnitudes: calibration frames and other frames to check on."""
    from tfdenoise.converters.calibration import clip_magnitudes, list_clips

    clips = list_clips()
    return clip_magnitudes(clips[0])[60:60 + FRAMES], clip_magnitudes(clips[1])[80:80 + FRAMES]


@pytest.fixture(scope="module")
def user_gru(tmp_path_factory, mags):
    """The user GRU model saved as .h5, exported --mixed by the CLI (calibration: wav clips
    through the STFT front end): (h5 path, tflite path, export stdout)."""
    import soundfile as sf
    from tfdenoise.audio import read
    from tfdenoise.cli import main
    from tfdenoise.converters.calibration import list_clips
    from tfdenoise.keras import keras, layers

    root = tmp_path_factory.mktemp("user_gru")
    h5 = root / "user_gru.h5"
    _user_gru(keras, layers).save(str(h5))
    calib = root / "calib"
    calib.mkdir()
    for clip in list_clips()[:2]:  # 0.4 s of two reference clips
        sf.write(str(calib / clip.name), read(clip)[8000:14400], 16000, subtype="PCM_16")
    out = root / "user_gru.mixed.tflite"
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        code = main(["export", str(h5), "--mixed", "--calib-data", str(calib), "-o", str(out)])
    assert code == 0
    return h5, out, buf.getvalue()


def test_user_gru_mixed_runs_in_litert_like_keras_and_reports_int8_grus(user_gru, mags, capsys):
    """Must-show of issue 18: export --mixed, LiteRT vs Keras, report GRUs INT8 and the rest FP16."""
    from tfdenoise.cli import main
    from tfdenoise.converters.keras_model import load_keras_model

    h5, out, text = user_gru
    assert "max |output - Keras output| on the calibration inputs" in text
    model = load_keras_model(h5)
    _, check = mags
    lite = TFLiteDenoiser(out)
    assert lite.state_names == ("h0", "h1", "buf0")  # GRU states in/out, causal-conv history
    diff = float(np.abs(lite.offline_mask(check) - model.offline_mask(check)).max())
    assert diff <= TOLERANCE["mixed"]
    meta = read_metadata(out.read_bytes())
    assert meta["variant"] == "user_gru" and meta["keras"]["source"] == "user_gru.h5"
    assert {(la["name"], la["kind"], la["precision"]) for la in meta["layers"]} == {
        ("front_conv", "conv", "fp16"), ("gru_a", "gru", "int8"), ("gru_b", "gru", "int8"),
        ("gain", "dense", "fp16")}
    assert main(["report", str(out)]) == 0
    table = capsys.readouterr().out
    assert main(["report", str(out), "--json", "-"]) == 0
    rows = [(la["name"], la["kind"], la["precision"])
            for la in json.loads(capsys.readouterr().out)["layers"]]
    # the export summary and the report's layers (pytest -rP shows them)
    print(f"\n{text}max |LiteRT - Keras| on {len(check)} other frames: {diff:.4g}\n"
          + table[table.index("## Layers"):])
    assert [r for r in rows if r[1] == "gru"] == [("gru_a", "gru", "int8"), ("gru_b", "gru", "int8")]
    assert {r[2] for r in rows if r[1] not in ("gru", "conversion", "stft")} == {"fp16"}
    assert ("front_conv", "conv", "fp16") in rows and ("gain", "dense", "fp16") in rows


def test_user_model_streams_like_the_keras_sequence(user_gru, mags):
    """The deployment step graph (one frame, states in/out) and the host block model equal the
    Keras model over the whole sequence: the model is causal."""
    from tfdenoise.converters.keras_model import load_keras_model
    from tfdenoise.converters.keras_stream import Mode, build

    model = load_keras_model(user_gru[0])
    frames, _ = mags
    ref = model.offline_mask(frames)
    run = model.sequence_mask()
    blocks = np.concatenate([run(frames[:13]), run(frames[13:])])
    assert np.abs(blocks - ref).max() < 1e-5
    step, states = build(model.model, model.features, Mode.STEP)
    st = [np.zeros((1, *s.shape), np.float32) for s in states]
    out = []
    for f in frames[:8]:
        y, *st = step([f.reshape(1, 1, 257), *st])
        out.append(np.asarray(y)[0, 0])
    assert np.abs(np.array(out) - ref[:8]).max() < 1e-5


def test_validate_and_evaluate_take_a_user_model_with_our_io(user_gru, pairs, cli):
    h5, out, _ = user_gru
    code, stdout, err = cli("validate", out, "--pairs", pairs, "--checkpoint", h5, "--json", "-")
    assert code == 0, err
    rows = {r["label"]: r for r in json.loads(stdout)["rows"]}
    assert set(rows) == {"noisy", "keras float", "tflite mixed"}
    assert all(np.isfinite(r["pesq"]) and 0 < r["stoi"] <= 1 for r in rows.values())
    code, _, err = cli("validate", out, "--pairs", pairs)  # the default model is not this one
    assert code == 3 and "USER_GRU" in err and "--checkpoint" in err


def test_user_lstm_sequential_with_npy_calibration(tmp_path, rng):
    """A Sequential LSTM model of other sizes (40 features -> 8): the LSTM fuses with its state
    in the op, npy arrays calibrate, recipes match layer types, metadata says family keras."""
    from tfdenoise.converters.keras_convert import calibration_inputs, export_keras
    from tfdenoise.converters.keras_model import load_keras_model
    from tfdenoise.converters.recipe import parse
    from tfdenoise.keras import keras, layers

    keras.utils.set_random_seed(1)
    seq = keras.Sequential([keras.Input((None, 40)), layers.Dense(32, name="proj"),
                            layers.LayerNormalization(name="norm"),
                            layers.LSTM(24, return_sequences=True, name="enc"),
                            layers.Dense(8, name="head")], name="kws_like")
    path = tmp_path / "kws_like.keras"
    seq.save(str(path))
    data = tmp_path / "inputs"
    data.mkdir()
    np.save(data / "a.npy", rng.normal(size=(2, 24, 40)).astype(np.float32))
    np.save(data / "b.npy", rng.normal(size=(20, 40)).astype(np.float32))
    model = load_keras_model(path)
    calib = calibration_inputs(model, data)
    assert calib.names == ["a_0", "a_1", "b"] and [len(f) for f in calib.frames] == [24, 24, 20]
    recipe = parse({"name": "by_type", "layers": [{"pattern": "LSTM", "precision": "int8"},
                                                  {"pattern": "proj|head", "precision": "fp16"}]})
    res = export_keras(model, tmp_path / "k.tflite", recipe, calib=calib)
    assert res.mask_check.max_abs <= TOLERANCE["mixed"] and res.mask_check.frames == 68
    m = fbgraph.load(res.path.read_bytes())
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in res.ops and "WHILE" not in res.ops
    assert TFLiteDenoiser(res.path).state_names == ()  # the LSTM keeps its state in the op
    meta = read_metadata(res.path.read_bytes())
    assert meta["family"] == "keras" and "variant" not in meta and meta["precision"] == "mixed"
    assert [(la["name"], la["precision"]) for la in meta["layers"]] == [
        ("proj", "fp16"), ("enc", "int8"), ("head", "fp16")]
    lstm = [la for la in meta["layers"] if la["name"] == "enc"][0]
    assert [fbgraph.op_name(m, m.subgraphs[0].operators[i]) for i in lstm["ops"]] == [
        "UNIDIRECTIONAL_SEQUENCE_LSTM"]


@pytest.mark.parametrize("body,message", [
    (lambda x, L: L.Bidirectional(L.GRU(8, return_sequences=True), name="bi")(x),
     "layer 'bi' (Bidirectional) is bidirectional: not causal, cannot stream"),
    (lambda x, L: L.Conv1D(8, 3, padding="same", name="cv")(x), "layer 'cv' (Conv1D) has padding='same'"),
    (lambda x, L: L.GRU(8, name="last")(x), "layer 'last' (GRU) returns only its last step"),
    (lambda x, L: L.GRU(8, return_sequences=True, go_backwards=True, name="rev")(x),
     "layer 'rev' (GRU) runs backwards in time (go_backwards=True): not causal"),
    (lambda x, L: L.Flatten(name="flat")(x), "layer 'flat' (Flatten) gives (None, None): the time axis"),
    (lambda x, L: L.Lambda(lambda t: t * 2, name="lam")(x), "layer 'lam' (Lambda) is not supported"),
    (lambda x, L: L.Dense(4, name="d")(L.Softmax(axis=1, name="sm")(x)),
     "layer 'sm' (Softmax) works along the time axis"),
])
def test_layers_that_cannot_stream_are_named(body, message):
    from tfdenoise.converters.keras_model import KerasModel
    from tfdenoise.errors import ModelError
    from tfdenoise.keras import keras, layers

    inp = keras.Input((None, 16))
    with pytest.raises(ModelError, match="^" + message.replace("(", r"\(").replace(")", r"\)")):
        KerasModel(keras.Model(inp, body(inp, layers), name="bad"))


def test_cli_errors_are_one_line(tmp_path, cli, rng):
    from tfdenoise.keras import keras, layers

    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not hdf5")
    code, _, err = cli("export", junk, "--mixed", "-o", tmp_path / "j.tflite")
    assert code == 3 and f"{junk}: not a Keras model" in err and len(err.strip().splitlines()) == 1
    free = keras.Model(inp := keras.Input((None, None)), layers.ReLU()(inp))
    free.save(str(tmp_path / "free.h5"))
    code, _, err = cli("export", tmp_path / "free.h5", "--fp16", "-o", tmp_path / "f.tflite")
    assert code == 3 and "without a fixed feature size" in err
    small = keras.Model(inp := keras.Input((None, 16)), layers.Dense(4, name="d")(inp), name="small")
    small.save(str(tmp_path / "small.h5"))
    code, _, err = cli("export", tmp_path / "small.h5", "--fp16", "-o", tmp_path / "s.tflite")
    assert code == 2 and "pass --calib-data DIR with .npy arrays" in err
    (tmp_path / "in").mkdir()
    np.save(tmp_path / "in" / "x.npy", rng.normal(size=(10, 15)).astype(np.float32))
    code, _, err = cli("export", tmp_path / "small.h5", "--int8", "--calib-data", tmp_path / "in",
                       "-o", tmp_path / "s.tflite")
    assert code == 2 and "x.npy: array of shape [10, 15] is not [T, 16]" in err
    code, _, err = cli("export", tmp_path / "small.h5", "--mixed", "--calib-data", tmp_path / "in",
                       "-o", tmp_path / "s.tflite")
    assert code == 2 and "pattern 'rnn_.*' matches no layer (layers: d)" in err
    code, _, err = cli("enhance", tmp_path / "in" / "x.npy", "-o", tmp_path / "o.wav",
                       "--model", tmp_path / "small.h5")
    assert code == 2 and "needs the denoiser's contract (257 STFT magnitudes in" in err
    assert not list(tmp_path.glob("*.tflite"))


def test_a_layer_left_in_float_under_int8_is_named(tmp_path, monkeypatch, rng):
    """A layer whose ops the converter keeps in float under an int8 rule is refused, naming it
    (simulated: the quantizer leaves the op of layer 'head' float)."""
    from tfdenoise.converters import build
    from tfdenoise.converters.calibration import CalibrationSet
    from tfdenoise.converters.keras_convert import export_keras
    from tfdenoise.converters.keras_model import KerasModel
    from tfdenoise.errors import ConversionError
    from tfdenoise.keras import keras, layers

    keras.utils.set_random_seed(0)
    inp = keras.Input((None, 16))
    model = KerasModel(keras.Model(inp, layers.Dense(4, name="head")(layers.Dense(8, name="body")(inp)),
                                   name="two"))
    real = build.quantize
    monkeypatch.setattr(build, "quantize",
                        lambda data, deny=(): real(data, [*deny, "two_step/head/Tensordot", "Identity"]))
    calib = CalibrationSet((tmp_path / "x",), (rng.normal(size=(12, 16)).astype(np.float32),))
    with pytest.raises(ConversionError, match=r"head \(Dense\): fp32"):
        export_keras(model, tmp_path / "t.tflite", "int8", calib=calib)
    assert not (tmp_path / "t.tflite").exists()


def test_resolver_knows_keras_models(tmp_path):
    from tfdenoise.errors import InputError, ModelError
    from tfdenoise.modelref import ModelFormat, require_checkpoint, resolve

    (tmp_path / "m.keras").write_bytes(b"x")
    saved = tmp_path / "saved"
    saved.mkdir()
    (saved / "saved_model.pb").write_bytes(b"x")
    for spec in (tmp_path / "m.keras", saved):
        ref = resolve(spec)
        assert ref.format is ModelFormat.KERAS and ref.is_keras and not ref.is_tflite
        with pytest.raises(InputError, match="not a Keras model file"):
            require_checkpoint(ref, "training")
    assert resolve(tmp_path / "m.keras").files == [tmp_path / "m.keras"]
    assert resolve(saved).folders == [saved]
    with pytest.raises(ModelError, match="no such Keras model file"):
        resolve(tmp_path / "none.h5")
