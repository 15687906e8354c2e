"""The docs that ship (docs/): every format id documented, every cited method section present,
relative links resolving, and no tracked file pointing outside the repository.

Hook documentation (docs/plugins.md) and the CLI reference (docs/cli.md) have their own tests.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "trendcli"
DOCS = ROOT / "docs"
METHOD = DOCS / "method.md"
FORMATS = DOCS / "formats.md"

#: A format id: ``trendcli-<name>/<version>``, e.g. ``trendcli-model/1``.
FORMAT_ID = re.compile(r"\btrendcli-[a-z0-9]+(?:-[a-z0-9]+)*/\d+\b")
#: Where a citation of the method page starts. Spelled in two parts so this file does not cite it.
CITE = re.compile(re.escape("docs/method" + ".md"))
#: What may sit between the citation and its quoted section names: punctuation, an equation
#: number ("eq. 1", "eqs. 8-10") or an appendix ("appendix V").
CITE_PREFIX = re.compile(r"[\s,(]*(?:(?:eqs?\.\s*\d+(?:\s*[-\u2013]\s*\d+)?|appendix\s+[IVX]+)[\s,;:]*)?")
QUOTED_LIST = re.compile(r'"[^"\n]+"(?:\s*(?:,|and)\s*"[^"\n]+")*')
QUOTED = re.compile(r'"([^"\n]+)"')
EQ_CITED = re.compile(r"^[\s,(]*eqs?\.\s*(\d+)")
APPENDIX_CITED = re.compile(r"^[\s,(]*appendix\s+([IVX]+)\b")
#: Names no tracked file may contain: files that live outside the repository.
OUTSIDE = ("../" + "shared", "EQUATIONS" + ".md", "STYLE" + ".md")


def _headings(path: Path) -> set[str]:
    """The text of every markdown heading of ``path`` (outside fenced code blocks)."""
    out, fenced = set(), False
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fenced = not fenced
        elif not fenced and (m := re.match(r"#{1,6}\s+(.+?)\s*#*\s*$", line)):
            out.add(m.group(1))
    return out


def _python_files(*dirs: Path) -> list[Path]:
    return sorted(p for d in dirs for p in d.rglob("*.py") if p.resolve() != Path(__file__).resolve())


def _joined(text: str) -> str:
    """Text with line breaks (and the comment markers of continued comments) folded to one space."""
    return re.sub(r"[ \t]*\n[ \t]*(?:#+:?[ \t]*)?", " ", text)


def method_citations() -> list[tuple[str, str]]:
    """(where, what follows the citation) for every citation of the method page in src/ and tests/."""
    found = []
    for path in _python_files(ROOT / "src", ROOT / "tests"):
        text = path.read_text(encoding="utf-8")
        for m in CITE.finditer(text):
            line = text.count("\n", 0, m.start()) + 1
            found.append((f"{path.relative_to(ROOT)}:{line}", _joined(text[m.end() : m.end() + 400])))
    return found


def cited_sections(after: str) -> list[str]:
    """The section names quoted right after a citation: ``, "A", "B" and "C"`` -> [A, B, C]."""
    rest = after[CITE_PREFIX.match(after).end() :]
    listed = QUOTED_LIST.match(rest)
    return QUOTED.findall(listed.group(0)) if listed else []


def _equations(text: str) -> set[int]:
    """Equation numbers the page mentions: ``eq. 4``, ``eqs. 2-3`` (a range counts every number)."""
    out: set[int] = set()
    for m in re.finditer(r"\beqs?\.\s*(\d+)(?:\s*[-\u2013]\s*(\d+))?", text):
        lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
        out.update(range(lo, hi + 1))
    return out


def source_format_ids() -> dict[str, str]:
    """Every format id in src/trendcli, with the first file that spells it."""
    ids: dict[str, str] = {}
    for path in _python_files(SRC):
        for fid in FORMAT_ID.findall(path.read_text(encoding="utf-8")):
            ids.setdefault(fid, str(path.relative_to(ROOT)))
    return ids


# -- the parsing itself, on hand-made text ----------------------------------------------------------


def test_cited_sections_reads_every_citation_form():
    assert cited_sections(', "A model", "Input quantization", "Halftoning",\n') == ["A model", "Input quantization", "Halftoning"]
    assert cited_sections(' ("Training": CIFAR-style ResNets') == ["Training"]
    assert cited_sections(' eq. 1, "Layout"). x') == ["Layout"]
    assert cited_sections(', "Attacks on an ensemble" and "Ensemble prediction and TREND design"; paper') == [
        "Attacks on an ensemble", "Ensemble prediction and TREND design"]
    assert cited_sections(', "Halftoning", option ``ht-fs``') == ["Halftoning"]
    assert cited_sections(" eq. 1). The source") == []
    assert cited_sections(" appendix V; top = 0.1)") == []


def test_joined_folds_docstring_and_comment_line_breaks():
    assert _joined('"Ensemble\n    prediction and TREND design"') == '"Ensemble prediction and TREND design"'
    assert _joined('"Input\n    #: quantization")') == '"Input quantization")'


def test_equations_expands_ranges():
    assert _equations("eq. 1 and eqs. 8-10, also (eq. 4)") == {1, 4, 8, 9, 10}


# -- docs/method.md -----------------------------------------------------------------------------------


def test_the_source_cites_the_method_page():
    # the checks below mean something only if there are citations to check
    assert len(method_citations()) > 20
    assert sum(len(cited_sections(after)) for _, after in method_citations()) > 20


def test_every_cited_method_section_is_a_heading():
    headings = _headings(METHOD)
    missing = sorted({f"{where}: {name!r}" for where, after in method_citations() for name in cited_sections(after)
                      if name not in headings})
    assert not missing, "sections cited but not headings of docs/method.md:\n" + "\n".join(missing)


def test_every_cited_equation_and_appendix_is_on_the_method_page():
    text = METHOD.read_text(encoding="utf-8")
    equations = _equations(text)
    missing = []
    for where, after in method_citations():
        if (m := EQ_CITED.match(after)) and int(m.group(1)) not in equations:
            missing.append(f"{where}: eq. {m.group(1)}")
        if (m := APPENDIX_CITED.match(after)) and f"appendix {m.group(1)}" not in text:
            missing.append(f"{where}: appendix {m.group(1)}")
    assert not missing, "cited but not on docs/method.md:\n" + "\n".join(missing)


def test_method_page_covers_the_paper_equations():
    # eqs. 1-10 of the paper are all things trendcli computes
    assert _equations(METHOD.read_text(encoding="utf-8")) >= set(range(1, 11))


def test_method_page_references_between_sections_resolve():
    text = METHOD.read_text(encoding="utf-8")
    headings = _headings(METHOD)
    formats = _headings(FORMATS)
    wrong = [f"section {n!r}" for n in re.findall(r'section "([^"]+)"', _joined(text)) if n not in headings]
    wrong += [f"formats.md {n!r}" for n in re.findall(r'formats\.md, "([^"]+)"', _joined(text)) if n not in formats]
    assert not wrong, "docs/method.md refers to missing sections: " + ", ".join(wrong)


def test_differences_have_one_subsection_each():
    lines = METHOD.read_text(encoding="utf-8").splitlines()
    start = lines.index("## Differences from the paper and the authors' code")
    body = lines[start + 1 :]
    end = next((i for i, line in enumerate(body) if line.startswith("## ")), len(body))
    subsections = [line for line in body[:end] if line.startswith("### ")]
    assert len(subsections) >= 15
    assert len(set(subsections)) == len(subsections)


# -- docs/formats.md ----------------------------------------------------------------------------------


def test_the_source_has_format_ids():
    # the checks below mean something only if the source spells its format ids
    assert len(source_format_ids()) >= 5


def test_every_format_id_in_the_source_is_documented():
    documented = set(FORMAT_ID.findall(FORMATS.read_text(encoding="utf-8")))
    missing = sorted(f"{fid} ({where})" for fid, where in source_format_ids().items() if fid not in documented)
    assert not missing, "format ids written or read by trendcli but not in docs/formats.md:\n" + "\n".join(missing)


def test_every_documented_format_id_exists_in_the_source():
    documented = set(FORMAT_ID.findall(FORMATS.read_text(encoding="utf-8")))
    stale = sorted(documented - set(source_format_ids()))
    assert not stale, f"docs/formats.md documents format ids trendcli no longer knows: {stale}"


# -- all docs -----------------------------------------------------------------------------------------

#: A dotted name in backticks: ``trendcli.transfer.counts``, ``trendcli.ensemble.vote.predict``.
DOTTED = re.compile(r"`(trendcli(?:\.[A-Za-z_][A-Za-z0-9_]*)+)`")


def resolve_dotted(name: str) -> str | None:
    """None when ``name`` is a module of src/trendcli or a name defined at the top of one; else why not.

    Read from the source text (no import): the longest prefix that is a module or package, then
    the rest must be a function, class or assignment at the start of a line of that module.
    """
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        base = ROOT / "src" / Path(*parts[:cut])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module.is_file():
            break
    else:
        return "no such module"
    rest = parts[cut:]
    if not rest:
        return None
    if len(rest) > 2:
        return f"{'.'.join(rest)} is not a name in {module.relative_to(ROOT)}"
    text = module.read_text(encoding="utf-8")
    top, *member = rest
    if not re.search(rf"^(?:def|class|async def)\s+{top}\b|^{top}\s*[:=]", text, re.M):
        imported = rf"^\s*from\s+\S+\s+import\s+(?:\([^)]*\b{top}\b[^)]*\)|[^\n(]*\b{top}\b)"
        if not re.search(imported, text, re.M):  # a re-export, e.g. the package's public names
            return f"{top} is not defined in {module.relative_to(ROOT)}"
    if member and not re.search(rf"^\s+(?:def\s+{member[0]}\b|{member[0]}\s*[:=])", text, re.M):
        return f"{top}.{member[0]} is not defined in {module.relative_to(ROOT)}"
    return None


def test_resolve_dotted_tells_modules_names_and_typos_apart():
    assert resolve_dotted("trendcli.transfer.counts") is None
    assert resolve_dotted("trendcli.transfer.counts.symmetrize") is None
    assert resolve_dotted("trendcli.transfer.counts.no_such_function") is not None
    assert resolve_dotted("trendcli.no_such_module") is not None
    assert resolve_dotted("trendcli.OnnxEnsemble") is None  # re-exported by the package
    assert resolve_dotted("trendcli.OnnxEnsembl") is not None


def test_modules_and_names_the_docs_mention_exist():
    wrong = []
    for page in sorted(DOCS.glob("*.md")):
        for name in sorted(set(DOTTED.findall(page.read_text(encoding="utf-8")))):
            if (why := resolve_dotted(name)) is not None:
                wrong.append(f"{page.name}: {name}: {why}")
    assert not wrong, "docs name modules or functions that do not exist:\n" + "\n".join(wrong)


def test_changelog_moves_point_at_modules_that_exist():
    # "`old` -> `new`": the old side is history, the new side must exist
    text = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    new_side = [m.group(1) for m in DOTTED.finditer(text)
                if not re.match(r"\s*(?:\([^)]*\)\s*)?->", text[m.end() : m.end() + 40])]
    assert new_side
    wrong = [f"{name}: {why}" for name in sorted(set(new_side)) if (why := resolve_dotted(name)) is not None]
    assert not wrong, "CHANGELOG.md names modules that do not exist:\n" + "\n".join(wrong)



def test_relative_links_in_docs_resolve():
    broken = []
    for page in sorted(DOCS.glob("*.md")) + [ROOT / "README.md", ROOT / "CHANGELOG.md"]:
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(ROOT)} -> {target}")
    assert not broken, "broken relative links:\n" + "\n".join(broken)


def test_markdown_tables_keep_their_columns():
    # an unescaped "|" inside a cell (e.g. |A|) silently adds a column
    wrong = []
    for page in sorted(DOCS.glob("*.md")):
        width = None
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.startswith("|"):
                width = None
                continue
            cells = len(re.findall(r"(?<!\\)\|", line))
            width = width or cells
            if cells != width:
                wrong.append(f"{page.name}:{number}: {cells - 1} columns, the table has {width - 1}")
    assert not wrong, "\n".join(wrong)


def _repository_files() -> list[Path]:
    """Tracked files plus untracked ones git does not ignore (what a commit would hold)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=ROOT, capture_output=True, check=True, timeout=60,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout (an installed copy): the repository's file list is unknown")
    return [ROOT / name for name in out.decode().split("\0") if name and (ROOT / name).is_file()]


def test_no_file_refers_outside_the_repository():
    files = _repository_files()
    assert any(p.name == "pyproject.toml" for p in files)
    offending = []
    for path in files:
        data = path.read_bytes()
        if b"\0" in data[:8192]:
            continue  # binary
        text = data.decode("utf-8", errors="replace")
        for name in OUTSIDE:
            if name in text:
                line = text.count("\n", 0, text.index(name)) + 1
                offending.append(f"{path.relative_to(ROOT)}:{line}: {name}")
    assert not offending, "files that point outside the repository:\n" + "\n".join(offending)
