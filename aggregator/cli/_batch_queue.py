"""``deepsearch batch`` with a database: rows enqueued for ``deepsearch worker`` processes; ``batch status``.

With ``DEEPSEARCH_DATABASE_URL`` set, ``deepsearch batch FILE`` checks every row as without one, records the
batch in the database (:class:`~aggregator.batch.pgstore.PostgresBatchStore`) and enqueues one job per row
that still has to run (:func:`~aggregator.batch.queue.enqueue`: once, also when the command runs again).
Then, by its flags:

- ``--no-wait``: exits; workers anywhere run the rows, ``deepsearch batch status BATCH_ID`` shows them.
- ``--workers N``: starts N local ``deepsearch worker`` processes (:class:`~aggregator.batch.workers.LocalWorkers`),
  shows the live progress read from the database, puts back in the queue the rows of workers that stopped
  heartbeating (any machine's), and stops its workers once every row finished.
- neither: the same progress, waiting for workers started elsewhere (it says so when none is alive).

``--out`` / ``--records-out``, the summary and the exit codes are those of the in-process batch. Ctrl-C stops
the local workers (their rows go back to the queue, their runs resumable) or, without any, stops watching.

``deepsearch batch status BATCH_ID`` (``status`` as the first argument, when no file is named so) shows a
batch's rows done, failed, running and queued, its records and credits, from the database (any machine)
or, without one, from the journal's file; ``--json`` prints them as one document.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import orjson
from rich.live import Live

from aggregator.batch import BatchProgress, BatchRow, BatchSpec, RowResult, RowState, check_rows, default_batch_store
from aggregator.batch.runner import apply_batch_budget, record_batch
from aggregator.batch.store import BatchStore, BatchSummary, summarize
from aggregator.batch.workers import DEFAULT_QUEUE, LocalWorkers, WorkerExited
from aggregator.cli._batch import (
    MAX_LISTED_FAILURES,
    BatchView,
    _Args,
    _prepare_outputs,
    _rows_to_run,
    _State,
    _write_outputs,
)
from aggregator.cli._options import journal_option
from aggregator.cli._support import announce, err, journal_store, usage_error
from aggregator.config import Settings, load_database_settings
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from aggregator.render import counted

if TYPE_CHECKING:
    import procrastinate

    from aggregator.batch.pgstore import PostgresBatchStore

__all__ = ["BatchStatus", "batch_status_command", "queued_batch"]

POLL_S = 0.5  # real seconds between two reads of the batch's progress


async def queued_batch(settings: Settings, rows: list[BatchRow] | None, args: _Args, state: _State) -> None:
    """Record and enqueue the batch, then (unless ``--no-wait``) watch it to the end with ``--workers``
    local workers; write the outputs. Raises ConfigError (e.g. a database that cannot be used)."""
    state.queued = True
    journal = journal_store(settings.database, args.journal)  # ConfigError naming the extra without the driver
    from aggregator.batch.pgstore import PostgresBatchStore
    from aggregator.batch.queue import build_app, enqueue

    app = build_app(settings.database)
    async with journal, default_batch_store(journal) as store:
        assert isinstance(store, PostgresBatchStore)
        spec = await _record(settings, rows, args, state, journal, store)
        async with app.open_async():
            result = await enqueue(app, store, spec.batch_id, queue=args.queue or DEFAULT_QUEUE,
                                   retry_failed=args.retry_failed)
            err.print(f"batch {spec.batch_id}: {counted(len(spec.rows), 'row')}"
                      + (f" from {state.source}" if state.source else "")
                      + f": {result.enqueued} enqueued, {result.queued} queued already, {result.finished} finished "
                        "earlier", highlight=False, markup=False)
            if args.no_wait:
                state.progress = _progress(await store.summary(spec.batch_id), spec.batch_id, 0.0, None)
                err.print(f"workers with this database run the rows; watch them with: deepsearch batch status "
                          f"{spec.batch_id}", highlight=False, markup=False, soft_wrap=True)
                return
            await _wait(app, store, spec, args, state)
        await _write_outputs(args, state, store, journal)


async def _record(settings: Settings, rows: list[BatchRow] | None, args: _Args, state: _State, journal: Any,
                  store: BatchStore) -> BatchSpec:
    """Check the rows as the Aggregator plans them and record the batch (or find it recorded); its spec."""
    batch_id, rows = await _rows_to_run(store, rows, args, state)
    async with Aggregator(settings, job_store=journal) as agg:
        if args.invalid is not None:
            check_rows(agg, rows, args.invalid.field, args.invalid.problems)
        run = agg.batch(rows, batch_id=batch_id, store=store, source=state.source)  # checks every row
        state.batch_id, state.resumable = run.batch_id, not agg.on_ephemeral_sandbox
        _prepare_outputs(args)
        announce(agg)
        spec = BatchSpec(run.batch_id, run.rows, run.options, state.source, budget=args.budget)
        states = await record_batch(store, spec)
        state.budget = await apply_batch_budget(agg, store, spec.batch_id, args.budget, states)
    return spec


def _worker_args(args: _Args) -> list[str]:
    """The flags of each local worker: this command's concurrency, queue, staleness, config and target."""
    flags = ["--concurrency", str(args.concurrency), "--queue", args.queue or DEFAULT_QUEUE,
             "--stale-after", f"{args.stale_after_s:g}", "--shutdown-timeout", "0"]
    if args.config is not None:
        flags += ["--config", args.config]
    return flags + ([args.target] if args.target else [])


