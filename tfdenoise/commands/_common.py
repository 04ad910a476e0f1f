"""Flags and output helpers shared by the sub-commands (not a sub-command itself).

``--json F`` means the same everywhere: write the command's result as JSON to ``F``; with
``F`` = ``-`` the JSON alone goes to stdout and every human-readable line to stderr, so
``tfdenoise CMD --json - | jq`` always parses.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

STDOUT = "-"


def add_json(p, what: str = "the result") -> None:
    """The ``--json F|-`` option."""
    p.add_argument("--json", nargs="?", const=STDOUT, default=None, metavar="F|-",
                   help=f"also write {what} as JSON to F; '-' (or --json alone) prints only the "
                        "JSON on stdout (human-readable lines go to stderr)")


def json_files(dest: str | None) -> list[Path]:
    """Output files named by ``--json`` (none for stdout or when absent), for check_outputs."""
    return [] if dest in (None, STDOUT) else [Path(dest)]


def human(dest: str | None) -> TextIO:
    """Where human-readable lines go: stderr when the JSON takes stdout."""
    return sys.stderr if dest == STDOUT else sys.stdout


def emit_json(obj: Any, dest: str | None) -> None:
    """Write ``obj`` to ``dest`` (``-`` = stdout, a path = atomic file, None = nowhere)."""
    if dest is None:
        return
    text = json.dumps(obj, indent=2)
    if dest == STDOUT:
        print(text)
    else:
        from tfdenoise.fileio import write_text

        write_text(Path(dest), text + "\n")
