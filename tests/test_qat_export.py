"""Sub-8-bit QAT export (docs/design.md §8): recipes with weight bits, export bit-exactness (the
file's weights are the grid the Keras model trained with; <= 4-bit dense weights as packed INT4),
and the CLI's checks of the QAT options."""
from __future__ import annotations

import numpy as np
import pytest

from tfdenoise import qat
from tfdenoise.errors import RecipeError

RNG = np.random.default_rng(0)


def test_recipe_weight_bits():
    from tfdenoise.converters.recipe import load, parse

    r = parse({"layers": [{"pattern": "rnn_.*", "precision": "int8", "weight_bits": 4},
                          {"pattern": ".*", "precision": "int8"}]})
    assert r.resolve_bits()["rnn_0"] == 4 and r.resolve_bits()["fc_in"] is None
    r.check_bits({"rnn_0": 4, "rnn_1": 4, "fc_in": 8})
    with pytest.raises(RecipeError, match="asks 4-bit weights for layer rnn_0, which was trained with 8-bit"):
        r.check_bits({"rnn_0": 8, "rnn_1": 8})
    with pytest.raises(RecipeError, match="not trained with --qat-bits"):
        r.check_bits({})
    for bad, match in ((3, "weight bits must be one of"), (4.5, "weight bits")):
        with pytest.raises(RecipeError, match=match):
            parse({"layers": [{"pattern": ".*", "precision": "int8", "weight_bits": bad}]})
    with pytest.raises(RecipeError, match="int8 layers"):
        parse({"layers": [{"pattern": ".*", "precision": "fp16", "weight_bits": 8}]})
    assert load("qat_rnn4").resolve_bits() == {"fc_in": 8, "rnn_0": 4, "rnn_1": 4, "fc_mid": 8, "fc_out": 8}


# -- export bit-exactness --------------------------------------------------------------------

def _kws_qat_checkpoint(folder, bits: int, stage: int = 1):
    """A tiny QAT checkpoint of the KWS DNN (3 classes, random weights): folded, stepped once
    through the QAT network, saved as the trainers save it (latent weights + "qat" entry)."""
    from tfdenoise import qat_layers, qat_quantizers
    from tfdenoise.keras import tf
    from tfdenoise.kws.models import KwsModel, save_kws_checkpoint
    from tfdenoise.kws.train import logits_model

    model = KwsModel("dnn", labels=["a", "b", "c"], seed=1)
    net = logits_model(model)
    qat_quantizers.fold_network(net)
    bitmap = qat_layers.plan_bits(net, bits)
    qnet = qat_layers.qat_network(net, bitmap, stage)
    x = RNG.normal(size=(8, *model.spec.input_shape)).astype(np.float32)
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(qnet(x, training=True) ** 2)
    for v, g in zip(qnet.trainable_variables, tape.gradient(loss, qnet.trainable_variables)):
        v.assign_sub(1e-3 * g)
    save_kws_checkpoint(model, folder, {"qat": qat_layers.qat_record(net, qnet, bitmap, stage)})
    return qat_layers.quantized_weights(qnet), x


def _file_weights(data: bytes) -> dict[str, tuple]:
    """layer -> (type, levels [out, in], scales) of every FULLY_CONNECTED weight, read from the
    file with the targets reader (no TensorFlow)."""
    from tfdenoise.converters.passes import unpack_int4
    from tfdenoise.targets.reader import parse_tflite

    g = parse_tflite(data)
    sg = g.main
    out = {}
    for op in sg.operators:
        if op.opcode != "FULLY_CONNECTED":
            continue
        t = sg.tensors[op.inputs[1]]
        levels = (unpack_int4(t.data, t.size) if t.dtype == "INT4" else np.frombuffer(t.data, np.int8))
        out[t.name] = (t.dtype, levels.reshape(t.shape), np.asarray(t.quant.scale, np.float32))
    return out


