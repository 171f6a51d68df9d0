"""The queue of batch rows on a real database, without running searches: enqueue-once, stalled-job retry,
and Procrastinate's schema as migration 0004 holds it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from aggregator.batch import BatchRow, BatchSpec
from aggregator.batch.pgstore import PostgresBatchStore
from aggregator.batch.queue import (
    PROCRASTINATE_SCHEMA,
    TASK_NAME,
    build_app,
    check_procrastinate,
    enqueue,
    live_workers,
    retry_stalled,
    row_key,
)
from aggregator.db import migrate
from aggregator.errors import ConfigError
from tests.db.backends import migrated_database
from tests.postgres import Cluster

ROWS = tuple(BatchRow(row=n, line=n + 1, kind="search", fields={"query": f"CTO in City {n}"}) for n in (1, 2, 3))
SPEC = BatchSpec("00ddba7c4000beef", ROWS, {"target": "sandbox"}, source="rows.csv")


@pytest.fixture
async def queue(postgres: Cluster) -> AsyncIterator[tuple[Any, PostgresBatchStore, str]]:
    """The Procrastinate app (open), the batch store holding :data:`SPEC`, and the database URL."""
    url = migrated_database(postgres)
    app = build_app(url)
    async with PostgresBatchStore(url) as store, app.open_async():
        await store.create_batch(SPEC)
        yield app, store, url


def jobs(url: str) -> list[tuple[str, str, int]]:
    with psycopg.connect(url, autocommit=True) as conn:
        return [(str(lock), str(status), int(attempts)) for lock, status, attempts in conn.execute(
            "SELECT lock, status::text, attempts FROM procrastinate_jobs ORDER BY id").fetchall()]


def execute(url: str, sql: str, *params: Any) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql.encode(), params)


async def test_each_unfinished_row_is_enqueued_once_with_its_row_as_lock(
        queue: tuple[Any, PostgresBatchStore, str]) -> None:
    app, store, url = queue
    await store.row_finished(SPEC.batch_id, 3, status="done", records=1, credits=1.0, error=None)

    first = await enqueue(app, store, SPEC.batch_id)
    again = await enqueue(app, store, SPEC.batch_id)

    assert (first.enqueued, first.queued, first.finished) == (2, 0, 1)
    assert (again.enqueued, again.queued, again.finished) == (0, 2, 1)
    assert jobs(url) == [(row_key(SPEC.batch_id, 1), "todo", 0), (row_key(SPEC.batch_id, 2), "todo", 0)]


async def test_a_row_whose_job_ended_unfinished_is_enqueued_again_and_retry_failed_reruns_failed_rows(
        queue: tuple[Any, PostgresBatchStore, str]) -> None:
    app, store, url = queue
    await enqueue(app, store, SPEC.batch_id)
    execute(url, "UPDATE procrastinate_jobs SET status = 'aborted' WHERE lock = %s", row_key(SPEC.batch_id, 1))
    await store.row_finished(SPEC.batch_id, 2, status="failed", records=0, credits=10.0, error="orbit: failed")
    execute(url, "UPDATE procrastinate_jobs SET status = 'succeeded' WHERE lock = %s", row_key(SPEC.batch_id, 2))

    assert (await enqueue(app, store, SPEC.batch_id)).enqueued == 1  # row 1: its job was aborted
    assert (await enqueue(app, store, SPEC.batch_id, retry_failed=True)).enqueued == 1  # row 2 again
    state = await store.row_state(SPEC.batch_id, 2)
    assert (state.status, state.error, state.credits) == ("pending", None, 0.0)
    assert sorted(lock for lock, status, _ in jobs(url) if status == "todo") == \
        [row_key(SPEC.batch_id, n) for n in (1, 2, 3)]


async def test_the_jobs_of_a_worker_whose_heartbeat_is_stale_are_retried_once(
        queue: tuple[Any, PostgresBatchStore, str]) -> None:
    app, store, url = queue
    await enqueue(app, store, SPEC.batch_id)
    dead, alive = await app.job_manager.register_worker(), await app.job_manager.register_worker()
    taken = await app.job_manager.fetch_job(queues=None, worker_id=dead)
    kept = await app.job_manager.fetch_job(queues=None, worker_id=alive)
    execute(url, "UPDATE procrastinate_workers SET last_heartbeat = now() - interval '31 seconds' WHERE id = %s",
            dead)

    assert await live_workers(store, stale_after_s=30) == 1
    assert await retry_stalled(app, store, stale_after_s=30) == [taken.id]
    assert await retry_stalled(app, store, stale_after_s=30) == []  # already back in the queue
    assert [(lock, status) for lock, status, _ in jobs(url)] == [
        (taken.lock, "todo"), (kept.lock, "doing"), (row_key(SPEC.batch_id, 3), "todo")]
    assert jobs(url)[0][2] == 1  # one more attempt


async def test_a_job_that_is_waiting_blocks_a_second_one_for_its_row(queue: tuple[Any, PostgresBatchStore, str]
                                                                     ) -> None:
    """Procrastinate's own guard under ours: a second waiting job with the same queueing lock is refused."""
    from procrastinate import exceptions

    app, store, _ = queue
    await enqueue(app, store, SPEC.batch_id)
    with pytest.raises(exceptions.AlreadyEnqueued):
        await app.configure_task(TASK_NAME, queueing_lock=row_key(SPEC.batch_id, 1)).defer_async(
            batch_id=SPEC.batch_id, row=1)


def test_migration_0004_is_the_installed_procrastinate_schema_verbatim() -> None:
    from procrastinate.schema import SchemaManager

    migration = next(m for m in migrate.migrations() if m.name == "procrastinate")
    header, _, body = migration.sql.partition("-- ---- procrastinate/sql/schema.sql ----\n")
    assert header.startswith("-- 0004 procrastinate")
    assert body == SchemaManager.get_schema(), (
        "procrastinate's schema changed: add its new migrations (procrastinate/sql/migrations) as a new "
        "aggregator/db/migrations/000N_*.sql and raise PROCRASTINATE_SCHEMA")
    check_procrastinate()  # the installed release is the one migration 0004 holds


def test_a_procrastinate_with_a_newer_schema_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from procrastinate import schema

    (tmp_path / f"{PROCRASTINATE_SCHEMA[:5]}.99_01_from_the_future.sql").write_text("")
    monkeypatch.setattr(schema, "migrations_path", tmp_path)

    with pytest.raises(ConfigError, match=r"newer than the 03\.04\.00") as refused:
        check_procrastinate()
    assert refused.value.field == "database.url"
