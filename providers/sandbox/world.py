"""The sandbox's deterministic synthetic world: companies and the people who work there.

Design
------
* **Deterministic.** One ``random.Random(seed)`` drives every draw and one dedicated, seeded
  multi-locale, names-only ``Faker`` instance supplies name pools; nothing touches global random state and
  nothing iterates a ``set``, so a seed reproduces the same world under one Faker version.
* **Cheap.** Faker is only called a few thousand times up front (name pools); the ~30k people
  are then assembled from ``Random`` draws over plain tuples (see :mod:`.vocab`), keeping the
  default build well under two seconds. :func:`build_world` is memoized per arguments.
* **Plausible.** HQs are real cities weighted toward US hubs (New York ~16%), industries are
  SaaS-heavy, headcount/founding year/funding rounds follow the funding stage, and every company
  gets an org chart (CEO, founders, VPs, heads, managers, ICs) sized by headcount.
* **Indexed.** :class:`World` keeps id, employer, title and seniority indexes so query matching
  (:mod:`.matching`) never scans more than it must.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import itertools
import math
import random
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from faker import Faker

from . import vocab as v
from .disagreements import DisagreementRates, Disagreements
from .disagreements import apply as apply_disagreements
from .entities import CompanyEntity, FundingRound, PersonEntity
from .vocab import CITIES, STAGES, City, Industry, Role, Stage

__all__ = ["World", "build_world", "coverage_of"]


def coverage_of(provider: str) -> float:
    """The share (0..1] of entities ``provider``'s emulator sees: its spec's ``coverage``
    (providers without a spec see everything)."""
    from providers import REGISTRY

    spec = REGISTRY.get(provider)
    return spec.coverage if spec is not None else 1.0


_T = TypeVar("_T")
_TODAY = dt.date(2025, 6, 30)  # fixed "now" so funding dates never depend on the wall clock
_ROUND_NAMES = ("Seed", "Series A", "Series B", "Series C", "Series D", "Series E")
_LOCALES = ("en_US", "en_GB", "de_DE", "fr_FR", "nl_NL", "en_IN", "sv_SE", "es_ES")
_ROLE_BY_TITLE = {role.title: role for role in v.ROLES}
_FILL_ROLES = tuple(role for role in v.ROLES if role.weight > 0)
_FILL_CUM = tuple(itertools.accumulate(role.weight for role in _FILL_ROLES))
_CITY_CUM = tuple(itertools.accumulate(city.weight for city in CITIES))
_CITY_BY_NAME = {city.name: city for city in CITIES}
_VERTICAL_CATS = tuple(cats for cats, _ in v.VERTICALS)
_VERTICAL_CUM = tuple(itertools.accumulate(weight for _, weight in v.VERTICALS))


class World:
    """An immutable population of companies and people plus lookup indexes.

    ``companies`` / ``people`` are ordered by ``true_id`` (``co_000000`` / ``pe_000000`` ...).
    ``disagreements`` is the hard world's plan (:mod:`.disagreements`): how each provider sees the
    entities it disagrees about and which kinds touch which entity; empty (all rates 0) by default.
    """

    __slots__ = ("_by_seniority", "_by_title", "_companies", "_employees", "_people",
                 "companies", "disagreements", "people", "seed")  # fmt: skip

    def __init__(
        self, seed: int, companies: Sequence[CompanyEntity], people: Sequence[PersonEntity],
        disagreements: Disagreements | None = None,
    ) -> None:
        self.seed: int = seed
        self.disagreements: Disagreements = disagreements or Disagreements(DisagreementRates())
        self.companies: tuple[CompanyEntity, ...] = tuple(companies)
        self.people: tuple[PersonEntity, ...] = tuple(people)
        self._companies = {c.true_id: c for c in self.companies}
        self._people = {p.true_id: p for p in self.people}
        self._employees = _group(self.people, lambda p: p.company_id, self._companies)
        self._by_title = _group(self.people, lambda p: p.title)
        self._by_seniority = _group(self.people, lambda p: p.seniority)

    def company(self, true_id: str) -> CompanyEntity:
        """The company with this hidden id; ``KeyError`` if there is none."""
        return self._companies[true_id]

    def person(self, true_id: str) -> PersonEntity:
        """The person with this hidden id; ``KeyError`` if there is none."""
        return self._people[true_id]

    def employees(self, company_true_id: str) -> tuple[PersonEntity, ...]:
        """Current employees known for a company (possibly ``()``); ``KeyError`` if unknown."""
        return self._employees[company_true_id]

    def person_view(self, provider: str, person: PersonEntity) -> PersonEntity:
        """``person`` as ``provider`` has it (itself unless the hard world says otherwise)."""
        return self.disagreements.person(provider, person)

    def company_view(self, provider: str, company: CompanyEntity) -> CompanyEntity:
        """``company`` as ``provider`` has it (itself unless the hard world says otherwise)."""
        return self.disagreements.company(provider, company)

    def visible(self, provider: str, true_id: str) -> bool:
        """Whether ``provider`` covers this entity: a stable hash of (seed, provider, id) is
        compared with the provider's :func:`coverage_of`."""
        coverage = coverage_of(provider)
        if coverage >= 1.0:
            return True
        digest = hashlib.blake2b(f"{self.seed}:{provider}:{true_id}".encode(), digest_size=8)
        return int.from_bytes(digest.digest(), "big") / 2**64 < coverage

    def _with_title(self, title: str) -> tuple[PersonEntity, ...]:
        """People whose canonical title is exactly ``title`` (index for matching)."""
        return self._by_title.get(title, ())

    def _with_seniority(self, seniority: str) -> tuple[PersonEntity, ...]:
        """People with this seniority (index for matching)."""
        return self._by_seniority.get(seniority, ())


