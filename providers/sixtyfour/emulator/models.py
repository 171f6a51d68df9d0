"""Settings and request bodies of the Sixtyfour emulator (contract §1.1, §1.4, §2, §4.3).

:class:`EmulatorSettings` holds every tunable of the emulator, each documented with its source:
DOC values are the published contract, INF values are our best guess of the real API made
configurable (override through ``SandboxConfig.settings["sixtyfour"]``). Durations are virtual
seconds.

The request bodies are pydantic models mirroring the FastAPI backend (contract §0): unknown
fields are ignored, schema violations become 422 with a FastAPI-style ``detail`` array
(:mod:`providers.sandbox.fastapi`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "CapabilitiesQuery",
    "DownloadQuery",
    "EmulatorSettings",
    "ExportBody",
    "FieldValuesBody",
    "QueryBody",
    "StartDeepSearchBody",
    "StartFilterSearchBody",
]

Mode = Literal["people", "company"]


@dataclass(frozen=True)
class EmulatorSettings:
    """Tunables of the Sixtyfour emulator (virtual seconds for every ``*_s``)."""

    queue_s: float = 2.0  # INF: time a task stays "queued"
    duration_min_s: float = 30.0  # DOC "typical run time 30-120 s" (contract §1.1)
    duration_max_s: float = 120.0
    failure_rate: float = 0.0  # INF: share of deep searches that end "failed"
    max_concurrent_searches: int = 5  # DOC: 5 in-flight deep searches per org (§1.1)
    legacy_status_only: bool = False  # test hook: /search/status answers 404 (client fallback)
    legacy_status_path_enabled: bool = True  # test hook: /search/deep-search-status exists
    query_rate_limit: int = 200  # DOC: /search/query 200 requests/min per org (§4.3)
    query_window_s: float = 60.0
    general_rate_limit: int = 500  # DOC errors page: 500 requests/min (per API key, 3P; §4.1)
    general_window_s: float = 60.0
    query_max_results: int = 5000  # DOC guide: /search/query max_results 1..5000 (§2.3)
    cursor_ttl_s: float = 1800.0  # DOC: cursor_expires_in_seconds 1800 (§2.3)
    page_latency_s: float = 0.0  # test hook: virtual delay of each /search/query page
    complete_after_polls: int | None = None  # test hook: a deep search completes at its Nth status read
    # (benchmarks: the same request sequence whatever the scheduling lag); None = by the clock only
    download_url_ttl_s: float = 900.0  # DOC: signed URLs expire after 15 minutes (§1.3)
    credits_per_search: float = 0.0  # INF: search pricing is unpublished (§4.4)
    credits_per_row: float = 0.0  # INF: charged for the rows a deep search delivers
    positions_missing_rate: float = 0.05  # DOC quirk: "positions is missing on some profiles"
    wrap_company_list_items: bool = False  # REPO quirk (§3.1): company list items as {"element": X}
    # in served rows; off by default since whether API rows carry the wrapper is UNK (§9)
    # -- filter search (§2) --
    field_values_rate_limit: int = 20  # DOC: /search/filter-field-values 20 requests/min per org
    field_values_window_s: float = 60.0
    capabilities_cache_ttl_s: float = 3600.0  # INF: cache_ttl_seconds (§2.1 example value)
    max_query_depth: int = 8  # INF: FilterSearchLimits values are unpublished (§2.1)
    max_clause_count: int = 100  # INF
    max_terms_per_clause: int = 500  # INF
    max_sort_clauses: int = 3  # INF
    max_string_length: int = 1000  # INF
    match_operator: str = "or"  # INF (§2.5): $match/match token semantics, OpenSearch default
    total_available_cap: int = 50000  # DOC: total_available is capped at 50 000 (§2.3)
    # -- export (§1.4) --
    export_queue_s: float = 1.0  # INF: time an export stays "queued"
    export_duration_s: float = 20.0  # INF: export run time (a Temporal workflow, DOC)
    export_max_results: int = 5000  # DOC SK-search: "Max 5000 results per export"
    export_cap_before_exclusions: bool = False  # INF: False = remove excluded rows, then cap

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, Any]) -> EmulatorSettings:
        """Defaults with ``overrides`` applied; unknown names raise ValueError."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise ValueError(f"unknown sixtyfour emulator settings: {unknown}")
        settings = cls(**dict(overrides))
        if not 0 < settings.duration_min_s <= settings.duration_max_s:
            raise ValueError("need 0 < duration_min_s <= duration_max_s")
        if settings.export_duration_s <= 0:
            raise ValueError("export_duration_s must be > 0")
        if settings.complete_after_polls is not None and settings.complete_after_polls < 1:
            raise ValueError("complete_after_polls must be >= 1 (or None)")
        if settings.match_operator not in ("and", "or"):
            raise ValueError("match_operator must be 'and' or 'or'")
        return settings


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore")


