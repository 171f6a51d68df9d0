"""Running a batch: every row's search, at most N at a time, resumable row by row.

:func:`run_batch` (what :meth:`aggregator.Aggregator.batch` calls) checks every row as the Aggregator would
plan it (nothing is recorded or sent when one is invalid), and returns a :class:`BatchRun`: an async
iterator of one :class:`RowResult` per row, in the order rows finish.

- Rows a previous process finished are not run again: their results come first (``ran=False``).
- A row's run id is recorded in the :class:`~aggregator.batch.store.BatchStore` as soon as its run is
  journaled and **before** its first paid call; a row left ``running`` (a crash, Ctrl-C) is continued with
  its run (:meth:`aggregator.Aggregator.resume`: jobs already submitted are polled, never started again),
  or started again where that cannot work (its run is unknown to the job store, or the Aggregator runs on
  an in-process sandbox it started, whose jobs ended with the process that started them).
- A row whose providers all failed, or whose search raised, is recorded ``failed`` and the batch goes on.
- Closing the iterator or cancelling the task (Ctrl-C) cancels the rows in progress: their runs are
  marked ``interrupted`` in the journal and their rows stay ``running``, to be continued next time.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Self

from aggregator.batch.rows import BatchProblem, BatchRow, BatchValidationError, batch_id_of, rows_from
from aggregator.batch.store import BatchSpec, BatchStore, RowState, default_batch_store
from aggregator.errors import ConfigError
from aggregator.events import Event, ReportEvent, RunStartedEvent
from aggregator.log import get_logger
from aggregator.models import SearchReport, SearchRequest

if TYPE_CHECKING:
    from aggregator.core import Aggregator

__all__ = ["DEFAULT_CONCURRENCY", "BatchProgress", "BatchRun", "RowResult", "RowRunner", "batch_options",
           "check_rows", "record_batch", "run_batch"]

log = get_logger("aggregator.batch")

DEFAULT_CONCURRENCY = 4
FINISHED_RUNS = ("done", "failed")  # journal statuses of a run that has its report
ProgressCallback = Callable[["BatchProgress"], None]


@dataclass(frozen=True)
class RowResult:
    """How one row of a batch ended.

    Attributes:
        row: the row's number (1-based); ``line`` its file line (0 when not from a file).
        batch_id: the batch's id.
        run_id: the row's search in the journal (None when it failed before its run started).
        status: ``done`` (a provider answered, also with no record) or ``failed`` (every provider failed
            or was skipped, or the search raised: ``error`` says why).
        records: merged records; ``credits``: credits the row's run spent (all its processes).
        ran: False when an earlier process finished the row (it was not run again).
        resumed: True when the row continued its interrupted run.
        report: the run's report (None when it has none, or for rows finished earlier with ``reports=False``).
    """

    row: int
    line: int
    batch_id: str
    run_id: str | None
    status: Literal["done", "failed"]
    records: int
    credits: float
    error: str | None = None
    ran: bool = True
    resumed: bool = False
    report: SearchReport | None = field(default=None, repr=False)

    def summary(self) -> dict[str, Any]:
        """The row's output line: ``{row, batch_id, run_id, status, records, credits, error}``."""
        return {"row": self.row, "batch_id": self.batch_id, "run_id": self.run_id, "status": self.status,
                "records": self.records, "credits": self.credits, "error": self.error}


@dataclass(frozen=True)
class BatchProgress:
    """A batch's progress: rows ``done`` / ``failed`` (including ``earlier``: rows a previous process
    finished) / ``running`` out of ``total``; merged ``records`` and ``credits`` of the finished rows;
    ``elapsed_s`` wall seconds since this process started the batch; ``eta_s`` the wall seconds the rest
    should take at this process's pace so far (None before a row finished here)."""

    batch_id: str
    total: int
    done: int = 0
    failed: int = 0
    running: int = 0
    records: int = 0
    credits: float = 0.0
    earlier: int = 0
    elapsed_s: float = 0.0
    eta_s: float | None = None

    @property
    def finished(self) -> int:
        return self.done + self.failed

    @property
    def remaining(self) -> int:
        return self.total - self.finished


