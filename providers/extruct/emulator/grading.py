"""Criterion grading of the Extruct emulator: the sandbox's stand-in for Extruct's LLM grader.

Contract §6: every evaluated candidate gets, per criterion, ``{grade: 1-5, explanation: str,
sources: [url]}``; a candidate is high-fit ("qualified") when at least 75 % of its criteria are
graded 4 or 5 (DOC GET ``.md``); ``relevance`` is an integer 0-100 (DOC int, REPO range).

How a grade is computed (INF, deterministic): the criterion text is parsed with
:func:`providers.sandbox.matching.parse_query` (company mode) and every recognised constraint
becomes one :class:`Check` against the world company -- each category, then industry, HQ
location, funding stage, head count and "has such an employee". With ``s`` the share of checks
that hold: all hold -> 5 when the evidence is clear (keywords found, and a stable per-company
draw standing for how explicit the web sources are), else 4; ``s >= 0.5`` -> 3; ``s > 0`` -> 2;
none -> 1. A criterion without recognised constraints is graded on its keywords (4/3/2), and
one without keywords either gets a cautious 3 ("no evidence either way").
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from typing import Any

from providers.sandbox.entities import CompanyEntity
from providers.sandbox.matching import QuerySpec, parse_query
from providers.sandbox.world import World

__all__ = [
    "Check",
    "Score",
    "check_company",
    "company_words",
    "criterion_spec",
    "display",
    "grade",
    "qualifies",
    "relevance",
    "share_satisfied",
    "stable_fraction",
]

QUALIFY_SHARE = 0.75  # DOC: >= 75 % of criteria graded 4-5
CLEAR_EVIDENCE_SHARE = 0.75  # INF: share of fully satisfied criteria graded 5 rather than 4
_VERDICTS = {5: "Strong fit:", 4: "Good fit:", 3: "Partial fit:", 2: "Weak fit:", 1: "Not a fit:"}
_WORD = re.compile(r"[a-z0-9][a-z0-9&+'-]*")
_UPPER = {"ai": "AI", "b2b": "B2B", "b2c": "B2C", "saas": "SaaS", "hr": "HR", "iot": "IoT",
          "api": "API", "d2c": "D2C", "k-12": "K-12", "3d": "3D"}  # fmt: skip


def display(text: str) -> str:
    """``text`` with acronyms upper-cased ("vertical saas" -> "vertical SaaS")."""
    return " ".join(_UPPER.get(w, w) for w in text.split())


@dataclass(frozen=True, slots=True)
class Check:
    """One recognised constraint of a criterion evaluated against a company.

    ``kind`` is one of ``category|industry|location|stage|size|role``; ``fact`` is a clause
    about the company citing its data ("is headquartered in Berlin, Germany").
    """

    kind: str
    ok: bool
    fact: str


@dataclass(frozen=True, slots=True)
class Score:
    """The grade of one criterion for one company (the wire ``scores[key]`` value)."""

    grade: int
    explanation: str
    sources: tuple[str, ...]

    def to_doc(self) -> dict[str, Any]:
        return {"grade": self.grade, "explanation": self.explanation, "sources": list(self.sources)}


def stable_fraction(*parts: object) -> float:
    """A stable pseudo-random number in ``[0, 1)`` for ``parts``."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@functools.lru_cache(maxsize=1024)
def criterion_spec(text: str) -> QuerySpec:
    """``parse_query(text, "company")``, memoized (criteria are re-read for every candidate)."""
    return parse_query(text, "company")


def check_company(world: World, spec: QuerySpec, c: CompanyEntity) -> list[Check]:
    """Every recognised constraint of ``spec`` as a :class:`Check` on company ``c``."""
    checks = [_category(c, cat) for cat in spec.categories]
    if spec.industries:
        ok = c.industry in spec.industries
        tail = "" if ok else ", not " + " or ".join(spec.industries)
        checks.append(Check("industry", ok, f"operates in {c.industry}{tail}"))
    if spec.cities or spec.states or spec.countries_iso2:
        checks.append(_location(spec, c))
    if spec.funding_stages:
        checks.append(Check("stage", c.funding_stage in spec.funding_stages, _stage_fact(c)))
    if _has_size(spec):
        checks.append(_size(spec, c))
    if spec.titles or spec.seniorities or spec.job_functions:
        checks.append(_role(world, spec, c))
    return checks


def _category(c: CompanyEntity, category: str) -> Check:
    if category in c.categories:
        return Check("category", True, f"lists {display(category)} among its focus areas")
    focus = ", ".join(display(x) for x in c.categories)
    return Check("category", False, f"shows no sign of {display(category)} (its focus: {focus})")


def _location(spec: QuerySpec, c: CompanyEntity) -> Check:
    ok = ((not spec.cities or c.hq_city in spec.cities)
          and (not spec.states or c.hq_state in spec.states)
          and (not spec.countries_iso2 or c.hq_country_iso2 in spec.countries_iso2))  # fmt: skip
    where = ", ".join(x for x in (c.hq_city, c.hq_state, c.hq_country) if x)
    return Check("location", ok, f"is headquartered in {where}")


