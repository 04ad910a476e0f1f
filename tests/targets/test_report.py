"""Report outputs (JSON keys, Markdown, self-contained HTML), atomic writes, CLI, sweep."""
from __future__ import annotations

import argparse
import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tfdenoise.errors import OutputError

from tfdenoise.targets import analyze
from tfdenoise.targets.report import to_json, write_report
from tfdenoise.fileio import write_text as write_atomic
from tfdenoise.commands import report as cmd
from tfdenoise.errors import InputError, TFLiteFormatError

KEYS = {"target", "vdd", "freq_mhz", "l3", "macs", "total_cycles", "latency_ms", "mac_per_cycle", "rho_l3",
        "param_bytes", "l2_bytes_used", "power_mw", "energy_uj", "avg_power_mw_at_hop", "realtime_ok", "layers"}


def parse(argv):
    p = argparse.ArgumentParser()
    cmd.add_parser(p.add_subparsers())
    return p.parse_args(["report", *argv])


@pytest.mark.parametrize("name", ["lstm_fp32", "lstm_fp16", "lstm_int8", "gru_fp32", "foreign_int8"])
def test_json_keys(tflite, name):
    j = to_json(analyze(tflite(name), "gap9", 0.65, "emram"))
    assert KEYS <= set(j)
    assert j["target"] == "gap9" and j["vdd"] == 0.65 and j["freq_mhz"] == 240
    for la in j["layers"]:
        assert {"name", "kind", "precision", "macs", "cycles", "bound"} <= set(la)
        assert la["bound"] in ("dma_l3", "dma_l2", "compute")
    assert j["total_cycles"] == sum(la["cycles"] for la in j["layers"])
    json.dumps(j)


def test_written_files(tflite, tmp_path):
    r = analyze(tflite("gru_fp16"))
    paths = write_report(r, tmp_path / "out", tmp_path / "x.json")
    html = paths["html"].read_text()
    assert html.startswith("<!DOCTYPE html>") and html.count("data:image/png;base64,") == 3
    assert "http://" not in html and "https://" not in html and "<script" not in html
    md = paths["markdown"].read_text()
    assert "Verdict" in md and "rnn_0" in md and "| gru |" in md
    assert json.loads(paths["json_path"].read_text())["target"] == "gap9"
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]   # no temp leftovers


def test_atomic_write_keeps_old_file_on_failure(tmp_path, monkeypatch):
    target = write_atomic(tmp_path / "r.json", "old")
    import os

    def boom(*a):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OutputError, match="r.json: cannot write \\(disk full\\)"):
        write_atomic(target, "new")
    assert target.read_text() == "old" and len(list(tmp_path.iterdir())) == 1


def test_cli_report(tflite, tmp_path, capsys):
    args = parse([str(tflite("lstm_int8")), "--target", "gap9", "--vdd", "0.8", "--l3", "flash",
                  "--policy", "tensor-order", "-o", str(tmp_path / "o"), "--json", str(tmp_path / "r.json")])
    assert cmd.run(args) == 0
    out = capsys.readouterr().out
    assert "Verdict" in out and "wrote" in out
    j = json.loads((tmp_path / "r.json").read_text())
    assert (j["l3"], j["policy"], j["freq_mhz"]) == ("flash", "tensor-order", 370)


def test_cli_errors(tflite, tmp_path):
    bad = tmp_path / "bad.tflite"
    bad.write_bytes(b"not a model at all")
    with pytest.raises(TFLiteFormatError, match="bad.tflite"):
        cmd.run(parse([str(bad)]))
    with pytest.raises(InputError, match="operating point"):
        cmd.run(parse([str(tflite("lstm_fp32")), "--vdd", "0.9"]))
    with pytest.raises(InputError, match="no L3 memory"):
        cmd.run(parse([str(tflite("lstm_fp32")), "--l3", "sdcard"]))
    args = parse([])
    try:
        import tfdenoise.pretrained as pre
        has_default = hasattr(pre, "default_tflite")
    except ImportError:
        has_default = False
    if not has_default:
        with pytest.raises(InputError, match="default model"):
            cmd.run(args)


def test_stm32_does_not_fit_verdict(tflite):
    from tfdenoise.targets import analyze_graph
    from tfdenoise.targets.reference import build_reference

    j = to_json(analyze_graph(build_reference("lstm256", "fp16"), "stm32f746"))
    assert j["fits"] is False and j["realtime_ok"] is False and "exceed L3 flash" in j["fit_reasons"][0]


def test_sweep_cli(tmp_path, capsys):
    assert cmd.run(parse(["--sweep", "-o", str(tmp_path / "sw")])) == 0
    rows = list(csv.DictReader((tmp_path / "sw" / "sweep.csv").open()))
    assert len(rows) == 4 * 2 * 2
    l3 = {(r["variant"], r["precision"]): r["l3"] for r in rows}
    assert l3[("lstm256", "fp16")] == "flash" and l3[("lstm256", "mixed")] == "emram"
    assert (tmp_path / "sw" / "sweep.png").stat().st_size > 1000


def test_sweep_takes_model_files(tflite, tmp_path):
    from tfdenoise.sweep import files_or_reference, run_sweep

    d = tmp_path / "models"
    d.mkdir()
    shutil.copy(tflite("gru_fp16"), d / "gru128_fp16.tflite")
    rows = run_sweep(files_or_reference(d), variants=["gru128"], precisions=["fp16", "mixed"])
    assert rows[0]["source"].endswith("gru128_fp16.tflite") and rows[-1]["source"] == "reference"


CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium not installed")
def test_html_renders_in_headless_chromium(tflite, tmp_path):
    paths = write_report(analyze(tflite("lstm_fp16")), tmp_path)
    shot = tmp_path / "shot.png"
    subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1000,1800",
                    f"--screenshot={shot}", paths["html"].as_uri()], check=True, timeout=60,
                   capture_output=True)
    assert shot.stat().st_size > 20_000


def test_targets_never_imports_tensorflow(tflite):
    code = ("import sys; from tfdenoise.targets import analyze; from tfdenoise.targets.report import to_json, to_markdown; "
            f"r = analyze({str(tflite('lstm_int8'))!r}); to_markdown(r); "
            "assert 'tensorflow' not in sys.modules and 'tf_keras' not in sys.modules, 'TF imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).resolve().parents[2], timeout=60)


def test_sweep_export_source_uses_converters(tflite, tmp_path, monkeypatch):
    import types

    from tfdenoise.sweep import exported_or_reference

    calls = []

    def export_variant(variant, precision, out_path):
        calls.append((variant, precision))
        shutil.copy(tflite("gru_fp16"), out_path)
        return Path(out_path)

    monkeypatch.setitem(sys.modules, "tfdenoise.converters.convert", types.SimpleNamespace(export_variant=export_variant))
    src = exported_or_reference(tmp_path / "m")
    assert src("gru128", "fp16") == tmp_path / "m" / "gru128_fp16.tflite"
    assert src("gru128", "fp16").is_file() and calls == [("gru128", "fp16")]   # second call reuses the file