async def _wait(app: procrastinate.App, store: PostgresBatchStore, spec: BatchSpec, args: _Args,
                state: _State) -> None:
    """Start the local workers (if any) and watch the batch until every row finished."""
    view = BatchView(live=args.show_progress and err.is_terminal, show=args.show_progress)
    summary = await store.summary(spec.batch_id)
    workers = LocalWorkers(0 if summary.complete else args.workers or 0, _worker_args(args))
    async with workers:
        if workers.count:
            state.local_workers = workers.count
            err.print(f"started {counted(workers.count, 'local worker')} (pids {', '.join(map(str, workers.pids))})",
                      highlight=False, markup=False)
        with Live(view, console=err, refresh_per_second=4, transient=True) if view.live else contextlib.nullcontext():
            try:
                await _Watch(app, store, spec, args, state, view, workers).run()
            except WorkerExited as exc:
                raise ConfigError("--workers", f"{exc} (the batch stays queued: fix what they said, then "
                                               f"deepsearch batch --resume {spec.batch_id} --workers N)") from None


@dataclass
class _Watch:
    """The waiting loop: progress from the store, each row's line as it finishes, stalled rows retried."""

    app: procrastinate.App
    store: PostgresBatchStore
    spec: BatchSpec
    args: _Args
    state: _State
    view: BatchView
    workers: LocalWorkers

    async def run(self) -> None:
        from aggregator.batch.queue import live_workers, retry_stalled

        started = time.monotonic()
        states = await self.store.row_states(self.spec.batch_id)
        seen = {s.row for s in states if s.finished}
        earlier, next_check, warned = len(seen), 0.0, False
        lines = {row.row: row.line for row in self.spec.rows}
        while True:
            self._finished_rows(states, seen, lines)
            summary = summarize(self.spec.batch_id, states)
            elapsed = time.monotonic() - started
            here = summary.finished - earlier
            eta = elapsed / here * (summary.total - summary.finished) if here else None
            self.state.progress = _progress(summary, self.spec.batch_id, elapsed, eta, earlier)
            self.view.update(self.state.progress)
            if summary.complete:
                return
            if time.monotonic() >= next_check:  # the supervisor's round, and whether anyone works
                next_check = time.monotonic() + self.args.stale_after_s / 2
                await retry_stalled(self.app, self.store, stale_after_s=self.args.stale_after_s)
                self.workers.check()
                if not warned and not self.args.workers and not await live_workers(
                        self.store, stale_after_s=self.args.stale_after_s):
                    warned = True
                    err.print("no worker is running: start `deepsearch worker` with this DEEPSEARCH_DATABASE_URL "
                              "(here or on any machine), or run this command with --workers N", highlight=False,
                              markup=False, soft_wrap=True)
            await asyncio.sleep(POLL_S)
            states = await self.store.row_states(self.spec.batch_id)

    def _finished_rows(self, states: list[RowState], seen: set[int], lines: dict[int, int]) -> None:
        for row in states:
            if not row.finished or row.row in seen:
                continue
            seen.add(row.row)
            result = RowResult(row.row, lines.get(row.row, 0), self.spec.batch_id, row.run_id,
                               "done" if row.status == "done" else "failed", row.records, row.credits, row.error)
            self.view.finished(result)
            if result.status == "failed" and len(self.state.failures) < MAX_LISTED_FAILURES:
                self.state.failures.append(result)


