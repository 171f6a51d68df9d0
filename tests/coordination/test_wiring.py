"""Coordination wired through the library: Aggregators sharing one database share one account's job
slots and budgets (each Aggregator stands for one replica of a service with the same API key)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest

from aggregator.coordination import BudgetScope, InProcessCoordinator, PostgresCoordinator, account_fingerprint
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE, sandbox_settings

START = "POST /search/start-deep-search"
QUERIES = [f"{title} in New York" for title in
           ("VP of Engineering", "VP of Sales", "CTO", "CEO", "VP of Marketing", "VP of Product")]


@asynccontextmanager
async def replicas(sandbox: Sandbox, n: int, overrides: dict[str, Any]) -> AsyncIterator[list[Aggregator]]:
    """``n`` Aggregators on one sandbox with the same settings (so the same sandbox API keys)."""
    async with AsyncExitStack() as stack:
        aggs = [await stack.enter_async_context(Aggregator(sandbox_settings(overrides), sandbox=sandbox))
                for _ in range(n)]
        try:
            yield aggs
        finally:
            for agg in aggs:  # the Aggregator does not close its providers' coordinator yet
                await agg.providers.aclose()


def track_sixtyfour_jobs(sandbox: Sandbox) -> None:
    emulator = sandbox.emulator("sixtyfour")
    emulator.ctx.stats.track_jobs(lambda: sum(
        1 for task in emulator.tasks.tasks.values() if task.kind == "deep_search" and task.in_flight(emulator.now())))


@pytest.mark.parametrize("shared", [True, False], ids=["one database", "no database"])
async def test_replicas_on_one_database_share_sixtyfours_five_deep_search_slots(
        shared: bool, request: pytest.FixtureRequest) -> None:
    overrides = {"database": {"url": request.getfixturevalue("database_url")}} if shared else {}
    # shared: deep searches of 300 virtual s (0.6 s of wall time), so the first five overlap however loaded
    # the machine; apart: the documented durations, short enough that refused starts succeed on retry
    slow = {"sixtyfour": {"duration_min_s": 300.0, "duration_max_s": 300.0}} if shared else {}
    async with Sandbox(SandboxConfig(time_scale=FAST_SCALE, n_companies=600, providers=("sixtyfour",),
                                     settings=slow)) as sandbox:
        track_sixtyfour_jobs(sandbox)
        async with replicas(sandbox, 2, overrides) as (a, b):
            assert isinstance(a.providers.coordinator, PostgresCoordinator if shared else InProcessCoordinator)
            reports = await asyncio.gather(*(agg.search(q, max_results=5) for agg in (a, b) for q in QUERIES[:4]))
        stats = sandbox.stats()["providers"]["sixtyfour"]
    assert all(r.outcome("sixtyfour").status in ("found", "no_result") for r in reports)
    assert stats["jobs_started"] == 8 and stats["peak_jobs_in_flight"] <= 5
    if shared:  # one account, one set of 5 slots: the provider never had to refuse a search
        assert stats["endpoints"][START]["statuses"] == {"200": 8} and stats["peak_jobs_in_flight"] == 5
    else:  # each replica believes it has all 5 slots: the provider refuses the 6th and more
        assert stats["endpoints"][START]["statuses"].get("429", 0) >= 1


async def test_replicas_on_one_database_never_overspend_the_accounts_daily_budget(database_url: str) -> None:
    overrides = {"database": {"url": database_url}, "budgets": {"orbit": {"credits": 35, "period": "day"}}}
    async with Sandbox(SandboxConfig(time_scale=FAST_SCALE, providers=("orbit",))) as sandbox:
        async with replicas(sandbox, 3, overrides) as aggs:
            reports = await asyncio.gather(*(agg.search("VP of Engineering at Series B SaaS startups in New York",
                                                        max_results=50, providers=("orbit",)) for agg in aggs))
        charged = sandbox.stats()["providers"]["orbit"]["credits_charged"]
        books = PostgresCoordinator(database_url)
        try:
            scope = BudgetScope.for_account(account_fingerprint("orbit", sandbox.api_key("orbit")), 35, "day")
            usage = await books.usage(scope, sandbox.clock)
        finally:
            await books.aclose()
    assert charged <= 35  # the provider's own ledger: three replicas spent one budget
    assert usage.spent + usage.reserved <= 35 and usage.spent >= 30  # our books: never over, nearly all used
    refusals = [r.outcome("orbit").error for r in reports if r.outcome("orbit").error is not None]
    assert refusals and all(e.type == "BudgetExceededError" and "per day" in e.message for e in refusals)


def test_the_account_fingerprint_never_holds_the_key() -> None:
    key = "sk-live-0123456789"
    fingerprint = account_fingerprint("sixtyfour", key)
    assert fingerprint.startswith("sixtyfour-") and len(fingerprint) == len("sixtyfour-") + 16
    assert key not in fingerprint and fingerprint != account_fingerprint("orbit", key)
    assert fingerprint == account_fingerprint("sixtyfour", key)


def test_account_budgets_are_checked_keys_with_a_did_you_mean() -> None:
    from aggregator.config import load_settings

    with pytest.raises(ConfigError, match=r"budgets\.orbit\.credit: unknown field; did you mean 'credits'"):
        load_settings(env={}, overrides={"budgets": {"orbit": {"credit": 5}}})
    with pytest.raises(ConfigError, match=r"budgets\.orbitt: unknown provider; did you mean 'orbit'"):
        load_settings(env={}, overrides={"budgets": {"orbitt": {"credits": 5}}})
    settings = load_settings(env={}, overrides={"budgets": {"orbit": {"credits": 5, "period": "month"}}})
    assert (settings.budgets["orbit"].credits, settings.budgets["orbit"].period) == (5, "month")
