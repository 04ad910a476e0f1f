"""Every ``design.md §n`` citation in the repository names a ``## §n`` heading of docs/design.md.

Also: no tracked file outside tests/ and docs/ still uses the old ``SPEC <n>`` form, and the
report text of :func:`tfdenoise.targets.report.to_markdown` cites an existing section.
"""
from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DESIGN = ROOT / "docs" / "design.md"

#: A citation: "design.md", one space, the section sign, the section number.
REF = re.compile(r"design\.md \u00a7(\d+)")
#: A section heading of docs/design.md: "## §<n> <title>".
HEADING = re.compile(r"^## \u00a7(\d+) \S", re.MULTILINE)
#: The old name of these citations ("SPEC 5").
OLD_REF = re.compile(r"\bSPEC \d")
#: Text files whose citations are checked (source, board files, docs, cards, templates).
SUFFIXES = {".py", ".toml", ".md", ".json", ".sh", ".html", ".txt", ".cfg", ".ini", ".yaml", ".yml"}
NAMES = {"Makefile"}


def design_sections(text: str) -> set[int]:
    """Section numbers that have a ``## §n`` heading in `text`."""
    return {int(n) for n in HEADING.findall(text)}


def cited_sections(text: str) -> list[int]:
    """Section numbers cited as ``design.md §n`` in `text`, in order."""
    return [int(n) for n in REF.findall(text)]


def missing_refs(text: str, sections: set[int]) -> list[int]:
    """Cited section numbers of `text` that are not in `sections`."""
    return [n for n in cited_sections(text) if n not in sections]


def tracked_text_files() -> list[Path]:
    """Git-tracked text files of the repository with a checked suffix (binary files skipped)."""
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True).stdout
    files = []
    for name in out.decode("utf-8").split("\0"):
        p = ROOT / name
        if not name or not (p.suffix in SUFFIXES or p.name in NAMES) or not p.is_file():
            continue
        data = p.read_bytes()
        if b"\0" in data:
            continue
        files.append(p)
    return files


def _read(p: Path) -> str:
    return p.read_bytes().decode("utf-8", errors="replace")


@pytest.fixture(scope="module")
def sections() -> set[int]:
    assert DESIGN.is_file(), "docs/design.md is missing"
    return design_sections(DESIGN.read_text(encoding="utf-8"))


def test_design_has_sections_1_to_10_once(sections):
    text = DESIGN.read_text(encoding="utf-8")
    numbers = [int(n) for n in HEADING.findall(text)]
    assert numbers == list(range(1, 11)), numbers


def test_collector_reports_a_wrong_reference(sections):
    # Built by concatenation so that this file itself holds no bad citation.
    bad = "see docs/design" + ".md \u00a7" + "99 and docs/design" + ".md \u00a7" + "5"
    assert cited_sections(bad) == [99, 5]
    assert missing_refs(bad, sections) == [99]
    assert missing_refs(bad, {1, 2}) == [99, 5]
    assert design_sections("## \u00a73 Training\n### \u00a74 not a section\n## \u00a7x bad\n") == {3}


def test_every_tracked_reference_resolves(sections):
    files = tracked_text_files()
    assert any(p.suffix == ".toml" for p in files) and any(p.suffix == ".py" for p in files)
    bad, total = [], 0
    for p in files:
        for lineno, line in enumerate(_read(p).splitlines(), 1):
            for n in cited_sections(line):
                total += 1
                if n not in sections:
                    bad.append(f"{p.relative_to(ROOT)}:{lineno}: \u00a7{n}")
    assert total > 0, "no design.md citations found: the collector is broken"
    assert not bad, "citations of missing design.md sections:\n" + "\n".join(bad)


def test_no_old_spec_references():
    bad = []
    for p in tracked_text_files():
        rel = p.relative_to(ROOT)
        if rel.parts[0] in ("tests", "docs"):
            continue
        for lineno, line in enumerate(_read(p).splitlines(), 1):
            if OLD_REF.search(line):
                bad.append(f"{rel}:{lineno}: {line.strip()[:120]}")
    assert not bad, "old 'SPEC <n>' references (cite docs/design.md \u00a7n instead):\n" + "\n".join(bad)


def test_report_text_cites_an_existing_section(sections):
    from tfdenoise.targets import analyze_graph
    from tfdenoise.targets.reference import build_reference
    from tfdenoise.targets.report import to_markdown

    text = to_markdown(analyze_graph(build_reference("gru128", "mixed"), "gap9"))
    cited = cited_sections(text)
    assert cited, "the report no longer cites docs/design.md"
    assert not missing_refs(text, sections), cited