@dataclass
class _Tally:
    """The batch's counts as a :class:`BatchProgress` (elapsed time and ETA filled in by :meth:`snapshot`),
    plus the rows finished by this process and when it started: what the ETA is computed from."""

    progress: BatchProgress
    finished_here: int = 0
    started: float = field(default_factory=time.monotonic)

    def running(self, delta: int) -> None:
        self.progress = replace(self.progress, running=self.progress.running + delta)

    def add(self, result: RowResult) -> None:
        p, done = self.progress, result.status == "done"
        self.progress = replace(p, done=p.done + done, failed=p.failed + (not done), records=p.records + result.records,
                                credits=p.credits + result.credits, earlier=p.earlier + (not result.ran))
        self.finished_here += result.ran

    def snapshot(self) -> BatchProgress:
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.finished_here * self.progress.remaining if self.finished_here else None
        return replace(self.progress, elapsed_s=elapsed, eta_s=eta)


@dataclass
class _Attempt:
    """The run of one row, as far as it got (for the row's result when it fails)."""

    run_id: str | None = None
    resumed: bool = False


def batch_options(agg: Aggregator) -> dict[str, Any]:
    """What, besides its rows, makes a batch another batch: where it runs (``{"target": "sandbox"}`` or
    ``"live"``): a file run on the sandbox is not done on the real APIs."""
    return {"target": "sandbox" if agg.on_sandbox else "live"}


def check_rows(agg: Aggregator, rows: Sequence[BatchRow], source: str = "rows",
               known: Sequence[BatchProblem] = ()) -> None:
    """Plan every row as :meth:`~aggregator.Aggregator.start` would (providers, options, strategy
    settings); nothing is sent or recorded. ``known``: problems found before (e.g. rows of the same file
    that did not parse), listed with these.

    Raises:
        BatchValidationError: every row that cannot run, with its line (or row) and field.
    """
    problems = list(known)
    for row in rows:
        try:
            agg.start(**row.fields)
        except ConfigError as exc:
            problems.append(BatchProblem(row.where(), exc.field, exc.problem))
    if problems:
        raise BatchValidationError(source, problems)


def run_batch(agg: Aggregator, rows: Iterable[BatchRow | SearchRequest | Mapping[str, Any]],
              store: BatchStore | None = None, *, concurrency: int = DEFAULT_CONCURRENCY,
              on_progress: ProgressCallback | None = None, batch_id: str | None = None, retry_failed: bool = False,
              reports: bool = True, can_resume: bool = True, source: str | None = None) -> BatchRun:
    """Check ``rows`` and return the batch's :class:`BatchRun` (iterate it to run the rows).

    Args:
        agg: an open Aggregator; its job store journals each row's run.
        rows: :class:`BatchRow` (e.g. from :func:`~aggregator.batch.rows.validate_file`), requests, or
            mappings of a row's fields.
        store: where the batch's progress is kept; default :func:`~aggregator.batch.store.default_batch_store`.
        concurrency: at most this many rows run at once (>= 1).
        on_progress: called with a :class:`BatchProgress` whenever a row starts or finishes.
        batch_id: the batch's id; default a hash of the rows and :func:`batch_options` (the same rows on
            the same target are the same batch, so running them again continues it).
        retry_failed: run rows that failed in an earlier process again (new runs).
        reports: load the reports of rows finished earlier from the job store (False: ``report`` is None).
        can_resume: False when runs left by another process cannot be continued here (rows in progress
            then start again).
        source: the rows' origin (a file name), for messages and the store.

    Raises:
        ConfigError: ``concurrency`` below 1.
        BatchValidationError: rows that are invalid or cannot run, each with its line and field.
    """
    if concurrency < 1:
        raise ConfigError("concurrency", f"must be at least 1, got {concurrency}")
    checked = rows_from(rows, source or "rows")
    check_rows(agg, checked, source or "rows")
    options = batch_options(agg)
    return BatchRun(agg, checked, store, batch_id=batch_id or batch_id_of(checked, options), options=options,
                    concurrency=concurrency, on_progress=on_progress, retry_failed=retry_failed, reports=reports,
                    can_resume=can_resume, source=source)