def _stage_fact(c: CompanyEntity) -> str:
    if c.funding_stage == "Bootstrapped":
        return "is bootstrapped (no institutional funding on record)"
    if c.funding_stage == "Public":
        return "is publicly traded"
    return f"last raised a {c.funding_stage} round"


def _has_size(spec: QuerySpec) -> bool:
    lo, hi = spec.min_employees, spec.max_employees
    return (lo is not None or hi is not None) and (lo is None or hi is None or lo <= hi)


def _size(spec: QuerySpec, c: CompanyEntity) -> Check:
    n = c.employees_count
    ok = (spec.min_employees is None or n >= spec.min_employees) and (
        spec.max_employees is None or n <= spec.max_employees
    )
    return Check("size", ok, f"has about {n} employees")


def _role(world: World, spec: QuerySpec, c: CompanyEntity) -> Check:
    for p in world.employees(c.true_id):
        if ((not spec.titles or p.title in spec.titles)
                and (not spec.seniorities or p.seniority in spec.seniorities)
                and (not spec.job_functions or p.job_function in spec.job_functions)):  # fmt: skip
            return Check("role", True, f"employs a {p.title}")
    wanted = " / ".join((*spec.titles, *spec.seniorities, *spec.job_functions))
    return Check("role", False, f"has no {wanted} on record")


def share_satisfied(checks: list[Check]) -> float:
    """Share of ``checks`` that hold (1.0 when there are none)."""
    return sum(ch.ok for ch in checks) / len(checks) if checks else 1.0


def company_words(c: CompanyEntity) -> frozenset[str]:
    """The lower-case words of a company's name, description and categories."""
    return frozenset(_WORD.findall(f"{c.name} {c.description} {' '.join(c.categories)}".lower()))


def _keyword_share(spec: QuerySpec, c: CompanyEntity) -> tuple[float, list[str]]:
    tokens = company_words(c)
    found = [k for k in spec.keywords if k in tokens]
    return (len(found) / len(spec.keywords) if spec.keywords else 1.0), found


def grade(world: World, criterion_key: str, criterion: str, c: CompanyEntity) -> Score:
    """Grade company ``c`` on one criterion (see the module docstring for the rule)."""
    spec = criterion_spec(criterion)
    checks = check_company(world, spec, c)
    keywords, found = _keyword_share(spec, c)
    if checks:
        share = share_satisfied(checks)
        explicit = stable_fraction(world.seed, c.true_id, criterion_key) < CLEAR_EVIDENCE_SHARE
        clear = keywords >= 0.5 and explicit
        value = (5 if clear else 4) if share == 1 else 3 if share >= 0.5 else 2 if share > 0 else 1
        facts = "; ".join(ch.fact for ch in checks)
        if any(ch.kind == "category" for ch in checks):
            facts += f' (its profile: "{c.description.split(". ", 1)[0].rstrip(".")}")'
    elif spec.keywords:
        value = 4 if keywords >= 0.5 else 3 if keywords > 0 else 2
        missing = [k for k in spec.keywords if k not in found]
        facts = _keyword_fact(found, missing)
    else:
        value, facts = 3, "has no public evidence for or against this criterion"
    explanation = f"{_VERDICTS[value]} {c.name} {facts}."
    return Score(value, explanation, _sources(world.seed, c, checks))


def _keyword_fact(found: list[str], missing: list[str]) -> str:
    parts = []
    if found:
        parts.append("mentions " + ", ".join(found) + " in its company profile")
    if missing:
        parts.append("does not mention " + ", ".join(missing))
    return "; ".join(parts)


def _sources(seed: int, c: CompanyEntity, checks: list[Check]) -> tuple[str, ...]:
    """1-2 URLs backing a grade: the company's own pages and/or its LinkedIn page (INF)."""
    linkedin = f"https://www.linkedin.com/company/{c.linkedin_slug}"
    firmographic = any(ch.kind in ("location", "size", "role", "stage") for ch in checks)
    pages = ("about", "product", "solutions", "customers")
    page = f"https://{c.domain}/{pages[int(stable_fraction(seed, c.true_id, 'page') * len(pages))]}"
    if firmographic:
        return (linkedin, f"https://{c.domain}/about") if len(checks) > 1 else (linkedin,)
    if stable_fraction(seed, c.true_id, "two-sources") < 0.5:
        return (page, f"https://{c.domain}/")
    return (page,)


def qualifies(grades: list[int]) -> bool:
    """DOC: high-fit when at least 75 % of criteria are graded 4 or 5."""
    return bool(grades) and sum(g >= 4 for g in grades) >= QUALIFY_SHARE * len(grades)


def relevance(grades: list[int]) -> int:
    """0-100: the mean grade mapped linearly (1 -> 0, 5 -> 100), rounded (INF)."""
    if not grades:
        return 0
    return round(100 * sum(g - 1 for g in grades) / (4 * len(grades)))
