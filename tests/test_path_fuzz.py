"""Property test of the command line's path handling: no spelling of an output may touch an input.

A sandbox holds one of every input kind (a checkpoint folder, a .tflite, a pairs folder, a
folder of audio, a recipe, a calibration folder).  Random command lines (report, export,
evaluate, enhance, validate, fixed seed) point their output flags (``-o``, ``--json``,
``--markdown``) at the command's inputs: the input files, files and new names inside the input
folders, the folders themselves, hard links and symbolic links of them, ``..`` and relative
spellings; inputs are spelled the same random ways.  After every command, every input file's
sha256 and every input folder's listing (temporary files included) must be unchanged, and
every command whose output aliases one of its inputs must have been refused (exit 2, one error
line) without writing anything.  A few commands get fresh outputs and really run (they must
succeed), to show the refusals are not blanket ones.
"""
from __future__ import annotations

import os
import random
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from conftest import make_pairs, synth_speech, write_wav
from trustkit import temp_files, tree_hashes

SUFFIX = {"json": ".json", "md": ".md", "tflite": ".tflite", "wav": ".wav", "folder": ""}
#: Output categories that alias an input of the command: the command must refuse them.
ALIAS = {"input", "input-parent", "hardlink-input", "symlink-input", "tree", "tree-file",
         "tree-new", "symlink-tree"}


@dataclass
class Sandbox:
    root: Path
    sb: Path = field(init=False)

    def __post_init__(self) -> None:
        self.sb = self.root / "sb"
        self.scratch = self.root / "scratch"
        self.links = self.sb / "links"
        self.scratch.mkdir(parents=True)
        self.links.mkdir(parents=True)
        self.n = 0

    def build(self, checkpoint: Path) -> "Sandbox":
        from tfdenoise.converters.calibration import list_clips
        from tfdenoise.pretrained import tflite

        sb = self.sb
        self.ckpt = Path(shutil.copytree(checkpoint, sb / "ckpt"))
        self.model = Path(shutil.copy(tflite("gru128", "fp32"), sb / "m.tflite"))
        self.pairs = make_pairs(sb / "pairs")
        self.audio = sb / "audio"
        write_wav(self.audio / "a.wav", synth_speech(0.3, seed=3))
        write_wav(self.audio / "sub" / "b.wav", synth_speech(0.3, seed=4))
        self.recipe = Path(shutil.copy(Path(__file__).parents[1] / "converters/recipes/fp32.json",
                                       sb / "recipe.json"))
        self.calib = sb / "calib"
        self.calib.mkdir()
        shutil.copy(list_clips()[0], self.calib)
        self.inputs = [self.ckpt, self.model, self.pairs, self.audio, self.recipe, self.calib]
        return self

    def fresh_name(self, stem: str) -> str:
        self.n += 1
        return f"{stem}{self.n}"

    def reset(self) -> None:
        """Empty the scratch and links folders between cases."""
        for d in (self.scratch, self.links):
            shutil.rmtree(d)
            d.mkdir()


def _real_dirs(path: Path, stop: Path) -> list[Path]:
    """Ancestors of ``path`` below ``stop`` that are real folders (no symlink on the way)."""
    out = []
    for anc in path.parents:
        if anc == stop or stop not in anc.parents:
            break
        if anc.is_dir() and not any(p.is_symlink() for p in [anc, *anc.parents]):
            out.append(anc)
    return out


def spell(rng: random.Random, sb: Sandbox, path: Path) -> str:
    """``path`` (absolute, inside the sandbox root) spelled absolutely, relatively to the
    current folder (the sandbox), with a ``dir/../dir`` detour, or via ``../sb``."""
    style = rng.choice(["abs", "rel", "dotdot", "updown"])
    if style == "dotdot":
        dirs = _real_dirs(path, sb.root)
        if dirs:
            d = rng.choice(dirs)
            return str(d / ".." / d.name / path.relative_to(d))
    rel = os.path.relpath(path, sb.sb)
    if style == "rel":
        return rel
    if style == "updown":
        return os.path.join("..", sb.sb.name, rel)
    return str(path)


def spell_input(rng: random.Random, sb: Sandbox, path: Path, via: list | None = None) -> str:
    """An input spelled like an output, or through a symbolic link (appended to ``via``)."""
    if rng.random() < 0.25:
        link = sb.links / (sb.fresh_name("in") + path.suffix)
        link.symlink_to(path, target_is_directory=path.is_dir())
        path = link
    if via is not None:
        via.append(path)
    return spell(rng, sb, path)


