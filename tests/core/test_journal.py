"""The journals: JobStore semantics (same as the in-memory store), durability, crash consistency of
batched hits + checkpoints, run history and a volume check, each on both backends (a SQLite file and a
PostgreSQL database, ``backend``); WAL mode and the journal path are SQLite's own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sqlite3
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from aggregator.contract import JobRef
from aggregator.jobstore import InMemoryJobStore, JobStore
from aggregator.journal import BufferedJournal, RunSummary, SqliteJournal, default_journal_path
from aggregator.models import Hit, Person, ProviderOutcome, SearchReport, SearchRequest
from tests.db.backends import JournalBackend, backend_for

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
REPO = Path(__file__).resolve().parents[2]
REQUEST = SearchRequest(query="staff engineers in Berlin", max_results=50)


def hit(i: int, provider: str = "fake") -> Hit:
    return Hit(provider=provider, provider_record_id=f"r{i}", job_id="job-1", rank=i + 1, retrieved_at=NOW,
               entity=Person(full_name=f"Person {i}", linkedin_url=f"https://www.linkedin.com/in/p{i}"),
               raw={"i": i, "tags": ["a", "b"]})


def job_ref(provider: str = "fake") -> JobRef:
    return JobRef(provider=provider, job_id="job-1", idempotency_key="key-1", mode="people",
                  submitted_at=NOW + timedelta(seconds=1), extra={"credits": 2.5, "nested": {"x": [1, 2]}})


def report(run_id: str, outcomes: tuple[ProviderOutcome, ...]) -> SearchReport:
    return SearchReport(run_id=run_id, request=REQUEST, started_at=NOW, finished_at=NOW + timedelta(seconds=9),
                        elapsed_s=9.0, sandbox=True, outcomes=outcomes, records=(), answered_by=("fake",))


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> JournalBackend:
    """Where the journal lives: a SQLite file, or a migrated PostgreSQL database."""
    return backend_for(request, request.param, tmp_path)


@pytest.fixture
async def journal(backend: JournalBackend) -> AsyncIterator[BufferedJournal]:
    async with backend.journal() as opened:
        yield opened


@contextlib.asynccontextmanager
async def make_store(kind: str, backend: JournalBackend | None) -> AsyncIterator[Any]:
    if kind == "memory":
        yield InMemoryJobStore()
    else:
        assert backend is not None
        async with backend.journal() as opened:
            yield opened


# -- the JobStore protocol, same scenario against both stores --------------------------------------
async def protocol_scenario(store: JobStore) -> list[Any]:
    seen: list[Any] = [await store.get("run-1", "fake")]
    await store.record_submit_intent("run-1", "fake", "key-1", REQUEST)
    seen.append(await store.get("run-1", "fake"))
    await store.record_submitted("run-1", "fake", job_ref())
    await store.record_checkpoint("run-1", "fake", {"cursor": "c1", "ids": ["a"]})
    await store.record_checkpoint("run-1", "fake", {"cursor": "c2", "ids": ["a", "b"]})
    seen.append(await store.get("run-1", "fake"))
    await store.record_state("run-1", "fake", "ready")
    await store.record_state("run-1", "fake", "done")
    seen.append(await store.get("run-1", "fake"))
    for call in (store.record_state("run-1", "other", "done"), store.record_checkpoint("run-1", "other", {}),
                 store.record_submitted("run-1", "other", job_ref("other"))):
        with pytest.raises(KeyError):
            await call
    # A second submit intent replaces the record (a fresh job).
    await store.record_submit_intent("run-1", "fake", "key-2", REQUEST.model_copy(update={"max_results": 7}))
    seen.append(await store.get("run-1", "fake"))
    seen.append(await store.get("run-2", "fake"))
    return seen


@pytest.mark.parametrize("kind", ["memory", "sqlite", "postgres"])
async def test_protocol_semantics(kind: str, request: pytest.FixtureRequest, tmp_path: Path) -> None:
    async with make_store(kind, backend_for(request, kind, tmp_path) if kind != "memory" else None) as store:
        seen = await protocol_scenario(store)
    none, intent, checkpointed, done, replaced, other = seen
    assert none is None and other is None
    assert (intent.state, intent.job, intent.checkpoint, intent.history) == ("submitting", None, None, ("submitting",))
    assert intent.request == REQUEST and intent.idempotency_key == "key-1"
    assert checkpointed.checkpoint == {"cursor": "c2", "ids": ["a", "b"]}
    assert checkpointed.history == ("submitting", "submitted", "checkpoint", "checkpoint")
    assert done.state == "done" and done.job == job_ref()
    assert done.history == ("submitting", "submitted", "checkpoint", "checkpoint", "ready", "done")
    assert (replaced.idempotency_key, replaced.state, replaced.history) == ("key-2", "submitting", ("submitting",))
    assert replaced.request.max_results == 7 and replaced.checkpoint is None


async def test_journal_records_equal_in_memory_records(backend: JournalBackend) -> None:
    async with make_store("memory", None) as memory, make_store("journal", backend) as journal:
        assert await protocol_scenario(memory) == await protocol_scenario(journal)


# -- durability ------------------------------------------------------------------------------------
async def test_everything_survives_close_and_reopen(backend: JournalBackend) -> None:
    outcome = ProviderOutcome(provider="fake", status="found", job_id="job-1", records=30, credits=2.5,
                              started_at=NOW, finished_at=NOW + timedelta(seconds=9))
    skipped = ProviderOutcome(provider="other", status="skipped", note="no key")
    final = report("run-1", (outcome, skipped))
    async with backend.journal(flush_interval_s=60) as journal:
        await journal.record_run("run-1", REQUEST, NOW)
        await journal.record_submit_intent("run-1", "fake", "key-1", REQUEST)
        await journal.record_submitted("run-1", "fake", job_ref())
        for page in range(3):
            await journal.record_hits("run-1", "fake", [hit(i) for i in range(page * 10, page * 10 + 10)])
            await journal.record_checkpoint("run-1", "fake", {"offset": (page + 1) * 10})
        await journal.record_state("run-1", "fake", "done")
        await journal.record_outcome("run-1", outcome)
        await journal.record_outcome("run-1", skipped)
        await journal.finish_run("run-1", "done", final)

    async with backend.journal() as journal:
        record = await journal.get("run-1", "fake")
        assert record is not None
        assert record.job == job_ref() and record.job.submitted_at.tzinfo is not None
        assert record.checkpoint == {"offset": 30}
        assert record.state == "done" and record.request == REQUEST
        assert record.history == ("submitting", "submitted", "checkpoint", "checkpoint", "checkpoint", "done")
        assert await journal.hits("run-1", "fake") == [hit(i) for i in range(30)]
        state = await journal.run("run-1")
        assert state is not None
        assert (state.status, state.request, state.report) == ("done", REQUEST, final)
        assert state.jobs == {"fake": record}
        assert state.hits == {"fake": [hit(i) for i in range(30)]}
        assert state.outcomes == [outcome, skipped]
        assert await journal.run("missing") is None
        # Appending after a reopen continues the sequence.
        await journal.record_hits("run-1", "fake", [hit(30)])
        assert [h.provider_record_id for h in await journal.hits("run-1", "fake")][-2:] == ["r29", "r30"]


async def test_finish_run_without_report_and_unknown_run(journal: BufferedJournal) -> None:
    await journal.record_run("run-1", REQUEST, NOW)
    await journal.record_run("run-1", REQUEST.model_copy(update={"query": "ignored"}), NOW)  # no-op
    await journal.finish_run("run-1", "failed", None)
    state = await journal.run("run-1")
    assert state is not None and (state.status, state.report, state.request) == ("failed", None, REQUEST)
    assert state.jobs == {} and state.hits == {} and state.outcomes == []
    with pytest.raises(KeyError):
        await journal.finish_run("nope", "done", None)


# -- batching and crash consistency ------------------------------------------------------------------
async def start_job(journal: BufferedJournal, run_id: str = "run-1") -> None:
    await journal.record_run(run_id, REQUEST, NOW)
    await journal.record_submit_intent(run_id, "fake", "key-1", REQUEST)


async def test_buffered_hits_and_checkpoint_are_both_absent_or_both_present(backend: JournalBackend) -> None:
    async with backend.journal(flush_interval_s=60) as writer:
        await start_job(writer)
        await writer.record_hits("run-1", "fake", [hit(0), hit(1)])
        await writer.record_checkpoint("run-1", "fake", {"offset": 2})
        # A second journal on the same file while the first is still open (as after a crash).
        async with backend.journal() as reader:
            seen = await reader.get("run-1", "fake")
            assert seen is not None and seen.idempotency_key == "key-1"  # the intent is durable
            assert seen.checkpoint is None and await reader.hits("run-1", "fake") == []  # both absent
            await writer.flush()
            seen = await reader.get("run-1", "fake")
            assert seen is not None and seen.checkpoint == {"offset": 2}
            assert await reader.hits("run-1", "fake") == [hit(0), hit(1)]  # both present


async def test_a_failed_flush_writes_neither_and_keeps_the_buffer(backend: JournalBackend,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    async with backend.journal(flush_interval_s=60) as writer, backend.journal() as reader:
        await start_job(writer)
        await writer.record_hits("run-1", "fake", [hit(0), hit(1)])
        await writer.record_checkpoint("run-1", "fake", {"offset": 2})
        # The checkpoint UPDATE fails after the hits were inserted in the same transaction.
        mark = backend.placeholder
        monkeypatch.setattr(writer, "sql", replace(
            writer.sql, update_checkpoint=f"UPDATE no_such_table SET x = {mark}, y = {mark}, z = {mark}"))
        with pytest.raises(backend.sql_error):
            await writer.flush()
        assert await reader.hits("run-1", "fake") == []
        monkeypatch.undo()
        await writer.flush()
        assert await reader.hits("run-1", "fake") == [hit(0), hit(1)]
        seen = await reader.get("run-1", "fake")
        assert seen is not None and seen.checkpoint == {"offset": 2}


async def test_a_write_cancelled_while_its_transaction_begins_leaves_no_transaction_open(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Found under CPU load (tests/stress.py): a run abandoned mid-write (``stream.aclose()``) was
    cancelled while awaiting ``BEGIN``, which SQLite's thread runs anyway; with nothing to roll it
    back, every later write failed with "cannot start a transaction within a transaction"."""
    async with SqliteJournal(tmp_path / "journal.sqlite", flush_interval_s=60) as journal:
        await start_job(journal)
        connection = journal._db
        assert connection is not None
        execute, began = connection.execute, asyncio.Event()

        async def cancelled_after_begin(sql: str, *args: Any) -> Any:  # the cancel lands as BEGIN returns
            result = await execute(sql, *args)
            if sql.startswith("BEGIN") and not began.is_set():
                began.set()
                await asyncio.Event().wait()
            return result

        monkeypatch.setattr(connection, "execute", cancelled_after_begin)
        writer = asyncio.create_task(journal.record_state("run-1", "fake", "ready"))
        await asyncio.wait_for(began.wait(), 10)
        writer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await writer
        monkeypatch.undo()

        await journal.record_state("run-1", "fake", "done")  # the next write works...
        record = await journal.get("run-1", "fake")
        assert record is not None and record.state == "done"  # ...and the cancelled one left nothing


