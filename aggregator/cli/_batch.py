"""``deepsearch batch``: one search (or lookup) per row of a CSV or JSONL file, N rows at a time, resumable.

The whole file is checked before anything is sent (every bad line and field is listed); each row's run is
journaled, and the batch's progress is kept beside it (:func:`~aggregator.batch.default_batch_store`: tables
in the journal's SQLite file). Running the same command again (same rows, same target), or ``deepsearch
batch --resume BATCH_ID``, continues the batch: finished rows are not run again, rows left running continue
their runs (nothing paid twice; on the in-process sandbox, whose jobs end with the process, they start again).

Exit codes: 0 every row done (a provider answered, also with no record); 1 the batch finished but
``--out`` / ``--records-out`` could not be written (``--resume BATCH_ID --out FILE`` writes them, running
nothing again); 2 usage error or invalid rows (nothing sent or recorded); 3 the batch finished and at least
one row failed (every provider failed or was skipped, or its search raised; the outputs have every row);
130 interrupted (the ``--resume`` command is printed).
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table

from aggregator.batch import (
    DEFAULT_CONCURRENCY,
    BatchProgress,
    BatchRow,
    BatchRun,
    BatchStore,
    BatchValidationError,
    RowResult,
    check_rows,
    default_batch_store,
    validate_file,
    write_records,
    write_results,
)
from aggregator.batch.output import check_suffix
from aggregator.batch.runner import check_budget
from aggregator.batch.workers import DEFAULT_STALE_AFTER_S, STALE_AFTER_ENV
from aggregator.cli._options import journal_option, settings_options, target_options
from aggregator.cli._support import (
    EXIT_ALL_FAILED,
    EXIT_INTERRUPTED,
    EXIT_NOT_WRITTEN,
    EXIT_OK,
    _stop_on_signals,
    announce,
    err,
    prepare_output,
    settings_for,
    usage_error,
)
from aggregator.config import DATABASE_URL_ENV, Settings
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from aggregator.jobstore import JobStore
from aggregator.journal import SqliteJournal, default_journal_path
from aggregator.models import SearchReport
from aggregator.render import counted

__all__ = ["BatchView", "batch_command"]

MAX_LISTED_FAILURES = 20


def _output_file(flag: str) -> Any:
    def check(_ctx: click.Context, _param: click.Parameter, value: Path | None) -> Path | None:
        if value is not None:
            try:
                check_suffix(value, flag)
            except ConfigError as exc:
                raise click.BadParameter(exc.problem) from None
        return value

    return check


@dataclass
class _Args:
    """What the command was asked (the resume command is rebuilt from it)."""

    file: Path | None
    resume_id: str | None
    out: Path | None
    records_out: Path | None
    concurrency: int
    retry_failed: bool
    show_progress: bool
    journal: Path | None
    invalid: BatchValidationError | None = None
    """The file's problems found before the Aggregator could plan its rows."""
    workers: int | None = None
    no_wait: bool = False
    queue: str | None = None
    stale_after_s: float = DEFAULT_STALE_AFTER_S
    config: str | None = None
    target: str | None = None  # "--sandbox" / "--live" when given: passed on to local workers
    budget: float | None = None  # the batch's budget (None: keep the recorded one, if any)


@dataclass
class _State:
    """What is known of the batch so far (for the summary, or the message when interrupted)."""

    batch_id: str | None = None
    source: str | None = None
    progress: BatchProgress | None = None
    resumable: bool = True
    failures: list[RowResult] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    not_written: str | None = None
    queued: bool = False  # the rows are jobs in the database, run by workers
    budget: float | None = None  # the batch's budget in credits, once known
    local_workers: int = 0  # workers this command started


class _Stopped(Exception):
    """Ctrl-C or SIGTERM stopped the batch."""