def pick_target(rng: random.Random, sb: Sandbox, kind: str, ins: list[Path], trees: list[Path],
                fresh_ok: bool, parents: list[Path] = ()) -> tuple[str, str]:
    """``(spelled path, category)`` of an output of ``kind`` for a command reading ``ins``
    (files) and ``trees`` (folders)."""
    suffix = SUFFIX[kind]
    cats = []
    if ins:
        cats += ["input", "hardlink-input", "symlink-input"]
    if trees:
        cats += ["tree", "tree-file", "tree-new", "tree-new", "symlink-tree"]
    if parents:
        cats += ["input-parent"] * 2
    if fresh_ok:
        # outputs that do not alias an input: the command does its work
        cats += ["fresh"] + (["hardlink-tree"] if trees else [])
    cat = rng.choice(cats)
    if cat == "input":
        path = rng.choice(ins)
    elif cat == "input-parent":
        path = rng.choice(parents)
    elif cat in ("hardlink-input", "hardlink-tree"):
        src = rng.choice(ins) if cat == "hardlink-input" else rng.choice(
            [f for t in trees for f in sorted(t.rglob("*")) if f.is_file()])
        path = sb.links / (sb.fresh_name("hl") + (suffix or src.suffix))
        os.link(src, path)
    elif cat == "symlink-input":
        path = sb.links / (sb.fresh_name("sl") + (suffix or ".x"))
        path.symlink_to(rng.choice(ins))
    elif cat == "tree":
        path = rng.choice(trees)
    elif cat == "tree-file":
        path = rng.choice([f for t in trees for f in sorted(t.rglob("*")) if f.is_file()])
    elif cat == "tree-new":
        tree = rng.choice(trees)
        folder = rng.choice([tree, *sorted(d for d in tree.rglob("*") if d.is_dir())])
        if rng.random() < 0.3:
            folder = folder / sb.fresh_name("newdir")
        path = folder / (sb.fresh_name("new") + suffix)
    elif cat == "symlink-tree":
        link = sb.links / sb.fresh_name("sd")
        link.symlink_to(rng.choice(trees), target_is_directory=True)
        path = link if rng.random() < 0.3 else link / (sb.fresh_name("new") + suffix)
    else:  # fresh
        folder = sb.scratch if rng.random() < 0.7 else sb.scratch / sb.fresh_name("d")
        path = folder / (sb.fresh_name("out") + suffix)
    return spell(rng, sb, path), cat


@dataclass
class Case:
    cmd: str
    argv: list[str]
    cats: list[str]

    @property
    def alias(self) -> bool:
        return any(c in ALIAS for c in self.cats)

    @property
    def runs(self) -> bool:
        """Designed to get past the output checks and do the work."""
        return not self.alias


def _report_argv(rng: random.Random, sb: Sandbox, target) -> list[str]:
    ins = [sb.model]
    argv = [spell_input(rng, sb, sb.model)]
    for flag in rng.choice([["--json"], ["-o"], ["--json", "-o"]]):
        argv += [flag, target("json" if flag == "--json" else "folder", ins, [])]
    return argv


def _export_argv(rng: random.Random, sb: Sandbox, target) -> list[str]:
    ins, trees = [], [sb.ckpt]
    argv = [spell_input(rng, sb, sb.ckpt), "--no-check"]
    if rng.random() < 0.3:
        ins.append(sb.recipe)
        argv += ["--recipe", spell_input(rng, sb, sb.recipe)]
    else:
        argv.append("--fp32")
    if rng.random() < 0.3:
        trees.append(sb.calib)
        argv += ["--calib-data", spell_input(rng, sb, sb.calib)]
    argv += ["-o", target("tflite", ins, trees)]
    if rng.random() < 0.4:
        argv += ["--json", target("json", ins, trees)]
    return argv


def _evaluate_argv(rng: random.Random, sb: Sandbox, target) -> list[str]:
    model = rng.choice(["ckpt", "model", "noisy"])
    ins = [sb.model] if model == "model" else []
    trees = [sb.pairs] + ([sb.ckpt] if model == "ckpt" else [])
    spec = "noisy" if model == "noisy" else spell_input(rng, sb, getattr(sb, model))
    return ["--pairs", spell_input(rng, sb, sb.pairs), "--model", spec, "--jobs", "1",
            "--json", target("json", ins, trees)]


