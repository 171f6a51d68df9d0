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
- A batch-wide ``budget`` (credits) is one shared budget scope (:meth:`BudgetScope.for_batch
  <aggregator.coordination.BudgetScope.for_batch>`) that every paid call of every row reserves from,
  atomically with the account's budgets, in this process or in any worker on the same database: rows never
  overshoot it together. Once it is spent, rows not started yet are recorded ``failed`` without a run
  ("not run: the batch's budget ... is spent"); running the batch again with a higher budget and
  ``retry_failed`` runs them. Rows left running are continued whatever the budget (what they paid for is
  fetched; new paid calls are refused). A budget given again replaces the recorded one; credits the batch
  spent before it had a budget, or in a process whose coordinator is gone, count against it (see
  :func:`apply_batch_budget`).
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
from aggregator.budget import shared_budgets
from aggregator.coordination import BudgetScope
from aggregator.errors import ConfigError
from aggregator.events import Event, ReportEvent, RunStartedEvent
from aggregator.log import get_logger
from aggregator.models import SearchReport, SearchRequest

if TYPE_CHECKING:
    from aggregator.core import Aggregator

__all__ = ["DEFAULT_CONCURRENCY", "BatchProgress", "BatchRun", "RowResult", "RowRunner", "apply_batch_budget",
           "batch_options", "check_rows", "record_batch", "run_batch", "run_credits"]

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
              reports: bool = True, can_resume: bool = True, source: str | None = None,
              budget: float | None = None, cache_ttl_s: float | None = None) -> BatchRun:
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
        budget: credits every row of the batch may spend together (see the module docstring); None keeps
            the batch's recorded budget (if any).
        cache_ttl_s: a new row's run is answered from the result cache (:mod:`aggregator.cache`) when an
            identical request completed at most this many real seconds ago (0 credits; the row's ``run_id`` is
            then that run's); None: ``[cache] ttl_s`` (off by default).

    Raises:
        ConfigError: ``concurrency`` below 1, or ``budget`` not above 0.
        BatchValidationError: rows that are invalid or cannot run, each with its line and field.
    """
    if concurrency < 1:
        raise ConfigError("concurrency", f"must be at least 1, got {concurrency}")
    check_budget(budget)
    if cache_ttl_s is not None and not cache_ttl_s > 0:
        raise ConfigError("cache_ttl_s", f"must be above 0 seconds, got {cache_ttl_s:g}")
    checked = rows_from(rows, source or "rows")
    check_rows(agg, checked, source or "rows")
    options = batch_options(agg)
    return BatchRun(agg, checked, store, batch_id=batch_id or batch_id_of(checked, options), options=options,
                    concurrency=concurrency, on_progress=on_progress, retry_failed=retry_failed, reports=reports,
                    can_resume=can_resume, source=source, budget=budget, cache_ttl_s=cache_ttl_s)


def check_budget(budget: float | None, field: str = "budget") -> None:
    """Raises ConfigError naming ``field`` unless ``budget`` is None or a finite number above 0."""
    if budget is not None and not (0 < budget < float("inf")):
        raise ConfigError(field, f"a batch's budget is credits above 0, got {budget:g}")


class BatchRun:
    """A batch being run: an async iterator of :class:`RowResult`, one per row, as rows finish.

    ``batch_id`` is known before the first row runs; ``progress`` is the latest :class:`BatchProgress`;
    ``budget`` the batch's budget in credits once the first iteration read it (None: none).
    Use ``async with agg.batch(rows) as run: async for result in run: ...`` so that leaving the loop early
    cancels the rows in progress at once (they stay resumable). Iterate it once.

    The first iteration raises ConfigError (field ``batch_id``) when ``batch_id`` names a batch the store
    recorded with other rows or on another target.
    """

    def __init__(self, agg: Aggregator, rows: Sequence[BatchRow], store: BatchStore | None, *, batch_id: str,
                 options: Mapping[str, Any], concurrency: int, on_progress: ProgressCallback | None,
                 retry_failed: bool, reports: bool, can_resume: bool, source: str | None,
                 budget: float | None = None, cache_ttl_s: float | None = None) -> None:
        self.agg, self.rows, self.store, self.budget = agg, tuple(rows), store, budget
        self.cache_ttl_s = cache_ttl_s
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
        spec = BatchSpec(self.batch_id, self.rows, self.options, self.source, budget=self.budget)
        states = await record_batch(store, spec)
        self.budget = await apply_batch_budget(self.agg, store, self.batch_id, self.budget, states)
        return {state.row: state for state in states}

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
            result = await RowRunner(self.agg, store, self.batch_id, can_resume=self.can_resume,
                                     budget=self.budget, cache_ttl_s=self.cache_ttl_s).run(row, state)
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


async def apply_batch_budget(agg: Aggregator, store: BatchStore, batch_id: str, budget: float | None,
                             states: Sequence[RowState]) -> float | None:
    """The budget batch ``batch_id`` runs under: ``budget`` when given (it replaces the recorded one), else
    the recorded one. Its scope in ``agg``'s coordinator is brought up to what the batch's rows spent
    (finished rows' credits, what the journal says the runs of rows left running spent, and the retired
    credits of runs rows no longer point at) when it counts less: credits spent before the batch had a
    budget, or counted by an in-process coordinator that ended with its process. Returns None when the
    batch has no budget.

    Raises:
        ConfigError: ``budget`` is not above 0.
        CoordinationUnavailableError: the shared budgets cannot be reached.
    """
    check_budget(budget)
    if budget is not None and budget != await store.batch_budget(batch_id):
        await store.set_batch_budget(batch_id, budget)
    budget = await store.batch_budget(batch_id)
    if budget is None:
        return None
    spent = await store.retired_credits(batch_id) + sum(s.credits for s in states if s.finished)
    spent += sum([await run_credits(agg, s.run_id) for s in states if s.status == "running" and s.run_id])
    coordinator, scope = agg.providers.coordinator, BudgetScope.for_batch(batch_id, budget)
    usage = await coordinator.usage(scope, agg.clock)
    missing = spent - usage.spent - usage.reserved
    if missing > 1e-9:  # counted once here; never more than the batch spent
        hold = await coordinator.reserve([replace(scope, limit=1e18)], missing, agg.clock, provider="batch")
        await coordinator.settle(hold, missing)
        log.info("batch.budget_caught_up", batch_id=batch_id, credits=round(missing, 6))
    return budget


async def run_credits(agg: Aggregator, run_id: str) -> float:
    """Credits run ``run_id`` spent, from the job store: its report's total once finished, else what each
    provider's journaled job had spent (as a resumed run's own budget counts it); 0 for an unknown run."""
    from aggregator.scheduler import journaled_credits

    recorded = await agg.job_store.run(run_id)
    if recorded is None:
        return 0.0
    if recorded.report is not None:
        return recorded.report.total_credits
    spent = 0.0
    for name in recorded.request.providers or list(agg.providers.targets):
        record = await agg.job_store.get(run_id, name)
        if record is not None:
            try:
                per_start = agg.providers.adapter(name).cost.per_start
            except ConfigError:  # a provider not runnable here: its start's recorded charge, else none
                per_start = 0.0
            spent += journaled_credits(record, per_start)
    return spent


class RowRunner:
    """Runs one row of batch ``batch_id`` on ``agg`` and records how it ended in ``store`` (what
    :class:`BatchRun` does for each row, and a ``deepsearch worker`` for each row job it takes).

    A row left ``running`` with a run id continues that run (:meth:`aggregator.Aggregator.resume`: nothing
    started or paid twice) when ``can_resume``, else starts a new run; any other row starts a new run,
    whose id is recorded for the row before the run's first paid call.

    With a batch ``budget`` (credits), every paid call of the row reserves from the batch's shared scope
    too; a row not started yet when that budget is spent is recorded ``failed`` without a run.
    """

    def __init__(self, agg: Aggregator, store: BatchStore, batch_id: str, *, can_resume: bool,
                 budget: float | None = None, cache_ttl_s: float | None = None) -> None:
        self.agg, self.store, self.batch_id, self.can_resume = agg, store, batch_id, can_resume
        self.cache_ttl_s = cache_ttl_s  # a new row's result-cache TTL (None: the settings' [cache] ttl_s)
        self.scope = BudgetScope.for_batch(batch_id, budget) if budget is not None else None

    async def run(self, row: BatchRow, state: RowState) -> RowResult:
        """Run (or continue) ``row`` (whose recorded state is ``state``) and record its result; a row's
        failure is its result (``status="failed"``), never raised. Raises what the store raises."""
        attempt = _Attempt(run_id=state.run_id if state.status == "running" else None)
        report: SearchReport | None = None
        token = shared_budgets.set((*shared_budgets.get(), self.scope)) if self.scope is not None else None
        try:
            if attempt.run_id is None and (spent := await self._budget_spent()) is not None:
                raise _NotRun(spent)
            report = await self._search(row, state, attempt)
            error = None if report.delivered else _why_failed(report)
        except _NotRun as exc:
            error = str(exc)
        except Exception as exc:  # a row's failure never stops the batch
            log.warning("batch.row_failed", batch_id=self.batch_id, row=row.row, error=repr(exc))
            error = f"{type(exc).__name__}: {exc}"
        finally:
            if token is not None:
                shared_budgets.reset(token)
        result = RowResult(row.row, row.line, self.batch_id, report.run_id if report else attempt.run_id,
                           "done" if error is None else "failed", len(report.records) if report else 0,
                           report.total_credits if report else 0.0, error, resumed=attempt.resumed, report=report)
        await self.store.row_finished(self.batch_id, row.row, status=result.status, records=result.records,
                                      credits=result.credits, error=error)
        return result

    async def _budget_spent(self) -> str | None:
        """Why the row is not run (the batch's budget is spent), or None to run it."""
        if self.scope is None:
            return None
        usage = await self.agg.providers.coordinator.usage(self.scope, self.agg.clock)
        if usage.available > 1e-9:
            return None
        return (f"not run: the batch's budget of {self.scope.limit:g} credits is spent ({usage.spent:g} spent, "
                f"{usage.reserved:g} reserved); run the batch again with a higher --budget and --retry-failed")

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
        return await self._follow(row, self.agg.stream(**row.fields, cache_ttl_s=self.cache_ttl_s), attempt)

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


class _NotRun(Exception):
    """The row is not run; the message says why."""


def _why_failed(report: SearchReport) -> str:
    """Why no provider delivered: each provider's error or note."""
    reasons = "; ".join(f"{o.provider}: {o.status}" + (f" ({o.error.type}: {o.error.message})" if o.error
                                                       else f" ({o.note})" if o.note else "")
                        for o in report.outcomes)
    return f"every provider failed or was skipped: {reasons or 'no provider ran'}"

