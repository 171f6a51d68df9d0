"""Sixtyfour filter search: capabilities, field values, validation and the search itself.

Follows contract ``sixtyfour.md`` §2: capabilities are read once per mode (``GET
/search/filter-capabilities``, cached for the adapter's life) and every filter is checked against
them before the paid ``/search/query`` call (:mod:`providers.sixtyfour.filters`). A filter search
is synchronous paging, so its job is *ready* on submit (no status to poll): the first
``/search/query`` page carries the filters and exclusions, the next pages the cursor only.
``filter-field-values`` has its own 20/min bucket (DOC §2.2), declared in the settings.
"""

from __future__ import annotations

from typing import Any

from aggregator.contract import JobRef, ProviderClient
from aggregator.errors import ConfigError
from aggregator.models import FieldValue, FieldValues, FilterCapabilities, FilterField, Mode, SearchRequest
from providers.sixtyfour.filters import DOCUMENTED_OPERATORS, check_dsl_filters, check_simple_filters
from providers.sixtyfour.wire import PROVIDER, CapabilitiesResponse, FieldValuesResponse, parse

__all__ = ["FilterSearchMixin"]

CAPABILITIES = "GET /search/filter-capabilities"
FIELD_VALUES = "POST /search/filter-field-values"


class FilterSearchMixin:
    """Filter-search operations of :class:`~providers.sixtyfour.adapter.SixtyfourAdapter`."""

    client: ProviderClient
    page_size: int
    _capabilities: dict[str, FilterCapabilities]

    async def filter_capabilities(self, mode: Mode = "company") -> FilterCapabilities:
        """The fields, operators and limits of filter search in ``mode`` (cached)."""
        if mode not in self._capabilities:
            response = await self.client.request("GET", "/search/filter-capabilities", endpoint=CAPABILITIES,
                                                 params={"mode": mode}, idempotent=True)
            caps = parse(CapabilitiesResponse, response.data, CAPABILITIES)
            self._capabilities[mode] = FilterCapabilities(
                provider=PROVIDER, mode=mode, nested_paths=tuple(caps.nested_paths), limits=caps.limits,
                operators=tuple(caps.simple_query_operators or DOCUMENTED_OPERATORS),
                fields=tuple(FilterField(**f.model_dump()) for f in caps.fields),
            )
        return self._capabilities[mode]

    async def filter_values(self, field: str, *, mode: Mode = "company", top_k: int = 25,
                            simple_filters: dict[str, Any] | None = None,
                            filters: dict[str, Any] | None = None) -> FieldValues:
        """Top values of ``field`` with counts, optionally within a filter scope (§2.2).

        Raises:
            ConfigError: unknown field, a field without top values, ``top_k`` outside 1..100, both
                scopes given, or an invalid scope — before the call.
        """
        if isinstance(top_k, bool) or not isinstance(top_k, int) or not 1 <= top_k <= 100:
            raise ConfigError("top_k", f"must be an integer 1..100, got {top_k!r}")
        self._scope(None, simple_filters, filters)  # the structure, before any call
        caps = await self.filter_capabilities(mode)
        spec = caps.field(field)
        if spec is None:
            raise ConfigError("--values", f"unknown field {field!r} for {mode} mode")
        if not spec.supports_top_values:
            raise ConfigError("--values", f"field {field!r} has no top values")
        body: dict[str, Any] = {"mode": mode, "field": field, "top_k": top_k}
        body.update(self._scope(caps, simple_filters, filters))
        response = await self.client.request("POST", "/search/filter-field-values", endpoint=FIELD_VALUES,
                                             json=body, idempotent=True)
        values = parse(FieldValuesResponse, response.data, FIELD_VALUES)
        return FieldValues(provider=PROVIDER, mode=mode, field=values.field,
                           total_scoped_documents=values.total_scoped_documents,
                           values=tuple(FieldValue(**v.model_dump()) for v in values.values))

    @staticmethod
    def _scope(caps: FilterCapabilities | None, simple_filters: dict[str, Any] | None,
               filters: dict[str, Any] | None) -> dict[str, Any]:
        """The scope part of a field-values body, checked against ``caps`` (None: structure only)."""
        if simple_filters is not None and filters is not None:
            raise ConfigError("scope", "give simple_filters or filters, not both")
        if simple_filters is not None:
            if isinstance(simple_filters, dict) and ("$sort" in simple_filters or "$limit" in simple_filters):
                raise ConfigError("simple_filters", "$sort and $limit are not allowed in a values scope")
            check_simple_filters(simple_filters, caps)
            return {"simple_filters": simple_filters}
        if filters is not None:
            if not isinstance(filters, dict) or set(filters) != {"query"}:
                raise ConfigError("filters", "a field-values scope takes filters.query only")
            check_dsl_filters(filters, caps)
            return {"filters": filters}
        return {}

    @staticmethod
    def check_filter_structure(request: SearchRequest) -> None:
        """Validate the shape of the request's filters without capabilities (no I/O). Raises ConfigError."""
        if request.simple_filters is not None:
            check_simple_filters(request.simple_filters, None)
        elif request.filters is not None:
            check_dsl_filters(request.filters, None)

    async def check_filters(self, request: SearchRequest) -> None:
        """Validate the request's filters against the capabilities. Raises ConfigError."""
        caps = await self.filter_capabilities(request.mode)
        if request.simple_filters is not None:
            check_simple_filters(request.simple_filters, caps)
        elif request.filters is not None:
            check_dsl_filters(request.filters, caps)

    def filter_first_body(self, request: SearchRequest) -> dict[str, Any]:
        """The first ``/search/query`` body of a filter search (``--explain`` shows it)."""
        body: dict[str, Any] = {"mode": request.mode, "page_size": self.page_size,
                                "max_results": request.max_results}
        if request.simple_filters is not None:
            body["simple_filters"] = request.simple_filters
        else:
            body["filters"] = request.filters
        if request.exclude:
            body["exclude_entity_ids"] = list(request.exclude)
        return body

    def filter_job(self, request: SearchRequest, key: str) -> JobRef:
        """A filter search's job: ready at once, the first page body kept for fetch."""
        return JobRef(provider=PROVIDER, job_id=f"filter-{key}", idempotency_key=key, mode=request.mode,
                      submitted_at=self.client.clock.now(), extra={
                          "ready": True, "first_body": self.filter_first_body(request), "credits": 0.0,
                          "max_results": request.max_results, "exclude": list(request.exclude)})
