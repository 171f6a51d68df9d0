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

import contextlib
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any

import aiohttp
from pydantic import SecretStr, ValidationError

from aggregator.cache import CacheRequest, cache_key
from aggregator.clock import Clock, SystemClock
from aggregator.config import Settings, load_settings
from aggregator.contract import FilterSearchProvider, ProviderAdapter
from aggregator.errors import ConfigError
from aggregator.events import Event, ReportEvent
from aggregator.http import HttpClient
from aggregator.jobstore import InMemoryJobStore, JobStore
from aggregator.log import get_logger
from aggregator.models import FieldValues, FilterCapabilities, Mode, ProviderOutcome, SearchReport, SearchRequest
from aggregator.pipelines import Policy, refuse_ignored_strategy_fields
from aggregator.run import ProviderSet, SearchRun, policy_for
from aggregator.sandbox import SandboxHandle, open_sandbox
from aggregator.targets import ProviderTarget, resolve_targets
from aggregator.telemetry import record_cache

__all__ = ["Aggregator", "ProviderTarget", "resolve_targets"]  # the last two from aggregator.targets

if TYPE_CHECKING:  # the batch package loads when a batch runs
    from aggregator.batch import BatchProgress, BatchRow, BatchRun, BatchStore
    from aggregator.coordination import Coordinator
    from aggregator.journal import BufferedJournal

log = get_logger("aggregator.core")