@pytest.mark.parametrize("bits", [4, 5])
def test_kws_export_holds_the_trained_grid(tmp_path, bits):
    from tfdenoise.converters.kws_convert import convert_kws
    from tfdenoise.converters.kws_runner import TFLiteKws
    from tfdenoise.converters.metadata import read_metadata
    from tfdenoise.kws.models import load_kws_checkpoint

    trained, x = _kws_qat_checkpoint(tmp_path / "ckpt", bits)
    model = load_kws_checkpoint(tmp_path / "ckpt")
    data = convert_kws(model, "kws_int8_float_softmax", x)
    weights = _file_weights(data)
    assert len(weights) == 4
    for name, layer in (("fc_0", "fc_0"), ("fc_1", "fc_1"), ("fc_2", "fc_2"), ("logits", "logits")):
        dtype, levels, scales = next(v for k, v in weights.items() if f"/{name}/" in k or k.startswith(f"{name}/")
                                     or f";{name}" in k or name in k.split("/"))
        assert dtype == ("INT4" if bits <= 4 else "INT8")
        for row in levels:  # at most 2^b - 1 levels per tensor, per row
            assert len(np.unique(row)) <= qat.level_count(bits)
        assert len(np.unique(levels)) <= qat.level_count(bits)
        keras_grid = trained[(layer, "kernel")].T  # the values the training graph multiplied with
        file_values = (levels.astype(np.float32) * scales[:, None]).astype(np.float32)
        assert np.array_equal(file_values, keras_grid), name
    meta = read_metadata(data)
    assert {la["name"]: (la["weight_bits"], la["weight_storage"]) for la in meta["layers"]} == {
        "fc_0": (bits, "int4" if bits <= 4 else "int8"), "fc_1": (bits, "int4" if bits <= 4 else "int8"),
        "fc_2": (bits, "int4" if bits <= 4 else "int8"), "logits": (bits, "int4" if bits <= 4 else "int8"),
        "probs": (None, None)}
    assert meta["qat"]["stage"] == 1
    run = TFLiteKws(data)  # LiteRT runs the INT4 / snapped file
    probs = run.predict_windows(x)
    assert probs.dtype == np.float32 and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert np.mean(probs.argmax(1) == model.predict_windows(x).argmax(1)) >= 0.75


def test_kws_export_refuses_other_widths(tmp_path):
    from tfdenoise.converters.kws_convert import convert_kws
    from tfdenoise.kws.models import KwsModel, load_kws_checkpoint

    _, x = _kws_qat_checkpoint(tmp_path / "ckpt", 5)
    with pytest.raises(RecipeError, match="asks 4-bit weights for layer fc_0, which was trained with 5-bit"):
        convert_kws(load_kws_checkpoint(tmp_path / "ckpt"), "kws_qat4", x)
    with pytest.raises(RecipeError, match="not trained with --qat-bits"):
        convert_kws(KwsModel("dnn", labels=["a", "b", "c"], seed=1), "kws_qat4", x)


def _denoiser_qat(qat_checkpoint, variant: str):
    """The ``qat_rnn4`` export of a 4-bit-RNN QAT checkpoint, its model and its Keras grid."""
    from tfdenoise.converters.convert import convert
    from tfdenoise.models import load_checkpoint

    folder, trained = qat_checkpoint(variant, 4)
    model = load_checkpoint(folder)
    return model, convert(model, "qat_rnn4"), trained


def _check_widths(data: bytes, rnn_storage: str) -> None:
    from tfdenoise.converters.metadata import read_metadata

    layers = read_metadata(data)["layers"]
    assert {la["name"]: la["weight_bits"] for la in layers} == {
        "fc_in": 8, "rnn_0": 4, "rnn_1": 4, "fc_mid": 8, "fc_out": 8}
    assert {la["name"]: la["weight_storage"] for la in layers} == {
        "fc_in": "int8", "rnn_0": rnn_storage, "rnn_1": rnn_storage, "fc_mid": "int8", "fc_out": "int8"}


@pytest.mark.slow
def test_denoiser_export_holds_the_trained_grid(qat_checkpoint):
    """LSTM128 with 4-bit RNN weights (8-bit FCs): the fused LSTM's 8 gate tensors per layer
    hold the 15-level grid in INT8 containers, one scale per gate, equal to the Keras grid."""
    from tfdenoise.converters import fbgraph

    _, data, trained = _denoiser_qat(qat_checkpoint, "lstm128")
    m = fbgraph.load(data)
    sg = m.subgraphs[0]
    lstms = [op for op in sg.operators if fbgraph.op_name(m, op) == "UNIDIRECTIONAL_SEQUENCE_LSTM"]
    assert len(lstms) == 2
    for layer, op in zip(("rnn_0", "rnn_1"), lstms):
        for pos in range(1, 9):
            t = sg.tensors[op.inputs[pos]]
            levels = fbgraph.const_array(m, t)
            assert t.type == 9 and len(np.unique(levels)) <= 15 and np.abs(levels).max() <= 7
            weight, gate = ("kernel", pos - 1) if pos <= 4 else ("recurrent_kernel", pos - 5)
            keras = trained[(layer, weight)]
            u = keras.shape[1] // 4
            want = keras[:, gate * u:(gate + 1) * u].T
            got = (levels.astype(np.float32) * np.float32(t.quantization.scale[0])).astype(np.float32)
            assert np.array_equal(got, want), (layer, pos)
    _check_widths(data, "int8")


