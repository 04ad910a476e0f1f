"""Sub-8-bit QAT (docs/design.md §8): the tanh grid, its straight-through gradient, the recurrent
layers, BatchNorm folding, the stage switch and bad widths (export: tests/test_qat_export.py)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfdenoise import qat
from tfdenoise.errors import InputError
from tfdenoise.vocab import QuantGroup

RNG = np.random.default_rng(0)


def _w(shape=(40, 24), scale=0.3):
    return (RNG.normal(size=shape) * scale).astype(np.float32)


# -- the quantizer ---------------------------------------------------------------------------

@pytest.mark.parametrize("bits", qat.WEIGHT_BITS)
def test_levels_are_symmetric_and_counted(bits):
    w = _w((300, 16))
    k, steps = qat.grid_of(w, bits, QuantGroup.CHANNEL)
    L = qat.levels(bits)
    assert k.shape == w.shape and steps.shape == (16,) and np.all(steps > 0)
    assert k.min() >= -L and k.max() <= L
    assert len(np.unique(k)) <= qat.level_count(bits)
    if bits == 1:
        assert set(np.unique(k)) == {-1, 1}  # binary: no zero
    if bits == 2:
        assert set(np.unique(k)) == {-1, 0, 1}  # ternary
    # each channel's largest |tanh(w)| sits on the outermost level (b >= 2)
    if bits > 1:
        assert np.all(np.abs(k).max(axis=0) == L)
    assert qat.level_count(bits) == {1: 2, 2: 3, 4: 15, 5: 31, 8: 255}[bits]


def test_grid_follows_the_tanh_formula():
    w = _w((50, 8))
    k, steps = qat.grid_of(w, 4, QuantGroup.TENSOR)
    u = np.tanh(w) / np.abs(np.tanh(w)).max()
    assert np.array_equal(k, np.round(7 * u).astype(np.int32))
    assert np.isclose(steps[0], np.abs(w).max() / 7, rtol=1e-6)


def test_straight_through_gradient():
    """d(k * step)/dw is the gradient of the unrounded step * L * tanh(w) / max|tanh(w)|."""
    from tfdenoise.keras import tf

    w = tf.constant(_w((30, 6)))
    g_out = tf.constant(RNG.normal(size=(30, 6)).astype(np.float32))
    with tf.GradientTape() as tape:
        tape.watch(w)
        y = tf.reduce_sum(qat.tanh_quantize(w, 4, QuantGroup.CHANNEL) * g_out)
    got = tape.gradient(y, w)
    with tf.GradientTape() as tape:
        tape.watch(w)
        t = tf.tanh(w)
        m = tf.reduce_max(tf.abs(t), axis=0, keepdims=True)
        alpha = tf.stop_gradient(tf.reduce_max(tf.abs(w), axis=0, keepdims=True))
        y = tf.reduce_sum(alpha / 7.0 * (7.0 * t / m) * g_out)
    want = tape.gradient(y, w)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-6) and np.abs(np.asarray(got)).max() > 0
    with tf.GradientTape() as tape:  # 1 bit: sign passes the gradient straight through too
        tape.watch(w)
        y = tf.reduce_sum(qat.tanh_quantize(w, 1) * g_out)
    assert np.abs(np.asarray(tape.gradient(y, w))).max() > 0


@pytest.mark.parametrize("bad", [0, 9, 3.5, "3.5", "four", True, -4, 16])
def test_bad_bit_widths_are_one_line_errors(bad):
    with pytest.raises(InputError) as err:
        qat.check_bits(bad)
    msg = str(err.value)
    assert "\n" not in msg and "--qat-bits" in msg and "1, 2, 4, 5, 8" in msg


def test_bits_options():
    assert [qat.check_bits(b) for b in ("1", 2, "4", 5, "8")] == [1, 2, 4, 5, 8]
    rules = qat.parse_layer_bits(["rnn_.*=4", "fc_out=8"])
    assert qat.bits_for("rnn_1", 8, rules) == 4 and qat.bits_for("fc_in", 5, rules) == 5
    for bad, match in (("rnn_.*", "PATTERN=BITS"), ("rnn_(=4", "regular expression"), ("x=3", "weight bits")):
        with pytest.raises(InputError, match=match):
            qat.parse_layer_bits([bad])
    for bad in (0, 3, "2", None):
        with pytest.raises(InputError, match="--qat-stage"):
            qat.check_stage(bad)
    assert qat.container_bits(4) == 4 and qat.container_bits(5) == 8 and qat.container_bits(2, int4_op=False) == 8


def test_levels_of_checks_the_grid():
    w = _w((20, 4))
    k, steps = qat.grid_of(w, 5, QuantGroup.GATES, gates=2)
    vals = qat.grid_values(k, steps, QuantGroup.GATES, 2)
    assert np.array_equal(qat.levels_of(vals, steps, QuantGroup.GATES, 2), k)
    with pytest.raises(InputError, match="not on their recorded grid"):
        qat.levels_of(vals + 1e-3, steps, QuantGroup.GATES, 2)


# -- Keras side ------------------------------------------------------------------------------

def _chain(rnn: str = "lstm", bn: bool = True):
    from tfdenoise.keras import keras

    inp = keras.Input((None, 12), name="magnitudes")
    x = keras.layers.Dense(12, name="fc_in")(inp)
    if bn:
        x = keras.layers.BatchNormalization(name="bn_in")(x)
    x = keras.layers.ReLU(name="relu_in")(x)
    cls = keras.layers.LSTM if rnn == "lstm" else keras.layers.GRU
    x = cls(8, return_sequences=True, name="rnn_0")(x)
    x = keras.layers.Dense(12, activation="sigmoid", name="fc_out")(x)
    net = keras.Model(inp, x)
    if bn:
        net.get_layer("bn_in").set_weights([RNG.uniform(0.5, 2, 12).astype(np.float32), _w(12, 0.1),
                                            _w(12, 0.2), RNG.uniform(0.5, 3, 12).astype(np.float32)])
    return net


def test_batchnorm_folding_is_exact_and_idempotent():
    from tfdenoise import qat_quantizers

    net = _chain()
    x = RNG.normal(size=(2, 5, 12)).astype(np.float32)
    ref = net(x, training=False).numpy()
    assert qat_quantizers.fold_network(net) == ["bn_in"]
    assert np.allclose(net(x, training=False).numpy(), ref, atol=1e-5)
    bn = net.get_layer("bn_in")
    assert not bn.trainable
    h = RNG.normal(size=(3, 4, 12)).astype(np.float32)
    assert np.array_equal(bn(h, training=False).numpy(), h)  # exactly the identity
    w = net.get_layer("fc_in").get_weights()[0].copy()
    qat_quantizers.fold_network(net)
    assert np.array_equal(net.get_layer("fc_in").get_weights()[0], w)


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
def test_stage1_network_is_the_plain_network_on_the_grid(rnn):
    """Our LSTM / GRU equations with quantized weights == Keras's own layer holding the grid."""
    from tfdenoise import qat_layers, qat_quantizers

    net = _chain(rnn)
    qat_quantizers.fold_network(net)
    bits = qat_layers.plan_bits(net, 5, [("rnn_.*", 4)])
    assert bits == {"fc_in": 5, "rnn_0": 4, "fc_out": 5}
    qnet = qat_layers.qat_network(net, bits, 1)
    x = RNG.normal(size=(2, 7, 12)).astype(np.float32)
    got = qnet(x, training=False).numpy()
    trained = qat_layers.quantized_weights(qnet)
    assert set(trained) == {("fc_in", "kernel"), ("rnn_0", "kernel"), ("rnn_0", "recurrent_kernel"),
                            ("fc_out", "kernel")}
    record = qat_layers.qat_record(net, qnet, bits, 1)
    grids = qat_layers.apply_grid(net, record)
    for key, g in grids.items():
        assert np.array_equal(trained[key], qat.grid_values(g["k"], g["steps"], g["group"], g["gates"]))
    assert np.allclose(net(x, training=False).numpy(), got, atol=2e-6)