def _enhance_argv(rng: random.Random, sb: Sandbox, target) -> list[str]:
    model = rng.choice(["ckpt", "model"])
    ins = [sb.model] if model == "model" else []
    trees = [sb.ckpt] if model == "ckpt" else []
    src, via = rng.choice([sb.audio, sb.audio / "a.wav", sb.audio / "sub" / "b.wav"]), []
    spelled = spell_input(rng, sb, src, via)
    if src.is_dir():
        out = target("folder", ins, [src, *trees])
    else:
        # the folder of the input as spelled (a symlink's folder, not its target's): the
        # output keeps the input's name there, so it is the input itself
        out = target(rng.choice(["wav", "folder"]), [src, *ins], trees,
                     parents=[via[0].parent])
    return [spelled, "-o", out, "--model", spell_input(rng, sb, getattr(sb, model)),
            "--jobs", "1"]


def _validate_argv(rng: random.Random, sb: Sandbox, target) -> list[str]:
    ins, trees = [sb.model], [sb.pairs, sb.ckpt]
    argv = [spell_input(rng, sb, sb.model), "--pairs", spell_input(rng, sb, sb.pairs),
            "--checkpoint", spell_input(rng, sb, sb.ckpt), "--jobs", "1"]
    for flag in rng.choice([["--json"], ["--markdown"], ["--json", "--markdown"]]):
        argv += [flag, target("json" if flag == "--json" else "md", ins, trees)]
    return argv


CASE_ARGV = {"report": _report_argv, "export": _export_argv, "evaluate": _evaluate_argv,
             "enhance": _enhance_argv, "validate": _validate_argv}


def make_case(rng: random.Random, sb: Sandbox, budget: dict[str, int]) -> Case:
    cmd = rng.choice(["report", "report", "export", "evaluate", "evaluate", "enhance", "enhance",
                      "validate"])
    fresh_ok = budget.get(cmd, 0) > 0
    cats: list[str] = []

    def target(kind, ins, trees, parents=()):
        # fresh outputs: within the budget, or beside an alias (then they must stay unwritten)
        path, cat = pick_target(rng, sb, kind, ins, trees, fresh_ok or any(
            c in ALIAS for c in cats), parents)
        cats.append(cat)
        return path

    case = Case(cmd, CASE_ARGV[cmd](rng, sb, target), cats)
    if case.runs:
        budget[cmd] = budget.get(cmd, 0) - 1
    return case


def fuzz(cli, tmp_path, monkeypatch, checkpoint, seed: int, n: int, budget: dict[str, int]) -> None:
    sb = Sandbox(tmp_path).build(checkpoint)
    monkeypatch.chdir(sb.sb)
    rng = random.Random(seed)
    baseline = tree_hashes(*sb.inputs)
    stats = {"alias": 0, "refused": 0, "ran": 0, "succeeded": 0}
    for i in range(n):
        sb.reset()
        case = make_case(rng, sb, budget)
        code, out, err = cli(case.cmd, *case.argv)
        what = f"case {i}: tfdenoise {case.cmd} {' '.join(case.argv)} {case.cats} -> {code}\n{err}"
        assert tree_hashes(*sb.inputs) == baseline, what
        assert not temp_files(tmp_path), (what, temp_files(tmp_path))
        assert "Traceback" not in err, what
        if case.alias:
            stats["alias"] += 1
            assert code == 2, what  # an alias never succeeds
            errors = [ln for ln in err.splitlines() if ln.startswith(f"tfdenoise {case.cmd}: error: ")]
            assert len(errors) == 1, what
            assert not any(sb.scratch.iterdir()), what  # no other output was written either
            stats["refused"] += 1
        else:
            stats["ran"] += 1
            if set(case.cats) == {"fresh"}:
                assert code == 0, what
                stats["succeeded"] += 1
    # most commands aim at an input, and every one of those was refused
    assert stats["alias"] >= 0.7 * n and stats["refused"] == stats["alias"], stats
    assert stats["succeeded"] >= 1, stats
    print(f"path fuzz seed {seed}: {n} commands, {stats}")


def test_path_fuzz_quick(cli, tmp_path, monkeypatch, checkpoint):
    fuzz(cli, tmp_path, monkeypatch, checkpoint, seed=1, n=20,
         budget={"report": 1, "evaluate": 1, "enhance": 1})


def test_path_fuzz(cli, tmp_path, monkeypatch, checkpoint):
    fuzz(cli, tmp_path, monkeypatch, checkpoint, seed=2024, n=100,
         budget={"report": 1, "evaluate": 1, "enhance": 1, "export": 1, "validate": 1})


@pytest.mark.slow
@pytest.mark.parametrize("seed", [7, 8, 9])
def test_path_fuzz_many(cli, tmp_path, monkeypatch, checkpoint, seed):
    fuzz(cli, tmp_path, monkeypatch, checkpoint, seed=seed, n=300,
         budget={"report": 2, "evaluate": 1, "enhance": 1, "export": 1, "validate": 1})
