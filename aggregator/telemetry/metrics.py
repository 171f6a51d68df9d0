"""Prometheus metrics of runs, provider jobs and HTTP calls (``prometheus-client``, extra ``[metrics]``).

Nothing is collected until :func:`enable_metrics`; until then :data:`ACTIVE` is None and every hook of
:mod:`aggregator.telemetry` costs one global check. Durations are **wall-clock seconds**
(``time.perf_counter``), also on the sandbox's scaled clock (so a sandbox job's duration is its real
time, not the virtual provider time it stands for).

========================================  =========  ==========================  ================================
name                                      type       labels                      what
========================================  =========  ==========================  ================================
``deepsearch_requests_total``             counter    provider, endpoint, status  HTTP exchanges; status: the HTTP
                                                                                 code, or the error type when no
                                                                                 response came
``deepsearch_request_duration_seconds``   histogram  provider, endpoint          one HTTP exchange
``deepsearch_rate_limited_total``         counter    provider, endpoint          429 answers
``deepsearch_retries_total``              counter    provider, endpoint          retries scheduled
``deepsearch_credits_spent_total``        counter    provider                    credits charged (as settled)
``deepsearch_rate_limit_wait_seconds``    histogram  provider, endpoint          wait for rate-limit tokens and
                                                                                 concurrency caps, per request
``deepsearch_job_duration_seconds``       histogram  provider, outcome           one provider job
``deepsearch_runs_total``                 counter    status                      runs ended: done, failed,
                                                                                 interrupted, error
``deepsearch_run_records``                histogram  (none)                      merged records per run
``deepsearch_run_duration_seconds``       histogram  (none)                      one run
``deepsearch_circuit_state``              gauge      provider                    0 closed, 1 half open, 2 open
``deepsearch_circuit_rejections_total``   counter    provider                    calls refused by an open circuit
``deepsearch_cache_events_total``         counter    event                       result-cache events: hit, miss,
                                                                                 stored, bypass, refresh, waited
========================================  =========  ==========================  ================================

Endpoints are the adapters' templates (``POST /search/query``, ``GET /jobs/{id}``): never a URL with
ids or query values, so label cardinality stays bounded.
"""

from __future__ import annotations

import time
import weakref
from types import TracebackType
from typing import TYPE_CHECKING

from aggregator.errors import ConfigError

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from prometheus_client import CollectorRegistry
    from prometheus_client.metrics import Histogram

__all__ = ["ACTIVE", "INSTALL_HINT", "Metrics", "disable_metrics", "enable_metrics", "require_client",
           "serve_metrics"]

INSTALL_HINT = "pip install 'deepsearch-aggregator[metrics]'"
CIRCUIT_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}
_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                    600.0, 1800.0, 3600.0)
_WAIT_BUCKETS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_RECORD_BUCKETS = (0, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)

ACTIVE: Metrics | None = None
"""The enabled metrics, or None (then every metrics hook returns at once)."""

_BY_REGISTRY: weakref.WeakKeyDictionary[CollectorRegistry, Metrics] = weakref.WeakKeyDictionary()


