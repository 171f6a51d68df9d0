"""Batch stores: a batch is recorded once; each row goes pending -> running (with its run id) -> done/failed."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path

import pytest

from aggregator.batch import (
    BatchRow,
    BatchSpec,
    BatchStore,
    InMemoryBatchStore,
    SqliteBatchStore,
    default_batch_store,
)
from aggregator.batch.store import BatchSummary, summarize
from aggregator.errors import ConfigError
from aggregator.journal import SqliteJournal
from aggregator.models import SearchRequest
from tests.postgres import Cluster

ROWS = (BatchRow(row=1, line=2, kind="search", fields={"query": "CTO in Berlin", "max_results": 5}),
        BatchRow(row=2, line=3, kind="lookup",
                 fields={"query": "lookup email a@b.co", "identity": {"email": "a@b.co"}}))
SPEC = BatchSpec("0123456789abcdef", ROWS, {"target": "sandbox"}, source="rows.csv")


@pytest.fixture(params=["memory", "sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BatchStore]:
    if request.param == "memory":
        yield InMemoryBatchStore()
        return
    if request.param == "postgres":  # the tables of migration 0003, in a fresh migrated database
        from aggregator.batch.pgstore import PostgresBatchStore
        from tests.db.backends import migrated_database

        async with PostgresBatchStore(migrated_database(request.getfixturevalue("postgres"))) as pg_store:
            yield pg_store
        return
    async with SqliteBatchStore(tmp_path / "journal.sqlite") as sqlite_store:
        yield sqlite_store


async def test_a_batch_is_created_once_with_its_rows_pending(store: BatchStore) -> None:
    assert await store.create_batch(SPEC) is True
    assert await store.create_batch(BatchSpec(SPEC.batch_id, ROWS[:1], {})) is False  # nothing is written

    loaded = await store.load_batch(SPEC.batch_id)
    assert loaded is not None and loaded.rows == ROWS and loaded.options == {"target": "sandbox"}
    assert loaded.source == "rows.csv" and isinstance(loaded.created_at, datetime)
    assert [(s.row, s.status, s.run_id) for s in await store.row_states(SPEC.batch_id)] == [
        (1, "pending", None), (2, "pending", None)]
    assert await store.load_batch("nosuch") is None
    with pytest.raises(KeyError):
        await store.row_states("nosuch")


async def test_a_row_records_its_run_then_how_it_finished(store: BatchStore) -> None:
    await store.create_batch(SPEC)
    await store.row_started(SPEC.batch_id, 2, "run-a")
    running = (await store.row_states(SPEC.batch_id))[1]
    assert (running.status, running.run_id, running.finished) == ("running", "run-a", False)
    assert running.started_at is not None

    await store.row_finished(SPEC.batch_id, 2, status="failed", records=0, credits=10.0, error="orbit: failed")
    failed = (await store.row_states(SPEC.batch_id))[1]
    assert (failed.status, failed.run_id, failed.credits, failed.error) == ("failed", "run-a", 10.0, "orbit: failed")
    assert failed.finished and failed.finished_at is not None

    await store.row_started(SPEC.batch_id, 2, "run-b")  # run again (--retry-failed): the old result is cleared
    again = (await store.row_states(SPEC.batch_id))[1]
    assert (again.status, again.run_id, again.credits, again.error) == ("running", "run-b", 0.0, None)
    with pytest.raises(KeyError):
        await store.row_started(SPEC.batch_id, 3, "run-c")


async def test_batch_ids_resolve_from_a_unique_prefix(store: BatchStore) -> None:
    await store.create_batch(SPEC)
    await store.create_batch(BatchSpec("0123ffff00000000", ROWS, {}))

    assert await store.resolve_batch_id("01234") == SPEC.batch_id
    assert await store.resolve_batch_id(SPEC.batch_id) == SPEC.batch_id
    for prefix, message in (("0123", "starts 2 batches"), ("01", "too short"), ("feed", "no batch 'feed'")):
        with pytest.raises(ConfigError, match=message) as caught:
            await store.resolve_batch_id(prefix)
        assert caught.value.field == "batch_id"


async def test_the_sqlite_store_shares_the_journal_file_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    async with SqliteJournal(path) as journal, SqliteBatchStore(path) as store:
        await journal.record_run("run-a", SearchRequest(query="CTO"), datetime.now())
        await store.create_batch(SPEC)
        await store.row_started(SPEC.batch_id, 1, "run-a")
    async with SqliteBatchStore(path) as reopened:
        assert (await reopened.row_states(SPEC.batch_id))[0].run_id == "run-a"
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"runs", "jobs", "batches", "batch_rows"} <= tables


async def test_the_postgres_store_sums_a_batch_as_the_rows_say_and_goes_with_the_postgres_journal(
        postgres: Cluster) -> None:
    from aggregator.batch.pgstore import PostgresBatchStore
    from aggregator.db.journal import PostgresJournal
    from tests.db.backends import migrated_database

    url = migrated_database(postgres)
    async with PostgresJournal(url) as journal, default_batch_store(journal) as store:
        assert isinstance(store, PostgresBatchStore)
        await store.create_batch(SPEC)
        await store.row_started(SPEC.batch_id, 1, "run-a")
        await store.row_finished(SPEC.batch_id, 1, status="done", records=7, credits=12.5, error=None)
        assert await store.summary(SPEC.batch_id) == summarize(SPEC.batch_id, await store.row_states(SPEC.batch_id))
        assert await store.summary(SPEC.batch_id) == BatchSummary(SPEC.batch_id, 2, pending=1, done=1, records=7,
                                                                  credits=12.5)
        assert (await store.row_state(SPEC.batch_id, 1)).run_id == "run-a"
        with pytest.raises(KeyError):
            await store.summary("nosuch")
        with pytest.raises(KeyError):
            await store.row_state(SPEC.batch_id, 3)
    async with PostgresBatchStore(url) as another:  # what another process (or machine) reads
        assert (await another.summary(SPEC.batch_id)).finished == 1


async def test_a_batch_keeps_its_budget_and_the_credits_of_runs_its_rows_replaced(store: BatchStore) -> None:
    await store.create_batch(BatchSpec(SPEC.batch_id, ROWS, SPEC.options, budget=50.0))
    loaded = await store.load_batch(SPEC.batch_id)
    assert loaded is not None and loaded.budget == 50.0 and await store.batch_budget(SPEC.batch_id) == 50.0
    await store.set_batch_budget(SPEC.batch_id, 80.0)  # running the batch again with another --budget
    assert await store.batch_budget(SPEC.batch_id) == 80.0

    assert await store.retired_credits(SPEC.batch_id) == 0.0
    await store.row_started(SPEC.batch_id, 1, "run-a")
    await store.row_finished(SPEC.batch_id, 1, status="failed", records=0, credits=12.5, error="cut")
    await store.row_started(SPEC.batch_id, 1, "run-b")  # --retry-failed: the row's new run replaces run-a
    assert await store.retired_credits(SPEC.batch_id) == 12.5  # what run-a cost stays counted
    assert (await store.row_states(SPEC.batch_id))[0].credits == 0.0

    for missing in (store.batch_budget, store.retired_credits):
        with pytest.raises(KeyError):
            await missing("nosuch")


async def test_a_journal_file_from_before_batch_budgets_gets_the_columns(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript("CREATE TABLE batches (batch_id TEXT PRIMARY KEY, created_wall TEXT NOT NULL, source TEXT,"
                         " options_json TEXT NOT NULL, total_rows INTEGER NOT NULL);"
                         "INSERT INTO batches VALUES ('old', '2026-01-01T00:00:00+00:00', NULL, '{}', 0);")
    async with SqliteBatchStore(path) as sqlite_store:
        assert await sqlite_store.batch_budget("old") is None and await sqlite_store.retired_credits("old") == 0.0
