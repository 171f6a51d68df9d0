"""Where a batch's rows and their progress are kept: the :class:`BatchStore` protocol and two stores.

A batch store records each batch once (its id, rows and options) and, per row, its state: ``pending``,
``running`` (its search's run id is known: recorded **before** the run's first paid call, so a process
that dies mid-row leaves the id for the next one to resume), ``done`` or ``failed`` (with the row's record
count, credits and error). The searches themselves are in the job store (the journal); a batch store
holds only the link from a row to its run.

- :class:`InMemoryBatchStore`: one process, nothing durable.
- :class:`SqliteBatchStore`: two tables in the journal's SQLite file, through their own connection
  (the journal's :class:`~aggregator.journal.SqliteJournal` is not touched)::

    batches(batch_id TEXT PK, created_wall TEXT, source TEXT NULL, options_json TEXT, total_rows INTEGER,
            budget REAL NULL, credits_retired REAL)   -- the last two added to older files on open
    batch_rows(batch_id, row_no, line, row_json, run_id NULL, status, records, credits, error NULL,
               started_wall NULL, finished_wall NULL, PK(batch_id, row_no))

  Times are ISO-8601 UTC wall-clock times; every write is committed before it returns (WAL,
  ``synchronous=NORMAL`` as the journal: a commit survives a crash of the process).

- :class:`~aggregator.batch.pgstore.PostgresBatchStore`: the same tables in the PostgreSQL database
  (migration 0003), shared by every process and machine that runs the batch's rows.

:func:`run_batch <aggregator.batch.runner.run_batch>` uses nothing but the six methods of the protocol.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self

import aiosqlite
import orjson

from aggregator.batch.rows import BatchRow
from aggregator.errors import ConfigError

__all__ = [
    "MIN_BATCH_ID_PREFIX",
    "BatchSpec",
    "BatchStore",
    "BatchSummary",
    "InMemoryBatchStore",
    "RowState",
    "RowStatus",
    "SqliteBatchStore",
    "default_batch_store",
    "match_batch_id",
    "summarize",
]

RowStatus = Literal["pending", "running", "done", "failed"]
FINISHED: frozenset[str] = frozenset({"done", "failed"})
MIN_BATCH_ID_PREFIX = 4


@dataclass(frozen=True)
class BatchSpec:
    """A batch as recorded: its id, its rows (in order), the options its id was made from
    (``{"target": "sandbox"}``), where its rows came from (a file name, or None), when it was recorded
    (wall clock, UTC; None before it was) and its ``budget``: the credits all its rows may spend together
    (None: no batch-wide budget; not part of the id, so it can be raised to continue the batch)."""

    batch_id: str
    rows: tuple[BatchRow, ...]
    options: Mapping[str, Any]
    source: str | None = None
    created_at: datetime | None = None
    budget: float | None = None


@dataclass(frozen=True)
class RowState:
    """Where one row of a batch is: ``status``, its search's ``run_id`` (None before it started), and once
    finished its merged ``records`` count, ``credits`` and ``error`` (why it failed). Times are wall-clock UTC."""

    row: int
    status: RowStatus = "pending"
    run_id: str | None = None
    records: int = 0
    credits: float = 0.0
    error: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None

    @property
    def finished(self) -> bool:
        return self.status in FINISHED


@dataclass(frozen=True)
class BatchSummary:
    """How far a batch is: its rows by state (``pending`` rows are queued, not started yet), and the
    merged ``records`` and ``credits`` of its finished rows."""

    batch_id: str
    total: int
    pending: int = 0
    running: int = 0
    done: int = 0
    failed: int = 0
    records: int = 0
    credits: float = 0.0

    @property
    def finished(self) -> int:
        """Rows done or failed."""
        return self.done + self.failed

    @property
    def complete(self) -> bool:
        """Every row finished."""
        return self.finished == self.total


def summarize(batch_id: str, states: Iterable[RowState]) -> BatchSummary:
    """The :class:`BatchSummary` of a batch whose rows are in ``states``."""
    counts = {"pending": 0, "running": 0, "done": 0, "failed": 0}
    total, records, credits = 0, 0, 0.0
    for state in states:
        total += 1
        counts[state.status] += 1
        if state.finished:
            records += state.records
            credits += state.credits
    return BatchSummary(batch_id, total, records=records, credits=credits, **counts)


class BatchStore(Protocol):
    """Where batches and their rows' progress are kept (see the module docstring)."""

    async def create_batch(self, spec: BatchSpec) -> bool:
        """Record ``spec`` and its rows as ``pending``, unless a batch with its id exists (then nothing is
        written). Returns True when it was created. Committed before it returns."""
        ...

    async def load_batch(self, batch_id: str) -> BatchSpec | None:
        """The batch ``batch_id`` as recorded (rows in order), or None."""
        ...

    async def resolve_batch_id(self, prefix: str) -> str:
        """The full id of the one batch ``prefix`` names (itself, or a unique prefix of at least
        :data:`MIN_BATCH_ID_PREFIX` characters). Raises ConfigError (field ``batch_id``) otherwise."""
        ...

    async def row_states(self, batch_id: str) -> list[RowState]:
        """Every row's state, by row number. KeyError when there is no such batch."""
        ...

    async def batch_budget(self, batch_id: str) -> float | None:
        """The batch's budget in credits (None: it has none). KeyError when there is no such batch."""
        ...

    async def set_batch_budget(self, batch_id: str, budget: float | None) -> None:
        """Replace the batch's budget (None removes it). Committed before it returns. KeyError: no such batch."""
        ...

    async def retired_credits(self, batch_id: str) -> float:
        """Credits of runs the batch's rows no longer point at (:meth:`row_started` of a row that had a run
        adds that row's credits here). KeyError when there is no such batch."""
        ...

    async def row_started(self, batch_id: str, row: int, run_id: str) -> None:
        """Row ``row`` runs as ``run_id`` (status ``running``; an earlier run's result is cleared, its credits
        added to :meth:`retired_credits`). Committed before it returns: called before the run's first paid
        call. KeyError for an unknown row."""
        ...

    async def row_finished(self, batch_id: str, row: int, *, status: RowStatus, records: int, credits: float,
                           error: str | None) -> None:
        """Row ``row`` finished (``done`` or ``failed``) with ``records`` merged records, ``credits`` spent
        and ``error`` (None when done). Committed before it returns. KeyError for an unknown row."""
        ...


