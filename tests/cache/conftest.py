"""Fixtures of the result-cache tests: a sandbox whose jobs are counted, and Aggregators on it sharing
one job store whose wall clock the test moves (no real sleeping)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from aggregator.core import Aggregator
from aggregator.jobstore import InMemoryJobStore, JobStore
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE, sandbox_settings


@dataclass
class WallClock:
    """A wall clock for the job store that moves only when told."""

    now: datetime = field(default_factory=lambda: datetime(2026, 1, 1, tzinfo=UTC))

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Bench:
    sandbox: Sandbox
    wall: WallClock
    store: JobStore
    open: Callable[..., Awaitable[Aggregator]]

    def jobs(self, provider: str = "sixtyfour") -> int:
        return int(self.sandbox.stats()["providers"][provider]["jobs_started"])


BenchFactory = Callable[..., Awaitable[Bench]]


@pytest.fixture
async def cache_bench() -> AsyncIterator[BenchFactory]:
    """``await cache_bench(providers=..., faults=..., store=...)``: a sandbox and ``bench.open()`` opening
    Aggregators on it (closed at teardown) that share ``bench.store`` (default in memory, on ``bench.wall``)."""
    async with AsyncExitStack() as stack:

        async def factory(*, providers: tuple[str, ...] = ("sixtyfour",), faults: tuple[Any, ...] = (),
                          store: JobStore | None = None, wall: WallClock | None = None) -> Bench:
            config = SandboxConfig(time_scale=FAST_SCALE, n_companies=600, faults=faults, providers=providers)
            sandbox = await stack.enter_async_context(Sandbox(config))
            wall = wall or WallClock()
            shared = store or InMemoryJobStore(now=wall)

            async def open_aggregator(job_store: JobStore | None = None, **settings: Any) -> Aggregator:
                agg = Aggregator(sandbox_settings(settings or None), sandbox=sandbox, job_store=job_store or shared,
                                 wall_clock=wall)
                return await stack.enter_async_context(agg)

            return Bench(sandbox, wall, shared, open_aggregator)

        yield factory