class BatchRun:
    """A batch being run: an async iterator of :class:`RowResult`, one per row, as rows finish.

    ``batch_id`` is known before the first row runs; ``progress`` is the latest :class:`BatchProgress`.
    Use ``async with agg.batch(rows) as run: async for result in run: ...`` so that leaving the loop early
    cancels the rows in progress at once (they stay resumable). Iterate it once.

    The first iteration raises ConfigError (field ``batch_id``) when ``batch_id`` names a batch the store
    recorded with other rows or on another target.
    """

    def __init__(self, agg: Aggregator, rows: Sequence[BatchRow], store: BatchStore | None, *, batch_id: str,
                 options: Mapping[str, Any], concurrency: int, on_progress: ProgressCallback | None,
                 retry_failed: bool, reports: bool, can_resume: bool, source: str | None) -> None:
        self.agg, self.rows, self.store = agg, tuple(rows), store
        self.batch_id, self.options, self.source = batch_id, dict(options), source
        self.concurrency, self.retry_failed, self.reports, self.can_resume = (concurrency, retry_failed, reports,
                                                                             can_resume)
        self._on_progress = on_progress
        self._tally = _Tally(BatchProgress(batch_id, len(self.rows)))
        self.progress = self._tally.snapshot()
        self._results = self._run()

    # -- iteration --------------------------------------------------------------------------------
    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RowResult:
        return await self._results.__anext__()

    async def aclose(self) -> None:
        """Stop: cancel the rows in progress (their runs are marked interrupted, rows stay resumable)."""
        await self._results.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    def _notify(self) -> None:
        self.progress = self._tally.snapshot()
        if self._on_progress is not None:
            self._on_progress(self.progress)

    # -- the batch --------------------------------------------------------------------------------
    async def _run(self) -> AsyncGenerator[RowResult, None]:
        opened = default_batch_store(self.agg.job_store) if self.store is None else contextlib.nullcontext(self.store)
        self._tally.started = time.monotonic()  # elapsed and ETA count from here
        async with opened as store:
            states = await self._states(store)
            todo = []
            for row in self.rows:
                state = states[row.row]
                if state.finished and not (self.retry_failed and state.status == "failed"):
                    result = await self._earlier(row, state)
                    self._tally.add(result)
                    yield result
                else:
                    todo.append(row)
            self._notify()
            async with contextlib.aclosing(self._run_rows(store, todo, states)) as results:  # closing us stops it
                async for result in results:
                    yield result

    async def _states(self, store: BatchStore) -> dict[int, RowState]:
        """Record the batch (or check it is the one recorded under its id); every row's state."""
        spec = BatchSpec(self.batch_id, self.rows, self.options, self.source)
        return {state.row: state for state in await record_batch(store, spec)}

    async def _earlier(self, row: BatchRow, state: RowState) -> RowResult:
        """The result of a row a previous process finished (its report from the job store)."""
        report = None
        if self.reports and state.run_id is not None:
            recorded = await self.agg.job_store.run(state.run_id)
            report = recorded.report if recorded is not None else None
        return RowResult(row.row, row.line, self.batch_id, state.run_id, "done" if state.status == "done" else "failed",
                         state.records, state.credits, state.error, ran=False, report=report)

    async def _run_rows(self, store: BatchStore, todo: list[BatchRow],
                        states: Mapping[int, RowState]) -> AsyncGenerator[RowResult, None]:
        """Run ``todo`` on at most ``concurrency`` workers; yield results as rows finish."""
        waiting = collections.deque(todo)
        finished: asyncio.Queue[RowResult | BaseException] = asyncio.Queue()

        async def worker() -> None:
            while waiting:
                row = waiting.popleft()
                finished.put_nowait(await self._run_row(store, row, states[row.row]))

        def died(task: asyncio.Task[None]) -> None:  # a store write failed, or the process "crashed"
            if not task.cancelled() and task.exception() is not None:
                finished.put_nowait(task.exception())  # type: ignore[arg-type]

        workers = [asyncio.create_task(worker(), name=f"batch-{self.batch_id}-worker-{i}")
                   for i in range(min(self.concurrency, len(todo)))]
        for task in workers:
            task.add_done_callback(died)
        try:
            for _ in todo:
                item = await finished.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    # -- one row ----------------------------------------------------------------------------------
    async def _run_row(self, store: BatchStore, row: BatchRow, state: RowState) -> RowResult:
        """Run (or continue) one row and record how it ended; its failure is its result, never raised."""
        self._tally.running(+1)
        self._notify()
        try:
            result = await RowRunner(self.agg, store, self.batch_id, can_resume=self.can_resume).run(row, state)
        finally:
            self._tally.running(-1)
        self._tally.add(result)
        self._notify()
        return result