class Aggregator:
    """Runs deep searches across providers. Use as ``async with Aggregator(...) as agg``.

    The facade: it owns the settings, the HTTP session, the sandbox (when it started one) and the
    providers' adapters and limits (:class:`~aggregator.run.ProviderSet`), and hands each search to
    a :class:`~aggregator.run.SearchRun`.

    Args:
        settings: full settings; default :func:`~aggregator.config.load_settings()`.
        session: an ``aiohttp.ClientSession`` to use (not closed by us); default: our own.
        clock: time source; default real time, or the sandbox's scaled clock on the sandbox.
        job_store: where jobs and checkpoints are recorded; default the PostgreSQL journal when
            ``settings.database.url`` is set (opened and closed with the Aggregator; opening raises
            :class:`~aggregator.errors.DatabaseError` when it is unreachable or not migrated), else in memory.
        sandbox: an already running sandbox to use (tests, benchmarks): any
            :class:`~aggregator.sandbox.SandboxHandle`, e.g. :class:`providers.sandbox.runner.Sandbox`.
        coordinator: where rate limits, job slots and account budgets are kept
            (:mod:`aggregator.coordination`); share one between Aggregators of a process so they share
            their limits. Default: PostgreSQL when ``settings.database.url`` is set, else this
            Aggregator's own in-process coordinator (closed with it; a given one is not).
        wall_clock: the real (UTC) time the result cache measures the age of its entries with, against
            the job store's finish stamps (default the system's; tests move one shared with the store).

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
        sandbox: SandboxHandle | None = None,
        coordinator: Coordinator | None = None,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self._coordinator = coordinator
        self._wall_clock = wall_clock or _wall_now
        if sandbox is not None:
            self.settings = self.settings.with_target("sandbox")
        self._own_journal: BufferedJournal | None = None
        if job_store is None and self.settings.database.url is not None:
            from aggregator.db import open_journal  # the driver only loads when a database is configured

            self._own_journal = open_journal(self.settings.database)
        self.job_store: JobStore = job_store or self._own_journal or InMemoryJobStore()
        self._http = HttpClient(self.settings.http, session)
        self._clock = clock
        self.sandbox: SandboxHandle | None = sandbox
        self._own_sandbox = False
        self.targets: dict[str, ProviderTarget] = {}
        self._providers: ProviderSet | None = None

    # -- lifecycle --------------------------------------------------------------------------
    async def __aenter__(self) -> Aggregator:
        if self._own_journal is not None and not self._own_journal.is_open:
            await self._own_journal.open()  # the database first: unreachable, nothing else starts
        self.targets = resolve_targets(self.settings)
        runnable = [t for t in self.targets.values() if t.skip_reason is None]
        if self.settings.target == "live" and not runnable:
            envs = ", ".join(p.api_key_env for p in self.settings.providers.values())
            raise ConfigError("--live", f"no provider has an API key; set one of {envs}")
        if runnable and runnable[0].sandbox:
            await self._use_sandbox([t.name for t in runnable])
        await self._http.open()
        self._providers = ProviderSet(self.settings, self.targets, self._http, self.clock, self._coordinator)
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Give back our leases (closing the coordinator if ours), close the session (if ours), stop the
        sandbox (if we started it) and close our journal."""
        if self._providers is not None:
            await self._providers.aclose()
        await self._http.close()
        if self._own_journal is not None:
            await self._own_journal.close()
        if self._own_sandbox and self.sandbox is not None:
            await self.sandbox.__aexit__(None, None, None)
            self.sandbox = None
            self._own_sandbox = False

    async def _use_sandbox(self, names: list[str]) -> None:
        """Point ``names`` at the sandbox: the injected one, else one opened from the settings."""
        if self.sandbox is None:
            self.sandbox = await open_sandbox(self.settings.sandbox, names)
            self._own_sandbox = True
            log.info("sandbox.opened", base_urls=self.sandbox.base_urls, in_process=self.sandbox.in_process)
        for name in names:
            if name not in self.sandbox.base_urls:  # no emulator, or an injected sandbox without it
                self.targets[name] = ProviderTarget(name, "", None, True, "not running in this sandbox")
                continue
            self.targets[name] = ProviderTarget(name, self.sandbox.base_urls[name],
                                                SecretStr(self.sandbox.api_keys[name]), True)

    @property
    def clock(self) -> Clock:
        if self.sandbox is not None:
            return self.sandbox.clock
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
        return self.on_sandbox and self.sandbox is not None and self.sandbox.in_process

    @property
    def providers(self) -> ProviderSet:
        """Every provider's target, adapter and limits. Raises RuntimeError before ``__aenter__``."""
        if self._providers is None:
            raise RuntimeError("Aggregator is not open: use `async with Aggregator(...)`")
        return self._providers

    # -- providers --------------------------------------------------------------------------
    def adapter(self, name: str) -> ProviderAdapter:
        """The adapter of provider ``name`` (for lower-level operations). Raises ConfigError."""
        return self.providers.adapter(name)

    def _filter_provider(self, provider: str | None) -> FilterSearchProvider:
        names = [provider] if provider else [
            n for n in self.providers.runnable() if self.providers.adapter(n).capabilities.filter_search]
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

    # -- planning ---------------------------------------------------------------------------
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
        plan = self.providers.plan(request)
        return list(plan.providers), list(plan.skipped)

    def start(self, request: SearchRequest | str | None = None, /, *, policy: Policy | None = None,
              run_id: str | None = None, cache: bool | None = None, cache_ttl_s: float | None = None,
              refresh: bool = False, **fields: Any) -> SearchRun:
        """Plan a search (each provider validated once) and return its run; iterate ``run.events()``.

        ``policy`` replaces the request's ``strategy`` / ``min_results`` / ``hedge_delay_s``
        (see :mod:`aggregator.pipelines`), so a new run may not set both; its steps default to every
        planned provider. A setting its strategy would ignore is refused, in the request
        (``min_results`` under ``all``, ``hedge_delay_s`` outside ``race``) as in the policy.
        ``run_id`` continues a run the job store knows (see :meth:`resume`); its recorded request was
        checked when it started.

        The result cache (:mod:`aggregator.cache`): an identical request whose complete, successful run
        finished within ``cache_ttl_s`` real seconds (default ``[cache] ttl_s``; None there: the cache is off)
        is answered from the job store: that run's report marked ``cached``, 0 credits, no provider called.
        ``cache=False`` skips the cache (no lookup, nothing stored); ``cache=True`` requires a TTL (here or
        in the settings). ``refresh=True`` runs anew and, when the run is cacheable, replaces the entry
        (it needs no TTL). Identical concurrent requests run once (single flight, see the module).

        Raises:
            ConfigError: invalid request, provider selection or policy (naming the field, e.g.
                ``min_results`` or ``policy.steps[1].hedge_delay_s``); or ``run_id`` given on a
                sandbox this Aggregator started in this process (it does not know the jobs of the
                process that started the run); a cache argument that cannot apply (``cache_ttl_s`` not
                above 0, or given with ``cache=False``; ``refresh`` with ``cache=False``; ``cache=True``
                without a TTL; any of them with ``run_id``). Nothing has been sent.
        """
        ttl_s = _check_cache_arguments(run_id, cache, cache_ttl_s, refresh, self.settings.cache.ttl_s)
        req = self.build_request(request, **fields)
        if run_id is None:
            refuse_ignored_strategy_fields(req, policy)
        if policy is not None:
            policy.check("policy")
        plan = self.providers.plan(req)
        chosen = policy_for(req, policy, self.targets)
        if run_id is not None and self._own_sandbox and self.on_ephemeral_sandbox:
            raise ConfigError("resume", "this run would resume on a new in-process sandbox, which does not know the "
                                        "jobs of the process that started it; resume live runs (with API keys), or "
                                        "runs on a standalone sandbox (`deepsearch sandbox serve --connection-file F`, "
                                        "then DEEPSEARCH_SANDBOX=F for both the run and its resume)")
        caching = None
        if run_id is None and cache is not False and (ttl_s is not None or refresh):
            caching = CacheRequest(cache_key(req, self.providers.targets, chosen), ttl_s, refresh,
                                   self._wall_clock)
        elif run_id is None and cache is False:
            record_cache("bypass")
        return SearchRun(plan=plan, policy=chosen, providers=self.providers, store=self.job_store,
                         clock=self.clock, run_id=run_id, on_sandbox=self.on_sandbox, cache=caching)

    # -- running ----------------------------------------------------------------------------
    async def search(self, request: SearchRequest | str | None = None, /, **fields: Any) -> SearchReport:
        """Run one search on every planned provider and return the merged report.

        Accepts a :class:`SearchRequest`, a query string, and/or fields (``mode=...``), and the keyword
        arguments of :meth:`start` (``policy``, ``cache``, ``cache_ttl_s``, ``refresh``). Provider
        failures are recorded in the outcomes; call ``report`` helpers to inspect them. A report answered
        from the result cache has ``cached`` set (see :meth:`start`).

        Raises:
            ConfigError: invalid request, provider selection or cache arguments (before any network call).
        """
        return await _report_of(self._quiet(self.start(request, **fields)))

    async def resume(self, run_id: str, *, policy: Policy | None = None) -> SearchReport:
        """Continue a run recorded in the job store (a crash, Ctrl-C, a deadline) to its report.

        Jobs already submitted are polled, never submitted again; a submit whose outcome is unknown
        is resolved through the provider's idempotency key (or, for Extruct, its task list);
        fetching continues from each job's last checkpoint, and records already stored are neither
        fetched nor charged again.

        Raises:
            ConfigError: the store knows no run ``run_id``, or it cannot be resumed here (see :meth:`start`).
        """
        request = await self.recorded_request(run_id)
        return await _report_of(self._quiet(self.start(request, policy=policy, run_id=run_id)))

    @staticmethod
    def _quiet(run: SearchRun) -> AsyncGenerator[Event, None]:
        """``run``'s events for a caller that wants only its report: no progress events (nobody reads
        them; each would be built, queued and passed up the generators for nothing)."""
        run.progress = False
        return run.events()

    async def recorded_request(self, run_id: str) -> SearchRequest:
        """The request of run ``run_id`` in the job store. Raises ConfigError when it knows no such run."""
        state = await self.job_store.run(run_id)
        if state is None:
            raise ConfigError("run_id", f"no run {run_id!r} in the journal; `deepsearch runs` lists them")
        return state.request

    async def stream(
        self, request: SearchRequest | str | None = None, /, *, policy: Policy | None = None,
        run_id: str | None = None, cache: bool | None = None, cache_ttl_s: float | None = None,
        refresh: bool = False, **fields: Any,
    ) -> AsyncGenerator[Event, None]:
        """Run a search, yielding progress, hits and outcomes as they happen, then the report.

        The same arguments as :meth:`start`, which plans it; see :meth:`SearchRun.events`.

        Raises:
            ConfigError: invalid request or provider selection (before any network call).
        """
        run = self.start(request, policy=policy, run_id=run_id, cache=cache, cache_ttl_s=cache_ttl_s,
                         refresh=refresh, **fields)
        async with contextlib.aclosing(run.events()) as events:  # closing the stream closes the run at once
            async for event in events:
                yield event

    # -- batches ----------------------------------------------------------------------------------
    def batch(
        self, rows: Iterable[BatchRow | SearchRequest | Mapping[str, Any]], /, *, concurrency: int = 4,
        batch_id: str | None = None, store: BatchStore | None = None, retry_failed: bool = False,
        reports: bool = True, on_progress: Callable[[BatchProgress], None] | None = None, source: str | None = None,
        budget: float | None = None, cache_ttl_s: float | None = None,
    ) -> BatchRun:
        """Run one search per row, at most ``concurrency`` at a time: an async iterator of
        :class:`~aggregator.batch.RowResult`, one per row, in the order rows finish.

        ``rows``: rows from :func:`~aggregator.batch.validate_file`, requests, or mappings of a row's fields
        (``{"query": ..., "max_results": 20}``, ``{"email": ...}`` for a lookup). Every row is checked first
        (as :meth:`start` would plan it): nothing is sent or recorded when one cannot run. Each row's run
        is journaled in the job store, its progress in ``store`` (default: tables in the journal's file
        for a :class:`~aggregator.journal.SqliteJournal`, else in memory). The batch id defaults to a hash
        of the rows and the target, so running the same rows again continues the batch: finished rows
        are not run again (their results come first, ``ran=False``; ``retry_failed`` runs failed ones
        again), a row left running continues its run (:meth:`resume`: nothing paid twice). A row's failure
        is its result (``status="failed"``, ``error``); it never stops the batch. See
        :mod:`aggregator.batch.runner`.

        Use ``async with agg.batch(rows) as run: async for result in run: ...``; ``run.batch_id`` is set
        at once, ``run.progress`` is the latest :class:`~aggregator.batch.BatchProgress` (``on_progress``
        gets each). ``reports=False`` leaves the report of rows finished earlier unread (None). ``source``
        names where the rows came from (a file), for messages and the store. ``budget``: credits all the
        batch's rows may spend together, in this process and in any worker on the same database (reserved
        before each paid call with the account's budgets: never overshot); once spent, rows not started are
        ``failed`` ("not run: the batch's budget ... is spent"); None keeps the batch's recorded budget.
        ``cache_ttl_s``: a row starting a new run is answered from the result cache when an identical request
        completed at most this many real seconds ago (0 credits; its ``run_id`` is that run's, see :meth:`start`);
        None: ``[cache] ttl_s`` (off by default).

        Raises:
            ConfigError: ``concurrency`` below 1, ``budget`` or ``cache_ttl_s`` not above 0; on the first
                iteration, ``batch_id`` names a batch recorded with other rows or on another target.
            BatchValidationError: (a ConfigError) every row that is invalid or cannot run, with its line
                (or row number) and field; nothing was sent.
        """
        from aggregator.batch import run_batch

        resumable = not (self._own_sandbox and self.on_ephemeral_sandbox)  # see start(): jobs died with the sandbox
        return run_batch(self, rows, store, concurrency=concurrency, on_progress=on_progress, batch_id=batch_id,
                         retry_failed=retry_failed, reports=reports, can_resume=resumable, source=source,
                         budget=budget, cache_ttl_s=cache_ttl_s)