@pytest.mark.slow
def test_gru_denoiser_export_holds_the_trained_grid(qat_checkpoint):
    """GRU128 with 4-bit RNN weights (8-bit FCs): the GRU runs as fully connected ops, so its
    kernel and recurrent kernel are packed INT4 tensors (one scale per output channel) equal
    to the Keras grid; every FC holds its 8-bit grid; the file runs in LiteRT close to the
    Keras grid model (int8 activations)."""
    from tfdenoise.converters import fbgraph
    from tfdenoise.converters.interpreter import TFLiteDenoiser

    model, data, trained = _denoiser_qat(qat_checkpoint, "gru128")
    m = fbgraph.load(data)
    sg = m.subgraphs[0]
    seen = set()
    for op in sg.operators:
        if fbgraph.op_name(m, op) != "FULLY_CONNECTED":
            continue
        t = sg.tensors[op.inputs[1]]
        name = fbgraph.tensor_name(t)
        layer = next(la for la in ("fc_in", "rnn_0", "rnn_1", "fc_mid", "fc_out") if f"/{la}" in name)
        weight = "recurrent_kernel" if name.endswith("MatMul_1") else "kernel"
        levels = fbgraph.const_array(m, t).astype(np.float32)
        want = trained[(layer, weight)].T
        rnn = layer.startswith("rnn")
        assert t.type == (fbgraph.INT4 if rnn else 9), name
        assert np.abs(levels).max() <= (7 if rnn else 127)
        scale = np.asarray(t.quantization.scale, np.float32).reshape(-1, 1)
        assert len(scale) == want.shape[0]                       # per output channel
        assert np.array_equal((levels * scale).astype(np.float32), want), name
        seen.add((layer, weight))
    assert seen == set(trained)
    _check_widths(data, "int4")
    frames = RNG.uniform(0, 2, (40, 257)).astype(np.float32)
    lite = TFLiteDenoiser(data).sequence_mask()(frames)
    keras = model.sequence_mask()(frames)
    assert np.isfinite(lite).all() and np.abs(lite - keras).mean() < 0.01


@pytest.mark.parametrize("command", [["train", "--variant", "lstm128", "--speech", "S", "--noise", "N"],
                                     ["kws", "train", "--model", "dnn", "--data", "D"]])
