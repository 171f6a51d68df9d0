"""The "hard world": how real providers disagree about one entity, at configurable rates, with labels.

The default sandbox world is consistent: every provider renders the same entity from the same
fields, so entity resolution on it scores 1.0. Real providers disagree. :class:`DisagreementRates`
names a rate per kind of disagreement (all 0 by default: today's world, byte-identical);
:func:`apply` turns a generated world into a hard one, deterministically per seed (its own
``random.Random(f"{seed}:disagreements")``, so the base world's draws are untouched), and returns a
:class:`Disagreements` plan: which entities each kind touched (the truth labels) and how each provider
sees the entities it disagrees about (:meth:`Disagreements.person` / :meth:`Disagreements.company`).

Kinds (rate = share of the eligible entities affected; the affected side is one provider of the pair
that renders the kind, drawn per entity):

=============== ========================================================================================
kind            what differs
=============== ========================================================================================
job_change      one people provider's snapshot has the person at a previous employer (an earlier job from
                ``previous_company_ids``, else a random company), with that job's title and work email;
                the LinkedIn URL is the same, except in ``job_change_without_url`` of the cases where that
                side (Orbit) has none
nickname        one provider writes the first name as a common nickname (Robert/Bob, Katherine/Kate):
                eligible are people whose first name is in :data:`~.vocab.NICKNAMES`
name_form       one provider writes the name another way: a middle initial, the name without its
                diacritics or transliterated ("Jürgen Müller" / "Jurgen Muller" / "Juergen Mueller"),
                or surname first ("MÜLLER Jürgen", "Müller, Jürgen")
title_wording   one provider words the title differently (:data:`~.vocab.TITLE_WORDINGS`)
namesake        a true namesake: another person (half the time a colleague at the same company, else
                someone in the same city) is renamed to this person's name, with their own LinkedIn
                profile and email (``jane.doe2@``); both are labelled
rebrand         the company was renamed: one company provider still has the old name and old domain;
                the other has the new ones and, half the time, the old domain as its website (it
                redirects)
subsidiary      a subsidiary with its own domain and LinkedIn page is added ("Acme Freight Labs",
                ``acmefreightlabs.com``, same HQ); parent and subsidiary are labelled
cc_domain       one provider has the company's country-code domain (``acme.de``, ``acme.co.uk``;
                ``acme.com`` when the main one is already a country-code domain)
slug_history    one provider has the company's LinkedIn page under an older slug (``acme-freight-inc``)
=============== ========================================================================================

People kinds concern the people providers (:data:`PEOPLE_PROVIDERS`), company kinds the company
providers (:data:`COMPANY_PROVIDERS`); a rebrand, a country-code domain or a slug history also shows
in how that provider writes the company's employees' employer. Ground truth follows the aliases:
:attr:`Disagreements.domain_aliases` / :attr:`Disagreements.slug_aliases` map the other identifiers
back to the hidden id (:func:`providers.sandbox.truth.lookup` reads them).
"""

from __future__ import annotations

import dataclasses
import random
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from . import vocab as v
from .entities import CompanyEntity, PersonEntity

__all__ = [
    "COMPANY_KINDS",
    "COMPANY_PROVIDERS",
    "KINDS",
    "PEOPLE_PROVIDERS",
    "PERSON_KINDS",
    "DisagreementRates",
    "Disagreements",
    "apply",
]

PERSON_KINDS: tuple[str, ...] = ("job_change", "nickname", "name_form", "title_wording", "namesake")
COMPANY_KINDS: tuple[str, ...] = ("rebrand", "subsidiary", "cc_domain", "slug_history")
KINDS: tuple[str, ...] = PERSON_KINDS + COMPANY_KINDS
PEOPLE_PROVIDERS: tuple[str, str] = ("sixtyfour", "orbit")
COMPANY_PROVIDERS: tuple[str, str] = ("sixtyfour", "extruct")
_WITHOUT_URL_SIDE = "orbit"  # the people provider that may lack a LinkedIn URL


