"""``tfdenoise export`` end to end (GRU128, random weights)."""
from __future__ import annotations

import pytest

from tfdenoise.converters.metadata import read_metadata
from tfdenoise.cli import main


def test_export_cli_writes_file_and_reports(tmp_path, capsys):
    out = tmp_path / "g.tflite"
    assert main(["export", "--variant", "gru128", "--fp16", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "parameters 0.78" in text and "MB" in text
    assert "rnn_0" in text and "fp16" in text and "max |mask - Keras mask|" in text
    assert read_metadata(out.read_bytes())["precision"] == "fp16"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp left


def test_export_cli_errors(tmp_path, capsys):
    assert main(["export", "--variant", "gru128", "--recipe", str(tmp_path / "none.json"),
                 "-o", str(tmp_path / "x.tflite")]) == 2
    assert "none.json" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["export", "--variant", "gru128", "--int8", "--calib-data", str(empty),
                 "-o", str(tmp_path / "x.tflite")]) == 2
    assert not (tmp_path / "x.tflite").exists()
    capsys.readouterr()
    assert main(["export", "--variant", "gru128", "--fp16", "--ranges", "asymmetric",
                 "-o", str(tmp_path / "x.tflite")]) == 2
    assert "--ranges asymmetric lays out INT8 activation ranges; fp16 has no INT8 layer" in capsys.readouterr().err
    assert not (tmp_path / "x.tflite").exists()


def test_validate_cli_needs_model_or_table(tmp_path, capsys):
    assert main(["validate", "--pairs", str(tmp_path)]) == 2
    assert "MODEL.tflite" in capsys.readouterr().err


@pytest.mark.slow
def test_export_cli_all_writes_four_files(tmp_path, capsys):
    assert main(["export", "--variant", "gru128", "--all", "--no-check", "-o", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.tflite"))
    assert names == ["gru128_fp16.tflite", "gru128_fp32.tflite", "gru128_int8.tflite",
                     "gru128_mixed.tflite"]
    assert {read_metadata(p.read_bytes())["precision"] for p in tmp_path.glob("*.tflite")} == {
        "fp32", "fp16", "int8", "mixed"}


def test_validate_cli_backend_flag(tmp_path, capsys):
    """--backend tflite-runtime is accepted; without the package it is a clear, one-line error."""
    pytest.importorskip("ai_edge_litert")
    try:
        import tflite_runtime  # noqa: F401
        pytest.skip("tflite-runtime is installed; the missing-package error cannot be shown")
    except ImportError:
        pass
    from tfdenoise.pretrained import default_tflite
    from tfdenoise.samples import pairs_dir

    rc = main(["validate", str(default_tflite("mixed")), "--pairs", str(pairs_dir()),
               "--backend", "tflite-runtime"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "tflite-runtime" in err[0]
