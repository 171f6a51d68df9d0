"""Matching a validated ``structuredIntent`` v1 against the sandbox world (contract §7, §4.3, §11).

Structured clauses are hard filters on the person (AND across clauses; aliases inside a clause OR-ed):

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
- ``demographics``: accepted and ignored (INF: the world has no ages or genders).

``semanticClauses[]`` are *signals*, never filters (DOC §7: Deep Search treats each phrase as a
separate matching signal; the docs' own sample pairs names and an organization with "writes about
developer tools"). Each phrase (``text`` and every ``anyOf`` alias) scores on its own:

- a phrase that :func:`parse_query` (``"company"``) turns into constraints (industries,
  categories, funding stage, head count, role, place) scores 1 when they hold for the person and
  the current employer, else 0;
- any other phrase scores the share of its words (longer than 2 letters) found in the person's
  headline, title and skills or the employer's name, description and categories.

A person's signal score is the sum over every phrase. People who pass the structured clauses are
ranked by that score, then by hidden id (deterministic); a phrase never removes anyone. Only an
intent with no structured clause at all (semantic clauses only) keeps just the people who match at
least one phrase, since otherwise every covered person would match (INF, §11).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from providers.orbit.emulator.index import PeopleIndex, fold, words
from providers.sandbox.entities import CompanyEntity, PersonEntity
from providers.sandbox.matching import QuerySpec, parse_query

__all__ = ["CompiledIntent", "compile_intent", "match_intent", "ranked_matches", "signal_score"]


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
class _Phrase:
    """One semantic phrase: its constraints (None: none recognised) or its keywords."""

    spec: QuerySpec | None
    keywords: tuple[str, ...]


@dataclass(frozen=True)
class CompiledIntent:
    """A ``structuredIntent`` ready to test people against (see the module docstring)."""

    names: tuple[str, ...]
    experiences: tuple[_Experience, ...]
    schools: tuple[tuple[str, ...], ...]
    place: QuerySpec | None
    place_literal: str
    phrases: tuple[_Phrase, ...]

    @property
    def has_structured(self) -> bool:
        """Whether any clause besides ``semanticClauses`` filters people."""
        return bool(self.names or self.experiences or self.schools or self.place_literal)


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


def _phrases(items: Iterable[dict[str, Any]]) -> tuple[_Phrase, ...]:
    """Every phrase of every clause, each a signal of its own (DOC §7)."""
    phrases: list[_Phrase] = []
    for item in items:
        for text in (item.get("text"), *item.get("anyOf", ())):
            if not text:
                continue
            spec = parse_query(text, "company")
            keywords = tuple(sorted({w for w in words(text) if len(w) > 2}))
            if spec.has_constraints:
                phrases.append(_Phrase(spec, ()))
            elif keywords:
                phrases.append(_Phrase(None, keywords))
    return tuple(phrases)


def compile_intent(index: PeopleIndex, intent: dict[str, Any]) -> CompiledIntent:
    """Parse a validated intent once (a few ``parse_query`` calls)."""
    place_text = (intent.get("geo") or {}).get("place", "")
    place = parse_query(place_text, "people") if place_text else None
    schools = tuple(
        tuple(fold(s) for s in (item.get("school"), *item.get("schoolAnyOf", ())) if s)
        for item in intent.get("schools", ())
    )
    return CompiledIntent(
        names=tuple(fold(n) for n in intent.get("names", ())),
        experiences=tuple(_experience(index, item) for item in intent.get("experiences", ())),
        schools=tuple(s for s in schools if s), place=place, place_literal=fold(place_text),
        phrases=_phrases(intent.get("semanticClauses", ())),
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
    """Whether ``p`` passes every structured clause (semantic phrases never filter)."""
    if ci.names and fold(p.full_name) not in ci.names:
        return False
    if not all(_experience_ok(index, exp, p) for exp in ci.experiences):
        return False
    if not all(_school_ok(aliases, p.school) for aliases in ci.schools):
        return False
    return not ci.place_literal or _place_ok(ci.place or parse_query("", "people"), ci.place_literal, p)


def signal_score(index: PeopleIndex, ci: CompiledIntent, p: PersonEntity) -> float:
    """How strongly ``p`` matches the intent's semantic phrases: the sum of each phrase's score
    (1 when its constraints hold, else the share of its keywords found; see the module docstring)."""
    if not ci.phrases:
        return 0.0
    c = index.world.company(p.company_id)
    person = index.keyword_tokens(p.true_id, f"{p.headline} {p.title} {' '.join(p.skills)}")
    company = index.keyword_tokens(c.true_id, f"{c.name} {c.description} {' '.join(c.categories)}")
    score = 0.0
    for phrase in ci.phrases:
        if phrase.spec is not None:
            score += float(_clause_ok(phrase.spec, p, c))
        else:
            score += sum(w in person or w in company for w in phrase.keywords) / len(phrase.keywords)
    return score


def _pool(index: PeopleIndex, ci: CompiledIntent) -> Iterable[PersonEntity]:
    """The smallest slice of covered people that can hold every match."""
    for exp in ci.experiences:
        if exp.roles and all(role.titles for role in exp.roles):
            titles = dict.fromkeys(t for role in exp.roles for t in role.titles)
            return [p for t in titles for p in index.with_title(t)]
    return index.people


def ranked_matches(index: PeopleIndex, ci: CompiledIntent,
                   limit: int | None = None) -> list[tuple[float, PersonEntity]]:  # fmt: skip
    """``(signal score, person)`` of every covered person passing ``ci``'s structured clauses, best
    first (score desc, then hidden id); with semantic clauses only, those matching a phrase."""
    rows: list[tuple[float, str, PersonEntity]] = []
    for p in _pool(index, ci):
        if not _matches(index, ci, p):
            continue
        score = signal_score(index, ci, p)
        if not ci.has_structured and score <= 0:
            continue
        rows.append((-score, p.true_id, p))
    rows.sort(key=lambda row: (row[0], row[1]))
    ranked = [(-row[0], row[2]) for row in rows]
    return ranked if limit is None else ranked[:limit]


def match_intent(index: PeopleIndex, ci: CompiledIntent, limit: int | None = None) -> list[PersonEntity]:
    """The people of :func:`ranked_matches`, best first."""
    return [p for _, p in ranked_matches(index, ci, limit)]
