"""Fixtures of the batch tests: a small sandbox shared by the "processes" of a test, and helpers to open an
Aggregator on it with a journal (a new Aggregator stands for a new process, as in ``tests/resume``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from aggregator.batch import SqliteBatchStore
from aggregator.core import Aggregator
from aggregator.jobstore import JobStore
from aggregator.journal import SqliteJournal
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE, sandbox_settings

N_COMPANIES = 1500  # builds in about half a second; the demo queries still find dozens of people
PEOPLE = ("VP of Engineering in New York", "CTO in Berlin", "VP of Sales in London", "CEO in New York",
          "VP of Product in San Francisco", "CTO in London")


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    """Sixtyfour and Orbit on one time-scaled sandbox (the providers' jobs outlive each "process")."""
    config = SandboxConfig(time_scale=FAST_SCALE, n_companies=N_COMPANIES, providers=("sixtyfour", "orbit"))
    async with Sandbox(config) as running:
        yield running


@asynccontextmanager
async def process(sandbox: Sandbox, journal: Path | JobStore, **sixtyfour: Any) -> AsyncIterator[Aggregator]:
    """One "process": an Aggregator on ``sandbox`` journaling to ``journal`` (a path: a SqliteJournal on it)."""
    async with AsyncExitStack() as stack:
        store = (await stack.enter_async_context(SqliteJournal(journal)) if isinstance(journal, Path)
                 else journal)
        yield await stack.enter_async_context(Aggregator(sandbox_settings(**sixtyfour), sandbox=sandbox,
                                                         job_store=store))


@asynccontextmanager
async def batch_store(path: Path) -> AsyncIterator[SqliteBatchStore]:
    async with SqliteBatchStore(path) as store:
        yield store


def starts(sandbox: Sandbox, provider: str = "sixtyfour") -> int:
    """Paid job starts ``provider``'s emulator counted (idempotent replays are not starts)."""
    return int(sandbox.stats()["providers"][provider]["jobs_started"])


def request_count(sandbox: Sandbox) -> dict[str, int]:
    return {name: len(sandbox.requests(name)) for name in ("sixtyfour", "orbit")}