def test_shares_variables_and_trains():
    from tfdenoise import qat_layers, qat_quantizers
    from tfdenoise.keras import tf

    net = _chain("lstm")
    qat_quantizers.fold_network(net)
    qnet = qat_layers.qat_network(net, qat_layers.plan_bits(net, 4), 2)
    plain = {id(v) for v in net.trainable_variables}
    assert {id(v) for v in qnet.trainable_variables} <= plain
    x = RNG.normal(size=(2, 6, 12)).astype(np.float32)
    before = net.get_layer("rnn_0").get_weights()[0].copy()
    opt = tf.keras.optimizers.SGD(0.5) if hasattr(tf, "keras") else None
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(qnet(x, training=True) ** 2)
    grads = tape.gradient(loss, qnet.trainable_variables)
    assert all(g is not None for g in grads)
    for v, g in zip(qnet.trainable_variables, grads):
        v.assign_sub(0.5 * g)
    assert not np.array_equal(net.get_layer("rnn_0").get_weights()[0], before)
    del opt


def test_stage_switch():
    """Stage 2 adds input / activation quantizers (sigmoid on TFLite's fixed 1/256 grid) and the
    int8 state; stage 1 has none.  Stage 2 starts from a stage-1 checkpoint only."""
    from tfdenoise import qat_layers, qat_quantizers

    net = _chain("lstm")
    qat_quantizers.fold_network(net)
    bits = qat_layers.plan_bits(net, 8)
    s1 = qat_layers.qat_network(net, bits, 1)
    s2 = qat_layers.qat_network(net, bits, 2)
    acts1 = [la.name for la in s1.layers if isinstance(la, qat_quantizers.ActQuant)]
    acts2 = [la.name for la in s2.layers if isinstance(la, qat_quantizers.ActQuant)]
    assert acts1 == [] and acts2 == ["qat_input", "qat_act_relu_in", "qat_pre_fc_out", "qat_act_fc_out"]
    x = RNG.normal(size=(3, 6, 12)).astype(np.float32)
    s2(x, training=True)
    rec = qat_layers.qat_record(net, s2, bits, 2)
    lo, hi = rec["act_ranges"]["qat_act_fc_out"]
    assert (lo, hi) == (0.0, 255.0 / 256.0)
    assert rec["act_ranges"]["qat_act_relu_in"][0] == 0.0
    out = s2(x, training=False).numpy()
    assert np.allclose(out * 256, np.round(out * 256), atol=1e-4)  # mask on the 1/256 grid
    rnn = [la for la in s2.layers if isinstance(la, qat_layers.QuantizedRNN)][0]
    h = rnn(RNG.normal(size=(2, 4, 12)).astype(np.float32)).numpy()
    assert np.allclose(h * 127.5, np.round(h * 127.5), atol=1e-3)  # int8 over [-1, 1] (zero nudged)
    fresh = qat_layers.qat_network(net, bits, 2)
    assert qat_layers.restore_ranges(fresh, rec) == 4  # no state range without a statistic
    sym = qat_layers.qat_network(net, bits, 2, symmetric=True)  # the denoiser's export: [-r, r]
    sym(x, training=True)
    lo, hi = qat_layers.qat_record(net, sym, bits, 2)["act_ranges"]["qat_act_relu_in"]
    assert lo == -hi and hi > 0
    std3 = qat_layers.qat_network(net, bits, 2, symmetric=True, statistic="std3")
    assert qat_layers.qat_record(net, std3, bits, 2)["act_ranges"]["qat_rnn_0"] == [-1.0, 1.0]
    std3(x, training=True)  # |mean| + 3 std of the batch, never above its max
    ranges = qat_layers.qat_record(net, std3, bits, 2)["act_ranges"]
    lo3, hi3 = ranges["qat_input"]
    assert lo3 == -hi3 and 0 < hi3 <= np.abs(x).max() + 1e-6
    slo, shi = ranges["qat_rnn_0"]  # the hidden state's learnt range, inside (-1, 1)
    assert slo == -shi and 0 < shi < 1
    again = qat_layers.qat_network(net, bits, 2, symmetric=True, statistic="std3")
    assert qat_layers.restore_ranges(again, {"act_ranges": ranges}) == 5
    with pytest.raises(ValueError, match="std3 with symmetric"):
        qat_quantizers.EmaRangeQuantizer(statistic="std3")


