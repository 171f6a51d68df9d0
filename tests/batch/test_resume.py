"""A batch stopped mid-way (a crash, a cancel) continues where it stopped: finished rows are not run again,
rows in progress continue their runs (no paid start repeated), and the records are an uninterrupted batch's.

Each "process" is its own Aggregator on the same sandbox (the providers' jobs outlive it) and the same
journal file; the crash is ``tests/resume``'s :class:`~tests.resume.crash.CrashingStore`, here at the first
job of the batch's third run (with two rows at a time: once a row has finished), so that some rows have
finished, some are in flight and some wait; the cancel (Ctrl-C) comes at the same point.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest

from aggregator.batch import RowResult, RowState
from aggregator.contract import JobRef
from aggregator.core import Aggregator
from aggregator.journal import SqliteJournal
from providers.sandbox.runner import Sandbox
from tests.batch.conftest import PEOPLE, batch_store, process, starts
from tests.conftest import sandbox_settings
from tests.resume.crash import CrashingStore, Disk, SimulatedCrash, SqliteDisk

START = "POST /search/start-deep-search"
ROWS = [{"query": query, "max_results": 100, "providers": "sixtyfour"} for query in PEOPLE]


class CrashAtRun(CrashingStore):
    """Dies right after the first job of the ``nth`` run is journaled (its paid start answered and recorded).
    With two rows at a time, the third run starts only once a row has finished."""

    def __init__(self, store: Any, disk: Disk, nth: int, provider: str = "sixtyfour") -> None:
        super().__init__(store, disk, "job", provider=provider)
        self.nth, self.seen = nth, set[str]()

    async def record_submitted(self, run_id: str, provider: str, job: JobRef) -> None:
        self._alive()
        await self.store.record_submitted(run_id, provider, job)
        if provider == self.provider and run_id not in self.seen:
            self.seen.add(run_id)
            if len(self.seen) == self.nth:
                await self._die()


class SignallingJournal(SqliteJournal):
    """Sets ``third_job`` when the third run's first job is journaled."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.third_job, self.seen = asyncio.Event(), list[str]()

    async def record_submitted(self, run_id: str, provider: str, job: JobRef) -> None:
        await super().record_submitted(run_id, provider, job)
        if run_id not in self.seen:
            self.seen.append(run_id)
            if len(self.seen) == 3:
                self.third_job.set()


async def records_by_row(results: list[RowResult]) -> dict[int, list[str]]:
    return {r.row: sorted(rec.record_id for rec in r.report.records) for r in results if r.report is not None}


async def uninterrupted(sandbox: Sandbox, tmp_path: Path) -> dict[int, list[str]]:
    async with process(sandbox, tmp_path / "reference.sqlite") as agg, agg.batch(ROWS, concurrency=2) as run:
        return await records_by_row([result async for result in run])


def check_one_start_per_row(sandbox: Sandbox, run_ids: set[str]) -> None:
    """Every start Sixtyfour received carried one of the rows' keys, and each row's search started once."""
    keys = {r.json()["search_id"] for r in sandbox.requests("sixtyfour", START)}
    assert len(keys) == len(ROWS) == len(run_ids)
    assert starts(sandbox) == len(ROWS)  # replays of a key (a start in flight at the crash) are not starts


async def test_a_crash_mid_batch_resumes_each_row_without_a_second_paid_start(sandbox: Sandbox,
                                                                              tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    disk = SqliteDisk(path)
    crashing = CrashAtRun(await disk.open(), disk, nth=3)
    first: list[RowResult] = []
    try:
        async with (Aggregator(sandbox_settings(), sandbox=sandbox, job_store=crashing) as agg,
                    batch_store(path) as store):
            with pytest.raises(SimulatedCrash):
                async with agg.batch(ROWS, concurrency=2, store=store) as run:
                    first.extend([result async for result in run])
            crashed: list[RowState] = await store.row_states(run.batch_id)

        statuses = [s.status for s in crashed]
        assert statuses.count("done") >= 1 and "running" in statuses and "pending" in statuses
        assert all(s.run_id for s in crashed if s.status == "running")
        async with process(sandbox, path) as agg, agg.batch(ROWS, concurrency=2) as again:  # the next process
            second = [result async for result in again]
    finally:
        await disk.close()

    by_row = {r.row: r for r in second}
    assert {r.row for r in second if not r.ran} == {s.row for s in crashed if s.status == "done"}
    assert {r.row for r in second if r.resumed} == {s.row for s in crashed if s.status == "running"}
    assert all(r.status == "done" for r in second)
    assert all(by_row[s.row].run_id == s.run_id for s in crashed if s.run_id)  # the same runs, continued
    check_one_start_per_row(sandbox, {r.run_id for r in second if r.run_id})
    assert await records_by_row(second) == await uninterrupted(sandbox, tmp_path)


async def test_cancelling_a_batch_leaves_it_resumable_and_nothing_is_paid_twice(sandbox: Sandbox,
                                                                               tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    batch_ids: list[str] = []

    async def consume(agg: Aggregator) -> None:
        async with agg.batch(ROWS, concurrency=2) as run:
            batch_ids.append(run.batch_id)
            async for _ in run:
                pass

    journal = SignallingJournal(path)
    async with journal, process(sandbox, journal) as agg:  # Ctrl-C: the CLI cancels its task, as here
        task = asyncio.create_task(consume(agg))
        await journal.third_job.wait()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        third = journal.seen[2]
        status = {s.run_id: s.status for s in await journal.runs()}

    assert status[third] == "interrupted"  # stopped while paid work was under way: resumable
    async with batch_store(path) as store:
        stopped = {s.row: s for s in await store.row_states(batch_ids[0])}
    running = {s.run_id for s in stopped.values() if s.status == "running"}
    assert third in running and any(s.status == "done" for s in stopped.values())
    async with process(sandbox, path) as agg, agg.batch(ROWS, concurrency=2) as again:
        second = [result async for result in again]

    assert {r.row for r in second if not r.ran} == {s.row for s in stopped.values() if s.status == "done"}
    assert {r.run_id for r in second if r.resumed} == running and all(r.status == "done" for r in second)
    check_one_start_per_row(sandbox, {r.run_id for r in second if r.run_id})
    assert await records_by_row(second) == await uninterrupted(sandbox, tmp_path)
