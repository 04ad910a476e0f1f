"""Sub-commands of the ``tfdenoise`` CLI, one module each (see :mod:`tfdenoise.cli`).

Contract: ``add_parser(subparsers)`` registers the sub-command and sets
``func=run`` as its default; ``run(args) -> int`` calls library functions with typed
arguments and may raise :class:`~tfdenoise.errors.TfdenoiseError`.
"""
import argparse


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Help formatter of the sub-commands: each option's help ends with its default
    ("(default: 64)"; not for required options, on/off flags or an empty default such as
    None, whose help says what happens without them), and the description and epilog keep their line
    breaks, so an epilog can show an example command as typed."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, "", (), []) or action.required or action.nargs == 0:
            return action.help
        return super()._get_help_string(action)
