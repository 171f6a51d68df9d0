"""``Aggregator.batch`` on the sandbox: one result per row, failures contained, N at a time, nothing run twice."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from aggregator.batch import (
    BatchProgress,
    BatchSpec,
    BatchValidationError,
    InMemoryBatchStore,
    RowResult,
    batch_id_of,
    rows_from,
)
from aggregator.errors import ConfigError
from aggregator.jobstore import InMemoryJobStore
from aggregator.journal import SqliteJournal
from aggregator.models import SearchReport, SearchRequest
from providers.sandbox.runner import Sandbox
from tests.batch.conftest import PEOPLE, batch_store, process, request_count, starts

SEARCHES = [{"query": query, "max_results": 5, "providers": "sixtyfour"} for query in PEOPLE[:3]]
TOO_SMALL_A_BUDGET = {"query": "CTO in Berlin", "providers": "orbit", "budget": 9}  # Orbit's run costs 10
UNKNOWN_PERSON = {"email": "nobody@nowhere.example"}  # Orbit: identity_not_corroborated


async def collect(agg: Any, rows: list[Any], **options: Any) -> dict[int, RowResult]:
    async with agg.batch(rows, **options) as run:
        return {result.row: result async for result in run}


async def test_every_row_runs_once_and_a_failing_row_does_not_stop_the_others(sandbox: Sandbox,
                                                                              tmp_path: Path) -> None:
    rows = [SEARCHES[0], TOO_SMALL_A_BUDGET, SEARCHES[1], UNKNOWN_PERSON, SEARCHES[2]]
    async with process(sandbox, tmp_path / "journal.sqlite") as agg:
        results = await collect(agg, rows, concurrency=2)
        assert isinstance(agg.job_store, SqliteJournal)
        runs = {summary.run_id: summary for summary in await agg.job_store.runs()}

    assert {n: r.status for n, r in results.items()} == {1: "done", 2: "failed", 3: "done", 4: "failed", 5: "done"}
    assert results[2].error is not None and "BudgetExceededError" in results[2].error
    assert results[4].error is not None and "identity_not_corroborated" in results[4].error
    assert results[2].credits == 0 and results[4].credits == 10  # the lookup ran (and was paid), then failed
    for result in results.values():
        assert result.ran and result.report is not None and result.run_id == result.report.run_id
        assert result.run_id in runs and result.records == len(result.report.records)
        assert result.credits == result.report.total_credits
    assert all(results[n].records == 5 for n in (1, 3, 5))
    assert starts(sandbox) == 3 and starts(sandbox, "orbit") == 1  # the budget row paid nothing


async def test_running_the_same_rows_again_runs_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    rows = [SEARCHES[0], TOO_SMALL_A_BUDGET, SEARCHES[1]]
    async with process(sandbox, tmp_path / "journal.sqlite") as agg:
        first = await collect(agg, rows)
    before = request_count(sandbox)

    async with process(sandbox, tmp_path / "journal.sqlite") as agg:  # a new process, the same journal
        again = await collect(agg, rows)

    assert request_count(sandbox) == before  # no provider was asked anything
    assert all(not r.ran for r in again.values())
    for n, result in first.items():
        assert (again[n].run_id, again[n].status, again[n].records, again[n].credits, again[n].error) == (
            result.run_id, result.status, result.records, result.credits, result.error)
        assert again[n].report == result.report  # read back from the journal


async def test_invalid_rows_are_refused_before_anything_is_sent_or_recorded(sandbox: Sandbox, tmp_path: Path) -> None:
    rows = [SEARCHES[0], {"query": "CTO", "provider": "nosuch"}, {"query": "CTO", "min_results": 3},
            {"query": "CTO", "max_results": 0}]
    async with process(sandbox, tmp_path / "journal.sqlite") as agg:
        with pytest.raises(BatchValidationError) as caught:
            agg.batch(rows)  # raised by the call itself, before any iteration
        assert isinstance(agg.job_store, SqliteJournal) and await agg.job_store.runs() == []
        with pytest.raises(BatchValidationError) as planned:
            agg.batch(rows[:3])

    assert [(p.where, p.field) for p in caught.value.problems] == [("row 4", "max_results")]  # parsed first
    assert [(p.where, p.field) for p in planned.value.problems] == [("row 2", "providers"), ("row 3", "min_results")]
    assert request_count(sandbox) == {"sixtyfour": 0, "orbit": 0}
    async with batch_store(tmp_path / "journal.sqlite") as store:
        assert await store.load_batch(batch_id_of(rows_from(rows[:3]), {"target": "sandbox"})) is None


class CountingStore(InMemoryJobStore):
    """Counts the runs in progress at once (recorded, not yet finished)."""

    def __init__(self) -> None:
        super().__init__()
        self.active = self.peak = 0

    async def record_run(self, run_id: str, request: SearchRequest, created_at: datetime) -> None:
        await super().record_run(run_id, request, created_at)
        self.active += 1
        self.peak = max(self.peak, self.active)

    async def finish_run(self, run_id: str, status: str, report: SearchReport | None) -> None:
        await super().finish_run(run_id, status, report)
        self.active -= 1


async def test_at_most_concurrency_rows_run_at_once(sandbox: Sandbox) -> None:
    rows = [{"query": query, "max_results": 5, "providers": "sixtyfour"} for query in PEOPLE]
    counting = CountingStore()
    seen: list[BatchProgress] = []
    async with process(sandbox, counting) as agg:
        async with agg.batch(rows, concurrency=2, on_progress=seen.append) as run:
            results = [result async for result in run]
        assert run.progress == seen[-1]

    assert counting.peak == 2 and max(p.running for p in seen) == 2
    assert len(results) == 6 and all(r.status == "done" for r in results)
    final = seen[-1]
    assert (final.total, final.done, final.failed, final.running, final.records) == (6, 6, 0, 0, 30)
    assert final.eta_s == 0 and starts(sandbox) == 6


async def test_the_default_store_of_an_in_memory_journal_remembers_the_batch_for_that_aggregator(
        sandbox: Sandbox) -> None:
    async with process(sandbox, InMemoryJobStore()) as agg:
        first = await collect(agg, SEARCHES[:2])
        again = await collect(agg, SEARCHES[:2])

    assert all(r.ran for r in first.values()) and not any(r.ran for r in again.values())
    assert starts(sandbox) == 2


async def test_retry_failed_runs_the_failed_rows_again_and_only_them(sandbox: Sandbox, tmp_path: Path) -> None:
    rows = [SEARCHES[0], UNKNOWN_PERSON]
    async with process(sandbox, tmp_path / "journal.sqlite") as agg:
        first = await collect(agg, rows)
        retried = await collect(agg, rows, retry_failed=True)

    assert not retried[1].ran and retried[2].ran and retried[2].status == "failed"
    assert retried[2].run_id != first[2].run_id  # a new run
    assert starts(sandbox) == 1 and starts(sandbox, "orbit") == 2


async def test_a_batch_id_is_refused_for_other_rows(sandbox: Sandbox) -> None:
    store = InMemoryBatchStore()
    async with process(sandbox, InMemoryJobStore()) as agg:
        first = await collect(agg, SEARCHES[:1], store=store, batch_id="accounts-q3")
        with pytest.raises(ConfigError, match="recorded with other rows") as caught:
            await collect(agg, SEARCHES[1:2], store=store, batch_id="accounts-q3")
        with pytest.raises(ConfigError, match="concurrency: must be at least 1"):
            agg.batch(SEARCHES, concurrency=0)

    assert first[1].batch_id == "accounts-q3" and caught.value.field == "batch_id"


async def test_a_row_whose_run_finished_before_the_row_was_recorded_takes_that_report(sandbox: Sandbox) -> None:
    store = InMemoryBatchStore()
    async with process(sandbox, InMemoryJobStore()) as agg:
        report = await agg.search(SEARCHES[0]["query"], max_results=5, providers=("sixtyfour",))
        run = agg.batch(SEARCHES[:1], store=store)
        await store.create_batch(BatchSpec(run.batch_id, run.rows, run.options))
        await store.row_started(run.batch_id, 1, report.run_id)  # the process died before row_finished
        before = request_count(sandbox)
        async with run:
            (result,) = [r async for r in run]

    assert request_count(sandbox) == before
    assert (result.run_id, result.resumed, result.status, result.records) == (report.run_id, True, "done", 5)
    assert (await store.row_states(run.batch_id))[0].status == "done"


class CheckingJournal(InMemoryJobStore):
    """Checks, at each paid submit's intent, that the batch store already names the run as its row's."""

    def __init__(self, batch: InMemoryBatchStore) -> None:
        super().__init__()
        self.batch, self.batch_id, self.checked = batch, "", set[str]()

    async def record_submit_intent(self, run_id: str, provider: str, idempotency_key: str,
                                   request: SearchRequest) -> None:
        states = await self.batch.row_states(self.batch_id)
        assert any(s.run_id == run_id and s.status == "running" for s in states), (run_id, states)
        self.checked.add(run_id)
        await super().record_submit_intent(run_id, provider, idempotency_key, request)


async def test_a_rows_run_id_is_recorded_before_its_first_paid_call(sandbox: Sandbox) -> None:
    store = InMemoryBatchStore()
    journal = CheckingJournal(store)
    async with process(sandbox, journal) as agg:
        run = agg.batch([*SEARCHES, UNKNOWN_PERSON], store=store, concurrency=2)
        journal.batch_id = run.batch_id
        async with run:
            results = [result async for result in run]

    assert [r.status for r in sorted(results, key=lambda r: r.row)] == ["done", "done", "done", "failed"]
    assert journal.checked == {r.run_id for r in results}  # every row's run paid only once it was recorded


async def test_leaving_the_loop_early_stops_the_rows_in_progress_at_once(sandbox: Sandbox) -> None:
    journal = InMemoryJobStore()
    async with process(sandbox, journal) as agg:
        async with agg.batch([{"query": q, "max_results": 5, "providers": "sixtyfour"} for q in PEOPLE],
                             concurrency=2) as run:
            async for _ in run:
                break
        workers = [t for t in asyncio.all_tasks() if t.get_name().startswith(f"batch-{run.batch_id}-")]
        statuses = [summary.status for summary in await journal.runs()]

    assert workers == []  # cancelled and awaited when the loop was left, not left to the garbage collector
    assert statuses.count("done") >= 1 and "interrupted" in statuses
