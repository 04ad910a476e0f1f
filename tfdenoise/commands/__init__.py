"""Sub-commands of the ``tfdenoise`` CLI, one module each (see :mod:`tfdenoise.cli`).

Contract: ``add_parser(subparsers)`` registers the sub-command and sets
``func=run`` as its default; ``run(args) -> int`` calls library functions with typed
arguments and may raise :class:`~tfdenoise.errors.TfdenoiseError`.
"""
