"""Sixtyfour's wire format (private) and the pure functions that normalize it.

Follows contract ``sixtyfour.md``: §1.1 start response, §1.2 ``AgenticSearchStatusResponse``,
§1.3 download, §2.3 ``FilterSearchResponse``, §3.1 company documents (snake_case), §3.2 people
documents (LinkedIn-style camelCase: ``publicId``, ``fullName``, ``headline``, ``locationName``,
``seniority``, ``jobFunction``, ``currentCompanies``), §3.3 the CSV columns (INF).

Wire models ignore unknown fields. Any payload that does not fit raises
:class:`~aggregator.errors.ProviderProtocolError` naming the endpoint (:func:`parse`).
List items wrapped as ``{"element": X}`` (a raw-index quirk, §3.1) are unwrapped first.
"""

from __future__ import annotations

import csv
import io
import math
from datetime import datetime
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from aggregator.contract import parse_payload
from aggregator.errors import ProviderProtocolError
from aggregator.models import Company, Hit, JsonObject, Mode, Person

__all__ = [
    "PROVIDER",
    "DownloadResponse",
    "QueryResponse",
    "QueryRow",
    "StartResponse",
    "StatusResponse",
    "company_from_csv",
    "company_from_source",
    "hit_from_csv",
    "hit_from_row",
    "parse",
    "person_from_csv",
    "person_from_source",
    "rows_from_csv",
    "unwrap_elements",
]

PROVIDER = "sixtyfour"
M = TypeVar("M", bound=BaseModel)
MAX_INT_DIGITS = 30  # a count or amount longer than this is not a number we keep
EXTRA_CELLS = "_extra_cells"  # a CSV row's cells beyond its header