def _wall_now() -> datetime:
    return datetime.now(UTC)


def _check_cache_arguments(run_id: str | None, cache: bool | None, cache_ttl_s: float | None, refresh: bool,
                           default_ttl_s: float | None) -> float | None:
    """The TTL of a run's cache lookups (None: none), after refusing what cannot apply. Raises ConfigError."""
    if run_id is not None:
        given = [name for name, value in (("cache", cache is not None), ("cache_ttl_s", cache_ttl_s is not None),
                                          ("refresh", refresh)) if value]
        if given:
            raise ConfigError(given[0], "a resumed run continues its own jobs; the result cache does not apply "
                                        "(remove it)")
        return None
    if cache_ttl_s is not None and not cache_ttl_s > 0:
        raise ConfigError("cache_ttl_s", f"must be above 0 seconds, got {cache_ttl_s}; use cache=False to skip "
                                         "the cache")
    if cache is False:
        if refresh:
            raise ConfigError("refresh", "refresh replaces the cache entry, and cache=False skips the cache: "
                                         "give one of them")
        if cache_ttl_s is not None:
            raise ConfigError("cache_ttl_s", "cache=False skips the cache, so a TTL cannot apply: give one of them")
        return None
    ttl_s = cache_ttl_s if cache_ttl_s is not None else default_ttl_s
    if cache is True and ttl_s is None and not refresh:
        raise ConfigError("cache", "cache=True needs a TTL: pass cache_ttl_s or set [cache] ttl_s")
    return ttl_s


async def _report_of(events: AsyncGenerator[Event, None]) -> SearchReport:
    report: SearchReport | None = None
    async for event in events:
        if isinstance(event, ReportEvent):
            report = event.report
    assert report is not None
    return report
