"""Shared helpers and inputs of the trust tests (test_trust_*.py): hashes of input trees,
the one-line error check, and the inputs every command reads."""

import errno
import hashlib
import os
import shutil
import signal
import stat
import time
from contextlib import contextmanager, redirect_stderr, redirect_stdout
from io import StringIO
from pathlib import Path

import pytest

from conftest import synth_speech, write_wav

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
