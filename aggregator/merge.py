"""Entity resolution across providers: group hits that describe the same entity.

This first version resolves on exact normalized keys, strongest first:

- people: LinkedIn profile URL (scheme, ``www.``/country subdomain, query, trailing slash and
  sub-paths removed; slug lower-cased) -> email -> full name + company name;
- companies: registered domain (``www.`` and scheme stripped) -> LinkedIn company URL -> name +
  country.

A :class:`~aggregator.models.MergedRecord` keeps every hit, the consolidated entity (for each
field, the value of the best-ranked hit that has one), which providers supplied each chosen value
(``field_provenance``) and the differing values (``conflicts``). Fuzzy name matching comes with
the multi-provider issue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import urlsplit

from aggregator.models import Company, Hit, MergedRecord, Mode, Person

__all__ = ["merge_hits", "normalize_domain", "normalize_linkedin_url", "record_key"]

_LINKEDIN_PATH = re.compile(r"^/(in|company|school)/([^/?#]+)", re.IGNORECASE)
_SPACES = re.compile(r"\s+")


def normalize_linkedin_url(value: str | None) -> str | None:
    """``http://uk.linkedin.com/in/Jane-Doe/details?x=1`` -> ``https://www.linkedin.com/in/jane-doe``.

    Returns None for anything that is not a LinkedIn profile/company/school URL.
    """
    if not value:
        return None
    text = value.strip()
    if "://" not in text:
        text = "https://" + text
    parts = urlsplit(text)
    host = (parts.hostname or "").lower()
    if not (host == "linkedin.com" or host.endswith(".linkedin.com")):
        return None
    match = _LINKEDIN_PATH.match(parts.path)
    if not match:
        return None
    return f"https://www.linkedin.com/{match.group(1).lower()}/{match.group(2).lower()}"


def normalize_domain(value: str | None) -> str | None:
    """``https://www.Acme.com/about`` -> ``acme.com``; None when there is no host."""
    if not value:
        return None
    text = value.strip().lower()
    if "://" not in text:
        text = "https://" + text
    host = urlsplit(text).hostname or ""
    host = host.removeprefix("www.")
    return host or None


def _norm_text(value: str | None) -> str | None:
    return _SPACES.sub(" ", value.strip().lower()) if value and value.strip() else None


def record_key(entity: Person | Company) -> str | None:
    """The strongest identity key of an entity, or None when it has none."""
    if isinstance(entity, Person):
        url = normalize_linkedin_url(entity.linkedin_url)
        if url:
            return url
        if entity.email:
            return "email:" + entity.email.strip().lower()
        name, company = _norm_text(entity.full_name), _norm_text(entity.company_name)
        return f"name:{name}|{company}" if name and company else None
    domain = normalize_domain(entity.domain or entity.website)
    if domain:
        return "domain:" + domain
    url = normalize_linkedin_url(entity.linkedin_url)
    if url:
        return url
    name = _norm_text(entity.name)
    return f"name:{name}|{(entity.hq_country_iso2 or '').lower()}" if name else None


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == ()


Provenance = dict[str, tuple[str, ...]]
Conflicts = dict[str, dict[str, str]]


def _consolidate(hits: Sequence[Hit]) -> tuple[Person | Company, Provenance, Conflicts]:
    first = hits[0].entity
    chosen: dict[str, Any] = {}
    provenance: Provenance = {}
    conflicts: Conflicts = {}
    for name in type(first).model_fields:
        if name == "kind":
            continue
        values = [(h.provider, getattr(h.entity, name)) for h in hits]
        values = [(p, v) for p, v in values if not _is_empty(v)]
        if not values:
            continue
        best = values[0][1]
        chosen[name] = best
        provenance[name] = tuple(dict.fromkeys(p for p, v in values if v == best))
        differing = {p: str(v) for p, v in values if v != best}
        if differing:
            conflicts[name] = differing
    return type(first)(**chosen), provenance, conflicts


def merge_hits(hits: Iterable[Hit], mode: Mode, max_results: int | None = None) -> tuple[MergedRecord, ...]:
    """Group ``hits`` into merged records, most providers and best rank first.

    Hits without any identity key stay records of their own (keyed by provider and record id).
    """
    groups: dict[str, list[Hit]] = {}
    for hit in hits:
        key = record_key(hit.entity) or f"{hit.provider}:{hit.provider_record_id}"
        groups.setdefault(key, []).append(hit)
    records = []
    for key, group in groups.items():
        # best rank first; within a provider and rank, the newest read wins (a full profile over
        # the partial one read earlier)
        group.sort(key=lambda h: (h.rank, h.provider, -h.retrieved_at.timestamp()))
        entity, provenance, conflicts = _consolidate(group)
        providers = tuple(dict.fromkeys(h.provider for h in group))
        records.append(MergedRecord(
            record_id=key, entity=entity, hits=tuple(group), providers=providers,
            field_provenance=provenance, conflicts=conflicts, consensus=len(providers),
            best_rank=group[0].rank,
        ))
    records.sort(key=lambda r: (-r.consensus, r.best_rank, r.record_id))
    return tuple(records[:max_results] if max_results else records)
