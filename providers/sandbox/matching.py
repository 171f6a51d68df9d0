"""Rule-based natural-language query matching over the sandbox world (no ML).

Design
------
:func:`parse_query` lower-cases the text, pulls out head-count expressions with regexes, then
scans it once with one big alternation of known phrases (from :mod:`.vocab`) sorted
longest-first, so "vp of engineering" wins over "vp"/"engineering" and "vertical saas" over
"saas". Each phrase maps to one :class:`QuerySpec` field; what is left (minus stop words)
becomes ``keywords``.

Search semantics: every recognised constraint is a **hard** filter. Fields are AND-ed; values
within a field are OR-ed (a person has one title, a company one stage), except ``categories``
which must *all* be present. Person-role fields in company mode mean "has such an employee";
location fields apply to the person in people mode and to the HQ in company mode. Keywords
only raise the score. A query with no recognised constraint falls back to soft keyword
matching and returns nothing rather than arbitrary rows when no keyword hits.

Scores lie in (0, 1]; results are sorted by score descending, then ``true_id``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal, TypeVar

from .entities import CompanyEntity, PersonEntity
from .vocab import QUERY_PHRASES, STOPWORDS
from .world import World

__all__ = ["QuerySpec", "parse_query", "search_companies", "search_people"]

_E = TypeVar("_E", CompanyEntity, PersonEntity)
_LIST_FIELDS = ("titles", "seniorities", "job_functions", "cities", "states", "countries_iso2",
                "industries", "categories", "funding_stages")  # fmt: skip


@dataclass(frozen=True)
class QuerySpec:
    """A parsed query. Tuples are canonical world values in first-mention order; employee
    bounds are inclusive head counts; ``keywords`` are leftover lower-case words."""

    raw: str
    mode: Literal["people", "company"]
    titles: tuple[str, ...]
    seniorities: tuple[str, ...]
    job_functions: tuple[str, ...]
    cities: tuple[str, ...]
    states: tuple[str, ...]
    countries_iso2: tuple[str, ...]
    industries: tuple[str, ...]
    categories: tuple[str, ...]
    funding_stages: tuple[str, ...]
    min_employees: int | None
    max_employees: int | None
    keywords: tuple[str, ...]

    @property
    def has_constraints(self) -> bool:
        """Whether any hard filter was recognised."""
        bounds = (self.min_employees, self.max_employees)
        return any(getattr(self, f) for f in _LIST_FIELDS) or bounds != (None, None)


# --------------------------------------------------------------------------- parsing


def _norm(text: str) -> str:
    """Lower-case, thousands separators dropped, punctuation (except ``- & + .``) to spaces."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.lower())  # "1,000" -> "1000"
    return " ".join(re.sub(r"[,;:/()!?\"'\[\]{}|]", " ", text).split())


