"""Sixtyfour deep search end to end over real sockets, on the time-scaled sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

from aggregator.contract import JobRef, Pending, Ready
from aggregator.core import Aggregator
from aggregator.models import Person, SearchRequest
from providers.sandbox.faults import FaultRule

DEMO = "VP of Engineering at Series B SaaS startups in New York"
START = "POST /search/start-deep-search"


def endpoint_stats(agg: Aggregator, endpoint: str) -> dict[str, Any]:
    stats: dict[str, Any] = agg.sandbox.stats()["providers"]["sixtyfour"]
    return stats["endpoints"].get(endpoint, {"calls": 0, "statuses": {}})


async def test_the_demo_query_returns_people_who_match_it(make_aggregator: Any) -> None:
    agg = await make_aggregator()
    report = await agg.search(DEMO, mode="people", max_results=50)

    outcome = report.outcome("sixtyfour")
    assert outcome.status == "found" and outcome.sandbox and outcome.job_id
    assert 10 <= len(report.records) <= 50
    world = agg.sandbox.world
    by_slug = {p.linkedin_slug: p for p in world.people}
    for record in report.records:
        person = record.entity
        assert isinstance(person, Person) and record.providers == ("sixtyfour",)
        assert person.linkedin_url and person.linkedin_url.startswith("https://www.linkedin.com/in/")
        truth = by_slug[person.linkedin_url.rsplit("/", 1)[1]]  # the ground truth behind the row
        company = world.company(truth.company_id)
        assert truth.title == "VP of Engineering" and truth.city == "New York"
        assert company.funding_stage == "Series B"
        assert person.title and "engineering" in person.title.lower()
    assert len({r.record_id for r in report.records}) == len(report.records)
    assert agg.sandbox.stats()["providers"]["sixtyfour"]["jobs_started"] == 1


async def test_company_mode_returns_companies(make_aggregator: Any) -> None:
    agg = await make_aggregator(n_companies=1500)
    report = await agg.search("Series B SaaS companies in New York", mode="company", max_results=20)
    assert report.outcome("sixtyfour").status == "found"
    for record in report.records:
        assert record.entity.kind == "company"
        assert record.entity.funding_stage == "Series B"  # type: ignore[union-attr]


async def test_the_sixth_concurrent_deep_search_is_queued_by_us_not_refused_by_the_provider(
    make_aggregator: Any,
) -> None:
    agg = await make_aggregator(n_companies=600)
    queries = [f"{title} in New York" for title in
               ("VP of Engineering", "VP of Sales", "CTO", "CEO", "VP of Marketing", "VP of Product")]
    reports = await asyncio.gather(*(agg.search(q, max_results=5) for q in queries))

    assert all(r.outcome("sixtyfour").status in ("found", "no_result") for r in reports)
    start = endpoint_stats(agg, START)
    assert start["calls"] == 6 and start["statuses"] == {"200": 6}  # no 429 served
    assert agg.sandbox.stats()["providers"]["sixtyfour"]["jobs_started"] == 6


async def test_without_job_slots_the_sixth_search_draws_the_documented_429(make_aggregator: Any) -> None:
    """Control for the test above: the emulator does enforce the limit of 5."""
    agg = await make_aggregator(n_companies=600, max_concurrent_jobs=None)
    queries = [f"{title} in New York" for title in
               ("VP of Engineering", "VP of Sales", "CTO", "CEO", "VP of Marketing", "VP of Product")]
    reports = await asyncio.gather(*(agg.search(q, max_results=5) for q in queries))

    assert endpoint_stats(agg, START)["statuses"].get("429", 0) >= 1
    # ... and the 429 was waited out per Retry-After, so every search still finished
    assert all(r.outcome("sixtyfour").status in ("found", "no_result") for r in reports)


async def _ready_job(agg: Aggregator, request: SearchRequest) -> JobRef:
    adapter = agg.adapter("sixtyfour")
    job = await adapter.submit(request, "key-cursor-test")
    while True:
        await agg.clock.sleep(10)
        state = await adapter.poll(job)
        if isinstance(state, Ready):
            assert state.job is not None
            return state.job
        assert isinstance(state, Pending)


async def test_an_expired_cursor_recovers_from_search_id_without_duplicates(make_aggregator: Any) -> None:
    agg = await make_aggregator(page_size=5)
    adapter = agg.adapter("sixtyfour")
    job = await _ready_job(agg, SearchRequest(query="Software Engineer in New York", max_results=40))

    first = await adapter.fetch(job, None)
    ids = [h.provider_record_id for h in first.hits]
    agg.sandbox.emulator("sixtyfour").expire_cursor(first.checkpoint["cursor"])
    checkpoint, done = first.checkpoint, first.done
    while not done:
        page = await adapter.fetch(job, checkpoint)
        ids += [h.provider_record_id for h in page.hits]
        checkpoint, done = page.checkpoint, page.done

    assert checkpoint["restarts"] == 1
    assert len(ids) == len(set(ids)) == 40
    query = endpoint_stats(agg, "POST /search/query")
    assert query["statuses"].get("400") == 1  # the expired cursor, once


async def test_csv_download_is_fetched_without_the_api_key_and_matches_the_query_path(
    make_aggregator: Any,
) -> None:
    via_query = await (await make_aggregator()).search(DEMO, max_results=30)
    agg = await make_aggregator(fetch_via="csv")
    via_csv = await agg.search(DEMO, max_results=30)

    stats = agg.sandbox.stats()["providers"]["sixtyfour"]
    assert stats["storage_requests"] == 1 and stats["storage_requests_with_api_key"] == 0
    assert via_csv.outcome("sixtyfour").status == "found"
    assert [r.record_id for r in via_csv.records] == [r.record_id for r in via_query.records]


async def test_429s_on_start_are_waited_out_and_start_one_job(make_aggregator: Any) -> None:
    fault = FaultRule(provider="sixtyfour", endpoint=START, kind="http_429", first_n=2, retry_after_s=3.0)
    agg = await make_aggregator(faults=(fault,), n_companies=600)
    report = await agg.search("CTO in New York", max_results=5)

    outcome = report.outcome("sixtyfour")
    assert outcome.status == "found" and outcome.retries == 2 and outcome.error is None
    assert agg.sandbox.stats()["providers"]["sixtyfour"]["jobs_started"] == 1

    again = await agg.search("CTO in Berlin", max_results=5)  # the same Aggregator, no fault left
    assert again.outcome("sixtyfour").retries == 0  # an outcome counts its own run's retries


async def test_a_lost_start_response_is_replayed_with_the_same_search_id(make_aggregator: Any) -> None:
    fault = FaultRule(provider="sixtyfour", endpoint=START, kind="malformed_json", first_n=1)
    agg = await make_aggregator(faults=(fault,), n_companies=600)
    report = await agg.search("CTO in New York", max_results=5)

    assert report.outcome("sixtyfour").status == "found"
    stats = agg.sandbox.stats()["providers"]["sixtyfour"]
    assert endpoint_stats(agg, START)["calls"] == 2
    assert stats["jobs_started"] == 1  # the retry carried the same search_id


async def test_a_failed_job_is_reported_with_the_provider_reason(make_aggregator: Any) -> None:
    fault = FaultRule(provider="sixtyfour", kind="job_failure", first_n=1)
    agg = await make_aggregator(faults=(fault,), n_companies=600)
    report = await agg.search("CTO in New York", max_results=5)

    outcome = report.outcome("sixtyfour")
    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error.type == "JobFailedError"
    assert not report.delivered


async def test_the_deadline_ends_a_slow_job_with_a_resumable_outcome(make_aggregator: Any) -> None:
    agg = await make_aggregator(emulator={"duration_min_s": 300, "duration_max_s": 300}, n_companies=600)
    report = await agg.search("CTO in New York", max_results=5, deadline_s=40)

    outcome = report.outcome("sixtyfour")
    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error.type == "DeadlineExceededError"
    assert outcome.job_id is not None and "resumed" in (outcome.note or "")
    # In virtual time, counted on the sandbox, not timed: the run lasted its 40 s (the deadline runs
    # from the run's start and only a slow machine makes it later), and the provider saw the polls
    # that fit in 40 s at 10-15 s apart, not the ~20 of a 300 s job nor those of a run cut off late.
    assert report.elapsed_s >= 40 - 1e-6
    polls = agg.sandbox.requests("sixtyfour", "GET /search/status/{task_id}")
    assert 1 <= len(polls) <= 4, [p.received_at_s for p in polls]


async def test_the_legacy_status_path_is_used_when_the_new_one_is_missing(make_aggregator: Any) -> None:
    agg = await make_aggregator(emulator={"legacy_status_only": True}, n_companies=600)
    report = await agg.search("CTO in New York", max_results=5)

    assert report.outcome("sixtyfour").status == "found"
    assert endpoint_stats(agg, "GET /search/deep-search-status/{task_id}")["calls"] >= 1
