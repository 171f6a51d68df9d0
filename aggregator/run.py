"""One search run, as a pipeline read top to bottom.

:class:`~aggregator.core.Aggregator` (the facade: session, settings, sandbox, lifecycle) hands a
validated request to :meth:`ProviderSet.plan` and the plan to a :class:`SearchRun`, which owns the
rest; data flows one way::

    Aggregator.start(request)  -> ProviderSet.plan: providers to run (each validated once), skipped
    SearchRun.events()         -> prepare (metadata checks), journal the run, budget
                               -> pipelines.execute(policy, launcher=the run)
                               -> JobRunner per provider step -> adapter -> HTTP client
                               <- HitsEvent / ProgressEvent / OutcomeEvent, merged as they arrive
                               -> merge, journal outcomes, SearchReport -> ReportEvent

Nothing here calls back into the facade: a run gets the :class:`ProviderSet` (targets and one
adapter, limiter and client per provider), the clock and the job store.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from datetime import datetime

from aggregator.breaker import CircuitBreaker, breaker_from_settings
from aggregator.budget import CreditBudget, current_budget
from aggregator.cache import CacheRequest, cache_events
from aggregator.clock import Clock
from aggregator.config import Settings
from aggregator.contract import ProviderAdapter
from aggregator.coordination import AccountBudget, Coordinator, account_fingerprint, coordinator_from_settings
from aggregator.errors import (
    ConfigError,
    CoordinationUnavailableError,
    DeadlineExceededError,
    ProviderError,
)
from aggregator.events import (
    Event,
    HitsEvent,
    OutcomeEvent,
    ProgressEvent,
    RecordsEvent,
    ReportEvent,
    RunStartedEvent,
)
from aggregator.http import HttpClient, ProviderHTTPClient
from aggregator.jobstore import JobStore
from aggregator.limits import ProviderLimiter
from aggregator.log import get_logger
from aggregator.merge import Resolver, merge_hits
from aggregator.models import Mode, ProviderOutcome, SearchReport, SearchRequest
from aggregator.pipelines import Policy, PolicyResult, StepRun, execute
from aggregator.retry import RetryPolicy
from aggregator.scheduler import JobRunner, error_info, journaled_credits
from aggregator.targets import ProviderTarget
from aggregator.telemetry import instrument as telemetry

__all__ = ["Plan", "ProviderSet", "SearchRun"]

log = get_logger("aggregator.run")
DEADLINE_GRACE_REAL_S = 5.0  # real seconds a runner gets past the deadline to record its outcome
_JITTER = random.Random()  # poll jitter of every run (a Random per run costs ~2.5 KiB and an urandom read)


@dataclass
class _Provider:
    adapter: ProviderAdapter
    client: ProviderHTTPClient
    limiter: ProviderLimiter


@dataclass(frozen=True)
class Plan:
    """What a request runs on: ``providers`` (planned, each validated once) and ``skipped`` outcomes."""

    request: SearchRequest
    providers: tuple[str, ...]
    skipped: tuple[ProviderOutcome, ...]


class ProviderSet:
    """Every provider of one Aggregator: where it runs, and its adapter, limiter and client (built once).

    Limits and account budgets live in ``coordinator``: one provider account (one API key, see
    :func:`~aggregator.coordination.account_fingerprint`) shares its windows, buckets, pauses, job
    slots and ``[budgets.<provider>]`` with every process on the same coordinator.

    Args:
        settings: the Aggregator's settings (provider sections, retry policy, budgets, database).
        targets: where each registered provider runs (:func:`aggregator.targets.resolve_targets`).
        http: the shared session owner; clock: the clock every limiter and retry waits on.
        coordinator: default :func:`~aggregator.coordination.coordinator_from_settings` (PostgreSQL when
            ``[database] url`` is set, else in process), owned and closed by :meth:`aclose`.
    """

    def __init__(self, settings: Settings, targets: dict[str, ProviderTarget], http: HttpClient,
                 clock: Clock, coordinator: Coordinator | None = None) -> None:
        self.settings = settings
        self.targets = targets
        self.http = http
        self.clock = clock
        self._own_coordinator = coordinator is None
        self.coordinator = coordinator if coordinator is not None else coordinator_from_settings(settings)
        self._built: dict[str, _Provider] = {}

    async def aclose(self) -> None:
        """Close the coordinator if this set made it (gives back leases, stamps requests in flight)."""
        if self._own_coordinator:
            await self.coordinator.aclose()

    def _get(self, name: str) -> _Provider:
        built = self._built.get(name)
        if built is None:
            from providers import load_adapter  # the registry is the one wiring point into providers

            cls = load_adapter(name)
            prov = self.settings.providers[name]
            target = self.targets[name]
            account = account_fingerprint(name, target.api_key)
            limiter = ProviderLimiter(name, cls.limits_from(prov), self.clock, coordinator=self.coordinator,
                                      account=account)
            configured = self.settings.budgets.get(name)
            account_budget = (AccountBudget(self.coordinator, name, (), self.clock) if configured is None
                              else AccountBudget.of(self.coordinator, name, account, configured.credits,
                                                    configured.period, self.clock))
            client = ProviderHTTPClient(
                provider=name, base_url=target.base_url, http=self.http, limiter=limiter,
                retry=RetryPolicy(self.settings.retry, self.clock), clock=self.clock,
                api_key=target.api_key, auth_headers=cls.auth_headers, account_budget=account_budget,
                breaker=breaker_from_settings(self.settings.breaker, name, account, self.coordinator, self.clock),
            )
            built = self._built[name] = _Provider(cls(client, prov), client, limiter)
        return built

    def adapter(self, name: str) -> ProviderAdapter:
        """The adapter of a provider that can run here.

        Raises:
            ConfigError: unknown provider, or one skipped in this Aggregator (the reason is named).
        """
        target = self.targets.get(name)
        if target is None or target.skip_reason:
            reason = target.skip_reason if target is not None else "unknown provider"
            raise ConfigError("provider", f"{name!r} is not available: {reason}")
        return self._get(name).adapter

    def limiter(self, name: str) -> ProviderLimiter:
        return self._get(name).limiter

    def breaker(self, name: str) -> CircuitBreaker | None:
        """``name``'s circuit breaker (None: ``[breaker]`` disables it)."""
        return self._get(name).client.breaker

    def runnable(self) -> list[str]:
        """Providers not skipped in this Aggregator, in registry order."""
        return [n for n, t in self.targets.items() if not t.skip_reason]

    def plan(self, request: SearchRequest) -> Plan:
        """Which providers run ``request`` (each validated by its adapter, once) and which are skipped.

        Raises:
            ConfigError: an unknown provider, a named provider that cannot run the request, or a
                request its adapter rejects (the message names the field).
        """
        wanted = list(request.providers or self.targets)
        unknown = [n for n in wanted if n not in self.targets]
        if unknown:
            raise ConfigError("providers", f"unknown provider {unknown[0]!r}; available: "
                              f"{', '.join(sorted(self.targets))}")
        run, skipped, refused = [], [], []
        for name in wanted:
            target = self.targets[name]
            if request.providers and target.skip_reason:
                raise ConfigError("providers", f"{name} cannot run: {target.skip_reason}")
            reason = target.skip_reason or self._unsupported(name, request)
            if not reason and (refusal := self._get(name).adapter.unsupported(request)) is not None:
                if request.providers:  # the user asked this provider for what it cannot do
                    raise refusal
                refused.append(refusal)
                reason = f"cannot do what was asked: {refusal}"
            if reason:
                skipped.append(ProviderOutcome(provider=name, status="skipped", note=reason,
                                               sandbox=target.sandbox))
                continue
            adapter = self._get(name).adapter
            adapter.options(request)  # its provider-only inputs, then the whole request
            adapter.validate(request)
            run.append(name)
        if refused and not run:  # no provider can do it: refuse the request, not a run that finds nothing
            raise refused[0]
        self._refuse_stray_options(request, run, skipped)
        return Plan(request, tuple(run), tuple(skipped))

    def _refuse_stray_options(self, request: SearchRequest, run: list[str], skipped: list[ProviderOutcome]) -> None:
        """Options for a provider that does not run this request cannot apply: refuse them, naming why."""
        reasons = {o.provider: o.note for o in skipped}
        for name in request.options:
            if name in run:
                continue
            if name not in self.targets:
                raise ConfigError(f"options.{name}", f"unknown provider {name!r}; available: "
                                                     f"{', '.join(sorted(self.targets))}")
            why = reasons.get(name) or "it is not among the request's providers"
            raise ConfigError(f"options.{name}", f"{name} does not run this request ({why}), so its options "
                                                 "cannot apply; remove them or let it run")

    def _unsupported(self, name: str, request: SearchRequest) -> str | None:
        """Why ``name`` cannot run ``request`` (None: it can); a ConfigError when the user named it."""
        caps = self._get(name).adapter.capabilities
        field_, reason = None, None
        if request.identity is not None and not caps.lookup:
            field_, reason = "providers", "cannot look up a person by identity"
        elif request.is_filter_search and not caps.filter_search:
            field_, reason = "providers", "has no filter search"
        elif request.mode not in caps.modes:
            if request.providers:
                raise ConfigError("mode", f"{name} does not support {request.mode!r} mode")
            modes = " and ".join(sorted(caps.modes))
            reason = f"{request.mode} mode not supported ({name} supports {modes} mode only)"
        if reason and request.providers and field_:
            raise ConfigError(field_, f"{name} {reason}")
        return reason