def _phrase_regex(phrases: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted(
        (r"[\s-]+".join(re.escape(w) for w in p.split()) for p in phrases), key=len, reverse=True
    )
    return re.compile(r"(?<![\w.])(?:" + "|".join(alternatives) + r")(?:e?s)?(?![\w+])")


_PHRASE_RE = _phrase_regex(QUERY_PHRASES)
_CASED_RE = re.compile(r"(?<![\w.])(US|USA|U\.S\.A?\.?|LA)(?![\w])")
_NUM = r"(\d[\d,]*k?)"
_UNIT = r"\s*(?:employees|people|staff|headcount|ftes?|person)\b"
_SIZE_RES: tuple[tuple[re.Pattern[str], str, int], ...] = (  # (regex, bound, offset)
    (re.compile(_NUM + r"\s*(?:-|\u2013|to)\s*" + _NUM + _UNIT), "range", 0),
    (re.compile(r"(?:more than|over|above|>)\s*" + _NUM + _UNIT), "min", 1),
    (re.compile(r"(?:at least|>=)\s*" + _NUM + _UNIT), "min", 0),
    (re.compile(_NUM + r"\s*\+" + _UNIT), "min", 0),
    (re.compile(r"(?:fewer than|less than|under|below|<)\s*" + _NUM + _UNIT), "max", -1),
    (re.compile(r"(?:at most|up to|<=)\s*" + _NUM + _UNIT), "max", 0),
)


def _number(token: str) -> int:
    token = token.replace(",", "")
    return int(float(token[:-1]) * 1000) if token.endswith("k") else int(token)


def _lookup(matched: str) -> tuple[str, tuple[str, ...]] | None:
    key = re.sub(r"[\s-]+", " ", matched)
    for candidate in (key, key[:-1], key[:-2]):
        if candidate in QUERY_PHRASES:
            return QUERY_PHRASES[candidate]
    return None


def _extract_sizes(text: str, found: dict[str, list[int]]) -> str:
    """Collect head-count bounds into ``found['min'] / found['max']``; return the rest of text."""
    for regex, kind, offset in _SIZE_RES:
        for m in regex.finditer(text):
            if kind == "range":
                found["min"].append(_number(m.group(1)))
                found["max"].append(_number(m.group(2)))
            else:
                found[kind].append(_number(m.group(1)) + offset)
        text = regex.sub(" ", text)
    return text


def _scan_phrases(text: str, found: dict[str, list[str]], bounds: dict[str, list[int]]) -> str:
    """Record every known phrase of normalised ``text``; return the text with them blanked."""
    for m in _PHRASE_RE.finditer(text):
        hit = _lookup(m.group(0))
        if hit is None:
            continue
        field, values = hit
        if field == "size":  # "+1000" = at least 1000 employees, "-500" = at most 500
            for value in values:
                bounds["min" if value[0] == "+" else "max"].append(int(value[1:]))
        else:
            found[field].extend(values)
    return _PHRASE_RE.sub(" ", text)


def parse_query(text: str, mode: Literal["people", "company"]) -> QuerySpec:
    """Parse ``text`` into a :class:`QuerySpec` (``mode`` decides how results are shaped)."""
    found: dict[str, list[str]] = {f: [] for f in _LIST_FIELDS}
    bounds: dict[str, list[int]] = {"min": [], "max": []}
    for m in _CASED_RE.finditer(text):  # case matters: "US" the country, not "us"
        is_la = m.group(1) == "LA"
        found["cities" if is_la else "countries_iso2"].append("Los Angeles" if is_la else "US")
    rest = _extract_sizes(_norm(_CASED_RE.sub(" ", text)), bounds)
    rest = _scan_phrases(rest, found, bounds)
    keywords = [w for w in re.findall(r"[a-z0-9][a-z0-9&+'-]*", rest) if _is_keyword(w)]

    def got(f: str) -> tuple[str, ...]:
        return tuple(dict.fromkeys(found[f]))

    return QuerySpec(
        raw=text, mode=mode, titles=got("titles"), seniorities=got("seniorities"),
        job_functions=got("job_functions"), cities=got("cities"), states=got("states"),
        countries_iso2=got("countries_iso2"), industries=got("industries"),
        categories=got("categories"), funding_stages=got("funding_stages"),
        min_employees=max(bounds["min"], default=None), max_employees=min(bounds["max"], default=None),
        keywords=tuple(dict.fromkeys(keywords)),
    )  # fmt: skip


def _is_keyword(word: str) -> bool:
    return len(word) > 1 and word not in STOPWORDS and not word.isdigit()


# --------------------------------------------------------------------------- filters


def _company_ok(c: CompanyEntity, spec: QuerySpec) -> bool:
    """Firmographic filters (industry, categories, stage, head count), not location."""
    return (
        (not spec.industries or c.industry in spec.industries)
        and all(cat in c.categories for cat in spec.categories)
        and (not spec.funding_stages or c.funding_stage in spec.funding_stages)
        and (spec.min_employees is None or c.employees_count >= spec.min_employees)
        and (spec.max_employees is None or c.employees_count <= spec.max_employees)
    )


def _place_ok(city: str, state: str | None, iso2: str, spec: QuerySpec) -> bool:
    return (
        (not spec.cities or city in spec.cities)
        and (not spec.states or state in spec.states)
        and (not spec.countries_iso2 or iso2 in spec.countries_iso2)
    )


def _role_ok(p: PersonEntity, spec: QuerySpec) -> bool:
    return (
        (not spec.titles or p.title in spec.titles)
        and (not spec.seniorities or p.seniority in spec.seniorities)
        and (not spec.job_functions or p.job_function in spec.job_functions)
    )


def _has_role_filter(spec: QuerySpec) -> bool:
    return bool(spec.titles or spec.seniorities or spec.job_functions)


# --------------------------------------------------------------------------- scoring


def _keyword_fraction(spec: QuerySpec, blob: str) -> float:
    """Share of keywords that are whole words of ``blob`` (lower-case text of an entity).
    1.0 when the query has no keywords: there is nothing the entity could miss."""
    if not spec.keywords:
        return 1.0
    if not any(k in blob for k in spec.keywords):  # cheap substring pre-check
        return 0.0
    tokens = set(re.findall(r"[a-z0-9][a-z0-9&+'-]*", blob))
    return sum(k in tokens for k in spec.keywords) / len(spec.keywords)


def _category_fraction(spec: QuerySpec, company: CompanyEntity) -> float:
    """Share of requested categories spelled out in the description (1 when none asked)."""
    if not spec.categories:
        return 1.0
    description = company.description.lower()
    return sum(cat in description for cat in spec.categories) / len(spec.categories)


def _exact_titles(spec: QuerySpec) -> frozenset[str]:
    """Requested titles written out canonically in the query ("VPs of Engineering" counts,
    "VPE" does not): they score higher than titles reached through a synonym or family."""
    raw = _norm(spec.raw)
    exact = set()
    for title in spec.titles:
        head, _, tail = title.lower().partition(" ")
        words = re.escape(head) + r"(?:e?s)?" + (r"\s+" + re.escape(tail) if tail else "")
        if re.search(r"(?<![\w-])" + words + r"(?:e?s)?(?![\w-])", raw):
            exact.add(title)
    return frozenset(exact)


def _person_blob(world: World, p: PersonEntity) -> str:
    company = world.company(p.company_id).name
    return f"{p.full_name} {p.headline} {p.title} {company} {' '.join(p.skills)}".lower()


def _company_blob(c: CompanyEntity) -> str:
    return f"{c.name} {c.description} {' '.join(c.categories)}".lower()


def _ranked(rows: list[tuple[_E, float]], limit: int | None) -> list[tuple[_E, float]]:
    rows.sort(key=lambda row: (-row[1], row[0].true_id))
    return rows if limit is None else rows[:limit]


# --------------------------------------------------------------------------- search


def search_people(
    world: World, spec: QuerySpec, *, provider: str | None = None, limit: int | None = None
) -> list[tuple[PersonEntity, float]]:
    """People matching every constraint of ``spec`` as ``(person, score)``, best first.
    ``provider`` keeps only people the provider sees, at companies it sees."""
    if not spec.has_constraints:
        return _keyword_only(world.people, spec, lambda p: _person_blob(world, p), limit,
                             lambda p: _visible_person(world, provider, p))  # fmt: skip
    company_ok: dict[str, bool] = {}
    exact_titles = _exact_titles(spec)
    rows: list[tuple[PersonEntity, float]] = []
    for p in _candidates(world, spec):
        if not (_role_ok(p, spec) and _place_ok(p.city, p.state, p.country_iso2, spec)):
            continue
        company = world.company(p.company_id)
        if company.true_id not in company_ok:
            company_ok[company.true_id] = _company_ok(company, spec)
        if not company_ok[company.true_id] or not _visible_person(world, provider, p):
            continue
        keyword = _keyword_fraction(spec, _person_blob(world, p)) if spec.keywords else 1.0
        title = 1.0 if not spec.titles or p.title in exact_titles else 0.6
        score = (0.55 + 0.2 * title + 0.1 * _category_fraction(spec, company)
                 + 0.15 * keyword)  # fmt: skip
        rows.append((p, round(score, 6)))
    return _ranked(rows, limit)


def search_companies(
    world: World, spec: QuerySpec, *, provider: str | None = None, limit: int | None = None
) -> list[tuple[CompanyEntity, float]]:
    """Companies matching every constraint of ``spec`` as ``(company, score)``, best first.
    Role fields (titles/seniorities/functions) require at least one such employee."""

    def visible(c: CompanyEntity) -> bool:
        return provider is None or world.visible(provider, c.true_id)

    if not spec.has_constraints:
        return _keyword_only(world.companies, spec, _company_blob, limit, visible)
    rows: list[tuple[CompanyEntity, float]] = []
    for c in world.companies:
        if not (_company_ok(c, spec) and _place_ok(c.hq_city, c.hq_state, c.hq_country_iso2, spec)):
            continue
        if _has_role_filter(spec) and not any(_role_ok(p, spec) for p in world.employees(c.true_id)):
            continue
        if not visible(c):
            continue
        score = (0.65 + 0.2 * _category_fraction(spec, c)
                 + 0.15 * _keyword_fraction(spec, _company_blob(c)))  # fmt: skip
        rows.append((c, round(score, 6)))
    return _ranked(rows, limit)


def _candidates(world: World, spec: QuerySpec) -> Iterable[PersonEntity]:
    """The smallest index slice that can contain every match."""
    if spec.titles:
        return [p for t in spec.titles for p in world._with_title(t)]
    if spec.seniorities:
        return [p for s in spec.seniorities for p in world._with_seniority(s)]
    return world.people


def _visible_person(world: World, provider: str | None, p: PersonEntity) -> bool:
    return provider is None or (
        world.visible(provider, p.true_id) and world.visible(provider, p.company_id)
    )


def _keyword_only(
    entities: Iterable[_E], spec: QuerySpec, blob: Callable[[_E], str],
    limit: int | None, visible: Callable[[_E], bool],
) -> list[tuple[_E, float]]:  # fmt: skip
    """Soft fallback: rows scored by the share of keywords they contain; misses dropped."""
    rows: list[tuple[_E, float]] = []
    if spec.keywords:
        for entity in entities:
            fraction = _keyword_fraction(spec, blob(entity))
            if fraction > 0 and visible(entity):
                rows.append((entity, round(fraction, 6)))
    return _ranked(rows, limit)
