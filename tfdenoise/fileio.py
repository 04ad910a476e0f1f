"""File output that never destroys a user's file (base layer: imports nothing of ours but errors).

* :func:`check_outputs`: before any work, refuse an output that is one of the inputs, lies
  inside an input folder tree (a checkpoint folder, a folder of audio that a rerun would read
  back), or exists and is not a regular file (a device, a folder); then probe that every output
  location can be written, so a bad ``-o`` fails in a second, not after the work.
* :func:`atomic_path`: every file tfdenoise writes (audio, checkpoints' JSON, .tflite,
  reports, caches) is written to a temporary name in the same folder and renamed, so an
  interrupted or failing write never leaves a partial file and an existing file keeps its old
  content.  The file gets the permissions an ordinary write would give (an existing file keeps
  its mode, a new one 0666 minus the umask, not mkstemp's 0600); a failed write leaves no
  folder it created; an OSError while writing becomes one :class:`OutputError` line.
"""
from __future__ import annotations

import json
import os
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from tfdenoise.errors import OutputError

PathLike = str | os.PathLike


def umask() -> int:
    """The process umask (read without changing it for longer than one call)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def ordinary_mode(folder: bool = False) -> int:
    """Permissions a plain ``open(..., "w")`` (or ``mkdir``) would give under the umask."""
    return (0o777 if folder else 0o666) & ~umask()


def _canon(path: PathLike) -> Path:
    return Path(path).expanduser().resolve()


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a == b or (a.exists() and b.exists() and os.path.samefile(a, b))
    except OSError:
        return False


def _probe_writable(path: Path, shown: PathLike) -> None:
    """Raise OutputError unless a file could be created in ``path``'s nearest existing folder."""
    folder = path
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise OutputError(f"cannot create it: {folder} is not a folder", shown)
    try:
        Path(tempfile.mkdtemp(prefix=".tfdenoise-probe-", dir=folder)).rmdir()
    except OSError as exc:
        raise OutputError(f"cannot write there ({exc.strerror or exc})", shown) from None


def check_outputs(files: Iterable[PathLike] = (), folders: Iterable[PathLike] = (), *,
                  inputs: Iterable[PathLike] = (), input_trees: Iterable[PathLike] = ()) -> None:
    """Refuse outputs that would destroy or feed back into inputs; probe that they are writable.

    ``files`` are output files, ``folders`` output folders; ``inputs`` are files the command
    reads; ``input_trees`` folders it reads (no output may land inside one).  Call it after the
    inputs have been checked and before any work starts.
    """
    ins = [_canon(p) for p in inputs]
    trees = [_canon(p) for p in input_trees]
    probed: set[Path] = set()
    for shown, is_folder in [(f, False) for f in files] + [(d, True) for d in folders]:
        out = _canon(shown)
        for i in ins:
            if _same_file(out, i):
                raise OutputError(f"output would overwrite the input {i}", shown)
        for t in trees:
            if out == t or t in out.parents:
                raise OutputError(f"output lies inside the input folder {t} (it would be read "
                                  "back or overwrite what is read); choose another place", shown)
        if out.exists() and is_folder and not out.is_dir():
            raise OutputError("exists and is not a folder", shown)
        if out.exists() and not is_folder and not out.is_file():
            raise OutputError("exists and is not a regular file", shown)
        where = out if is_folder else out.parent
        if where not in probed:
            _probe_writable(where, shown)
            probed.add(where)


@contextmanager
def atomic_path(path: PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` matters to writers that pick a format or append an extension from the name
    (``numpy.savez`` adds ``.npz``).  The temporary file is removed on any failure; an
    OSError (read-only folder, full disk) becomes an :class:`OutputError` naming ``path``.
    """
    path = Path(path)
    tmp, created, done = None, _missing_folders(path.parent), False
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
        os.close(fd)
        yield Path(tmp)
        # an existing file keeps its mode, as an ordinary rewrite would; a new one gets 0666 - umask
        os.chmod(tmp, stat.S_IMODE(path.stat().st_mode) if path.is_file() else ordinary_mode())
        os.replace(tmp, path)
        done = True
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror or exc})", path) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if not done:  # leave no empty folders behind a failed write
            for folder in created:
                try:
                    folder.rmdir()
                except OSError:
                    break


@contextmanager
def atomic_folder(path: PathLike) -> Iterator[Path]:
    """Yield a temporary folder next to ``path``; swap it in for ``path`` if the block succeeds.

    The old folder (if any) is renamed aside, the new one renamed in, the old one removed, so a
    reader sees the old or the new folder, never a mix (checkpoints).  The folder gets the
    permissions an ordinary ``mkdir`` would give; an OSError becomes an :class:`OutputError`.
    """
    import shutil

    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
        os.chmod(tmp, ordinary_mode(folder=True))  # mkdtemp's 0700 would hide it from other users
        yield tmp
        old = path.with_name(f".{path.name}.old")
        if path.exists():
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
        try:
            os.replace(tmp, path)
        except OSError:
            if old.exists() and not path.exists():
                os.replace(old, path)  # the old folder comes back
            raise
        if old.exists():
            shutil.rmtree(old)
    except OSError as exc:
        raise OutputError(f"cannot write ({exc.strerror or exc})", path) from None
    finally:
        if tmp is not None and tmp.exists():
            shutil.rmtree(tmp)


def _missing_folders(folder: Path) -> list[Path]:
    """The folders ``mkdir(parents=True)`` would create for ``folder``, deepest first."""
    out = []
    while not folder.exists() and folder != folder.parent:
        out.append(folder)
        folder = folder.parent
    return out


def write_bytes(path: PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically; returns ``path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text(path: PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON to ``path`` atomically; returns ``path``."""
    return write_text(path, json.dumps(obj, indent=2))
