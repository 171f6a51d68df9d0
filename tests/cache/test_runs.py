"""The result cache on the sandbox: hits, what is never cached, TTL, refresh, bypass, single flight, persistence."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.cache import CACHE_ACCOUNT, cacheable
from aggregator.coordination import InProcessCoordinator
from aggregator.errors import ConfigError
from aggregator.events import OutcomeEvent, ProgressEvent, RecordsEvent, ReportEvent, RunStartedEvent
from aggregator.journal import SqliteJournal
from aggregator.models import ErrorInfo, ProviderOutcome, SearchReport, SearchRequest
from providers.sandbox.faults import FaultRule
from tests.cache.conftest import BenchFactory, WallClock

QUERY = "VP of Engineering at Series B SaaS startups in New York"
TTL = 600.0


async def test_a_repeated_request_is_answered_from_the_cache(cache_bench: BenchFactory) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    first = await agg.search(QUERY, max_results=20, cache_ttl_s=TTL)
    assert first.cached is None and bench.jobs() == 1
    bench.wall.advance(42)

    again = await agg.search("  vp of ENGINEERING at series b saas startups in new york", max_results=20,
                             cache_ttl_s=TTL, deadline_s=20_000, budget=1000)  # deadline and budget: same key
    assert bench.jobs() == 1  # no provider called
    assert again.cached is not None and again.cached.run_id == first.run_id and again.cached.age_s == 42
    assert again.run_id == first.run_id  # a hit is not journaled as a run: it is the source run's report
    assert again.records == first.records  # the same records, with their provenance
    assert again.total_credits == 0
    outcome, earlier = again.outcome("sixtyfour"), first.outcome("sixtyfour")
    assert outcome.status == earlier.status == "found" and outcome.records == earlier.records
    assert outcome.note is not None and outcome.note.startswith(f"from the cache (run {first.run_id[:8]}, 42 s old)")
    assert len(await agg.job_store.runs()) == 1


async def test_a_hit_streams_the_run_started_its_outcomes_records_and_report(cache_bench: BenchFactory) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    first = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    events = [event async for event in agg.stream(QUERY, max_results=10, cache_ttl_s=TTL)]
    outcomes = len(first.outcomes)
    assert [type(e) for e in events] == [RunStartedEvent, *[OutcomeEvent] * outcomes, RecordsEvent, ReportEvent]
    started, *replayed, records, report = events
    assert isinstance(started, RunStartedEvent) and started.run_id == first.run_id and not started.resumed
    assert all(isinstance(e, OutcomeEvent) and e.outcome.credits == 0 for e in replayed)
    assert isinstance(records, RecordsEvent) and records.changed == first.records
    assert isinstance(report, ReportEvent) and report.report.cached is not None


async def test_a_failed_run_is_never_cached(cache_bench: BenchFactory) -> None:
    fault = FaultRule("sixtyfour", "POST /search/start-deep-search", "job_failure", first_n=1)
    bench = await cache_bench(faults=(fault,))
    agg = await bench.open()
    failed = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    assert failed.outcome("sixtyfour").status == "failed" and not cacheable(failed)
    ran = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    assert ran.cached is None and ran.outcome("sixtyfour").status == "found" and bench.jobs() == 2
    hit = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    assert hit.cached is not None and hit.cached.run_id == ran.run_id and bench.jobs() == 2


async def test_a_run_cut_by_its_deadline_is_not_cached(cache_bench: BenchFactory) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    cut = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL, deadline_s=5)  # a deep search takes ~60 s
    outcome = cut.outcome("sixtyfour")
    assert outcome.status in ("partial", "failed") and outcome.error is not None
    assert outcome.error.type == "DeadlineExceededError"
    again = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL, deadline_s=5)
    assert again.cached is None and bench.jobs() == 2


async def test_a_run_cut_by_its_budget_is_not_cached(cache_bench: BenchFactory) -> None:
    bench = await cache_bench(providers=("orbit",))
    agg = await bench.open()
    cut = await agg.search(QUERY, max_results=50, budget=15, providers=("orbit",), cache_ttl_s=TTL)
    outcome = cut.outcome("orbit")
    assert outcome.status == "partial" and outcome.error is not None and outcome.error.type == "BudgetExceededError"
    again = await agg.search(QUERY, max_results=50, budget=15, providers=("orbit",), cache_ttl_s=TTL)
    assert again.cached is None and bench.jobs("orbit") == 2


async def test_an_entry_older_than_the_ttl_is_not_used(cache_bench: BenchFactory) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    first = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    bench.wall.advance(TTL)
    hit = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)  # exactly the TTL old: still fresh
    assert hit.cached is not None and hit.cached.age_s == TTL
    shorter = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL - 1)  # the TTL is the caller's
    assert shorter.cached is None and bench.jobs() == 2
    bench.wall.advance(TTL + 1)
    expired = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    assert expired.cached is None and bench.jobs() == 3 and expired.run_id not in (first.run_id, shorter.run_id)


async def test_refresh_runs_anew_and_replaces_the_entry(cache_bench: BenchFactory) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    first = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    refreshed = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL, refresh=True)
    assert refreshed.cached is None and refreshed.run_id != first.run_id and bench.jobs() == 2
    hit = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    assert hit.cached is not None and hit.cached.run_id == refreshed.run_id and bench.jobs() == 2
    assert await agg.job_store.cached_run("no such key", TTL) is None


async def test_cache_false_bypasses_the_cache_and_stores_nothing(cache_bench: BenchFactory) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    first = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    bypassed = await agg.search(QUERY, max_results=10, cache=False)
    assert bypassed.cached is None and bench.jobs() == 2
    hit = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
    assert hit.cached is not None and hit.cached.run_id == first.run_id  # the bypassing run did not replace it


async def test_the_library_cache_is_off_by_default_and_on_with_a_configured_ttl(cache_bench: BenchFactory) -> None:
    bench = await cache_bench()
    off = await bench.open()
    await off.search(QUERY, max_results=10)
    assert (await off.search(QUERY, max_results=10)).cached is None and bench.jobs() == 2
    with pytest.raises(ConfigError) as refused:
        off.start(QUERY, cache=True)  # a cache without a TTL cannot apply
    assert refused.value.field == "cache"
    on = await bench.open(cache={"ttl_s": TTL})
    await on.search(QUERY, max_results=10)
    hit = await on.search(QUERY, max_results=10, cache=True)
    assert hit.cached is not None and bench.jobs() == 3


@pytest.mark.parametrize(("arguments", "field"), [
    ({"cache_ttl_s": 0}, "cache_ttl_s"),
    ({"cache_ttl_s": -5}, "cache_ttl_s"),
    ({"cache": False, "refresh": True}, "refresh"),
    ({"cache": False, "cache_ttl_s": 60}, "cache_ttl_s"),
    ({"run_id": "abc", "cache_ttl_s": 60}, "cache_ttl_s"),
    ({"run_id": "abc", "refresh": True}, "refresh"),
    ({"run_id": "abc", "cache": True}, "cache"),
])
async def test_cache_arguments_that_cannot_apply_are_refused(cache_bench: BenchFactory, arguments: dict[str, Any],
                                                             field: str) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    with pytest.raises(ConfigError) as refused:
        agg.start(QUERY, **arguments)
    assert refused.value.field == field
    assert bench.jobs() == 0


async def test_identical_concurrent_requests_run_once(cache_bench: BenchFactory) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    reports = await asyncio.gather(*(agg.search(QUERY, max_results=10, cache_ttl_s=TTL) for _ in range(5)))
    assert bench.jobs() == 1
    leaders = [r for r in reports if r.cached is None]
    assert len(leaders) == 1
    assert all(r.cached is not None and r.cached.run_id == leaders[0].run_id for r in reports if r is not leaders[0])
    assert all(r.records == leaders[0].records for r in reports)
    assert sum(r.total_credits for r in reports) == leaders[0].total_credits
    coordinator = agg.providers.coordinator
    assert isinstance(coordinator, InProcessCoordinator)
    assert not [key for key in coordinator.state.pools if key[0] == CACHE_ACCOUNT]  # no pool left per request key


async def test_a_waiter_runs_itself_when_the_run_it_waited_for_failed(cache_bench: BenchFactory) -> None:
    fault = FaultRule("sixtyfour", "POST /search/start-deep-search", "job_failure", first_n=1)
    bench = await cache_bench(faults=(fault,))
    agg = await bench.open()
    first, second = await asyncio.gather(*(agg.search(QUERY, max_results=10, cache_ttl_s=TTL) for _ in range(2)))
    assert first.outcome("sixtyfour").status == "failed" and second.outcome("sixtyfour").status == "found"
    assert second.cached is None and bench.jobs() == 2


async def test_closing_a_run_early_gives_the_lease_back(cache_bench: BenchFactory) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    events = agg.stream(QUERY, max_results=10, cache_ttl_s=TTL)
    started = await anext(events)
    assert isinstance(started, RunStartedEvent)
    while not isinstance(await anext(events), ProgressEvent):  # the provider step is under way
        pass
    await events.aclose()  # interrupted: not cached, and the next identical request is not blocked
    interrupted = await agg.job_store.run(started.run_id)
    assert interrupted is not None and interrupted.status == "interrupted"
    report = await asyncio.wait_for(agg.search(QUERY, max_results=10, cache_ttl_s=TTL), timeout=60)
    assert report.cached is None and report.run_id != started.run_id


async def test_a_new_aggregator_on_the_same_sqlite_journal_gets_the_hit(cache_bench: BenchFactory,
                                                                        tmp_path: Path) -> None:
    path, wall = tmp_path / "journal.sqlite", WallClock()
    async with SqliteJournal(path, now=wall) as journal:
        bench = await cache_bench(store=journal, wall=wall)
        first = await (await bench.open()).search(QUERY, max_results=10, cache_ttl_s=TTL)
    wall.advance(60)
    async with SqliteJournal(path, now=wall) as reopened:  # another process, a minute later
        agg = await bench.open(job_store=reopened)
        hit = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
        assert hit.cached is not None and hit.cached.run_id == first.run_id and hit.records == first.records
        assert hit.cached.age_s == 60 and bench.jobs() == 1
        expired = await agg.search(QUERY, max_results=10, cache_ttl_s=59)
        assert expired.cached is None and bench.jobs() == 2
        newest = await agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
        assert newest.cached is not None and newest.cached.run_id == expired.run_id  # it replaced the entry


async def test_an_older_journal_gets_the_cache_column_when_opened(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:  # the first schema: no wall times, no cache key
        db.execute("CREATE TABLE runs (run_id TEXT PRIMARY KEY, created_at TEXT NOT NULL, status TEXT NOT NULL,"
                   " request_json TEXT NOT NULL, report_json TEXT)")
    async with SqliteJournal(path) as journal:
        assert await journal.cached_run("k", TTL) is None
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(runs)")}
    assert "cache_key" in columns


# -- what is cacheable, case by case -------------------------------------------------------------
def _report(*outcomes: ProviderOutcome, answered_by: tuple[str, ...] = ()) -> SearchReport:
    now = datetime.now(UTC)
    return SearchReport(run_id="r", request=SearchRequest(query="q"), started_at=now, finished_at=now, elapsed_s=1,
                        sandbox=True, outcomes=outcomes, records=(), answered_by=answered_by)


FOUND = ProviderOutcome(provider="a", status="found", records=3)
ERROR = ErrorInfo(type="DeadlineExceededError", message="deadline")


@pytest.mark.parametrize(("outcomes", "answered_by", "expected"), [
    ((FOUND,), (), True),
    ((ProviderOutcome(provider="a", status="no_result"),), (), True),
    ((FOUND, ProviderOutcome(provider="b", status="skipped", note="company mode not supported")), (), True),
    ((FOUND, ProviderOutcome(provider="b", status="skipped", note="cancelled")), ("a",), True),  # race loser
    ((FOUND, ProviderOutcome(provider="b", status="partial", records=2, note="cancelled")), ("a",), True),
    ((FOUND, ProviderOutcome(provider="b", status="partial", records=2, note="cancelled")), ("b",), False),
    ((FOUND, ProviderOutcome(provider="b", status="partial", records=2, error=ERROR)), (), False),  # deadline
    ((FOUND, ProviderOutcome(provider="b", status="failed", error=ERROR)), (), False),
    ((FOUND, ProviderOutcome(provider="b", status="failed", note="failed before starting")), (), False),
    ((ProviderOutcome(provider="a", status="found", records=3, error=ERROR),), (), False),
    ((ProviderOutcome(provider="a", status="skipped", note="no key"),), (), False),  # nothing delivered
])
def test_only_complete_successful_runs_are_cacheable(outcomes: tuple[ProviderOutcome, ...],
                                                     answered_by: tuple[str, ...], expected: bool) -> None:
    assert cacheable(_report(*outcomes, answered_by=answered_by)) is expected


def test_a_cached_report_or_none_is_not_cacheable_again() -> None:
    from aggregator.models import CacheInfo

    report = _report(FOUND)
    assert cacheable(report) and not cacheable(None)
    marked = report.model_copy(update={"cached": CacheInfo(run_id="r", cached_at=report.finished_at, age_s=1)})
    assert not cacheable(marked)