def _progress(summary: BatchSummary, batch_id: str, elapsed_s: float, eta_s: float | None,
              earlier: int = 0) -> BatchProgress:
    return BatchProgress(batch_id, summary.total, summary.done, summary.failed, summary.running, summary.records,
                         summary.credits, earlier, elapsed_s, eta_s)


# -- batch status ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class BatchStatus:
    """What ``batch status`` shows: the batch, where its rows came from, when it was recorded (ISO-8601
    UTC), its rows by state (``queued``: not started yet), records and credits of the finished rows,
    ``complete`` when every row finished, ``workers``: workers alive now (None without a database), and
    ``budget``: the credits the batch may spend in all (None: no batch-wide budget)."""

    batch_id: str
    source: str | None
    created_at: str | None
    total: int
    done: int
    failed: int
    running: int
    queued: int
    records: int
    credits: float
    complete: bool
    workers: int | None
    budget: float | None = None


@click.command("status")
@click.argument("batch_id")
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON document.")
@click.option("--config", type=click.Path(dir_okay=False),
              help="A TOML file whose [database] table names the database.")
@journal_option
def batch_status_command(batch_id: str, as_json: bool, config: str | None, journal: Path | None) -> None:
    """Show a batch's progress: rows done, failed, running and queued, records and credits.

    From the database (DEEPSEARCH_DATABASE_URL), on any machine; without one, from the journal's file.
    BATCH_ID may be a unique prefix (at least 4 characters)."""
    try:
        store = journal_store(load_database_settings(config), journal)
        status = asyncio.run(_status(store, batch_id))
    except ConfigError as exc:
        usage_error(exc)
        raise  # not reached: a usage error exits
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(asdict(status), option=orjson.OPT_INDENT_2) + b"\n")
        return
    _print_status(status)


async def _status(journal: Any, prefix: str) -> BatchStatus:
    async with journal, default_batch_store(journal) as store:
        batch_id = await store.resolve_batch_id(prefix)
        spec = await store.load_batch(batch_id)
        assert spec is not None
        summary = summarize(batch_id, await store.row_states(batch_id))
        workers = None
        if type(store).__module__ == "aggregator.batch.pgstore":  # psycopg loads only with a database
            from aggregator.batch.pgstore import PostgresBatchStore
            from aggregator.batch.queue import live_workers

            assert isinstance(store, PostgresBatchStore)
            workers = await live_workers(store)
    created = spec.created_at.isoformat() if spec.created_at is not None else None
    return BatchStatus(batch_id, spec.source, created, summary.total, summary.done, summary.failed, summary.running,
                       summary.pending, summary.records, summary.credits, summary.complete, workers, spec.budget)


def _print_status(status: BatchStatus) -> None:
    out = click.echo
    source = f" ({status.source})" if status.source else ""
    out(f"batch {status.batch_id}{source}: {counted(status.total, 'row')}, recorded {status.created_at or '?'}")
    out(f"  {status.done} done, {status.failed} failed, {status.running} running, {status.queued} queued")
    budget = f" of a budget of {status.budget:g}" if status.budget is not None else ""
    out(f"  {counted(status.records, 'record')}, {counted(status.credits, 'credit')}{budget}")
    if status.workers is not None:
        out(f"  {counted(status.workers, 'worker')} alive")
    out("  complete" if status.complete else "  in progress")
