"""Every ``§`` citation in the repository points at a section that exists (GitHub issue 13).

The code cites the provider contracts by section number ("poll (§1.2)", "contract orbit §3.1").
Those contracts live in the repository, one per provider, with the section numbers the code uses:

=============  =====================================
target         file
=============  =====================================
``sixtyfour``  ``providers/sixtyfour/CONTRACT.md``
``extruct``    ``providers/extruct/CONTRACT.md``
``orbit``      ``providers/orbit/CONTRACT.md``
``design``     ``docs/design.md`` (architecture and house style)
=============  =====================================

A section exists when a Markdown heading starts with it: ``### §4.3 Rate limits and headers``.

**Which file a citation refers to** (the rule this test enforces):

1. A citation is ``§`` followed by a number (``§4``, ``§4.3``). Citations joined by ``,``, ``/``,
   ``-`` or ``and`` form one *chain* (``§1-§5, §7-§9``, ``§3.4/§8``); a range is checked at both ends.
   ``§`` not followed by a digit is not a citation (the CLI prints ``§ jobs`` as a bullet).
2. A target name written directly before a chain names its file, optionally as ``name.md``, in
   double backticks, with a colon, or followed by the word ``contract``: ``Sixtyfour §4.3``,
   ``contract orbit §3.1``, ``orbit.md §1-§5``, ``Follows contract ``extruct.md``: §3``,
   ``Sixtyfour contract §2.1``, ``design §4``. Case does not matter.
3. Otherwise the folder decides: a file under ``providers/<name>/`` or ``tests/<name>/`` cites
   ``<name>``'s contract; a citation inside ``CONTRACT.md`` or ``docs/design.md`` cites that file;
   in ``config/default.toml`` (a link to ``aggregator/default.toml``) the ``[providers.<name>]`` table
   the line sits in decides.
4. Anywhere else (the core ``aggregator/``, ``providers/sandbox/``, top-level tests) a citation must
   name its target as in rule 2; an unnamed one fails this test, as does a section that does not exist.

This file itself is not scanned (its examples would cite sections on purpose).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROVIDERS = ("sixtyfour", "extruct", "orbit")
TARGETS = {name: f"providers/{name}/CONTRACT.md" for name in PROVIDERS} | {"design": "docs/design.md"}
SCANNED_GLOBS = ("aggregator/**/*.py", "providers/**/*.py", "tests/**/*.py", "providers/*/CONTRACT.md",
                 "docs/design.md", "aggregator/default.toml")
THIS_FILE = Path(__file__).resolve()

_NUMBER = r"§\d+(?:\.\d+)*"
_SEPARATOR = r"\s*(?:,|/|-|\u2013|\band\b)\s*"
CHAIN = re.compile(
    r"(?:\b(?P<target>sixtyfour|extruct|orbit|design)(?:\.md)?(?:``)?:?\s+(?:contract\s+)?)?"
    rf"(?P<chain>{_NUMBER}(?:{_SEPARATOR}{_NUMBER})*)",
    re.IGNORECASE,
)
NUMBER = re.compile(r"§(\d+(?:\.\d+)*)")
HEADING = re.compile(r"^#{1,6}\s+§(\d+(?:\.\d+)*)\b", re.MULTILINE)
TOML_TABLE = re.compile(r"^\[providers\.(\w+)", re.MULTILINE)


@dataclass(frozen=True)
class Citation:
    """One cited section: where it is written and which file it refers to (None: not decidable)."""

    path: str
    line: int
    section: str
    target: str | None
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: §{self.section} ({self.text!r}) -> {self.target or '?'}"


def folder_target(path: str, text: str, offset: int) -> str | None:
    """Rule 3: the target implied by where the citation is written, if any."""
    parts = path.split("/")
    if parts[0] in ("providers", "tests") and len(parts) > 2 and parts[1] in PROVIDERS:
        return parts[1]
    if path == TARGETS["design"]:
        return "design"
    if path.endswith("default.toml"):
        tables = [m.group(1) for m in TOML_TABLE.finditer(text, 0, offset)]
        return tables[-1] if tables and tables[-1] in PROVIDERS else None
    return None


def citations_in(text: str, path: str) -> list[Citation]:
    """Every cited section in ``text`` (the contents of ``path``, relative to the repo root)."""
    found = []
    for match in CHAIN.finditer(text):
        named = match.group("target")
        target = named.lower() if named else folder_target(path, text, match.start())
        line = text.count("\n", 0, match.start()) + 1
        for number in NUMBER.finditer(match.group("chain")):
            found.append(Citation(path, line, number.group(1), target, match.group(0)))
    return found


def sections_of(target: str) -> set[str]:
    """The section numbers with a heading in ``target``'s file (empty when the file is missing)."""
    file = ROOT / TARGETS[target]
    return set(HEADING.findall(file.read_text(encoding="utf-8"))) if file.is_file() else set()


