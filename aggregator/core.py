"""The :class:`Aggregator`: one object that owns the HTTP session and runs searches.

::

    async with Aggregator() as agg:                 # no API keys -> in-process sandbox
        report = await agg.search("VP of Engineering in New York", mode="people", max_results=50)
        async for event in agg.stream(request):     # progress, hits and outcomes as they happen
            ...

Where each provider runs (``Settings.target``: auto, sandbox, live) is decided in
:mod:`aggregator.targets`; strategies (all, fallback, race) live in :mod:`aggregator.pipelines`.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncGenerator, Callable
from types import TracebackType
from typing import Any

import aiohttp
from pydantic import SecretStr, ValidationError

from aggregator.budget import CreditBudget, current_budget
from aggregator.clock import Clock, SystemClock
from aggregator.config import ProviderSettings, Settings, load_settings
from aggregator.contract import FilterSearchProvider, ProviderAdapter
from aggregator.errors import ConfigError, DeadlineExceededError, ProviderError
from aggregator.events import Event, HitsEvent, OutcomeEvent, RecordsEvent, ReportEvent, RunStartedEvent
from aggregator.http import HttpClient, ProviderHTTPClient
from aggregator.jobstore import InMemoryJobStore, JobStore
from aggregator.limits import ProviderLimiter
from aggregator.log import get_logger
from aggregator.merge import Resolver, merge_hits
from aggregator.models import (
    FieldValues,
    FilterCapabilities,
    Mode,
    ProviderOutcome,
    SearchReport,
    SearchRequest,
)
from aggregator.pipelines import Policy, StepRun, execute
from aggregator.retry import RetryPolicy
from aggregator.scheduler import JobRunner, error_info, journaled_credits
from aggregator.targets import ProviderTarget, resolve_targets

__all__ = ["Aggregator", "ProviderTarget", "resolve_targets"]  # the last two from aggregator.targets

log = get_logger("aggregator.core")
DEADLINE_GRACE_REAL_S = 5.0  # real seconds a runner gets past the deadline to record its outcome


class Aggregator:
    """Runs deep searches across providers. Use as ``async with Aggregator(...) as agg``.

    Args:
        settings: full settings; default :func:`~aggregator.config.load_settings()`.
        session: an ``aiohttp.ClientSession`` to use (not closed by us); default: our own.
        clock: time source; default real time, or the sandbox's scaled clock on the sandbox.
        job_store: where jobs and checkpoints are recorded; default in memory.
        sandbox: an already running :class:`providers.sandbox.runner.Sandbox` to use (tests).

    Raises:
        ConfigError: from ``__aenter__`` when ``target="live"`` and no provider has a key.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        session: aiohttp.ClientSession | None = None,
        clock: Clock | None = None,
        job_store: JobStore | None = None,
        sandbox: Any | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        if sandbox is not None:
            self.settings = self.settings.with_target("sandbox")
        self.job_store: JobStore = job_store or InMemoryJobStore()
        self._http = HttpClient(self.settings.http, session)
        self._clock = clock
        self.sandbox: Any | None = sandbox
        self._own_sandbox = False
        self.targets: dict[str, ProviderTarget] = {}
        self._adapters: dict[str, tuple[ProviderAdapter, ProviderHTTPClient, ProviderLimiter]] = {}

    # -- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> Aggregator:
        self.targets = resolve_targets(self.settings)
        runnable = [t for t in self.targets.values() if t.skip_reason is None]
        if self.settings.target == "live" and not runnable:
            envs = ", ".join(p.api_key_env for p in self.settings.providers.values())
            raise ConfigError("--live", f"no provider has an API key; set one of {envs}")
        if runnable and runnable[0].sandbox:
            await self._start_sandbox([t.name for t in runnable])
        await self._http.open()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the session (if ours) and stop the sandbox (if we started it)."""
        await self._http.close()
        if self._own_sandbox and self.sandbox is not None:
            await self.sandbox.__aexit__(None, None, None)
            self.sandbox = None
            self._own_sandbox = False

    async def _start_sandbox(self, names: list[str]) -> None:
        cfg = self.settings.sandbox
        if self.sandbox is None and cfg.connection_file is not None:
            from providers.sandbox.runner import AttachedSandbox, SandboxConnection

            try:
                self.sandbox = AttachedSandbox(SandboxConnection.read(cfg.connection_file))
            except ValueError as exc:
                raise ConfigError("sandbox.connection_file", str(exc)) from exc
            log.info("sandbox.attached", base_urls=self.sandbox.base_urls)
        elif self.sandbox is None:
            from providers.sandbox.runner import EMULATORS, Sandbox, SandboxConfig

            emulated = tuple(n for n in names if n in EMULATORS)
            self.sandbox = Sandbox(SandboxConfig(time_scale=cfg.time_scale, seed=cfg.seed,
                                                 n_companies=cfg.n_companies, providers=emulated))
            await self.sandbox.__aenter__()
            self._own_sandbox = True
            log.info("sandbox.started", base_urls=self.sandbox.base_urls)
        for name in names:
            if name not in self.sandbox.base_urls:  # no emulator, or an injected sandbox without it
                self.targets[name] = ProviderTarget(name, "", None, True, "not running in this sandbox")
                continue
            self.targets[name] = ProviderTarget(name, self.sandbox.base_urls[name],
                                                SecretStr(self.sandbox.api_keys[name]), True)

    @property
    def clock(self) -> Clock:
        if self.sandbox is not None:
            clock: Clock = self.sandbox.clock
            return clock
        if self._clock is None:
            self._clock = SystemClock()
        return self._clock

    @property
    def on_sandbox(self) -> bool:
        return any(t.sandbox for t in self.targets.values())

    @property
    def on_ephemeral_sandbox(self) -> bool:
        """On a sandbox that lives in this process: its jobs end with it, so its runs cannot be resumed
        by another process (an attached ``sandbox.connection_file`` sandbox can)."""
        return self.on_sandbox and self.sandbox is not None and bool(getattr(self.sandbox, "in_process", True))

    # -- providers --------------------------------------------------------------------------
    def _provider(self, name: str) -> tuple[ProviderAdapter, ProviderHTTPClient, ProviderLimiter]:
        if name not in self._adapters:
            from providers import load_adapter

            cls = load_adapter(name)
            prov: ProviderSettings = self.settings.providers[name]
            target = self.targets[name]
            limiter = ProviderLimiter(name, cls.limits_from(prov), self.clock)
            client = ProviderHTTPClient(
                provider=name, base_url=target.base_url, http=self._http, limiter=limiter,
                retry=RetryPolicy(self.settings.retry, self.clock), clock=self.clock,
                api_key=target.api_key, auth_headers=cls.auth_headers,
            )
            self._adapters[name] = (cls(client, prov), client, limiter)
        return self._adapters[name]

    def adapter(self, name: str) -> ProviderAdapter:
        """The adapter of provider ``name`` (for lower-level operations). Raises ConfigError."""
        if name not in self.targets or self.targets[name].skip_reason:
            reason = self.targets[name].skip_reason if name in self.targets else "unknown provider"
            raise ConfigError("provider", f"{name!r} is not available: {reason}")
        return self._provider(name)[0]

    def _filter_provider(self, provider: str | None) -> FilterSearchProvider:
        names = [provider] if provider else [
            n for n, t in self.targets.items()
            if not t.skip_reason and self._provider(n)[0].capabilities.filter_search]
        if not names:
            raise ConfigError("provider", "no configured provider offers filter search")
        adapter = self.adapter(names[0])
        if not adapter.capabilities.filter_search or not isinstance(adapter, FilterSearchProvider):
            raise ConfigError("provider", f"{names[0]} has no filter search")
        return adapter

    async def filter_fields(
        self, mode: Mode = "company", *, provider: str | None = None
    ) -> FilterCapabilities:
        """The fields, operators and limits a filter search accepts (Sixtyfour by default).

        Raises:
            ConfigError: no provider with filter search; ProviderError subclasses on failure.
        """
        return await self._filter_provider(provider).filter_capabilities(mode)

    async def filter_values(
        self, field: str, *, mode: Mode = "company", top_k: int = 25,
        simple_filters: dict[str, Any] | None = None, filters: dict[str, Any] | None = None,
        provider: str | None = None,
    ) -> FieldValues:
        """Top values of ``field`` (with counts and ready DSL snippets), optionally in a scope.

        Raises:
            ConfigError: unknown field, no top values, ``top_k`` outside 1..100, or an invalid
                scope, before the call; ProviderError subclasses on failure.
        """
        return await self._filter_provider(provider).filter_values(
            field, mode=mode, top_k=top_k, simple_filters=simple_filters, filters=filters)

    async def filter_search(
        self, *, mode: Mode = "company", simple_filters: dict[str, Any] | None = None,
        filters: dict[str, Any] | None = None, **fields: Any,
    ) -> SearchReport:
        """Run a filter search (``simple_filters`` or DSL ``filters``) and return the report.

        Filters are checked against the provider's capabilities before the paid query.

        Raises:
            ConfigError: invalid filters (naming the field or operator) or arguments.
        """
        fields.setdefault("query", "filter search")
        return await self.search(mode=mode, simple_filters=simple_filters, filters=filters, **fields)

    def build_request(self, request: SearchRequest | str | None = None, /, **fields: Any) -> SearchRequest:
        """A validated :class:`SearchRequest` from a request, a query string and/or fields.

        Raises:
            ConfigError: a field is missing or out of range (names the field).
        """
        try:
            if isinstance(request, SearchRequest):
                return SearchRequest.model_validate({**request.model_dump(), **fields}) if fields else request
            if request is not None:
                fields["query"] = request
            fields.setdefault("max_results", self.settings.run.max_results)
            fields.setdefault("deadline_s", self.settings.run.deadline_s)
            return SearchRequest(**fields)
        except ValidationError as exc:
            raise ConfigError.from_validation(exc) from exc

    def plan(self, request: SearchRequest) -> tuple[list[str], list[ProviderOutcome]]:
        """Which providers run ``request`` and the outcomes of those skipped. Raises ConfigError."""
        if not self.targets:
            raise RuntimeError("Aggregator is not open: use `async with Aggregator(...)`")
        wanted = list(request.providers or self.targets)
        unknown = [n for n in wanted if n not in self.targets]
        if unknown:
            raise ConfigError("providers", f"unknown provider {unknown[0]!r}; available: "
                              f"{', '.join(sorted(self.targets))}")
        run, skipped = [], []
        for name in wanted:
            target = self.targets[name]
            if request.providers and target.skip_reason:
                raise ConfigError("providers", f"{name} cannot run: {target.skip_reason}")
            adapter = None if target.skip_reason else self._provider(name)[0]
            reason = target.skip_reason
            if adapter is not None and request.identity is not None and not adapter.capabilities.lookup:
                if request.providers:
                    raise ConfigError("providers", f"{name} cannot look up a person by identity")
                reason = "cannot look up a person by identity"
            elif adapter is not None and request.is_filter_search and not adapter.capabilities.filter_search:
                if request.providers:
                    raise ConfigError("providers", f"{name} has no filter search")
                reason = "has no filter search"
            elif adapter is not None and request.mode not in adapter.capabilities.modes:
                if request.providers:
                    raise ConfigError("mode", f"{name} does not support {request.mode!r} mode")
                modes = " and ".join(sorted(adapter.capabilities.modes))
                reason = f"{request.mode} mode not supported ({name} supports {modes} mode only)"
            if reason:
                skipped.append(ProviderOutcome(provider=name, status="skipped", note=reason,
                                               sandbox=target.sandbox))
                continue
            assert adapter is not None
            adapter.validate(request)
            run.append(name)
        return run, skipped

    # -- running ----------------------------------------------------------------------------
    async def search(self, request: SearchRequest | str | None = None, /, **fields: Any) -> SearchReport:
        """Run one search on every planned provider and return the merged report.

        Accepts a :class:`SearchRequest`, a query string, and/or fields (``mode=...``). Provider
        failures are recorded in the outcomes; call ``report`` helpers to inspect them.

        Raises:
            ConfigError: invalid request or provider selection (before any network call).
        """
        report: SearchReport | None = None
        async for event in self.stream(request, **fields):
            if isinstance(event, ReportEvent):
                report = event.report
        assert report is not None
        return report

    async def resume(self, run_id: str, *, policy: Policy | None = None) -> SearchReport:
        """Continue a run recorded in the job store (a crash, Ctrl-C, a deadline) to its report.

        Jobs already submitted are polled, never submitted again; a submit whose outcome is unknown
        is resolved through the provider's idempotency key (or, for Extruct, its task list);
        fetching continues from each job's last checkpoint, and records already stored are neither
        fetched nor charged again.

        Raises:
            ConfigError: the store knows no run ``run_id``.
        """
        state = await self.job_store.run(run_id)
        if state is None:
            raise ConfigError("run_id", f"no run {run_id!r} in the journal; `deepsearch runs` lists them")
        report: SearchReport | None = None
        async for event in self.stream(state.request, policy=policy, run_id=run_id):
            if isinstance(event, ReportEvent):
                report = event.report
        assert report is not None
        return report

    async def stream(
        self, request: SearchRequest | str | None = None, /, *, policy: Policy | None = None,
        run_id: str | None = None, **fields: Any,
    ) -> AsyncGenerator[Event, None]:
        """Run a search, yielding progress, hits and outcomes as they happen, then the report.

        ``policy`` overrides the request's ``strategy`` / ``min_results`` / ``hedge_delay_s``
        (see :mod:`aggregator.pipelines`); its steps default to every planned provider.
        ``run_id`` continues a run the job store knows (see :meth:`resume`).

        Raises:
            ConfigError: invalid request or provider selection (before any network call).
        """
        req = self.build_request(request, **fields)
        names, skipped = self.plan(req)
        if policy is not None:
            self._check_policy(policy)
        names = await self._prepare(req, names, skipped)
        chosen = self._policy_for(req, names, policy)
        started, t0 = self.clock.now(), self.clock.monotonic()
        resumed = run_id is not None
        if run_id is None:
            run_id = uuid.uuid4().hex
            await self.job_store.record_run(run_id, req, started)
        yield RunStartedEvent(run_id, resumed)
        queue: asyncio.Queue[Event | None] = asyncio.Queue()
        for outcome in skipped:
            yield OutcomeEvent(outcome)
        launcher = _Launcher(self, run_id, req, t0, queue.put_nowait)
        budget = await self._budget(req, run_id if resumed else None, names)
        token = current_budget.set(budget)  # the run's tasks copy this context: they all see the budget
        try:
            execution = asyncio.create_task(execute(chosen, launcher, req.max_results))
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
            await asyncio.gather(execution, *launcher.tasks, return_exceptions=True)
            if not execution.done() or execution.cancelled():  # stopped early: leave it resumable
                await self.job_store.finish_run(run_id, "interrupted", None)
        result = execution.result()
        outcomes = [*skipped, *result.outcomes]
        order = {name: i for i, name in enumerate(req.providers or self.targets)}
        outcomes.sort(key=lambda o: order.get(o.provider, len(order)))
        report = SearchReport(
            run_id=run_id, request=req, started_at=started, finished_at=self.clock.now(),
            elapsed_s=self.clock.monotonic() - t0, sandbox=self.on_sandbox, outcomes=tuple(outcomes),
            records=(resolver.records(req.max_results) if resolver.has_exactly(result.hits)  # merged as they came
                     else merge_hits(result.hits, req.mode, req.max_results)),  # a policy dropped some hits
            answered_by=tuple(result.answered_by),
        )
        for outcome in outcomes:
            await self.job_store.record_outcome(run_id, outcome)
        await self.job_store.finish_run(run_id, "done" if report.delivered else "failed", report)
        yield ReportEvent(report)

    async def _budget(self, req: SearchRequest, resumed: str | None, names: list[str]) -> CreditBudget | None:
        """The run's budget; a resumed run's starts with what its earlier processes spent."""
        if req.budget is None:
            return None
        budget = CreditBudget(req.budget)
        for name in names if resumed is not None else ():
            record = await self.job_store.get(str(resumed), name)
            if record is not None:
                spent = journaled_credits(record, self.adapter(name).cost.per_start)
                budget.spent += spent
                budget.by_provider[name] = spent
        return budget

    async def _prepare(self, req: SearchRequest, names: list[str], skipped: list[ProviderOutcome]) -> list[str]:
        """Run every planned adapter's metadata checks; a provider that cannot be asked fails here."""
        ready = []
        for name in names:  # before any paid call; ConfigError propagates
            try:
                await self._provider(name)[0].prepare(req)
            except ProviderError as exc:
                skipped.append(ProviderOutcome(provider=name, status="failed", sandbox=self.targets[name].sandbox,
                                               error=error_info(exc), note="failed before starting"))
                continue
            ready.append(name)
        return ready

    def _check_policy(self, policy: Policy) -> None:
        """Every provider a policy names must exist: a misspelt step would silently run nothing."""
        unknown = [name for name in policy.providers() if name not in self.targets]
        if unknown:
            raise ConfigError("policy.steps", f"unknown provider {unknown[0]!r}; available: "
                              f"{', '.join(sorted(self.targets))}")

    @staticmethod
    def _policy_for(req: SearchRequest, names: list[str], policy: Policy | None) -> Policy:
        chosen = policy or Policy(strategy=req.strategy, min_results=req.min_results,
                                  hedge_delay_s=req.hedge_delay_s if req.hedge_delay_s is not None else 30.0)

        def keep(p: Policy) -> Policy:
            steps: list[str | Policy] = []
            for step in p.steps or tuple(names):
                if isinstance(step, Policy):
                    steps.append(keep(step))
                elif step in names:
                    steps.append(step)
            return p.with_steps(steps)

        return keep(chosen)

    async def _run_provider(self, run_id: str, name: str, req: SearchRequest, deadline_at: float,
                            emit: Any) -> ProviderOutcome:
        adapter, _, limiter = self._provider(name)
        prov = self.settings.providers[name]
        runner = JobRunner(
            run_id=run_id, adapter=adapter, request=req, limiter=limiter,
            poll_policy=type(adapter).poll_policy_from(prov), store=self.job_store, clock=self.clock,
            deadline_at=deadline_at, emit=emit,
            sandbox=self.targets[name].sandbox, rng=random.Random(),
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
            outcome = (await runner.finish("partial" if runner.hits else "skipped", None)).model_copy(
                update={"note": "cancelled"})
        emit(OutcomeEvent(outcome))
        return outcome


class _Launcher:
    """The :class:`~aggregator.pipelines.StepLauncher` of one run: provider runs over the scheduler."""

    def __init__(self, agg: Aggregator, run_id: str, request: SearchRequest, t0: float,
                 emit: Callable[[Event], None]) -> None:
        self.agg, self.run_id, self.request, self.t0, self.emit = agg, run_id, request, t0, emit
        self.mode = request.mode
        self.scale = agg.clock.scale
        self.tasks: list[asyncio.Task[ProviderOutcome]] = []

    def remaining_s(self) -> float:
        return self.t0 + self.request.deadline_s - self.agg.clock.monotonic()

    def launch(self, provider: str, max_results: int, deadline_s: float | None = None) -> StepRun:
        request = self.request.model_copy(update={"max_results": max(1, min(max_results, self.request.max_results))})
        deadline_at = self.t0 + self.request.deadline_s
        if deadline_s is not None:
            deadline_at = min(deadline_at, self.agg.clock.monotonic() + deadline_s)
        run = StepRun(provider=provider, task=None)  # type: ignore[arg-type]

        def emit(event: Event) -> None:
            if isinstance(event, HitsEvent):
                run.hits.extend(event.hits)
                run.progressed.set()
            self.emit(event)

        run.task = asyncio.create_task(self.agg._run_provider(self.run_id, provider, request, deadline_at, emit))
        self.tasks.append(run.task)
        return run