async def record_batch(store: BatchStore, spec: BatchSpec) -> list[RowState]:
    """Record ``spec`` in ``store`` (or check that the batch recorded under its id has the same rows and
    options); every row's state, by row number.

    Raises:
        ConfigError: field ``batch_id``: the id names a batch recorded with other rows or on another target.
    """
    if not await store.create_batch(spec):
        recorded = await store.load_batch(spec.batch_id)
        assert recorded is not None
        if [r.normalized() for r in recorded.rows] != [r.normalized() for r in spec.rows]:
            raise ConfigError("batch_id", f"batch {spec.batch_id} was recorded with other rows "
                                          f"({len(recorded.rows)} from {recorded.source or 'the library'})")
        if dict(recorded.options) != dict(spec.options):
            raise ConfigError("batch_id", f"batch {spec.batch_id} ran with {dict(recorded.options)}, this "
                                          f"process runs with {dict(spec.options)}: continue it where it ran")
    return await store.row_states(spec.batch_id)


class RowRunner:
    """Runs one row of batch ``batch_id`` on ``agg`` and records how it ended in ``store`` (what
    :class:`BatchRun` does for each row, and a ``deepsearch worker`` for each row job it takes).

    A row left ``running`` with a run id continues that run (:meth:`aggregator.Aggregator.resume`: nothing
    started or paid twice) when ``can_resume``, else starts a new run; any other row starts a new run,
    whose id is recorded for the row before the run's first paid call.
    """

    def __init__(self, agg: Aggregator, store: BatchStore, batch_id: str, *, can_resume: bool) -> None:
        self.agg, self.store, self.batch_id, self.can_resume = agg, store, batch_id, can_resume

    async def run(self, row: BatchRow, state: RowState) -> RowResult:
        """Run (or continue) ``row`` (whose recorded state is ``state``) and record its result; a row's
        failure is its result (``status="failed"``), never raised. Raises what the store raises."""
        attempt = _Attempt(run_id=state.run_id if state.status == "running" else None)
        report: SearchReport | None = None
        try:
            report = await self._search(row, state, attempt)
            error = None if report.delivered else _why_failed(report)
        except Exception as exc:  # a row's failure never stops the batch
            log.warning("batch.row_failed", batch_id=self.batch_id, row=row.row, error=repr(exc))
            error = f"{type(exc).__name__}: {exc}"
        result = RowResult(row.row, row.line, self.batch_id, report.run_id if report else attempt.run_id,
                           "done" if error is None else "failed", len(report.records) if report else 0,
                           report.total_credits if report else 0.0, error, resumed=attempt.resumed, report=report)
        await self.store.row_finished(self.batch_id, row.row, status=result.status, records=result.records,
                                      credits=result.credits, error=error)
        return result

    async def _search(self, row: BatchRow, state: RowState, attempt: _Attempt) -> SearchReport:
        """The row's report: its recorded run's when that finished, else its run continued, else a new run."""
        if state.status == "running" and state.run_id is not None:
            recorded = await self.agg.job_store.run(state.run_id)
            if recorded is not None and recorded.report is not None and recorded.status in FINISHED_RUNS:
                attempt.resumed = True  # the run finished; the process stopped before the row was recorded
                return recorded.report
            if recorded is not None and self.can_resume:
                attempt.resumed = True
                return await self._follow(row, self.agg.stream(recorded.request, run_id=state.run_id), attempt)
            log.info("batch.row_restarted", batch_id=self.batch_id, row=row.row, run_id=state.run_id,
                     reason="unknown to the job store" if recorded is None else "cannot be resumed here")
        return await self._follow(row, self.agg.stream(**row.fields), attempt)

    async def _follow(self, row: BatchRow, events: AsyncGenerator[Event, None], attempt: _Attempt) -> SearchReport:
        """Run ``events`` to the report; a new run's id is recorded for the row before its first paid call
        (the run waits at its first event until this loop asks for the next)."""
        report = None
        async with contextlib.aclosing(events) as stream:
            async for event in stream:
                if isinstance(event, RunStartedEvent):
                    if not event.resumed:
                        await self.store.row_started(self.batch_id, row.row, event.run_id)
                    attempt.run_id = event.run_id
                elif isinstance(event, ReportEvent):
                    report = event.report
        if report is None:
            raise RuntimeError("the run ended without a report")
        return report


def _why_failed(report: SearchReport) -> str:
    """Why no provider delivered: each provider's error or note."""
    reasons = "; ".join(f"{o.provider}: {o.status}" + (f" ({o.error.type}: {o.error.message})" if o.error
                                                       else f" ({o.note})" if o.note else "")
                        for o in report.outcomes)
    return f"every provider failed or was skipped: {reasons or 'no provider ran'}"