def test_one_sided_ranges_for_the_never_negative_tensors():
    """--qat-ranges asymmetric: the input and the ReLU output train [0, 2 r] (r their std3 range
    as the symmetric network learns it); the pre-sigmoid tensor and the states stay symmetric."""
    from tfdenoise import qat_layers, qat_quantizers

    net = _chain("lstm")
    qat_quantizers.fold_network(net)
    bits = qat_layers.plan_bits(net, 8)
    x = np.abs(RNG.normal(size=(3, 6, 12))).astype(np.float32)
    nets = {side: qat_layers.qat_network(net, bits, 2, symmetric=True, statistic="std3", one_sided=side)
            for side in (False, True)}
    got = {}
    for side, q in nets.items():
        q(x, training=True)
        got[side] = qat_layers.qat_record(net, q, bits, 2)["act_ranges"]
    sym, one = got[False], got[True]
    assert one["qat_input"][0] == 0.0 and one["qat_input"][1] == pytest.approx(2 * sym["qat_input"][1], rel=1e-5)
    # the ReLU output sees the other network's (finer) input grid: about twice its range
    assert one["qat_act_relu_in"][0] == 0.0
    assert one["qat_act_relu_in"][1] == pytest.approx(2 * sym["qat_act_relu_in"][1], rel=0.05)
    for name in ("qat_pre_fc_out", "qat_rnn_0"):   # signed tensors: symmetric in both
        assert one[name][0] == -one[name][1] < 0
    out = nets[True].get_layer("qat_input")(x, training=False).numpy()
    step = one["qat_input"][1] / 255.0
    assert np.allclose(out / step, np.round(out / step), atol=1e-3) and out.min() >= 0.0
    with pytest.raises(ValueError, match="symmetric range"):
        qat_quantizers.EmaRangeQuantizer(one_sided=True)


