"""The scheduler with a scripted fake adapter: polling cadence, streaming, caps, failures."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from aggregator.config import load_settings
from aggregator.contract import (
    Capabilities,
    Checkpoint,
    JobRef,
    JobState,
    Limits,
    Page,
    Pending,
    PollPolicy,
    ProviderAdapter,
    Ready,
)
from aggregator.events import Event, HitsEvent
from aggregator.jobstore import InMemoryJobStore
from aggregator.limits import ProviderLimiter
from aggregator.models import Hit, Person, SearchRequest
from aggregator.scheduler import JobRunner
from tests.fakes import FakeClock

NOW = datetime(2026, 11, 21, tzinfo=UTC)


def hit(i: int) -> Hit:
    return Hit(provider="fake", provider_record_id=f"r{i}", rank=i, retrieved_at=NOW,
               entity=Person(full_name=f"Person {i}", linkedin_url=f"https://www.linkedin.com/in/p{i}"))


class FakeAdapter(ProviderAdapter):
    name: ClassVar[str] = "fake"
    capabilities: ClassVar[Capabilities] = Capabilities(modes=frozenset({"people"}))

    def __init__(self, states: Sequence[JobState | Exception], pages: Sequence[Sequence[int]],
                 streaming: bool = False) -> None:
        super().__init__(client=None, settings=load_settings(env={}).providers["sixtyfour"])  # type: ignore[arg-type]
        self.states = list(states)
        self.pages = [list(p) for p in pages]
        self.fetches = 0
        if streaming:
            self.capabilities = Capabilities(modes=frozenset({"people"}), streaming=True)  # type: ignore[misc]

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {}

    @classmethod
    def limits_from(cls, settings: Any) -> Limits:
        return Limits()

    @classmethod
    def poll_policy_from(cls, settings: Any) -> PollPolicy:
        return PollPolicy(interval_s=10.0, max_interval_s=15.0, backoff=1.25)

    async def submit(self, request: SearchRequest, idempotency_key: str) -> JobRef:
        return JobRef("fake", "job-1", idempotency_key, request.mode, NOW)

    async def poll(self, job: JobRef) -> JobState:
        state = self.states.pop(0)
        if isinstance(state, Exception):
            raise state
        return state

    async def fetch(self, job: JobRef, checkpoint: Checkpoint | None, limit: int | None = None) -> Page:
        index = int((checkpoint or {}).get("page", 0))
        self.fetches += 1
        ids = self.pages[index] if index < len(self.pages) else []
        return Page(hits=tuple(hit(i) for i in ids), checkpoint={"page": index + 1},
                    done=index + 1 >= len(self.pages))


def runner(adapter: FakeAdapter, *, max_results: int = 100, deadline_s: float = 1000.0,
           clock: FakeClock | None = None) -> tuple[JobRunner, list[Event], InMemoryJobStore]:
    clock = clock or FakeClock()
    events: list[Event] = []
    store = InMemoryJobStore()
    request = SearchRequest(query="q", max_results=max_results)
    job = JobRunner(run_id="run", adapter=adapter, request=request,
                    limiter=ProviderLimiter("fake", Limits(), clock),
                    poll_policy=adapter.poll_policy_from(None), store=store, clock=clock,
                    deadline_at=clock.monotonic() + deadline_s, emit=events.append)
    return job, events, store


async def test_polls_back_off_to_the_maximum_and_server_hints_win() -> None:
    clock = FakeClock()
    hinted = [Pending(poll_after_s=3.0), Pending(poll_after_s=500.0)]
    states = [Pending(), Pending(), Pending(), *hinted, Ready()]
    job, _, _ = runner(FakeAdapter(states, [[1]]), clock=clock)
    outcome = await job.run()

    assert outcome.status == "found"
    assert clock.sleeps == [10.0, 12.5, 15.0, 15.0, 3.0, 15.0]  # x1.25 up to 15; hint 3; hint clamped


async def test_pages_are_fetched_after_ready_with_checkpoints_journaled() -> None:
    job, events, store = runner(FakeAdapter([Ready()], [[1, 2], [3], [4, 5]]))
    outcome = await job.run()

    assert (outcome.status, outcome.records, outcome.pages) == ("found", 5, 3)
    assert [len(e.hits) for e in events if isinstance(e, HitsEvent)] == [2, 1, 2]
    record = store.records[("run", "fake")]
    usage = {"credits": 0.0, "pages": 3, "credits_remaining": None}
    assert record.checkpoint == {"adapter": {"page": 3}, "usage": usage}  # the adapter's, plus the spend so far
    assert record.state == "done"


async def test_streaming_providers_are_read_while_pending() -> None:
    adapter = FakeAdapter([Pending(), Pending(), Ready()], [[1], [2], [3]], streaming=True)
    job, _, _ = runner(adapter)
    outcome = await job.run()

    assert outcome.records == 3 and adapter.fetches == 3
    assert outcome.time_to_first_result_s == 10.0  # first page read at the first poll


async def test_fetching_stops_at_max_results() -> None:
    adapter = FakeAdapter([Ready()], [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    job, _, _ = runner(adapter, max_results=4)
    outcome = await job.run()

    assert outcome.records == 4 and adapter.fetches == 2


async def test_the_deadline_while_pending_fails_the_provider_with_its_job_kept() -> None:
    job, _, store = runner(FakeAdapter([Pending()] * 100, [[1]]), deadline_s=35.0)
    outcome = await job.run()

    assert outcome.status == "failed" and outcome.error and outcome.error.type == "DeadlineExceededError"
    assert outcome.job_id == "job-1" and store.records[("run", "fake")].job is not None


async def test_an_adapter_bug_becomes_a_failed_outcome_instead_of_escaping() -> None:
    job, _, _ = runner(FakeAdapter([KeyError("status")], [[1]]))
    outcome = await job.run()

    assert outcome.status == "failed" and outcome.error and outcome.error.type == "KeyError"
