"""The matching machinery behind :mod:`aggregator.merge`: features, tiers, candidates, clustering.

Every hit is reduced once to :class:`Features` (normalized keys, see :mod:`aggregator.identity`).
Two hits are linked by a :class:`Tier`, strongest first:

====== =============================== ====================================================
tier   people                          companies
====== =============================== ====================================================
KEY    LinkedIn profile URL            registered domain (domain, else website; a website
                                       elsewhere -- an old domain redirecting -- is a KEY too)
ALT    email (case-insensitive)        LinkedIn company URL; or the same base name, domain
                                       class (:func:`domain_class`) and country; or a LinkedIn
                                       page whose slug spells another hit's base name, in the
                                       same HQ city (a renamed company's page, one provider
                                       still having its old name and domain)
RECORD the same provider record read twice in one job (e.g. Orbit partial, then full)
PLACE  --                              the same base name, country and HQ city
NAME   fuzzy full name (or a nickname  fuzzy base name + country
       of the given name) + employer
MOVE   the same name (or surname-first --
       form, or a nickname of the
       given name) and city ("Greater
       X Area" is X) at another
       employer, one side without a
       LinkedIn profile
====== =============================== ====================================================

The exact tiers are implicit (hits sharing a key); NAME and MOVE links are found through
:class:`CandidateIndex` blocking and scored with rapidfuzz (thresholds and their measurements are in
:mod:`aggregator.merge`); nicknames come from the ``nicknames`` package
(:func:`~aggregator.identity.same_given_name`).

:func:`cluster` turns the links of one connected group into clusters like Kruskal's algorithm with
cannot-link constraints: tiers in order, within a tier a canonical hit order (NAME links best score
first), and a link is taken only if the two clusters do not hold *conflicting exclusive keys* -- two
different values of a key that one entity has only one of. Which keys are exclusive grows as the tier
weakens (:data:`CHECKS`): nothing is checked on KEY (same LinkedIn profile or domain is the same
entity); ALT must not join two LinkedIn profiles (a company LinkedIn page may join two domains: a
rename keeps its page); RECORD and NAME must not join two LinkedIn profiles, two domain classes, two
company LinkedIn pages or two emails at one email domain; NAME must not join two employer domains or
two countries either; MOVE is NAME without the employer check; PLACE checks domains and countries
only (an older LinkedIn slug is no conflict). A hit that name-matches two clusters which cannot be one
entity (two namesakes' profiles) joins neither: which one it is would be a guess. Links are tried in
a canonical order (hits sorted by provider, record id, job, rank, time), so the clusters depend only
on the set of hits, never on their arrival order.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import NamedTuple

from rapidfuzz import fuzz

from aggregator.identity import (
    domain_stem,
    fold_text,
    has_nicknames,
    memoize,
    normalize_city,
    normalize_company_name,
    normalize_country,
    normalize_domain,
    normalize_email,
    normalize_linkedin_url,
    normalize_person_name,
    same_given_name,
)
from aggregator.models import Company, Hit, Person

__all__ = ["CHECKS", "COMPANY_NAME_THRESHOLD", "MOVE_SCORE", "NICKNAME_SCORE", "PERSON_NAME_THRESHOLD",
           "CandidateIndex", "Features", "Tier", "cluster", "conflicting", "domain_class", "entity_features",
           "exclusive_keys", "features", "identity_key", "link_tier", "name_score"]

PERSON_NAME_THRESHOLD = 90.0
"""Minimum ``max(ratio, token_sort_ratio)`` of two normalized person names (0-100)."""
COMPANY_NAME_THRESHOLD = 90.0
"""Minimum ``ratio`` of two normalized company base names (0-100); also used for employers."""


class Tier(IntEnum):
    """How two hits are linked, strongest first."""

    KEY = 0
    ALT = 1
    RECORD = 2
    NAME = 3
    MOVE = 4
    PLACE = 5  # companies: identical base name, country and HQ city (taken after RECORD, before NAME)


CHECKS: dict[Tier, tuple[str, ...]] = {
    Tier.KEY: (),
    Tier.ALT: ("key",),
    Tier.RECORD: ("key", "alt", "email@", "domain"),
    Tier.NAME: ("key", "alt", "email@", "domain", "employer", "country"),
    Tier.MOVE: ("key", "alt", "email@", "domain", "country"),
    Tier.PLACE: ("domain", "country"),
}
"""Exclusive-key kinds (prefixes) that must not conflict for a link of each tier to be taken.