def _group(
    people: Iterable[PersonEntity], key: Callable[[PersonEntity], str], seed_keys: Iterable[str] = ()
) -> dict[str, tuple[PersonEntity, ...]]:
    groups: dict[str, list[PersonEntity]] = {k: [] for k in seed_keys}
    for person in people:
        groups.setdefault(key(person), []).append(person)
    return {k: tuple(v) for k, v in groups.items()}


def build_world(seed: int = 7, n_companies: int = 4000, disagreements: DisagreementRates | None = None) -> World:
    """The world of ``n_companies`` companies and about eight known people per company for
    ``seed``: built once per ``(seed, n_companies, disagreements)`` (however the arguments are
    passed), then shared. Deterministic for a seed within one installed Faker version.

    ``disagreements`` (:class:`~.disagreements.DisagreementRates`) makes it the hard world; None or
    all rates 0 is today's world, unchanged.
    """
    rates = disagreements if disagreements is not None and disagreements.active else None
    return _cached_world(seed, n_companies, rates)


@functools.lru_cache(maxsize=8)
def _cached_world(seed: int, n_companies: int, disagreements: DisagreementRates | None = None) -> World:
    return _generate_world(seed, n_companies, disagreements)


def _generate_world(seed: int, n_companies: int, disagreements: DisagreementRates | None = None) -> World:
    """Build a fresh world (uncached): one seeded ``Random`` and one seeded name-only Faker."""
    rng = random.Random(seed)
    fake = Faker(list(_LOCALES), providers=["faker.providers.person"])  # names only: fast
    fake.seed_instance(seed)
    pools = _NamePools(fake)
    companies = _make_companies(rng, pools, n_companies)
    people = _make_people(rng, pools, companies)
    if disagreements is None or not disagreements.active:
        return World(seed, companies, people)
    return World(seed, *apply_disagreements(seed, companies, people, disagreements))


def _ascii(text: str) -> str:
    """Lower-case ASCII letters/digits only ("Jürgen" -> "jurgen"), for emails and slugs."""
    text = text.replace("ß", "ss").replace("ø", "o").replace("æ", "ae").replace("ł", "l")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


class _NamePools:
    """Per-locale pools of (display, ascii) first and last names drawn once from Faker."""

    def __init__(self, fake: Faker, size: int = 250) -> None:
        self.first: dict[str, tuple[tuple[str, str], ...]] = {}
        self.last: dict[str, tuple[tuple[str, str], ...]] = {}
        for loc in _LOCALES:
            gen = fake[loc]
            self.first[loc] = _pool(gen.first_name() for _ in range(size))
            self.last[loc] = _pool(gen.last_name() for _ in range(size))

    def name(self, rng: random.Random, iso2: str) -> tuple[str, str, str, str]:
        """(first, last, first_ascii, last_ascii) for someone at a company in ``iso2``."""
        loc = v.COUNTRY_LOCALE.get(iso2, "en_US")
        if iso2 in ("US", "CA", "GB", "AU", "SG") and rng.random() < 0.2:
            loc = _pick(rng, _LOCALES)
        first, first_a = _pick(rng, self.first[loc])
        last, last_a = _pick(rng, self.last[loc])
        return first, last, first_a, last_a


