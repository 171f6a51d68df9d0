"""Field discovery routes of the emulator: capabilities and top values (contract §2.1, §2.2).

- ``GET /search/filter-capabilities?mode=company|people&refresh=false`` -> the mode's field
  catalogue (:mod:`.capabilities`). The snapshot is cached per mode for
  ``cache_ttl_seconds`` (setting ``capabilities_cache_ttl_s``, 3600 INF); ``refresh=true``
  regenerates it (new ``generated_at_epoch_ms``, virtual clock). Unknown mode -> 400
  ``unsupported_mode``.
- ``POST /search/filter-field-values`` -> top values of one field, globally or in a scope
  (exactly one of ``simple_filters`` / ``filters`` with only ``filters.query``). 20 requests/min
  per org (DOC; setting ``field_values_rate_limit``) -> 429 + ``Retry-After``. Errors (DOC codes,
  INF body ``{"detail": "<message>", "code": ...}``): ``unsupported_mode``, ``invalid_request`` (empty
  field name), ``unsupported_field``, ``top_values_not_supported``, ``invalid_scoped_filters``;
  ``top_k`` outside 1..100 or a missing ``field`` -> FastAPI 422.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from providers.sixtyfour.emulator.capabilities import SCHEMAS, capabilities_doc, top_values
from providers.sixtyfour.emulator.engine import Doc, FilterError, Schema
from providers.sixtyfour.emulator.http import ORG, code_error, ok, read_json, validate
from providers.sixtyfour.emulator.models import CapabilitiesQuery, FieldValuesBody
from providers.sixtyfour.emulator.search import engine_config

if TYPE_CHECKING:
    from providers.sixtyfour.emulator import SixtyfourEmulator

__all__ = ["DiscoveryHandlers"]


def _schema(mode: str) -> Schema:
    schema = SCHEMAS.get(mode)
    if schema is None:
        raise code_error(400, "unsupported_mode", f"Unsupported mode {mode!r}; use 'people' or "
                                                  "'company'.")
    return schema


class DiscoveryHandlers:
    """``/search/filter-capabilities`` and ``/search/filter-field-values`` of one emulator."""

    def __init__(self, em: SixtyfourEmulator) -> None:
        self.em = em
        self._generated: dict[str, tuple[float, int]] = {}  # mode -> (monotonic, epoch ms)

    async def capabilities(self, request: web.Request) -> web.Response:
        em = self.em
        query = validate(CapabilitiesQuery, dict(request.query), where="query")
        schema = _schema(query.mode)
        limits = engine_config(em.settings).limits
        return ok(capabilities_doc(schema, limits, cache_ttl_s=em.settings.capabilities_cache_ttl_s,
                                   generated_at_ms=self._generated_at(query.mode, query.refresh)))

    def _generated_at(self, mode: str, refresh: bool) -> int:
        """When the cached snapshot of ``mode`` was derived (re-derived when stale or asked)."""
        em, now = self.em, self.em.now()
        cached = self._generated.get(mode)
        if refresh or cached is None or now - cached[0] >= em.settings.capabilities_cache_ttl_s:
            cached = (now, int(em.ctx.clock.now().timestamp() * 1000))
            self._generated[mode] = cached
        return cached[1]

    async def field_values(self, request: web.Request) -> web.Response:
        em = self.em
        em.check_limit(request, em.field_values_limiter, request[ORG])
        started = em.now()
        body = validate(FieldValuesBody, await read_json(request))
        schema = _schema(body.mode)
        if not body.field.strip():
            raise code_error(400, "invalid_request", "field must be a non-empty string")
        try:
            spec = schema.resolve(body.field)
        except FilterError as exc:
            raise code_error(400, "unsupported_field", str(exc)) from exc
        if not spec.supports_top_values:
            raise code_error(400, "top_values_not_supported",
                             f"Field '{spec.field}' does not support top values")
        docs = self._scope(body)
        return ok({
            "mode": body.mode, "field": body.field, "canonical_field": spec.field,
            "aggregation_field": spec.aggregation_field, "nested_path": spec.nested_path,
            "value_type": spec.value_type, "supports_top_values": True,
            "supports_exact_filter_snippet": True, "related_fields": list(spec.related_fields),
            "preferred_for_exact_match": spec.preferred_for_exact_match,
            "total_scoped_documents": len(docs),
            "request_duration_ms": int((em.now() - started) * 1000),
            "values": top_values(docs, spec, body.top_k),
        })

    def _scope(self, body: FieldValuesBody) -> list[Doc]:
        if body.simple_filters is not None and body.filters is not None:
            raise code_error(400, "invalid_scoped_filters",
                             "Send either simple_filters or filters, not both")
        try:
            return self.em.searches.scope(body.mode, body.simple_filters, body.filters)
        except FilterError as exc:
            raise code_error(400, "invalid_scoped_filters", str(exc)) from exc
