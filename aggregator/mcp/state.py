"""What one MCP server process holds for its lifetime: the Aggregator (and its sandbox), the session's
credits, and the runs it is driving.

- :class:`SessionCredits` — the money caps (``[mcp]`` settings): each paid call's budget is reserved
  from the session when the call starts, so concurrent calls can never overshoot together; the run's
  own budget (:attr:`~aggregator.models.SearchRequest.budget`, reserved before every paid provider call)
  then guarantees the call never spends more than it was given.
- :class:`ServerState` — opens the sandbox (when the settings run on it) *itself* and hands it to the
  Aggregator, so a run interrupted in this process can be resumed in it (its jobs live as long as the
  sandbox); drives runs to their report in tasks it owns (:meth:`ServerState.drive`), cancels them on
  shutdown (each is then ``interrupted`` in the journal).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from aggregator.config import McpSettings, Settings
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from aggregator.events import Event, OutcomeEvent, ReportEvent, RunStartedEvent
from aggregator.jobstore import JobStore
from aggregator.models import ProviderOutcome, SearchReport
from aggregator.run import SearchRun
from aggregator.sandbox import SandboxHandle, open_sandbox
from aggregator.targets import resolve_targets

__all__ = ["ActiveRun", "ServerState", "SessionCredits"]

CANCEL_GRACE_S = 30.0
"""Real seconds a cancelled run gets to stop its provider jobs and journal itself as interrupted."""


@dataclass
class SessionCredits:
    """The ``[mcp]`` caps of one server process: ``spent`` (settled) + ``reserved`` (running calls) never
    pass ``per_session``, and no call gets more than ``per_call``."""

    per_call: float
    per_session: float
    spent: float = 0.0
    reserved: float = 0.0

    @classmethod
    def of(cls, settings: McpSettings) -> SessionCredits:
        return cls(settings.max_credits_per_call, settings.max_credits_per_session)

    @property
    def left(self) -> float:
        """Credits new calls may still reserve."""
        return max(0.0, self.per_session - self.spent - self.reserved)

    def reserve(self, requested: float | None, ceiling: float | None = None) -> float:
        """Reserve a paid call's budget and return it: ``requested``, or by default the per-call cap
        (lowered to ``ceiling`` and to what the session has left).

        Raises:
            ConfigError: (field ``budget``) ``requested`` is above ``[mcp] max_credits_per_call`` or above
                what the session has left, or the session has nothing left; the message says how to raise
                the cap. Nothing is reserved.
        """
        raise_it = ("raise it in the server's config file (--config or DEEPSEARCH_CONFIG, section [mcp]) and "
                    "restart the server")
        if requested is not None and requested > self.per_call:
            raise ConfigError("budget", f"{requested:g} credits is above this server's per-call cap, [mcp] "
                                        f"max_credits_per_call = {self.per_call:g}; ask for at most "
                                        f"{self.per_call:g}, or {raise_it}")
        left = self.left
        if left <= 0:
            raise ConfigError("budget", f"this server session's credits are used up: [mcp] max_credits_per_session "
                                        f"= {self.per_session:g} is spent or held by running calls; {raise_it}")
        if requested is not None and requested > left:
            raise ConfigError("budget", f"{requested:g} credits is more than this server session has left "
                                        f"({left:g} of [mcp] max_credits_per_session = {self.per_session:g}); "
                                        f"ask for at most {left:g}, or {raise_it}")
        budget = requested if requested is not None else min(self.per_call, ceiling or self.per_call, left)
        self.reserved += budget
        return budget

    def settle(self, reserved: float, spent: float) -> None:
        """A call that reserved ``reserved`` finished having spent ``spent``."""
        self.reserved = max(0.0, self.reserved - reserved)
        self.spent += spent


@dataclass
class ActiveRun:
    """A run this server process is driving: its budget and the outcomes of providers that finished."""

    run_id: str
    budget: float
    outcomes: dict[str, ProviderOutcome] = field(default_factory=dict)

    @property
    def credits(self) -> float:
        return sum(o.credits for o in self.outcomes.values())


class ServerState:
    """The server's Aggregator, session credits and runs. Use :meth:`open` (an async context manager)."""

    def __init__(self, agg: Aggregator, credits: SessionCredits) -> None:
        self.agg = agg
        self.credits = credits
        self.active: dict[str, ActiveRun] = {}
        self.started_here: set[str] = set()
        self._tasks: set[asyncio.Task[SearchReport | None]] = set()

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings, store: JobStore) -> AsyncIterator[ServerState]:
        """The state of one server process: its own sandbox (when the settings run on it), an open
        Aggregator over ``store`` (the CLI's journal), and on exit every run still going cancelled and
        journaled as ``interrupted``.

        Raises:
            ConfigError: ``--live`` without keys, an insecure live base URL, a stale sandbox connection file.
        """
        runnable = [t for t in resolve_targets(settings).values() if t.skip_reason is None]
        sandbox: SandboxHandle | None = None
        if runnable and runnable[0].sandbox:
            sandbox = await open_sandbox(settings.sandbox, [t.name for t in runnable])
        try:
            async with Aggregator(settings, job_store=store, sandbox=sandbox) as agg:
                state = cls(agg, SessionCredits.of(settings.mcp))
                try:
                    yield state
                finally:
                    await state.stop_all()
        finally:
            if sandbox is not None:
                await sandbox.__aexit__(None, None, None)

    def can_resume(self, run_id: str) -> bool:
        """Whether this process can resume ``run_id``: anywhere but on an in-process sandbox, whose jobs
        exist only for runs this process started."""
        return not self.agg.on_ephemeral_sandbox or run_id in self.started_here

    async def drive(self, run: SearchRun, budget: float, listener: Callable[[Event], None] | None = None,
                    started: asyncio.Future[str] | None = None) -> SearchReport | None:
        """Run ``run`` to its report (None when it is cancelled: it is then ``interrupted`` in the journal),
        passing each event to ``listener``, and settle its ``budget`` with the session: the report's
        credits, the whole budget when it was interrupted (its exact spend is not known then), nothing
        when it stopped before it was recorded (nothing was sent).
        ``started`` gets the run id once it is recorded (or the exception that stopped it first)."""
        report: SearchReport | None = None
        active: ActiveRun | None = None
        try:
            async with contextlib.aclosing(run.events()) as events:
                async for event in events:
                    if isinstance(event, RunStartedEvent):
                        active = self.active[event.run_id] = ActiveRun(event.run_id, budget)
                        self.started_here.add(event.run_id)
                        if started is not None and not started.done():
                            started.set_result(event.run_id)
                    elif isinstance(event, OutcomeEvent) and active is not None:
                        active.outcomes[event.outcome.provider] = event.outcome
                    elif isinstance(event, ReportEvent):
                        report = event.report
                    if listener is not None:
                        listener(event)
        except BaseException as exc:
            if started is not None and not started.done():
                if isinstance(exc, Exception):
                    started.set_exception(exc)
                else:
                    started.cancel()
            raise
        finally:
            # interrupted: its exact spend is not known, so all of its budget counts; never started: nothing
            spent = report.total_credits if report is not None else budget if active is not None else 0.0
            self.credits.settle(budget, spent)
            if active is not None:
                self.active.pop(active.run_id, None)
        return report

    def in_background(self, run: SearchRun, budget: float) -> tuple[asyncio.Task[SearchReport | None],
                                                                     asyncio.Future[str]]:
        """Drive ``run`` in a task the server owns (cancelled at shutdown); returns it and the future of
        its run id."""
        started: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        task = asyncio.create_task(self.drive(run, budget, started=started))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        task.add_done_callback(_consume_exception)
        return task, started

    async def stop_all(self) -> None:
        """Cancel every background run and wait (at most :data:`CANCEL_GRACE_S`) until each is journaled."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=CANCEL_GRACE_S)


def _consume_exception(task: asyncio.Task[SearchReport | None]) -> None:
    """A background run's failure is in the journal (get_search shows it): not an unretrieved exception."""
    if not task.cancelled():
        task.exception()
