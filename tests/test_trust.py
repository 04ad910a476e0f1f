"""Trust: tfdenoise never destroys an input, never leaves a partial file, says what it did.

Every test runs the command line (the ``cli`` fixture) and checks four things: the exit code,
that stderr's error is one line naming the path, that no input changed (sha256 of every input
file, before and after) and that nothing partial was left (no unexpected new file, no
``.<name>.*`` temporary file).
"""
from __future__ import annotations

import errno
import hashlib
import json
import os
import shutil
import signal
import stat
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from conftest import make_pairs, synth_speech, write_wav

#: A command refused before its work starts answers within this many seconds (generous: the
#: refusal itself takes milliseconds; loading a model takes seconds).
FAST_S = 5.0


# -- helpers ----------------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tree_hashes(*paths) -> dict[str, str | None]:
    """``{path: fingerprint}`` of every file and folder below ``paths`` (recursively).

    Files map to their sha256, folders to ``"<dir>"``, symbolic links to their target, other
    things (FIFOs, devices) to their kind and a missing path to ``None``: comparing two
    snapshots finds a changed byte, a new or removed file (temporary ones included, they start
    with a dot) and a replaced file.  FIFOs are never opened.
    """
    out: dict[str, str | None] = {}

    def one(p: Path) -> None:
        try:
            st = p.lstat()
        except FileNotFoundError:
            out[str(p)] = None
            return
        if stat.S_ISLNK(st.st_mode):
            out[str(p)] = "<link> " + os.readlink(p)
        elif stat.S_ISREG(st.st_mode):
            out[str(p)] = _sha256(p)
        elif stat.S_ISDIR(st.st_mode):
            out[str(p)] = "<dir>"
            for child in sorted(p.iterdir()):
                one(child)
        else:
            out[str(p)] = f"<special {stat.S_IFMT(st.st_mode):o}>"

    for p in paths:
        one(Path(p))
    return out


def error_line(err: str, cmd: str, *paths, only: bool = True) -> str:
    """The one ``tfdenoise CMD: error: ...`` line of ``err``; it must name every one of ``paths``.

    ``only``: stderr holds nothing else (no warning, no traceback).
    """
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith(f"tfdenoise {cmd}: error: ")]
    assert len(errors) == 1, err
    assert "Traceback" not in err, err
    if only:
        assert lines == errors, err
    for p in paths:
        assert str(p) in errors[0], (p, errors[0])
    return errors[0]


def temp_files(root: Path) -> list[Path]:
    """Leftover temporary files of atomic writes (``.<name>.*``) and write probes below ``root``."""
    return sorted(root.rglob(".*"))


def assert_nothing_new(before: dict, root: Path, expected=()) -> None:
    """Below ``root``, no file or folder appeared except ``expected``, and no temporary file."""
    after = tree_hashes(root)
    new = {p for p in after if p not in before}
    assert new <= {str(p) for p in expected}, sorted(new - {str(p) for p in expected})
    assert not temp_files(root), temp_files(root)


@contextmanager
def umask(mask: int):
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@contextmanager
def deadline(seconds: int):
    """Fail instead of hanging (a FIFO opened for writing blocks until a reader comes)."""
    def boom(signum, frame):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run_main(*argv) -> tuple[int, str, str]:
    """``tfdenoise.cli.main`` with its stdout and stderr (for module-scoped fixtures)."""
    from tfdenoise.cli import main

    out, err = StringIO(), StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


