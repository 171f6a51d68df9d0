"""Per-search bookkeeping stays bounded at scale: what a search leaves behind, and what each request
costs, does not grow with the searches, jobs, buckets or hits in flight (issue "CPU and memory at
scale"). Every check is on counts and sizes, never on timings; ``deepsearch bench`` measures the time.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from tenacity import AsyncRetrying

import aggregator.retry as retry_module
from aggregator.clock import Clock
from aggregator.config import RetrySettings
from aggregator.coordination.local import LocalLeasePool
from aggregator.errors import ProviderServerError
from aggregator.events import ProgressEvent, ReportEvent
from aggregator.jobstore import DEFAULT_KEEP_FINISHED, InMemoryJobStore
from aggregator.limits import SlidingWindowLimiter, TokenBucketLimiter
from aggregator.models import Hit, Person, SearchReport, SearchRequest
from aggregator.retry import RetryPolicy
from tests.conftest import AggFactory

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
REQUEST = SearchRequest(query="staff engineers in Berlin", max_results=5)


class StepClock:
    """A clock that moves only when told (``advance``); ``sleep`` moves it and returns."""

    scale = 1.0

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return NOW + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += max(0.0, seconds)


def hit(i: int) -> Hit:
    return Hit(provider="fake", provider_record_id=f"r{i}", job_id="job-1", rank=i + 1, retrieved_at=NOW,
               entity=Person(full_name=f"Person {i}"), raw={"i": i})


def report(run_id: str) -> SearchReport:
    return SearchReport(run_id=run_id, request=REQUEST, started_at=NOW, finished_at=NOW, elapsed_s=1.0,
                        sandbox=True, outcomes=(), records=(), answered_by=())


async def journal_run(store: InMemoryJobStore, run_id: str, status: str | None) -> None:
    """One run's journal writes as the scheduler makes them; ``status`` None leaves it running."""
    await store.record_run(run_id, REQUEST, NOW)
    await store.record_submit_intent(run_id, "fake", f"key-{run_id}", REQUEST)
    await store.record_hits(run_id, "fake", [hit(0), hit(1)])
    await store.record_checkpoint(run_id, "fake", {"offset": 2})
    if status is not None:
        await store.finish_run(run_id, status, report(run_id) if status != "interrupted" else None)


# -- the in-memory journal ------------------------------------------------------------------------

async def test_the_in_memory_journal_keeps_a_bounded_number_of_finished_runs() -> None:
    store = InMemoryJobStore(keep_finished=10)
    for i in range(50):
        await journal_run(store, f"run-{i:03d}", "done" if i % 2 else "failed")
    assert len(await store.runs(limit=1000)) == 10
    assert len(store.records) == 10  # the forgotten runs' jobs, hits and outcomes went with them
    assert await store.run("run-000") is None and await store.get("run-000", "fake") is None
    kept = await store.run("run-049")
    assert kept is not None and kept.report is not None and len(kept.hits["fake"]) == 2


async def test_running_and_interrupted_runs_are_never_forgotten() -> None:
    store = InMemoryJobStore(keep_finished=2)
    await journal_run(store, "running", None)
    await journal_run(store, "interrupted", "interrupted")
    for i in range(20):
        await journal_run(store, f"done-{i}", "done")
    for run_id in ("running", "interrupted"):
        record = await store.get(run_id, "fake")
        assert record is not None and record.idempotency_key == f"key-{run_id}"  # still resumable
        assert record.checkpoint == {"offset": 2}
    assert {s.run_id for s in await store.runs(limit=100)} == {"running", "interrupted", "done-18", "done-19"}


async def test_a_resumed_run_that_finishes_again_counts_once() -> None:
    store = InMemoryJobStore(keep_finished=3)
    await journal_run(store, "again", "interrupted")
    await store.finish_run("again", "done", report("again"))
    await store.finish_run("again", "done", report("again"))
    for i in range(2):
        await journal_run(store, f"other-{i}", "done")
    assert {s.run_id for s in await store.runs()} == {"again", "other-0", "other-1"}


async def test_the_default_bound_and_no_bound() -> None:
    assert DEFAULT_KEEP_FINISHED >= 100
    store = InMemoryJobStore(keep_finished=None)
    for i in range(30):
        await journal_run(store, f"run-{i}", "done")
    assert len(await store.runs(limit=100)) == 30
    with pytest.raises(ValueError, match="keep_finished"):
        InMemoryJobStore(keep_finished=-1)