async def test_timed_flush_stops_at_the_last_checkpoint(backend: JournalBackend) -> None:
    async with backend.journal(flush_interval_s=0.02) as writer, backend.journal() as reader:
        await start_job(writer)
        await writer.record_hits("run-1", "fake", [hit(0), hit(1)])
        await writer.record_checkpoint("run-1", "fake", {"offset": 2})
        await writer.record_hits("run-1", "fake", [hit(2)])  # its checkpoint is not recorded yet
        for _ in range(1000):  # the timed flush, however late a busy machine runs it (20 s at most)
            await asyncio.sleep(0.02)
            if await reader.hits("run-1", "fake"):
                break
        assert await reader.hits("run-1", "fake") == [hit(0), hit(1)]
        seen = await reader.get("run-1", "fake")
        assert seen is not None and seen.checkpoint == {"offset": 2}
        await writer.record_state("run-1", "fake", "done")  # a committed write flushes everything
        assert await reader.hits("run-1", "fake") == [hit(0), hit(1), hit(2)]


CHILD = textwrap.dedent("""
    import asyncio, sys
    from datetime import UTC, datetime
    from aggregator.config import load_database_settings
    from aggregator.db import open_journal
    from aggregator.models import Hit, Person, SearchRequest

    async def main(path):  # PostgreSQL when DEEPSEARCH_DATABASE_URL is set, else the SQLite file
        database = load_database_settings(env=None)
        journal = await open_journal(database, None if database.url else path, flush_interval_s=0.01).open()
        request = SearchRequest(query="crash test")
        await journal.record_run("run-1", request, datetime.now(UTC))
        await journal.record_submit_intent("run-1", "fake", "key-1", request)
        print("ready", flush=True)
        n = 0
        while True:
            page = [Hit(provider="fake", provider_record_id=f"r{n + i}", rank=n + i + 1,
                        retrieved_at=datetime.now(UTC), entity=Person(full_name=f"P{n + i}"))
                    for i in range(7)]
            await journal.record_hits("run-1", "fake", page)
            n += len(page)
            await journal.record_checkpoint("run-1", "fake", {"offset": n})
            await asyncio.sleep(0)

    asyncio.run(main(sys.argv[1]))
""")


