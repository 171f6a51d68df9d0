"""The PostgreSQL journal: :class:`PostgresJournal`, the :class:`~aggregator.journal.SqliteJournal`'s
interface and rules on a database many processes share.

Everything but the statements and the transactions is the shared
:class:`~aggregator.journal.BufferedJournal`: the same durability rules (committed writes before they
return; hits and checkpoints buffered and written together, a persisted checkpoint always with every
hit recorded before it), the same reads. The schema is migration 0001
(``aggregator/db/migrations/0001_journal.sql``); opening checks the schema version and that the
server is reachable.

Concurrency: each process (or journal object) buffers its own jobs' hits; the database serializes the
rest. Runs and jobs of other processes are read as they commit. One job (run, provider) has one writer
at a time, as in every store (a second one writing its hits is refused by the hits' key, never mixed
in). If the server becomes unreachable, every call raises
:class:`~aggregator.errors.DatabaseUnavailableError` (the buffer is kept for a later flush): the run
stops, and is resumable from what was committed once the server is back.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import datetime
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from aggregator.config import DatabaseSettings
from aggregator.db.pool import open_pool, target, unavailable_as_error
from aggregator.db.settings import redact
from aggregator.journal import BufferedJournal, JournalSql, Row, Transaction, _utc, _wall_now

__all__ = ["POSTGRES_SQL", "PostgresJournal"]

_JOB_COLUMNS = ("run_id, provider, idempotency_key, state, request::text, job::text, checkpoint::text,"
                " history::text")

POSTGRES_SQL = JournalSql(
    insert_hit="INSERT INTO hits (run_id, provider, seq, hit) VALUES (%s, %s, %s, %s::json)",
    update_checkpoint=("UPDATE jobs SET checkpoint = %s::json, history = history || '[\"checkpoint\"]'::jsonb"
                       " WHERE run_id = %s AND provider = %s"),
    update_state=("UPDATE jobs SET state = %s, history = history || jsonb_build_array(%s::text)"
                  " WHERE run_id = %s AND provider = %s"),
    update_submitted=("UPDATE jobs SET state = 'submitted', job = %s::json,"
                      " history = history || '[\"submitted\"]'::jsonb WHERE run_id = %s AND provider = %s"),
    insert_run=("INSERT INTO runs (run_id, created_at, status, request, created_wall)"
                " VALUES (%s, %s, %s, %s::json, %s) ON CONFLICT (run_id) DO NOTHING"),
    upsert_job=("INSERT INTO jobs (run_id, provider, idempotency_key, state, request, job, checkpoint, history)"
                " VALUES (%s, %s, %s, 'submitting', %s::json, NULL, NULL, %s::jsonb)"
                " ON CONFLICT (run_id, provider) DO UPDATE SET idempotency_key = EXCLUDED.idempotency_key,"
                " state = EXCLUDED.state, request = EXCLUDED.request, job = NULL, checkpoint = NULL,"
                " history = EXCLUDED.history"),
    insert_outcome="INSERT INTO outcomes (run_id, provider, outcome) VALUES (%s, %s, %s::json)",
    run_to_finish="SELECT status, created_wall FROM runs WHERE run_id = %s FOR UPDATE",
    finish_run=("UPDATE runs SET status = %s, report = %s::json, finished_wall = %s,"
                " wall_s = CASE WHEN %s THEN %s::float8 ELSE wall_s END WHERE run_id = %s"),
    job_exists="SELECT 1 FROM jobs WHERE run_id = %s AND provider = %s",
    next_seq="SELECT COALESCE(MAX(seq) + 1, 0) FROM hits WHERE run_id = %s AND provider = %s",
    job=f"SELECT {_JOB_COLUMNS} FROM jobs WHERE run_id = %s AND provider = %s",
    hits="SELECT hit::text FROM hits WHERE run_id = %s AND provider = %s ORDER BY seq",
    hits_of_run="SELECT hit::text FROM hits WHERE run_id = %s ORDER BY provider, seq",
    run_ids=("SELECT run_id FROM runs WHERE run_id = %s OR (%s <> '' AND left(run_id, length(%s)) = %s)"
             " ORDER BY run_id"),
    run=("SELECT status, request::text, report::text, created_wall, finished_wall, wall_s FROM runs"
         " WHERE run_id = %s"),
    run_jobs=f"SELECT {_JOB_COLUMNS} FROM jobs WHERE run_id = %s ORDER BY provider",
    run_hits="SELECT provider, hit::text FROM hits WHERE run_id = %s ORDER BY provider, seq",
    run_outcomes="SELECT outcome::text FROM outcomes WHERE run_id = %s ORDER BY id",
    runs=(
        "SELECT r.run_id, r.created_at, r.created_wall, r.finished_wall, r.wall_s, r.status, r.request::text,"
        " r.report IS NOT NULL, (r.report->>'sandbox')::boolean, (r.report->>'elapsed_s')::float8,"
        " json_array_length(r.report->'records'),"
        " (SELECT COUNT(*) FROM hits h WHERE h.run_id = r.run_id),"
        " (SELECT COALESCE(json_agg(j.provider ORDER BY j.provider), '[]'::json)::text FROM jobs j"
        "   WHERE j.run_id = r.run_id),"
        " (SELECT MAX(o.run_id) FROM runs o WHERE o.run_id < r.run_id),"
        " (SELECT MIN(o.run_id) FROM runs o WHERE o.run_id > r.run_id)"
        " FROM runs r ORDER BY COALESCE(r.created_wall, r.created_at) DESC, r.id DESC LIMIT %s"),
    clear_cache_key="UPDATE runs SET cache_key = NULL WHERE cache_key = %s",
    set_cache_key="UPDATE runs SET cache_key = %s WHERE run_id = %s",
    cached_run=("SELECT run_id FROM runs WHERE cache_key = %s AND status = 'done' AND report IS NOT NULL"
                " AND finished_wall >= %s ORDER BY finished_wall DESC LIMIT 1"),
)
"""The statements of :class:`PostgresJournal` (the schema is migration 0001; ``cache_key`` is 0006)."""


class _PostgresTransaction:
    """:class:`~aggregator.journal.Transaction` over one psycopg connection."""

    def __init__(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._conn = conn

    async def execute(self, sql: str, params: Sequence[Any]) -> None:
        await self._conn.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        async with self._conn.cursor() as cursor:
            await cursor.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]:
        cursor = await self._conn.execute(sql, params)
        return [tuple(row) for row in await cursor.fetchall()]


class PostgresJournal(BufferedJournal):
    """A durable :class:`~aggregator.jobstore.JobStore` and run history in a PostgreSQL database.

    Use as ``async with PostgresJournal(settings.database) as journal: ...`` (or a URL instead of the
    settings). Opening connects a pool of at most ``pool_size`` connections and checks the schema
    version. ``flush_interval_s`` (real seconds), ``max_buffered_hits`` and ``now`` are as for
    :class:`~aggregator.journal.SqliteJournal`.

    Raises (from ``open``):
        ConfigError: no database URL is set.
        DatabaseUnavailableError: the server cannot be reached (also from any later call when it goes away).
        DatabaseSchemaError: the schema is behind (``deepsearch db migrate``) or ahead of this version.
    """

    sql = POSTGRES_SQL

    def __init__(self, database: DatabaseSettings | str, *, flush_interval_s: float = 0.2,
                 max_buffered_hits: int = 5000, now: Callable[[], datetime] = _wall_now) -> None:
        super().__init__(flush_interval_s=flush_interval_s, max_buffered_hits=max_buffered_hits, now=now)
        self._url, self.database = target(database)
        self._pool: AsyncConnectionPool | None = None

    @property
    def location(self) -> str:
        """The database URL with its password as ``***``."""
        return redact(self._url)

    @property
    def is_open(self) -> bool:
        return self._pool is not None

    def _time(self, moment: datetime) -> Any:
        return _utc(moment)

    async def _connect(self) -> None:
        self._pool = await open_pool(self.database)

    async def _disconnect(self) -> None:
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    @contextlib.asynccontextmanager
    async def _connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        if self._pool is None:
            raise RuntimeError("PostgresJournal is not open: use 'async with PostgresJournal(settings) as journal'")
        with unavailable_as_error(self._url, self.database.connect_timeout_s):
            async with self._pool.connection() as conn:
                yield conn

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[Transaction]:
        async with self._connection() as conn, conn.transaction():
            yield _PostgresTransaction(conn)

    @contextlib.asynccontextmanager
    async def _read(self, *, snapshot: bool) -> AsyncIterator[Transaction]:
        async with self._connection() as conn, conn.transaction():
            if snapshot:
                await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield _PostgresTransaction(conn)