def _pool(names: Iterable[str]) -> tuple[tuple[str, str], ...]:
    out = dict.fromkeys(n for n in names if _ascii(n))  # dedupe, keep first-seen order
    return tuple((n, _ascii(n)) for n in out)


# --------------------------------------------------------------------------- companies


def _make_companies(rng: random.Random, pools: _NamePools, n: int) -> list[CompanyEntity]:
    cities = rng.choices(CITIES, cum_weights=_CITY_CUM, k=n)
    industries = rng.choices(v.INDUSTRIES, weights=[i.weight for i in v.INDUSTRIES], k=n)
    stages = rng.choices(STAGES, weights=[s.weight for s in STAGES], k=n)
    linkedin_ids = rng.sample(range(10_000, 99_999_999), n)
    taken: set[str] = set()
    return [
        _make_company(rng, pools, i, cities[i], industries[i], stages[i], linkedin_ids[i], taken)
        for i in range(n)
    ]


def _make_company(
    rng: random.Random, pools: _NamePools, i: int, city: City, industry: Industry,
    stage: Stage, linkedin_id: int, taken: set[str],
) -> CompanyEntity:  # fmt: skip
    name = _brand_name(rng, pools, industry.name, taken)
    categories = _categories(rng, industry)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    tld = "." + _tld(rng, city.iso2, categories)
    founded = rng.randint(*stage.founded)
    lo, hi = stage.employees
    return CompanyEntity(
        true_id=f"co_{i:06d}", name=name, legal_name=_legal_name(name, city.iso2, stage.name == "Public"),
        domain=_claim(taken, "domain", _variants(_ascii(name), "", tld)),
        linkedin_slug=_claim(taken, "li", _variants(slug, "-")),
        linkedin_id=linkedin_id, industry=industry.name, categories=categories,
        description=_description(name, industry, categories, founded, city),
        founded_year=founded,
        hq_city=city.name, hq_state=city.state, hq_country=city.country, hq_country_iso2=city.iso2,
        employees_count=int(math.exp(rng.uniform(math.log(lo), math.log(hi + 1)))),
        funding_stage=stage.name, funding_rounds=_funding_rounds(rng, stage.name, founded),
        is_public=stage.name == "Public",
    )  # fmt: skip


def _brand_name(rng: random.Random, pools: _NamePools, industry: str, taken: set[str]) -> str:
    """A brandable, world-unique name: "Northpeak", "Harbor Freight", "Hayes Logistics"..."""
    nouns = v.INDUSTRY_NOUNS[industry]

    def candidate() -> str:
        a, b, r = _pick(rng, v.BRAND_ROOTS), _pick(rng, v.BRAND_ROOTS), rng.random()
        if r < 0.3 and a != b:
            return a.capitalize() + b
        if r < 0.55:
            return f"{a.capitalize()} {_pick(rng, nouns)}"
        if r < 0.72:
            return f"{_pick(rng, pools.last['en_US'])[1].capitalize()} {_pick(rng, nouns)}"
        if r < 0.88:
            return a.capitalize() + _pick(rng, v.BRAND_SUFFIXES)
        return f"{a.capitalize()} {b.capitalize()}"

    return _claim(taken, "name", (candidate() for _ in range(1000)))


def _claim(taken: set[str], kind: str, candidates: Iterable[str]) -> str:
    """The first candidate not yet taken within ``kind`` ("name", "domain", "email"...)."""
    for candidate in candidates:
        if f"{kind}:{candidate}" not in taken:
            taken.add(f"{kind}:{candidate}")
            return candidate
    raise RuntimeError(f"no free {kind} left")  # pragma: no cover


def _variants(stem: str, sep: str, tail: str = "") -> Iterable[str]:
    """``stem`` then prefix/suffix variants then numbered ones: acme, getacme, acmehq, acme2..."""
    fixed = (stem, f"get{sep}{stem}", f"{stem}{sep}hq", f"{stem}{sep}inc")
    numbered = (f"{stem}{sep}{n}" for n in itertools.count(2))
    return (f"{x}{tail}" for x in itertools.chain(fixed, numbered))


def _tld(rng: random.Random, iso2: str, categories: tuple[str, ...]) -> str:
    if "ai" in categories and rng.random() < 0.4:
        return "ai"
    if "saas" in categories and rng.random() < 0.15:
        return "io"
    options = v.TLDS.get(iso2, (("com", 1.0),))
    return rng.choices([t for t, _ in options], weights=[w for _, w in options])[0]


