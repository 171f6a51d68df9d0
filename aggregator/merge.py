"""Entity resolution across providers: one :class:`~aggregator.models.MergedRecord` per real entity.

Tiers, strongest first (normalizers in :mod:`aggregator.identity`, matching in
:mod:`aggregator.resolution`):

- **people**: LinkedIn profile URL (scheme, ``www.``/country subdomain, query, trailing slash and
  sub-paths removed; slug lower-cased) -> email (case-insensitive) -> the same provider record read
  twice in one job -> fuzzy full name, or a nickname of the given name (``Bob``/``Robert``, from the
  ``nicknames`` package), + employer -> MOVE: the same name and city at another employer when one
  side has no LinkedIn profile (a job change between two providers' snapshots).
- **companies**: registered domain (Public Suffix List bundled with tldextract, no network:
  ``www.acme.co.uk/about`` -> ``acme.co.uk``; ``domain``, else ``website``, and a website on another
  domain too: a renamed company's old domain redirecting) -> LinkedIn company URL, or the same base
  name, country and domain class (``acme.com`` = ``acme.de`` for a German company) -> the same
  provider record -> the same base name, country and HQ city -> fuzzy base name (legal forms from
  cleanco's list, punctuation, case and accents removed) + country (ISO2; names and aliases mapped).

Hits holding *conflicting* strong keys never merge through a weaker tier: an email, a re-read or a
name match cannot join two different LinkedIn profiles, two different domain classes or two
different company LinkedIn pages; a name match also cannot join two emails at one email domain
(``jane.doe@`` vs ``jane.doe2@acme.com``), two employer domains or two countries. One exception, for
renames: the same company LinkedIn page joins two domains. A keyless hit that name-matches two
namesakes' clusters joins neither. Clustering is order-independent: the result is a function of the
set of hits (:func:`~aggregator.resolution.cluster`).

Provider disagreements (issue 20) are measured on the sandbox's hard world by
``deepsearch bench --only resolution`` (:mod:`aggregator.bench.resolution`), side by side with splink.

Fuzzy thresholds (rapidfuzz, 0-100), measured on the sandbox world (seed 7: 4,000 companies,
33,655 people; company names are unique but built from shared roots, so near-collisions abound):

- **people**: ``max(ratio, token_sort_ratio)`` of normalized names (accents, case, punctuation,
  honorifics, post-nominals and middle initials dropped) >= **90** (``PERSON_NAME_THRESHOLD``), *and*
  the employer matches (same domain when both know it, else same company LinkedIn URL, else base
  names with ``ratio`` >= 90). ``token_sort`` for "Smith, John"; ``ratio`` for a lost space.
  Colleagues at one company scoring >= t: 6 pairs of 165k at 90 (2 are exact namesakes no threshold
  separates), 5 at 92, 3 at 94. With strong keys stripped and a one-letter typo in 10% of Orbit's
  names (9,867 hits): t=88 P .9983 R .9998; **t=90 P .9993 R .9988**; t=92 P 1.0 R .9858; t=94 P 1.0
  R .9691. 90 is where F1 peaks with the fewest false merges.
- **companies**: ``ratio`` of base names >= **90** (``COMPANY_NAME_THRESHOLD``) with the same country
  and no contradicting HQ city (when both name one, neither a prefix of the other), or identical base
  names with the same country or a country missing on one side. ``ratio``, not ``token_sort``: word
  order matters in brand names ("Grove Mint" vs "Mint Grove" scores 100 sorted) and a space lost in
  one word ("BridgeCobalt") breaks the sort. Distinct same-country companies scoring >= t: 56 pairs at
  88, 32 at 90, 21 at 92; the city check leaves 4, 2 and 2. With keys stripped and 10% of Extruct's
  names given a typo (6,795 hits): t=88 P .9965 R .9885; **t=90 P .9982 R .9846**; t=92 P .9982
  R .9686; t=95 P .9982 R .9452. The two false merges left at 90-95 are spacing twins in one city
  ("Sparkfjord" / "Spark Fjord"), which no threshold below 96 separates; below 90 precision falls.

On the sandbox's own provider output every true duplicate carries an exact key (Sixtyfour and Orbit
both expose LinkedIn profiles; Sixtyfour and Extruct both expose the domain): precision and recall
are 1.0 for both demo queries, and still 1.0 with the strong keys stripped (the name tier alone
absorbs Extruct's legal names and country names); see ``tests/sandbox/test_resolution_quality.py``.

A record keeps every hit (best rank first; within a provider the newest ``retrieved_at``), takes
each field from the best hit that has it, lists in ``field_provenance`` the providers whose value
equals the chosen one after light normalization (case and whitespace; URLs, domains, emails and
countries through their normalizers) and in ``conflicts`` each other provider's differing value.
Records are ordered by consensus (distinct providers), best rank, record id.

:class:`Resolver` is incremental: ``add`` returns the records created or changed; a hit that links
two earlier clusters joins them. ``merge_hits`` is ``Resolver().add(hits)`` then ``records()``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from aggregator.identity import (
    fold_text,
    normalize_country,
    normalize_domain,
    normalize_email,
    normalize_linkedin_url,
)
from aggregator.models import Company, Hit, MergedRecord, Mode, Person
from aggregator.resolution import (
    CandidateIndex,
    Features,
    cluster,
    conflicting,
    entity_features,
    exclusive_keys,
    features,
    identity_key,
    link_tier,
    name_score,
)

__all__ = ["Resolver", "merge_hits", "normalize_domain", "normalize_linkedin_url", "record_key"]

Provenance = dict[str, tuple[str, ...]]
Conflicts = dict[str, dict[str, str]]
Link = tuple[float, int, int]


def record_key(entity: Person | Company) -> str | None:
    """The strongest identity key of one entity, or None when it has none (see :func:`identity_key`)."""
    return identity_key([entity_features(entity)])


# -- consolidation -----------------------------------------------------------------------------

def _url_or_fold(value: str) -> str:
    return normalize_linkedin_url(value) or fold_text(value)


def _domain_or_fold(value: str) -> str:
    return normalize_domain(value) or fold_text(value)


_COMPARE: dict[str, Callable[[str], str]] = {
    "linkedin_url": _url_or_fold, "company_linkedin_url": _url_or_fold,
    "domain": _domain_or_fold, "company_domain": _domain_or_fold, "website": _domain_or_fold,
    "email": lambda v: normalize_email(v) or fold_text(v),
    "country": lambda v: normalize_country(v) or fold_text(v),
    "hq_country": lambda v: normalize_country(v) or fold_text(v),
    "hq_country_iso2": lambda v: normalize_country(v) or fold_text(v),
}
_CANONICAL: dict[str, Callable[[str | None], str | None]] = {  # fields emitted in normalized form
    "linkedin_url": normalize_linkedin_url, "company_linkedin_url": normalize_linkedin_url,
    "domain": normalize_domain, "company_domain": normalize_domain,
}


def _comparable(field: str, value: Any) -> Any:
    if isinstance(value, str):
        return _COMPARE.get(field, fold_text)(value)
    if isinstance(value, tuple):
        return tuple(fold_text(v) if isinstance(v, str) else v for v in value)
    return value


def _text(value: Any) -> str:
    return ", ".join(map(str, value)) if isinstance(value, tuple) else str(value)


_SHARED: dict[tuple[str, ...], tuple[str, ...]] = {}  # provenance tuples, shared between records
_MISSING: Any = object()


def _shared(providers: tuple[str, ...]) -> tuple[str, ...]:
    return _SHARED.setdefault(providers, providers) if len(_SHARED) < 4096 else providers


def _per_provider(sources: list[tuple[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """{field: {provider: the field's value in that provider's best hit that has it}, best first}, for
    the fields some hit has (None, "" and () are missing; 0 is a value); one pass over the hits."""
    fields: dict[str, dict[str, Any]] = {}
    for provider, values in sources:
        for name, value in values.items():
            if not (value or value == 0):
                continue
            seen = fields.get(name)
            if seen is None:
                fields[name] = {provider: value}
            elif provider not in seen:
                seen[provider] = value
    return fields


def _consolidate(hits: Sequence[Hit]) -> tuple[Person | Company, Provenance, Conflicts]:
    """Each field from the best hit that has it; who agrees (provenance) and who differs (conflicts).

    Each provider counts once per field, with its best hit that has the field.
    """
    entity = hits[0].entity
    if len(hits) == 1:
        values = {name: v for name, v in entity.__dict__.items() if (v or v == 0) and name != "kind"}
        return _canonical_entity(entity, values, same=True), dict.fromkeys(values, _shared((hits[0].provider,))), {}
    chosen: dict[str, Any] = {}
    provenance: Provenance = {}
    conflicts: Conflicts = {}
    per_field = _per_provider([(hit.provider, hit.entity.__dict__) for hit in hits])
    for name in type(entity).model_fields:
        seen = per_field.get(name) if name != "kind" else None
        if seen is None:
            continue
        others = iter(seen.items())
        first, best = next(others)
        chosen[name] = best
        agree = [first]
        key = _MISSING
        for provider, value in others:
            if value != best:
                key = _comparable(name, best) if key is _MISSING else key
                if _comparable(name, value) != key:
                    conflicts.setdefault(name, {})[provider] = _text(value)
                    continue
            agree.append(provider)
        provenance[name] = _shared(tuple(agree))
    return _canonical_entity(entity, chosen, same=False), provenance, conflicts


def _canonical_entity(entity: Person | Company, chosen: dict[str, Any], *, same: bool) -> Person | Company:
    """The consolidated entity, identity fields in normalized form (``entity`` itself if unchanged)."""
    for name, normalize in _CANONICAL.items():
        value = chosen.get(name)
        if isinstance(value, str) and (canonical := normalize(value)) and canonical != value:
            chosen[name], same = canonical, False
    # values of validated entities (and normalized strings): no need to validate them again
    return entity if same else type(entity).trusted(**chosen)


def _hit_order(hit: Hit) -> tuple[int, str, float, str, str]:
    return hit.rank, hit.provider, -hit.retrieved_at.timestamp(), hit.provider_record_id, hit.job_id or ""


def _record_order(record: MergedRecord) -> tuple[int, int, str]:
    return -record.consensus, record.best_rank, record.record_id


# -- the resolver ------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Cluster:
    members: tuple[int, ...]  # sorted hit indexes
    record: MergedRecord


class Resolver:
    """Incremental entity resolution: ``add`` hits as they arrive, read ``records()`` at any time.

    Keeps a graph of links between hits (shared exact keys and fuzzy-name links, found through
    blocking indexes) whose connected groups are tracked with union-find; a hit that links two groups
    joins them. Each ``add`` re-clusters only the groups its hits touched, from scratch and in a
    canonical order, so adding hits one at a time, in any order, gives the same records as adding them
    all at once. People and companies are never merged with each other. One corner is order-dependent:
    when conflicting keys keep two keyless namesakes apart and both would get the same ``name:`` id,
    the one built second gets ``#<provider>:<record id>`` appended.

    Cost: about 45 µs of CPU per hit at 10,000 hits and 70 µs at 100,000 (issue 20's disagreement rules
    added about 10 % at 100,000; see :mod:`aggregator.bench.merging`); memory: the hits plus a few small
    tuples each.
    """

    def __init__(self, mode: Mode | None = None) -> None:
        self.mode = mode
        self._hits: list[Hit] = []
        self._feats: list[Features] = []
        self._exact: dict[str, int] = {}  # exact key -> first hit that had it
        self._index = CandidateIndex()
        self._links: dict[int, list[Link]] = {}  # NAME links, stored at their later hit
        self._parent: list[int] = []  # union-find over link-connected groups
        self._members: dict[int, list[int]] = {}  # group root -> its hits
        self._cluster_of: list[_Cluster | None] = []
        self._records: dict[str, _Cluster] = {}
        self._sorted: tuple[MergedRecord, ...] | None = None
        self.removed: tuple[str, ...] = ()
        """Record ids that the last ``add`` superseded (their hits now live in other records)."""

    def __len__(self) -> int:
        return len(self._hits)

    def add(self, hits: Iterable[Hit]) -> tuple[MergedRecord, ...]:
        """Resolve ``hits`` against everything seen so far; return the records created or changed.

        The returned records are in record order (consensus, best rank, record id); records they
        replace under another id are listed in :attr:`removed`.
        """
        new = [self._link(hit) for hit in hits]
        changed: list[MergedRecord] = []
        removed: list[str] = []
        for root in dict.fromkeys(self._find(i) for i in new):
            changed += self._recluster(root, removed)
        current = {r.record_id for r in changed}
        self.removed = tuple(sorted(set(removed) - current))
        if changed or removed:
            self._sorted = None
        return tuple(sorted(changed, key=_record_order))

    @property
    def record_count(self) -> int:
        """How many records there are now (without sorting them, unlike ``len(records())``)."""
        return len(self._records)

    def has_exactly(self, hits: Sequence[Hit]) -> bool:
        """Whether ``hits`` are exactly the hits added so far (the same objects, in any order).

        Then ``records()`` is what :func:`merge_hits` would compute from ``hits`` (clustering does not
        depend on the order hits arrive in), so a caller holding this resolver need not merge again.
        """
        return len(hits) == len(self._hits) and {id(h) for h in hits} == {id(h) for h in self._hits}

    def records(self, max_results: int | None = None) -> tuple[MergedRecord, ...]:
        """Every current record: consensus desc, best rank, record id; the first ``max_results``."""
        if self._sorted is None:
            self._sorted = tuple(sorted((c.record for c in self._records.values()), key=_record_order))
        return self._sorted[:max_results] if max_results else self._sorted

    # -- linking ------------------------------------------------------------------------------
    def _find(self, i: int) -> int:
        parent = self._parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def _union(self, i: int, j: int) -> None:
        ri, rj = self._find(i), self._find(j)
        if ri == rj:
            return
        if len(self._members[ri]) < len(self._members[rj]):
            ri, rj = rj, ri
        self._parent[rj] = ri
        self._members[ri] += self._members.pop(rj)

    def _link(self, hit: Hit) -> int:
        i = len(self._hits)
        f = features(hit)
        self._hits.append(hit)
        self._feats.append(f)
        self._parent.append(i)
        self._members[i] = [i]
        self._cluster_of.append(None)
        for key in f.exact:
            if key:
                self._union(i, self._exact.setdefault(key, i))
        mine: dict[str, set[str]] | None = None
        for j in sorted(self._index.candidates(f)):
            other = self._feats[j]
            score = name_score(other, f)
            if not score:
                continue
            mine = mine if mine is not None else exclusive_keys(f)
            if not conflicting(exclusive_keys(other), mine, link_tier(score)):
                self._links.setdefault(i, []).append((score, j, i))
                self._union(i, j)
        self._index.add(i, f)
        return i

    # -- clustering ---------------------------------------------------------------------------
    def _recluster(self, root: int, removed: list[str]) -> list[MergedRecord]:
        members = self._members[root]
        if len(members) == 1:  # a hit with no link yet: its own record
            built = self._cluster_of[root] = _Cluster((root,), self._build(members))
            self._records[built.record.record_id] = built
            return [built.record]
        links = [link for m in members for link in self._links.get(m, ())]
        old = {id(c): c for m in members if (c := self._cluster_of[m]) is not None}
        kept = {c.members: c for c in old.values()}
        fresh: list[list[int]] = []
        for group in cluster(members, self._feats, links):
            if kept.pop(tuple(sorted(group)), None) is None:
                fresh.append(group)
        for gone in kept.values():  # clusters that did not survive unchanged
            removed.append(gone.record.record_id)
            if self._records.get(gone.record.record_id) is gone:
                del self._records[gone.record.record_id]
        out = []
        for group in fresh:
            built = _Cluster(tuple(sorted(group)), self._build(group))
            for m in group:
                self._cluster_of[m] = built
            self._records[built.record.record_id] = built
            out.append(built.record)
        return out

    def _build(self, group: Sequence[int]) -> MergedRecord:
        order = sorted(group, key=lambda m: _hit_order(self._hits[m])) if len(group) > 1 else group
        hits = tuple(self._hits[m] for m in order)
        best = hits[0]
        record_id = identity_key([self._feats[m] for m in order]) or f"{best.provider}:{best.provider_record_id}"
        if record_id in self._records:  # only when a conflict kept two namesakes apart
            record_id = f"{record_id}#{best.provider}:{best.provider_record_id}"
        entity, provenance, conflicts = _consolidate(hits)
        providers = tuple(dict.fromkeys(h.provider for h in hits))
        # every part is built here from validated hits: skip re-validating (and copying) them
        return MergedRecord.model_construct(
            record_id=record_id, entity=entity, hits=hits, providers=providers, field_provenance=provenance,
            conflicts=conflicts, consensus=len(providers), best_rank=best.rank)


def merge_hits(hits: Iterable[Hit], mode: Mode, max_results: int | None = None) -> tuple[MergedRecord, ...]:
    """Group ``hits`` into merged records, most providers and best rank first (see the module doc).

    Hits without any identity key stay records of their own (keyed ``<provider>:<record id>``).
    """
    resolver = Resolver(mode)
    resolver.add(hits)
    return resolver.records(max_results)
