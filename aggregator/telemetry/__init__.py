"""Telemetry: OpenTelemetry spans and Prometheus metrics of runs, provider jobs and HTTP calls.

Both are optional (extras ``[otel]`` and ``[metrics]``); without them, or until enabled, every hook
here is a no-op that costs one check. The result cache and the circuit breakers report through the
hooks below; the HTTP client, the scheduler and the run instrument themselves
(:mod:`aggregator.telemetry.instrument`).

- **Traces** (:mod:`aggregator.telemetry.tracing`): ``deepsearch.run`` > ``deepsearch.job`` >
  ``deepsearch.http`` spans through ``opentelemetry-api``, on the application's tracer provider; the
  library never configures an SDK or exporter.
- **Metrics** (:mod:`aggregator.telemetry.metrics`): ``deepsearch_*`` collectors, off until
  :func:`enable_metrics` registers them on a ``prometheus_client`` registry (``deepsearch worker`` and
  ``deepsearch mcp`` do with ``--metrics-port``).
"""

from __future__ import annotations

from typing import Literal

from aggregator.telemetry import metrics as _metrics
from aggregator.telemetry.metrics import Metrics, disable_metrics, enable_metrics, serve_metrics
from aggregator.telemetry.tracing import set_tracer_provider

__all__ = [
    "CacheEvent",
    "CircuitState",
    "Metrics",
    "disable_metrics",
    "enable_metrics",
    "record_cache",
    "record_circuit_rejection",
    "record_circuit_state",
    "serve_metrics",
    "set_tracer_provider",
]

CacheEvent = Literal["hit", "miss", "stored", "bypass", "refresh", "waited"]
"""``hit``: answered from the cache; ``miss``: looked up, nothing fresh; ``stored``: a finished run
became the entry; ``bypass``: ``cache=False``; ``refresh``: ``refresh=True`` ran anew; ``waited``:
waited for an identical request in flight (single flight)."""

CircuitState = Literal["closed", "open", "half_open"]


def record_cache(event: CacheEvent) -> None:
    """One result-cache event (see :data:`CacheEvent`): ``deepsearch_cache_events_total{event}``."""
    metrics = _metrics.ACTIVE
    if metrics is not None:
        metrics.cache_events.labels(event).inc()


def record_circuit_state(provider: str, state: CircuitState) -> None:
    """``provider``'s circuit breaker is now ``state`` (called on every transition this process sees):
    ``deepsearch_circuit_state{provider}`` becomes 0 (closed), 1 (half open) or 2 (open)."""
    metrics = _metrics.ACTIVE
    if metrics is not None:
        metrics.circuit_state.labels(provider).set(_metrics.CIRCUIT_STATE_VALUES[state])


def record_circuit_rejection(provider: str) -> None:
    """A call or a provider step was refused at once because ``provider``'s circuit is open:
    ``deepsearch_circuit_rejections_total{provider}``."""
    metrics = _metrics.ACTIVE
    if metrics is not None:
        metrics.circuit_rejections.labels(provider).inc()
