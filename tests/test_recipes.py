"""The training recipes (tools/recipes/<variant>.sh) against the shipped model cards.

docs/training.md ("Reproducing a shipped model") promises that each recipe's `tfdenoise
train` commands give every epoch of the shipped card's history the learning rate the card
records, and that the recipe ends by shipping its last run. Each recipe runs here for real
(bash, in a copy of tools/recipes/ so that its run folders land in a temporary project root),
with stand-ins for the CLI and tools/ship_model.py that log their arguments and lay out the
run folders later steps copy. The logged commands are parsed by today's CLI parser, so a
renamed or removed flag fails too.
"""
from __future__ import annotations

import json
import math
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PRETRAINED = ROOT / "tfdenoise" / "pretrained"
VARIANTS = sorted(p.stem for p in (ROOT / "tools" / "recipes").glob("*.sh")
                  if (PRETRAINED / p.stem / "card.json").is_file())

# Logs its arguments; as `train`, lays out OUT/{last,best}/ and OUT/history.json, which the
# recipes copy when they fork a run (fork_best, cp).
STUB = """\
import json, os, sys
from pathlib import Path
argv = sys.argv[1:]
with open(os.environ["RECIPE_LOG"], "a") as log:
    log.write(json.dumps(argv) + "\\n")
if argv and argv[0] == "train":
    out = Path(argv[len(argv) - 1 - argv[::-1].index("--out") + 1])
    for sub in ("last", "best"):
        (out / sub).mkdir(parents=True, exist_ok=True)
        (out / sub / "config.json").write_text("{}")
    (out / "history.json").write_text("[]")
"""


@pytest.fixture(scope="module")
def recipe_logs(tmp_path_factory) -> dict[str, list[list[str]]]:
    """Each recipe's logged commands, in order: variant -> [argv, ...]."""
    tmp = tmp_path_factory.mktemp("recipes")
    shutil.copytree(ROOT / "tools" / "recipes", tmp / "tools" / "recipes")
    for folder in ("speech", "noise"):
        (tmp / "data" / folder).mkdir(parents=True)
    (tmp / "stub.py").write_text(STUB)
    stub = tmp / "stub"  # stands in for both $TFDENOISE and $PYTHON (tools/recipes/common.sh)
    stub.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{tmp / "stub.py"}" "$@"\n')
    stub.chmod(stub.stat().st_mode | stat.S_IXUSR)
    logs = {}
    for variant in VARIANTS:
        log = tmp / f"{variant}.log"
        env = {**os.environ, "DATA": str(tmp / "data"), "TFDENOISE": str(stub), "PYTHON": str(stub),
               "RECIPE_LOG": str(log)}
        run = subprocess.run(["bash", str(tmp / "tools" / "recipes" / f"{variant}.sh")], env=env,
                             capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, f"{variant}.sh failed: {run.stderr[-2000:]}"
        logs[variant] = [json.loads(line) for line in log.read_text().splitlines()]
    return logs


def _train_configs(commands: list[list[str]]):
    from tfdenoise.cli import build_parser
    from tfdenoise.commands.train import config_from_args

    parser = build_parser()
    configs = []
    for argv in commands:
        if argv[0] == "train":
            args = parser.parse_args(argv)
            configs.append(config_from_args(args, args.variant.lower(), args.out))
    return configs


@pytest.mark.parametrize("variant", VARIANTS)
def test_recipe_gives_every_card_epoch_its_learning_rate(recipe_logs, variant):
    from tfdenoise.train import learning_rate_at

    configs = _train_configs(recipe_logs[variant])
    assert configs and all(c.variant == variant for c in configs)
    history = json.loads((PRETRAINED / variant / "card.json").read_text())["history"]
    missing = [row["epoch"] for row in history
               if not any(c.epochs >= row["epoch"]
                          and math.isclose(learning_rate_at(c, row["epoch"] - 1), row["lr"], rel_tol=1e-9)
                          for c in configs)]
    assert not missing, (f"tools/recipes/{variant}.sh: no `tfdenoise train` command gives epochs "
                         f"{missing[:5]}{'...' if len(missing) > 5 else ''} the learning rate of "
                         f"tfdenoise/pretrained/{variant}/card.json")


@pytest.mark.parametrize("variant", VARIANTS)
def test_recipe_ships_its_last_run(recipe_logs, variant):
    commands = recipe_logs[variant]
    assert commands[-1] == ["tools/ship_model.py", _train_configs(commands)[-1].out]
