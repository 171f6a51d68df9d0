"""The run deadline cuts a provider off wherever it waits: a job slot, a request that never answers.

Found by the fault soak: before, only the checks between steps saw the deadline, so a search
waiting on a slow response, a retry's Retry-After or a job slot ran on until the core's real-time
grace (5 real seconds: 2,500 virtual seconds on a 0.002 time scale) cut it off.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from aggregator.clock import ScaledClock
from aggregator.config import load_settings
from aggregator.contract import Capabilities, Checkpoint, JobRef, JobState, Limits, Page, PollPolicy, ProviderAdapter
from aggregator.jobstore import InMemoryJobStore
from aggregator.limits import ProviderLimiter
from aggregator.models import ProviderOutcome, SearchRequest
from aggregator.scheduler import JobRunner

SCALE = 0.01  # 30 virtual seconds = 0.3 s
DEADLINE_S = 30.0
TOLERANCE_S = 10.0  # virtual: 0.1 real seconds of event-loop latency


class StuckAdapter(ProviderAdapter):
    """A provider whose submit is sent and never answered."""

    name: ClassVar[str] = "stuck"
    capabilities: ClassVar[Capabilities] = Capabilities(modes=frozenset({"people"}))

    def __init__(self) -> None:
        super().__init__(client=None, settings=load_settings(env={}).providers["sixtyfour"])  # type: ignore[arg-type]
        self.submits = 0

    @staticmethod
    def auth_headers(api_key: str) -> dict[str, str]:
        return {}

    @classmethod
    def poll_policy_from(cls, settings: Any) -> PollPolicy:
        return PollPolicy()

    async def submit(self, request: SearchRequest, idempotency_key: str) -> JobRef:
        self.submits += 1
        await asyncio.Event().wait()  # in flight forever
        raise AssertionError("unreachable")

    async def poll(self, job: JobRef) -> JobState:
        raise AssertionError("never submitted")

    async def fetch(self, job: JobRef, checkpoint: Checkpoint | None, limit: int | None = None) -> Page:
        raise AssertionError("never submitted")


async def run(adapter: StuckAdapter, limiter: ProviderLimiter, clock: ScaledClock) -> ProviderOutcome:
    runner = JobRunner(run_id="run", adapter=adapter, request=SearchRequest(query="CTO in Berlin"),
                       limiter=limiter, poll_policy=PollPolicy(), store=InMemoryJobStore(), clock=clock,
                       deadline_at=clock.monotonic() + DEADLINE_S, emit=lambda _: None)
    async with asyncio.timeout(5.0):  # a hang fails the test instead of blocking the suite
        return await runner.run()


async def test_a_request_that_never_answers_is_cut_off_at_the_deadline() -> None:
    clock = ScaledClock(SCALE)
    adapter = StuckAdapter()
    outcome = await run(adapter, ProviderLimiter("stuck", Limits(), clock), clock)

    assert adapter.submits == 1
    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error.type == "DeadlineExceededError"
    assert outcome.elapsed_s is not None and DEADLINE_S <= outcome.elapsed_s <= DEADLINE_S + TOLERANCE_S


async def test_waiting_for_a_job_slot_held_by_another_search_ends_at_the_deadline() -> None:
    clock = ScaledClock(SCALE)
    limiter = ProviderLimiter("stuck", Limits(max_concurrent_jobs=1), clock)
    adapter = StuckAdapter()
    async with limiter.job_slot():  # the provider's only concurrent-job slot is taken
        outcome = await run(adapter, limiter, clock)

    assert adapter.submits == 0  # nothing was sent
    assert outcome.error is not None and outcome.error.type == "DeadlineExceededError"
    assert outcome.elapsed_s is not None and outcome.elapsed_s <= DEADLINE_S + TOLERANCE_S
