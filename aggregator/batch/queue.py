"""Batch rows as Procrastinate jobs, run by ``deepsearch worker`` processes on any machine.

With a database (``DEEPSEARCH_DATABASE_URL``), a batch is recorded in the
:class:`~aggregator.batch.pgstore.PostgresBatchStore` and each row that still has to run becomes one
Procrastinate job of task :data:`TASK_NAME` (``{"batch_id": ..., "row": N}``). Any process with the same
database URL and provider keys that runs :func:`run_worker` (``deepsearch worker``) takes row jobs and
runs them through its :class:`~aggregator.Aggregator`, journaling to the shared PostgreSQL journal.

Enqueued once: :func:`enqueue` runs in one transaction under an advisory lock per batch, and defers a job
only for a row that is not finished and has no job waiting (``todo``) or running (``doing``); each job's
``lock`` and ``queueing_lock`` are ``"<batch_id>:<row>"`` (:func:`row_key`), so Procrastinate itself also
refuses a second waiting job of a row and never runs two jobs of one row at once. Running ``deepsearch
batch FILE`` twice enqueues nothing new; a row whose job ended without finishing it (its worker was
stopped and the job aborted) is enqueued again.

Workers die: each worker's heartbeat is written every ``stale_after_s / 3`` seconds; :func:`retry_stalled`
(run every ``stale_after_s / 2`` seconds by every worker, and by ``deepsearch batch --workers`` while it
waits) puts back in the queue the row jobs of workers whose heartbeat is older than ``stale_after_s``
(default :data:`DEFAULT_STALE_AFTER_S` = 30 s; Procrastinate's ``get_stalled_jobs`` and ``retry_job``,
one supervisor at a time under an advisory lock). Another worker takes the job and the row resumes its
run from the journal (:class:`~aggregator.batch.runner.RowRunner`): jobs already submitted are polled,
never started or paid for again, and stored records are kept. A row runs in one process at a time: its
worker holds an advisory lock on the row (on its own connection, released by the server when the
process dies), so even a worker wrongly taken for dead (blocked longer than ``stale_after_s``) never
runs a row beside another.

Procrastinate's schema is migration 0004 (its ``schema.sql`` for the releases whose migrations end at
:data:`PROCRASTINATE_SCHEMA`); :func:`check_procrastinate` refuses a release with a newer schema.
Procrastinate is imported only here, when a database is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aggregator.batch.pgstore import PostgresBatchStore
from aggregator.batch.rows import BatchRow
from aggregator.batch.runner import RowResult, RowRunner, batch_options
from aggregator.batch.store import BatchSpec, RowState
from aggregator.batch.workers import DEFAULT_QUEUE, DEFAULT_STALE_AFTER_S
from aggregator.config import DatabaseSettings, Settings
from aggregator.db.pool import connect, target
from aggregator.errors import ConfigError
from aggregator.log import get_logger

if TYPE_CHECKING:
    import procrastinate
    from procrastinate.job_context import JobContext

    from aggregator.core import Aggregator

__all__ = [
    "DEFAULT_QUEUE",
    "DEFAULT_STALE_AFTER_S",
    "PROCRASTINATE_SCHEMA",
    "TASK_NAME",
    "EnqueueResult",
    "RowWorker",
    "WorkerConfig",
    "build_app",
    "check_procrastinate",
    "enqueue",
    "live_workers",
    "retry_stalled",
    "row_key",
    "run_worker",
]

log = get_logger("aggregator.batch.queue")

TASK_NAME = "deepsearch.run_row"
PROCRASTINATE_SCHEMA = "03.04.00"
"""The last Procrastinate schema migration that migration 0004 includes."""
SUPERVISOR_LOCK = int.from_bytes(b"dsstalld", "big") >> 1
"""The advisory lock (a bigint) held while retrying stalled jobs: one supervisor at a time."""
RowCallback = Callable[[RowResult], None]


def row_key(batch_id: str, row: int) -> str:
    """The job ``lock`` and ``queueing_lock`` of one row: ``"<batch_id>:<row>"``."""
    return f"{batch_id}:{row}"


def check_procrastinate() -> None:
    """Make sure procrastinate is installed and its schema is the one migration 0004 holds.

    Raises:
        ConfigError: field ``database.url``: not installed (names the extra), or its schema is newer than
            :data:`PROCRASTINATE_SCHEMA` (names the versions).
    """
    try:
        from procrastinate import schema
    except ImportError as exc:
        raise ConfigError("database.url", "batches on a database need procrastinate: pip install "
                                          "'deepsearch-aggregator[postgres]'") from exc
    from pathlib import Path

    shipped = [p.name[:8] for p in Path(schema.migrations_path).glob("*.sql")]
    newest = max(shipped, default=PROCRASTINATE_SCHEMA)
    if newest > PROCRASTINATE_SCHEMA:
        raise ConfigError("database.url", f"the installed procrastinate has schema {newest}, newer than the "
                                          f"{PROCRASTINATE_SCHEMA} this deepsearch migrates: install the "
                                          "procrastinate version pinned by deepsearch-aggregator[postgres]")


def build_app(database: DatabaseSettings, *, max_connections: int = 4) -> procrastinate.App:
    """The Procrastinate app of ``database`` with the row task registered (not opened: ``async with
    app.open_async()``); its pool holds at most ``max_connections`` connections.

    Raises:
        ConfigError: no URL, or procrastinate is missing or too new (:func:`check_procrastinate`).
    """
    check_procrastinate()
    import procrastinate

    url, settings = target(database)
    connector = procrastinate.PsycopgConnector(
        conninfo=url, min_size=1, max_size=max(2, max_connections), timeout=settings.connect_timeout_s,
        kwargs={"connect_timeout": max(2, round(settings.connect_timeout_s))}, name="deepsearch-queue")
    app = procrastinate.App(connector=connector)
    app.task(name=TASK_NAME, pass_context=True, retry=_row_retry())(_run_row)
    return app


def _row_retry() -> Any:
    """The row task's retry strategy: a row cancelled by its worker's shutdown goes back to the queue at
    once; one whose store write failed (the database went away) is tried again in 10 s, 3 times."""
    from procrastinate import BaseRetryStrategy, RetryDecision
    from procrastinate.jobs import Job

    class RowRetry(BaseRetryStrategy):
        def get_retry_decision(self, *, exception: BaseException, job: Job) -> RetryDecision | None:
            if isinstance(exception, asyncio.CancelledError):
                return RetryDecision()
            return RetryDecision(retry_in={"seconds": 10}) if job.attempts < 3 else None

    return RowRetry()


async def _run_row(context: JobContext, batch_id: str, row: int) -> str:
    """The row task: run row ``row`` of batch ``batch_id`` on the worker's :class:`RowWorker`."""
    rows: RowWorker = context.additional_context["rows"]
    return await rows.run(batch_id, row)