def _legal_name(name: str, iso2: str, public: bool) -> str:
    suffix = v.LEGAL_SUFFIX.get(iso2, "Inc.")
    if public:
        suffix = {"GB": "plc", "DE": "AG", "FR": "SA", "NL": "N.V."}.get(iso2, suffix)
    return f"{name}, {suffix}" if suffix == "Inc." else f"{name} {suffix}"


def _categories(rng: random.Random, industry: Industry) -> tuple[str, ...]:
    """Keyword categories; Software companies are horizontal or vertical SaaS."""
    cats: list[str] = list(industry.base)
    if industry.name == "Software" and rng.random() < v.VERTICAL_SHARE:
        vertical = rng.choices(_VERTICAL_CATS, cum_weights=_VERTICAL_CUM)[0]
        cats += ["saas", "b2b", "vertical saas", *vertical]
    else:
        if rng.random() < industry.saas_share:
            cats += ["saas", "b2b"]
        cats += rng.sample(industry.extras, k=1 if rng.random() < 0.6 else 2)
    return tuple(dict.fromkeys(cats))


def _description(name: str, industry: Industry, cats: tuple[str, ...], founded: int, city: City) -> str:
    """Two sentences that mention every category verbatim."""
    topics = [c for c in cats if c not in ("saas", "b2b", "vertical saas", "b2c")]
    topic = " and ".join(topics) if len(topics) < 3 else ", ".join(topics[:-1]) + f" and {topics[-1]}"
    if "vertical saas" in cats:
        first = f"{name} is a b2b vertical SaaS platform for {topic} companies."
    elif "saas" in cats:
        first = f"{name} is a b2b SaaS company building {topic} software."
    else:
        kind = " b2c" if "b2c" in cats else ""
        first = f"{name} is a{kind} {industry.name.lower()} company focused on {topic}."
    return f"{first} Founded in {founded} and headquartered in {city.name}, {city.country}."


def _funding_rounds(rng: random.Random, stage: str, founded: int) -> tuple[FundingRound, ...]:
    """Rounds from Seed up to ``stage`` (Public adds private rounds then an IPO), dated in
    increasing order between the founding year and the fixed sandbox "today"."""
    if stage == "Bootstrapped":
        return ()
    if stage == "Public":
        names = [*_ROUND_NAMES[: rng.randint(3, 6)], "IPO"]
    else:
        names = list(_ROUND_NAMES[: _ROUND_NAMES.index(stage) + 1])
        if len(names) > 2 and rng.random() < 0.2:
            names.pop(0)  # some companies skip a formal seed round
    start = dt.date(founded, 1, 1).toordinal() + 60
    days = sorted(rng.sample(range(start, _TODAY.toordinal()), len(names)))
    amounts = {s.name: s.round_usd for s in STAGES} | {"IPO": STAGES[-1].round_usd}
    return tuple(
        FundingRound(n, rng.randint(*amounts[n]) // 100_000 * 100_000,
                     dt.date.fromordinal(d).isoformat())
        for n, d in zip(names, days, strict=True)
    )  # fmt: skip


# --------------------------------------------------------------------------- people


def _key_roles(rng: random.Random, employees: int, industry: str) -> list[Role]:
    """Leadership slots present at a company of this size (CEO always)."""
    titles: list[str] = []
    for title, min_employees, probability in v.KEY_ROLES:
        if employees < min_employees or title in titles or rng.random() >= probability:
            continue
        if title == "Head of Engineering" and "VP of Engineering" in titles:
            continue
        if title == "Head of Product" and "VP of Product" in titles:
            continue
        titles.append(title)
    if industry == "Financial Services" and employees > 20 and rng.random() < 0.2:
        titles.append("Partner")
    return [_ROLE_BY_TITLE[t] for t in titles]


def _roster(rng: random.Random, company: CompanyEntity, stage: Stage) -> list[Role]:
    keys = _key_roles(rng, company.employees_count, company.industry)
    size = min(company.employees_count, max(rng.randint(*stage.people), len(keys) + 1))
    fill = rng.choices(_FILL_ROLES, cum_weights=_FILL_CUM, k=max(0, size - len(keys)))
    return keys + fill


def _make_people(
    rng: random.Random, pools: _NamePools, companies: list[CompanyEntity]
) -> list[PersonEntity]:
    stage_by_name = {s.name: s for s in STAGES}
    taken: set[str] = set()
    people: list[PersonEntity] = []
    for company in companies:
        for role in _roster(rng, company, stage_by_name[company.funding_stage]):
            people.append(_make_person(rng, pools, len(people), company, role, companies, taken))
    return people


