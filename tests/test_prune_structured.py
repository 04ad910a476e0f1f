"""Structured pruning (tfdenoise.prune_structured): shrunk shapes, equivalence with the original
whose removed units' outgoing weights are zeroed, checkpoints that load unchanged."""
from __future__ import annotations

import numpy as np
import pytest

from tfdenoise.errors import InputError


def _removed(kept: list[int], units: int) -> np.ndarray:
    return np.setdiff1d(np.arange(units), kept)


@pytest.mark.parametrize("variant", ["gru128", "lstm128"])
def test_shrunk_denoiser_equals_the_original_with_zeroed_outgoing_weights(variant):
    from tfdenoise.models import TinyDenoiser
    from tfdenoise.prune_structured import shrink_denoiser

    model = TinyDenoiser(variant, seed=0)
    small, record = shrink_denoiser(model, 0.25)
    g, u = model.variant.gates, 96
    assert small.variant.units == u and small.variant.name == variant
    shapes = {n: [w.shape for w in small.layers[n].get_weights()] for n in ("rnn_0", "rnn_1", "fc_mid")}
    bias = (2, g * u) if variant.startswith("gru") else (g * u,)  # GRU reset_after: input + recurrent bias
    assert shapes == {"rnn_0": [(257, g * u), (u, g * u), bias], "rnn_1": [(u, g * u), (u, g * u), bias],
                      "fc_mid": [(u, 257), (257,)]}
    assert [record["units"][n]["after"] for n in ("rnn_0", "rnn_1")] == [96, 96]
    assert record["weights_after"] == small.weight_matrix_params() < record["weights_before"]
    # zero what reads the removed units (own recurrent rows, the next layer's input rows)
    gone0 = _removed(record["units"]["rnn_0"]["kept"], 128)
    gone1 = _removed(record["units"]["rnn_1"]["kept"], 128)
    k0, r0, b0 = model.layers["rnn_0"].get_weights()
    k1, r1, b1 = model.layers["rnn_1"].get_weights()
    wm, bm = model.layers["fc_mid"].get_weights()
    r0[gone0], k1[gone0], r1[gone1], wm[gone1] = 0, 0, 0, 0
    model.layers["rnn_0"].set_weights([k0, r0, b0])
    model.layers["rnn_1"].set_weights([k1, r1, b1])
    model.layers["fc_mid"].set_weights([wm, bm])
    mags = np.abs(np.random.default_rng(0).standard_normal((40, 257))).astype(np.float32)
    assert np.abs(small.offline_mask(mags) - model.offline_mask(mags)).max() < 1e-5
    # and the shrink is not a no-op: without zeroing, the outputs differ
    assert np.abs(small.offline_mask(mags) - TinyDenoiser(variant, seed=0).offline_mask(mags)).max() > 1e-4


def test_shrunk_denoiser_checkpoint_loads_and_exports(tmp_path):
    from tfdenoise.converters import export
    from tfdenoise.modelref import resolve
    from tfdenoise.models import TinyDenoiser, load_checkpoint, save_checkpoint
    from tfdenoise.prune_structured import shrink_denoiser

    small, _ = shrink_denoiser(TinyDenoiser("gru128", seed=0), 0.5)
    folder = save_checkpoint(small, tmp_path / "ckpt", {"prune": {"method": "structured"}})
    ref = resolve(folder)
    assert ref.variant == "gru128"
    again = load_checkpoint(ref.path)
    assert again.variant.units == 64
    assert all(np.array_equal(a, b) for a, b in zip(again.sequence.get_weights(), small.sequence.get_weights()))
    res = export(again, "fp32", tmp_path / "small.tflite")
    assert [l["units"] for l in res.layers if l["name"].startswith("rnn_")] == [64, 64]
    assert res.mask_check.max_abs < 1e-4


@pytest.mark.parametrize("name,units", [
    ("dnn", {"fc_0": 56, "fc_1": 56, "fc_2": 56}),
    ("cnn", {"conv_0": 93, "fc_0": 16, "fc_1": 64, "fc_2": 64}),
])
def test_shrunk_kws_equals_the_original_with_zeroed_outgoing_weights(name, units, tmp_path):
    from tfdenoise.kws.layertable import Op
    from tfdenoise.kws.models import KwsModel, load_kws_checkpoint, save_kws_checkpoint
    from tfdenoise.prune_structured import shrink_kws

    labels = [str(i) for i in range(10)] + ["_unknown_", "_silence_"]
    model = KwsModel(name, labels=labels, seed=0)
    rng = np.random.default_rng(1)
    for layer in model.model.layers:  # non-trivial BatchNorm statistics
        if type(layer).__name__ == "BatchNormalization":
            n = layer.get_weights()[0].shape
            layer.set_weights([rng.uniform(0.5, 2, n), rng.normal(0, 0.5, n), rng.normal(0, 1, n), rng.uniform(0.5, 2, n)])
    small, record = shrink_kws(model, 0.5)
    assert small.units == units and {k: v["after"] for k, v in record["units"].items()} == units
    # zero the rows that read a removed unit in the next dense / conv layer
    rows = [r for r in model.spec.layers(model.n_classes) if r.op in (Op.DENSE, Op.CONV)]
    for row, nxt in zip(rows, rows[1:]):
        gone = _removed(record["units"][row.name]["kept"], row.units)
        layer = model.model.get_layer(nxt.name)
        w, b = layer.get_weights()
        if w.ndim == 4:
            w[:, :, gone] = 0
        else:
            c = row.units
            w.reshape(-1, c, w.shape[-1])[:, gone] = 0  # after a flatten: every position of a channel
        layer.set_weights([w, b])
    x = rng.standard_normal((8, *model.spec.input_shape)).astype(np.float32)
    assert np.abs(small.predict_windows(x) - model.predict_windows(x)).max() < 1e-5
    folder = save_kws_checkpoint(small, tmp_path / name)
    again = load_kws_checkpoint(folder)
    assert again.units == units
    assert np.abs(again.predict_windows(x) - small.predict_windows(x)).max() == 0


def test_dscnn_is_refused_and_zero_units_are_refused():
    from tfdenoise.kws.models import KwsModel
    from tfdenoise.prune_structured import keep_count, shrink_kws

    with pytest.raises(InputError, match="depthwise"):
        shrink_kws(KwsModel("dscnn", n_classes=12, seed=0), 0.5)
    with pytest.raises(InputError, match="would leave 0 of the 112 units of fc_0"):
        keep_count(112, 0.996, "fc_0")
    assert keep_count(112, 0.99, "fc_0") == 1