People's LinkedIn profile is ``key``; companies' registered domains are ``domain`` (by
:func:`domain_class`), so the same company LinkedIn page (ALT) joins a renamed company's old and new
domains, while a name match still cannot."""
NICKNAME_SCORE = 92.0
"""The NAME score of two person names that differ only by a nickname (``Bob Smith`` / ``Robert Smith``)."""
MOVE_SCORE = 40.0
"""The score of a MOVE link (same name and city, other employer); below every NAME score."""


def link_tier(score: float) -> Tier:
    """The tier of a scored link: MOVE for :data:`MOVE_SCORE`, else NAME."""
    return Tier.MOVE if score == MOVE_SCORE else Tier.NAME


Order = tuple[str, str, str, int, float]


class Features(NamedTuple):
    """What resolution needs of one hit: normalized keys, names and blocking keys (immutable)."""

    kind: str  # "person" | "company"
    order: Order  # canonical order: provider, record id, job id, rank, retrieved_at
    primary: str | None  # people: LinkedIn profile URL; companies: registered domain
    alternate: str | None  # people: email; companies: LinkedIn company URL
    record: str  # provider + job + provider record id
    exclusive: tuple[tuple[str, str], ...]  # (kind, value) pairs that conflict when they differ
    name: str | None = None  # person name or company base name
    employer: str | None = None  # people: employer base name
    employer_ids: tuple[str | None, str | None] = (None, None)  # people: employer domain, LinkedIn
    country: str | None = None  # companies: ISO2 (or folded name)
    city: str | None = None  # folded city (companies: HQ)
    blocks: tuple[str, ...] = ()  # blocking keys for NAME candidates
    exact: tuple[str | None, ...] = ()  # KEY, ALT, RECORD keys namespaced by kind and tier, then extra keys
    stem: str | None = None  # companies: ``~<stem>`` when the domain is .com or of the HQ country
    page: str | None = None  # companies: the PLACE key of the name its LinkedIn slug spells, when not its own
    index_name: str | None = None  # the exact-name index's key (people: the name's tokens sorted)


def _exact(kind: str, *values: str | None) -> tuple[str | None, ...]:
    return tuple(f"{kind}|{tier}|{value}" if value else None for tier, value in enumerate(values))


def _person(entity: Person, order: Order, record: str) -> Features:
    linkedin = normalize_linkedin_url(entity.linkedin_url)
    if linkedin and "/in/" not in linkedin:
        linkedin = None
    email = normalize_email(entity.email)
    full = entity.full_name or " ".join(p for p in (entity.first_name, entity.last_name) if p)
    name = normalize_person_name(full)
    org_domain = normalize_domain(entity.company_domain)
    org_linkedin = normalize_linkedin_url(entity.company_linkedin_url)
    employer = normalize_company_name(entity.company_name)
    city = normalize_city(entity.city or (entity.location.split(",", 1)[0] if entity.location else None))
    exclusive = [("key", linkedin), ("employer", org_domain)]
    if email:
        exclusive.append(("email@" + email.rsplit("@", 1)[1], email))
    return Features(
        kind="person", order=order, primary=linkedin, alternate=email, record=record,
        exact=_exact("person", linkedin, email, record),
        exclusive=tuple((k, v) for k, v in exclusive if v), name=name, employer=employer,
        employer_ids=(org_domain, org_linkedin), city=city,
        blocks=_person_blocks(name, employer, org_domain, org_linkedin, city),  # MOVE: also the exact-name index
        index_name=_name_parts(name).index_name if name else None,
    )


def _ends(name: str) -> tuple[str, str]:
    compact = name.replace(" ", "")
    return "^" + compact[:4], "$" + compact[-4:]


_DEUMLAUT = re.compile("ae|oe|ue|aa")


def _undouble(match: re.Match[str]) -> str:
    return match.group()[0]


class _NameParts(NamedTuple):
    """What blocking needs of one normalized person name (see :func:`_person_blocks`)."""

    tokens: tuple[str, ...]  # name-side blocking tokens: tokens of 2+ letters, ``^`` + first 4 letters, ...
    surname: str  # the last token
    nicknamed: bool  # two tokens or more, and the first has nicknames or is one
    index_name: str  # the exact-name index's key: ``person|`` + the tokens sorted


@memoize
def _name_parts(name: str) -> _NameParts:
    """The name-only part of :func:`_person_blocks`, computed once per distinct name."""
    given, _, surname = name.rpartition(" ")
    tokens = [t for t in name.split() if len(t) > 1]
    tokens.append("^" + name.replace(" ", "")[:4])
    if (plain := _DEUMLAUT.sub(_undouble, surname)) != surname:  # "mueller" also blocks as "muller"
        tokens.append(plain)
    return _NameParts(tuple(tokens), surname, bool(given) and has_nicknames(given.split(" ", 1)[0]),
                      f"person|{_name_key(name)}")


def _person_blocks(name: str | None, employer: str | None, org_domain: str | None,
                   org_linkedin: str | None, city: str | None = None) -> tuple[str, ...]:
    """Blocking keys: (a name token or the name's first 4 letters) x (an employer identifier), and
    surname x city for a given name that has nicknames (MOVE: ``kris nixon`` at one employer,
    ``kristina nixon`` at another).

    Two people the NAME tier can link share one: names scoring >= 90 share a token, their first
    four letters or their last token transliterated back ("mueller" / "muller"); matching employers
    share a domain, a LinkedIn URL, or (base names with ratio >= 92)
    their first or last four letters.
    """
    if not name:
        return ()
    parts = _name_parts(name)
    moved = (f"m|{parts.surname}|{city}",) if city and parts.nicknamed else ()
    employers = []
    if org_domain:
        employers.append("d:" + org_domain)
    if org_linkedin:
        employers.append("l:" + org_linkedin)
    if employer:
        employers += _ends(employer)
    return tuple({f"p|{n}|{e}": None for n in parts.tokens for e in employers}) + moved


def domain_class(domain: str | None, country: str | None) -> str | None:
    """What a company's domain must agree on: ``~<stem>`` for ``<stem>.com`` and for the country-code
    domains of its HQ country (``acme.de`` for a German company, ``acme.co.uk`` for a British one),
    else the registered domain itself (``acme.io`` is not ``acme.com``)."""
    if not domain:
        return None
    stem = domain_stem(domain)
    suffix = domain[len(stem) + 1:] if stem and domain.startswith(stem + ".") else ""
    if suffix == "com" or (country and suffix.rsplit(".", 1)[-1] == _CC_TLD.get(country, country.lower())):
        return f"~{stem}"
    return domain


_CC_TLD = {"GB": "uk"}  # ISO2 -> country-code TLD where they differ


def _company(entity: Company, order: Order, record: str) -> Features:
    website = normalize_domain(entity.website)
    domain = normalize_domain(entity.domain) or website
    linkedin = normalize_linkedin_url(entity.linkedin_url)
    if linkedin and "/in/" in linkedin:
        linkedin = None
    country = normalize_country(entity.hq_country_iso2) or normalize_country(entity.hq_country)
    name = normalize_company_name(entity.name)
    blocks = tuple(f"c|{country}|{end}" for end in _ends(name)) if name and country else ()
    cls = domain_class(domain, country)
    exclusive = (("domain", cls), ("domain", domain_class(website, country)), ("alt", linkedin),
                 ("country", country))
    exact = _exact("company", domain, linkedin, record)
    if website and website != domain:  # a website elsewhere (an old domain redirecting): a KEY too
        exact += (f"company|{int(Tier.KEY)}|{website}",)
    if cls and cls[0] == "~" and name and country:  # same base name, domain class, country: acme.com / acme.de
        exact += (f"company|{int(Tier.ALT)}|{name}|{cls}|{country}",)
    city = fold_text(entity.hq_city) if entity.hq_city else None
    page = None
    if name and country and city:  # same base name in one city: two LinkedIn pages (slug history) or not
        exact += (_place_key(name, country, city),)
        spelled = normalize_company_name(linkedin.rsplit("/", 1)[-1].replace("-", " ")) if linkedin else None
        if spelled and spelled != name:  # the page spells another name: a rename's page (_Partition.join_pages)
            page = _place_key(spelled, country, city)
            exact += (page,)
    return Features(
        kind="company", order=order, primary=domain, alternate=linkedin, record=record, exact=exact,
        exclusive=tuple(dict.fromkeys((k, v) for k, v in exclusive if v)), name=name, country=country,
        city=city, blocks=tuple(dict.fromkeys(blocks)), stem=cls if cls and cls[0] == "~" else None, page=page,
        index_name=f"company|{name}",
    )


def _place_key(name: str, country: str, city: str) -> str:
    """The PLACE key of a company base name in one HQ city; a LinkedIn page whose slug spells ``name``
    has it too (:attr:`Features.page`), joined at ALT by :meth:`_Partition.join_pages`."""
    return f"company|{int(Tier.PLACE)}|{name}|{country}|{city}"


def entity_features(entity: Person | Company, order: Order = ("", "", "", 0, 0.0), record: str = "") -> Features:
    """The normalized identity features of one entity."""
    if isinstance(entity, Person):
        return _person(entity, order, record)
    return _company(entity, order, record)


def features(hit: Hit) -> Features:
    """The normalized identity features of ``hit``."""
    order = (hit.provider, hit.provider_record_id, hit.job_id or "", hit.rank, hit.retrieved_at.timestamp())
    return entity_features(hit.entity, order, f"{hit.provider}|{hit.job_id or ''}|{hit.provider_record_id}")


def identity_key(feats: Sequence[Features]) -> str | None:
    """The strongest key of an entity described by ``feats`` (best hit first).

    People: the LinkedIn URL, else ``email:<address>``, else ``name:<name>|<employer>`` (plus
    ``|<employer domain or LinkedIn URL>`` when known); companies: ``domain:<registered domain>``, else
    the LinkedIn URL, else ``name:<base name>|<country>``. The name comes from the best hit that has
    one; among several values of a key the smallest wins. Two clusters the conflict rules kept apart
    never share a key, except in corner cases :class:`~aggregator.merge.Resolver` disambiguates.
    """
    if not feats:
        return None
    person = feats[0].kind == "person"
    primary = min((f.primary for f in feats if f.primary), default=None)
    if primary:
        return primary if person else "domain:" + primary
    alternate = min((f.alternate for f in feats if f.alternate), default=None)
    if alternate:
        return "email:" + alternate if person else alternate
    name = next((f.name for f in feats if f.name), None)
    if name is None:
        return None
    if not person:
        return f"name:{name}|{min((f.country for f in feats if f.country), default='')}"
    employer = next((f.employer for f in feats if f.employer), "")
    ids = [min((x for f in feats if (x := f.employer_ids[n])), default="") for n in (0, 1)]
    org = ids[0] or ids[1]
    return f"name:{name}|{employer}" + (f"|{org}" if org else "")


def _employers_match(a: Features, b: Features) -> bool:
    """Same employer: by domain if both know it, else company LinkedIn URL, else fuzzy base name."""
    for x, y in zip(a.employer_ids, b.employer_ids, strict=True):
        if x and y:
            return x == y
    if not (a.employer and b.employer):
        return False
    return a.employer == b.employer or fuzz.ratio(a.employer, b.employer) >= COMPANY_NAME_THRESHOLD


def _cities_differ(a: str | None, b: str | None) -> bool:
    """Both cities known and not variants of one another ("new york" ~ "new york city")."""
    if not a or not b:
        return False
    return not (a.startswith(b) or b.startswith(a))


def name_score(a: Features, b: Features) -> float:
    """The NAME-tier score of two hits (0-100); 0 when the tier's other conditions fail.

    People: ``max(ratio, token_sort_ratio)`` of the names, if the employers match. Companies: 100 for
    identical base names whose countries agree or are missing on a side; otherwise ``ratio`` of the
    base names when both countries are known and equal and the HQ cities (when both known) agree.
    """
    if a.kind != b.kind or not a.name or not b.name:
        return 0.0
    if a.kind == "person":
        if not _employers_match(a, b):
            return _move_score(a, b)
        score = max(fuzz.ratio(a.name, b.name), fuzz.token_sort_ratio(a.name, b.name))
        if score >= PERSON_NAME_THRESHOLD:
            return score
        return NICKNAME_SCORE if _nickname_of(a.name, b.name) else 0.0
    if a.name == b.name:
        return 100.0 if (a.country == b.country or not a.country or not b.country) else 0.0
    if not a.country or a.country != b.country or _cities_differ(a.city, b.city):
        return 0.0
    score = fuzz.ratio(a.name, b.name)
    return score if score >= COMPANY_NAME_THRESHOLD else 0.0


def _move_score(a: Features, b: Features) -> float:
    """MOVE: one hit has a LinkedIn profile, the other none, same name and city, another employer.

    A job change between two providers' snapshots; the same name may be written surname first
    (``martinez evan``) or with a nickname of the given name (``kris nixon`` / ``kristina nixon``);
    the ambiguity rule of :func:`cluster` keeps a keyless hit away from two same-named people.
    """
    if bool(a.primary) == bool(b.primary) or not a.city or not b.city or _cities_differ(a.city, b.city):
        return 0.0
    if a.name == b.name or a.index_name == b.index_name:  # the same tokens (``_name_key``)
        return MOVE_SCORE
    return MOVE_SCORE if _nickname_of(_surname_last(a.name or "", b.name or ""), b.name or "") else 0.0


def _name_key(name: str) -> str:
    """A person name's tokens in sorted order (``martinez evan`` and ``evan martinez`` agree)."""
    return " ".join(sorted(name.split()))


def _surname_last(name: str, other: str) -> str:
    """``name`` with its first token moved last when that makes its last token ``other``'s
    (``hopkins tim`` against ``timothy hopkins`` -> ``tim hopkins``)."""
    tokens = name.split()
    if len(tokens) > 1 and tokens[-1] != other.rsplit(" ", 1)[-1] and tokens[0] == other.rsplit(" ", 1)[-1]:
        return " ".join((*tokens[1:], tokens[0]))
    return name


def _nickname_of(a: str, b: str) -> bool:
    """Same surname(s), and given names one another's nickname (``bob smith`` / ``robert smith``)."""
    ta, tb = a.split(), b.split()
    if len(ta) < 2 or len(tb) < 2 or ta[1:] != tb[1:] or ta[0] == tb[0]:
        return False
    return same_given_name(ta[0], tb[0])


def conflicting(a: dict[str, set[str]], b: dict[str, set[str]], tier: Tier) -> bool:
    """True when two clusters' exclusive keys forbid joining them through a link of ``tier``."""
    checks = CHECKS[tier]
    if not checks:
        return False
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    return any(kind.startswith(checks) and kind in large and values.isdisjoint(large[kind])
               for kind, values in small.items())


Posting = int | tuple[int, ...]  # one hit or several; tuples of ints are not tracked by the GC


def _post(index: dict[str, Posting], key: str, hit: int) -> None:
    found = index.setdefault(key, hit)
    if found is not hit:
        index[key] = (found, hit) if isinstance(found, int) else (*found, hit)


def _collect(index: dict[str, Posting], key: str, into: set[int]) -> None:
    found = index.get(key)
    if isinstance(found, int):
        into.add(found)
    elif found:
        into.update(found)


@dataclass
class _Blocks:
    names: dict[str, Posting] = field(default_factory=dict)  # exact name -> hits
    blocks: dict[str, Posting] = field(default_factory=dict)  # blocking key -> hits

    def find(self, f: Features, into: set[int]) -> None:
        _collect(self.names, f.index_name or "", into)
        for key in f.blocks:
            _collect(self.blocks, key, into)

    def add(self, index: int, f: Features) -> None:
        _post(self.names, f.index_name or "", index)
        for key in f.blocks:
            _post(self.blocks, key, index)



@dataclass
class CandidateIndex:
    """Blocking indexes over the hits seen so far, for NAME candidates.

    A hit with a primary key (LinkedIn profile, domain) only needs NAME links to hits *without* one:
    a hit with the same primary key is linked on KEY already, one with another is a conflict. So keyed
    hits search the index of unkeyed hits only, and only unkeyed hits search everything -- except that
    a company's country-code domains do not conflict (:func:`domain_class`), so a keyed company also
    searches the keyed companies of its domain class (``acme.com`` / ``acme.de``).
    """

    every: _Blocks = field(default_factory=_Blocks)
    unkeyed: _Blocks = field(default_factory=_Blocks)
    stems: dict[str, Posting] = field(default_factory=dict)  # domain class -> keyed companies

    def candidates(self, f: Features) -> set[int]:
        """Earlier hits that may NAME-match ``f`` (scoring decides)."""
        found: set[int] = set()
        if f.name:
            (self.unkeyed if f.primary else self.every).find(f, found)
            if f.stem:
                _collect(self.stems, f.stem, found)
        return found

    def add(self, index: int, f: Features) -> None:
        """Index hit ``index``."""
        if f.name:
            self.every.add(index, f)
            if not f.primary:
                self.unkeyed.add(index, f)
            elif f.stem:
                _post(self.stems, f.stem, index)


def exclusive_keys(f: Features) -> dict[str, set[str]]:
    """``f.exclusive`` as a mutable mapping (one cluster's start)."""
    keys: dict[str, set[str]] = {}
    for kind, value in f.exclusive:
        keys.setdefault(kind, set()).add(value)
    return keys


def _may_conflict(members: Sequence[int], feats: Sequence[Features]) -> bool:
    """Whether any exclusive key kind takes two values in the group (else it is one entity)."""
    seen: dict[str, str] = {}
    for i in members:
        for kind, value in feats[i].exclusive:
            if seen.setdefault(kind, value) != value:
                return True
    return False


class _Partition:
    """Union-find over hits, each cluster carrying its exclusive keys (the cannot-link constraints)."""

    def __init__(self, ordered: Sequence[int], feats: Sequence[Features]) -> None:
        self.parent = {i: i for i in ordered}
        self.keys = {i: exclusive_keys(feats[i]) for i in ordered}

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def join(self, x: int, y: int, tier: Tier) -> bool:
        """Put ``x`` and ``y`` in one cluster unless their keys conflict at ``tier``; True if joined."""
        rx, ry = self.find(x), self.find(y)
        if rx == ry:
            return True
        if conflicting(self.keys[rx], self.keys[ry], tier):
            return False
        if len(self.keys[rx]) < len(self.keys[ry]):
            rx, ry = ry, rx
        self.parent[ry] = rx
        for kind, values in self.keys.pop(ry).items():
            self.keys[rx].setdefault(kind, set()).update(values)
        return True

    def join_exact(self, ordered: Sequence[int], feats: Sequence[Features], tier: Tier) -> None:
        """Hits sharing the exact key of ``tier``: each joins the first earlier cluster it can."""
        groups: dict[str, list[int]] = {}
        for i in ordered:
            exact = feats[i].exact
            own = exact[tier] if tier <= Tier.RECORD else None
            if own:
                groups.setdefault(own, []).append(i)
            for key in exact[3:]:  # extra keys, namespaced "<kind>|<tier>|..."
                if key and key.split("|", 2)[1] == str(int(tier)):
                    groups.setdefault(key, []).append(i)
        for group in groups.values():
            for pos, i in enumerate(group[1:], 1):
                for j in group[:pos]:
                    if self.join(i, j, tier):
                        break

    def join_pages(self, ordered: Sequence[int], feats: Sequence[Features]) -> None:
        """ALT: a company LinkedIn page whose slug spells another name joins the hits of that name in
        its HQ city (a renamed company's page; the hit has the old name and domain), unless they are
        two companies (conflicting domains). Hits of that name are not joined to one another here
        (that is PLACE, which checks their domains)."""
        pages = {f.page for i in ordered if (f := feats[i]).page}
        if not pages:
            return
        groups: dict[str, list[int]] = {}
        for i in ordered:
            for key in feats[i].exact[3:]:
                if key in pages:
                    groups.setdefault(key, []).append(i)
        for key, group in groups.items():
            spellers = [i for i in group if feats[i].page == key]
            named = list(dict.fromkeys(self.find(i) for i in group if feats[i].page != key))
            if any(conflicting(self.keys[x], self.keys[y], Tier.PLACE) for n, x in enumerate(named)
                   for y in named[n + 1:]):
                continue  # two companies of that name there: which one was renamed would be a guess
            for i in group:
                for j in (group if i in spellers else spellers):
                    if j != i and self.join(i, j, Tier.ALT):
                        break

    def clusters(self, ordered: Sequence[int]) -> list[list[int]]:
        out: dict[int, list[int]] = {}
        for i in ordered:
            out.setdefault(self.find(i), []).append(i)
        return list(out.values())


def cluster(members: Sequence[int], feats: Sequence[Features],
            links: Iterable[tuple[float, int, int]]) -> list[list[int]]:
    """Split one connected group of hits into entities (see the module docstring).

    ``members`` are hit indexes into ``feats``; ``links`` the scored NAME links among them. Returns the
    clusters, each sorted in canonical order, ordered by their first member.
    """
    ordered = sorted(members, key=lambda i: (feats[i].order, i))
    if len(ordered) == 1 or not _may_conflict(ordered, feats):
        return [ordered]
    partition = _Partition(ordered, feats)
    for tier in (Tier.KEY, Tier.ALT, Tier.RECORD, Tier.PLACE):
        partition.join_exact(ordered, feats, tier)
        if tier == Tier.ALT:
            partition.join_pages(ordered, feats)
    rank = {i: pos for pos, i in enumerate(ordered)}

    def link_order(link: tuple[float, int, int]) -> tuple[float, int, int]:
        a, b = sorted((rank[link[1]], rank[link[2]]))
        return -link[0], a, b

    for score, i, j in sorted(_unambiguous(links, partition), key=link_order):
        partition.join(i, j, link_tier(score))
    return partition.clusters(ordered)


def _unambiguous(links: Iterable[tuple[float, int, int]], partition: _Partition) -> list[tuple[float, int, int]]:
    """``links`` without those of a hit that name-matches two clusters that cannot be one entity.

    Two namesakes at one company (different LinkedIn profiles or emails) and a third hit with the
    name but no key: joining it to either is a guess, so it stays a record of its own. NAME links are
    judged among NAME links; a keyless hit's MOVE links (same name and city, another employer) go when
    it has a NAME link (the same employer wins) or MOVE-matches two clusters that cannot be one.
    """
    links = list(links)
    ends: dict[Tier, dict[int, list[int]]] = {Tier.NAME: {}, Tier.MOVE: {}}
    for score, i, j in links:
        tier = link_tier(score)
        ends[tier].setdefault(i, []).append(j)
        ends[tier].setdefault(j, []).append(i)
    if not ends[Tier.MOVE] and all(len(v) < 2 for v in ends[Tier.NAME].values()):
        return links
    ambiguous: dict[Tier, set[int]] = {tier: set() for tier in ends}
    for tier, by_hit in ends.items():
        for i, others in by_hit.items():
            if tier == Tier.MOVE and i in ends[Tier.NAME]:
                ambiguous[tier].add(i)
                continue
            if len(others) < 2:
                continue
            own = partition.find(i)
            roots = [r for r in dict.fromkeys(partition.find(j) for j in others)
                     if r != own and not conflicting(partition.keys[own], partition.keys[r], tier)]
            if any(conflicting(partition.keys[x], partition.keys[y], tier)
                   for n, x in enumerate(roots) for y in roots[n + 1:]):
                ambiguous[tier].add(i)
    return [(score, i, j) for score, i, j in links
            if not ambiguous[tier := link_tier(score)] & {i, j}]
