"""Criteria inferred from a Deep Search query when ``criteria`` is omitted (contract §4, §10.5).

DOC: "If you omit criteria, Extruct infers evaluation criteria from query" and echoes them in
the task's ``criteria``. INF (§10.5): 2-4 criteria with snake_case keys. The sandbox parses the
query with :func:`providers.sandbox.matching.parse_query` and turns its constraints, most
specific first, into criterion sentences that the grader (:mod:`.grading`) parses back
to the same constraints:

1. up to two specific categories -- "Company is focused on freight forwarding.";
2. the business model or industry -- "Company is a vertical SaaS business.";
3. HQ location, 4. funding stage, 5. head count, 6. a role on the team;
7. while fewer than two: the query's leftover keywords, then the query itself, then a generic
   evidence bar (only for queries with nothing recognisable).

Every sentence uses only parser stop words around the recognised phrase, so it is graded on
exactly the constraint it names (a test keeps that true).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from providers.extruct.emulator.grading import criterion_spec, display
from providers.sandbox.matching import QuerySpec, parse_query
from providers.sandbox.vocab import QUERY_PHRASES

__all__ = ["Criterion", "infer_criteria"]

Criterion = tuple[str, str, str]
"""``(key, name, criterion)`` as in the wire ``criteria[]`` objects."""

MAX_INFERRED = 4
_GENERIC = frozenset({"saas", "b2b", "vertical saas", "b2c"})


def _reverse_phrases() -> dict[tuple[str, tuple[str, ...]], str]:
    table: dict[tuple[str, tuple[str, ...]], str] = {}
    for phrase, target in QUERY_PHRASES.items():
        table.setdefault(target, phrase)
    return table


_PHRASE_FOR = _reverse_phrases()


def _title(text: str) -> str:
    return " ".join(w if w != w.lower() else w.capitalize() for w in display(text).split())


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _phrase(field: str, values: tuple[str, ...]) -> str:
    """Text that :func:`parse_query` maps back to ``values`` of ``field`` ("" if none does)."""
    whole = _PHRASE_FOR.get((field, values))
    if whole is not None:
        return _title(whole)
    parts = [_PHRASE_FOR.get((field, (v,))) for v in values]
    return " or ".join(_title(p) for p in parts if p)


def _categories(spec: QuerySpec) -> list[Criterion]:
    specific = [c for c in spec.categories if c not in _GENERIC][:2]
    return [(f"{_slug(c)}_focus", f"{_title(c)} Focus", f"Company is focused on {display(c)}.")
            for c in specific]


def _business(spec: QuerySpec) -> list[Criterion]:
    cats = set(spec.categories)
    if "vertical saas" in cats:
        return [("vertical_saas", "Vertical SaaS", "Company is a vertical SaaS business.")]
    if "saas" in cats:
        if "b2b" in cats:
            return [("b2b_saas", "B2B SaaS", "Company is a B2B SaaS business.")]
        return [("saas_business", "SaaS Business", "Company is a SaaS business.")]
    if cats & {"b2b", "b2c"}:
        model = "B2B" if "b2b" in cats else "B2C"
        return [(f"{model.lower()}_business", f"{model} Business", f"Company is a {model} business.")]
    industry = _phrase("industries", spec.industries)
    if industry:
        return [("industry_fit", "Industry Fit", f"Company is in the {industry} industry.")]
    return []


def _location(spec: QuerySpec) -> list[Criterion]:
    parts = [_phrase(f, getattr(spec, f)) for f in ("cities", "states", "countries_iso2") if getattr(spec, f)]
    where = ", ".join(p for p in parts if p)
    if not where:
        return []
    return [("hq_location", "HQ Location", f"Company is headquartered in {where}.")]


def _funding(spec: QuerySpec) -> list[Criterion]:
    stage = _phrase("funding_stages", spec.funding_stages)
    if not stage:
        return []
    return [("funding_stage", "Funding Stage", f"Funding stage of the company is {stage}.")]


def _size(spec: QuerySpec) -> list[Criterion]:
    lo, hi = spec.min_employees, spec.max_employees
    if lo is not None and hi is not None:
        if lo > hi:  # contradictory ("enterprise startups"): nothing sensible to grade
            return []
        text = f"{lo} to {hi} employees"
    elif lo is not None:
        text = f"at least {lo} employees"
    elif hi is not None:
        text = f"at most {hi} employees"
    else:
        return []
    return [("company_size", "Company Size", f"Company with {text}.")]


def _role(spec: QuerySpec) -> list[Criterion]:
    role = " or ".join(spec.titles)  # canonical titles parse back to themselves
    if not role:
        return []
    return [("team_role", "Team Role", f"Company with a {role} on the team.")]


_BUILDERS: tuple[Callable[[QuerySpec], list[Criterion]], ...] = (
    _categories, _business, _location, _funding, _size, _role,
)


def infer_criteria(query: str) -> list[Criterion]:
    """2-4 criteria for ``query`` (most specific first); each parses back to a constraint."""
    spec = parse_query(query, "company")
    found: list[Criterion] = []
    for build in _BUILDERS:
        found += [c for c in build(spec) if criterion_spec(c[2]).has_constraints]
    found = found[:MAX_INFERRED]
    if len(found) < 2 and spec.keywords:
        topic = " ".join(spec.keywords[:3])
        found.append(("topic_focus", "Topic Focus", f"Company is focused on {topic}."))
    if len(found) < 2:
        found.append(("query_fit", "Query Fit", f"Company is like: {query.strip()[:470]}"))
    if len(found) < 2:  # nothing recognisable at all: a generic, rarely met bar
        found.append(("clear_evidence", "Clear Evidence", "Company shows clear evidence of fit."))
    return found
