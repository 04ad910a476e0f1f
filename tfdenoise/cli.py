"""The ``tfdenoise`` command: a thin front door over the library.

Each sub-command lives in ``tfdenoise/commands/<name>.py`` and exposes
``add_parser(subparsers)`` and ``run(args) -> int``.  ``run`` converts the parsed flags to
typed arguments and calls library functions.  This module alone turns
:class:`~tfdenoise.errors.TfdenoiseError` into a one-line message and an exit code.
"""
from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys

from tfdenoise import __version__
from tfdenoise.errors import TfdenoiseError, show_warnings_as_lines


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tfdenoise",
        description="TinyDenoiser speech enhancement: train, export to TFLite "
                    "(FP32/FP16/INT8/mixed FP16-INT8), evaluate, and model on an MCU.")
    parser.add_argument("--version", action="version", version=f"tfdenoise {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    import tfdenoise.commands as commands

    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        if not info.name.startswith("_"):
            module = importlib.import_module(f"tfdenoise.commands.{info.name}")
            module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; returns its exit code (see :mod:`tfdenoise.errors`)."""
    args = build_parser().parse_args(argv)
    show_warnings_as_lines(f"tfdenoise {args.command}")
    try:
        return int(args.func(args) or 0)
    except TfdenoiseError as exc:
        print(f"tfdenoise {args.command}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"tfdenoise {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _quiet_broken_pipe()


def _quiet_broken_pipe() -> int:
    """The reader of our stdout went away (``tfdenoise models | head``): end quietly.

    Python would report the failed flush of stdout at exit; point stdout at /dev/null first.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