@dataclass
class SearchRun:
    """One run of a planned request; iterate :meth:`events` once.

    It is also the :class:`~aggregator.pipelines.StepLauncher` its policy starts provider steps
    through. ``run_id`` continues a run the job store knows (its jobs are polled, not started again).
    """

    plan: Plan
    policy: Policy
    providers: ProviderSet
    store: JobStore
    clock: Clock
    run_id: str | None = None
    on_sandbox: bool = False
    progress: bool = True  # emit ProgressEvents (False: a caller that only wants the report)
    cache: CacheRequest | None = None  # the result cache (aggregator.cache); None: not used
    tasks: list[asyncio.Task[ProviderOutcome]] = field(default_factory=list)
    mode: Mode = field(init=False)  # StepLauncher: the request's mode
    scale: float = field(init=False)  # StepLauncher: wall seconds per clock second

    def __post_init__(self) -> None:
        self.mode, self.scale = self.request.mode, self.clock.scale
        self._t0 = self.clock.monotonic()
        self._wall0 = time.monotonic()  # real seconds, whatever the run's clock
        self._emit: Callable[[Event], None] = lambda event: None

    @property
    def request(self) -> SearchRequest:
        return self.plan.request

    # -- the pipeline -----------------------------------------------------------------------
    @telemetry.traced_run  # the run's span (the parent of its provider jobs' spans) and run metrics
    async def events(self) -> AsyncGenerator[Event, None]:
        """Run to the report, yielding progress, hits, merged records and outcomes as they happen.

        Provider failures are outcomes, never exceptions. Closing the generator early (a crash, a
        Ctrl-C) cancels the provider steps and marks the run ``interrupted`` (resumable).
        With :attr:`cache` (a new run), a fresh cached answer is replayed instead, and a run is made
        once for identical concurrent requests (see :func:`aggregator.cache.cache_events`).
        """
        if self.cache is not None and self.run_id is None:
            cache, self.cache = self.cache, None  # the run itself (below) runs once, without it
            async with contextlib.aclosing(cache_events(self, cache, self.events)) as answers:
                async for answer in answers:  # closed with us: the lease is given back at once
                    yield answer
            return
        req = self.request
        skipped = list(self.plan.skipped)
        names = await self._prepare(skipped)
        policy = _keep_steps(self.policy, names)
        started, self._t0, self._wall0 = self.clock.now(), self.clock.monotonic(), time.monotonic()
        resumed = self.run_id is not None
        run_id = self.run_id = self.run_id or uuid.uuid4().hex
        if not resumed:
            await self.store.record_run(run_id, req, started)
        yield RunStartedEvent(run_id, resumed)
        for outcome in skipped:
            yield OutcomeEvent(outcome)
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._emit = queue.put_nowait
        budget = await self._budget(names, resumed)
        token = current_budget.set(budget)  # the run's tasks copy this context: they all see the budget
        try:
            execution = asyncio.create_task(execute(policy, self, req.max_results))
        finally:
            current_budget.reset(token)
        execution.add_done_callback(lambda _: queue.put_nowait(None))
        resolver = Resolver(req.mode)
        try:
            while (event := await queue.get()) is not None:
                yield event
                if isinstance(event, HitsEvent):  # merge as records arrive
                    changed = resolver.add(event.hits)
                    yield RecordsEvent(changed, resolver.removed, resolver.record_count)
        finally:
            execution.cancel()
            await asyncio.gather(execution, *self.tasks, return_exceptions=True)
            if not execution.done() or execution.cancelled():  # stopped early: leave it resumable
                await self.store.finish_run(run_id, "interrupted", None)
        report = self._report(run_id, started, skipped, execution.result(), resolver)
        for outcome in report.outcomes:
            await self.store.record_outcome(run_id, outcome)
        await self.store.finish_run(run_id, "done" if report.delivered else "failed", report)
        yield ReportEvent(report)

    def _report(self, run_id: str, started: datetime, skipped: list[ProviderOutcome], result: PolicyResult,
                resolver: Resolver) -> SearchReport:
        """The run's report: outcomes in the request's provider order, records merged once."""
        req = self.request
        order = {name: i for i, name in enumerate(req.providers or self.providers.targets)}
        outcomes = sorted([*skipped, *result.outcomes], key=lambda o: order.get(o.provider, len(order)))
        return SearchReport(
            run_id=run_id, request=req, started_at=started, finished_at=self.clock.now(),
            elapsed_s=self.clock.monotonic() - self._t0, wall_s=time.monotonic() - self._wall0,
            sandbox=self.on_sandbox, outcomes=tuple(outcomes),
            records=(resolver.records(req.max_results) if resolver.has_exactly(result.hits)  # merged as they came
                     else merge_hits(result.hits, req.mode, req.max_results)),  # a policy dropped some hits
            answered_by=tuple(result.answered_by),
        )

    async def _prepare(self, skipped: list[ProviderOutcome]) -> list[str]:
        """Every planned adapter's metadata checks; a provider that cannot be asked fails here."""
        ready = []
        for name in self.plan.providers:  # before any paid call; ConfigError propagates
            try:
                await self.providers.adapter(name).prepare(self.request)
            except ProviderError as exc:
                skipped.append(ProviderOutcome(provider=name, status="failed",
                                               sandbox=self.providers.targets[name].sandbox,
                                               error=error_info(exc), note="failed before starting"))
                continue
            ready.append(name)
        return ready

    async def _budget(self, names: list[str], resumed: bool) -> CreditBudget | None:
        """The run's budget; a resumed run's starts with what its earlier processes spent."""
        if self.request.budget is None:
            return None
        budget = CreditBudget(self.request.budget)
        for name in names if resumed else ():
            record = await self.store.get(str(self.run_id), name)
            if record is not None:
                spent = journaled_credits(record, self.providers.adapter(name).cost.per_start)
                budget.spent += spent
                budget.by_provider[name] = spent
        return budget

    # -- StepLauncher -----------------------------------------------------------------------
    def remaining_s(self) -> float:
        """Clock seconds left until the run's deadline."""
        return self._t0 + self.request.deadline_s - self.clock.monotonic()

    def launch(self, provider: str, max_results: int, deadline_s: float | None = None) -> StepRun:
        """Start ``provider`` for up to ``max_results`` records (within the run's), under a step deadline."""
        request = self.request.model_copy(update={"max_results": max(1, min(max_results, self.request.max_results))})
        deadline_at = self._t0 + self.request.deadline_s
        if deadline_s is not None:
            deadline_at = min(deadline_at, self.clock.monotonic() + deadline_s)
        step = StepRun(provider=provider, task=None)  # type: ignore[arg-type]

        progress = self.progress

        def emit(event: Event) -> None:
            if isinstance(event, HitsEvent):
                step.hits.extend(event.hits)
                step.progressed.set()
            elif not progress and isinstance(event, ProgressEvent):
                return
            self._emit(event)

        step.task = asyncio.create_task(self._run_provider(provider, request, deadline_at, emit))
        self.tasks.append(step.task)
        return step

    async def _run_provider(self, name: str, req: SearchRequest, deadline_at: float,
                            emit: Callable[[Event], None]) -> ProviderOutcome:
        adapter = self.providers.adapter(name)
        if (skipped := await self._circuit_open(name)) is not None:
            emit(OutcomeEvent(skipped))
            return skipped
        runner = JobRunner(
            run_id=str(self.run_id), adapter=adapter, request=req, limiter=self.providers.limiter(name),
            poll_policy=type(adapter).poll_policy_from(self.providers.settings.providers[name]),
            store=self.store, clock=self.clock, deadline_at=deadline_at, emit=emit,
            sandbox=self.providers.targets[name].sandbox, rng=_JITTER,
        )
        real_limit = max(0.0, deadline_at - self.clock.monotonic()) * self.clock.scale + DEADLINE_GRACE_REAL_S
        try:
            async with asyncio.timeout(real_limit):
                outcome = await runner.run()
        except TimeoutError:
            outcome = await runner.finish(
                "partial" if runner.hits else "failed",
                DeadlineExceededError(f"{name}: run deadline reached", job=runner.job),
            )
        except asyncio.CancelledError:  # a strategy stopped it (a lost race): keep what it cost
            finished = await runner.finish("partial" if runner.hits else "skipped", None)
            outcome = finished.model_copy(update={"note": "; ".join(filter(None, ("cancelled", finished.note)))})
        emit(OutcomeEvent(outcome))
        return outcome

    async def _circuit_open(self, name: str) -> ProviderOutcome | None:
        """The ``skipped`` outcome of a step whose provider's circuit is open (nothing is submitted; a
        strategy moves on at once), or None when it may start (a coordination failure is left to the
        step's first call, which fails closed on it)."""
        breaker = self.providers.breaker(name)
        try:
            refusal = await breaker.refusal() if breaker is not None else None
        except CoordinationUnavailableError:
            return None
        if refusal is None:
            return None
        now = self.clock.now()
        return ProviderOutcome(provider=name, status="skipped", sandbox=self.providers.targets[name].sandbox,
                               started_at=now, finished_at=now, elapsed_s=0.0, error=error_info(refusal),
                               note=refusal.note)


def policy_for(request: SearchRequest, policy: Policy | None, known: dict[str, ProviderTarget]) -> Policy:
    """The run's policy: ``policy`` (its every step must name a known provider), else the request's own.

    Raises:
        ConfigError: a policy step names an unknown provider (a misspelt step would silently run nothing).
    """
    if policy is None:
        return Policy(strategy=request.strategy, min_results=request.min_results,
                      hedge_delay_s=request.hedge_delay_s if request.hedge_delay_s is not None else 30.0)
    unknown = [name for name in policy.providers() if name not in known]
    if unknown:
        raise ConfigError("policy.steps", f"unknown provider {unknown[0]!r}; available: {', '.join(sorted(known))}")
    return policy


def _keep_steps(policy: Policy, names: list[str]) -> Policy:
    """``policy`` with its steps limited to ``names`` (every planned provider when it names none)."""
    steps: list[str | Policy] = []
    for step in policy.steps or tuple(names):
        if isinstance(step, Policy):
            steps.append(_keep_steps(step, names))
        elif step in names:
            steps.append(step)
    return policy.with_steps(steps)