async def test_a_job_record_keeps_its_whole_history() -> None:
    store = InMemoryJobStore()
    await journal_run(store, "r", None)
    await store.record_state("r", "fake", "ready")
    record = await store.get("r", "fake")
    assert record is not None
    assert record.history == ("submitting", "checkpoint", "ready") and record.state == "ready"
    assert record.checkpoint == {"offset": 2} and record.idempotency_key == "key-r"


# -- retries ----------------------------------------------------------------------------------------

class CountingRetrying(AsyncRetrying):
    built = 0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        type(self).built += 1
        super().__init__(*args, **kwargs)


async def test_a_call_that_succeeds_at_once_builds_no_retry_machinery(monkeypatch: pytest.MonkeyPatch) -> None:
    CountingRetrying.built = 0
    monkeypatch.setattr(retry_module, "AsyncRetrying", CountingRetrying)
    policy = RetryPolicy(RetrySettings(), StepClock())

    async def ok() -> str:
        return "ok"

    for _ in range(100):
        assert await policy.call(ok) == "ok"
    assert CountingRetrying.built == 0


async def test_a_retried_call_counts_its_first_attempt_once(monkeypatch: pytest.MonkeyPatch) -> None:
    CountingRetrying.built = 0
    monkeypatch.setattr(retry_module, "AsyncRetrying", CountingRetrying)
    clock = StepClock()
    waits: list[float] = []
    policy = RetryPolicy(RetrySettings(max_attempts=3), clock, rng=random.Random(1),
                         on_retry=lambda error, wait_s: waits.append(wait_s))
    sent = 0

    async def down() -> str:
        nonlocal sent
        sent += 1
        raise ProviderServerError("down", status=503, retry_after_s=2.0, provider="fake", endpoint="GET /x",
                                  retryable=True)

    with pytest.raises(ProviderServerError):
        await policy.call(down)
    assert sent == 3 and waits == [2.0, 2.0] and clock.t == 4.0  # 3 attempts in all, 2 waits between them
    assert CountingRetrying.built == 1


# -- limits and leases ----------------------------------------------------------------------------

async def test_a_sliding_window_keeps_only_the_stamps_inside_its_window() -> None:
    clock: Clock = StepClock()
    limiter = SlidingWindowLimiter("w", limit=1000, window_s=10.0, clock=clock)
    for _ in range(5000):  # 100 requests per virtual second, for 50 seconds
        await limiter.acquire()
        limiter.release()
        await clock.sleep(0.01)
    await limiter.acquire()
    assert len(limiter._stamps) <= 1001  # one window's worth, not every request ever sent
    limiter.release()


async def test_a_token_bucket_holds_no_per_request_state() -> None:
    clock: Clock = StepClock()
    bucket = TokenBucketLimiter("b", rate_per_s=100.0, burst=10, clock=clock)
    for _ in range(2000):
        await bucket.acquire()
        bucket.release()
        await clock.sleep(0.01)
    assert bucket._in_flight == 0 and 0.0 <= bucket._tokens <= bucket.capacity


async def test_a_lease_pool_forgets_every_released_lease() -> None:
    pool = LocalLeasePool("jobs", capacity=5, clock=StepClock())
    for _ in range(1000):
        leases = [await pool.acquire("me") for _ in range(5)]
        for lease in leases:
            pool.release(lease)
    assert pool.in_use == 0 and not pool._held and not pool._waiters


# -- runs -------------------------------------------------------------------------------------------

async def test_search_builds_no_progress_events_nobody_reads(make_aggregator: AggFactory) -> None:
    agg = await make_aggregator(n_companies=300)
    quiet = agg.start("VP of Engineering in New York", mode="people", max_results=5)
    quiet.progress = False
    events = [event async for event in quiet.events()]
    assert not any(isinstance(e, ProgressEvent) for e in events) and isinstance(events[-1], ReportEvent)
    loud = [event async for event in agg.stream("VP of Engineering in New York", mode="people", max_results=5)]
    assert any(isinstance(e, ProgressEvent) for e in loud)
    quiet_report, loud_report = events[-1].report, loud[-1]
    assert isinstance(loud_report, ReportEvent)
    assert len(quiet_report.records) == len(loud_report.report.records) == 5


async def test_searches_in_one_aggregator_leave_a_bounded_journal(make_aggregator: AggFactory) -> None:
    agg = await make_aggregator(n_companies=300)
    assert isinstance(agg.job_store, InMemoryJobStore)
    agg.job_store._keep_finished = 3
    for _ in range(6):
        report = await agg.search("VP of Engineering in New York", mode="people", max_results=3)
        assert report.outcome("sixtyfour").status == "found"
    assert len(await agg.job_store.runs(limit=100)) == 3 and len(agg.job_store.records) == 3
