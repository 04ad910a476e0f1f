"""Pruning (tfdenoise.prune, prune_masks): masks that really apply (LSTM/GRU kernels included),
2:4 and block patterns, resume, strip, export, the `tfdenoise prune` command and its errors.
Structured shrinking: tests/test_prune_structured.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import synth_speech, write_wav
from tfdenoise.errors import InputError
from tfdenoise.prune import PruneSpec, m_by_n_violations, parse_block, zero_blocks


def tiny_net(rnn: str = "lstm", inputs: int = 10, seed: int = 0):
    """[batch, time, inputs] -> LSTM/GRU(8) -> Dense(6): a kernel, a recurrent kernel, a dense kernel."""
    from tfdenoise.keras import keras, layers

    keras.utils.set_random_seed(seed)
    inp = keras.Input((None, inputs))
    cell = layers.LSTM if rnn == "lstm" else layers.GRU
    x = cell(8, return_sequences=True, name="rnn")(inp)
    return keras.Model(inp, layers.Dense(6, name="fc")(x))


def fine_tune(net, hook, steps: int, epochs: int = 1, resumed: dict | None = None,
              planned: int | None = None) -> dict:
    """What the trainers do with a hook: start (a run of ``planned`` steps per epoch, default
    ``steps``), ``steps`` optimizer steps per epoch, epoch_end."""
    from tfdenoise.keras import keras, tf

    trained = hook.start(net, planned or steps, epochs, resumed)
    opt = keras.optimizers.Adam(1e-2)
    rng = np.random.default_rng(0)

    @tf.function
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean((trained(x, training=True) - y) ** 2)
        grads = tape.gradient(loss, trained.trainable_variables)
        opt.apply_gradients(zip(grads, trained.trainable_variables))

    record = {}
    for _ in range(epochs):
        for _ in range(steps):
            step(rng.standard_normal((4, 5, net.input_shape[-1])).astype(np.float32),
                 rng.standard_normal((4, 5, 6)).astype(np.float32))
        record = hook.epoch_end()["prune"]
    return record


def masked(spec: PruneSpec, net):
    from tfdenoise.prune_masks import MaskedFineTune, layer_weights

    return MaskedFineTune(spec, layer_weights(net))


def kernels(net) -> dict[str, np.ndarray]:
    from tfdenoise.prune_masks import weight_tensors

    return {f"{layer.name}/{name}": v.numpy() for layer in net.layers for name, v in weight_tensors(layer)}


def sparsity(w: np.ndarray) -> float:
    return float(np.mean(w == 0))


# -- tfmot's step semantics ---------------------------------------------------------------------

def test_tfmot_default_frequency_leaves_one_step_dense():
    """The finding behind begin_step=1: ConstantSparsity(0.5, begin_step=0) updates its masks
    at steps that are multiples of frequency (100), so one fit step + strip_pruning is dense."""
    import tensorflow_model_optimization as tfmot

    sp = tfmot.sparsity.keras
    net = tiny_net()
    pruned = sp.prune_low_magnitude(net, pruning_schedule=sp.ConstantSparsity(0.5, begin_step=0))
    pruned.compile("adam", "mse")
    pruned.fit(np.zeros((2, 5, 10), np.float32), np.zeros((2, 5, 6), np.float32), epochs=1, verbose=0,
               callbacks=[sp.UpdatePruningStep()])
    assert all(sparsity(w) == 0 for w in kernels(sp.strip_pruning(pruned)).values())


@pytest.mark.parametrize("rnn", ["lstm", "gru"])
@pytest.mark.parametrize("schedule,target", [("constant", 0.5), ("polynomial", 0.75)])
def test_masks_apply_to_every_kernel(rnn, schedule, target):
    net = tiny_net(rnn)
    assert all(sparsity(w) == 0 for w in kernels(net).values())
    hook = masked(PruneSpec("unstructured", target, schedule=schedule), net)
    record = fine_tune(net, hook, steps=8, epochs=2)
    got = kernels(net)  # the network's own weights: the wrappers share its layers
    assert set(got) == {"rnn/kernel", "rnn/recurrent_kernel", "fc/kernel"}
    for name, w in got.items():
        assert abs(sparsity(w) - target) <= 1 / w.size, name
    assert record["at_target"] and record["step"] == 16
    assert [round(r["sparsity"], 6) for r in record["tensors"]] == [round(sparsity(w), 6) for w in got.values()]


def test_polynomial_schedule_is_below_target_before_its_end():
    net = tiny_net()
    hook = masked(PruneSpec("unstructured", 0.8), net)  # polynomial: 0 -> 0.8 over half the steps
    record = fine_tune(net, hook, steps=3, planned=20)  # 3 steps of a 20-step run: ramp ends at 10
    assert record["end_step"] == 10 and record["step"] == 3 and not record["at_target"]
    assert 0.3 < record["sparsity"] < 0.6  # 0.8 x (1 - (1 - 2/9)^3) = 0.42 at step 3


def test_2_4_pattern_in_every_group_along_the_input_axis():
    net = tiny_net(inputs=10)  # 10 inputs: groups 4, 4, 2
    assert sum(m_by_n_violations(w) for w in kernels(net).values()) > 0
    record = fine_tune(net, masked(PruneSpec("2:4", 0.5), net), steps=4)
    got = kernels(net)
    for name, w in got.items():
        assert m_by_n_violations(w) == 0, name
    assert sparsity(got["rnn/recurrent_kernel"]) == 0.5 and sparsity(got["fc/kernel"]) == 0.5
    assert sparsity(got["rnn/kernel"]) == pytest.approx(0.4)  # the group of 2 keeps both
    assert all(r["m_by_n_violations"] == 0 for r in record["tensors"])


def test_block_pattern():
    net = tiny_net(inputs=16)
    record = fine_tune(net, masked(PruneSpec("block", 0.5, block=(4, 1)), net), steps=4)
    for name, w in kernels(net).items():
        full, partial, total = zero_blocks(w, (4, 1))
        assert partial == 0 and abs(full / total - 0.5) <= 1 / total, name
    assert all(r["partial_blocks"] == 0 for r in record["tensors"])


def test_resume_rebuilds_the_masks_from_the_stored_zeros():
    from tfdenoise.prune_masks import MaskedFineTune, layer_weights

    net = tiny_net()
    spec = PruneSpec("unstructured", 0.5, schedule="polynomial")
    first = fine_tune(net, MaskedFineTune(spec, layer_weights(net)), steps=6, epochs=2)
    zeros = {k: w == 0 for k, w in kernels(net).items()}
    # a fresh network loaded from the checkpoint, the schedule already past its end step
    again = tiny_net(seed=1)
    again.set_weights(net.get_weights())
    record = fine_tune(again, MaskedFineTune(spec, {}), steps=6, epochs=1, resumed={"prune": first})
    assert record["step"] == first["step"] + 6
    for name, w in kernels(again).items():
        assert np.array_equal(w == 0, zeros[name]), name


def test_strip_gives_the_networks_own_weights():
    from tfdenoise.prune_masks import strip, wrap, wrappers

    net = tiny_net()
    wrapped = wrap(net, PruneSpec("unstructured", 0.5), 1, 1)
    assert len(wrappers(wrapped)) == 2
    stripped = strip(wrapped)
    assert not wrappers(stripped)
    assert all(np.array_equal(a, b) for a, b in zip(stripped.get_weights(), net.get_weights()))


# -- arguments ---------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs,words", [
    ({"method": "unstructured", "sparsity": float("nan")}, "--sparsity must be a share in (0, 1)"),
    ({"method": "unstructured", "sparsity": 1.0}, "--sparsity must be a share in (0, 1)"),
    ({"method": "unstructured", "sparsity": -0.1}, "--sparsity must be a share in (0, 1)"),
    ({"method": "prune-it", "sparsity": 0.5}, "--method must be one of unstructured, 2:4, block, structured"),
    ({"method": "2:4", "sparsity": 0.75}, "--sparsity must be 0.5"),
    ({"method": "block", "sparsity": 0.5}, "--method block needs --block RxC"),
    ({"method": "unstructured", "sparsity": 0.5, "block": (4, 1)}, "--block is for --method block"),
    ({"method": "structured", "sparsity": 0.5, "schedule": "polynomial"}, "--schedule polynomial"),
])
def test_bad_specs_are_one_line_errors(kwargs, words):
    with pytest.raises(InputError, match=None) as err:
        PruneSpec(**kwargs)
    assert words in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("text", ["4", "0x4", "1x1", "axb", "4x1x2"])
def test_bad_blocks(text):
    with pytest.raises(InputError, match="--block must be RxC"):
        parse_block(text)


def _prune_args(model, out, *extra) -> list:
    return ["prune", model, "--method", "unstructured", "--sparsity", "0.5", "-o", out, "--quiet", *extra]


@pytest.mark.parametrize("extra,words", [
    (("--sparsity", "nan"), "--sparsity must be a share in (0, 1) (0.5: half the weights), got nan"),
    (("--shift", "0.2"), "--shift: not an option for a denoiser model"),
    ((), "--speech is needed to fine-tune a denoiser"),
])
def test_cli_errors_before_any_work(cli, checkpoint, tmp_path, extra, words):
    code, out, err = cli(*_prune_args(checkpoint, tmp_path / "run", *extra))
    assert code == 2 and err.startswith("tfdenoise prune: error: ") and err.count("\n") == 1, err
    assert words in err and not (tmp_path / "run").exists()


def test_cli_refuses_an_unknown_method(cli, checkpoint, tmp_path):
    with pytest.raises(SystemExit) as exc:
        cli("prune", checkpoint, "--method", "half", "--sparsity", "0.5", "-o", tmp_path / "run")
    assert exc.value.code == 2


def test_structured_sparsity_that_leaves_no_unit(cli, checkpoint, tmp_path):
    code, _, err = cli("prune", checkpoint, "--method", "structured", "--sparsity", "0.999",
                       "--speech", tmp_path, "--noise", tmp_path, "-o", tmp_path / "run", "--quiet")
    assert code == 2 and "--sparsity 0.999 would leave 0 of the 128 units of rnn_0" in err, err


def test_run_folder_and_source_must_not_nest(cli, checkpoint, tmp_path):
    import shutil

    data = ("--speech", tmp_path, "--noise", tmp_path)
    code, _, err = cli(*_prune_args(checkpoint, checkpoint / "pruned", *data))
    assert code == 2 and "output lies inside the input folder" in err, err
    source = shutil.copytree(checkpoint, tmp_path / "run" / "source")
    code, _, err = cli(*_prune_args(source, tmp_path / "run", *data))
    assert code == 2 and "the run folder holds the model being pruned" in err, err


# -- through the trainer and the exporter (slow) -------------------------------------------------

@pytest.fixture
def corpora(tmp_path: Path) -> tuple[Path, Path]:
    for spk in ("p001", "p002"):
        write_wav(tmp_path / "speech" / f"{spk}_001.wav", synth_speech(1.0, seed=int(spk[-1])))
    for i in range(2):
        write_wav(tmp_path / "noise" / f"hum_{i}.wav", 0.1 * synth_speech(1.0, seed=10 + i))
    return tmp_path / "speech", tmp_path / "noise"


def _run_args(checkpoint, corpora, out, *extra) -> list:
    speech, noise = corpora
    return [*_prune_args(checkpoint, out, "--speech", speech, "--noise", noise, "--batch", "2",
                         "--segment", "0.25", "--segments-per-epoch", "4", "--valid-fraction", "0.5",
                         "--cache", ""), *extra]


@pytest.mark.slow
def test_prune_a_denoiser_then_resume(cli, checkpoint, corpora, tmp_path):
    from tfdenoise.models import load_checkpoint
    from tfdenoise.modelref import resolve

    out = tmp_path / "run"
    code, stdout, err = cli(*_run_args(checkpoint, corpora, out, "--schedule", "constant", "--epochs", "1",
                                       "--json", "-"))
    assert code == 0, err
    result = json.loads(stdout)
    assert result["checkpoint"] == str(out / "best") and result["prune"]["sparsity"] == pytest.approx(0.5, abs=1e-4)
    model = load_checkpoint(resolve(out / "best").path)  # a normal checkpoint, GRU kernels sparse
    for name in ("rnn_0", "rnn_1"):
        for w in model.layers[name].get_weights()[:2]:
            assert abs(sparsity(w) - 0.5) <= 1 / w.size
    code, _, err = cli(*_run_args(checkpoint, corpora, out, "--schedule", "constant", "--epochs", "2", "--resume"))
    assert code == 0, err
    last = json.loads((out / "last" / "config.json").read_text())
    assert last["epoch"] == 2 and last["prune"]["step"] == 4 and last["prune"]["sparsity"] == pytest.approx(0.5, abs=1e-4)
    code, _, err = cli(*_run_args(checkpoint, corpora, out, "--epochs", "3", "--resume"))  # polynomial now
    assert code == 2 and "cannot resume it" in err, err


@pytest.mark.slow
def test_pruned_lstm_exports_the_fused_op_with_its_zeros(tmp_path):
    from tfdenoise.converters import export, fbgraph
    from tfdenoise.models import TinyDenoiser

    model = TinyDenoiser("lstm128", seed=0)
    fine_tune_denoiser = masked(PruneSpec("unstructured", 0.5, schedule="constant"), model.sequence)
    wrapped = fine_tune_denoiser.start(model.sequence, 1, 1, None)
    wrapped(np.ones((1, 3, 257), np.float32), training=True)  # step 1: masks computed and applied
    fine_tune_denoiser.epoch_end()
    res = export(model, "fp32", tmp_path / "pruned.tflite", check=False)
    assert res.ops.count("UNIDIRECTIONAL_SEQUENCE_LSTM") == 2
    m = fbgraph.load(res.path.read_bytes())
    sg = m.subgraphs[0]
    lstm_weights = [fbgraph.const_array(m, sg.tensors[i]) for op in sg.operators
                    if fbgraph.op_name(m, op) == "UNIDIRECTIONAL_SEQUENCE_LSTM"
                    for i in op.inputs if i >= 0 and fbgraph.is_constant(m, sg.tensors[i])
                    and len(sg.tensors[i].shape) == 2]
    assert len(lstm_weights) == 16  # 4 gates x (input, recurrent) x 2 layers
    assert sparsity(np.concatenate([w.ravel() for w in lstm_weights])) == pytest.approx(0.5, abs=0.01)
