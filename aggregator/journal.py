"""The SQLite journal: a durable :class:`~aggregator.jobstore.JobStore` plus the run history.

One file (WAL mode, ``synchronous=NORMAL`` by default) holds every run, its provider jobs, the hits
each provider returned (in order), the per-provider outcomes and the final report, so a crashed run
can be resumed without paying twice for a job and finished runs can be listed and shown again.

Schema (created on open; times are ISO-8601 UTC strings, ``*_json`` columns are JSON text)::

    runs(run_id TEXT PK, created_at TEXT, status TEXT, request_json TEXT, report_json TEXT NULL,
         created_wall TEXT NULL, finished_wall TEXT NULL, wall_s REAL NULL, cache_key TEXT NULL)
    jobs(run_id, provider, idempotency_key, state, request_json, job_json NULL, checkpoint_json NULL,
         history_json, PK(run_id, provider))
    hits(run_id, provider, seq, hit_json, PK(run_id, provider, seq))   -- seq: 0, 1, 2... per job
    outcomes(id INTEGER PK AUTOINCREMENT, run_id, provider, outcome_json)

``runs.created_at`` is the time given to ``record_run``: the run's clock, which on the sandbox is
virtual (it runs many times faster than real time, so it drifts into the future). ``created_wall``
and ``finished_wall`` are the real times the journal recorded and finished the run, and ``wall_s``
the real seconds it took (see :func:`~aggregator.jobstore.run_wall_s`); people read these. Journals
written before those three columns existed get them (NULL for old runs) when first opened.
``cache_key`` is the result-cache key (:mod:`aggregator.cache`) of the one run that answers it (a
finished, cacheable run; storing a key clears it from older runs); added on open like the others.

``jobs.request_json`` is the request given to ``record_submit_intent`` (it may differ per provider
from the run's request), so :meth:`SqliteJournal.get` returns the same :class:`JobRecord` as
:class:`~aggregator.jobstore.InMemoryJobStore`. ``job_json`` is the :class:`JobRef` fields
(provider, job_id, idempotency_key, mode, submitted_at ISO, extra); checkpoints and ``extra`` must be
JSON-serializable (tuples come back as lists).

Durability and batching rules:

- ``record_run``, ``record_submit_intent``, ``record_submitted``, ``record_state``,
  ``record_outcome`` and ``finish_run`` are committed before they return. The submit intent is
  written *before* a paid submit: after a crash, a key without a job means "outcome unknown".
  "Committed" survives a crash of the process; with ``synchronous=NORMAL`` in WAL mode a power loss
  may roll back the last few commits (pass ``synchronous="FULL"`` to rule that out, at a cost).
- ``record_hits`` and ``record_checkpoint`` are buffered in memory and written with ``executemany``
  in one transaction at most every ``flush_interval_s`` (wall time), or at once when any committed
  write above happens, on :meth:`SqliteJournal.flush`, on any read and on close. When more than
  ``max_buffered_hits`` are buffered, ``record_checkpoint`` waits for a write (backpressure: a
  CPU-busy event loop would otherwise starve the writer thread, and memory stays bounded).
- The scheduler records a page's hits **then** its checkpoint. A timed flush writes, per job, the
  buffered hits and checkpoints only up to that job's last buffered checkpoint, in one transaction:
  a persisted checkpoint always comes with every hit recorded before it, and hits recorded after the
  last checkpoint wait for theirs (so a resume from the persisted checkpoint does not store a page
  twice). An explicit flush (any committed write, ``flush()``, reads, close) writes everything.
- Reads (``get``, ``hits``, ``runs``, ``run``) flush first, so a journal reads its own writes.

One connection, serialized by an :class:`asyncio.Lock`; one journal per file should write at a time
(other processes may read it at any time).

The buffering, the durability rules above and every read live in :class:`BufferedJournal`, which the
PostgreSQL journal (:class:`aggregator.db.journal.PostgresJournal`, for many processes on one database)
shares; a backend gives its statements (:class:`JournalSql`) and its transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Protocol, Self, cast

import aiosqlite

from aggregator.contract import JobRef
from aggregator.jobstore import (
    JobRecord,
    JobStoreState,
    RunIdError,
    RunState,
    RunSummary,
    match_run_id,
    merged_so_far,
    run_wall_s,
    short_run_ids,
)
from aggregator.models import Hit, ProviderOutcome, SearchReport, SearchRequest

__all__ = ["BufferedJournal", "JournalSql", "RunIdError", "RunState", "RunSummary", "SqliteJournal",
           "default_journal_path"]

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id       TEXT PRIMARY KEY,
    created_at   TEXT NOT NULL,
    status       TEXT NOT NULL,
    request_json TEXT NOT NULL,
    report_json  TEXT,
    created_wall TEXT,
    finished_wall TEXT,
    wall_s       REAL,
    cache_key    TEXT
);
CREATE INDEX IF NOT EXISTS runs_created_at ON runs (created_at);
CREATE TABLE IF NOT EXISTS jobs (
    run_id          TEXT NOT NULL,
    provider        TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    state           TEXT NOT NULL,
    request_json    TEXT NOT NULL,
    job_json        TEXT,
    checkpoint_json TEXT,
    history_json    TEXT NOT NULL,
    PRIMARY KEY (run_id, provider)
);
CREATE TABLE IF NOT EXISTS hits (
    run_id   TEXT NOT NULL,
    provider TEXT NOT NULL,
    seq      INTEGER NOT NULL,
    hit_json TEXT NOT NULL,
    PRIMARY KEY (run_id, provider, seq)
);
CREATE TABLE IF NOT EXISTS outcomes (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id       TEXT NOT NULL,
    provider     TEXT NOT NULL,
    outcome_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outcomes_run ON outcomes (run_id);
"""