class BatchView:
    """The live display: a bar, rows done / failed / running of the total, records, credits, elapsed, ETA.
    Off a terminal (with progress on), one line per row as it finishes."""

    def __init__(self, live: bool, show: bool) -> None:
        self.live, self.show = live, show
        self.progress: BatchProgress | None = None

    def update(self, progress: BatchProgress) -> None:
        self.progress = progress

    def finished(self, result: RowResult) -> None:
        if self.live or not self.show or not result.ran:
            return
        where = f"row {result.row}" + (f" (line {result.line})" if result.line else "")
        what = (f"done, {counted(result.records, 'record')}, {counted(result.credits, 'credit')}"
                if result.status == "done" else f"failed: {result.error}")
        err.print(f"{where}: {what}", highlight=False, markup=False, soft_wrap=True)

    def __rich__(self) -> Table:
        table = Table.grid(padding=(0, 2))
        p = self.progress
        if p is None:
            return table
        eta = _duration(p.eta_s) if p.eta_s is not None else "…"
        table.add_row(ProgressBar(total=max(p.total, 1), completed=p.finished, width=40),
                      f"{p.finished}/{p.total} rows", f"ETA {eta}")
        table.add_row(f"[green]{p.done} done[/]  [red]{p.failed} failed[/]  [cyan]{p.running} running[/]",
                      f"{counted(p.records, 'record')}, {counted(p.credits, 'credit')}",
                      f"{_duration(p.elapsed_s)} elapsed")
        return table