def test_fixed_ranges_stay_while_the_others_learn():
    """--qat-calib-ranges: the ranges given per deployment tensor are set and no longer follow
    the batches; a range not given (here rnn_0's state) keeps learning; ``names`` fixes the
    named ones as they are (a resumed run)."""
    from tfdenoise import qat_layers, qat_quantizers

    net = _chain("lstm")
    qat_quantizers.fold_network(net)
    bits = qat_layers.plan_bits(net, 8)
    q = qat_layers.qat_network(net, bits, 2, symmetric=True, statistic="std3", one_sided=True)
    given = {"input": (0.0, 5.0), "fc_in": (0.0, 3.0), "fc_out": (-4.0, 4.0)}
    fixed = qat_layers.fix_ranges(q, given)
    assert sorted(fixed) == ["qat_act_relu_in", "qat_input", "qat_pre_fc_out"]
    q(RNG.normal(size=(3, 6, 12)).astype(np.float32) * 9, training=True)
    ranges = qat_layers.qat_record(net, q, bits, 2)["act_ranges"]
    assert ranges["qat_input"] == [0.0, 5.0] and ranges["qat_act_relu_in"] == [0.0, 3.0]
    assert ranges["qat_pre_fc_out"] == [-4.0, 4.0]
    assert ranges["qat_act_fc_out"] == [0.0, 255.0 / 256.0]   # the sigmoid's fixed grid
    assert ranges["qat_rnn_0"] != [-1.0, 1.0]                  # learnt from the batch
    assert qat_layers.fix_ranges(q, None, names=["qat_rnn_0"]) == ["qat_rnn_0"]   # a resumed run's


def test_hook_refuses_stage2_from_a_float_checkpoint(tmp_path):
    from tfdenoise.qat_train import QatHook, check_same_run

    (tmp_path / "float").mkdir()
    (tmp_path / "float" / "config.json").write_text(json.dumps({"variant": "lstm128"}))
    with pytest.raises(InputError, match="stage-1 checkpoint"):
        QatHook(4, 2, init=tmp_path / "float")
    QatHook(4, 1, init=tmp_path / "float")  # stage 1 starts from float weights
    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "config.json").write_text(json.dumps(
        {"qat": {"stage": 1, "bits": {"fc_in": 4, "rnn_0": 4}, "tensors": []}}))
    QatHook(4, 2, init=tmp_path / "s1")
    with pytest.raises(InputError, match="widths differ .*rnn_0 4 -> 8"):
        QatHook(4, 2, layer_bits=(("rnn_.*", 8),), init=tmp_path / "s1")
    with pytest.raises(InputError, match="stage 1, not --qat-stage 2"):
        check_same_run({"stage": 1, "bits": {}}, 4, 2, ())
    with pytest.raises(InputError, match="--init: not a checkpoint"):
        QatHook(4, 1, init=tmp_path / "nothing")


@pytest.mark.parametrize("bits", [2, 4, 8])
@pytest.mark.parametrize("group,gates", [(QuantGroup.CHANNEL, 1), (QuantGroup.GATES, 4), (QuantGroup.TENSOR, 1)])
def test_latent_init_makes_the_grid_the_linear_quantization(bits, group, gates):
    """atanh init: the stage-1 grid of the latent weights is round(L w / M) * M / L per group,
    the float weights linearly quantized; copying them in gives a tanh-distorted grid."""
    w = _w((24, 32), 1.5)                       # large weights: tanh bends them
    view, axes = qat.group_axes(w.shape, group, gates)
    m = np.abs(w.reshape(view)).max(axis=axes, keepdims=True)
    lv = qat.levels(bits)
    want = (np.round(w.reshape(view) / m * lv) * (m / lv)).reshape(w.shape)
    k, steps = qat.grid_of(qat.latent_for(w, bits, group, gates), bits, group, gates)
    got = qat.grid_values(k, steps, group, gates)
    assert np.allclose(got, want, atol=1e-5 * np.abs(w).max())
    k0, s0 = qat.grid_of(w, bits, group, gates)
    assert np.abs(qat.grid_values(k0, s0, group, gates) - w).max() > 0.1   # "copy": distorted


