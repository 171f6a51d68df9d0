"""Crash and resume on the PostgreSQL journal: a Sixtyfour deep search crashed at each durable step
(tests/resume/crash.py) and resumed by a new "process" on the same database and sandbox. Nothing is paid
twice (the sandbox's request log counts the starts), and every row of the search is stored once."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from aggregator.db.journal import PostgresJournal
from aggregator.jobstore import JobStore
from aggregator.models import SearchRequest
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE, sandbox_settings
from tests.resume.crash import CrashPoint
from tests.resume.runs import bodies, crash_and_resume

START = "POST /search/start-deep-search"
QUERY = "POST /search/query"
PAGE, MAX = 5, 12
DEMO = "VP of Engineering at Series B SaaS startups in New York"


class PostgresDisk:
    """A PostgreSQL database; each :meth:`open` is a new journal on it (a new process)."""

    kind = "postgres"

    def __init__(self, url: str) -> None:
        self.url = url
        self._opened: list[PostgresJournal] = []

    async def open(self) -> JobStore:
        journal = await PostgresJournal(self.url).open()
        self._opened.append(journal)
        return journal

    async def kill(self, store: JobStore) -> None:
        """What SIGKILL does: the buffered (uncommitted) hits and checkpoints are gone, the committed stay."""
        assert isinstance(store, PostgresJournal)
        async with store._lock:
            store._pending.clear()
            store._buffered_hits = 0
        await store.close()

    async def close(self) -> None:
        for journal in self._opened:
            await journal.close()


@pytest.fixture
async def disk(database_url: str) -> AsyncIterator[PostgresDisk]:
    kept = PostgresDisk(database_url)
    try:
        yield kept
    finally:
        await kept.close()


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(time_scale=FAST_SCALE, n_companies=1500, providers=("sixtyfour",))
    async with Sandbox(config) as running:
        yield running


@pytest.mark.parametrize("point", ["intent", "submitted", "job", "checkpoint"])
async def test_a_crashed_deep_search_resumes_from_the_postgres_journal_and_pays_once(
        sandbox: Sandbox, disk: PostgresDisk, point: CrashPoint) -> None:
    request = SearchRequest(query=DEMO, mode="people", max_results=MAX, providers=("sixtyfour",))
    run = await crash_and_resume(sandbox, disk, sandbox_settings(page_size=PAGE), request, point, page=2)

    starts = run.all(START)
    assert len(starts) == (2 if point == "submitted" else 1)  # a lost answer is replayed with the same key...
    assert {r.json()["search_id"] for r in starts} == {run.crashed.key}
    stats = sandbox.stats()["providers"]["sixtyfour"]
    assert stats["jobs_started"] == 1  # ...so one search was ever started and paid for
    (task,) = sandbox.emulator("sixtyfour").list_tasks()
    truth = [row.raw_document_id for row in task.found[:MAX]]
    assert [hit.provider_record_id for hit in run.hits] == truth  # every row once, in order
    assert run.record.state == "done" and run.record.job is not None and run.record.job.job_id == task.task_id
    assert (run.report.outcome("sixtyfour").status, run.report.outcome("sixtyfour").records) == ("found", MAX)
    if point == "checkpoint":  # the crashed page's buffered hits were lost with it: read again, from its cursor
        assert len(bodies(run.before(QUERY))) == 2 and run.after(START) == []
    state = await (await disk.open()).run(run.crashed.run_id)
    assert state is not None and state.status == "done" and state.report == run.report