# -- shared inputs ----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``export --variant gru128 --fp32 --no-check`` run once under umask 022:
    ``(path, exit code, stdout, stderr)``.  Its file is the model the tests below read."""
    path = tmp_path_factory.mktemp("export") / "r.tflite"
    with umask(0o022):
        code, out, err = run_main("export", "--variant", "gru128", "--fp32", "--no-check",
                                  "-o", path)
    assert code == 0, err
    return path, code, out, err


@pytest.fixture
def model(tmp_path, exported) -> Path:
    """A private copy of the exported random-weight .tflite, ``tmp_path/m.tflite``."""
    return Path(shutil.copy(exported[0], tmp_path / "m.tflite"))


@pytest.fixture
def ckpt(tmp_path, checkpoint) -> Path:
    """A private copy of the session checkpoint, ``tmp_path/ckpt``."""
    return Path(shutil.copytree(checkpoint, tmp_path / "ckpt"))


@pytest.fixture
def audio_dir(tmp_path) -> Path:
    """Two short wavs, ``tmp_path/audio/{a,b}.wav``."""
    for i, name in enumerate("ab"):
        write_wav(tmp_path / "audio" / f"{name}.wav", synth_speech(0.3, seed=i))
    return tmp_path / "audio"


# -- outputs that alias inputs ----------------------------------------------------------------

def refused(cli, tmp_path, cmd, argv, named, inputs, exit_code=2, expected_new=()):
    """Run ``argv``; check the exit code, one error line naming ``named``, unchanged inputs and
    that nothing new appeared below ``tmp_path``."""
    before_inputs = tree_hashes(*inputs)
    before = tree_hashes(tmp_path)
    t0 = time.monotonic()
    with deadline(120):
        code, out, err = cli(cmd, *argv)
    elapsed = time.monotonic() - t0
    assert code == exit_code, (code, out, err)
    line = error_line(err, cmd, named)
    assert tree_hashes(*inputs) == before_inputs
    assert_nothing_new(before, tmp_path, expected_new)
    return line, elapsed


def test_report_json_onto_its_model(cli, tmp_path, model):
    line, _ = refused(cli, tmp_path, "report", [model, "--json", model], model, [model])
    assert "overwrite the input" in line


def test_report_folder_output_under_the_model_file(cli, tmp_path, model):
    # -o names the model file itself, as if it were a folder
    refused(cli, tmp_path, "report", [model, "-o", model], model, [model])


@pytest.mark.parametrize("target", ["weights.h5", "config.json", "x.tflite", "sub/x.tflite",
                                    "sub/../../ckpt/y.tflite"])
def test_export_into_its_checkpoint_folder(cli, tmp_path, ckpt, target):
    out = Path(f"{ckpt}/{target}")
    refused(cli, tmp_path, "export", [ckpt, "--fp32", "--no-check", "-o", out], out, [ckpt])


def test_export_all_into_its_checkpoint_folder(cli, tmp_path, ckpt):
    refused(cli, tmp_path, "export", [ckpt, "--all", "--no-check", "-o", ckpt], ckpt, [ckpt])


def test_export_json_into_its_checkpoint_folder(cli, tmp_path, ckpt):
    out, js = tmp_path / "m.tflite", ckpt / "config.json"
    refused(cli, tmp_path, "export", [ckpt, "--fp32", "--no-check", "-o", out, "--json", js],
            js, [ckpt])


def test_outputs_into_shipped_folders(cli, tmp_path):
    """``--pretrained`` and the default pairs are folders of the package: nothing may be written
    into them (new names here, so that a regression cannot destroy a shipped file)."""
    from tfdenoise.pretrained import checkpoint
    from tfdenoise.samples import pairs_dir

    shipped = checkpoint("gru128")
    out = shipped / "tflite" / "trust-test.tflite"
    refused(cli, tmp_path, "export", ["--pretrained", "gru128", "--fp32", "--no-check", "-o", out],
            out, [shipped])
    out = pairs_dir() / "clean" / "trust-test.json"
    refused(cli, tmp_path, "evaluate", ["--model", "noisy", "--json", out], out, [pairs_dir()])


def test_export_onto_its_recipe_and_into_its_calibration_folder(cli, tmp_path, ckpt):
    from tfdenoise.converters.calibration import list_clips

    recipe = Path(shutil.copy(Path(__file__).parents[1] / "converters/recipes/fp32.json",
                              tmp_path / "recipe.json"))
    calib = tmp_path / "calib"
    calib.mkdir()
    shutil.copy(list_clips()[0], calib)
    out = tmp_path / "m.tflite"
    refused(cli, tmp_path, "export", [ckpt, "--recipe", recipe, "--no-check", "-o", out,
                                      "--json", recipe], recipe, [ckpt, recipe, calib])
    bad = calib / "m.tflite"
    refused(cli, tmp_path, "export", [ckpt, "--calib-data", calib, "--fp32", "--no-check",
                                      "-o", bad], bad, [ckpt, recipe, calib])


@pytest.mark.parametrize("target", ["clean/u0.wav", "noisy/u1.wav", "scores.json", "."])
def test_evaluate_json_into_its_pairs(cli, tmp_path, pairs, ckpt, target):
    out = pairs / target
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", ckpt, "--jobs", "1",
                                        "--json", out], out, [pairs, ckpt])


def test_evaluate_json_onto_its_model(cli, tmp_path, pairs, model, ckpt):
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", model, "--jobs", "1",
                                        "--json", model], model, [pairs, model])
    out = ckpt / "scores.json"
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", ckpt, "--jobs", "1",
                                        "--json", out], out, [pairs, ckpt])


@pytest.mark.parametrize("target", ["enh", "enh/deeper", ".", "a.wav", "x.wav"])
def test_enhance_folder_into_itself(cli, tmp_path, audio_dir, ckpt, target):
    out = audio_dir / target if target != "." else audio_dir
    refused(cli, tmp_path, "enhance", [audio_dir, "-o", out, "--model", ckpt, "--jobs", "1"],
            out, [audio_dir, ckpt])


def test_enhance_folder_to_a_file(cli, tmp_path, audio_dir, ckpt):
    out = tmp_path / "out.wav"
    line, _ = refused(cli, tmp_path, "enhance", [audio_dir, "-o", out, "--model", ckpt],
                      out, [audio_dir, ckpt])
    assert "must be a folder" in line


def test_enhance_file_onto_itself(cli, tmp_path, wav, ckpt):
    refused(cli, tmp_path, "enhance", [wav, "-o", wav, "--model", ckpt], wav, [wav, ckpt])
    # the same, through its folder: tmp_path/in.wav -> tmp_path/in.wav
    refused(cli, tmp_path, "enhance", [wav, "-o", tmp_path, "--model", ckpt], tmp_path,
            [wav, ckpt])


def test_enhance_into_its_model(cli, tmp_path, wav, audio_dir, ckpt):
    out = ckpt / "x.wav"
    refused(cli, tmp_path, "enhance", [wav, "-o", out, "--model", ckpt], out, [wav, ckpt])
    refused(cli, tmp_path, "enhance", [wav, "-o", ckpt, "--model", ckpt], ckpt, [wav, ckpt])
    out = ckpt / "enhanced"
    refused(cli, tmp_path, "enhance", [audio_dir, "-o", out, "--model", ckpt], out,
            [audio_dir, ckpt])


def test_validate_json_onto_its_model(cli, tmp_path, model, pairs, ckpt):
    args = [model, "--pairs", pairs, "--checkpoint", ckpt, "--jobs", "1"]
    refused(cli, tmp_path, "validate", args + ["--json", model], model, [model, pairs, ckpt])
    md = pairs / "clean" / "t.md"
    refused(cli, tmp_path, "validate", args + ["--markdown", md], md, [model, pairs, ckpt])
    js = ckpt / "v.json"
    refused(cli, tmp_path, "validate", args + ["--json", js], js, [model, pairs, ckpt])


def test_output_that_is_a_hard_link_of_the_input(cli, tmp_path, model, wav, ckpt):
    link = tmp_path / "links" / "same.tflite"
    link.parent.mkdir()
    os.link(model, link)
    line, _ = refused(cli, tmp_path, "report", [model, "--json", link], link, [model, link])
    assert "overwrite the input" in line
    wlink = tmp_path / "links" / "same.wav"
    os.link(wav, wlink)
    refused(cli, tmp_path, "enhance", [wav, "-o", wlink, "--model", ckpt], wlink,
            [wav, wlink, ckpt])
    assert os.path.samefile(model, link) and os.path.samefile(wav, wlink)


def test_output_that_is_a_symlink_or_dotdot_spelling_of_the_input(cli, tmp_path, model, pairs, ckpt):
    sym = tmp_path / "sym.json"
    sym.symlink_to(model)
    refused(cli, tmp_path, "report", [model, "--json", sym], sym, [model, sym])
    dotdot = Path(f"{pairs}/clean/../noisy/../clean/u0.wav")
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", "noisy", "--json", dotdot],
            dotdot, [pairs])
    dirlink = tmp_path / "pairs-link"
    dirlink.symlink_to(pairs, target_is_directory=True)
    inside = dirlink / "scores.json"
    refused(cli, tmp_path, "evaluate", ["--pairs", pairs, "--model", "noisy", "--json", inside],
            inside, [pairs])


@pytest.mark.parametrize("cmd", ["report", "evaluate", "enhance", "export"])
def test_non_regular_output_is_refused_untouched(cli, tmp_path, model, pairs, wav, ckpt, cmd):
    """``--json /dev/null``-style outputs: a FIFO stays a FIFO (and is never opened)."""
    fifo = tmp_path / ("out.tflite" if cmd == "export" else
                       "out.wav" if cmd == "enhance" else "out.json")
    os.mkfifo(fifo)
    argv = {"report": [model, "--json", fifo],
            "evaluate": ["--pairs", pairs, "--model", "noisy", "--json", fifo],
            "enhance": [wav, "-o", fifo, "--model", ckpt],
            "export": [ckpt, "--fp32", "--no-check", "-o", fifo]}[cmd]
    line, _ = refused(cli, tmp_path, cmd, argv, fifo, [model, pairs, wav, ckpt])
    assert "not a regular file" in line
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_existing_folder_as_output_file_is_refused(cli, tmp_path, model):
    folder = tmp_path / "r.json"
    folder.mkdir()
    line, _ = refused(cli, tmp_path, "report", [model, "--json", folder], folder, [model])
    assert "not a regular file" in line and folder.is_dir()


# -- OS errors before the work ----------------------------------------------------------------

@pytest.fixture
def no_work(monkeypatch):
    """Make the heavy step of every command fail the test: a refusal must come before it."""
    import tfdenoise.converters.convert  # noqa: F401  (imported before the patches below:
    import tfdenoise.enhance              # a module imported under them would keep them)
    import tfdenoise.evaluate
    import tfdenoise.models
    import tfdenoise.targets
    import tfdenoise.targets.pipeline  # noqa: F401

    def forbidden(*a, **k):
        raise AssertionError("the work started before the output was checked")

    monkeypatch.setattr(tfdenoise.enhance, "map_with_model", forbidden)
    monkeypatch.setattr(tfdenoise.evaluate, "evaluate_pairs", forbidden)
    monkeypatch.setattr(tfdenoise.models, "load_checkpoint", forbidden)
    monkeypatch.setattr(tfdenoise.models, "TinyDenoiser", forbidden)
    monkeypatch.setattr(tfdenoise.targets, "analyze", forbidden)


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


def _full_disk(monkeypatch, where: str) -> None:
    """Make the next atomic write fail with ENOSPC: at the rename, or halfway through the data."""
    import tfdenoise.fileio as fileio

    def no_space(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    if where == "replace":
        monkeypatch.setattr(fileio.os, "replace", no_space)
    else:
        real = Path.write_bytes

        def half_then_full(self, data):
            real(self, data[: len(data) // 2])
            no_space()

        monkeypatch.setattr(fileio.Path, "write_bytes", half_then_full)


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


# -- batches ----------------------------------------------------------------------------------

def test_enhance_batch_finishes_the_good_files(cli, tmp_path, ckpt):
    src = tmp_path / "in"
    write_wav(src / "a.wav", synth_speech(0.3, seed=0))
    (src / "b.wav").write_bytes(b"RIFF but not really a wav file")
    write_wav(src / "c.wav", synth_speech(0.3, seed=1))
    out = tmp_path / "out"
    before_inputs = tree_hashes(src, ckpt)
    before = tree_hashes(tmp_path)
    code, stdout, err = cli("enhance", src, "-o", out, "--model", ckpt, "--jobs", "1")
    assert code == 2, err
    assert stdout.splitlines() == [str(out / "a.wav"), str(out / "c.wav")]
    line = error_line(err, "enhance", src / "b.wav")
    assert "1 of 3 files failed, 2 written" in line
    assert sorted(p.name for p in out.iterdir()) == ["a.wav", "c.wav"]
    assert sf.info(str(out / "c.wav")).frames == int(0.3 * 16000)
    assert tree_hashes(src, ckpt) == before_inputs
    assert_nothing_new(before, tmp_path, [out, out / "a.wav", out / "c.wav"])


def test_enhance_batch_lists_every_failure_in_one_line(cli, tmp_path, ckpt):
    src = tmp_path / "in"
    write_wav(src / "a.wav", synth_speech(0.3))
    (src / "b.wav").write_bytes(b"garbage")
    write_wav(src / "c.wav", np.zeros(4800, np.float32))  # silent
    out = tmp_path / "out"
    code, stdout, err = cli("enhance", src, "-o", out, "--model", ckpt, "--jobs", "1")
    assert code == 2
    assert stdout.splitlines() == [str(out / "a.wav")]
    line = error_line(err, "enhance", src / "b.wav", src / "c.wav")
    assert "2 of 3 files failed, 1 written" in line


# -- no silent surprises ----------------------------------------------------------------------

def test_export_variant_says_random_everywhere(exported, cli, tmp_path):
    from tfdenoise.converters.metadata import read_metadata

    path, code, out, err = exported
    assert "RANDOM (untrained) weights" in out.splitlines()[0]
    assert "RANDOM" in err  # and a warning
    assert read_metadata(path.read_bytes(), path)["random_weights"] is True
    code, out, err = cli("report", path, "--json", "-")
    assert code == 0, err
    report = json.loads(out)
    assert report["random_weights"] is True
    assert any("RANDOM" in w for w in report["warnings"]), report["warnings"]
    assert "RANDOM" in err  # the Markdown (on stderr with --json -) says it too


def test_scores_of_random_weights_warn(exported, cli, pairs):
    code, _, err = cli("evaluate", "--pairs", pairs, "--model", exported[0], "--jobs", "1")
    assert code == 0, err
    warnings = [w for w in err.splitlines() if w.startswith("tfdenoise evaluate: warning: ")]
    assert sum("RANDOM" in w for w in warnings) == 1, err


def test_export_pretrained_is_the_trained_model(cli, tmp_path):
    from tfdenoise.converters.metadata import read_metadata

    out = tmp_path / "p.tflite"
    code, stdout, err = cli("export", "--pretrained", "gru128", "--fp32", "--no-check", "-o", out)
    assert code == 0, err
    assert "RANDOM" not in stdout + err
    assert not (read_metadata(out.read_bytes(), out) or {}).get("random_weights")
    code, stdout, err = cli("report", out, "--json", "-")
    assert code == 0 and json.loads(stdout)["random_weights"] is False


@pytest.mark.parametrize("rate", [48000, 8000])
def test_resampled_input_warns_once(cli, tmp_path, ckpt, rate):
    t = np.arange(rate // 2) / rate
    x = 0.2 * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 1100 * t)) * np.hanning(t.size)
    src = write_wav(tmp_path / "hi.wav", x.astype(np.float32), sr=rate)
    out = tmp_path / "e.wav"
    code, stdout, err = cli("enhance", src, "-o", out, "--model", ckpt)
    assert code == 0, err
    lines = err.splitlines()
    hits = [w for w in lines if f"resampled from {rate} Hz to 16000 Hz" in w]
    assert len(hits) == 1 and hits[0].startswith("tfdenoise enhance: warning: "), err
    assert str(src) in hits[0]
    assert ("narrowband" in hits[0]) == (rate == 8000)
    info = sf.info(str(out))
    assert info.samplerate == 16000 and info.frames == 8000
    # a folder of them: one warning per file, not per read
    folder = tmp_path / "many"
    folder.mkdir()
    for name in ("x", "y"):
        shutil.copy(src, folder / f"{name}.wav")
    code, _, err = cli("enhance", folder, "-o", tmp_path / "many-out", "--model", ckpt,
                       "--jobs", "1")
    assert code == 0, err
    for name in ("x", "y"):
        assert sum(f"{folder / name}.wav: resampled from {rate} Hz" in w
                   for w in err.splitlines()) == 1, err


def test_narrowband_references_warn(cli, tmp_path):
    """Synthetic speech (harmonics below 2 kHz) is narrowband: PESQ-WB of it warns per file."""
    pairs = make_pairs(tmp_path / "nb")
    code, _, err = cli("evaluate", "--pairs", pairs, "--model", "noisy", "--jobs", "1")
    assert code == 0, err
    warned = [w for w in err.splitlines() if "narrowband" in w]
    assert len(warned) == 2 and all(w.startswith("tfdenoise evaluate: warning: ") for w in warned)


def test_wideband_references_do_not_warn(cli, real_pairs):
    code, _, err = cli("evaluate", "--pairs", real_pairs, "--model", "noisy", "--jobs", "1")
    assert code == 0, err
    assert "narrowband" not in err


@pytest.fixture
def loud(tmp_path) -> Path:
    """A float wav whose peak is 1.5."""
    x = synth_speech(0.5)
    return write_wav(tmp_path / "loud.wav", x * (1.5 / np.max(np.abs(x))), subtype="FLOAT")


def test_overrange_warns_by_default(cli, tmp_path, loud, ckpt):
    out = tmp_path / "e.wav"
    code, _, err = cli("enhance", loud, "-o", out, "--model", ckpt)
    assert code == 0, err
    warned = [w for w in err.splitlines() if "above full scale" in w]
    assert len(warned) == 1 and warned[0].startswith("tfdenoise enhance: warning: ")
    assert str(loud) in warned[0] and "1.5" in warned[0]
    assert out.is_file()


def test_overrange_refuse(cli, tmp_path, loud, ckpt):
    out = tmp_path / "e.wav"
    before = tree_hashes(tmp_path)
    code, stdout, err = cli("enhance", loud, "-o", out, "--model", ckpt, "--overrange", "refuse")
    assert code == 2
    assert "above full scale" in error_line(err, "enhance", loud)
    assert not out.exists() and stdout == ""
    assert_nothing_new(before, tmp_path)


def test_overrange_normalize(cli, tmp_path, loud, ckpt):
    out, clipped = tmp_path / "n.wav", tmp_path / "w.wav"
    code, _, err = cli("enhance", loud, "-o", out, "--model", ckpt, "--overrange", "normalize")
    assert code == 0, err
    assert "above full scale" not in err
    y, sr = sf.read(str(out), dtype="float32")
    assert sr == 16000 and np.max(np.abs(y)) <= 1.0
    code, _, err = cli("enhance", loud, "-o", clipped, "--model", ckpt)
    assert code == 0
    assert not np.array_equal(y, sf.read(str(clipped), dtype="float32")[0])
