"""Trust, the operating system: unwritable outputs fail before the work, a full disk keeps old
content and leaves nothing partial, outputs get the permissions an ordinary write would."""
from __future__ import annotations

import stat
from pathlib import Path

import pytest


from trustkit import (FAST_S, error_line, refused, temp_files, tree_hashes, umask, _full_disk)
from trustkit import audio_dir, ckpt, exported, model, no_work  # noqa: F401  (fixtures)


# -- OS errors before the work ----------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["export", "export-variant", "report", "evaluate", "enhance"])
def test_unwritable_output_fails_at_once(cli, tmp_path, model, pairs, wav, ckpt, no_work, cmd):
    out = {"export": "/proc/nonexistent/m.tflite", "export-variant": "/proc/nonexistent/m.tflite",
           "report": "/proc/x/r.json", "evaluate": "/proc/x/r.json",
           "enhance": "/proc/x/e.wav"}[cmd]
    argv = {"export": [ckpt, "--fp32", "-o", out],
            "export-variant": ["--variant", "gru128", "--int8", "-o", out],
            "report": [model, "--json", out],
            "evaluate": ["--pairs", pairs, "--model", ckpt, "--json", out],
            "enhance": [wav, "-o", out, "--model", ckpt]}[cmd]
    line, elapsed = refused(cli, tmp_path, cmd.split("-")[0], argv, out,
                            [model, pairs, wav, ckpt])
    assert "cannot" in line
    assert elapsed < FAST_S, elapsed
    assert not Path(out).parent.exists()


def test_enhance_folder_to_unwritable_folder_fails_at_once(cli, tmp_path, audio_dir, ckpt, no_work):
    out = "/proc/x/enhanced"
    line, elapsed = refused(cli, tmp_path, "enhance", [audio_dir, "-o", out, "--model", ckpt],
                            out, [audio_dir, ckpt])
    assert elapsed < FAST_S


def test_output_below_a_file_fails_at_once(cli, tmp_path, model, wav, no_work):
    out = wav / "r.json"  # a "folder" that is a wav file
    line, elapsed = refused(cli, tmp_path, "report", [model, "--json", out], out, [model, wav])
    assert "not a folder" in line and elapsed < FAST_S


@pytest.mark.parametrize("where", ["replace", "write"])
@pytest.mark.parametrize("existing", [False, True])
def test_full_disk_while_writing_a_report(cli, tmp_path, model, monkeypatch, where, existing):
    from tfdenoise.targets.report import report_paths

    out = tmp_path / "rep"
    paths = report_paths(model, "gap9", out)
    if existing:
        out.mkdir()
        for p in paths.values():
            p.write_text(f"old {p.name}\n")
    js = tmp_path / "r.json"
    before = tree_hashes(tmp_path)
    _full_disk(monkeypatch, where)
    code, _, err = cli("report", model, "-o", out, "--json", js)
    monkeypatch.undo()
    assert code == 2, err
    line = error_line(err, "report", only=False)
    assert "No space left on device" in line
    assert any(str(p) in line for p in [*paths.values(), js]), line
    if existing:
        for p in paths.values():
            assert p.read_text() == f"old {p.name}\n"
    assert not js.exists()
    assert not temp_files(tmp_path), temp_files(tmp_path)
    after = tree_hashes(tmp_path)
    new = set(after) - set(before)
    # at most the (empty) report folder itself may have been created; no file
    assert all(after[p] == "<dir>" for p in new), new
    assert {p: h for p, h in after.items() if p in before} == before


def test_full_disk_while_enhancing_keeps_old_output(cli, tmp_path, wav, ckpt, monkeypatch):
    out = tmp_path / "e.wav"
    out.write_bytes(b"old output")
    _full_disk(monkeypatch, "replace")
    code, _, err = cli("enhance", wav, "-o", out, "--model", ckpt)
    monkeypatch.undo()
    assert code == 2, err
    assert "No space left on device" in error_line(err, "enhance", out)
    assert out.read_bytes() == b"old output"
    assert not temp_files(tmp_path), temp_files(tmp_path)


# -- permissions ------------------------------------------------------------------------------

def test_exported_tflite_has_ordinary_permissions(exported):
    assert stat.S_IMODE(exported[0].stat().st_mode) == 0o644


@pytest.mark.parametrize("mask", [0o022, 0o002])
def test_written_files_follow_the_umask(cli, tmp_path, model, wav, ckpt, tiny_model, mask):
    from tfdenoise.models import save_checkpoint

    file_mode, dir_mode = 0o666 & ~mask, 0o777 & ~mask
    with umask(mask):
        code, _, err = cli("report", model, "--json", tmp_path / "r.json", "-o", tmp_path / "rep")
        assert code == 0, err
        code, _, err = cli("enhance", wav, "-o", tmp_path / "e.wav", "--model", ckpt)
        assert code == 0, err
        saved = save_checkpoint(tiny_model, tmp_path / "runs" / "ck")
    for f in [tmp_path / "r.json", tmp_path / "e.wav", *(tmp_path / "rep").iterdir(),
              *saved.iterdir()]:
        assert stat.S_IMODE(f.stat().st_mode) == file_mode, f
    for d in [saved, tmp_path / "rep"]:
        assert stat.S_IMODE(d.stat().st_mode) == dir_mode, d
    assert not temp_files(tmp_path)
