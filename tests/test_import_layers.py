"""The package layers: no module imports a layer above its own (static check of every import).

    base        tfdenoise (the package root), errors, fileio, vocab, quiet, checks: imports nothing of ours
    targets     tfdenoise.targets.*            -> base             (never TensorFlow)
    speech      audio, stft, models, modelref, data, mixtures, losses, metrics, keras,
                train, pretrained, samples, kws.*, qat, qat_layers, qat_quantizers,
                qat_train, augment, rir, ema  -> base
    converters  tfdenoise.converters.*          -> base, speech, targets
    app         enhance, evaluate, kws_evaluate, validation, sweep, search, search_space, search_kws,
                search_output, demo, demo_kws, cli,
                commands.*                     -> everything

Imports inside functions count too (lazy imports are still dependencies).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: package folder -> module prefix (converters/ and targets/ install as tfdenoise subpackages)
FOLDERS = {"tfdenoise": "tfdenoise", "converters": "tfdenoise.converters", "targets": "tfdenoise.targets"}
LAYERS = {
    "base": ("tfdenoise", "tfdenoise.errors", "tfdenoise.fileio", "tfdenoise.vocab", "tfdenoise.quiet",
             "tfdenoise.checks"),
    "targets": ("tfdenoise.targets",),
    "speech": tuple(f"tfdenoise.{m}" for m in (
        "audio", "stft", "models", "modelref", "data", "mixtures", "losses", "metrics", "keras",
        "train", "train_config", "selection", "distribute", "pretrained", "samples", "kws", "qat", "qat_layers", "qat_quantizers", "qat_train",
        "prune", "prune_masks", "prune_structured", "augment", "rir", "ema")),
    "converters": ("tfdenoise.converters",),
    "app": tuple(f"tfdenoise.{m}" for m in (
        "enhance", "evaluate", "kws_evaluate", "validation", "sweep", "search", "search_space", "search_kws",
        "search_output", "demo", "demo_kws", "cli",
        "commands")),
}
ALLOWED = {"base": {"base"}, "targets": {"base", "targets"}, "speech": {"base", "speech"},
           "converters": {"base", "speech", "targets", "converters"}, "app": set(LAYERS)}


def layer_of(module: str) -> str | None:
    """The layer of a ``tfdenoise...`` module: the longest matching prefix wins."""
    best, found = -1, None
    for layer, prefixes in LAYERS.items():
        for p in prefixes:
            # the package root names only itself: a new top-level module must be placed
            if (module == p or (p != "tfdenoise" and module.startswith(p + "."))) and len(p) > best:
                best, found = len(p), layer
    return found


def modules() -> dict[str, Path]:
    """Every module of the three package folders, by its installed name."""
    out = {}
    for folder, prefix in FOLDERS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            parts = list(path.relative_to(ROOT / folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out[".".join([prefix, *parts])] = path
    return out


def imports_of(source: str, module: str, known: set[str]) -> set[str]:
    """``tfdenoise...`` modules that ``source`` (the text of ``module``) imports, anywhere."""
    found: set[str] = set()
    package = module if module in known and _is_package(module, known) else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known)
    return {m for m in found if m == "tfdenoise" or m.startswith("tfdenoise.")}


def _is_package(module: str, known: set[str]) -> bool:
    return any(k.startswith(module + ".") for k in known)


def violations(sources: dict[str, str]) -> list[str]:
    """``module -> imported (layer -> layer)`` for every import of a layer above the module's."""
    known = set(sources)
    bad = []
    for module, source in sources.items():
        mine = layer_of(module)
        assert mine is not None, f"{module} is in no layer: add it to LAYERS"
        for imported in sorted(imports_of(source, module, known)):
            theirs = layer_of(imported)
            if theirs is not None and theirs not in ALLOWED[mine]:
                bad.append(f"{module} imports {imported} ({mine} -> {theirs})")
    return bad


def test_every_module_has_a_layer():
    missing = [m for m in modules() if layer_of(m) is None]
    assert not missing, f"modules in no layer: {missing}"


def test_no_module_imports_a_layer_above_its_own():
    sources = {m: p.read_text(encoding="utf-8") for m, p in modules().items()}
    assert violations(sources) == []


@pytest.mark.parametrize("module, line, expected", [
    ("tfdenoise.targets.memory", "from tfdenoise.models import TinyDenoiser", "targets -> speech"),
    ("tfdenoise.targets.memory", "    from tfdenoise.converters import export", "targets -> converters"),
    ("tfdenoise.errors", "import tfdenoise.audio", "base -> speech"),
    ("tfdenoise.audio", "from tfdenoise import enhance", "speech -> app"),
    ("tfdenoise.converters.check", "from tfdenoise.commands import export", "converters -> app"),
    ("tfdenoise.models", "from tfdenoise.targets.reader import read_tflite", "speech -> targets"),
])
def test_an_upward_import_is_caught(module, line, expected):
    """The checker itself: one upward import added to a real module is reported."""
    sources = {m: p.read_text(encoding="utf-8") for m, p in modules().items()}
    body = f"def _f():\n{line}\n" if line.startswith(" ") else line + "\n"
    sources[module] = sources[module] + "\n" + body
    found = violations(sources)
    assert found and all(expected in f and module in f for f in found), found


def test_targets_never_imports_tensorflow():
    for module, path in modules().items():
        if layer_of(module) == "targets":
            tree = ast.parse(path.read_text(encoding="utf-8"))
            names = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
            names |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
            assert not {n for n in names if n.split(".")[0] in ("tensorflow", "tf_keras", "keras")}, module