@dataclass(frozen=True, slots=True)
class DisagreementRates:
    """A rate (0..1) per kind of disagreement; all 0 (the default) is today's consistent world.

    Raises:
        ValueError: a rate outside [0, 1] (names the field).
    """

    job_change: float = 0.0
    nickname: float = 0.0
    name_form: float = 0.0
    title_wording: float = 0.0
    namesake: float = 0.0
    rebrand: float = 0.0
    subsidiary: float = 0.0
    cc_domain: float = 0.0
    slug_history: float = 0.0
    job_change_without_url: float = 0.3  # of the job changes: the stale side has no LinkedIn URL

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int | float) or not 0.0 <= value <= 1.0:
                raise ValueError(f"disagreements.{f.name} must be a number in [0, 1], got {value!r}")

    @property
    def active(self) -> bool:
        """Whether any kind has a rate above 0 (else the world is today's)."""
        return any(getattr(self, kind) > 0 for kind in KINDS)

    @classmethod
    def hard(cls) -> DisagreementRates:
        """The ``hard`` preset: every kind at a rate seen in real provider data, order of magnitude.

        About 8% of people changed jobs between two snapshots, a third of English first names appear
        as a nickname somewhere, one name in ten is written another way, one title in five is worded
        differently, 3% of people have a namesake nearby; 5% of companies rebranded, 4% have a
        subsidiary, 6% show a country-code domain or an older LinkedIn slug somewhere.
        """
        return cls(job_change=0.08, nickname=0.3, name_form=0.1, title_wording=0.2, namesake=0.03,
                   rebrand=0.05, subsidiary=0.04, cc_domain=0.06, slug_history=0.06)

    @classmethod
    def parse(cls, value: str | dict[str, Any] | DisagreementRates | None) -> DisagreementRates:
        """``None``/``"none"`` (all 0), ``"hard"``, a mapping of rates, or rates as they are.

        Raises:
            ValueError: an unknown preset or kind, or a rate outside [0, 1].
        """
        if value is None or value == "none":
            return cls()
        if isinstance(value, DisagreementRates):
            return value
        if value == "hard":
            return cls.hard()
        if isinstance(value, dict):
            unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
            if unknown:
                raise ValueError(f"unknown disagreement kind(s) {unknown}; known: {', '.join(KINDS)}")
            return cls(**value)
        raise ValueError(f"disagreements must be 'none', 'hard' or a table of rates, got {value!r}")


@dataclass(frozen=True, slots=True)
class Disagreements:
    """What :func:`apply` did: labels, per-provider views and the aliases ground truth needs."""

    rates: DisagreementRates
    kinds: dict[str, tuple[str, ...]] = field(default_factory=dict)  # true_id -> kinds touching it
    people: dict[tuple[str, str], PersonEntity] = field(default_factory=dict)  # (provider, id) -> view
    companies: dict[tuple[str, str], CompanyEntity] = field(default_factory=dict)  # (provider, id) -> view
    websites: dict[tuple[str, str], str] = field(default_factory=dict)  # (provider, company id) -> website domain
    without_linkedin: frozenset[tuple[str, str]] = frozenset()  # (provider, person id) without a LinkedIn URL
    domain_aliases: dict[str, str] = field(default_factory=dict)  # another domain -> company id
    slug_aliases: dict[str, str] = field(default_factory=dict)  # another LinkedIn company slug -> company id

    def kinds_of(self, true_id: str) -> tuple[str, ...]:
        """The kinds that touch this entity (``()`` for an untouched one)."""
        return self.kinds.get(true_id, ())

    def person(self, provider: str, person: PersonEntity) -> PersonEntity:
        """``person`` as ``provider`` has it."""
        return self.people.get((provider, person.true_id), person)

    def company(self, provider: str, company: CompanyEntity) -> CompanyEntity:
        """``company`` as ``provider`` has it."""
        return self.companies.get((provider, company.true_id), company)

    def website(self, provider: str, company: CompanyEntity) -> str:
        """The website domain ``provider`` shows for ``company`` (its view's domain unless a redirect)."""
        return self.websites.get((provider, company.true_id)) or self.company(provider, company).domain

    def has_linkedin(self, provider: str, person: PersonEntity) -> bool:
        """False when ``provider``'s record of ``person`` lacks the LinkedIn URL (a job change)."""
        return (provider, person.true_id) not in self.without_linkedin


