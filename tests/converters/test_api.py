"""The front door ``converters.export``, ``export_variant`` and validation (scoring)."""
from __future__ import annotations

import shutil

import pytest

from tfdenoise.converters.metadata import read_metadata


def test_front_door_export_variant_name(tmp_path):
    from tfdenoise.converters import export

    res = export("gru128", "fp32", tmp_path / "g.tflite", check=False)
    assert res.path.is_file() and res.precision == "fp32" and res.variant == "gru128"
    assert res.param_mb == pytest.approx(1.56, rel=0.03)


def test_export_variant_is_deterministic(tmp_path):
    from tfdenoise.converters.convert import export_variant

    a = export_variant("gru128", "fp16", tmp_path / "a.tflite")
    b = export_variant("GRU128", "fp16", tmp_path / "b.tflite")
    assert a.read_bytes() == b.read_bytes()
    assert read_metadata(a.read_bytes())["precision"] == "fp16"


@pytest.fixture(scope="module")
def one_pair(tmp_path_factory):
    """A pairs folder with one real Valentini test pair (shipped sample)."""
    from tfdenoise.data import list_pairs
    from tfdenoise.samples import __file__ as samples_init
    from pathlib import Path

    src = list_pairs(Path(samples_init).parent / "valentini")[0]
    root = tmp_path_factory.mktemp("pairs")
    for sub, path in (("noisy", src.noisy), ("clean", src.clean)):
        (root / sub).mkdir()
        shutil.copy(path, root / sub / path.name)
    return root


def test_validate_file_scores_tflite_keras_and_noisy(gru128, gru128_files, one_pair, tmp_path):
    from tfdenoise.validation import to_markdown, validate_file
    from tfdenoise.models import save_checkpoint

    ckpt = save_checkpoint(gru128, tmp_path / "ckpt")
    model = tmp_path / "m.tflite"
    model.write_bytes(gru128_files["mixed"])
    res = validate_file(model, one_pair, checkpoint=ckpt, jobs=1)
    labels = [r["label"] for r in res["rows"]]
    assert labels == ["noisy", "keras float", "tflite mixed"]
    keras_row, lite_row = res["rows"][1], res["rows"][2]
    assert abs(keras_row["pesq"] - lite_row["pesq"]) < 0.1
    assert "| tflite mixed |" in to_markdown(res)


@pytest.mark.slow
def test_quant_table_rows(gru128, one_pair, tmp_path, qat_checkpoint):
    from tfdenoise.validation import TABLE_ROWS, quant_table, to_markdown
    from tfdenoise.models import save_checkpoint

    ckpt = save_checkpoint(gru128, tmp_path / "ckpt")
    qat_ckpt, _ = qat_checkpoint("gru128", 4)
    res = quant_table(ckpt, one_pair, jobs=1, qat=[qat_ckpt], boards=["gap9", "stm32f767"])
    qat_label = "qat fc 8-bit, rnn 4-bit, stage 1 (ckpt)"
    assert [r["label"] for r in res["rows"]] == [r[0] for r in TABLE_ROWS] + [qat_label, "noisy"]
    rows = {r["label"]: r for r in res["rows"]}
    assert rows["mixed (max)"]["param_mb"] == pytest.approx(0.55, rel=0.03)
    assert rows[qat_label]["param_mb"] < rows["int8 (max)"]["param_mb"]      # packed INT4 GRU kernels
    # cost columns: the report's own numbers for each file
    assert rows["fp32"]["cost"]["gap9"]["latency_ms"] > rows["int8 (max)"]["cost"]["gap9"]["latency_ms"]
    assert rows[qat_label]["param_bytes_at_bit_width"] < rows["int8 (max)"]["param_bytes_at_bit_width"]
    assert rows["noisy"]["cost"] is None
    md = to_markdown(res)
    assert "| stm32f767 ms / uJ |" in md and md.count("\n") == len(res["rows"]) + 1


def test_qat_labels():
    from tfdenoise.validation import qat_label

    assert qat_label({"stage": 2, "bits": dict.fromkeys(("fc_in", "rnn_0", "fc_out"), 8)}) == "qat 8-bit, stage 2"
    assert qat_label({"stage": 1, "bits": {"fc_in": 8, "rnn_0": 4, "rnn_1": 4}}) == "qat fc 8-bit, rnn 4-bit, stage 1"
    assert qat_label({"stage": 2, "bits": {"fc_in": 8}, "act_ranges_kind": "asymmetric",
                      "act_ranges_fixed": ["qat_input"]}) == "qat 8-bit, stage 2, asymmetric, calibrated ranges"


def test_quant_table_refuses_a_float_or_other_variant_qat_row(gru128, lstm128, one_pair, tmp_path, qat_checkpoint):
    from tfdenoise.errors import ModelError
    from tfdenoise.models import save_checkpoint
    from tfdenoise.validation import quant_table

    ckpt = save_checkpoint(gru128, tmp_path / "g")
    with pytest.raises(ModelError, match="not a QAT checkpoint"):
        quant_table(ckpt, one_pair, qat=[save_checkpoint(lstm128, tmp_path / "l")])
    with pytest.raises(ModelError, match="is a LSTM128, the table's model a GRU128"):
        quant_table(ckpt, one_pair, qat=[qat_checkpoint("lstm128", 8)[0]])