RUN_COLUMNS_ADDED = {"created_wall": "TEXT", "finished_wall": "TEXT", "wall_s": "REAL", "cache_key": "TEXT"}
"""Columns of ``runs`` newer than the first schema: added to an older journal when it is opened."""

Key = tuple[str, str]
Row = tuple[Any, ...]
Statement = tuple[str, Sequence[Any]]
Guard = tuple[str, Sequence[Any], Callable[[Row | None], Sequence[Statement]]]
"""A read at the start of a write transaction (SQL, parameters) and what to write given its row."""


@dataclass(frozen=True)
class JournalSql:
    """The statements of a :class:`BufferedJournal`, in its backend's dialect. Parameters come in the
    order given (JSON as text, times as the backend's :meth:`BufferedJournal._time` gives them); rows
    are read back in the order given, JSON as text."""

    insert_hit: str
    """(run_id, provider, seq, hit JSON)."""
    update_checkpoint: str
    """(checkpoint JSON, run_id, provider); appends ``"checkpoint"`` to the history."""
    update_state: str
    """(state, state, run_id, provider); appends the state to the history."""
    update_submitted: str
    """(job JSON, run_id, provider); state ``submitted``, appended to the history."""
    insert_run: str
    """(run_id, created_at, status, request JSON, created_wall); an existing run is left as it is."""
    upsert_job: str
    """(run_id, provider, key, request JSON, history JSON): state ``submitting``, no job or checkpoint."""
    insert_outcome: str
    """(run_id, provider, outcome JSON)."""
    run_to_finish: str
    """(run_id,) -> (status, created_wall), read in the transaction that finishes the run."""
    finish_run: str
    """(status, report JSON, finished_wall, has report, wall_s, run_id)."""
    job_exists: str
    """(run_id, provider) -> a row when the job was recorded."""
    next_seq: str
    """(run_id, provider) -> (the next hit seq,)."""
    job: str
    """(run_id, provider) -> the job's columns (see :func:`record_from_row`)."""
    hits: str
    """(run_id, provider) -> (hit JSON,) in recorded order."""
    hits_of_run: str
    """(run_id,) -> (hit JSON,) by provider, in recorded order."""
    run_ids: str
    """(prefix, prefix, prefix, prefix) -> (run_id,) of the run named ``prefix`` or starting with it."""
    run: str
    """(run_id,) -> (status, request JSON, report JSON, created_wall, finished_wall, wall_s)."""
    run_jobs: str
    """(run_id,) -> the run's jobs' columns, by provider."""
    run_hits: str
    """(run_id,) -> (provider, hit JSON) by provider, in recorded order."""
    run_outcomes: str
    """(run_id,) -> (outcome JSON,) in recorded order."""
    runs: str
    """(limit,) -> (run_id, created_at, created_wall, finished_wall, wall_s, status, request JSON, has report,
    report sandbox, report elapsed_s, report record count, hit count, providers JSON array, previous run id,
    next run id), newest first."""
    clear_cache_key: str
    """(key,): no run holds ``key`` any more."""
    set_cache_key: str
    """(key, run_id): the run holds ``key``."""
    cached_run: str
    """(key, finished_wall lower bound) -> (run_id,) of the ``done`` run with a report holding ``key`` that
    finished at or after the bound, newest first."""


