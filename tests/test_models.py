"""TinyDenoiser variants: docs/design.md §2 weight counts, streaming == sequence, checkpoints."""
from __future__ import annotations

import json

import numpy as np
import pytest

from tfdenoise.errors import ModelError

PAPER = {"LSTM256": 1_247_490, "GRU256": 985_090, "LSTM128": 493_186, "GRU128": 411_138}


def test_weight_matrix_counts_via_cli(cli):
    code, out, _ = cli("models", "--json")
    assert code == 0
    rows = {r["variant"]: r for r in json.loads(out)}
    assert {k: rows[k]["weight_matrix_params"] for k in PAPER} == PAPER
    assert all(rows[k]["macs_per_frame"] == PAPER[k] for k in PAPER)


@pytest.mark.parametrize("variant", ["lstm256", "gru256", "lstm128", "gru128"])
def test_streaming_step_equals_sequence(variant):
    from tfdenoise.keras import tf
    from tfdenoise.models import TinyDenoiser

    model = TinyDenoiser(variant, seed=1)
    rng = np.random.default_rng(0)
    mags = np.abs(rng.standard_normal((520, 257)) * 2).astype(np.float32)
    # the sequence model, traced (calling it eagerly runs the RNN loop op by op: slow)
    sequence = tf.function(lambda m: model.sequence(m, training=False), autograph=False)
    offline = sequence(mags[None]).numpy()[0]
    step = model.streaming_mask()
    streamed = np.stack([step(m) for m in mags])
    assert streamed.shape == offline.shape == (520, 257)
    assert 0.0 <= streamed.min() and streamed.max() <= 1.0
    np.testing.assert_allclose(streamed, offline, atol=1e-5)


def test_checkpoint_round_trip(tmp_path, tiny_model):
    from tfdenoise.models import load_checkpoint, read_config, save_checkpoint

    path = save_checkpoint(tiny_model, tmp_path / "ck", extra={"note": "test"})
    assert read_config(path)["variant"] == "gru128" and read_config(path)["note"] == "test"
    again = load_checkpoint(path)
    for a, b in zip(tiny_model.sequence.get_weights(), again.sequence.get_weights()):
        np.testing.assert_array_equal(a, b)
    mags = np.random.default_rng(0).random((20, 257)).astype(np.float32)
    np.testing.assert_allclose(again.offline_mask(mags), tiny_model.offline_mask(mags), atol=1e-6)
    assert not list(tmp_path.glob(".ck*"))  # no temporary folders left


def _corrupt(tmp_path, checkpoint, what):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(checkpoint, bad)
    if what == "weights":
        (bad / "weights.h5").write_bytes(b"not an hdf5 file" * 10)
    elif what == "truncated":
        data = (checkpoint / "weights.h5").read_bytes()
        (bad / "weights.h5").write_bytes(data[: len(data) // 3])
    elif what == "config":
        (bad / "config.json").write_text("{not json")
    elif what == "variant":
        (bad / "config.json").write_text('{"variant": "lstm999"}')
    elif what == "no-weights":
        (bad / "weights.h5").unlink()
    elif what == "wrong-variant":
        (bad / "config.json").write_text('{"variant": "lstm128"}')
    return bad


@pytest.mark.parametrize("what", ["weights", "truncated", "config", "no-weights",
                                  "wrong-variant"])
def test_corrupt_checkpoint_raises_model_error(tmp_path, checkpoint, what):
    from tfdenoise.models import load_checkpoint

    bad = _corrupt(tmp_path, checkpoint, what)
    with pytest.raises(ModelError) as info:
        load_checkpoint(bad)
    msg = str(info.value)
    assert "\n" not in msg and str(bad) in msg


def test_corrupt_checkpoint_cli_exit_code(tmp_path, checkpoint, wav, cli):
    bad = _corrupt(tmp_path, checkpoint, "weights")
    out = tmp_path / "out.wav"
    code, _, err = cli("enhance", wav, "-o", out, "--model", bad, "--jobs", "1")
    assert code == ModelError.exit_code
    assert err.count("\n") == 1 and str(bad) in err
    assert not out.exists()
