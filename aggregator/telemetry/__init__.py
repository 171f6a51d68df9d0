"""Telemetry: OpenTelemetry spans and Prometheus metrics of runs, provider jobs and HTTP calls.

Both are optional (extras ``[otel]`` and ``[metrics]``); without them, or until enabled, every hook
here is a no-op that costs one call. The result cache and the circuit breakers report through the
hooks below; the HTTP client, the scheduler and the run instrument themselves.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["CacheEvent", "CircuitState", "record_cache", "record_circuit_rejection", "record_circuit_state"]

CacheEvent = Literal["hit", "miss", "stored", "bypass", "refresh", "waited"]
"""``hit``: answered from the cache; ``miss``: looked up, nothing fresh; ``stored``: a finished run
became the entry; ``bypass``: ``cache=False``; ``refresh``: ``refresh=True`` ran anew; ``waited``:
waited for an identical request in flight (single flight)."""

CircuitState = Literal["closed", "open", "half_open"]


def record_cache(event: CacheEvent) -> None:
    """One result-cache event (see :data:`CacheEvent`)."""


def record_circuit_state(provider: str, state: CircuitState) -> None:
    """``provider``'s circuit breaker is now ``state`` (called on every transition this process sees)."""


def record_circuit_rejection(provider: str) -> None:
    """A call or a provider step was refused at once because ``provider``'s circuit is open."""