def _duration(seconds: float) -> str:
    """``42 s``, ``3 min 5 s``, ``2 h 10 min``."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


class _BatchCommand(click.Command):
    """``deepsearch batch FILE`` that also answers ``deepsearch batch status BATCH_ID``: a first argument
    of literally ``status`` (when no file of that name exists here) runs :func:`batch_status_command`."""

    def make_context(self, info_name: str | None, args: list[str], parent: click.Context | None = None,
                     **extra: Any) -> click.Context:
        if args and args[0] == "status" and not Path("status").exists():
            from aggregator.cli._batch_queue import batch_status_command

            return batch_status_command.make_context(f"{info_name or 'batch'} status", args[1:], parent=parent,
                                                     **extra)
        return super().make_context(info_name, args, parent=parent, **extra)


@click.command("batch", cls=_BatchCommand)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), callback=_output_file("--out"),
              help="Write one line per row: .jsonl (each row's records included) or .csv.")
@click.option("--records-out", type=click.Path(dir_okay=False, path_type=Path),
              callback=_output_file("--records-out"),
              help="Write one line per merged record of every row: .jsonl or .csv.")
@click.option("--concurrency", type=int, default=DEFAULT_CONCURRENCY, show_default=True,
              help="Rows that run at once (with --workers: in each worker).")
@click.option("--resume", "resume_id", metavar="BATCH_ID",
              help="Continue a recorded batch by id (or unique prefix), without its file.")
@click.option("--retry-failed", is_flag=True, help="Run rows that failed in an earlier run of the batch again.")
@click.option("--workers", type=int, default=None, metavar="N",
              help="With a database: start N local `deepsearch worker` processes to run the rows, and wait.")
@click.option("--no-wait", is_flag=True,
              help="With a database: enqueue the rows and exit (workers anywhere run them).")
@click.option("--queue", default=None, metavar="NAME",
              help="With a database: the queue the rows go to (default deepsearch; `worker --queue`).")
@click.option("--budget", type=float, default=None, metavar="CREDITS",
              help="Credits all the rows may spend together, in every worker (never overshot; rows not started "
                   "once it is spent fail with that reason). Given again, it replaces the batch's budget.")
@click.option("--stale-after", "stale_after_s", type=float, default=DEFAULT_STALE_AFTER_S, show_default=True,
              envvar=STALE_AFTER_ENV,
              help="With a database: seconds without a heartbeat after which a worker's rows run elsewhere.")
@target_options
@settings_options
@journal_option
def batch_command(file: Path | None, out: Path | None, records_out: Path | None, concurrency: int,
                  resume_id: str | None, retry_failed: bool, workers: int | None, no_wait: bool, queue: str | None,
                  budget: float | None, stale_after_s: float, sandbox: bool, live: bool, config: str | None,
                  no_progress: bool, verbose: int, journal: Path | None) -> None:
    """Run one search or lookup per row of a CSV or JSONL FILE, N at a time; run it again to continue.

    Each row holds a search's fields (query, mode, max_results, providers, strategy, min_results, budget,
    titles, companies, ...) or a lookup's identity fields (linkedin_url, email, phone_number, ...). The
    whole file is checked before anything is sent. Re-running the same command (or --resume BATCH_ID)
    runs only the rows not finished yet.

    With a database (DEEPSEARCH_DATABASE_URL) the rows are enqueued once, for `deepsearch worker` processes
    on any machine (--workers N starts N here and waits). `deepsearch batch status BATCH_ID` shows a batch's
    progress from any machine."""
    args = _Args(file, resume_id, out, records_out, concurrency, retry_failed, not no_progress, journal,
                 workers=workers, no_wait=no_wait, queue=queue, stale_after_s=stale_after_s, config=config,
                 target="--sandbox" if sandbox else "--live" if live else None, budget=budget)
    try:
        _check_args(args)
        settings = settings_for(config, sandbox, live, verbose)
        _check_target(args, settings, click.get_current_context())
        rows = validate_file(file) if file is not None else None
    except BatchValidationError as invalid:
        if not invalid.rows:
            usage_error(invalid)
        rows, args.invalid = list(invalid.rows), invalid  # its valid rows are planned too, then all is said
    except ConfigError as exc:
        usage_error(exc)
    state = _State(source=str(file) if file is not None else None)
    started = time.perf_counter()
    try:
        if settings.database.url is not None:
            from aggregator.cli._batch_queue import queued_batch

            asyncio.run(_stoppable(queued_batch(settings, rows, args, state)))
        else:
            asyncio.run(_stoppable(_run(settings, rows, args, state)))
    except ConfigError as exc:
        usage_error(exc)
    except (_Stopped, KeyboardInterrupt):
        _interrupted(args, state)
    _summary(args, state, time.perf_counter() - started)
    if state.not_written is not None:
        sys.exit(EXIT_NOT_WRITTEN)
    sys.exit(EXIT_ALL_FAILED if state.progress is not None and state.progress.failed else EXIT_OK)


def _check_args(args: _Args) -> None:
    """The flags that exclude each other or are out of range. Raises ConfigError naming the flag."""
    if args.file is None and args.resume_id is None:
        raise ConfigError("FILE", "give a batch file (.csv or .jsonl), or --resume BATCH_ID")
    if args.file is not None and args.resume_id is not None:
        raise ConfigError("--resume", "continues a recorded batch without its file: give FILE or --resume, "
                                      "not both (running FILE again continues its batch too)")
    if args.concurrency < 1:
        raise ConfigError("--concurrency", f"must be at least 1, got {args.concurrency}")
    if args.out is not None and args.records_out is not None and args.out.resolve() == args.records_out.resolve():
        raise ConfigError("--records-out", "must be another file than --out")
    if args.workers is not None and args.workers < 1:
        raise ConfigError("--workers", f"must be at least 1, got {args.workers}")
    if args.workers is not None and args.no_wait:
        raise ConfigError("--no-wait", "enqueues the rows and exits, --workers starts workers and waits: "
                                       "give one or the other")
    if args.no_wait and (args.out is not None or args.records_out is not None):
        raise ConfigError("--no-wait", "exits before the rows ran, and --out/--records-out are written once they "
                                       "did: write them later with deepsearch batch --resume BATCH_ID --out FILE")
    check_budget(args.budget, "--budget")
    if not args.stale_after_s > 0:
        raise ConfigError("--stale-after", f"must be more than 0 seconds, got {args.stale_after_s:g}")


def _check_target(args: _Args, settings: Settings, ctx: click.Context) -> None:
    """Flags of the database path without a database, and --concurrency with a database but no local
    workers, are usage errors naming why."""
    queue_flags = [flag for flag, given in (("--workers", args.workers is not None), ("--no-wait", args.no_wait),
                                            ("--queue", args.queue is not None)) if given]
    if settings.database.url is None:
        if queue_flags:
            raise ConfigError(queue_flags[0], f"runs the rows on `deepsearch worker` processes, which take them "
                                              f"from a database: set {DATABASE_URL_ENV} (then `deepsearch db "
                                              "migrate`); without one, rows run in this process (--concurrency)")
        return
    if args.workers is None and ctx.get_parameter_source("concurrency") is not ParameterSource.DEFAULT:
        raise ConfigError("--concurrency", "with a database the rows run on `deepsearch worker` processes: give "
                                           "--workers N (each runs --concurrency rows at once), or start "
                                           "`deepsearch worker --concurrency N`")


async def _stoppable(batch: Coroutine[Any, Any, None]) -> None:
    """Run the batch under SIGINT/SIGTERM handlers that cancel it (runs are then marked interrupted)."""
    installed = _stop_on_signals()
    try:
        await batch
    except asyncio.CancelledError:
        raise _Stopped from None
    finally:
        for sig in installed:
            asyncio.get_running_loop().remove_signal_handler(sig)


async def _rows_to_run(store: BatchStore, rows: list[BatchRow] | None, args: _Args,
                       state: _State) -> tuple[str | None, list[BatchRow]]:
    """The batch's id and rows: the file's (the id then comes from their hash), or with ``--resume`` the
    rows recorded for that id (``state.source`` too), read before any sandbox starts."""
    if rows is not None:
        return None, rows
    assert args.resume_id is not None
    batch_id = await store.resolve_batch_id(args.resume_id)
    recorded = await store.load_batch(batch_id)
    assert recorded is not None
    state.source = recorded.source
    return batch_id, list(recorded.rows)


def _prepare_outputs(args: _Args) -> None:
    """Check ``--out``/``--records-out`` (and make their folders) once the rows are known to be valid."""
    for output, flag in ((args.out, "--out"), (args.records_out, "--records-out")):
        if output is not None:
            prepare_output(output, flag)


async def _run(settings: Settings, rows: list[BatchRow] | None, args: _Args, state: _State) -> None:
    path = args.journal or default_journal_path()
    async with SqliteJournal(path) as journal, default_batch_store(journal) as store:  # tables in the journal's file
        batch_id, rows = await _rows_to_run(store, rows, args, state)
        async with Aggregator(settings, job_store=journal) as agg:
            if args.invalid is not None:
                check_rows(agg, rows, args.invalid.field, args.invalid.problems)
            view = BatchView(live=args.show_progress and err.is_terminal, show=args.show_progress)
            run = agg.batch(rows, concurrency=args.concurrency, batch_id=batch_id, store=store, reports=False,
                            retry_failed=args.retry_failed, on_progress=view.update, source=state.source,
                            budget=args.budget)
            state.batch_id, state.resumable = run.batch_id, not agg.on_ephemeral_sandbox
            _prepare_outputs(args)
            announce(agg)
            err.print(f"batch {run.batch_id}: {counted(len(rows), 'row')}"
                      + (f" from {state.source}" if state.source else ""), highlight=False, markup=False)
            await _follow(run, view, state)
        await _write_outputs(args, state, store, journal)


async def _follow(run: BatchRun, view: BatchView, state: _State) -> None:
    """Iterate the batch with the live display; keep the progress and the failed rows for the summary."""
    with Live(view, console=err, refresh_per_second=4, transient=True) if view.live else contextlib.nullcontext():
        try:
            async with run:
                async for result in run:
                    view.finished(result)
                    if result.status == "failed" and len(state.failures) < MAX_LISTED_FAILURES:
                        state.failures.append(result)
        finally:
            state.progress, state.budget = run.progress, run.budget


async def _write_outputs(args: _Args, state: _State, store: BatchStore, journal: JobStore) -> None:
    """Write ``--out`` and ``--records-out`` from the store and the journal (rows of earlier runs too)."""
    if args.out is None and args.records_out is None:
        return
    assert state.batch_id is not None
    spec = await store.load_batch(state.batch_id)
    assert spec is not None
    states = await store.row_states(state.batch_id)

    async def load(run_id: str) -> SearchReport | None:
        recorded = await journal.run(run_id)
        return recorded.report if recorded is not None else None

    await _write(args.out, "--out", "row", lambda p: write_results(p, spec, states, load), state)
    await _write(args.records_out, "--records-out", "record", lambda p: write_records(p, spec, states, load), state)


async def _write(path: Path | None, flag: str, noun: str, write: Any, state: _State) -> None:
    if path is None:
        return
    try:
        count = await write(path)
    except OSError as exc:
        state.not_written = f"{flag}: could not write {path}: {exc.strerror or exc}"
        return
    state.written.append(f"wrote {counted(count, noun)} to {path}")


def _resume_command(args: _Args, state: _State, *extra: str) -> str:
    parts = ["deepsearch", "batch", "--resume", str(state.batch_id)]
    for flag, value in (("--journal", args.journal), ("--out", args.out), ("--records-out", args.records_out),
                        ("--workers", args.workers), ("--queue", args.queue)):
        if value is not None:
            parts += [flag, str(value)]
    return shlex.join([*parts, *extra])


def _summary(args: _Args, state: _State, wall_s: float) -> None:
    """The batch in a few lines on stdout: rows, records, credits, time, failures, files, what next."""
    p = state.progress
    assert p is not None
    console = Console(soft_wrap=True, highlight=False)
    earlier = f" ({p.earlier} finished earlier, not run again)" if p.earlier else ""
    console.print(f"batch {state.batch_id}" + (f" ({escape(state.source)})" if state.source else "")
                  + f": {counted(p.total, 'row')}: {p.done} done, {p.failed} failed{earlier}")
    budget = f" of the batch's budget of {state.budget:g}" if state.budget is not None else ""
    console.print(f"{counted(p.records, 'record')}, {counted(p.credits, 'credit')}{budget}, {wall_s:.1f} s wall time")
    for result in state.failures:
        where = f"row {result.row}" + (f" (line {result.line})" if result.line else "")
        console.print(f"  [red]failed[/] {where}: {escape(result.error or '')}")
    if p.failed > len(state.failures):
        console.print(f"  ... and {p.failed - len(state.failures)} more failed rows (see --out)")
    for line in state.written:
        err.print(escape(line), highlight=False)
    if p.remaining:  # --no-wait: the workers run the rest
        err.print(f"{p.remaining} rows are queued or running on the workers; watch them with: deepsearch batch "
                  f"status {state.batch_id}", highlight=False, markup=False, soft_wrap=True)
        return
    if state.not_written is not None:
        err.print(f"error: {state.not_written}. The batch is in the journal; once fixed, write it with: "
                  f"{_resume_command(args, state)}", highlight=False, markup=False, soft_wrap=True)
    if p.failed:
        err.print(f"run the failed rows again with: {_resume_command(args, state, '--retry-failed')}",
                  highlight=False, markup=False, soft_wrap=True)
    elif args.out is None and args.records_out is None:
        err.print(f"write the rows and their records with: {_resume_command(args, state)} --out results.jsonl",
                  highlight=False, markup=False, soft_wrap=True)


def _interrupted(args: _Args, state: _State) -> None:
    """Say how far the batch got and how to continue it; exit 130."""
    if state.batch_id is None:
        err.print("interrupted before the batch started", highlight=False)
        sys.exit(EXIT_INTERRUPTED)
    p = state.progress
    done = f"{p.finished} of {counted(p.total, 'row')} finished, {p.running} in progress" if p else "no row finished"
    if state.queued:
        where = ("the local workers stopped and put their rows back in the queue, where any `deepsearch worker` "
                 "with this database takes them" if state.local_workers else
                 "the rows stay queued for the workers, which go on")
        err.print(f"interrupted: {done}; {where}. Watch with: deepsearch batch status {state.batch_id}; run them "
                  f"here with: {_resume_command(args, state)}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(EXIT_INTERRUPTED)
    restart = "" if state.resumable else (" (rows in progress ran on the in-process sandbox, whose jobs ended "
                                          "with this process: they start again)")
    err.print(f"interrupted: {done}; everything so far is in the journal{restart}. Continue with: "
              f"{_resume_command(args, state)}", highlight=False, markup=False, soft_wrap=True)
    sys.exit(EXIT_INTERRUPTED)
