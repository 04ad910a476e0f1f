"""fileio.atomic_path: the mode an ordinary write would give, no leftovers after a failure."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from tfdenoise.errors import OutputError
from tfdenoise.fileio import write_text


def test_rewrite_keeps_the_existing_mode(tmp_path):
    path = tmp_path / "r.json"
    path.write_text("old")
    os.chmod(path, 0o600)
    write_text(path, "new")
    assert path.read_text() == "new" and (path.stat().st_mode & 0o777) == 0o600


def test_failed_write_leaves_no_folder_it_created(tmp_path, monkeypatch):
    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(OutputError, match="No space left on device"):
        write_text(tmp_path / "new" / "deep" / "r.json", "x")
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "kept").mkdir()
    with pytest.raises(OutputError):
        write_text(tmp_path / "kept" / "deep" / "r.json", "x")
    assert [p.name for p in tmp_path.iterdir()] == ["kept"] and not any((tmp_path / "kept").iterdir())


def test_failed_folder_swap_puts_the_old_folder_back(tmp_path, monkeypatch):
    from tfdenoise.fileio import atomic_folder

    ckpt = tmp_path / "best"
    ckpt.mkdir()
    (ckpt / "weights.h5").write_text("old")
    real = os.replace

    def fail_second(src, dst):
        new = Path(src).name.startswith(".best.") and not Path(src).name.endswith(".old")
        if new and str(dst) == str(ckpt):  # the new folder's rename fails after the old one moved aside
            raise OSError(errno.ENOSPC, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", fail_second)
    with pytest.raises(OutputError, match="No space left on device"):
        with atomic_folder(ckpt) as tmp:
            (tmp / "weights.h5").write_text("new")
    assert (ckpt / "weights.h5").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best"]
