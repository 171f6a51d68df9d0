"""Interrupted runs resume from the job store: no second paid start, no lost or duplicated record."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aggregator.core import Aggregator
from aggregator.events import HitsEvent, ProgressEvent
from aggregator.jobstore import InMemoryJobStore, JobStore
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE, sandbox_settings

DEMO = "VP of Engineering at Series B SaaS startups in New York"
PROVIDERS = ("sixtyfour", "orbit")


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(time_scale=FAST_SCALE, providers=PROVIDERS, settings={"sixtyfour": {}})
    async with Sandbox(config) as running:
        yield running


async def interrupted_run(sandbox: Sandbox, store: JobStore, stop: Any) -> str:
    """Start a run and abandon it at the first event ``stop`` accepts, as a crash would."""
    async with Aggregator(sandbox_settings(page_size=5), sandbox=sandbox, job_store=store) as agg:
        stream = agg.stream(DEMO, max_results=30)
        async for event in stream:
            if stop(event):
                break
        await stream.aclose()
    (summary,) = await store.runs()
    return summary.run_id


async def finish(sandbox: Sandbox, store: JobStore, run_id: str) -> set[str]:
    async with Aggregator(sandbox_settings(page_size=5), sandbox=sandbox, job_store=store) as agg:
        report = await agg.resume(run_id)
    assert all(o.status == "found" for o in report.outcomes if o.provider in PROVIDERS)
    return {r.record_id for r in report.records}


async def baseline(sandbox: Sandbox) -> set[str]:
    async with Aggregator(sandbox_settings(page_size=5), sandbox=sandbox) as agg:
        report = await agg.search(DEMO, max_results=30)
    return {r.record_id for r in report.records}


def starts(sandbox: Sandbox) -> dict[str, int]:
    return {p: sandbox.stats()["providers"][p]["jobs_started"] for p in PROVIDERS}


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[JobStore]:
    if request.param == "memory":
        yield InMemoryJobStore()
        return
    from aggregator.journal import SqliteJournal

    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        yield journal


async def test_a_run_interrupted_while_polling_resumes_without_starting_again(sandbox: Sandbox,
                                                                               store: JobStore) -> None:
    run_id = await interrupted_run(sandbox, store, lambda e: isinstance(e, ProgressEvent) and e.phase == "running")
    assert starts(sandbox) == {"sixtyfour": 1, "orbit": 1}

    resumed = await finish(sandbox, store, run_id)
    assert starts(sandbox) == {"sixtyfour": 1, "orbit": 1}  # polled, never re-submitted
    assert resumed == await baseline(sandbox)


async def test_a_run_interrupted_while_paging_continues_from_its_checkpoint(sandbox: Sandbox,
                                                                            store: JobStore) -> None:
    run_id = await interrupted_run(sandbox, store,
                                   lambda e: isinstance(e, HitsEvent) and e.provider == "sixtyfour")
    first_pages = len(await store.hits(run_id, "sixtyfour"))
    assert 0 < first_pages < 30

    queries_before = sandbox.stats()["providers"]["sixtyfour"]["endpoints"]["POST /search/query"]["calls"]
    resumed = await finish(sandbox, store, run_id)
    queries = sandbox.stats()["providers"]["sixtyfour"]["endpoints"]["POST /search/query"]["calls"] - queries_before
    assert queries <= -(-(30 - first_pages) // 5) + 1  # only the remaining pages were read
    assert len(await store.hits(run_id, "sixtyfour")) == len({h.provider_record_id
                                                              for h in await store.hits(run_id, "sixtyfour")})
    assert starts(sandbox) == {"sixtyfour": 1, "orbit": 1}
    assert resumed == await baseline(sandbox)


async def test_resuming_an_unknown_run_is_a_clear_error(sandbox: Sandbox) -> None:
    from aggregator.errors import ConfigError

    async with Aggregator(sandbox_settings(), sandbox=sandbox) as agg:
        with pytest.raises(ConfigError, match="deepsearch runs"):
            await agg.resume("nope")


async def test_a_resumed_run_reports_and_budgets_the_credits_its_first_process_spent(sandbox: Sandbox) -> None:
    store = InMemoryJobStore()
    async with Aggregator(sandbox_settings(), sandbox=sandbox, job_store=store) as agg:
        stream = agg.stream(DEMO, max_results=30, budget=20, providers=("orbit",))
        async for event in stream:
            if isinstance(event, HitsEvent):
                break  # a crash after the first profiles were read and paid for
        await stream.aclose()
    (summary,) = await store.runs()
    read_before = len(await store.hits(summary.run_id, "orbit"))
    assert 0 < read_before < 10

    async with Aggregator(sandbox_settings(), sandbox=sandbox, job_store=store) as agg:
        report = await agg.resume(summary.run_id)

    orbit = report.outcome("orbit")
    assert orbit.credits == 10 + orbit.records  # the start and every read, across both processes
    assert orbit.credits <= 20 and orbit.status == "partial"  # the budget counted the first process's spend
    assert orbit.error is not None and orbit.error.type == "BudgetExceededError"