class Transaction(Protocol):
    """The statements one transaction of a backend runs (rows are tuples)."""

    async def execute(self, sql: str, params: Sequence[Any]) -> None: ...

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None: ...

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]: ...


def default_journal_path(env: Mapping[str, str] | None = None) -> Path:
    """Where the journal lives: ``$DEEPSEARCH_JOURNAL``, else ``$XDG_DATA_HOME/deepsearch/journal.sqlite``,
    else ``~/.local/share/deepsearch/journal.sqlite``. Parent directories are created."""
    env = os.environ if env is None else env
    if env.get("DEEPSEARCH_JOURNAL"):
        path = Path(env["DEEPSEARCH_JOURNAL"]).expanduser()
    else:
        data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        path = Path(data_home).expanduser() / "deepsearch" / "journal.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _iso(moment: datetime) -> str:
    """UTC ISO text with microseconds, so that text order is time order (naive = UTC)."""
    return _utc(moment).isoformat(timespec="microseconds")


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC (naive = UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _as_datetime(value: str | datetime | None) -> datetime | None:
    """A stored time (ISO text, or a backend's own timestamp, shown in UTC) as a datetime; None stays None."""
    if value is None or isinstance(value, str):
        return datetime.fromisoformat(value) if value is not None else None
    return _utc(value)


def _wall_now() -> datetime:
    return datetime.now(UTC)


def _job_to_json(job: JobRef) -> str:
    return json.dumps({"provider": job.provider, "job_id": job.job_id, "idempotency_key": job.idempotency_key,
                       "mode": job.mode, "submitted_at": job.submitted_at.isoformat(), "extra": dict(job.extra)})


def _job_from_json(text: str) -> JobRef:
    data = json.loads(text)
    return JobRef(provider=data["provider"], job_id=data["job_id"], idempotency_key=data["idempotency_key"],
                  mode=data["mode"], submitted_at=datetime.fromisoformat(data["submitted_at"]),
                  extra=data["extra"])


def record_from_row(row: Iterable[Any]) -> JobRecord:
    """A :class:`JobRecord` from a row of (run_id, provider, idempotency_key, state, request JSON, job JSON,
    checkpoint JSON, history JSON)."""
    run_id, provider, key, state, request_json, job_json, checkpoint_json, history_json = tuple(row)
    return JobRecord(
        run_id=run_id, provider=provider, idempotency_key=key,
        request=SearchRequest.model_validate_json(request_json), state=cast(JobStoreState, state),
        job=_job_from_json(job_json) if job_json is not None else None,
        checkpoint=json.loads(checkpoint_json) if checkpoint_json is not None else None,
        history=tuple(json.loads(history_json)))


class BufferedJournal(ABC):
    """A durable :class:`~aggregator.jobstore.JobStore` and run history in a SQL database, with the
    durability and batching rules of the module docstring; the backend gives its statements
    (:attr:`sql`, a :class:`JournalSql`) and its transactions (:meth:`_begin`, :meth:`_read`).

    :class:`SqliteJournal` is the embedded one; :class:`aggregator.db.journal.PostgresJournal` the
    shared one. Every method is serialized by one :class:`asyncio.Lock` per journal object.
    """

    sql: JournalSql

    def __init__(self, *, flush_interval_s: float = 0.2, max_buffered_hits: int = 5000,
                 now: Callable[[], datetime] = _wall_now) -> None:
        self._now = now
        self.flush_interval_s = flush_interval_s
        self.max_buffered_hits = max_buffered_hits
        self._lock = asyncio.Lock()
        # Per job, in recording order: ("hits", rows) or ("checkpoint", checkpoint_json).
        self._pending: dict[Key, list[tuple[str, Any]]] = {}
        self._buffered_hits = 0
        self._next_seq: dict[Key, int] = {}
        self._known_jobs: set[Key] = set()
        self._timer: asyncio.Task[None] | None = None
        self._closing = False

    # -- the backend ------------------------------------------------------------------------------
    @abstractmethod
    async def _connect(self) -> None:
        """Connect (and prepare the schema, or check it)."""

    @abstractmethod
    async def _disconnect(self) -> None:
        """Release the connection(s)."""

    @property
    @abstractmethod
    def is_open(self) -> bool:
        """Whether the journal is connected."""

    @abstractmethod
    def _begin(self) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """One write transaction: committed when the block ends, rolled back when it raises."""

    @abstractmethod
    def _read(self, *, snapshot: bool) -> contextlib.AbstractAsyncContextManager[Transaction]:
        """Reads; with ``snapshot`` every read of the block sees one consistent state."""

    def _time(self, moment: datetime) -> Any:
        """A time as this backend stores it (default: UTC ISO text, whose order is time order)."""
        return _iso(moment)

    @property
    @abstractmethod
    def location(self) -> str:
        """Where the journal is, for people (a path, or a database URL without its password)."""

    # -- lifecycle ------------------------------------------------------------------------------
    async def open(self) -> Self:
        """Connect and prepare the schema. Returns self."""
        await self._connect()
        self._closing = False
        return self

    async def close(self) -> None:
        """Flush what is buffered, stop the flush timer and close the connection (idempotent)."""
        if not self.is_open:
            return
        try:
            await self.flush()
        finally:
            self._closing = True
            if self._timer is not None:
                self._timer.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._timer
                self._timer = None
            await self._disconnect()

    async def __aenter__(self) -> Self:
        return await self.open()

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    # -- writing ----------------------------------------------------------------------------------
    def _pending_statements(self, *, complete: bool) -> tuple[list[Sequence[Any]], list[Sequence[Any]], dict[Key, int]]:
        """Hit rows and checkpoint rows to write, and per job how many buffered events they cover.

        ``complete=False`` (timed flush) stops each job at its last buffered checkpoint."""
        hit_rows: list[Sequence[Any]] = []
        checkpoint_rows: list[Sequence[Any]] = []
        taken: dict[Key, int] = {}
        for key, events in self._pending.items():
            count = len(events)
            if not complete:
                count = max((i + 1 for i, (kind, _) in enumerate(events) if kind == "checkpoint"), default=0)
            for kind, payload in events[:count]:
                if kind == "hits":
                    hit_rows.extend(payload)
                else:
                    checkpoint_rows.append((payload, *key))
            if count:
                taken[key] = count
        return hit_rows, checkpoint_rows, taken

    async def _transaction(self, statements: Iterable[Statement] = (), *, complete: bool = True,
                           guard: Guard | None = None) -> None:
        """One transaction: ``guard``'s read (and the statements it gives), the buffered hits and
        checkpoints, then ``statements``. Caller holds the lock."""
        statements = list(statements)
        hit_rows, checkpoint_rows, taken = self._pending_statements(complete=complete)
        if not (hit_rows or checkpoint_rows or statements or guard):
            return
        async with self._begin() as tx:
            if guard is not None:
                sql, params, build = guard
                rows = await tx.fetchall(sql, params)
                statements.extend(build(rows[0] if rows else None))
            if hit_rows:
                await tx.executemany(self.sql.insert_hit, hit_rows)
            if checkpoint_rows:
                await tx.executemany(self.sql.update_checkpoint, checkpoint_rows)
            for sql, params in statements:
                await tx.execute(sql, params)
        self._buffered_hits -= len(hit_rows)
        for key, count in taken.items():  # only once committed: a failed flush keeps its buffer
            rest = self._pending[key][count:]
            if rest:
                self._pending[key] = rest
            else:
                del self._pending[key]

    async def _commit(self, *statements: Statement) -> None:
        async with self._lock:
            await self._transaction(statements)

    async def _flush_later(self) -> None:
        """The timed flush; hits after a job's last checkpoint wait for it (its call schedules a flush)."""
        failed = False
        try:
            await asyncio.sleep(self.flush_interval_s)
            async with self._lock:
                if not self._closing and self.is_open:
                    await self._transaction(complete=False)
        except Exception:  # the buffer is kept: retried by the next timer or explicit flush
            failed = True
            log.exception("journal.flush_failed")
        finally:
            self._timer = None
        if failed:
            self._schedule_flush()

    def _schedule_flush(self) -> None:
        if self._timer is None and not self._closing:
            self._timer = asyncio.get_running_loop().create_task(self._flush_later())

    async def _fetch(self, sql: str, params: Sequence[Any]) -> list[Row]:
        """Read without flushing (caller does not hold the lock)."""
        async with self._lock, self._read(snapshot=False) as tx:
            return await tx.fetchall(sql, params)

    async def _require_job(self, run_id: str, provider: str) -> None:
        """Raise KeyError when no submit intent was recorded for this job (as InMemoryJobStore does)."""
        key = (run_id, provider)
        if key in self._known_jobs:
            return
        if not await self._fetch(self.sql.job_exists, key):
            raise KeyError(key)
        self._known_jobs.add(key)

    async def flush(self) -> None:
        """Write every buffered hit and checkpoint now, in one transaction."""
        async with self._lock:
            await self._transaction()

    async def record_run(self, run_id: str, request: SearchRequest, created_at: datetime) -> None:
        """Start a run (status ``running``); committed. Recording an existing ``run_id`` again is a no-op.

        ``created_at`` is the time on the run's clock; the journal also stamps the real time."""
        await self._commit((self.sql.insert_run, (run_id, self._time(created_at), "running",
                                                  request.model_dump_json(), self._time(self._now()))))

    async def record_submit_intent(
        self, run_id: str, provider: str, idempotency_key: str, request: SearchRequest
    ) -> None:
        """Persist the key before the submit call is made; committed before it returns.

        Replaces any earlier record of this job (state ``submitting``, history ``("submitting",)``)."""
        await self._commit((self.sql.upsert_job, (run_id, provider, idempotency_key, request.model_dump_json(),
                                                  json.dumps(["submitting"]))))
        self._known_jobs.add((run_id, provider))

    async def record_submitted(self, run_id: str, provider: str, job: JobRef) -> None:
        """Record the provider's job; committed before it returns. KeyError without a submit intent."""
        await self._require_job(run_id, provider)
        await self._commit((self.sql.update_submitted, (_job_to_json(job), run_id, provider)))

    async def record_checkpoint(self, run_id: str, provider: str, checkpoint: Mapping[str, Any]) -> None:
        """Buffer a checkpoint (JSON-serializable). It is committed in one transaction with every hit
        recorded before it (the scheduler calls :meth:`record_hits` then this). KeyError without a job."""
        await self._require_job(run_id, provider)
        self._pending.setdefault((run_id, provider), []).append(("checkpoint", json.dumps(dict(checkpoint))))
        if self._buffered_hits >= self.max_buffered_hits:
            await self._backpressure()
        self._schedule_flush()

    async def _backpressure(self) -> None:
        """Too many hits buffered: wait for a (timed-flush style) write, so a busy event loop cannot
        starve the writer and memory stays bounded."""
        async with self._lock:
            await self._transaction(complete=False)

    async def record_state(self, run_id: str, provider: str, state: JobStoreState) -> None:
        """Record a job state (``ready``, ``done``, ``failed``...); flushes the buffer, committed."""
        await self._require_job(run_id, provider)
        await self._commit((self.sql.update_state, (state, state, run_id, provider)))

    async def record_hits(self, run_id: str, provider: str, hits: Sequence[Hit]) -> None:
        """Append hits to this job's list, keeping order (buffered; see :meth:`record_checkpoint`)."""
        if not hits:
            return
        key = (run_id, provider)
        if key not in self._next_seq:
            rows = await self._fetch(self.sql.next_seq, key)
            self._next_seq.setdefault(key, int(rows[0][0]) if rows else 0)
        start = self._next_seq[key]
        rows = [(run_id, provider, start + i, hit.model_dump_json()) for i, hit in enumerate(hits)]
        self._next_seq[key] = start + len(rows)
        self._pending.setdefault(key, []).append(("hits", rows))
        self._buffered_hits += len(rows)
        self._schedule_flush()

    async def record_outcome(self, run_id: str, outcome: ProviderOutcome) -> None:
        """Append one provider's outcome to the run; committed."""
        await self._commit((self.sql.insert_outcome, (run_id, outcome.provider, outcome.model_dump_json())))

    async def finish_run(self, run_id: str, status: str, report: SearchReport | None) -> None:
        """Set the run's final status (e.g. ``done``, ``failed``, ``cancelled``) and report; flushes,
        committed. Stamps the real time and, with a report, the real seconds the run took
        (:func:`~aggregator.jobstore.run_wall_s`). KeyError when the run was never recorded."""
        def finish(row: Row | None) -> list[Statement]:
            if row is None:
                raise KeyError(run_id)
            finished = self._now()
            wall_s = run_wall_s(report, uninterrupted=row[0] == "running", created=_as_datetime(row[1]),
                                finished=finished)
            return [(self.sql.finish_run, (status, report.model_dump_json() if report else None,
                                           self._time(finished), report is not None, wall_s, run_id))]

        async with self._lock:
            await self._transaction(guard=(self.sql.run_to_finish, (run_id,), finish))

    # -- reading (each read flushes first) ---------------------------------------------------------
    async def _fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]:
        async with self._lock:
            await self._transaction()
            async with self._read(snapshot=False) as tx:
                return await tx.fetchall(sql, params)

    async def get(self, run_id: str, provider: str) -> JobRecord | None:
        """The job's :class:`JobRecord` (request, state, job, checkpoint, history), or None."""
        rows = await self._fetchall(self.sql.job, (run_id, provider))
        return record_from_row(rows[0]) if rows else None

    async def hits(self, run_id: str, provider: str) -> list[Hit]:
        """The job's hits in recorded order (``[]`` when none)."""
        rows = await self._fetchall(self.sql.hits, (run_id, provider))
        return [Hit.model_validate_json(row[0]) for row in rows]

    async def runs(self, limit: int = 50) -> list[RunSummary]:
        """The latest ``limit`` runs, newest first (by real creation time, then insertion).

        ``records`` counts merged records: the report's, or for a run without one (running or
        interrupted) its hits so far, merged (``records_final=False``). ``short_id`` is each id's
        shortest unique prefix among every run of the journal (see :meth:`resolve_run_id`)."""
        rows = await self._fetchall(self.sql.runs, (limit,))
        neighbours = {row[0]: [other for other in row[-2:] if other is not None] for row in rows}
        shorts = short_run_ids(neighbours, neighbours.__getitem__)
        summaries = []
        for (run_id, created_at, created_wall, finished_wall, wall_s, status, request_json, has_report, sandbox,
             elapsed_s, records, hits, providers, _, _) in rows:
            request = SearchRequest.model_validate_json(request_json)
            if not has_report:
                records = merged_so_far(await self.hits_of_run(run_id), request) if hits else 0
            created = _as_datetime(created_wall or created_at)
            assert created is not None
            summaries.append(RunSummary(
                run_id=run_id, created_at=created, status=status,
                query=request.query, mode=request.mode, providers=json.loads(providers), records=int(records),
                records_final=bool(has_report), hits=int(hits), finished_at=_as_datetime(finished_wall),
                wall_s=wall_s, virtual_s=elapsed_s if sandbox else None,
                sandbox=bool(sandbox) if has_report else None,
                created_on="wall clock" if created_wall else "run clock", short_id=shorts[run_id]))
        return summaries

    async def record_cache_key(self, run_id: str, key: str) -> None:
        """Make run ``run_id`` the result-cache entry of ``key`` (:mod:`aggregator.cache`), clearing it from
        every other run, in one committed transaction. KeyError when the run was never recorded."""
        def store(row: Row | None) -> list[Statement]:
            if row is None:
                raise KeyError(run_id)
            return [(self.sql.clear_cache_key, (key,)), (self.sql.set_cache_key, (key, run_id))]

        async with self._lock:
            await self._transaction(guard=(self.sql.run_to_finish, (run_id,), store))

    async def cached_run(self, key: str, max_age_s: float, now: datetime | None = None) -> RunState | None:
        """The ``done`` run with a report that holds ``key`` and finished (wall clock) at most ``max_age_s``
        real seconds before ``now`` (default: the journal's clock), or None."""
        since = (now or self._now()) - timedelta(seconds=max_age_s)
        rows = await self._fetchall(self.sql.cached_run, (key, self._time(since)))
        return await self.run(rows[0][0]) if rows else None

    async def hits_of_run(self, run_id: str) -> list[Hit]:
        """Every provider's hits of one run (by provider, in recorded order)."""
        rows = await self._fetchall(self.sql.hits_of_run, (run_id,))
        return [Hit.model_validate_json(row[0]) for row in rows]

    async def resolve_run_id(self, prefix: str) -> str:
        """The full id of the run ``prefix`` names: itself when a run has that id, else the only run
        whose id starts with it (at least :data:`~aggregator.jobstore.MIN_RUN_ID_PREFIX` characters,
        as git accepts a unique commit prefix).

        Raises:
            RunIdError: no run matches, or several do (``candidates``), or the prefix is too short.
        """
        rows = await self._fetchall(self.sql.run_ids, (prefix, prefix, prefix, prefix))
        return match_run_id(prefix, (row[0] for row in rows))

    async def run(self, run_id: str) -> RunState | None:
        """Everything about one run, or None when it was never recorded with :meth:`record_run`."""
        async with self._lock:
            await self._transaction()
            async with self._read(snapshot=True) as tx:  # one snapshot: the four reads agree
                run_rows = await tx.fetchall(self.sql.run, (run_id,))
                job_rows = await tx.fetchall(self.sql.run_jobs, (run_id,))
                hit_rows = await tx.fetchall(self.sql.run_hits, (run_id,))
                outcome_rows = await tx.fetchall(self.sql.run_outcomes, (run_id,))
        if not run_rows:
            return None
        status, request_json, report_json, created_wall, finished_wall, wall_s = run_rows[0]
        hits: dict[str, list[Hit]] = {}
        for provider, hit_json in hit_rows:
            hits.setdefault(provider, []).append(Hit.model_validate_json(hit_json))
        return RunState(
            run_id=run_id, status=status, request=SearchRequest.model_validate_json(request_json),
            jobs={record.provider: record for record in map(record_from_row, job_rows)}, hits=hits,
            outcomes=[ProviderOutcome.model_validate_json(row[0]) for row in outcome_rows],
            report=SearchReport.model_validate_json(report_json) if report_json is not None else None,
            created_at=_as_datetime(created_wall), finished_at=_as_datetime(finished_wall), wall_s=wall_s)