class _Wire(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StartResponse(_Wire):
    task_id: str = Field(min_length=1)
    status: str
    message: str | None = None


class StatusResponse(_Wire):
    task_id: str
    status: str
    start_time: str | None = None
    current_phase: int | None = None
    progress_message: str | None = None
    close_time: str | None = None
    resource_handle_id: str | None = None
    total_results: int | None = None
    exported_count: int | None = None
    error: str | None = None
    search_id: str | None = None
    iterations: list[dict[str, Any]] | None = None


class QueryRow(_Wire):
    raw_document_id: str | int | None = None
    raw_source: JsonObject = Field(default_factory=dict)  # kept as received: it becomes the hit's raw


class QueryResponse(_Wire):
    search_id: str | None = None
    next_cursor: str | None = None
    cursor_expires_in_seconds: float | None = None
    has_more: bool = False
    page_size: int | None = None
    page_count: int | None = None
    page_number: int | None = None
    total_results: int
    remaining_results: int | None = None
    total_pages: int | None = None
    results: list[QueryRow] = Field(default_factory=list)


class DownloadResponse(_Wire):
    url: str = Field(min_length=1)
    bucket: str | None = None
    path: str | None = None


def parse(model: type[M], data: Any, endpoint: str) -> M:
    """Validate ``data`` as ``model``; a mismatch becomes a typed protocol error."""
    return parse_payload(model, data, provider=PROVIDER, endpoint=endpoint)


def unwrap_elements(value: Any) -> Any:
    """Recursively replace ``{"element": X}`` wrappers by ``X`` (contract §3.1 quirk)."""
    if isinstance(value, dict):
        if len(value) == 1 and "element" in value:
            return unwrap_elements(value["element"])
        return {k: unwrap_elements(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap_elements(v) for v in value]
    return value


def _peel(value: Any) -> Any:
    """``value`` without the ``{"element": X}`` wrappers around it (those inside it stay).

    The normalizers read a handful of fields of a large document (a company row is ~30 kB) and peel
    each value they read, at every step: that gives the values :func:`unwrap_elements` of the whole
    document would, without copying it.
    """
    while type(value) is dict and len(value) == 1 and "element" in value:
        value = value["element"]
    return value


def _str(value: Any) -> str | None:
    """A scalar as stripped text (None when empty); a list or object is not a text value: None."""
    if type(value) is str:
        return value.strip() or None
    value = _peel(value)
    if value is None or isinstance(value, dict | list):
        return None
    text = str(value).strip()
    return text or None


def _dict(value: Any) -> dict[str, Any]:
    value = _peel(value)
    return value if isinstance(value, dict) else {}


def _first_dict(value: Any) -> dict[str, Any]:
    """The first item of a list when it is an object, else ``{}`` (rows come in every shape)."""
    value = _peel(value)
    return _dict(value[0]) if isinstance(value, list) and value else {}


def _linkedin_person_url(public_id: str | None) -> str | None:
    if not public_id:
        return None
    if public_id.startswith("http"):
        return public_id
    return f"https://www.linkedin.com/in/{public_id}"


def _split_name(full: str | None) -> tuple[str | None, str | None]:
    if not full:
        return None, None
    first, _, last = full.partition(" ")
    return first or None, last or None


_PEOPLE_TEXTS = ("headline", "fullName", "seniority", "jobFunction", "locationName", "publicId", "email", "phone")


def person_from_source(source: dict[str, Any]) -> Person:
    """A people ``raw_source`` document (§3.2) as a :class:`Person`; values of the wrong shape are ignored."""
    src = _dict(source)
    headline, full, seniority, function, location, public_id, email, phone = (
        (value.strip() or None) if type(value) is str else None if value is None else _str(value)
        for value in map(src.get, _PEOPLE_TEXTS))
    current = _first_dict(src.get("currentCompanies"))
    company = _dict(current.get("company"))
    title = _str(_first_dict(current.get("positions")).get("title"))
    if title is None and headline and " at " in headline:
        title = headline.split(" at ", 1)[0].strip() or None
    first, last = _split_name(full)
    return Person.trusted(  # every value is text or None by construction
        full_name=full, first_name=first, last_name=last, title=title, headline=headline,
        seniority=seniority, job_function=function,
        company_name=_str(company.get("name")), company_linkedin_url=_str(company.get("url")),
        location=location, linkedin_url=_linkedin_person_url(public_id), email=email, phone=phone,
    )


def _last_round(src: dict[str, Any]) -> tuple[str | None, int | None]:
    last = _dict(src.get("last_funding_round"))
    if last:
        return _str(last.get("type")), _int(last.get("amount_raised"))
    rounds = _peel(src.get("funding_rounds"))
    latest = _dict(rounds[-1]) if isinstance(rounds, list) and rounds else {}
    return _str(latest.get("name")), _int(latest.get("amount_raised"))


def _int(value: Any) -> int | None:
    """A whole number from an int, a float or decimal digits; None for anything else (bools included)."""
    value = _peel(value)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if math.isfinite(value) else None
    if isinstance(value, str) and value.strip().isdecimal() and len(value.strip()) <= MAX_INT_DIGITS:
        return int(value.strip())
    return None


def _strings(value: Any) -> tuple[str, ...]:
    """A list of scalars (or one comma-separated string) as texts; other shapes give ()."""
    value = _peel(value)
    if isinstance(value, str):
        value = value.split(",")
    if not isinstance(value, list):
        return ()
    return tuple(text for text in map(_str, value) if text)


def _primary_office(src: dict[str, Any]) -> dict[str, Any]:
    """The ``company_locations_full`` entry marked ``is_primary`` (the HQ), else ``{}``."""
    offices = _peel(src.get("company_locations_full"))
    if not isinstance(offices, list):
        return {}
    return next((o for o in map(_peel, offices) if isinstance(o, dict) and _peel(o.get("is_primary")) is True), {})


def _first_text(*values: Any) -> str | None:
    """The first value that is text (see :func:`_str`), or the first text item of a list value."""
    for value in values:
        value = _peel(value)
        texts = _strings(value) if isinstance(value, list) else (_str(value),)
        text = next((t for t in texts if t), None)
        if text:
            return text
    return None


def company_from_source(source: dict[str, Any]) -> Company:
    """A company ``raw_source`` document (§3.1) as a :class:`Company` (``{"element": X}`` unwrapped).

    Fallbacks for empty fields: name <- ``company_legal_name`` <- first ``company_name_alias``;
    ``linkedin_url`` is ``canonical_linkedin_url`` (the clean form) or ``linkedin_url``; description
    <- ``description_enriched``; ``employee_count`` <- ``employees_count_inferred`` when the count is
    missing (0 stays 0: a showcase page, §3.1); ``hq_city``/``hq_region`` <- the primary entry of
    ``company_locations_full``. Offices, breakdowns, revenue, emails and phones have no place in
    :class:`Company`; they stay in the hit's ``raw``.
    """
    src = _dict(source)
    stage, amount = _last_round(src)
    primary = _primary_office(src)
    get = src.get
    count = _int(get("employees_count"))
    return Company.trusted(  # every value is text, a tuple of texts, an int or None by construction
        name=_first_text(get("company_name"), get("company_legal_name"), get("company_name_alias")),
        domain=_str(get("website_domain")), website=_str(get("website")),
        linkedin_url=_first_text(get("canonical_linkedin_url"), get("linkedin_url")),
        description=_first_text(get("description"), get("description_enriched")),
        industry=_str(get("industry")),
        categories=_strings(get("categories_and_keywords")), founded_year=_int(get("founded_year")),
        employee_count=count if count is not None else _int(get("employees_count_inferred")),
        employee_range=_str(get("size_range")),
        hq_city=_first_text(get("hq_city"), primary.get("city")),
        hq_region=_first_text(get("hq_state"), primary.get("state")),
        hq_country=_str(get("hq_country")), hq_country_iso2=_str(get("hq_country_iso2")),
        funding_stage=stage, last_funding_amount_usd=amount,
    )


def hit_from_row(row: QueryRow, *, mode: Mode, rank: int, job_id: str | None, retrieved_at: datetime) -> Hit:
    """One ``/search/query`` result row as a :class:`Hit` with provenance."""
    entity: Person | Company = (
        person_from_source(row.raw_source) if mode == "people" else company_from_source(row.raw_source)
    )
    record_id = str(row.raw_document_id) if row.raw_document_id is not None else f"row-{rank}"
    urls = (entity.linkedin_url,) if entity.linkedin_url else ()
    return Hit.trusted(provider=PROVIDER, provider_record_id=record_id, job_id=job_id, rank=rank, entity=entity,
                       source_urls=urls, raw={"raw_document_id": row.raw_document_id, "raw_source": row.raw_source},
                       retrieved_at=retrieved_at)


def person_from_csv(row: dict[str, str]) -> Person:
    """A people CSV row (§3.3, INF columns) as a :class:`Person`."""
    def get(key: str) -> str | None:
        return _str(row.get(key))

    return Person.trusted(
        full_name=get("full_name"), first_name=get("first_name"), last_name=get("last_name"),
        title=get("title"), headline=get("headline"), company_name=get("company_name"),
        company_domain=get("company_domain"), linkedin_url=get("linkedin"), location=get("location"),
        seniority=get("seniority"), job_function=get("job_function"),
    )


def company_from_csv(row: dict[str, str]) -> Company:
    """A company CSV row (§3.3, INF columns) as a :class:`Company`, with the fallbacks of
    :func:`company_from_source` for the columns it has (canonical LinkedIn URL, inferred count)."""
    def get(key: str) -> str | None:
        return _str(row.get(key))

    count = _int(row.get("employees_count"))
    return Company.trusted(
        name=get("company_name"), website=get("website"), domain=get("website_domain"),
        linkedin_url=get("canonical_linkedin_url") or get("linkedin_url"), industry=get("industry"),
        employee_count=count if count is not None else _int(row.get("employees_count_inferred")),
        hq_city=get("hq_city"), hq_region=get("hq_state"),
        hq_country=get("hq_country"), hq_country_iso2=get("hq_country_iso2"),
        founded_year=_int(row.get("founded_year")), description=get("description"),
        funding_stage=get("last_funding_type"), last_funding_amount_usd=_int(row.get("last_funding_amount")),
    )


def rows_from_csv(text: str, endpoint: str) -> list[dict[str, str]]:
    """The rows of a downloaded CSV (§3.3) as ``{column: cell}``.

    Cells beyond the header are joined under ``_extra_cells``; missing cells are ``""``.

    Raises:
        ProviderProtocolError: the text is not CSV the ``csv`` module can read (e.g. a cell over its
            field size limit), naming the row.
    """
    reader = csv.DictReader(io.StringIO(text, newline=""), restkey=EXTRA_CELLS, restval="")
    rows = []
    try:
        for row in reader:
            extra = row.get(EXTRA_CELLS)
            rows.append({**row, EXTRA_CELLS: ",".join(extra)} if isinstance(extra, list) else row)
    except csv.Error as exc:
        raise ProviderProtocolError(f"unreadable CSV at line {reader.line_num}: {exc}", provider=PROVIDER,
                                    endpoint=endpoint) from exc
    return rows


def hit_from_csv(row: dict[str, str], *, mode: Mode, rank: int, job_id: str | None,
                 retrieved_at: datetime) -> Hit:
    """One CSV row as a :class:`Hit`; the record id is the LinkedIn URL or domain.

    ``row`` is a :func:`rows_from_csv` row; a plain ``csv.DictReader`` row works too (its extra cells,
    under the key None, are kept as ``_extra_cells``).
    """
    entity: Person | Company = person_from_csv(row) if mode == "people" else company_from_csv(row)
    if isinstance(entity, Person):
        record_id = entity.linkedin_url or entity.full_name or f"row-{rank}"
    else:
        record_id = entity.domain or entity.name or f"row-{rank}"
    return Hit.trusted(provider=PROVIDER, provider_record_id=record_id, job_id=job_id, rank=rank, entity=entity,
                       source_urls=tuple(u for u in (getattr(entity, "linkedin_url", None),) if u),
                       raw={EXTRA_CELLS if key is None else str(key): value for key, value in row.items()},
                       retrieved_at=retrieved_at)


class CapabilityField(_Wire):
    field: str
    field_type: str = "keyword"
    nested_path: str | None = None
    queryable: bool = True
    sortable: bool = False
    rangeable: bool = False
    supports_top_values: bool = False


class CapabilitiesResponse(_Wire):
    """``GET /search/filter-capabilities`` (§2.1)."""

    mode: str = "company"
    fields: list[CapabilityField]
    nested_paths: list[str] = Field(default_factory=list)
    simple_query_operators: list[str] | None = None
    limits: dict[str, int] = Field(default_factory=dict)


class FieldValueRow(_Wire):
    value: str | int | float | bool | None = None
    count: int = Field(0, ge=0)
    percent_of_scope: float = Field(0.0, ge=0, le=1)
    filter_snippet: dict[str, Any] | None = None


class FieldValuesResponse(_Wire):
    """``POST /search/filter-field-values`` (§2.2)."""

    field: str
    total_scoped_documents: int = Field(ge=0)
    values: list[FieldValueRow] = Field(default_factory=list)