@dataclass(frozen=True)
class EnqueueResult:
    """What :func:`enqueue` did: rows ``enqueued`` now, rows whose job was ``queued`` already (waiting or
    running), rows ``finished`` earlier (not enqueued)."""

    enqueued: int
    queued: int
    finished: int


_LIVE_JOBS = ("SELECT queueing_lock, lock FROM procrastinate_jobs WHERE task_name = %s"
              " AND ((status = 'todo' AND queueing_lock = ANY(%s)) OR (status = 'doing' AND lock = ANY(%s)))")
_RESET_FAILED = ("UPDATE batch_rows SET status = 'pending', records = 0, credits = 0, error = NULL,"
                 " finished_wall = NULL WHERE batch_id = %s AND status = 'failed'")


async def enqueue(app: procrastinate.App, store: PostgresBatchStore, batch_id: str, *, queue: str = DEFAULT_QUEUE,
                  retry_failed: bool = False) -> EnqueueResult:
    """Defer one job per row of batch ``batch_id`` (recorded in ``store``) that is not finished and has no
    job waiting or running, in one transaction under the batch's advisory lock (see the module docstring).
    ``retry_failed``: rows that failed are set ``pending`` first, and run again (new runs).

    Raises:
        DatabaseUnavailableError: the server went away (nothing was enqueued).
    """
    from procrastinate.jobs import Job

    async with store.connection() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"deepsearch-enqueue:{batch_id}",))
        if retry_failed:
            await conn.execute(_RESET_FAILED, (batch_id,))
        cursor = await conn.execute("SELECT row_no, status FROM batch_rows WHERE batch_id = %s ORDER BY row_no",
                                    (batch_id,))
        rows = [(int(n), str(status)) for n, status in await cursor.fetchall()]
        keys = [row_key(batch_id, n) for n, status in rows if status not in ("done", "failed")]
        cursor = await conn.execute(_LIVE_JOBS, (TASK_NAME, keys, keys))
        live = {key for pair in await cursor.fetchall() for key in pair if key}
        todo = [key for key in keys if key not in live]
        jobs = [Job(queue=queue, lock=key, queueing_lock=key, task_name=TASK_NAME,
                    task_kwargs={"batch_id": batch_id, "row": int(key.rpartition(":")[2])}) for key in todo]
        if jobs:
            await app.job_manager.batch_defer_jobs_async(jobs, connection=conn)
    log.info("batch.enqueued", batch_id=batch_id, enqueued=len(jobs), queued=len(keys) - len(todo))
    return EnqueueResult(len(jobs), len(keys) - len(todo), len(rows) - len(keys))


