"""Field catalogue, capabilities document and top values of the emulator (contract §2.1, §2.2).

The catalogue describes the documents the emulator serves (:mod:`.rows`): company
documents with the documented snake_case fields (§3.1) and people documents with LinkedIn-style
camelCase fields (§3.2). Field types follow an OpenSearch mapping (INF; only the shape is DOC):

- ``text`` fields with a ``.keyword`` subfield sort and aggregate through it
  (``sort_field``/``aggregation_field`` ``"company_name.keyword"``); text without one
  (``description``, ``headline``, ``company_updates.description``) neither sorts nor has top
  values.
- ``keyword``/``long``/``double``/``date``/``boolean`` fields sort and aggregate on themselves;
  numbers and dates are rangeable.
- fields under a nested path (``funding_rounds``, ``company_updates``, ``company_locations_full``,
  ``employees_count_by_country``, ``currentCompanies``) carry
  ``nested_path``, do not sort (INF: a nested sort clause would be needed) and are counted per
  document in top values; their snippets are wrapped in ``nested`` (DOC). ``funding_rounds.name``
  is a keyword field (per our brief) that aggregates as ``funding_rounds.name.keyword``, the name
  the docs' snippet uses.

Top values (§2.2): document counts per distinct value in the scope, ordered by count
descending then value; a ``null`` bucket counts documents without a value (its snippet is a
``bool.must_not exists`` clause, INF); ``percent_of_scope`` is rounded to 6 decimals (DOC).
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Sequence
from typing import Any

import orjson

from providers.sixtyfour.emulator.engine import Doc, FieldSpec, Limits, Schema, values_at
from providers.sixtyfour.emulator.filters import SIMPLE_OPERATORS

__all__ = ["SCHEMAS", "capabilities_doc", "filter_snippet", "top_values"]


def _field(
    name: str, kind: str, *, nested: str | None = None, keyword: bool = False,
    sortable: bool | None = None, related: tuple[str, ...] = (), preferred: bool = False,
    aggregation: str | None = None,
) -> FieldSpec:
    """A catalogue entry with the defaults of its mapping type (see the module docstring)."""
    if kind == "nested":
        return FieldSpec(name, kind, nested_path=name)
    agg = aggregation or (f"{name}.keyword" if keyword else None if kind == "text" else name)
    default_sortable = nested is None and agg is not None
    is_sortable = default_sortable if sortable is None else sortable
    return FieldSpec(
        field=name, field_type=kind, nested_path=nested, sortable=is_sortable,
        rangeable=kind in ("long", "double", "date"), supports_top_values=agg is not None,
        sort_field=f"{name}.keyword" if kind == "text" and is_sortable else None,
        aggregation_field=agg, related_fields=related, preferred_for_exact_match=preferred,
    )


_FR, _CU = "funding_rounds", "company_updates"
_LOC, _BYC = "company_locations_full", "employees_count_by_country"
COMPANY_FIELDS = (
    _field("canonical_linkedin_url", "keyword", related=("linkedin_url",)),
    _field("categories_and_keywords", "text", keyword=True, sortable=False),
    _field("company_emails", "keyword", sortable=False),
    _field(_LOC, "nested"),
    _field(f"{_LOC}.city", "keyword", nested=_LOC, related=("hq_city",)),
    _field(f"{_LOC}.is_primary", "boolean", nested=_LOC),
    _field(f"{_LOC}.location_address", "text", nested=_LOC),
    _field(f"{_LOC}.state", "keyword", nested=_LOC, related=("hq_state",)),
    _field("company_name_alias", "text", keyword=True, sortable=False, related=("company_name",)),
    _field("company_phone_numbers", "keyword", sortable=False),
    _field("company_legal_name", "text", keyword=True, related=("company_name",)),
    _field("company_name", "text", keyword=True, related=("company_legal_name",)),
    _field(_CU, "nested"),
    _field(f"{_CU}.date", "date", nested=_CU),
    _field(f"{_CU}.description", "text", nested=_CU),
    _field("description", "text"),
    _field("description_enriched", "text", related=("description",)),
    _field("employees_count", "long"),
    _field(_BYC, "nested"),
    _field(f"{_BYC}.country", "keyword", nested=_BYC),
    _field(f"{_BYC}.employee_count", "long", nested=_BYC),
    _field("employees_count_change.change_yearly_percentage", "double"),
    _field("employees_count_inferred", "long", related=("employees_count",)),
    _field("founded_year", "long"),
    _field(_FR, "nested"),
    _field(f"{_FR}.amount_raised", "long", nested=_FR),
    _field(f"{_FR}.announced_date", "date", nested=_FR),
    _field(f"{_FR}.name", "keyword", nested=_FR, aggregation=f"{_FR}.name.keyword",
           related=("last_funding_round.type",)),
    _field("hq_city", "keyword"),
    _field("hq_country", "keyword"),
    _field("hq_country_iso2", "keyword", preferred=True),
    _field("hq_full_address", "text"),
    _field("hq_location", "text", keyword=True),
    _field("hq_state", "keyword"),
    _field("industry", "keyword"),
    _field("is_public", "boolean", related=("ownership_status",)),
    _field("last_funding_round.amount_raised", "long",
           related=("last_funding_round_amount_raised",)),
    _field("last_funding_round.announced_date", "date"),
    _field("last_funding_round.type", "keyword", related=(f"{_FR}.name",)),
    _field("last_funding_round_amount_raised", "long",
           related=("last_funding_round.amount_raised",), preferred=True),
    _field("linkedin_url", "keyword", related=("source_id",)),
    _field("ownership_status", "keyword", related=("is_public",)),
    _field("size_range", "keyword", related=("employees_count",)),
    _field("source_id", "long", related=("linkedin_url",), preferred=True),
    _field("website", "keyword", related=("website_domain",)),
    _field("website_domain", "keyword", related=("website",), preferred=True),
)
_CC = "currentCompanies"
PEOPLE_FIELDS = (
    _field(_CC, "nested"),
    _field(f"{_CC}.company.companyId", "long", nested=_CC, preferred=True),
    _field(f"{_CC}.company.name", "text", nested=_CC, keyword=True),
    _field(f"{_CC}.company.url", "keyword", nested=_CC),
    _field(f"{_CC}.positions.title", "text", nested=_CC, keyword=True),
    _field("fullName", "text", keyword=True),
    _field("headline", "text"),
    _field("jobFunction", "keyword"),
    _field("locationName", "text", keyword=True),
    _field("publicId", "keyword", preferred=True),
    _field("seniority", "keyword"),
)
SCHEMAS = {"company": Schema("company", "companies", COMPANY_FIELDS),
           "people": Schema("people", "people", PEOPLE_FIELDS)}
"""Mode -> its :class:`Schema` (``index_name`` "companies" / "people", INF)."""


def mapping_hash(schema: Schema) -> str:
    """A stable hash of the field catalogue (changes only when the mapping does)."""
    fields = [spec.to_doc() for spec in schema.fields.values()]
    return hashlib.sha256(orjson.dumps(fields, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


def capabilities_doc(
    schema: Schema, limits: Limits, *, cache_ttl_s: float, generated_at_ms: int
) -> dict[str, Any]:
    """The ``FilterSearchCapabilitiesResponse`` of ``schema`` (§2.1)."""
    return {
        "mode": schema.mode,
        "index_name": schema.index_name,
        "fields": [spec.to_doc() for spec in schema.fields.values()],
        "nested_paths": list(schema.nested_paths),
        "simple_query_operators": list(SIMPLE_OPERATORS),
        "limits": limits.to_doc(),
        "cache_ttl_seconds": int(cache_ttl_s),
        "generated_at_epoch_ms": generated_at_ms,
        "mapping_hash": mapping_hash(schema),
    }


def filter_snippet(spec: FieldSpec, value: Any) -> dict[str, Any]:
    """The exact-match DSL clause for one bucket (``nested``-wrapped for nested fields, DOC)."""
    field = spec.aggregation_field or spec.field
    if value is None:
        clause: dict[str, Any] = {"exists": {"field": spec.field}}
    else:
        clause = {"term": {field: value}}
    if spec.nested_path:
        clause = {"nested": {"path": spec.nested_path, "query": clause}}
    return {"bool": {"must_not": [clause]}} if value is None else clause


def top_values(docs: Sequence[Doc], spec: FieldSpec, top_k: int) -> list[dict[str, Any]]:
    """The ``values[]`` of ``/search/filter-field-values`` over the scoped ``docs``."""
    counts: Counter[Any] = Counter()
    missing = 0
    for doc in docs:
        found = values_at(doc, spec.field)
        if found:
            counts.update(set(found))
        else:
            missing += 1
    buckets: list[tuple[Any, int]] = list(counts.items())
    if missing:
        buckets.append((None, missing))
    buckets.sort(key=lambda b: (-b[1], b[0] is None, b[0] if b[0] is not None else 0))
    total = len(docs)
    return [
        {"value": value, "count": count,
         "percent_of_scope": round(count / total, 6) if total else 0.0,
         "filter_snippet": filter_snippet(spec, value)}
        for value, count in buckets[:top_k]
    ]
