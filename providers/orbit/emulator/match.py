"""Matching a validated ``structuredIntent`` v1 against the sandbox world (contract §7, §4.3).

Every clause is a hard filter on the person (AND across clauses; aliases inside a clause OR-ed):

- ``experiences[]``: ``title``/``titleAnyOf`` are parsed with
  :func:`providers.sandbox.matching.parse_query` (``"people"``) into canonical titles, so "VP
  Engineering", "VP of Engineering" and "Vice President of Engineering" are one title; text that
  names no title falls back to its seniority/job function, then to the literal title.
  ``organization`` is a company name, legal name or domain. ``temporalScope`` (default
  ``current``) picks the current employer, ``previous_company_ids`` (``historical``) or both.
  INF: the world records no past titles, so a title is always checked against the current one;
  year fields are accepted and ignored.
- ``schools[]``: ``school``/``schoolAnyOf`` equal to, or words contained in, the person's school.
- ``geo.place``: parsed into cities/states/countries; an unparsed place must equal the city or
  country name. ``distance``/``isHistorical`` are ignored (INF).
- ``names``: any of them equals the full name (case/accent-insensitive).
- ``semanticClauses[]``: each phrase (``text`` and its ``anyOf`` aliases) is parsed with
  ``parse_query(phrase, "company")``; its firmographic constraints (industries, categories,
  funding stage, head count) must hold for the current employer, its role and place constraints
  for the person. A clause whose phrases yield no constraint is a *soft* keyword clause: it only
  ranks (share of its words found in headline, title, skills, company name/description). When an
  intent has nothing but soft clauses, people with no keyword hit are dropped.
- ``demographics``: accepted and ignored (INF: the world has no ages or genders).

Results are ranked by keyword score, then hidden id (deterministic).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from providers.orbit.emulator.index import PeopleIndex, fold, words
from providers.sandbox.entities import CompanyEntity, PersonEntity
from providers.sandbox.matching import QuerySpec, parse_query

__all__ = ["CompiledIntent", "compile_intent", "match_intent"]


@dataclass(frozen=True)
class _Role:
    titles: tuple[str, ...]
    seniorities: tuple[str, ...]
    job_functions: tuple[str, ...]
    literal: str

    def ok(self, p: PersonEntity) -> bool:
        if self.titles:
            return p.title in self.titles
        if self.seniorities or self.job_functions:
            return (not self.seniorities or p.seniority in self.seniorities) and (
                not self.job_functions or p.job_function in self.job_functions)
        return fold(p.title) == self.literal


@dataclass(frozen=True)
class _Experience:
    roles: tuple[_Role, ...]  # aliases: any may match
    company_ids: tuple[str, ...] | None  # None: no organization given; () = unknown organization
    scope: str


@dataclass(frozen=True)
class CompiledIntent:
    """A ``structuredIntent`` ready to test people against (see the module docstring)."""

    names: tuple[str, ...]
    experiences: tuple[_Experience, ...]
    schools: tuple[tuple[str, ...], ...]
    place: QuerySpec | None
    place_literal: str
    hard_clauses: tuple[tuple[QuerySpec, ...], ...]
    soft_words: tuple[tuple[str, ...], ...]

    @property
    def has_hard(self) -> bool:
        return bool(self.names or self.experiences or self.schools or self.place_literal
                    or self.hard_clauses)  # fmt: skip


def _role(text: str) -> _Role:
    spec = parse_query(text, "people")
    return _Role(spec.titles, spec.seniorities, spec.job_functions, fold(text))


def _experience(index: PeopleIndex, item: dict[str, Any]) -> _Experience:
    texts = [t for t in (item.get("title"), *item.get("titleAnyOf", ())) if t]
    company_ids = None
    if item.get("organization"):
        found = index.company_id(item["organization"])
        company_ids = (found,) if found else ()
    return _Experience(tuple(_role(t) for t in texts), company_ids,
                       item.get("temporalScope", "current"))  # fmt: skip


def _clauses(items: Iterable[dict[str, Any]]) -> tuple[list[tuple[QuerySpec, ...]], list[tuple[str, ...]]]:
    hard: list[tuple[QuerySpec, ...]] = []
    soft: list[tuple[str, ...]] = []
    for item in items:
        phrases = [item["text"], *item.get("anyOf", ())] if "text" in item else list(item.get("anyOf", ()))
        specs = tuple(parse_query(phrase, "company") for phrase in phrases)
        constrained = tuple(s for s in specs if s.has_constraints)
        if constrained:
            hard.append(constrained)
        else:
            found = {w for phrase in phrases for w in words(phrase)}
            soft.append(tuple(sorted(w for w in found if len(w) > 2)))
    return hard, soft


def compile_intent(index: PeopleIndex, intent: dict[str, Any]) -> CompiledIntent:
    """Parse a validated intent once (a few ``parse_query`` calls)."""
    place_text = (intent.get("geo") or {}).get("place", "")
    place = parse_query(place_text, "people") if place_text else None
    schools = tuple(
        tuple(fold(s) for s in (item.get("school"), *item.get("schoolAnyOf", ())) if s)
        for item in intent.get("schools", ())
    )
    hard, soft = _clauses(intent.get("semanticClauses", ()))
    return CompiledIntent(
        names=tuple(fold(n) for n in intent.get("names", ())),
        experiences=tuple(_experience(index, item) for item in intent.get("experiences", ())),
        schools=tuple(s for s in schools if s), place=place, place_literal=fold(place_text),
        hard_clauses=tuple(hard), soft_words=tuple(w for w in soft if w),
    )


def _experience_ok(index: PeopleIndex, exp: _Experience, p: PersonEntity) -> bool:
    if exp.roles and not any(role.ok(p) for role in exp.roles):
        return False
    if exp.company_ids is None:
        return True
    employers = {"current": (p.company_id,), "historical": p.previous_company_ids,
                 "both": (p.company_id, *p.previous_company_ids)}[exp.scope]  # fmt: skip
    return any(c in employers for c in exp.company_ids)


def _school_ok(aliases: tuple[str, ...], school: str | None) -> bool:
    if not school:
        return False
    have = fold(school)
    return any(a == have or re.search(rf"(?<!\w){re.escape(a)}(?!\w)", have) for a in aliases)


def _place_ok(spec: QuerySpec, literal: str, p: PersonEntity) -> bool:
    if not (spec.cities or spec.states or spec.countries_iso2):
        return literal in (fold(p.city), fold(p.country))
    return ((not spec.cities or p.city in spec.cities)
            and (not spec.states or p.state in spec.states)
            and (not spec.countries_iso2 or p.country_iso2 in spec.countries_iso2))  # fmt: skip


def _company_ok(spec: QuerySpec, c: CompanyEntity) -> bool:
    return ((not spec.industries or c.industry in spec.industries)
            and all(cat in c.categories for cat in spec.categories)
            and (not spec.funding_stages or c.funding_stage in spec.funding_stages)
            and (spec.min_employees is None or c.employees_count >= spec.min_employees)
            and (spec.max_employees is None or c.employees_count <= spec.max_employees))  # fmt: skip


def _clause_ok(spec: QuerySpec, p: PersonEntity, c: CompanyEntity) -> bool:
    role = _Role(spec.titles, spec.seniorities, spec.job_functions, "")
    has_role = bool(spec.titles or spec.seniorities or spec.job_functions)
    has_place = bool(spec.cities or spec.states or spec.countries_iso2)
    return (_company_ok(spec, c) and (not has_role or role.ok(p))
            and (not has_place or _place_ok(spec, "", p)))  # fmt: skip


def _matches(index: PeopleIndex, ci: CompiledIntent, p: PersonEntity) -> bool:
    if ci.names and fold(p.full_name) not in ci.names:
        return False
    if not all(_experience_ok(index, exp, p) for exp in ci.experiences):
        return False
    if not all(_school_ok(aliases, p.school) for aliases in ci.schools):
        return False
    if ci.place_literal and not _place_ok(ci.place or parse_query("", "people"), ci.place_literal, p):
        return False
    company = index.world.company(p.company_id)
    return all(any(_clause_ok(s, p, company) for s in alts) for alts in ci.hard_clauses)


def _soft_score(index: PeopleIndex, ci: CompiledIntent, p: PersonEntity) -> float:
    if not ci.soft_words:
        return 0.0
    c = index.world.company(p.company_id)
    person = index.keyword_tokens(p.true_id, f"{p.headline} {p.title} {' '.join(p.skills)}")
    company = index.keyword_tokens(c.true_id, f"{c.name} {c.description} {' '.join(c.categories)}")
    hits = [sum(w in person or w in company for w in clause) / len(clause) for clause in ci.soft_words]
    return sum(hits) / len(hits)


def _pool(index: PeopleIndex, ci: CompiledIntent) -> Iterable[PersonEntity]:
    """The smallest slice of covered people that can hold every match."""
    for exp in ci.experiences:
        if exp.roles and all(role.titles for role in exp.roles):
            titles = dict.fromkeys(t for role in exp.roles for t in role.titles)
            return [p for t in titles for p in index.with_title(t)]
    return index.people


def match_intent(index: PeopleIndex, ci: CompiledIntent, limit: int | None = None) -> list[PersonEntity]:
    """Covered people matching ``ci``, best first (soft score desc, then hidden id)."""
    rows: list[tuple[float, str, PersonEntity]] = []
    for p in _pool(index, ci):
        if not _matches(index, ci, p):
            continue
        score = _soft_score(index, ci, p)
        if not ci.has_hard and score <= 0:
            continue
        rows.append((-score, p.true_id, p))
    rows.sort(key=lambda row: (row[0], row[1]))
    people = [row[2] for row in rows]
    return people if limit is None else people[:limit]
