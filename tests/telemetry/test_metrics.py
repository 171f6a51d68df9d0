"""Issue 19, metrics: the ``deepsearch_*`` Prometheus metrics after a sandbox search, read back with
prometheus-client's own parser; the cache and circuit hooks move them; nothing moves while disabled."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from aggregator import telemetry
from aggregator.errors import ConfigError
from aggregator.telemetry import instrument, metrics
from providers.sandbox.faults import FaultRule

DEMO = "VP of Engineering at Series B SaaS startups in New York"
START = "POST /search/start-deep-search"
ROOT = Path(__file__).resolve().parents[2]
FIRST_SUBMIT_429 = FaultRule("sixtyfour", START, "http_429", first_n=1, retry_after_s=1.0)

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(text: str) -> Samples:
    """``{(sample name, sorted labels): value}`` of an exposition text, parsed by prometheus-client."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every label set that includes ``labels``."""
    return sum(v for (n, got), v in samples.items() if n == name and set(labels.items()) <= set(got))


async def test_a_search_moves_the_request_retry_credit_job_run_and_wait_metrics(
        make_aggregator: Any, registry: CollectorRegistry) -> None:
    agg = await make_aggregator(providers=("sixtyfour", "orbit"), n_companies=600, faults=(FIRST_SUBMIT_429,))
    report = await agg.search(DEMO, max_results=5)
    samples = scrape(generate_latest(registry).decode())

    received = {p: [r for r in agg.sandbox.requests(p) if not r.route.partition(" ")[2].startswith("/_")]
                for p in ("sixtyfour", "orbit")}
    for provider, requests in received.items():
        assert total(samples, "deepsearch_requests_total", provider=provider) == len(requests) > 0
        for route in {r.route for r in requests}:
            by_status = {str(r.status) for r in requests if r.route == route}
            for status in by_status:
                assert value(samples, "deepsearch_requests_total", provider=provider, endpoint=route,
                             status=status) == sum(1 for r in requests if r.route == route and str(r.status) == status)
        assert total(samples, "deepsearch_request_duration_seconds_count", provider=provider) == len(requests)
        # every request waited for its rate-limit tokens (mostly 0 s): one observation per request
        assert total(samples, "deepsearch_rate_limit_wait_seconds_count", provider=provider) == len(requests)
        outcome = report.outcome(provider)
        assert value(samples, "deepsearch_credits_spent_total", provider=provider) == outcome.credits
        assert value(samples, "deepsearch_job_duration_seconds_count", provider=provider, outcome="found") == 1
        assert value(samples, "deepsearch_job_duration_seconds_sum", provider=provider, outcome="found") > 0
    assert value(samples, "deepsearch_requests_total", provider="sixtyfour", endpoint=START, status="429") == 1
    assert value(samples, "deepsearch_rate_limited_total", provider="sixtyfour", endpoint=START) == 1
    assert total(samples, "deepsearch_rate_limited_total") == 1
    assert value(samples, "deepsearch_retries_total", provider="sixtyfour", endpoint=START) == 1
    assert total(samples, "deepsearch_retries_total") == 1
    assert report.outcome("orbit").credits > 0
    assert value(samples, "deepsearch_runs_total", status="done") == 1
    assert value(samples, "deepsearch_run_records_count") == 1
    assert value(samples, "deepsearch_run_records_sum") == len(report.records) > 0
    assert value(samples, "deepsearch_run_duration_seconds_count") == 1


