"""What a request excludes, parsed once, and the one matcher every provider's hits go through.

``SearchRequest.exclude`` holds identifiers as the user wrote them. :func:`parse_exclusions` reads
each one for the request's mode, with the normalizers of :mod:`aggregator.identity` (the ones entity
resolution uses, so an exclusion matches exactly the records a report would key the same way):

========== ============================================= ===============================================
mode       accepted                                      matches a hit whose
========== ============================================= ===============================================
people     LinkedIn profile URL (any form)               normalized LinkedIn profile URL is the same
people     a bare public id (``jane-doe-1``) or a        LinkedIn URL ends in that public id, or whose
           provider's record id (``orb_1a2b…``)          provider record id is that id
company    a domain or website URL (``acme.com``)        registered domain (domain, else website)
company    LinkedIn company URL                          normalized LinkedIn company URL is the same
company    a bare id: company slug or numeric LinkedIn   LinkedIn company slug or provider record id
           id, or a provider's record id                 is that id
========== ============================================= ===============================================

Anything else (a domain in a people search, a person's URL in a company search, an email) cannot be
applied and is refused when the request is built (:class:`ValueError`, located at ``exclude``).

Where exclusions are applied (see ``README.md``): a provider that accepts them is sent the kinds it
documents (:meth:`ProviderAdapter.sent_exclusions`); the core then checks **every** hit of **every**
provider with :meth:`Exclusions.matches` before it is journaled or announced
(:class:`~aggregator.scheduler.JobRunner`), so an excluded entity never reaches a report, and counts
what it dropped in :attr:`ProviderOutcome.excluded`. An adapter that knows a record's id before a paid
read (Orbit's candidate profile ids) skips the read with :meth:`Exclusions.excludes_record`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from aggregator.identity import normalize_domain, normalize_linkedin_url
from aggregator.models import Company, Hit, Mode, Person

__all__ = ["Exclusion", "Exclusions", "parse_exclusion", "parse_exclusions"]

Kind = Literal["linkedin", "domain", "id"]
_BARE_ID = re.compile(r"^[^\s/@.:?#]+$")  # no dot, slash, @, colon: a public id, slug or record id


@dataclass(frozen=True, slots=True)
class Exclusion:
    """One exclusion as given (``value``) and as matched (``key``)."""

    value: str
    kind: Kind  # linkedin: a normalized LinkedIn URL; domain: a registered domain; id: a bare id
    key: str


def parse_exclusion(value: str, mode: Mode) -> Exclusion:
    """``value`` read for ``mode`` (see the module docstring).

    Raises:
        ValueError: naming the value and what a ``mode`` search can exclude.
    """
    text = value.strip()
    linkedin = normalize_linkedin_url(text)
    if mode == "people":
        if linkedin and "/in/" in linkedin:
            return Exclusion(value, "linkedin", linkedin)
        if _BARE_ID.match(text):
            return Exclusion(value, "id", text.casefold())
        raise ValueError(f"{value!r} is not a LinkedIn profile URL or public id; a people search excludes "
                         "people (https://www.linkedin.com/in/<id>, the bare <id>, or a provider's record id)")
    if linkedin and "/company/" in linkedin:
        return Exclusion(value, "linkedin", linkedin)
    if _BARE_ID.match(text):
        return Exclusion(value, "id", text.casefold())
    domain = None if linkedin or "@" in text else normalize_domain(text)
    if domain and "." in domain:
        return Exclusion(value, "domain", domain)
    raise ValueError(f"{value!r} is not a domain, a LinkedIn company URL or a company id; a company search "
                     "excludes companies (acme.com, https://www.linkedin.com/company/<slug>, the bare slug)")


def parse_exclusions(values: Iterable[str], mode: Mode) -> tuple[Exclusion, ...]:
    """Every value of ``values`` read for ``mode``. Raises ValueError at the first that cannot apply."""
    return tuple(parse_exclusion(v, mode) for v in values)


@dataclass(frozen=True)
class Exclusions:
    """A request's exclusions, ready to match hits (empty: nothing is excluded)."""

    mode: Mode
    items: tuple[Exclusion, ...] = ()
    _ids: frozenset[str] = field(init=False, repr=False, compare=False)
    _linkedin: frozenset[str] = field(init=False, repr=False, compare=False)
    _domains: frozenset[str] = field(init=False, repr=False, compare=False)

    @classmethod
    def of(cls, values: Sequence[str], mode: Mode) -> Exclusions:
        """The exclusions ``values`` of a ``mode`` request (already validated by ``SearchRequest``)."""
        return cls(mode, parse_exclusions(values, mode))

    def __post_init__(self) -> None:
        prefix = "https://www.linkedin.com/in/" if self.mode == "people" else "https://www.linkedin.com/company/"
        by_kind: dict[str, set[str]] = {"linkedin": set(), "domain": set(), "id": set()}
        for item in self.items:
            by_kind[item.kind].add(item.key)
        as_urls = {normalize_linkedin_url(prefix + i.value.strip()) for i in self.items if i.kind == "id"}
        # a LinkedIn profile's public id is also the record id of providers that key people by it (Sixtyfour)
        slugs = {key.rsplit("/", 1)[1] for key in by_kind["linkedin"] if "/in/" in key}
        object.__setattr__(self, "_ids", frozenset(by_kind["id"] | slugs))
        object.__setattr__(self, "_linkedin", frozenset(by_kind["linkedin"] | {u for u in as_urls if u}))
        object.__setattr__(self, "_domains", frozenset(by_kind["domain"]))

    def __bool__(self) -> bool:
        return bool(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def values(self, *kinds: Kind) -> list[str]:
        """The values as given, of ``kinds`` (all when none is named), in the request's order."""
        return [item.value for item in self.items if not kinds or item.kind in kinds]

    def domains(self) -> list[str]:
        """The registered domains excluded (company mode), de-duplicated, in the request's order."""
        return list(dict.fromkeys(item.key for item in self.items if item.kind == "domain"))

    def excludes_record(self, record_id: str) -> bool:
        """Whether a provider's record id is excluded (known before reading the record)."""
        return bool(self._ids) and record_id.strip().casefold() in self._ids

    def matches(self, hit: Hit) -> bool:
        """Whether ``hit`` is an excluded entity: by LinkedIn URL, domain or the provider's record id."""
        if not self.items:
            return False
        return self.excludes_record(hit.provider_record_id) or self.matches_entity(hit.entity)

    def matches_entity(self, entity: Person | Company) -> bool:
        """Whether ``entity`` is excluded by its LinkedIn URL or (a company) its registered domain."""
        if normalize_linkedin_url(entity.linkedin_url) in self._linkedin:
            return True
        if isinstance(entity, Company):
            domain = normalize_domain(entity.domain) or normalize_domain(entity.website)
            return domain is not None and domain in self._domains
        return False

    def split(self, hits: Iterable[Hit]) -> tuple[list[Hit], int]:
        """``hits`` without the excluded ones, and how many were excluded."""
        given = list(hits)
        kept = [hit for hit in given if not self.matches(hit)] if self.items else given
        return kept, len(given) - len(kept)

    def describe(self, sent: Sequence[str], sent_as: str | None, *, before_read: str | None = None) -> dict[str, Any]:
        """What ``--explain`` shows of one provider's exclusions: what its request carries (``sent`` in its
        field ``sent_as``; None: it takes none) and what the core applies to every record it returns."""
        shown: dict[str, Any] = {"given": self.values(), "sent_as": sent_as, "sent": list(sent)}
        if before_read:
            shown["skipped_before_read"] = before_read
        shown["applied_by_us"] = ("all of them, to every record this provider returns, before it is journaled "
                                  "or reported; matches are dropped and counted in the outcome's 'excluded'")
        return shown