def match_batch_id(prefix: str, batch_ids: Iterable[str]) -> str:
    """The batch id ``prefix`` names among ``batch_ids``: itself, else the only one it begins (at least
    :data:`MIN_BATCH_ID_PREFIX` characters).

    Raises:
        ConfigError: field ``batch_id``: no batch matches, several do, or the prefix is too short.
    """
    ids = sorted(set(batch_ids))
    if prefix in ids:
        return prefix
    matches = [batch_id for batch_id in ids if prefix and batch_id.startswith(prefix)]
    if matches and len(prefix) < MIN_BATCH_ID_PREFIX:
        raise ConfigError("batch_id", f"{prefix!r} is too short: give at least {MIN_BATCH_ID_PREFIX} characters")
    if not matches:
        raise ConfigError("batch_id", f"no batch {prefix!r} in the journal (a batch's id is printed when it "
                                      "starts and in its summary)")
    if len(matches) > 1:
        raise ConfigError("batch_id", f"{prefix!r} starts {len(matches)} batches ({', '.join(matches[:5])}); "
                                      "give more characters")
    return matches[0]


def _wall_now() -> datetime:
    return datetime.now(UTC)


class InMemoryBatchStore:
    """A :class:`BatchStore` in dicts: one process, nothing durable (the default without a journal file)."""

    def __init__(self) -> None:
        self._specs: dict[str, BatchSpec] = {}
        self._rows: dict[str, dict[int, RowState]] = {}
        self._retired: dict[str, float] = {}

    async def create_batch(self, spec: BatchSpec) -> bool:
        if spec.batch_id in self._specs:
            return False
        self._specs[spec.batch_id] = replace(spec, created_at=_wall_now())
        self._rows[spec.batch_id] = {row.row: RowState(row.row) for row in spec.rows}
        return True

    async def load_batch(self, batch_id: str) -> BatchSpec | None:
        return self._specs.get(batch_id)

    async def resolve_batch_id(self, prefix: str) -> str:
        return match_batch_id(prefix, self._specs)

    async def row_states(self, batch_id: str) -> list[RowState]:
        return [self._rows[batch_id][n] for n in sorted(self._rows[batch_id])]

    async def batch_budget(self, batch_id: str) -> float | None:
        return self._specs[batch_id].budget

    async def set_batch_budget(self, batch_id: str, budget: float | None) -> None:
        self._specs[batch_id] = replace(self._specs[batch_id], budget=budget)

    async def retired_credits(self, batch_id: str) -> float:
        self._specs[batch_id]  # KeyError for an unknown batch
        return self._retired.get(batch_id, 0.0)

    async def row_started(self, batch_id: str, row: int, run_id: str) -> None:
        if row not in self._rows[batch_id]:
            raise KeyError((batch_id, row))
        self._retired[batch_id] = self._retired.get(batch_id, 0.0) + self._rows[batch_id][row].credits
        self._rows[batch_id][row] = RowState(row, "running", run_id, started_at=_wall_now())

    async def row_finished(self, batch_id: str, row: int, *, status: RowStatus, records: int, credits: float,
                           error: str | None) -> None:
        state = self._rows[batch_id][row]
        self._rows[batch_id][row] = replace(state, status=status, records=records, credits=credits, error=error,
                                            finished_at=_wall_now())


SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    batch_id     TEXT PRIMARY KEY,
    created_wall TEXT NOT NULL,
    source       TEXT,
    options_json TEXT NOT NULL,
    total_rows   INTEGER NOT NULL,
    budget       REAL,
    credits_retired REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS batch_rows (
    batch_id      TEXT NOT NULL,
    row_no        INTEGER NOT NULL,
    line          INTEGER NOT NULL,
    row_json      TEXT NOT NULL,
    run_id        TEXT,
    status        TEXT NOT NULL DEFAULT 'pending',
    records       INTEGER NOT NULL DEFAULT 0,
    credits       REAL NOT NULL DEFAULT 0,
    error         TEXT,
    started_wall  TEXT,
    finished_wall TEXT,
    PRIMARY KEY (batch_id, row_no)
);
"""

_ROW_STATE = "SELECT row_no, status, run_id, records, credits, error, started_wall, finished_wall FROM batch_rows"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text is not None else None


class SqliteBatchStore:
    """A :class:`BatchStore` in a SQLite file (the journal's, normally), on its own connection.

    Use as ``async with SqliteBatchStore(path) as store`` (or ``await open()`` / ``await close()``).
    See the module docstring for the tables; they are created on open. ``now`` stamps the wall times.
    """

    def __init__(self, path: str | os.PathLike[str], *, now: Callable[[], datetime] = _wall_now) -> None:
        self.path = Path(path)
        self._now = now
        self._db: aiosqlite.Connection | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> Self:
        """Connect (WAL, as the journal) and create the tables. Returns self."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute("PRAGMA synchronous=NORMAL")  # as the journal: a commit survives a process crash
            await db.execute("PRAGMA busy_timeout=10000")
            await db.executescript(SCHEMA)
            columns = {row[1] for row in await db.execute_fetchall("PRAGMA table_info(batches)")}
            if "budget" not in columns:  # a journal file from before batch budgets
                await db.execute("ALTER TABLE batches ADD COLUMN budget REAL")
                await db.execute("ALTER TABLE batches ADD COLUMN credits_retired REAL NOT NULL DEFAULT 0")
        except BaseException:
            await db.close()
            raise
        self._db = db
        return self

    async def close(self) -> None:
        """Close the connection (idempotent)."""
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SqliteBatchStore is not open: use 'async with SqliteBatchStore(path) as store'")
        return self._db

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        async with self._lock:
            return [tuple(row) for row in await self._conn.execute_fetchall(sql, params)]

    async def _update(self, sql: str, params: Sequence[Any], what: tuple[str, int]) -> None:
        async with self._lock:
            cursor = await self._conn.execute(sql, params)
        if cursor.rowcount != 1:
            raise KeyError(what)

    async def create_batch(self, spec: BatchSpec) -> bool:
        rows = [(spec.batch_id, row.row, row.line, orjson.dumps(row.normalized()).decode()) for row in spec.rows]
        async with self._lock:
            db = self._conn
            try:
                await db.execute("BEGIN IMMEDIATE")
                cursor = await db.execute(
                    "INSERT OR IGNORE INTO batches (batch_id, created_wall, source, options_json, total_rows, budget)"
                    " VALUES (?, ?, ?, ?, ?, ?)", (spec.batch_id, _iso(self._now()), spec.source,
                                                   orjson.dumps(dict(spec.options)).decode(), len(rows), spec.budget))
                created = cursor.rowcount == 1
                if created:
                    await db.executemany("INSERT INTO batch_rows (batch_id, row_no, line, row_json)"
                                         " VALUES (?, ?, ?, ?)", rows)
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    await db.execute("ROLLBACK")
                raise
        return created

    async def load_batch(self, batch_id: str) -> BatchSpec | None:
        found = await self._fetch("SELECT created_wall, source, options_json, budget FROM batches WHERE batch_id = ?",
                                  (batch_id,))
        if not found:
            return None
        created, source, options, budget = found[0]
        rows = await self._fetch("SELECT row_no, line, row_json FROM batch_rows WHERE batch_id = ? ORDER BY row_no",
                                 (batch_id,))
        return BatchSpec(batch_id, tuple(BatchRow(row=n, line=line, **orjson.loads(data)) for n, line, data in rows),
                         orjson.loads(options), source, _from_iso(created), budget)

    async def batch_budget(self, batch_id: str) -> float | None:
        found = await self._fetch("SELECT budget FROM batches WHERE batch_id = ?", (batch_id,))
        if not found:
            raise KeyError(batch_id)
        return None if found[0][0] is None else float(found[0][0])

    async def set_batch_budget(self, batch_id: str, budget: float | None) -> None:
        async with self._lock:
            cursor = await self._conn.execute("UPDATE batches SET budget = ? WHERE batch_id = ?", (budget, batch_id))
        if cursor.rowcount != 1:
            raise KeyError(batch_id)

    async def retired_credits(self, batch_id: str) -> float:
        found = await self._fetch("SELECT credits_retired FROM batches WHERE batch_id = ?", (batch_id,))
        if not found:
            raise KeyError(batch_id)
        return float(found[0][0])

    async def resolve_batch_id(self, prefix: str) -> str:
        found = await self._fetch("SELECT batch_id FROM batches WHERE batch_id = ? OR (? <> '' AND"
                                  " substr(batch_id, 1, length(?)) = ?)", (prefix, prefix, prefix, prefix))
        return match_batch_id(prefix, (row[0] for row in found))

    async def row_states(self, batch_id: str) -> list[RowState]:
        found = await self._fetch(f"{_ROW_STATE} WHERE batch_id = ? ORDER BY row_no", (batch_id,))
        if not found and not await self._fetch("SELECT 1 FROM batches WHERE batch_id = ?", (batch_id,)):
            raise KeyError(batch_id)
        return [RowState(row, status, run_id, records, credits, error, _from_iso(started), _from_iso(finished))
                for row, status, run_id, records, credits, error, started, finished in found]

    async def row_started(self, batch_id: str, row: int, run_id: str) -> None:
        async with self._lock:
            db = self._conn
            try:
                await db.execute("BEGIN IMMEDIATE")
                await db.execute("UPDATE batches SET credits_retired = credits_retired + coalesce((SELECT credits"
                                 " FROM batch_rows WHERE batch_id = ? AND row_no = ?), 0) WHERE batch_id = ?",
                                 (batch_id, row, batch_id))
                cursor = await db.execute(
                    "UPDATE batch_rows SET run_id = ?, status = 'running', records = 0, credits = 0, error = NULL,"
                    " started_wall = ?, finished_wall = NULL WHERE batch_id = ? AND row_no = ?",
                    (run_id, _iso(self._now()), batch_id, row))
                if cursor.rowcount != 1:
                    raise KeyError((batch_id, row))
                await db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(Exception):
                    await db.execute("ROLLBACK")
                raise

    async def row_finished(self, batch_id: str, row: int, *, status: RowStatus, records: int, credits: float,
                           error: str | None) -> None:
        await self._update("UPDATE batch_rows SET status = ?, records = ?, credits = ?, error = ?, finished_wall = ?"
                           " WHERE batch_id = ? AND row_no = ?",
                           (status, records, credits, error, _iso(self._now()), batch_id, row), (batch_id, row))


_MEMORY: weakref.WeakKeyDictionary[object, InMemoryBatchStore] = weakref.WeakKeyDictionary()


@contextlib.asynccontextmanager
async def default_batch_store(job_store: object) -> AsyncIterator[BatchStore]:
    """The batch store that goes with ``job_store``: a :class:`SqliteBatchStore` on a
    :class:`~aggregator.journal.SqliteJournal`'s file, a
    :class:`~aggregator.batch.pgstore.PostgresBatchStore` on a
    :class:`~aggregator.db.journal.PostgresJournal`'s database (both opened and closed here), else one
    :class:`InMemoryBatchStore` per job store (so one Aggregator sees its own earlier batches).

    Raises (PostgreSQL, on opening): DatabaseUnavailableError, DatabaseSchemaError."""
    from aggregator.journal import SqliteJournal

    if isinstance(job_store, SqliteJournal):
        async with SqliteBatchStore(job_store.path) as store:
            yield store
        return
    if type(job_store).__module__ == "aggregator.db.journal":  # the driver loads only with a database
        from aggregator.batch.pgstore import PostgresBatchStore
        from aggregator.db.journal import PostgresJournal

        if isinstance(job_store, PostgresJournal):
            async with PostgresBatchStore(job_store.database) as pg_store:
                yield pg_store
            return
    try:
        memory = _MEMORY.setdefault(job_store, InMemoryBatchStore())
    except TypeError:  # a store that cannot be weakly referenced: a store of its own for this batch
        memory = InMemoryBatchStore()
    yield memory
