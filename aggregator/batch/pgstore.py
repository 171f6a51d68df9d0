"""The :class:`~aggregator.batch.store.BatchStore` on PostgreSQL: :class:`PostgresBatchStore`.

The tables are migrations 0003 and 0005 (``aggregator/db/migrations/``: batches, rows, a batch's
budget), the SQLite store's ``batches`` and ``batch_rows`` in PostgreSQL's types; every process and
machine that uses the same database sees the same batches, so ``deepsearch worker`` processes anywhere
run a batch's rows and ``deepsearch batch status BATCH_ID`` shows its progress from any machine. Every
write is committed before it returns. Opening checks that the server answers and that the schema is this version's.

psycopg is imported here: this module is imported only when a database URL is set.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

from aggregator.batch.rows import BatchRow
from aggregator.batch.store import BatchSpec, BatchSummary, RowState, RowStatus, match_batch_id
from aggregator.config import DatabaseSettings
from aggregator.db.pool import open_pool, target, unavailable_as_error

__all__ = ["PostgresBatchStore"]

_ROW_STATE = ("SELECT row_no, status, run_id, records, credits, error, started_wall, finished_wall"
              " FROM batch_rows")
_SUMMARY = ("SELECT count(*), count(*) FILTER (WHERE status = 'pending'), count(*) FILTER (WHERE status = 'running'),"
            " count(*) FILTER (WHERE status = 'done'), count(*) FILTER (WHERE status = 'failed'),"
            " coalesce(sum(records) FILTER (WHERE status IN ('done', 'failed')), 0),"
            " coalesce(sum(credits) FILTER (WHERE status IN ('done', 'failed')), 0)"
            " FROM batch_rows WHERE batch_id = %s")


def _wall_now() -> datetime:
    return datetime.now(UTC)


def _state(row: Sequence[Any]) -> RowState:
    number, status, run_id, records, credits, error, started, finished = row
    return RowState(number, status, run_id, records, float(credits), error, started, finished)


class PostgresBatchStore:
    """A :class:`~aggregator.batch.store.BatchStore` in the PostgreSQL database ``database`` (settings or
    a URL). Use as ``async with PostgresBatchStore(settings.database) as store`` (or ``await open()`` /
    ``await close()``); it holds a pool of at most ``pool_size`` connections.

    Raises (from ``open``):
        ConfigError: no database URL is set.
        DatabaseUnavailableError: the server cannot be reached (also from any later call when it goes away).
        DatabaseSchemaError: the schema is behind (``deepsearch db migrate``) or ahead of this version.
    """

    def __init__(self, database: DatabaseSettings | str) -> None:
        self._url, self.database = target(database)
        self._pool: AsyncConnectionPool | None = None

    async def open(self) -> Self:
        """Connect (checking the schema version). Returns self."""
        if self._pool is None:
            self._pool = await open_pool(self.database)
        return self

    async def close(self) -> None:
        """Close the pool (idempotent)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            await pool.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A pooled connection (autocommit off: ``async with conn.transaction()`` for a transaction).

        Raises:
            RuntimeError: the store is not open. DatabaseUnavailableError: the server went away.
        """
        if self._pool is None:
            raise RuntimeError("PostgresBatchStore is not open: use 'async with PostgresBatchStore(settings) as store'")
        with unavailable_as_error(self._url, self.database.connect_timeout_s):
            async with self._pool.connection() as conn:
                yield conn

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self.connection() as conn:
            cursor = await conn.execute(sql.encode(), params)
            return [tuple(row) for row in await cursor.fetchall()]

    async def _update(self, sql: str, params: Sequence[Any], what: tuple[str, int]) -> None:
        async with self.connection() as conn:
            cursor = await conn.execute(sql.encode(), params)
        if cursor.rowcount != 1:
            raise KeyError(what)

    async def create_batch(self, spec: BatchSpec) -> bool:
        rows = [(spec.batch_id, row.row, row.line, orjson.dumps(row.normalized()).decode()) for row in spec.rows]
        async with self.connection() as conn, conn.transaction():
            cursor = await conn.execute(
                "INSERT INTO batches (batch_id, created_wall, source, options, total_rows, budget)"
                " VALUES (%s, %s, %s, %s::json, %s, %s) ON CONFLICT (batch_id) DO NOTHING",
                (spec.batch_id, _wall_now(), spec.source, orjson.dumps(dict(spec.options)).decode(), len(rows),
                 spec.budget))
            created = cursor.rowcount == 1
            if created:
                async with conn.cursor() as many:
                    await many.executemany("INSERT INTO batch_rows (batch_id, row_no, line, row_data)"
                                           " VALUES (%s, %s, %s, %s::json)", rows)
        return created

    async def load_batch(self, batch_id: str) -> BatchSpec | None:
        found = await self._fetch("SELECT created_wall, source, options::text, budget FROM batches"
                                  " WHERE batch_id = %s", (batch_id,))
        if not found:
            return None
        created, source, options, budget = found[0]
        rows = await self._fetch("SELECT row_no, line, row_data::text FROM batch_rows WHERE batch_id = %s"
                                 " ORDER BY row_no", (batch_id,))
        return BatchSpec(batch_id, tuple(BatchRow(row=n, line=line, **orjson.loads(data)) for n, line, data in rows),
                         orjson.loads(options), source, created, budget)

    async def batch_budget(self, batch_id: str) -> float | None:
        found = await self._fetch("SELECT budget FROM batches WHERE batch_id = %s", (batch_id,))
        if not found:
            raise KeyError(batch_id)
        return None if found[0][0] is None else float(found[0][0])

    async def set_batch_budget(self, batch_id: str, budget: float | None) -> None:
        async with self.connection() as conn:
            cursor = await conn.execute("UPDATE batches SET budget = %s WHERE batch_id = %s", (budget, batch_id))
        if cursor.rowcount != 1:
            raise KeyError(batch_id)

    async def retired_credits(self, batch_id: str) -> float:
        found = await self._fetch("SELECT credits_retired FROM batches WHERE batch_id = %s", (batch_id,))
        if not found:
            raise KeyError(batch_id)
        return float(found[0][0])

    async def resolve_batch_id(self, prefix: str) -> str:
        found = await self._fetch("SELECT batch_id FROM batches WHERE batch_id = %s OR (%s <> '' AND"
                                  " left(batch_id, length(%s)) = %s)", (prefix, prefix, prefix, prefix))
        return match_batch_id(prefix, (row[0] for row in found))

    async def row_states(self, batch_id: str) -> list[RowState]:
        found = await self._fetch(f"{_ROW_STATE} WHERE batch_id = %s ORDER BY row_no", (batch_id,))
        if not found and not await self._fetch("SELECT 1 FROM batches WHERE batch_id = %s", (batch_id,)):
            raise KeyError(batch_id)
        return [_state(row) for row in found]

    async def row_state(self, batch_id: str, row: int) -> RowState:
        """Row ``row``'s state. KeyError for an unknown row."""
        found = await self._fetch(f"{_ROW_STATE} WHERE batch_id = %s AND row_no = %s", (batch_id, row))
        if not found:
            raise KeyError((batch_id, row))
        return _state(found[0])

    async def summary(self, batch_id: str) -> BatchSummary:
        """The batch's rows by state, records and credits, counted by the server. KeyError: no such batch."""
        total, pending, running, done, failed, records, credits = (await self._fetch(_SUMMARY, (batch_id,)))[0]
        if not total and not await self._fetch("SELECT 1 FROM batches WHERE batch_id = %s", (batch_id,)):
            raise KeyError(batch_id)
        return BatchSummary(batch_id, total, pending, running, done, failed, int(records), float(credits))

    async def row_started(self, batch_id: str, row: int, run_id: str) -> None:
        async with self.connection() as conn, conn.transaction():  # the earlier run's credits are retired with it
            await conn.execute("UPDATE batches SET credits_retired = credits_retired + coalesce((SELECT credits"
                               " FROM batch_rows WHERE batch_id = %s AND row_no = %s), 0) WHERE batch_id = %s",
                               (batch_id, row, batch_id))
            cursor = await conn.execute("UPDATE batch_rows SET run_id = %s, status = 'running', records = 0,"
                                        " credits = 0, error = NULL, started_wall = %s, finished_wall = NULL"
                                        " WHERE batch_id = %s AND row_no = %s", (run_id, _wall_now(), batch_id, row))
            if cursor.rowcount != 1:
                raise KeyError((batch_id, row))

    async def row_finished(self, batch_id: str, row: int, *, status: RowStatus, records: int, credits: float,
                           error: str | None) -> None:
        await self._update("UPDATE batch_rows SET status = %s, records = %s, credits = %s, error = %s,"
                           " finished_wall = %s WHERE batch_id = %s AND row_no = %s",
                           (status, records, credits, error, _wall_now(), batch_id, row), (batch_id, row))