class StartDeepSearchBody(_Body):
    """``POST /search/start-deep-search`` (``StartAgenticSearchRequest``, contract §1.1)."""

    query: str
    mode: Mode = "people"
    max_results: int = Field(1000, ge=1)
    search_id: str | None = None
    output_mode: Literal["csv", "query_only"] = "csv"
    exclude_public_ids: list[str] | None = Field(None, max_length=1000)
    exclude_entity_ids: list[str] | None = Field(None, max_length=1000)
    exclude_list_ids: list[str] | None = Field(None, max_length=10)


class QueryBody(_Body):
    """First request of ``POST /search/query`` (``SearchQueryRequest``, contract §2.3).

    ``max_results`` is range-checked by the handler (400, as the guide says), ``page_size`` by
    the schema (422, as FastAPI would; contract §2.3 contradiction 7).
    """

    search_id: str | None = None
    simple_filters: dict[str, Any] | None = None
    filters: dict[str, Any] | None = None
    parsed_query: dict[str, Any] | None = None
    query: str | None = None
    mode: Mode | None = None
    page_size: int = Field(10, ge=1, le=100)
    max_results: int = 1000
    exclude_public_ids: list[str] | None = Field(None, max_length=1000)
    exclude_entity_ids: list[str] | None = Field(None, max_length=1000)
    exclude_list_ids: list[str] | None = Field(None, max_length=10)
    output_shape: Any = None  # undocumented ("raw"/"workflow"): accepted and ignored

    def sources(self) -> list[str]:
        """Names of the query sources present (exactly one is allowed)."""
        names = ("search_id", "simple_filters", "filters", "parsed_query", "query")
        return [name for name in names if getattr(self, name) is not None]


class StartFilterSearchBody(_Body):
    """First request of the legacy ``POST /search/start-filter-search`` (contract §2.4).

    The OpenAPI body: ``filters``, ``simple_filters``, ``mode`` (default ``company``),
    ``max_results`` (1000; 1..5000 checked by the handler, 400), ``page_size`` (1..100, 422),
    ``save_json`` and ``cursor`` (a continuation is cursor-only, as on ``/search/query``).
    """

    simple_filters: dict[str, Any] | None = None
    filters: dict[str, Any] | None = None
    mode: Mode = "company"
    max_results: int = 1000
    page_size: int = Field(10, ge=1, le=100)
    save_json: bool = False
    output_shape: Any = None  # undocumented, as on /search/query: accepted and ignored

    def as_query(self) -> QueryBody:
        """The equivalent ``/search/query`` first request (unset fields stay unset)."""
        fields = self.model_dump(exclude_unset=True, exclude={"save_json"})
        return QueryBody.model_validate({**fields, "mode": self.mode})


class ExportBody(_Body):
    """``POST /search/export`` (``SaveSearchRequest``, contract §1.4).

    ``max_results`` is range-checked by the handler (400), like ``/search/query``'s.
    """

    search_id: str | None = None
    parsed_query: dict[str, Any] | None = None
    mode: Mode | None = None
    max_results: int = 1000
    exclude_public_ids: list[str] | None = Field(None, max_length=1000)
    exclude_entity_ids: list[str] | None = Field(None, max_length=1000)
    exclude_list_ids: list[str] | None = Field(None, max_length=10)


class FieldValuesBody(_Body):
    """``POST /search/filter-field-values`` (``FilterFieldValuesRequest``, contract §2.2).

    ``mode`` is a plain string so an unknown one is the documented 400 ``unsupported_mode``;
    the scope objects are checked by the handler (400 ``invalid_scoped_filters``).
    """

    mode: str = "company"
    field: str
    top_k: int = Field(25, ge=1, le=100)
    simple_filters: Any = None
    filters: Any = None


class CapabilitiesQuery(_Body):
    """Query string of ``GET /search/filter-capabilities`` (contract §2.1)."""

    mode: str = "company"
    refresh: bool = False


class DownloadQuery(_Body):
    """Query string of ``GET /search/download``."""

    resource_handle_id: str