def test_hook_inits_latent_weights_from_float_only(tmp_path):
    """A stage-1 hook from a float checkpoint puts the kernels at their inverse-tanh latent
    values: every grid weight is within half a step of the (BN-folded) float weight, and the
    hook records how it started; "copy" starts tanh-distorted (errors of many steps)."""
    from tfdenoise import qat_layers, qat_quantizers
    from tfdenoise.models import TinyDenoiser, save_checkpoint
    from tfdenoise.qat_train import QatHook

    den = TinyDenoiser("gru128", seed=1)
    den.sequence.set_weights([w * 5 if w.ndim == 2 else w for w in den.sequence.get_weights()])
    save_checkpoint(den, tmp_path / "float")       # trained-size weights (|w| ~ 1): tanh bends them
    qat_quantizers.fold_network(den.sequence)
    for init in ("atanh", "copy"):
        hook = QatHook(8, 1, init=tmp_path / "float", latent_init=init)
        qnet = hook.start(TinyDenoiser("gru128", seed=9).sequence, 1, 1, None)
        assert hook.epoch_end()["qat"]["latent_init"] == init
        for (layer, weight), grid in qat_layers.quantized_weights(qnet).items():
            la = den.sequence.get_layer(layer)
            ref = getattr(la.cell if hasattr(la, "cell") else la, weight).numpy()
            err_steps = np.abs(grid - ref).max() / (np.abs(ref).max() / qat.levels(8))
            if init == "atanh":
                assert err_steps <= 0.5 + 1e-3, (layer, weight, err_steps)
            else:
                assert err_steps > 2, (layer, weight, err_steps)
    with pytest.raises(InputError, match="--qat-latent-init 'x'"):
        QatHook(8, 1, init=tmp_path / "float", latent_init="x")


def test_train_layers_freezes_the_others(tmp_path):
    """--qat-train-layers fc_in: only fc_in's kernel and bias stay trainable in the QAT network
    (recorded in the checkpoint entry); a pattern naming nothing or not compiling is one line."""
    from tfdenoise.models import TinyDenoiser, save_checkpoint
    from tfdenoise.qat_train import QatHook

    save_checkpoint(TinyDenoiser("gru128", seed=1), tmp_path / "float")
    hook = QatHook(8, 1, init=tmp_path / "float", train_layers="fc_in")
    qnet = hook.start(TinyDenoiser("gru128", seed=2).sequence, 1, 1, None)
    names = sorted(v.name.split("/")[-2] + "/" + v.name.split("/")[-1].split(":")[0] for v in qnet.trainable_weights)
    assert names == ["fc_in/bias", "fc_in/kernel"], names
    assert hook.epoch_end()["qat"]["train_layers"] == "fc_in"
    with pytest.raises(InputError, match="names no layer with weights"):
        QatHook(8, 1, init=tmp_path / "float", train_layers="nothing").start(
            TinyDenoiser("gru128", seed=2).sequence, 1, 1, None)
    with pytest.raises(InputError, match="bad regular expression"):
        QatHook(8, 1, init=tmp_path / "float", train_layers="(")


def test_latent_init_and_train_layers_are_checked_where_they_cannot_apply(tmp_path, capsys):
    """--qat-latent-init with a QAT --init or with --resume, and a resumed run asked to train
    other layers than it did, are one-line errors."""
    from tfdenoise.cli import main
    from tfdenoise.models import TinyDenoiser
    from tfdenoise.qat_train import QatHook

    (tmp_path / "s1").mkdir()
    (tmp_path / "s1" / "config.json").write_text(json.dumps(
        {"qat": {"stage": 1, "bits": {"fc_in": 8}, "tensors": []}}))
    with pytest.raises(InputError, match="applies to a start from float weights"):
        QatHook(8, 2, init=tmp_path / "s1", latent_init="copy")
    base = ["train", "--variant", "gru128", "--speech", "S", "--noise", "N", "--out", str(tmp_path / "r")]
    assert main([*base, "--qat-bits", "8", "--resume", "--qat-latent-init", "copy"]) == 2
    assert "not to --resume" in capsys.readouterr().err
    hook = QatHook(8, 1, train_layers="fc_in")
    resumed = {"qat": {"stage": 1, "bits": {n: 8 for n in ("fc_in", "rnn_0", "rnn_1", "fc_mid", "fc_out")},
                       "tensors": []}}
    with pytest.raises(InputError, match="the run trained 'every layer', not --qat-train-layers 'fc_in'"):
        hook.start(TinyDenoiser("gru128", seed=2).sequence, 1, 1, resumed)