class Metrics:
    """The ``deepsearch_*`` collectors, registered on ``registry`` (see the module table)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        self.registry = registry
        self.requests = Counter("deepsearch_requests", "HTTP exchanges with a provider, by status (the HTTP "
                                "status code, or the error type when no response came).",
                                ["provider", "endpoint", "status"], registry=registry)
        self.request_duration = Histogram("deepsearch_request_duration_seconds",
                                          "One HTTP exchange with a provider, wall seconds.",
                                          ["provider", "endpoint"], buckets=_SECONDS_BUCKETS, registry=registry)
        self.rate_limited = Counter("deepsearch_rate_limited", "429 (rate limited) answers.",
                                    ["provider", "endpoint"], registry=registry)
        self.retries = Counter("deepsearch_retries", "Retries scheduled by the retry policy.",
                               ["provider", "endpoint"], registry=registry)
        self.credits = Counter("deepsearch_credits_spent", "Credits charged, as settled after each paid call.",
                               ["provider"], registry=registry)
        self.rate_limit_wait = Histogram("deepsearch_rate_limit_wait_seconds",
                                         "Wall seconds a request waited for rate-limit tokens and concurrency caps.",
                                         ["provider", "endpoint"], buckets=_WAIT_BUCKETS, registry=registry)
        self.job_duration = Histogram("deepsearch_job_duration_seconds",
                                      "One provider job (submit to last page), wall seconds, by outcome status.",
                                      ["provider", "outcome"], buckets=_SECONDS_BUCKETS, registry=registry)
        self.runs = Counter("deepsearch_runs", "Search runs ended, by status (done, failed, interrupted, error).",
                            ["status"], registry=registry)
        self.run_records = Histogram("deepsearch_run_records", "Merged records a run delivered.",
                                     buckets=_RECORD_BUCKETS, registry=registry)
        self.run_duration = Histogram("deepsearch_run_duration_seconds", "One search run, wall seconds.",
                                      buckets=_SECONDS_BUCKETS, registry=registry)
        self.circuit_state = Gauge("deepsearch_circuit_state",
                                   "A provider's circuit breaker: 0 closed, 1 half open, 2 open.",
                                   ["provider"], registry=registry)
        self.circuit_rejections = Counter("deepsearch_circuit_rejections",
                                          "Calls refused at once because the provider's circuit is open.",
                                          ["provider"], registry=registry)
        self.cache_events = Counter("deepsearch_cache_events", "Result-cache events (hit, miss, stored, bypass, "
                                    "refresh, waited).", ["event"], registry=registry)

    def timed_slot(self, slot: AbstractAsyncContextManager[None], provider: str,
                   endpoint: str) -> AbstractAsyncContextManager[None]:
        """``slot`` (a limiter's hold for one request), its wait observed in ``rate_limit_wait_seconds``."""
        return _TimedSlot(slot, self.rate_limit_wait.labels(provider, endpoint))


class _TimedSlot:
    __slots__ = ("_histogram", "_slot")

    def __init__(self, slot: AbstractAsyncContextManager[None], histogram: Histogram) -> None:
        self._slot = slot
        self._histogram = histogram

    async def __aenter__(self) -> None:
        started = time.perf_counter()
        await self._slot.__aenter__()
        self._histogram.observe(time.perf_counter() - started)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._slot.__aexit__(exc_type, exc, tb)


def require_client() -> None:
    """Raises ConfigError (naming the ``[metrics]`` extra) when prometheus-client is not installed."""
    try:
        import prometheus_client  # noqa: F401  (the optional extra)
    except ImportError:
        raise ConfigError("metrics", f"Prometheus metrics need prometheus-client, an optional extra: "
                                     f"{INSTALL_HINT}") from None


def enable_metrics(registry: CollectorRegistry | None = None) -> Metrics:
    """Collect the ``deepsearch_*`` metrics into ``registry`` (default prometheus-client's global
    ``REGISTRY``) from now on, and return them.

    Idempotent: enabling the same registry again returns the same :class:`Metrics` (a registry gets its
    collectors once, however often it is enabled); enabling another one switches to it.

    Raises:
        ConfigError: prometheus-client is not installed (the message names the ``[metrics]`` extra).
    """
    global ACTIVE
    require_client()
    if registry is None:
        from prometheus_client import REGISTRY

        registry = REGISTRY
    metrics = _BY_REGISTRY.get(registry)
    if metrics is None:
        metrics = _BY_REGISTRY[registry] = Metrics(registry)
    ACTIVE = metrics
    return metrics


def disable_metrics() -> None:
    """Stop collecting (the collectors stay registered with their values; hooks become no-ops again)."""
    global ACTIVE
    ACTIVE = None


def serve_metrics(port: int, host: str = "127.0.0.1", registry: CollectorRegistry | None = None) -> Metrics:
    """Enable the metrics and serve them at ``http://host:port/metrics`` from a daemon thread
    (``prometheus_client.start_http_server``); prints nothing.

    Raises:
        ConfigError: ``port`` is outside 1..65535, prometheus-client is missing, or the address cannot be
            bound (the message says which).
    """
    if not 0 < port < 65536:
        raise ConfigError("metrics_port", f"must be 1-65535, got {port}")
    metrics = enable_metrics(registry)
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host, registry=metrics.registry)
    except OSError as exc:
        raise ConfigError("metrics_port", f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}; "
                                          "choose another port or host") from None
    return metrics