def scanned_files() -> list[Path]:
    files = {p.resolve() for pattern in SCANNED_GLOBS for p in ROOT.glob(pattern) if p.is_file()}
    return sorted(f for f in files if f != THIS_FILE and ".venv" not in f.parts)


def all_citations() -> list[Citation]:
    found = []
    for file in scanned_files():
        found += citations_in(file.read_text(encoding="utf-8"), file.relative_to(ROOT).as_posix())
    return found


def problems(citations: list[Citation], sections: dict[str, set[str]]) -> list[str]:
    """One message per citation that names no target or a section its target does not have."""
    out = []
    for c in citations:
        if c.target is None:
            out.append(f"{c}: name the contract, e.g. 'Sixtyfour §{c.section}' (see this test's rules)")
        elif c.section not in sections[c.target]:
            out.append(f"{c}: {TARGETS[c.target]} has no heading '§{c.section}'")
    return out


@pytest.fixture(scope="module")
def sections() -> dict[str, set[str]]:
    return {target: sections_of(target) for target in TARGETS}


def test_every_section_citation_resolves_to_a_heading(sections: dict[str, set[str]]) -> None:
    found = all_citations()
    assert len(found) > 250, "the citation scan found almost nothing: is the pattern broken?"
    assert {c.target for c in found} >= set(TARGETS), "every contract is cited somewhere"
    bad = problems(found, sections)
    assert not bad, "unresolved section citations:\n" + "\n".join(bad)


def test_contract_files_exist_with_unique_numbered_sections() -> None:
    for target, relative in TARGETS.items():
        text = (ROOT / relative).read_text(encoding="utf-8")
        numbers = HEADING.findall(text)
        duplicates = sorted({n for n in numbers if numbers.count(n) > 1})
        assert not duplicates, f"{relative}: sections numbered twice: {duplicates}"
        assert numbers, f"{relative}: no numbered sections"
        if target in PROVIDERS:
            assert re.search(r"^#{1,6} .*Choices where the contract is silent", text, re.MULTILINE), relative
            assert re.search(r"^#{1,6} .*Sources", text, re.MULTILINE), relative


@pytest.mark.parametrize(
    ("path", "line", "expected"),
    [
        ("providers/orbit/adapter.py", "poll (§4): GET ...", [("4", "orbit")]),
        ("tests/sixtyfour/test_x.py", "(design §5 layer 3; contract §1.4, §2)",
         [("5", "design"), ("1.4", "sixtyfour"), ("2", "sixtyfour")]),
        ("aggregator/models.py", "cap (contract sixtyfour §2.3)", [("2.3", "sixtyfour")]),
        ("aggregator/retry.py", "parses this; Sixtyfour §4.3", [("4.3", "sixtyfour")]),
        ("providers/sandbox/fastapi.py", "(contract sixtyfour §0, extruct §1)",
         [("0", "sixtyfour"), ("1", "extruct")]),
        ("providers/orbit/wire.py", "Follows contract ``orbit.md``: §3.3 start", [("3.3", "orbit")]),
        ("tests/orbit/test_x.py", "contract orbit.md §1-§5, §7-§9",
         [("1", "orbit"), ("5", "orbit"), ("7", "orbit"), ("9", "orbit")]),
        ("providers/orbit/emulator/http.py", "DOC §3.4/§8: 10 credits", [("3.4", "orbit"), ("8", "orbit")]),
        ("aggregator/models.py", "(Sixtyfour contract §2.1)", [("2.1", "sixtyfour")]),
        ("aggregator/retry.py", "parses this; §4.3", [("4.3", None)]),
        ("providers/sandbox/server.py", "shape (contract §0)", [("0", None)]),
        ("aggregator/render.py", 'f"§ {item.label}"', []),
    ],
)
def test_citation_rule(path: str, line: str, expected: list[tuple[str, str | None]]) -> None:
    assert [(c.section, c.target) for c in citations_in(line, path)] == expected


def test_config_citations_follow_their_provider_table() -> None:
    text = "[providers.sixtyfour]\npage_size = 100  # (DOC §2.3)\n[providers.orbit]\nx = 1  # (§5, DOC)\n"
    assert [(c.section, c.target) for c in citations_in(text, "config/default.toml")] == [
        ("2.3", "sixtyfour"), ("5", "orbit")]


def test_a_citation_of_a_missing_section_is_reported(sections: dict[str, set[str]]) -> None:
    bogus = citations_in("x = 1  # the limit (DOC §99.9)\ny = 2  # Orbit §4.6\n", "providers/sixtyfour/adapter.py")
    assert [c.target for c in bogus] == ["sixtyfour", "orbit"]
    bad = problems(bogus, sections)
    assert len(bad) == 1 and "§99.9" in bad[0] and "providers/sixtyfour/CONTRACT.md" in bad[0]