_JOB_COLUMNS = "run_id, provider, idempotency_key, state, request_json, job_json, checkpoint_json, history_json"

SQLITE_SQL = JournalSql(
    insert_hit="INSERT INTO hits (run_id, provider, seq, hit_json) VALUES (?, ?, ?, ?)",
    update_checkpoint=(
        "UPDATE jobs SET checkpoint_json = ?, history_json = json_insert(history_json, '$[#]', 'checkpoint') "
        "WHERE run_id = ? AND provider = ?"),
    update_state=(
        "UPDATE jobs SET state = ?, history_json = json_insert(history_json, '$[#]', ?) "
        "WHERE run_id = ? AND provider = ?"),
    update_submitted=(
        "UPDATE jobs SET state = 'submitted', job_json = ?, "
        "history_json = json_insert(history_json, '$[#]', 'submitted') WHERE run_id = ? AND provider = ?"),
    insert_run=("INSERT OR IGNORE INTO runs (run_id, created_at, status, request_json, created_wall)"
                " VALUES (?, ?, ?, ?, ?)"),
    upsert_job=f"INSERT OR REPLACE INTO jobs ({_JOB_COLUMNS}) VALUES (?, ?, ?, 'submitting', ?, NULL, NULL, ?)",
    insert_outcome="INSERT INTO outcomes (run_id, provider, outcome_json) VALUES (?, ?, ?)",
    run_to_finish="SELECT status, created_wall FROM runs WHERE run_id = ?",
    finish_run=("UPDATE runs SET status = ?, report_json = ?, finished_wall = ?,"
                " wall_s = CASE WHEN ? THEN ? ELSE wall_s END WHERE run_id = ?"),
    job_exists="SELECT 1 FROM jobs WHERE run_id = ? AND provider = ?",
    next_seq="SELECT COALESCE(MAX(seq) + 1, 0) FROM hits WHERE run_id = ? AND provider = ?",
    job=f"SELECT {_JOB_COLUMNS} FROM jobs WHERE run_id = ? AND provider = ?",
    hits="SELECT hit_json FROM hits WHERE run_id = ? AND provider = ? ORDER BY seq",
    hits_of_run="SELECT hit_json FROM hits WHERE run_id = ? ORDER BY provider, seq",
    run_ids=("SELECT run_id FROM runs WHERE run_id = ? OR (? <> '' AND substr(run_id, 1, length(?)) = ?)"
             " ORDER BY run_id"),
    run="SELECT status, request_json, report_json, created_wall, finished_wall, wall_s FROM runs WHERE run_id = ?",
    run_jobs=f"SELECT {_JOB_COLUMNS} FROM jobs WHERE run_id = ? ORDER BY provider",
    run_hits="SELECT provider, hit_json FROM hits WHERE run_id = ? ORDER BY provider, seq",
    run_outcomes="SELECT outcome_json FROM outcomes WHERE run_id = ? ORDER BY id",
    runs=(
        "SELECT r.run_id, r.created_at, r.created_wall, r.finished_wall, r.wall_s, r.status, r.request_json,"
        " r.report_json IS NOT NULL, json_extract(r.report_json, '$.sandbox'),"
        " json_extract(r.report_json, '$.elapsed_s'), json_array_length(r.report_json, '$.records'),"
        " (SELECT COUNT(*) FROM hits h WHERE h.run_id = r.run_id),"
        " (SELECT json_group_array(provider) FROM (SELECT provider FROM jobs j WHERE j.run_id = r.run_id"
        "   ORDER BY provider)),"
        " (SELECT MAX(o.run_id) FROM runs o WHERE o.run_id < r.run_id),"
        " (SELECT MIN(o.run_id) FROM runs o WHERE o.run_id > r.run_id)"
        " FROM runs r ORDER BY COALESCE(r.created_wall, r.created_at) DESC, r.rowid DESC LIMIT ?"),
    clear_cache_key="UPDATE runs SET cache_key = NULL WHERE cache_key = ?",
    set_cache_key="UPDATE runs SET cache_key = ? WHERE run_id = ?",
    cached_run=("SELECT run_id FROM runs WHERE cache_key = ? AND status = 'done' AND report_json IS NOT NULL"
                " AND finished_wall >= ? ORDER BY finished_wall DESC LIMIT 1"),
)
"""The statements of :class:`SqliteJournal` (the schema is :data:`SCHEMA`)."""