@pytest.mark.parametrize("bad", ["0", "9", "3.5"])
def test_cli_refuses_bad_widths_before_any_work(tmp_path, capsys, command, bad):
    from tfdenoise.cli import main

    code = main([*command, "--out", str(tmp_path / "run"), "--qat-bits", bad, "--init", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert f"--qat-bits {bad}: weight bits must be one of 1, 2, 4, 5, 8" in err
    assert not (tmp_path / "run").exists()


def test_cli_qat_option_combinations(tmp_path, capsys):
    from tfdenoise.cli import main

    base = ["train", "--variant", "lstm128", "--speech", "S", "--noise", "N", "--out", str(tmp_path / "r")]
    assert main([*base, "--init", str(tmp_path)]) == 2
    assert "go with --qat-bits" in capsys.readouterr().err
    assert main([*base, "--qat-bits", "4", "--init", str(tmp_path), "--resume"]) == 2
    assert "give one of them" in capsys.readouterr().err
    assert main([*base, "--qat-bits", "4", "--qat-stage", "2", "--init", str(tmp_path)]) == 2
    assert "not a checkpoint" in capsys.readouterr().err


def test_cli_range_layout_options_where_they_apply(tmp_path, capsys):
    """--qat-ranges and --qat-calib-ranges are the denoiser's stage 2 only."""
    from tfdenoise.cli import main

    base = ["train", "--variant", "lstm128", "--speech", "S", "--noise", "N", "--out", str(tmp_path / "r")]
    assert main([*base, "--qat-ranges", "asymmetric"]) == 2
    assert "go with --qat-bits" in capsys.readouterr().err
    assert main([*base, "--qat-bits", "8", "--qat-ranges", "asymmetric", "--init", str(tmp_path)]) == 2
    assert "--qat-ranges asymmetric: for stage 2 (--qat-stage 2)" in capsys.readouterr().err
    kws = ["kws", "train", "--model", "dnn", "--data", "D", "--out", str(tmp_path / "k"), "--qat-bits", "8",
           "--qat-stage", "2", "--qat-ranges", "asymmetric", "--init", str(tmp_path)]
    assert main(kws) == 2
    assert "for the denoiser (tfdenoise train); a KWS network trains [min, max]" in capsys.readouterr().err
    assert main([*base, "--qat-bits", "8", "--qat-calib-ranges", "--init", str(tmp_path)]) == 2
    assert "--qat-calib-ranges: for stage 2" in capsys.readouterr().err
    assert main([*base, "--qat-calib-ranges"]) == 2
    assert "go with --qat-bits" in capsys.readouterr().err
    assert not (tmp_path / "r").exists() and not (tmp_path / "k").exists()


def _stage2_checkpoint(folder, one_sided: bool):
    """A GRU128 stage-2 checkpoint (random weights) whose ranges trained on one batch of real
    magnitudes, one-sided (--qat-ranges asymmetric) or symmetric."""
    from tfdenoise import qat_layers, qat_quantizers
    from tfdenoise.converters.calibration import CalibrationSet
    from tfdenoise.models import TinyDenoiser, save_checkpoint

    den = TinyDenoiser("gru128", seed=3)
    qat_quantizers.fold_network(den.sequence)
    bits = qat_layers.plan_bits(den.sequence, 8)
    qnet = qat_layers.qat_network(den.sequence, bits, 2, True, "std3", one_sided=one_sided)
    qnet(CalibrationSet.load(max_frames=64).frames[0][None], training=True)
    record = qat_layers.qat_record(den.sequence, qnet, bits, 2)
    record["act_ranges_kind"] = "asymmetric" if one_sided else "symmetric"
    save_checkpoint(den, folder, {"qat": record})
    return record


def test_asymmetric_stage2_checkpoint_exports_its_trained_intervals(tmp_path):
    """The export follows the trained one-sided ranges: the input on [0, hi] (zero point -128,
    scale hi / 255), metadata 'asymmetric'; the table labels the row."""
    from tfdenoise.converters import fbgraph
    from tfdenoise.converters.calibration import CalibrationSet
    from tfdenoise.converters.convert import convert
    from tfdenoise.converters.metadata import read_metadata
    from tfdenoise.models import load_checkpoint
    from tfdenoise.validation import _qat_model

    record = _stage2_checkpoint(tmp_path / "ckpt", one_sided=True)
    data = convert(load_checkpoint(tmp_path / "ckpt"), "int8", CalibrationSet.load(max_frames=16))
    m = fbgraph.load(data)
    sg = m.subgraphs[0]
    op = next(o for o in sg.operators if fbgraph.op_name(m, o) == "QUANTIZE")
    q = sg.tensors[op.outputs[0]].quantization
    lo, hi = record["act_ranges"]["qat_input"]
    assert lo == 0.0 and int(q.zeroPoint[0]) == -128
    assert float(q.scale[0]) == pytest.approx(hi / 255.0, rel=1e-5)
    cal = read_metadata(data)["calibration"]
    assert cal["ranges"] == "asymmetric" and cal["qat_trained_ranges"] >= 3
    assert _qat_model(tmp_path / "ckpt", "gru128")[1] == "qat 8-bit, stage 2, asymmetric (ckpt)"


def test_calibrated_ranges_hook_fresh_and_resumed(tmp_path, qat_checkpoint):
    """--qat-calib-ranges: a fresh stage 2 sets and fixes the given ranges and records which;
    a resumed run fixes exactly those again (not the GRU state range, still learnt) and must
    be resumed with the flag; a stage-2 start refuses the other range layout."""
    from tfdenoise.errors import InputError
    from tfdenoise.models import TinyDenoiser
    from tfdenoise.qat_train import QatHook

    folder, _ = qat_checkpoint("gru128", 8)
    given = {"input": (0.0, 5.0), "fc_in": (0.0, 3.0)}
    kw = dict(symmetric=True, statistic="std3", ranges="asymmetric")
    hook = QatHook(8, 2, init=folder, calib_ranges=lambda: given, **kw)
    qnet = hook.start(TinyDenoiser("gru128", seed=1).sequence, 1, 1, None)
    rec = hook.epoch_end()["qat"]
    assert rec["act_ranges_fixed"] == ["qat_input", "qat_act_relu_in"]
    assert rec["act_ranges"]["qat_input"] == [0.0, 5.0] and rec["act_ranges_kind"] == "asymmetric"
    again = QatHook(8, 2, calib_ranges=lambda: pytest.fail("a resumed run recalibrates"), **kw)
    again.start(TinyDenoiser("gru128", seed=1).sequence, 1, 1, {"qat": rec})
    assert again.fixed == ["qat_input", "qat_act_relu_in"]
    assert again.epoch_end()["qat"]["act_ranges"]["qat_act_relu_in"] == [0.0, 3.0]
    with pytest.raises(InputError, match="--qat-calib-ranges exactly when"):
        QatHook(8, 2, **kw).start(TinyDenoiser("gru128", seed=1).sequence, 1, 1, {"qat": rec})
    _stage2_checkpoint(tmp_path / "sym", one_sided=False)
    with pytest.raises(InputError, match="trained with symmetric activation ranges continues"):
        QatHook(8, 2, init=tmp_path / "sym", **kw)
    assert qnet is not None