async def test_killed_writer_leaves_checkpoint_consistent_with_hits(backend: JournalBackend, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DEEPSEARCH_DATABASE_URL", "DEEPSEARCH_CONFIG")}
    if backend.kind == "postgres":
        env["DEEPSEARCH_DATABASE_URL"] = backend.target
    child = await asyncio.create_subprocess_exec(sys.executable, "-c", CHILD, str(tmp_path / "journal.sqlite"),
                                                 cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE)
    try:
        assert child.stdout is not None
        assert await asyncio.wait_for(child.stdout.readline(), 30) == b"ready\n"
        async with backend.journal() as watcher:  # kill it mid-stream: after its first flushes, not a timed guess
            for _ in range(3000):
                flushed = await watcher.hits("run-1", "fake")
                if len(flushed) >= 21:
                    break
                await asyncio.sleep(0.01)
            assert len(flushed) >= 21, "the writer flushed nothing within 30 s"
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
    async with backend.journal() as journal:
        record = await journal.get("run-1", "fake")
        assert record is not None and record.idempotency_key == "key-1"
        hits = await journal.hits("run-1", "fake")
        assert record.checkpoint is not None and record.checkpoint["offset"] == len(hits) > 0
        assert [h.rank for h in hits] == list(range(1, len(hits) + 1))


# -- history -----------------------------------------------------------------------------------------
async def test_runs_newest_first_with_counts(backend: JournalBackend) -> None:
    wall = [NOW]  # the journal's wall clock, which orders the runs (the run's own clock may be virtual)
    async with backend.journal(now=lambda: wall[0]) as journal:
        company = SearchRequest(query="fintechs in Lisbon", mode="company")
        for run_id, request, created in (("old", REQUEST, NOW - timedelta(days=1)),
                                         ("new", company, NOW + timedelta(hours=1)), ("mid", REQUEST, NOW)):
            wall[0] = created
            await journal.record_run(run_id, request, NOW + timedelta(days=365))  # a sandbox clock far ahead
        for provider, count in (("sixtyfour", 3), ("extruct", 2)):
            await journal.record_submit_intent("new", provider, f"k-{provider}", company)
            await journal.record_hits("new", provider, [hit(i, provider) for i in range(count)])
        await journal.record_submit_intent("mid", "orbit", "k", REQUEST)
        wall[0] = NOW + timedelta(minutes=5)
        await journal.finish_run("old", "done", None)

        runs = await journal.runs()
        assert [r.run_id for r in runs] == ["new", "mid", "old"]
        # no report yet: the records are the hits merged so far (each person from both providers: 3, of 5 hits)
        assert runs[0] == RunSummary(run_id="new", created_at=NOW + timedelta(hours=1), status="running",
                                     query="fintechs in Lisbon", mode="company", providers=["extruct", "sixtyfour"],
                                     records=3, records_final=False, hits=5, short_id="new")
        assert (runs[1].providers, runs[1].records, runs[2].providers, runs[2].status) == (["orbit"], 0, [], "done")
        assert runs[2].finished_at == NOW + timedelta(minutes=5)  # the wall clock when it was finished
        assert [r.run_id for r in await journal.runs(limit=2)] == ["new", "mid"]


async def test_wal_mode_is_on(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    async with SqliteJournal(path) as journal:
        assert await journal.journal_mode() == "wal"
    with contextlib.closing(sqlite3.connect(path)) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persisted in the file
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "jobs", "hits", "outcomes"} <= tables


def test_default_journal_path(tmp_path: Path) -> None:
    explicit = tmp_path / "a" / "j.sqlite"
    assert default_journal_path({"DEEPSEARCH_JOURNAL": str(explicit)}) == explicit
    assert explicit.parent.is_dir()
    xdg = default_journal_path({"XDG_DATA_HOME": str(tmp_path / "xdg")})
    assert xdg == tmp_path / "xdg" / "deepsearch" / "journal.sqlite" and xdg.parent.is_dir()


async def test_ten_thousand_hits_round_trip(backend: JournalBackend) -> None:
    async with backend.journal() as journal:
        await start_job(journal)
        for start in range(0, 10_000, 100):
            await journal.record_hits("run-1", "fake", [hit(i) for i in range(start, start + 100)])
            await journal.record_checkpoint("run-1", "fake", {"offset": start + 100})
    async with backend.journal() as journal:
        hits = await journal.hits("run-1", "fake")
        record = await journal.get("run-1", "fake")
        summary = (await journal.runs())[0]
    assert len(hits) == 10_000 and [h.rank for h in hits] == list(range(1, 10_001))
    assert hits[1234] == hit(1234)
    assert record is not None and record.checkpoint == {"offset": 10_000} and len(record.history) == 101
    assert summary.hits == 10_000 and (summary.records, summary.records_final) == (50, False)  # merged, capped
    assert json.loads(hits[-1].model_dump_json())["raw"] == {"i": 9999, "tags": ["a", "b"]}


async def test_backpressure_writes_when_the_buffer_is_full(backend: JournalBackend) -> None:
    async with backend.journal(flush_interval_s=60, max_buffered_hits=50) as writer, backend.journal() as reader:
        await start_job(writer)
        for page in range(3):
            await writer.record_hits("run-1", "fake", [hit(i) for i in range(page * 30, page * 30 + 30)])
            await writer.record_checkpoint("run-1", "fake", {"offset": page * 30 + 30})
            expected = 60 if page >= 1 else 0  # 60 buffered >= 50: written; then 30 wait again
            assert len(await reader.hits("run-1", "fake")) == expected