async def retry_stalled(app: procrastinate.App, store: PostgresBatchStore, *, stale_after_s: float) -> list[int]:
    """Put back in the queue the row jobs whose worker's heartbeat is older than ``stale_after_s`` real
    seconds (or whose worker is gone); returns their job ids. One supervisor at a time (an advisory lock
    :data:`SUPERVISOR_LOCK`), so a job is never retried twice for one death.

    Raises:
        DatabaseUnavailableError: the server went away.
    """
    from procrastinate import exceptions

    retried = []
    async with store.connection() as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (SUPERVISOR_LOCK,))
        await conn.commit()
        try:
            for job in await app.job_manager.get_stalled_jobs(task_name=TASK_NAME,
                                                              seconds_since_heartbeat=stale_after_s):
                try:
                    await app.job_manager.retry_job(job)
                except exceptions.ConnectorException:  # it ended meanwhile (its worker was alive after all)
                    continue
                assert job.id is not None
                retried.append(job.id)
                log.warning("batch.stalled_job_retried", job_id=job.id, row=job.lock, worker_id=job.worker_id)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (SUPERVISOR_LOCK,))
            await conn.commit()
    return retried


async def live_workers(store: PostgresBatchStore, *, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> int:
    """How many workers (of any machine) sent a heartbeat in the last ``stale_after_s`` real seconds.

    Raises:
        DatabaseUnavailableError: the server went away.
    """
    async with store.connection() as conn:
        cursor = await conn.execute("SELECT count(*) FROM procrastinate_workers"
                                    " WHERE last_heartbeat > now() - make_interval(secs => %s)", (stale_after_s,))
        found = await cursor.fetchone()
    return int(found[0]) if found else 0


class RowWorker:
    """Runs row jobs in one worker process: each through ``agg`` (its journal is the shared PostgreSQL
    journal), recorded in ``store``; ``on_row`` is called with each row's result.

    A row already finished is not run again; a row of a batch recorded on another target (``sandbox`` /
    ``live``) than this worker's fails with that reason (``--retry-failed`` runs it again on a fitting worker).
    """

    def __init__(self, agg: Aggregator, store: PostgresBatchStore, *, on_row: RowCallback | None = None) -> None:
        self.agg, self.store, self.on_row = agg, store, on_row
        self.can_resume = not agg.on_ephemeral_sandbox  # an in-process sandbox's jobs end with its process
        self._specs: dict[str, tuple[BatchSpec, dict[int, BatchRow]]] = {}

    async def run(self, batch_id: str, row: int) -> str:
        """Run (or continue, or skip when finished) row ``row`` of ``batch_id``; what happened, for the
        job's result. Raises what the store raises (the job is then retried)."""
        async with self._row_lock(batch_id, row):
            found = await self._spec(batch_id)
            if found is None:
                return f"no batch {batch_id} in the database"
            spec, rows = found
            state = await self.store.row_state(batch_id, row)
            if state.finished:
                return f"row {row} was {state.status} already"
            result = await self._run(spec, rows[row], state)
        if self.on_row is not None:
            self.on_row(result)
        return f"row {row}: {result.status}, {result.records} records, run {result.run_id}"

    async def _run(self, spec: BatchSpec, row: BatchRow, state: RowState) -> RowResult:
        here = batch_options(self.agg)
        if dict(spec.options) != here:
            error = (f"batch {spec.batch_id} was enqueued for {dict(spec.options)}, this worker runs with {here}: "
                     "run it on a worker with the same provider keys (then --retry-failed)")
            await self.store.row_finished(spec.batch_id, row.row, status="failed", records=0, credits=0.0,
                                          error=error)
            return RowResult(row.row, row.line, spec.batch_id, state.run_id, "failed", 0, 0.0, error)
        budget = await self.store.batch_budget(spec.batch_id)  # read per row: running the batch again may raise it
        return await RowRunner(self.agg, self.store, spec.batch_id, can_resume=self.can_resume,
                               budget=budget).run(row, state)

    async def _spec(self, batch_id: str) -> tuple[BatchSpec, dict[int, BatchRow]] | None:
        if batch_id not in self._specs:
            spec = await self.store.load_batch(batch_id)
            if spec is None:
                return None
            self._specs[batch_id] = (spec, {row.row: row for row in spec.rows})
        return self._specs[batch_id]

    @contextlib.asynccontextmanager
    async def _row_lock(self, batch_id: str, row: int) -> AsyncIterator[None]:
        """Hold the row's advisory lock (waiting for another process that holds it) on a connection of
        its own: the server releases it when this process dies."""
        async with connect(self.store.database) as conn:
            key = f"deepsearch-row:{row_key(batch_id, row)}"
            await conn.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
            yield


@dataclass(frozen=True)
class WorkerConfig:
    """How a worker runs: ``concurrency`` rows at once; the ``queues`` it takes jobs from; heartbeats every
    ``stale_after_s / 3`` real seconds, and the jobs of workers silent for ``stale_after_s`` retried; on a
    stop (SIGTERM, Ctrl-C), rows in progress get ``shutdown_timeout_s`` real seconds to finish, then are
    cancelled (their runs are marked interrupted, their jobs go back to the queue); ``name`` in logs;
    ``poll_interval_s``: the longest wait for a job put back in the queue (new jobs are notified at once)."""

    concurrency: int = 4
    queues: tuple[str, ...] = (DEFAULT_QUEUE,)
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    shutdown_timeout_s: float = 30.0
    name: str | None = None
    poll_interval_s: float = 1.0

    def check(self) -> None:
        """Raises ConfigError naming the field out of range."""
        if self.concurrency < 1:
            raise ConfigError("--concurrency", f"must be at least 1, got {self.concurrency}")
        if not self.stale_after_s > 0:
            raise ConfigError("--stale-after", f"must be more than 0 seconds, got {self.stale_after_s:g}")
        if self.shutdown_timeout_s < 0:
            raise ConfigError("--shutdown-timeout", f"must be 0 seconds or more, got {self.shutdown_timeout_s:g}")
        if not self.queues or not all(self.queues):
            raise ConfigError("--queue", "give a queue name")

    def worker_name(self) -> str:
        """``name``, else ``<host>-<pid>``."""
        import os

        return self.name or f"{socket.gethostname()}-{os.getpid()}"


async def supervise(app: procrastinate.App, store: PostgresBatchStore, *, stale_after_s: float) -> None:
    """Every ``stale_after_s / 2`` real seconds, :func:`retry_stalled`; runs until cancelled (a failure
    is logged, and tried again next time)."""
    while True:
        await asyncio.sleep(stale_after_s / 2)
        try:
            await retry_stalled(app, store, stale_after_s=stale_after_s)
        except Exception as exc:  # the database went away for a moment: the next round tries again
            log.warning("batch.supervisor_failed", error=repr(exc))


async def run_worker(settings: Settings, config: WorkerConfig, *, on_row: RowCallback | None = None,
                     on_ready: Callable[[Aggregator], None] | None = None) -> None:
    """Run a worker until SIGTERM or SIGINT (graceful: see :class:`WorkerConfig`): row jobs of
    ``config.queues``, ``config.concurrency`` at a time, through one :class:`~aggregator.Aggregator` on
    ``settings`` (the database's journal); :func:`supervise` beside it. ``on_ready`` is called once the
    worker is connected, ``on_row`` with each row's result.

    Raises:
        ConfigError: no database URL, procrastinate missing or too new, or ``config`` out of range.
        DatabaseUnavailableError, DatabaseSchemaError: the database cannot be used (before any row ran).
    """
    from aggregator.core import Aggregator

    config.check()
    app = build_app(settings.database, max_connections=config.concurrency + 2)
    async with Aggregator(settings) as agg, PostgresBatchStore(settings.database) as store, app.open_async():
        if on_ready is not None:
            on_ready(agg)
        supervisor = asyncio.create_task(supervise(app, store, stale_after_s=config.stale_after_s))
        try:
            await app.run_worker_async(
                queues=list(config.queues), concurrency=config.concurrency, name=config.worker_name(),
                additional_context={"rows": RowWorker(agg, store, on_row=on_row)},
                update_heartbeat_interval=config.stale_after_s / 3, stalled_worker_timeout=config.stale_after_s,
                shutdown_graceful_timeout=config.shutdown_timeout_s,
                fetch_job_polling_interval=config.poll_interval_s,
                abort_job_polling_interval=max(config.poll_interval_s, 5.0), install_signal_handlers=True)
        finally:
            supervisor.cancel()
            await asyncio.gather(supervisor, return_exceptions=True)
