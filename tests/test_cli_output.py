"""Honest exits and machine-readable output of every command (``--json -``, exit 4, pipes)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tfdenoise.errors import DoesNotFitError, InputError
from tfdenoise.pretrained import tflite


def _only_json(stdout: str):
    """stdout must be one JSON document and nothing else."""
    return json.loads(stdout)


def test_models_json_stdout(cli):
    code, out, err = cli("models", "--json", "-")
    assert code == 0
    rows = _only_json(out)
    assert [r["variant"] for r in rows] == ["LSTM256", "GRU256", "LSTM128", "GRU128"]
    assert "LSTM128" in err  # the human table went to stderr
    code, out2, _ = cli("models", "--json")  # --json alone means stdout too
    assert code == 0 and _only_json(out2) == rows


def test_report_json_stdout_and_file(cli, tmp_path):
    code, out, err = cli("report", "--json", "-")
    assert code == 0
    j = _only_json(out)
    assert j["fits"] is True and j["target"] == "gap9" and j["overflows"] == []
    assert "Verdict" in err
    code, out, _ = cli("report", "--json", tmp_path / "r.json")
    assert code == 0 and "Verdict" in out
    assert json.loads((tmp_path / "r.json").read_text())["latency_ms"] == j["latency_ms"]


def test_report_of_a_model_that_does_not_fit(cli, tmp_path):
    """Full report (Markdown, HTML, JSON) with the verdict and the overflow in bytes, exit 4."""
    code, out, err = cli("report", "--pretrained", "lstm256", "--precision", "fp32",
                         "-o", tmp_path / "rep", "--json", "-")
    assert code == DoesNotFitError.exit_code == 4
    j = _only_json(out)
    assert j["fits"] is False
    (over,) = j["overflows"]
    assert over["memory"] == "L3 emram" and over["needed_bytes"] == j["param_bytes"]
    assert over["over_by_bytes"] == over["needed_bytes"] - over["available_bytes"] > 0
    assert j["layers"] and j["latency_ms"] > 0  # the whole report, not just the verdict
    written = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert written == ["lstm256_fp32.gap9.html", "lstm256_fp32.gap9.json", "lstm256_fp32.gap9.md"]
    assert "DOES NOT FIT" in (tmp_path / "rep" / "lstm256_fp32.gap9.md").read_text()
    assert json.loads((tmp_path / "rep" / "lstm256_fp32.gap9.json").read_text())["fits"] is False
    lines = err.strip().splitlines()
    assert lines[-1].startswith("tfdenoise report: error: ") and "does not fit gap9" in lines[-1]
    assert f"by {over['over_by_bytes']:,} B" in lines[-1] and "try --l3 flash" in lines[-1]


def test_report_l2_overflow_is_a_verdict_not_a_crash(tmp_path):
    """Activations larger than the L2 budget: fits False with the L2 overflow in bytes."""
    from tfdenoise.keras import keras, tf
    from tfdenoise.targets import analyze
    from tfdenoise.targets.report import to_json

    inp = keras.Input((64,), batch_size=1)
    model = keras.Model(inp, keras.layers.Dense(4, name="out")(keras.layers.Dense(300_000, name="wide")(inp)))
    path = tmp_path / "wide.tflite"
    path.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    j = to_json(analyze(path, board="gap9", l3="flash"))
    assert j["fits"] is False
    l2 = [o for o in j["overflows"] if o["memory"] == "the L2 budget"]
    assert l2 and l2[0]["over_by_bytes"] == l2[0]["needed_bytes"] - j["l2_budget"] > 0


def test_export_json_stdout(cli, tmp_path):
    code, out, err = cli("export", "--variant", "gru128", "--fp32", "--no-check",
                         "-o", tmp_path / "g.tflite", "--json", "-")
    assert code == 0
    j = _only_json(out)
    assert j["path"] == str(tmp_path / "g.tflite") and j["precision"] == "fp32"
    assert j["random_weights"] is True and j["param_bytes"] > 0
    assert "RANDOM" in err


def test_evaluate_json_stdout(cli, pairs, checkpoint):
    code, out, err = cli("evaluate", "--pairs", pairs, "--model", checkpoint, "--jobs", "1",
                         "--json", "-")
    assert code == 0
    j = _only_json(out)
    assert set(j["mean"]) == {"pesq", "stoi"} and len(j["files"]) == 2
    assert "mean" in err


def test_validate_json_stdout(cli, real_pairs, checkpoint, tmp_path):
    model = tmp_path / "g.tflite"
    assert cli("export", checkpoint, "--fp32", "--no-check", "-o", model)[0] == 0
    code, out, err = cli("validate", model, "--pairs", real_pairs, "--checkpoint", checkpoint,
                         "--jobs", "1", "--json", "-")
    assert code == 0
    j = _only_json(out)
    assert [r["label"] for r in j["rows"]] == ["noisy", "keras float", "tflite fp32"]
    assert "| tflite fp32 |" in err


def test_piped_output_ends_quietly():
    """`tfdenoise models --json | head` when the reader has gone: no traceback, exit 0."""
    p = subprocess.Popen([sys.executable, "-m", "tfdenoise.cli", "models", "--json"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    p.stdout.close()  # the reader is gone before anything is written
    err = p.stderr.read().decode()
    assert p.wait() == 0
    assert "Traceback" not in err and "BrokenPipe" not in err


def test_report_needs_a_tflite(cli, checkpoint):
    code, out, err = cli("report", checkpoint)
    assert code == InputError.exit_code and err.count("\n") == 1
    assert "export the checkpoint first" in err and str(checkpoint) in err


def test_demo_smoke(cli, tmp_path, monkeypatch):
    """The main job's wiring, fast: the default model's shipped file stands in for the export,
    two bundled pairs stand in for ten (the full run is test_demo_end_to_end)."""
    import tfdenoise.demo as demo
    from tfdenoise.samples import pairs_dir

    small = tmp_path / "pairs"
    for side in ("noisy", "clean"):
        (small / side).mkdir(parents=True)
        for name in ("p257_259.wav", "p257_114.wav"):
            (small / side / name).symlink_to(pairs_dir() / side / name)
    monkeypatch.setattr(demo.samples, "pairs_dir", lambda: small)
    code, out, err = cli("demo", "-o", tmp_path / "demo", "--jobs", "1")
    assert code == 0, err
    summary = json.loads((tmp_path / "demo" / "demo.json").read_text())
    assert summary["gap9"]["realtime_ok"] is True
    assert summary["scores"]["mixed (.tflite)"]["pesq"] > summary["scores"]["noisy"]["pesq"]
    assert "[4/5] GAP9 hardware report" in out and "/work/" not in out.splitlines()[0]
    assert "[5/5] keyword spotting" in out and summary["kws"]["stream"]["words"] > 0
    assert summary["kws"]["accuracy"]["int8"] >= 0.8 and summary["kws"]["boards"]["stm32f767"]["realtime_ok"]
    assert (tmp_path / "demo" / "report").is_dir() and (tmp_path / "demo" / "phone_call.enhanced.wav").is_file()


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    """`tfdenoise demo` as `make demo` runs it: the README's scores on the 10 bundled pairs."""
    res = subprocess.run([sys.executable, "-m", "tfdenoise.cli", "demo", "-o", str(tmp_path / "d")],
                         capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    s = json.loads((tmp_path / "d" / "demo.json").read_text())["scores"]
    assert s["noisy"]["pesq"] == pytest.approx(1.386, abs=0.002)
    assert s["fp32 (Keras)"]["pesq"] == pytest.approx(2.022, abs=0.002)
    assert s["mixed (.tflite)"]["pesq"] == pytest.approx(2.022, abs=0.002)
    assert s["mixed (.tflite)"]["stoi"] == pytest.approx(0.910, abs=0.002)


def test_report_of_the_shipped_kws_folder_reads_its_int8_export(cli):
    from tfdenoise.pretrained import kws_checkpoint

    code, out, err = cli("report", kws_checkpoint(), "--target", "stm32f767", "--json", "-")
    assert code == 0, err
    j = _only_json(out)
    assert j["model"].endswith("kws_dnn_int8.tflite") and j["hop_ms"] == 20 and j["realtime_ok"]


def test_validate_table_refuses_checkpoint(cli, real_pairs, checkpoint):
    code, out, err = cli("validate", "--table", checkpoint, "--checkpoint", checkpoint, "--pairs", real_pairs)
    assert code == InputError.exit_code and err.count("\n") == 1 and "--checkpoint goes with" in err


def test_validate_qat_goes_with_table(cli, real_pairs, checkpoint):
    code, out, err = cli("validate", "x.tflite", "--qat", checkpoint, "--pairs", real_pairs)
    assert code == InputError.exit_code and err.count("\n") == 1 and "--qat adds rows to --table" in err


def test_validate_cost_goes_with_table_and_names_boards(cli, real_pairs, checkpoint):
    code, out, err = cli("validate", "x.tflite", "--cost", "gap9", "--pairs", real_pairs)
    assert code == InputError.exit_code and err.count("\n") == 1 and "--cost adds columns to --table" in err
    code, out, err = cli("validate", "--table", checkpoint, "--cost", "nosuchboard", "--pairs", real_pairs)
    assert code != 0 and err.count("\n") == 1 and "nosuchboard" in err