async def test_the_cache_and_circuit_hooks_move_their_metrics(registry: CollectorRegistry) -> None:
    for event in ("hit", "hit", "miss", "stored", "bypass", "refresh", "waited"):
        telemetry.record_cache(event)  # type: ignore[arg-type]
    telemetry.record_circuit_state("orbit", "open")
    telemetry.record_circuit_state("sixtyfour", "half_open")
    telemetry.record_circuit_state("sixtyfour", "closed")
    telemetry.record_circuit_rejection("orbit")
    telemetry.record_circuit_rejection("orbit")
    samples = scrape(generate_latest(registry).decode())

    assert value(samples, "deepsearch_cache_events_total", event="hit") == 2
    assert all(value(samples, "deepsearch_cache_events_total", event=e) == 1
               for e in ("miss", "stored", "bypass", "refresh", "waited"))
    assert value(samples, "deepsearch_circuit_state", provider="orbit") == 2
    assert ("deepsearch_circuit_state", (("provider", "sixtyfour"),)) in samples
    assert value(samples, "deepsearch_circuit_state", provider="sixtyfour") == 0
    telemetry.record_circuit_state("sixtyfour", "half_open")
    assert scrape(generate_latest(registry).decode())[("deepsearch_circuit_state", (("provider", "sixtyfour"),))] == 1
    assert value(samples, "deepsearch_circuit_rejections_total", provider="orbit") == 2


async def test_disabled_metrics_and_no_tracer_make_every_hook_a_no_op(make_aggregator: Any) -> None:
    fresh = CollectorRegistry()
    telemetry.enable_metrics(fresh)
    telemetry.disable_metrics()
    before = generate_latest(fresh)
    agg = await make_aggregator(providers=("sixtyfour",), n_companies=600, faults=(FIRST_SUBMIT_429,))
    run = agg.start(DEMO, max_results=5)
    events = run.events()
    assert events.__qualname__ == "SearchRun.events"  # the undecorated generator: no wrapper per event
    async for _ in events:
        pass
    telemetry.record_cache("hit")
    telemetry.record_circuit_state("orbit", "open")
    telemetry.record_circuit_rejection("orbit")

    assert generate_latest(fresh) == before  # registered, zero-valued, and untouched
    assert metrics.ACTIVE is None
    assert instrument.http_attempt("sixtyfour", START, "POST") is None
    assert instrument.job_started("sixtyfour", "run") is instrument.NOOP_JOB
    assert inspect.isasyncgen(events)


def test_enabling_is_idempotent_per_registry_and_switches_between_registries() -> None:
    first, second = CollectorRegistry(), CollectorRegistry()
    try:
        enabled = telemetry.enable_metrics(first)
        assert telemetry.enable_metrics(first) is enabled and metrics.ACTIVE is enabled  # no duplicate collectors
        other = telemetry.enable_metrics(second)
        assert other is not enabled and other.registry is second and metrics.ACTIVE is other
        telemetry.disable_metrics()
        assert telemetry.enable_metrics(first) is enabled  # the same collectors, values kept
    finally:
        telemetry.disable_metrics()


def test_without_prometheus_client_enabling_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "prometheus_client", None)
    with pytest.raises(ConfigError, match=r"pip install 'deepsearch-aggregator\[metrics\]'"):
        telemetry.enable_metrics(CollectorRegistry())
    assert metrics.ACTIVE is None
    with pytest.raises(ConfigError, match="must be 1-65535, got 0"):
        telemetry.serve_metrics(0)


def test_without_either_extra_the_library_imports_and_searches(tmp_path: Path) -> None:
    code = ("import sys; sys.modules['opentelemetry'] = None; sys.modules['prometheus_client'] = None\n"
            "import asyncio\n"
            "from aggregator import Aggregator\n"
            "from aggregator.telemetry import instrument, tracing\n"
            "assert tracing.tracer() is None and instrument.http_attempt('p', 'GET /x', 'GET') is None\n"
            "async def main():\n"
            "    async with Aggregator() as agg:\n"
            "        report = await agg.search('CTO in London', max_results=3, providers=('sixtyfour',))\n"
            "    print(report.outcome('sixtyfour').status)\n"
            "asyncio.run(main())\n")
    (tmp_path / "fast.toml").write_text("[sandbox]\ntime_scale = 0.002\nn_companies = 300\n"
                                        "[run]\ndeadline_s = 30000.0\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIXTYFOUR_", "EXTRUCT_", "ORBIT_", "DEEPSEARCH_"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=60,
                          env=env | {"DEEPSEARCH_CONFIG": str(tmp_path / "fast.toml"),
                                     "DEEPSEARCH_JOURNAL": str(tmp_path / "j.sqlite")})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("found", "no_result")
