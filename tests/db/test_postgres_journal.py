"""What is PostgreSQL's own in the journal (the shared contract is tests/core/test_journal.py): many
processes writing one database at once, documents kept byte for byte, a cancelled write leaving no
transaction behind, and one job's hits refused from a second writer rather than interleaved."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from aggregator.db import journal as pg_journal
from aggregator.db.journal import PostgresJournal
from aggregator.models import Hit, Person, SearchRequest

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
REQUEST = SearchRequest(query="staff engineers in Berlin", max_results=50)


def hit(i: int, provider: str = "fake", **raw: Any) -> Hit:
    return Hit(provider=provider, provider_record_id=f"r{i}", rank=i + 1, retrieved_at=NOW,
               entity=Person(full_name=f"Person {i}", linkedin_url=f"https://www.linkedin.com/in/p{i}"),
               raw=raw or {"i": i})


async def one_process(url: str, run_id: str, pages: int) -> None:
    """A process of its own (its own journal and pool) recording one run of two providers."""
    async with PostgresJournal(url, flush_interval_s=0.01, now=lambda: NOW + timedelta(minutes=pages)) as journal:
        await journal.record_run(run_id, REQUEST, NOW)
        for provider in ("alpha", "beta"):
            await journal.record_submit_intent(run_id, provider, f"{run_id}-{provider}", REQUEST)
        for page in range(pages):
            for provider in ("alpha", "beta"):
                await journal.record_hits(run_id, provider, [hit(page * 10 + i, provider) for i in range(10)])
                await journal.record_checkpoint(run_id, provider, {"offset": page * 10 + 10})
            await asyncio.sleep(0)
        for provider in ("alpha", "beta"):
            await journal.record_state(run_id, provider, "done")
        await journal.finish_run(run_id, "done", None)


async def test_many_processes_write_one_database_at_once(database_url: str) -> None:
    await asyncio.gather(*(one_process(database_url, f"run-{n}", pages=n + 2) for n in range(6)))
    async with PostgresJournal(database_url) as reader:
        runs = await reader.runs()
        assert [r.run_id for r in runs] == [f"run-{n}" for n in reversed(range(6))]  # by wall time, newest first
        for n in range(6):
            state = await reader.run(f"run-{n}")
            assert state is not None and state.status == "done"
            assert {p: [h.rank for h in hits] for p, hits in state.hits.items()} == {
                p: list(range(1, (n + 2) * 10 + 1)) for p in ("alpha", "beta")}
            assert {p: r.checkpoint for p, r in state.jobs.items()} == {p: {"offset": (n + 2) * 10}
                                                                        for p in ("alpha", "beta")}


async def test_documents_come_back_byte_for_byte_even_with_a_nul_character(database_url: str) -> None:
    odd = hit(0, zeta=1, alpha="a\x00b", middle=[3, 2.5, {"y": None, "x": True}])  # not in key order
    request = REQUEST.model_copy(update={"query": "nul \x00 inside"})
    async with PostgresJournal(database_url) as journal:
        await journal.record_run("run-1", request, NOW)
        await journal.record_submit_intent("run-1", "fake", "key-1", request)
        await journal.record_hits("run-1", "fake", [odd])
        (stored,) = await journal.hits("run-1", "fake")
        state = await journal.run("run-1")
    assert stored.model_dump_json() == odd.model_dump_json() and list(stored.raw) == ["zeta", "alpha", "middle"]
    assert state is not None and state.request.query == "nul \x00 inside"


async def test_a_write_cancelled_inside_its_transaction_is_rolled_back_and_the_next_one_works(
        database_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    async with PostgresJournal(database_url, flush_interval_s=60) as journal:
        await journal.record_run("run-1", REQUEST, NOW)
        await journal.record_submit_intent("run-1", "fake", "key-1", REQUEST)
        execute, inside = pg_journal._PostgresTransaction.execute, asyncio.Event()

        async def stuck_after_the_update(self: Any, sql: str, params: Any) -> None:
            await execute(self, sql, params)
            if sql == journal.sql.update_state:
                inside.set()
                await asyncio.Event().wait()

        monkeypatch.setattr(pg_journal._PostgresTransaction, "execute", stuck_after_the_update)
        writer = asyncio.create_task(journal.record_state("run-1", "fake", "ready"))
        await asyncio.wait_for(inside.wait(), 10)
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
        monkeypatch.undo()

        await journal.record_state("run-1", "fake", "done")
        record = await journal.get("run-1", "fake")
        assert record is not None and record.history == ("submitting", "done")  # "ready" was rolled back


async def test_a_second_writer_of_one_jobs_hits_is_refused_not_interleaved(database_url: str) -> None:
    async with PostgresJournal(database_url, flush_interval_s=60) as first, \
            PostgresJournal(database_url, flush_interval_s=60) as second:
        await first.record_submit_intent("run-1", "fake", "key-1", REQUEST)
        await first.record_hits("run-1", "fake", [hit(0), hit(1)])
        await second.record_hits("run-1", "fake", [hit(7)])  # both start at seq 0
        await first.flush()
        with pytest.raises(psycopg.errors.UniqueViolation):
            await second.flush()
        assert [h.provider_record_id for h in await first.hits("run-1", "fake")] == ["r0", "r1"]
        second._pending.clear()  # the refused write stays buffered: drop it so that closing does not retry it
        second._buffered_hits = 0
