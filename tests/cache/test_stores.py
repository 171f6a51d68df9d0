"""Every job store keeps the result cache the same way: one run per key (storing clears older holders), only
``done`` runs with a report, within the TTL by the store's wall clock; a forgotten run is no entry."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.jobstore import InMemoryJobStore, JobStore
from aggregator.models import ProviderOutcome, SearchReport, SearchRequest
from tests.cache.conftest import WallClock
from tests.db.backends import backend_for

REQUEST = SearchRequest(query="CTO in Berlin")


def _report(run_id: str) -> SearchReport:
    now = datetime.now(UTC)
    return SearchReport(run_id=run_id, request=REQUEST, started_at=now, finished_at=now, elapsed_s=1, sandbox=True,
                        outcomes=(ProviderOutcome(provider="a", status="found", records=1),), records=())


@asynccontextmanager
async def opened(kind: str, wall: WallClock, request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if kind == "memory":
        yield InMemoryJobStore(now=wall)
        return
    async with backend_for(request, kind, tmp_path).journal(now=wall) as journal:
        yield journal


async def finish(store: JobStore, run_id: str, status: str = "done") -> None:
    await store.record_run(run_id, REQUEST, datetime.now(UTC))
    await store.finish_run(run_id, status, _report(run_id) if status == "done" else None)


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
async def test_one_run_per_key_done_and_within_the_ttl(kind: str, request: pytest.FixtureRequest,
                                                      tmp_path: Path) -> None:
    wall = WallClock()
    async with opened(kind, wall, request, tmp_path) as store:
        await finish(store, "run-a")
        await store.record_cache_key("run-a", "k1")
        wall.advance(10)
        hit = await store.cached_run("k1", 10, wall())
        assert hit is not None and hit.run_id == "run-a" and hit.report is not None
        assert hit.finished_at is not None and (wall() - hit.finished_at).total_seconds() == 10
        assert await store.cached_run("k1", 9.5, wall()) is None  # older than the TTL
        assert await store.cached_run("k2", 10, wall()) is None
        await finish(store, "run-b")
        await store.record_cache_key("run-b", "k1")  # replaces run-a
        wall.advance(1)
        newest = await store.cached_run("k1", 5, wall())
        assert newest is not None and newest.run_id == "run-b"
        await store.record_cache_key("run-a", "k1")  # back to run-a (a refresh stores the newest)
        again = await store.cached_run("k1", 60, wall())
        assert again is not None and again.run_id == "run-a"
        await finish(store, "run-c", status="interrupted")
        await store.record_cache_key("run-c", "k3")
        assert await store.cached_run("k3", 60, wall()) is None  # not done: never an answer
        with pytest.raises(KeyError):
            await store.record_cache_key("never-recorded", "k4")


async def test_a_forgotten_run_is_no_entry() -> None:
    wall = WallClock()
    store = InMemoryJobStore(now=wall, keep_finished=1)
    await finish(store, "run-a")
    await store.record_cache_key("run-a", "k1")
    await finish(store, "run-b")  # run-a is forgotten
    assert await store.run("run-a") is None and await store.cached_run("k1", 60) is None
    assert store._cache == {} and store._cache_keys == {}
