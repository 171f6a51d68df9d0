"""Fixtures of the telemetry tests: an in-memory OpenTelemetry SDK and a fresh Prometheus registry.

Both are installed through the library's own hooks (:func:`aggregator.telemetry.set_tracer_provider`,
:func:`aggregator.telemetry.enable_metrics`) and removed after each test, so no other test runs traced or
metered (the global OpenTelemetry provider is never set: it can be set only once per process).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry

from aggregator import telemetry


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Every span the library ends during the test, in the order they ended."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    telemetry.set_tracer_provider(provider)
    try:
        yield exporter
    finally:
        telemetry.set_tracer_provider(None)
        provider.shutdown()


@pytest.fixture
def registry() -> Iterator[CollectorRegistry]:
    """A fresh registry with the ``deepsearch_*`` metrics enabled on it (disabled after the test)."""
    fresh = CollectorRegistry()
    telemetry.enable_metrics(fresh)
    try:
        yield fresh
    finally:
        telemetry.disable_metrics()
