"""Issue 19, traces: a sandbox search under an in-memory OpenTelemetry SDK gives one ``deepsearch.run`` span,
a ``deepsearch.job`` span per provider under it and a ``deepsearch.http`` span per HTTP attempt under each job,
with the documented attributes, and no attribute or event carries a key, the query or a person's data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from aggregator.models import SearchReport
from providers.sandbox.faults import FaultRule

DEMO = "VP of Engineering at Series B SaaS startups in New York"
START = "POST /search/start-deep-search"
# the first Sixtyfour submit is answered 429 (Retry-After 1 virtual second): one retry, a second attempt
FIRST_SUBMIT_429 = FaultRule("sixtyfour", START, "http_429", first_n=1, retry_after_s=1.0)


def named(spans: Iterable[ReadableSpan], name: str) -> list[ReadableSpan]:
    return [span for span in spans if span.name == name]


def parent_id(span: ReadableSpan) -> int | None:
    return span.parent.span_id if span.parent is not None else None


async def test_a_search_gives_a_run_span_with_job_spans_under_it_and_http_spans_under_those(
        make_aggregator: Any, spans: InMemorySpanExporter) -> None:
    agg = await make_aggregator(providers=("sixtyfour", "orbit"), n_companies=600, faults=(FIRST_SUBMIT_429,))
    report: SearchReport = await agg.search(DEMO, max_results=5)
    finished = spans.get_finished_spans()

    (run,) = named(finished, "deepsearch.run")
    assert run.parent is None and run.status.status_code is StatusCode.UNSET
    assert dict(run.attributes or {}) == {
        "deepsearch.run_id": report.run_id, "deepsearch.resumed": False, "deepsearch.mode": "people",
        "deepsearch.providers": ("sixtyfour", "orbit"), "deepsearch.max_results": 5, "deepsearch.strategy": "all",
        "deepsearch.status": "done", "deepsearch.records": len(report.records),
        "deepsearch.credits": report.total_credits, "deepsearch.cached": False}
    assert len(report.records) > 0 and report.total_credits > 0

    jobs = {span.attributes["deepsearch.provider"]: span for span in named(finished, "deepsearch.job")
            if span.attributes}
    assert set(jobs) == {"sixtyfour", "orbit"}
    for provider, job in jobs.items():
        outcome = report.outcome(provider)
        assert parent_id(job) == run.context.span_id and job.context.trace_id == run.context.trace_id
        attributes = dict(job.attributes or {})
        assert attributes["deepsearch.run_id"] == report.run_id
        assert attributes["deepsearch.job_id"] == outcome.job_id is not None
        assert attributes["deepsearch.status"] == outcome.status == "found"
        assert (attributes["deepsearch.records"], attributes["deepsearch.credits"], attributes["deepsearch.pages"],
                attributes["deepsearch.retries"]) == (outcome.records, outcome.credits, outcome.pages, outcome.retries)
        kinds = [event.name for event in job.events]
        assert kinds[kinds.index("submit"):].count("submit") == 1 and "poll" in kinds and "page" in kinds
        submit = next(event for event in job.events if event.name == "submit")
        assert dict(submit.attributes or {}) == {"deepsearch.job_id": outcome.job_id}
        pages = [event for event in job.events if event.name == "page"]
        assert sum(int((event.attributes or {})["deepsearch.records"]) for event in pages) == outcome.records
    assert jobs["sixtyfour"].attributes["deepsearch.retries"] == 1  # type: ignore[index]
    retry = next(event for event in jobs["sixtyfour"].events if event.name == "retry")
    assert dict(retry.attributes or {}) == {"deepsearch.endpoint": START, "error.type": "RateLimitedError",
                                           "deepsearch.wait_s": 1.0}
    orbit_credits = [event for event in jobs["orbit"].events if event.name == "credits"]
    assert sum(float((event.attributes or {})["deepsearch.credits"]) for event in orbit_credits) == (
        report.outcome("orbit").credits)

    http = named(finished, "deepsearch.http")
    job_ids = {job.context.span_id: provider for provider, job in jobs.items()}
    assert http and all(parent_id(span) in job_ids for span in http)
    for span in http:
        attributes = dict(span.attributes or {})
        assert span.kind is SpanKind.CLIENT
        assert attributes["deepsearch.provider"] == job_ids[parent_id(span)]  # type: ignore[index]
        method, _, template = str(attributes["deepsearch.endpoint"]).partition(" ")
        assert attributes["http.request.method"] == method and template.startswith("/")
        assert "?" not in template and "://" not in template
    submits = [dict(span.attributes or {}) for span in http if span.attributes
               and span.attributes["deepsearch.endpoint"] == START]
    assert submits == [
        {"deepsearch.provider": "sixtyfour", "deepsearch.endpoint": START, "http.request.method": "POST",
         "deepsearch.attempt": 1, "http.response.status_code": 429, "error.type": "RateLimitedError",
         "deepsearch.retry_after_s": 1.0},
        {"deepsearch.provider": "sixtyfour", "deepsearch.endpoint": START, "http.request.method": "POST",
         "deepsearch.attempt": 2, "http.response.status_code": 200}]
    failed = [span for span in http if span.status.status_code is StatusCode.ERROR]
    assert len(failed) == 1 and failed[0].attributes["http.response.status_code"] == 429  # type: ignore[index]
    received = [request for provider in ("sixtyfour", "orbit") for request in agg.sandbox.requests(provider)
                if not request.route.partition(" ")[2].startswith("/_")]
    assert len(http) == len(received)  # one span per exchange the emulators saw


async def test_a_failed_provider_job_is_an_error_span_with_the_error_type(
        make_aggregator: Any, spans: InMemorySpanExporter) -> None:
    broken = FaultRule("sixtyfour", START, "http_5xx", first_n=100, status=400)
    agg = await make_aggregator(providers=("sixtyfour",), n_companies=600, faults=(broken,))
    report = await agg.search(DEMO, max_results=5, providers=("sixtyfour",))

    assert report.outcome("sixtyfour").status == "failed"
    (job,) = named(spans.get_finished_spans(), "deepsearch.job")
    assert job.status.status_code is StatusCode.ERROR
    assert (job.attributes or {})["error.type"] == "InvalidRequestError"
    (run,) = named(spans.get_finished_spans(), "deepsearch.run")
    assert (run.attributes or {})["deepsearch.status"] == "failed" and run.status.status_code is StatusCode.ERROR


def _values(span: ReadableSpan) -> list[str]:
    found = [str(value) for value in (span.attributes or {}).values()]
    for event in span.events:
        found += [event.name, *(str(value) for value in (event.attributes or {}).values())]
    return [span.name, *found]


def _personal(report: SearchReport) -> set[str]:
    """Every name, email, phone, profile URL and company name of the report's records."""
    fields = ("full_name", "first_name", "last_name", "email", "phone", "linkedin_url", "github_username",
              "company_name", "company_linkedin_url", "name", "website")
    found: set[str] = set()
    for record in report.records:
        entity = record.entity.model_dump()
        found |= {str(entity[f]) for f in fields if entity.get(f)}
        for hit in record.hits:
            found |= set(hit.source_urls)
    return found


