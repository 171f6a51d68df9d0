"""Extruct company deep search end to end over real sockets, on the time-scaled sandbox."""

from __future__ import annotations

from typing import Any

from aggregator.core import Aggregator
from aggregator.events import HitsEvent, ProgressEvent
from aggregator.models import Company
from providers.sandbox.faults import FaultRule

QUERY = "vertical SaaS companies serving freight forwarding"
CREATE = "POST /v1/discovery_tasks"


async def extruct(make_aggregator: Any, **kwargs: Any) -> Aggregator:
    agg: Aggregator = await make_aggregator(providers=("extruct",), **kwargs)
    return agg


def stats(agg: Aggregator) -> dict[str, Any]:
    document: dict[str, Any] = agg.sandbox.stats()["providers"]["extruct"]
    return document


async def test_the_freight_forwarding_search_returns_graded_matching_companies(make_aggregator: Any) -> None:
    agg = await extruct(make_aggregator)
    report = await agg.search(QUERY, mode="company", max_results=30)

    outcome = report.outcome("extruct")
    assert outcome.status == "found" and 10 <= outcome.records <= 30
    by_domain = {c.domain: c for c in agg.sandbox.world.companies}
    for record in report.records:
        company = record.entity
        assert isinstance(company, Company) and company.domain
        truth = by_domain[company.domain]  # the world entity behind the result
        assert {"vertical saas", "freight forwarding"} <= set(truth.categories)
        (hit,) = record.hits
        assert hit.score is not None and hit.evidence
        assert all(e.grade is not None and e.text for e in hit.evidence)
    assert outcome.credits == outcome.records  # 1 credit per qualified match
    assert stats(agg)["jobs_started"] == 1


async def test_first_records_stream_in_before_the_task_is_done(make_aggregator: Any) -> None:
    # 10 evaluations a minute: the task runs on for minutes (virtual; over a second of wall time)
    # after its first match, so a stalled client still reads the first records while it runs
    agg = await extruct(make_aggregator, emulators={"extruct": {"evaluate_rate_per_min": 10}})
    phase_at_first_hits, phase = None, None
    ids: list[str] = []
    async for event in agg.stream(QUERY, mode="company", max_results=30):
        if isinstance(event, ProgressEvent) and event.provider == "extruct":
            phase = event.phase
        if isinstance(event, HitsEvent):
            phase_at_first_hits = phase_at_first_hits or phase
            ids += [hit.provider_record_id for hit in event.hits]
    assert phase_at_first_hits == "running"  # records arrived while the task was in progress
    assert len(ids) == len(set(ids)) == 30  # and the final pass added none of them again


async def test_a_lost_create_is_recovered_and_starts_exactly_one_task(make_aggregator: Any) -> None:
    lost = FaultRule(provider="extruct", endpoint=CREATE, kind="reset", first_n=1, after_handler=True)
    agg = await extruct(make_aggregator, faults=(lost,))
    report = await agg.search(QUERY, mode="company", max_results=10)

    assert report.outcome("extruct").status == "found"
    assert stats(agg)["jobs_started"] == 1  # the reset create was adopted, not repeated
    assert stats(agg)["endpoints"][CREATE]["calls"] == 1
    assert stats(agg)["endpoints"]["GET /v1/discovery_tasks"]["calls"] == 1


async def test_a_create_that_never_arrived_is_sent_again(make_aggregator: Any) -> None:
    refused = FaultRule(provider="extruct", endpoint=CREATE, kind="http_5xx", status=502, first_n=1)
    agg = await extruct(make_aggregator, faults=(refused,))
    report = await agg.search(QUERY, mode="company", max_results=10)

    assert report.outcome("extruct").status == "found"
    assert stats(agg)["jobs_started"] == 1 and stats(agg)["endpoints"][CREATE]["calls"] == 2


async def test_more_than_the_task_cap_gets_exactly_250_and_no_resume(make_aggregator: Any) -> None:
    fast = {"discover_rate_per_min": 20_000, "enrich_rate_per_min": 20_000, "evaluate_rate_per_min": 20_000}
    agg = await extruct(make_aggregator, emulators={"extruct": fast})
    report = await agg.search("software companies", mode="company", max_results=300)

    outcome = report.outcome("extruct")
    assert outcome.records == 250 and outcome.status == "found"
    assert stats(agg).get("resumes", 0) == 0


async def test_people_mode_skips_extruct_with_a_note(make_aggregator: Any) -> None:
    agg: Aggregator = await make_aggregator(providers=("sixtyfour", "extruct"), n_companies=600)
    report = await agg.search("CTO in New York", mode="people", max_results=3)
    skipped = report.outcome("extruct")
    assert skipped.status == "skipped" and "company" in (skipped.note or "")
    assert report.outcome("sixtyfour").status == "found"
