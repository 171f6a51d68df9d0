"""The run deadline cuts a provider off wherever it waits: a job slot, a request that never answers.

Found by the fault soak: before, only the checks between steps saw the deadline, so a search
waiting on a slow response, a retry's Retry-After or a job slot ran on until the core's real-time
grace (5 real seconds: 2,500 virtual seconds on a 0.002 time scale) cut it off.

The tests run on :class:`~tests.fakes.VirtualTimeLoop` (``@virtual_time``): with nothing to do,
the loop jumps to its next timer instead of waiting, and :class:`~tests.fakes.VirtualClock` reads
its time. The deadline, measured and enforced by the same timers, is exact: no tolerance for a
busy machine.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

from aggregator.config import load_settings
from aggregator.contract import Capabilities, Checkpoint, JobRef, JobState, Limits, Page, PollPolicy, ProviderAdapter
from aggregator.jobstore import InMemoryJobStore
from aggregator.limits import ProviderLimiter
from aggregator.models import ProviderOutcome, SearchRequest
from aggregator.scheduler import JobRunner
from tests.fakes import VirtualClock, virtual_time

DEADLINE_S = 30.0
HANG_GUARD_S = 3600.0  # virtual: a run the deadline does not end fails the test at once, not at pytest's timeout


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


async def run(adapter: StuckAdapter, limiter: ProviderLimiter, clock: VirtualClock) -> ProviderOutcome:
    runner = JobRunner(run_id="run", adapter=adapter, request=SearchRequest(query="CTO in Berlin"),
                       limiter=limiter, poll_policy=PollPolicy(), store=InMemoryJobStore(), clock=clock,
                       deadline_at=clock.monotonic() + DEADLINE_S, emit=lambda _: None)
    async with asyncio.timeout(HANG_GUARD_S):
        return await runner.run()


@virtual_time
async def test_a_request_that_never_answers_is_cut_off_at_the_deadline() -> None:
    clock = VirtualClock()
    adapter = StuckAdapter()
    outcome = await run(adapter, ProviderLimiter("stuck", Limits(), clock), clock)

    assert adapter.submits == 1
    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error.type == "DeadlineExceededError"
    assert outcome.elapsed_s == pytest.approx(DEADLINE_S)


@virtual_time
async def test_waiting_for_a_job_slot_held_by_another_search_ends_at_the_deadline() -> None:
    clock = VirtualClock()
    limiter = ProviderLimiter("stuck", Limits(max_concurrent_jobs=1), clock)
    adapter = StuckAdapter()
    async with limiter.job_slot():  # the provider's only concurrent-job slot is taken
        outcome = await run(adapter, limiter, clock)

    assert adapter.submits == 0  # nothing was sent
    assert outcome.error is not None and outcome.error.type == "DeadlineExceededError"
    assert outcome.elapsed_s == pytest.approx(DEADLINE_S)