class _SqliteTransaction:
    """:class:`Transaction` over one aiosqlite connection."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db

    async def execute(self, sql: str, params: Sequence[Any]) -> None:
        await self._db.execute(sql, params)

    async def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        await self._db.executemany(sql, rows)

    async def fetchall(self, sql: str, params: Sequence[Any]) -> list[Row]:
        return [tuple(row) for row in await self._db.execute_fetchall(sql, params)]


class SqliteJournal(BufferedJournal):
    """A durable :class:`~aggregator.jobstore.JobStore` and run history in one SQLite file.

    Use as ``async with SqliteJournal(path) as journal: ...`` (or ``await open()`` / ``await close()``).
    ``flush_interval_s`` bounds how long buffered hits and checkpoints wait (wall time). ``now`` is
    the wall clock that stamps runs (default the system's UTC time; never the sandbox's clock).
    See the module docstring for the schema and the durability rules.
    """

    sql = SQLITE_SQL

    def __init__(self, path: str | os.PathLike[str], *, flush_interval_s: float = 0.2,
                 max_buffered_hits: int = 5000, synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
                 now: Callable[[], datetime] = _wall_now) -> None:
        super().__init__(flush_interval_s=flush_interval_s, max_buffered_hits=max_buffered_hits, now=now)
        self.path = Path(path)
        self.synchronous = synchronous
        self._db: aiosqlite.Connection | None = None

    @property
    def location(self) -> str:
        return str(self.path)

    @property
    def is_open(self) -> bool:
        return self._db is not None

    async def _connect(self) -> None:
        """Connect, switch to WAL and create the schema."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = await aiosqlite.connect(self.path, isolation_level=None)
        try:
            await db.execute("PRAGMA journal_mode=WAL")
            await db.execute(f"PRAGMA synchronous={self.synchronous}")
            await db.execute("PRAGMA busy_timeout=5000")
            await db.executescript(SCHEMA)
            await self._migrate(db)
            await db.execute("CREATE INDEX IF NOT EXISTS runs_cache_key ON runs (cache_key)")
        except BaseException:
            await db.close()
            raise
        self._db = db

    async def _disconnect(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            await db.close()

    @staticmethod
    async def _migrate(db: aiosqlite.Connection) -> None:
        """Add the columns of :data:`RUN_COLUMNS_ADDED` a journal written by an older version lacks
        (in one write transaction, so two processes opening it at once do not both add them)."""
        async def missing() -> list[str]:
            rows = await db.execute_fetchall("PRAGMA table_info(runs)")
            present = {row[1] for row in rows}
            return [name for name in RUN_COLUMNS_ADDED if name not in present]

        if not await missing():
            return
        await db.execute("BEGIN IMMEDIATE")
        try:
            for name in await missing():
                await db.execute(f"ALTER TABLE runs ADD COLUMN {name} {RUN_COLUMNS_ADDED[name]}")
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            raise

    @property
    def _conn(self) -> aiosqlite.Connection:
        if self._db is None:
            raise RuntimeError("SqliteJournal is not open: use 'async with SqliteJournal(path) as journal'")
        return self._db

    @contextlib.asynccontextmanager
    async def _begin(self) -> AsyncIterator[Transaction]:
        db = self._conn
        try:
            # inside the try: a task cancelled while awaiting BEGIN (SQLite's thread runs it anyway)
            # must roll it back, or every later write fails "cannot start a transaction within a transaction"
            await db.execute("BEGIN IMMEDIATE")
            yield _SqliteTransaction(db)
            await db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(Exception):
                await db.execute("ROLLBACK")
            raise

    @contextlib.asynccontextmanager
    async def _read(self, *, snapshot: bool) -> AsyncIterator[Transaction]:
        db = self._conn
        if not snapshot:
            yield _SqliteTransaction(db)
            return
        await db.execute("BEGIN")
        try:
            yield _SqliteTransaction(db)
        finally:
            await db.execute("COMMIT")

    async def journal_mode(self) -> str:
        """The connection's journal mode (``wal`` once open)."""
        async with self._lock, self._conn.execute("PRAGMA journal_mode") as cursor:
            row = await cursor.fetchone()
        return str(row[0]) if row is not None else ""