def _ascii(text: str) -> str:
    text = text.replace("ß", "ss").replace("ø", "o").replace("æ", "ae").replace("ł", "l")
    folded = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]", "", folded.lower())


def _strip_accents(text: str) -> str:
    text = text.replace("ß", "ss").replace("ø", "o").replace("Ø", "O").replace("æ", "ae").replace("ł", "l")
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()


def _transliterate(text: str) -> str:
    return "".join(v.TRANSLITERATIONS.get(ch, ch) for ch in text)


def _pick(rng: random.Random, seq: Sequence[Any]) -> Any:
    return seq[int(rng.random() * len(seq))]


class _Builder:
    def __init__(self, seed: int, rates: DisagreementRates, companies: list[CompanyEntity],
                 people: list[PersonEntity]) -> None:
        self.rng = random.Random(f"{seed}:disagreements")
        self.rates = rates
        self.companies = companies
        self.people = people
        self.kinds: dict[str, list[str]] = {}
        self.person_views: dict[tuple[str, str], PersonEntity] = {}
        self.company_views: dict[tuple[str, str], CompanyEntity] = {}
        self.websites: dict[tuple[str, str], str] = {}
        self.without_linkedin: set[tuple[str, str]] = set()
        self.domain_aliases: dict[str, str] = {}
        self.slug_aliases: dict[str, str] = {}
        self.taken: set[str] = {f"name:{c.name}" for c in companies} | {f"domain:{c.domain}" for c in companies}
        self.taken |= {f"li:{c.linkedin_slug}" for c in companies}
        self.taken |= {f"slug:{p.linkedin_slug}" for p in people} | {f"email:{p.email}" for p in people}

    def label(self, true_id: str, kind: str) -> None:
        found = self.kinds.setdefault(true_id, [])
        if kind not in found:
            found.append(kind)

    def claim(self, kind: str, value: str) -> bool:
        if f"{kind}:{value}" in self.taken:
            return False
        self.taken.add(f"{kind}:{value}")
        return True

    def person_view(self, provider: str, p: PersonEntity) -> PersonEntity:
        return self.person_views.get((provider, p.true_id), p)

    def company_view(self, provider: str, c: CompanyEntity) -> CompanyEntity:
        return self.company_views.get((provider, c.true_id), c)

    # -- world-level changes ------------------------------------------------------------------

    def subsidiaries(self) -> None:
        added: list[CompanyEntity] = []
        for parent in list(self.companies):
            if self.rng.random() >= self.rates.subsidiary:
                continue
            suffixes = list(v.SUBSIDIARY_SUFFIXES)
            self.rng.shuffle(suffixes)
            name = next((f"{parent.name} {s}" for s in suffixes if f"name:{parent.name} {s}" not in self.taken), None)
            tld = parent.domain.split(".", 1)[1]
            domain = f"{_ascii(name or '')}.{tld}"
            slug = re.sub(r"[^a-z0-9]+", "-", (name or "").lower()).strip("-")
            if name is None or not (self.claim("domain", domain) and self.claim("li", slug)):
                continue
            self.claim("name", name)
            true_id = f"co_{len(self.companies) + len(added):06d}"
            legal = parent.legal_name.replace(parent.name, name, 1)
            added.append(replace(
                parent, true_id=true_id, name=name, legal_name=legal, domain=domain, linkedin_slug=slug,
                linkedin_id=100_000_000 + int(self.rng.random() * 899_999_999),
                description=parent.description.replace(parent.name, name),
                employees_count=max(5, parent.employees_count // 8),
                founded_year=min(2024, parent.founded_year + 1 + int(self.rng.random() * 8)),
                funding_rounds=(), funding_stage="Bootstrapped", is_public=False))
            self.label(parent.true_id, "subsidiary")
            self.label(true_id, "subsidiary")
        self.companies.extend(added)

    def namesakes(self) -> None:
        by_company: dict[str, list[int]] = {}
        by_city: dict[str, list[int]] = {}
        for i, p in enumerate(self.people):
            by_company.setdefault(p.company_id, []).append(i)
            by_city.setdefault(p.city, []).append(i)
        company = {c.true_id: c for c in self.companies}
        used: set[int] = set()
        for i in range(len(self.people)):
            if self.rng.random() >= self.rates.namesake or i in used:
                continue
            p = self.people[i]
            same_company = self.rng.random() < 0.5
            pool = by_company[p.company_id] if same_company else by_city[p.city]
            choices = [j for j in pool if j != i and j not in used
                       and (same_company or self.people[j].company_id != p.company_id)]
            if not choices:
                continue
            j = _pick(self.rng, choices)
            q = self.people[j]
            fa, la = _ascii(p.first_name), _ascii(p.last_name)
            slugs = (f"{fa}-{la}-{1000 + int(self.rng.random() * 99000)}" for _ in range(1000))
            slug = next(s for s in slugs if self.claim("slug", s))
            domain = company[q.company_id].domain
            emails = (f"{fa}.{la}{n if n > 1 else ''}@{domain}" for n in range(1, 100))
            email = next(e for e in emails if self.claim("email", e))
            self.people[j] = replace(q, first_name=p.first_name, last_name=p.last_name, full_name=p.full_name,
                                     linkedin_slug=slug, email=email,
                                     headline=q.headline.replace(q.full_name, p.full_name))
            used.update((i, j))
            self.label(p.true_id, "namesake")
            self.label(q.true_id, "namesake")

    # -- per-provider views ---------------------------------------------------------------------

    def person_kinds(self) -> None:
        company = {c.true_id: c for c in self.companies}
        roles_by_function: dict[str, list[str]] = {}
        for role in v.ROLES:
            roles_by_function.setdefault(role.job_function, []).append(role.title)
        rates, rng = self.rates, self.rng
        for p in self.people:
            if rng.random() < rates.job_change:
                previous = [c for c in p.previous_company_ids if c in company and c != p.company_id]
                old = company[previous[0]] if previous else _pick(rng, self.companies)
                if old.true_id != p.company_id:
                    without_url = rng.random() < rates.job_change_without_url
                    side = _WITHOUT_URL_SIDE if without_url else _pick(rng, PEOPLE_PROVIDERS)
                    title = _pick(rng, roles_by_function.get(p.job_function, [p.title]))
                    fa, la = _ascii(p.first_name), _ascii(p.last_name)
                    self.person_views[(side, p.true_id)] = replace(
                        p, company_id=old.true_id, title=title, headline=f"{title} at {old.name}",
                        email=f"{fa}.{la}@{old.domain}")
                    if without_url:
                        self.without_linkedin.add((side, p.true_id))
                    self.label(p.true_id, "job_change")
            if p.first_name in v.NICKNAMES and rng.random() < rates.nickname:
                side = _pick(rng, PEOPLE_PROVIDERS)
                seen = self.person_view(side, p)
                nick = _pick(rng, v.NICKNAMES[p.first_name])
                self.person_views[(side, p.true_id)] = replace(
                    seen, first_name=nick, full_name=seen.full_name.replace(p.first_name, nick, 1))
                self.label(p.true_id, "nickname")
            if rng.random() < rates.name_form:
                side = _pick(rng, PEOPLE_PROVIDERS)
                seen = self.person_view(side, p)
                first, last = seen.first_name, seen.last_name
                forms = ["middle", "surname_first", "surname_comma"]
                if not (first + last).isascii():
                    forms += ["ascii", "transliterated"] * 2
                form = _pick(rng, forms)
                if form == "middle":
                    full = f"{first} {chr(65 + int(rng.random() * 26))}. {last}"
                elif form == "surname_first":
                    full = f"{last.upper()} {first}"
                elif form == "surname_comma":
                    full = f"{last}, {first}"
                else:
                    fold = _strip_accents if form == "ascii" else _transliterate
                    first, last = fold(first), fold(last)
                    full = f"{first} {last}"
                self.person_views[(side, p.true_id)] = replace(seen, first_name=first, last_name=last, full_name=full)
                self.label(p.true_id, "name_form")
            if p.title in v.TITLE_WORDINGS and rng.random() < rates.title_wording:
                side = _pick(rng, PEOPLE_PROVIDERS)
                seen = self.person_view(side, p)
                self.person_views[(side, p.true_id)] = replace(seen, title=_pick(rng, v.TITLE_WORDINGS[p.title]))
                self.label(p.true_id, "title_wording")

    def company_kinds(self) -> None:
        rates, rng = self.rates, self.rng
        for c in self.companies:
            stem, tld = c.domain.split(".", 1)
            if rng.random() < rates.rebrand:
                old = None
                for _ in range(50):
                    a, b = _pick(rng, v.BRAND_ROOTS), _pick(rng, v.BRAND_SUFFIXES + v.BRAND_ROOTS)
                    candidate = a.capitalize() + b
                    if self.claim("name", candidate) and self.claim("domain", f"{_ascii(candidate)}.{tld}"):
                        old = candidate
                        break
                if old is not None:
                    side = _pick(rng, COMPANY_PROVIDERS)
                    other = COMPANY_PROVIDERS[1 - COMPANY_PROVIDERS.index(side)]
                    old_domain = f"{_ascii(old)}.{tld}"
                    self.company_views[(side, c.true_id)] = replace(
                        c, name=old, legal_name=c.legal_name.replace(c.name, old, 1), domain=old_domain,
                        description=c.description.replace(c.name, old))
                    if rng.random() < 0.5:
                        self.websites[(other, c.true_id)] = old_domain  # the old domain redirects here
                    self.domain_aliases[old_domain] = c.true_id
                    self.label(c.true_id, "rebrand")
            own_cc = v.CC_TLDS.get(c.hq_country_iso2, "co.uk")
            if rng.random() < rates.cc_domain and tld in ("com", own_cc):  # not .io / .ai: another name
                alt = f"{stem}.{own_cc if tld == 'com' else 'com'}"
                if self.claim("domain", alt):
                    side = _pick(rng, COMPANY_PROVIDERS)
                    self.company_views[(side, c.true_id)] = replace(self.company_view(side, c), domain=alt)
                    self.websites.pop((side, c.true_id), None)
                    self.domain_aliases[alt] = c.true_id
                    self.label(c.true_id, "cc_domain")
            if rng.random() < rates.slug_history:
                suffix = _pick(rng, ("inc", "hq", "official", "group", str(c.founded_year)))
                old_slug = f"{c.linkedin_slug}-{suffix}"
                if self.claim("li", old_slug):
                    side = _pick(rng, COMPANY_PROVIDERS)
                    self.company_views[(side, c.true_id)] = replace(self.company_view(side, c), linkedin_slug=old_slug)
                    self.slug_aliases[old_slug] = c.true_id
                    self.label(c.true_id, "slug_history")


def apply(seed: int, companies: Sequence[CompanyEntity], people: Sequence[PersonEntity],
          rates: DisagreementRates) -> tuple[list[CompanyEntity], list[PersonEntity], Disagreements]:
    """The hard world's companies and people (subsidiaries added, namesakes renamed) and its plan.

    Deterministic per ``(seed, rates)`` and the input world; with every rate 0 the entities come back
    unchanged and the plan is empty.
    """
    b = _Builder(seed, rates, list(companies), list(people))
    if rates.active:
        b.subsidiaries()
        b.namesakes()
        b.person_kinds()
        b.company_kinds()
    return b.companies, b.people, Disagreements(
        rates=rates, kinds={k: tuple(found) for k, found in b.kinds.items()}, people=b.person_views,
        companies=b.company_views, websites=b.websites, without_linkedin=frozenset(b.without_linkedin),
        domain_aliases=b.domain_aliases, slug_aliases=b.slug_aliases)
