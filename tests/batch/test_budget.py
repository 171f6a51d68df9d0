"""Issue 16: a batch-wide budget. Every paid call of every row reserves from one shared scope (``batch:<id>``)
with the account's budgets, so the rows together never overshoot it; once spent, rows not started yet fail
"not run" without a run; running the batch again in a new process counts what it spent before (the
in-process coordinator of the first process is gone) and a budget given again replaces the recorded one.

Orbit charges 10 credits per started run and 1 per profile read (Orbit §3.4, §5): a row of ``max_results``
5 costs 15. The emulator's ``credits_charged`` is what the provider was paid, whatever our bookkeeping says.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from aggregator.batch import InMemoryBatchStore, RowResult
from aggregator.errors import ConfigError
from providers.sandbox.runner import Sandbox
from tests.batch.conftest import PEOPLE, batch_store, process

ROWS = [{"query": query, "max_results": 5, "providers": "orbit"} for query in PEOPLE]  # 6 rows of 15 credits
NOT_RUN = "not run: the batch's budget of"


def charged(sandbox: Sandbox) -> float:
    return float(sandbox.stats()["providers"]["orbit"].get("credits_charged", 0))


async def collect(agg: Any, rows: list[Any], **options: Any) -> dict[int, RowResult]:
    async with agg.batch(rows, **options) as run:
        return {result.row: result async for result in run}


async def test_the_rows_together_never_spend_more_than_the_batchs_budget(sandbox: Sandbox, tmp_path: Path) -> None:
    async with process(sandbox, tmp_path / "journal.sqlite") as agg:
        results = await collect(agg, ROWS, concurrency=3, budget=40)

    assert charged(sandbox) <= 40  # what Orbit was paid
    assert sum(r.credits for r in results.values()) == charged(sandbox)
    done = [r for r in results.values() if r.status == "done"]
    not_run = [r for r in results.values() if r.error and r.error.startswith(NOT_RUN)]
    assert len(done) >= 2 and not_run  # two rows fit; once the budget is spent, rows are not started
    assert all(r.run_id is None and r.credits == 0 for r in not_run)
    assert "40 credits is spent" in not_run[0].error and "--retry-failed" in not_run[0].error  # type: ignore[operator]
    for r in results.values():  # a row cut short names the batch's budget
        if r.status == "failed" and r not in not_run:
            assert r.error is not None and "the batch's budget of 40 credits" in r.error


async def test_a_new_process_counts_what_the_batch_spent_before_and_a_new_budget_replaces_the_old(
        sandbox: Sandbox, tmp_path: Path) -> None:
    journal = tmp_path / "journal.sqlite"
    async with process(sandbox, journal) as agg:
        first = await collect(agg, ROWS, concurrency=2, budget=40)
    spent_first = charged(sandbox)
    assert 30 <= spent_first <= 40

    async with process(sandbox, journal) as agg:  # a new process: its in-process coordinator starts empty
        second = await collect(agg, ROWS, concurrency=2, budget=70, retry_failed=True)
    assert charged(sandbox) <= 70  # not 40 + 70: the first process's spending was counted
    assert {r.run_id for r in second.values() if not r.ran} >= {r.run_id for r in first.values() if r.status == "done"}

    async with batch_store(journal) as store:
        (batch_id,) = {r.batch_id for r in second.values()}
        assert await store.batch_budget(batch_id) == 70  # the new budget replaced the recorded one

    async with process(sandbox, journal) as agg:  # no budget given: the recorded one (70) still applies
        third = await collect(agg, ROWS, retry_failed=True)
    assert charged(sandbox) <= 70
    assert any(r.error and r.error.startswith(NOT_RUN + " 70 credits") for r in third.values())


async def test_without_a_budget_the_batch_draws_on_nothing_shared(sandbox: Sandbox, tmp_path: Path) -> None:
    store = InMemoryBatchStore()
    async with process(sandbox, tmp_path / "journal.sqlite") as agg:
        results = await collect(agg, ROWS[:2], store=store)
        assert all(r.status == "done" for r in results.values())
        (batch_id,) = {r.batch_id for r in results.values()}
        assert await store.batch_budget(batch_id) is None
    assert charged(sandbox) == 30


@pytest.mark.parametrize("budget", [0, -5, float("inf"), float("nan")])
async def test_a_budget_that_is_not_a_positive_number_is_refused_before_anything_runs(
        sandbox: Sandbox, tmp_path: Path, budget: float) -> None:
    async with process(sandbox, tmp_path / "journal.sqlite") as agg:
        with pytest.raises(ConfigError) as caught:
            agg.batch(ROWS, budget=budget)
    assert caught.value.field == "budget" and "credits above 0" in str(caught.value)
    assert charged(sandbox) == 0 and not sandbox.requests("orbit")
