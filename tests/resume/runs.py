"""Run a search until it crashes at a durable step, then resume it in a new "process" (on the same sandbox).

Each "process" is its own :class:`Aggregator` (own HTTP session, adapters, limiters), opened and
closed around its run; only the sandbox (the provider) and the store's durable state (the
:class:`~tests.resume.crash.Disk`) outlive it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from aggregator.config import Settings
from aggregator.core import Aggregator
from aggregator.events import RunStartedEvent
from aggregator.jobstore import JobRecord
from aggregator.models import Hit, SearchReport, SearchRequest
from providers.sandbox.runner import Sandbox
from providers.sandbox.stats import RecordedRequest
from tests.resume.crash import CrashingStore, CrashPoint, Disk, SimulatedCrash

__all__ = ["Crashed", "Resumed", "crash", "crash_and_resume", "resume"]


@dataclass
class Crashed:
    """What a crashed run left: the durable job record and hits, and how far the provider got."""

    run_id: str
    record: JobRecord
    hits: list[Hit]
    requests: list[RecordedRequest]  # what the provider had received when the process died
    store: CrashingStore

    @property
    def key(self) -> str:
        """The idempotency key journaled before the crash."""
        return self.record.idempotency_key


@dataclass
class Resumed:
    """A crashed run and its resume."""

    crashed: Crashed
    report: SearchReport
    record: JobRecord  # the job as the store holds it after the resume
    hits: list[Hit]  # the hits the store holds after the resume
    requests: list[RecordedRequest]  # what the provider received from the resumed process

    def before(self, route: str) -> list[RecordedRequest]:
        """The requests of ``route`` sent before the crash."""
        return [r for r in self.crashed.requests if r.route == route]

    def after(self, route: str) -> list[RecordedRequest]:
        """The requests of ``route`` sent by the resumed process."""
        return [r for r in self.requests if r.route == route]

    def all(self, route: str) -> list[RecordedRequest]:
        return self.before(route) + self.after(route)


async def crash(sandbox: Sandbox, disk: Disk, settings: Settings, request: SearchRequest, point: CrashPoint,
                *, page: int = 1) -> Crashed:
    """Run ``request`` (one provider) until the store crashes at ``point``; the Aggregator is closed."""
    assert request.providers is not None
    (provider,) = request.providers
    store = CrashingStore(await disk.open(), disk, point, provider=provider, page=page)
    run_id = None
    async with Aggregator(settings, sandbox=sandbox, job_store=store) as agg:
        with pytest.raises(SimulatedCrash):
            async for event in agg.stream(request):
                if isinstance(event, RunStartedEvent):
                    run_id = event.run_id
    assert store.crashed and run_id is not None
    requests = sandbox.requests(provider)
    assert all(r.status is not None for r in requests)  # nothing was left in flight
    durable = await disk.open()  # what the next process finds
    state = await durable.run(run_id)
    assert state is not None and state.status == "running"  # a killed run: never finished, no outcome
    assert (state.outcomes, state.report) == ([], None)
    record = await durable.get(run_id, provider)
    assert record is not None
    return Crashed(run_id, record, await durable.hits(run_id, provider), requests, store)


async def resume(sandbox: Sandbox, disk: Disk, settings: Settings, crashed: Crashed) -> Resumed:
    """``Aggregator.resume`` the crashed run in a new process on the same sandbox and store."""
    provider = crashed.record.provider
    store = await disk.open()
    async with Aggregator(settings, sandbox=sandbox, job_store=store) as agg:
        report = await agg.resume(crashed.run_id)
    record = await store.get(crashed.run_id, provider)
    assert record is not None
    requests = sandbox.requests(provider)[len(crashed.requests):]
    return Resumed(crashed, report, record, await store.hits(crashed.run_id, provider), requests)


async def crash_and_resume(sandbox: Sandbox, disk: Disk, settings: Settings, request: SearchRequest,
                           point: CrashPoint, *, page: int = 1) -> Resumed:
    return await resume(sandbox, disk, settings, await crash(sandbox, disk, settings, request, point, page=page))


def bodies(requests: list[RecordedRequest]) -> list[Any]:
    """The JSON bodies of ``requests``, in order."""
    return [r.json() for r in requests]
