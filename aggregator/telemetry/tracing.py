"""OpenTelemetry tracing through ``opentelemetry-api`` only (extra ``[otel]``).

The library never configures an SDK or an exporter: it asks the application's tracer provider (the
global one, or the one given to :func:`set_tracer_provider`) for the ``deepsearch-aggregator`` tracer.
Without ``opentelemetry-api``, or while no SDK provider is installed (the API's default proxy or no-op
provider), :func:`tracer` returns None and nothing is built: no span, no attribute dictionary.

Spans (attribute names under ``deepsearch.``; OpenTelemetry's own names for HTTP and errors):

- ``deepsearch.run`` — one search run: ``run_id``, ``resumed``, ``mode``, ``providers`` (the planned
  ones), ``max_results``, ``strategy``; at its end ``records``, ``credits``, ``cached`` (when the report
  says), ``status`` (done, failed, interrupted, error).
- ``deepsearch.job`` — one provider job, a child of the run's span: ``provider``, ``run_id``; at its end
  ``job_id``, ``status`` (the outcome's), ``records``, ``credits``, ``pages``, ``retries``, ``excluded``,
  ``error.type``. Events: ``submit`` (job id), ``poll`` (state, phase), ``page`` (records, reads,
  credits), ``retry`` (endpoint, error type, wait_s), ``credits`` (endpoint, credits settled for one call).
- ``deepsearch.http`` — one HTTP **attempt** (kind CLIENT), a child of the job's span: ``provider``,
  ``endpoint`` (the template, e.g. ``GET /jobs/{id}``: never the URL), ``http.request.method``,
  ``deepsearch.attempt`` (1, 2, ... within one logical call), ``http.response.status_code``,
  ``error.type``, ``deepsearch.retry_after_s``. A retried call is several sibling spans; the credits a
  call cost are settled after its last attempt, so they are a ``credits`` event on the job's span.

Never recorded: API keys, query text, names, emails, URLs (they may carry ids or personal data).
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from opentelemetry.trace import Tracer, TracerProvider

try:
    from opentelemetry import context as otel_context
    from opentelemetry import trace as otel_trace
    from opentelemetry.trace import NoOpTracerProvider, ProxyTracerProvider
except ImportError:  # the optional extra: every span call is a no-op
    otel_trace = None  # type: ignore[assignment]
    otel_context = None  # type: ignore[assignment]

__all__ = ["TRACER_NAME", "attempt_number", "set_tracer_provider", "tracer"]

TRACER_NAME = "deepsearch-aggregator"

attempt_number: ContextVar[int] = ContextVar("deepsearch_attempt_number", default=1)
"""The attempt of the logical HTTP call running in this task (set by :class:`~aggregator.retry.RetryPolicy`)."""

_override: TracerProvider | None = None
_cached: tuple[object, Tracer] | None = None


def set_tracer_provider(provider: TracerProvider | None) -> None:
    """Trace through ``provider`` instead of OpenTelemetry's global one (None: the global one again).

    For tests and for applications that keep several providers; most applications call
    ``opentelemetry.trace.set_tracer_provider`` once and never this.
    """
    global _override, _cached
    _override, _cached = provider, None


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("deepsearch-aggregator")
    except metadata.PackageNotFoundError:  # pragma: no cover - a source tree without metadata
        return "0"


def tracer() -> Tracer | None:
    """The library's tracer, or None when spans would go nowhere (no API, no SDK provider installed)."""
    global _cached
    if otel_trace is None:
        return None
    provider: Any = _override if _override is not None else otel_trace.get_tracer_provider()
    if isinstance(provider, ProxyTracerProvider | NoOpTracerProvider):
        return None
    cached = _cached
    if cached is not None and cached[0] is provider:
        return cached[1]
    found: Tracer = provider.get_tracer(TRACER_NAME, _version())
    _cached = (provider, found)
    return found
