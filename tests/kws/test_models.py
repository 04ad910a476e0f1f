"""KWS networks (tfdenoise.kws.models): hand counts == Keras, streaming == offline, checkpoints, TFLite."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfdenoise.errors import InputError, ModelError
from tfdenoise.kws.layertable import MODELS, describe, get_spec, layer_table
from tfdenoise.kws.models import KwsModel, build, load_kws_checkpoint, save_kws_checkpoint
from tfdenoise.vocab import KwsModelName

NAMES = [m.value for m in KwsModelName]


@pytest.fixture(scope="module")
def built():
    """One seeded KwsModel per network (7 classes: none of the paper's class counts)."""
    return {n: KwsModel(n, 7, seed=i) for i, n in enumerate(NAMES)}


def keras_layer_params(model) -> dict[str, int]:
    return {layer.name: int(layer.count_params()) for layer in model.layers if layer.name != "features"}


# -- counts ---------------------------------------------------------------------------------

def test_registry_covers_every_name():
    assert set(MODELS) == set(KwsModelName)
    for name, spec in MODELS.items():
        assert spec.name is name
        assert spec.input_shape == (spec.features.window_frames, spec.features.n_features)
    assert get_spec("DSCNN") is MODELS[KwsModelName.DSCNN]
    assert MODELS[KwsModelName.DNN].build(4).output_shape == (None, 4)
    with pytest.raises(InputError, match="unknown KWS model 'rnn'.*dnn, cnn, dscnn"):
        get_spec("rnn")


def test_cnn_is_the_stm32f7_network():
    d = describe("cnn", 6)
    assert d["params"] == d["deploy_params"] == 119_936
    assert d["macs"] == 476_576
    assert d["input_shape"] == [30, 40]
    rows = {r["name"]: r for r in d["layers"]}
    assert rows["conv_0"]["output_shape"] == [1, 9, 186]      # 9 x 186 after the 30 x 8 kernel
    assert rows["conv_0"]["params"] == 44_826 and rows["conv_0"]["macs"] == 9 * 44_640
    assert rows["flatten"]["output_shape"] == [1674]
    assert [rows[f"fc_{i}"]["params"] for i in range(3)] == [53_600, 4_224, 16_512]
    assert rows["logits"]["params"] == 774
    assert d["mac_share"]["conv"] == pytest.approx(0.84, abs=0.005)  # "84 % in the conv"


@pytest.mark.parametrize("name, n_classes", [("cnn", 6), ("dscnn", 12), ("dnn", 10), ("dnn", 12)])
def test_hand_count_equals_keras(name, n_classes):
    model = build(name, n_classes)
    rows = layer_table(name, n_classes)
    assert [r["name"] for r in rows] == [layer.name for layer in model.layers[1:]]
    assert {r["name"]: r["params"] for r in rows} == keras_layer_params(model)
    d = describe(name, n_classes)
    assert d["params"] == model.count_params()
    trainable = int(sum(np.prod(w.shape) for w in model.trainable_weights))
    assert d["trainable_params"] == trainable
    for r, layer in zip(rows, model.layers[1:]):
        assert tuple(r["output_shape"]) == tuple(layer.output_shape[1:]), r["name"]
    assert tuple(model.output_shape) == (None, n_classes)


def test_dscnn_is_the_mlperf_reference():
    d = describe("dscnn", 12)
    rows = {r["name"]: r for r in d["layers"]}
    assert d["input_shape"] == [49, 10]
    assert rows["conv_0"]["output_shape"] == [25, 5, 64]
    assert rows["pool"]["output_shape"] == [1, 1, 64]
    # conv 25*5*10*4*64 + 4 x (dw 25*5*9*64 + pw 25*5*64*64) + fc 64*12
    assert d["macs"] == 320_000 + 4 * (72_000 + 512_000) + 768 == 2_656_768
    assert d["macs"] == pytest.approx(2.7e6, rel=0.03)
    assert d["params"] == 24_908 and d["deploy_params"] == 22_604


@pytest.mark.parametrize("n_classes", [10, 12])
def test_dnn_is_about_250k_parameters(n_classes):
    d = describe("dnn", n_classes)
    assert 240_000 <= d["params"] <= 260_000
    assert d["input_shape"] == [49, 40]
    assert d["layers"][0]["output_shape"] == [1960]


def test_describe_is_plain_json():
    for name in NAMES:
        d = describe(name, 12)
        assert json.loads(json.dumps(d)) == d
        assert d["model"] == name and d["features"]["window_frames"] == d["input_shape"][0]
    with pytest.raises(InputError, match="n_classes"):
        describe("cnn", 1)


# -- inference ---------------------------------------------------------------------------------

@pytest.mark.parametrize("name", NAMES)
def test_streaming_equals_offline(built, name):
    model = built[name]
    w, f = model.window_frames, model.n_features
    feats = np.random.default_rng(3).standard_normal((w + 9, f)).astype(np.float32)
    offline = model.offline_probs(feats)
    assert offline.shape == (10, 7)
    np.testing.assert_allclose(offline.sum(axis=1), 1.0, atol=1e-5)
    step = model.stream()
    got = [step(frame) for frame in feats]
    assert all(g is None for g in got[: w - 1])
    np.testing.assert_allclose(np.stack(got[w - 1:]), offline, atol=1e-5)
    # state-free: after a reset the same window gives the same answer
    step.reset()
    again = [step(frame) for frame in feats[5:5 + w]]
    np.testing.assert_allclose(again[-1], offline[5], atol=1e-5)


def test_offline_short_and_bad_input(built):
    model = built["cnn"]
    assert model.offline_probs(np.zeros((29, 40))).shape == (0, 7)
    with pytest.raises(InputError, match=r"features \[frames, 40\].*\[30, 10\]"):
        model.offline_probs(np.zeros((30, 10)))
    bad = np.zeros((30, 40))
    bad[3, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        model.offline_probs(bad)
    with pytest.raises(InputError):
        model.stream()(np.zeros(41))


def test_labels():
    m = KwsModel("dnn", labels=["yes", "no", "_silence_"])
    assert m.n_classes == 3 and m.describe()["labels"] == ["yes", "no", "_silence_"]
    assert KwsModel("dnn", 2).labels == ["class_0", "class_1"]
    with pytest.raises(InputError, match="2 labels for 3 classes"):
        KwsModel("dnn", 3, labels=["a", "b"])
    with pytest.raises(InputError, match="duplicate"):
        KwsModel("dnn", labels=["a", "a"])


# -- checkpoints -------------------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path):
    model = KwsModel("dscnn", labels=[f"w{i}" for i in range(7)], seed=5)
    folder = save_kws_checkpoint(model, tmp_path / "ck", extra={"epoch": 3})
    save_kws_checkpoint(model, folder, extra={"epoch": 4})  # overwrite in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]
    config = json.loads((folder / "config.json").read_text())
    assert config["name"] == "dscnn" and config["epoch"] == 4 and config["n_classes"] == 7
    assert config["features"]["kind"] == "mfcc" and config["features"]["window_frames"] == 49
    loaded = load_kws_checkpoint(folder)
    assert loaded.name == "dscnn" and loaded.labels == model.labels
    x = np.random.default_rng(0).standard_normal((3, 49, 10)).astype(np.float32)
    np.testing.assert_allclose(loaded.predict_windows(x), model.predict_windows(x), atol=1e-6)
    with pytest.raises(InputError, match="reserved"):
        save_kws_checkpoint(model, tmp_path / "x", extra={"labels": []})


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return save_kws_checkpoint(KwsModel("dnn", 3, seed=0), tmp_path_factory.mktemp("kws") / "ck")


def corrupt(folder, tmp_path, edit):
    import shutil

    out = tmp_path / "bad"
    shutil.copytree(folder, out)
    edit(out)
    return out


def _edit_config(**changes):
    def edit(folder):
        cfg = json.loads((folder / "config.json").read_text())
        cfg.update(changes)
        (folder / "config.json").write_text(json.dumps(cfg))
    return edit


@pytest.mark.parametrize("edit, file, message", [
    (lambda f: (f / "config.json").unlink(), None, "not a KWS checkpoint"),
    (lambda f: (f / "config.json").write_text("{not json"), "config.json", "corrupt config.json"),
    (_edit_config(family=None, variant="lstm256"), "config.json", "not a KWS checkpoint config"),
    (_edit_config(name="rnn"), "config.json", "unknown KWS model"),
    (_edit_config(n_classes=1), "config.json", "bad n_classes"),
    (_edit_config(labels=["a", "b"]), "config.json", "labels must be 3 distinct"),
    (_edit_config(features={"kind": "mfcc"}), "config.json", "feature config does not match"),
    (lambda f: (f / "weights.h5").unlink(), None, "has no weights.h5"),
    (lambda f: (f / "weights.h5").write_bytes(b"garbage"), "weights.h5", "corrupt or mismatched"),
    (_edit_config(n_classes=4, labels=list("abcd")), "weights.h5", "corrupt or mismatched"),
])
def test_corrupt_checkpoint_is_one_line_model_error(checkpoint, tmp_path, edit, file, message):
    bad = corrupt(checkpoint, tmp_path, edit)
    with pytest.raises(ModelError, match=message) as info:
        load_kws_checkpoint(bad)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(str(bad / file) if file else str(bad))


# -- TFLite ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tflite_files(built):
    from tfdenoise.keras import tf

    # about 13 s for the three on 2 busy cores: under the ~15 s line of the `slow` mark
    return {name: tf.lite.TFLiteConverter.from_keras_model(model.model).convert()
            for name, model in built.items()}


def test_every_model_converts_to_float_tflite(built, tflite_files):
    from ai_edge_litert.interpreter import Interpreter  # the project's TFLite runtime

    for name, flat in tflite_files.items():
        model = built[name]
        interp = Interpreter(model_content=flat)
        interp.allocate_tensors()
        (inp,), (out,) = interp.get_input_details(), interp.get_output_details()
        assert tuple(inp["shape"][1:]) == model.spec.input_shape
        x = np.random.default_rng(1).standard_normal((1, *model.spec.input_shape)).astype(np.float32)
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        np.testing.assert_allclose(interp.get_tensor(out["index"]), model.predict_windows(x),
                                   atol=1e-5, err_msg=name)
