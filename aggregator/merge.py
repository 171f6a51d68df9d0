"""Entity resolution across providers: one :class:`~aggregator.models.MergedRecord` per real entity.

Tiers, strongest first (normalizers in :mod:`aggregator.identity`, matching in
:mod:`aggregator.resolution`):

- **people**: LinkedIn profile URL (scheme, ``www.``/country subdomain, query, trailing slash and
  sub-paths removed; slug lower-cased) -> email (case-insensitive) -> the same provider record read
  twice in one job -> fuzzy full name + employer.
- **companies**: registered domain (Public Suffix List via tldextract, offline:
  ``www.acme.co.uk/about`` -> ``acme.co.uk``; ``domain``, else ``website``) -> LinkedIn company URL
  -> the same provider record -> fuzzy base name (legal forms, punctuation, case and accents removed)
  + country (ISO2, names mapped).

Hits holding *conflicting* strong keys never merge through a weaker tier: an email, a re-read or a
name match cannot join two different LinkedIn profiles, two different registered domains or two
different company LinkedIn pages; a name match also cannot join two emails at one email domain
(``jane.doe@`` vs ``jane.doe2@acme.com``), two employer domains or two countries. Clustering is
order-independent: the result is a function of the set of hits (:func:`~aggregator.resolution.cluster`).

Fuzzy thresholds (rapidfuzz, 0-100), measured on the sandbox world (seed 7: 4,000 companies,
33,655 people; every company name unique, names built from shared roots, so near-collisions abound):

- **people**: ``max(ratio, token_sort_ratio)`` of normalized names (middle initials, honorifics and
  post-nominals dropped) >= **90** (``PERSON_NAME_THRESHOLD``), *and* the employer matches (same
  domain, else same company LinkedIn URL, else base names with ``ratio`` >= 92). Distinct colleagues
  scoring >= 90 at one company: 6 pairs of ~140k (2 are exact namesakes no threshold can separate;
  at 92: 5, at 94: 3); one-character typos kept: 99% at 90, 87% at 92. 90 keeps typos in names of
  10+ characters at the cost of ~4 avoidable false pairs in the whole world.
- **companies**: ``ratio`` of base names >= **92** (``COMPANY_NAME_THRESHOLD``) with the same
  country and no contradicting HQ city (when both name one, neither a prefix of the other); or
  identical base names with the same country or a country missing on one side. ``ratio`` rather than
  ``token_sort_ratio``: word order matters in brand names (token sort scores "Grove Mint" vs "Mint
  Grove" 100) and spacing variants ("BridgeCobalt") would fail to sort alike. Distinct same-country
  companies scoring >= t: 56 at 88, 32 at 90, 21 at 92, 12 at 95; the city check cuts 21 to 2 at 92.
  Spacing variants kept: 100% at 92; one-character typos: 91% at 90, 73% at 92. Company names come
  from registries and websites, so spacing/punctuation/legal-form variants are common and typos rare:
  92 is the precision-first choice.

On the sandbox's own provider output every true duplicate carries an exact key (Sixtyfour and Orbit
both expose LinkedIn profiles; Sixtyfour and Extruct both expose the domain), so precision and recall
are 1.0 for both demo queries; with the strong keys stripped, the name tier alone still scores
precision 1.0 and recall 1.0 on both (``tests/sandbox/test_resolution_quality.py``).

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
    Tier,
    cluster,
    conflicting,
    entity_features,
    exclusive_keys,
    features,
    identity_key,
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


def _shared(providers: tuple[str, ...]) -> tuple[str, ...]:
    return _SHARED.setdefault(providers, providers) if len(_SHARED) < 4096 else providers


def _present(value: Any) -> bool:
    return bool(value) or value == 0  # None, "" and () are missing; 0 is a value


def _consolidate(hits: Sequence[Hit]) -> tuple[Person | Company, Provenance, Conflicts]:
    """Each field from the best hit that has it; who agrees (provenance) and who differs (conflicts).

    Each provider counts once per field, with its best hit that has the field.
    """
    entity = hits[0].entity
    if len(hits) == 1:
        values = {name: value for name, value in entity.__dict__.items() if name != "kind" and _present(value)}
        provenance = dict.fromkeys(values, _shared((hits[0].provider,)))
        return _canonical_entity(entity, values, same=True), provenance, {}
    chosen: dict[str, Any] = {}
    provenance = {}
    conflicts: Conflicts = {}
    sources = [(hit.provider, hit.entity.__dict__) for hit in hits]
    for name in type(entity).model_fields:
        agree: list[str] = []
        done: list[str] = []
        best: Any = None
        key: Any = None
        for provider, fields in sources:
            value = fields[name]
            if provider in done or not _present(value) or name == "kind":
                continue
            done.append(provider)
            if not agree:
                best, key = value, _comparable(name, value)
                agree.append(provider)
            elif value == best or _comparable(name, value) == key:
                agree.append(provider)
            else:
                conflicts.setdefault(name, {})[provider] = _text(value)
        if agree:
            chosen[name] = best
            provenance[name] = _shared(tuple(agree))
    return _canonical_entity(entity, chosen, same=False), provenance, conflicts


def _canonical_entity(entity: Person | Company, chosen: dict[str, Any], *, same: bool) -> Person | Company:
    """The consolidated entity, identity fields in normalized form (``entity`` itself if unchanged)."""
    for name, normalize in _CANONICAL.items():
        value = chosen.get(name)
        if isinstance(value, str) and (canonical := normalize(value)) and canonical != value:
            chosen[name], same = canonical, False
    return entity if same else type(entity)(**chosen)


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
    blocking indexes) whose connected groups are tracked with union-find. Each ``add`` re-clusters only
    the groups its hits touched, so adding hits one at a time, in any order, gives the same records as
    adding them all at once. People and companies are never merged with each other.
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
            if not conflicting(exclusive_keys(other), mine, Tier.NAME):
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
        order = sorted(group, key=lambda m: _hit_order(self._hits[m]))
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