def _make_person(
    rng: random.Random, pools: _NamePools, i: int, company: CompanyEntity, role: Role,
    companies: list[CompanyEntity], taken: set[str],
) -> PersonEntity:  # fmt: skip
    first, last, fa, la = pools.name(rng, company.hq_country_iso2)
    city = _home_city(rng, company)
    previous = _previous(rng, company, companies)
    fn = role.job_function
    return PersonEntity(
        true_id=f"pe_{i:06d}",
        first_name=first, last_name=last, full_name=f"{first} {last}",
        title=role.title, seniority=role.seniority, job_function=fn,
        headline=_headline(rng, role.title, company.name, previous, companies),
        city=city.name, state=city.state, country=city.country, country_iso2=city.iso2,
        company_id=company.true_id,
        linkedin_slug=_claim(taken, "slug", (
            f"{fa}-{la}-{1000 + int(rng.random() * 99000)}" for _ in itertools.count())),
        email=_claim(taken, "email", (
            f"{fa}.{la}{n if n > 1 else ''}@{company.domain}" for n in itertools.count(1))),
        phone=_phone(rng, city), skills=_pick(rng, _SKILL_SETS[fn]),
        school=_school(rng, company.hq_country_iso2),
        github_username=_github(rng, fa, la, taken) if fn in ("Engineering", "Data Science") else None,
        previous_company_ids=previous,
    )  # fmt: skip


def _home_city(rng: random.Random, company: CompanyEntity) -> City:
    """~85% live in the HQ city; the rest anywhere else (weighted like HQs)."""
    hq = _CITY_BY_NAME[company.hq_city]
    if rng.random() < 0.85:
        return hq
    other = rng.choices(CITIES, cum_weights=_CITY_CUM)[0]
    return other if other is not hq else rng.choices(CITIES, cum_weights=_CITY_CUM)[0]


def _previous(
    rng: random.Random, company: CompanyEntity, companies: list[CompanyEntity]
) -> tuple[str, ...]:
    if rng.random() >= 0.35:
        return ()
    picks = [_pick(rng, companies).true_id for _ in range(1 if rng.random() < 0.6 else 2)]
    return tuple(dict.fromkeys(p for p in picks if p != company.true_id))


def _headline(
    rng: random.Random, title: str, company: str, previous: tuple[str, ...],
    companies: list[CompanyEntity],
) -> str:  # fmt: skip
    r = rng.random()
    if r < 0.75:
        return f"{title} at {company}"
    short = title.replace("VP of ", "VP ")
    if previous and r < 0.92:
        other = companies[int(previous[0][3:])].name
        return f"{short} @ {company} | ex-{other}"
    return f"{short} @ {company}"


def _school(rng: random.Random, iso2: str) -> str | None:
    r = rng.random()
    if r < 0.15:
        return None
    pool = v.SCHOOLS.get(iso2, v.SCHOOLS["*"]) if r < 0.85 else v.SCHOOLS["*"]
    return _pick(rng, pool)


def _github(rng: random.Random, fa: str, la: str, taken: set[str]) -> str | None:
    """A GitHub handle for about half of engineers / data scientists."""
    if rng.random() >= 0.5:
        return None
    base = _pick(rng, (f"{fa}{la}", f"{fa[:1]}{la}", f"{fa}-{la}", f"{fa}{la[:1]}"))
    numbered = (f"{base}{1 + int(rng.random() * 999)}" for _ in itertools.count())
    return _claim(taken, "gh", itertools.chain((base,), numbered))


def _pick(rng: random.Random, seq: Sequence[_T]) -> _T:
    """``rng.choice`` without its Python-level overhead (one C-level ``random()`` call)."""
    return seq[int(rng.random() * len(seq))]


def _phone(rng: random.Random, city: City) -> str:
    """E.164 number: a city prefix then subscriber digits not starting with 0 or 1."""
    low, high = 2 * 10 ** (city.phone_digits - 1), 10**city.phone_digits
    return f"{_pick(rng, city.phone_prefixes)}{low + int(rng.random() * (high - low))}"


def _skill_sets(pool: tuple[str, ...]) -> tuple[tuple[str, ...], ...]:
    """Every rotation of ``pool`` cut to 3-6 skills: one pick later gives a varied skill list."""
    n = len(pool)
    sizes = range(3, min(n, 6) + 1)
    return tuple(tuple(pool[(s + j) % n] for j in range(k)) for s in range(n) for k in sizes)


_SKILL_SETS = {job_function: _skill_sets(pool) for job_function, pool in v.SKILLS.items()}