async def test_no_span_carries_an_api_key_the_query_or_anything_personal(
        make_aggregator: Any, spans: InMemorySpanExporter) -> None:
    agg = await make_aggregator(providers=("sixtyfour", "orbit"), n_companies=600, faults=(FIRST_SUBMIT_429,))
    people = await agg.search(DEMO, max_results=10)
    companies = await agg.search("vertical SaaS companies serving freight forwarding", mode="company",
                                 max_results=10, providers=("sixtyfour",))
    values = [value for span in spans.get_finished_spans() for value in _values(span)]

    secrets = set(agg.sandbox.api_keys.values())
    personal = _personal(people) | _personal(companies)
    assert len(secrets) == 2 and len(personal) > 10 and len(values) > 100
    for forbidden in [*secrets, DEMO, "freight forwarding", *personal]:
        leaked = [value for value in values if forbidden.lower() in value.lower()]
        assert not leaked, (forbidden, leaked)
    assert not [value for value in values if "://" in value]  # no URL at all (they may carry ids or queries)


async def test_a_run_answered_from_the_result_cache_is_one_cached_run_span_without_jobs(
        make_aggregator: Any, spans: InMemorySpanExporter, registry: Any) -> None:
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    agg = await make_aggregator(providers=("sixtyfour",), n_companies=600)
    first = await agg.search(DEMO, max_results=5, providers=("sixtyfour",), cache_ttl_s=3600.0)
    again = await agg.search(DEMO, max_results=5, providers=("sixtyfour",), cache_ttl_s=3600.0)
    finished = spans.get_finished_spans()

    assert first.cached is None and again.cached is not None
    runs = named(finished, "deepsearch.run")
    assert [(span.attributes or {})["deepsearch.cached"] for span in runs] == [False, True]  # one span per run
    assert all(span.parent is None for span in runs)
    (job,) = named(finished, "deepsearch.job")  # the cached answer called no provider
    assert parent_id(job) == runs[0].context.span_id
    assert (runs[1].attributes or {})["deepsearch.credits"] == 0
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(generate_latest(registry).decode())
               for s in family.samples}
    assert samples[("deepsearch_runs_total", (("status", "done"),))] == 2  # not counted twice under the cache
    assert {event: samples.get(("deepsearch_cache_events_total", (("event", event),))) for event in
            ("miss", "stored", "hit")} == {"miss": 1, "stored": 1, "hit": 1}
