"""The MCP tools, one method each of :class:`DeepSearchTools` over a :class:`~aggregator.mcp.state.ServerState`.

A paid tool reserves its budget from the session (:meth:`SessionCredits.reserve`), plans its run with the
library (``Aggregator.start``: every argument checked, nothing sent yet) and drives it: in the call, with a
progress notification per provider step (:func:`run_reporting_progress`), or in the background
(``start_deep_search``, ``resume_search``). The library's refusals (:class:`~aggregator.errors.ConfigError`,
a run id no run has) become tool errors ``field: problem``, as the CLI prints them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal, cast, get_args

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import Field, ValidationError

from aggregator.compare import compare
from aggregator.errors import ConfigError, ProviderError
from aggregator.events import Event, OutcomeEvent, ProgressEvent, RecordsEvent, RunStartedEvent
from aggregator.jobstore import RunIdError, RunState
from aggregator.mcp.models import (
    Budget,
    ComparisonResult,
    DeadlineS,
    FilterFieldsResult,
    FilterValuesResult,
    LookupResult,
    MaxResults,
    MinResults,
    ModeArg,
    Providers,
    Query,
    RunStatus,
    SearchResult,
    StartedSearch,
    StrategyArg,
    agent_records,
)
from aggregator.mcp.state import CANCEL_GRACE_S, ServerState
from aggregator.merge import Resolver
from aggregator.models import Person, PersonIdentity, SearchReport
from aggregator.run import SearchRun
from aggregator.scheduler import journaled_credits

__all__ = ["LOOKUP_MAX_HITS", "DeepSearchTools", "RunId", "run_reporting_progress"]

LOOKUP_MAX_HITS = 10  # as `deepsearch lookup`: a partial and a full profile of one person, a few hits at most
RunId = Annotated[str, Field(min_length=4, description="A run id, or a unique prefix of it (4+ characters).")]


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """The library's refusals as tool errors: ``field: problem``, as the CLI prints them."""
    try:
        yield
    except RunIdError as exc:
        raise ToolError(str(ConfigError("run_id", exc.problem))) from exc
    except (ConfigError, ProviderError) as exc:
        raise ToolError(str(exc)) from exc


class _ProgressFeed:
    """Turns a run's events into progress messages (one per provider phase or count change)."""

    def __init__(self) -> None:
        self.messages: asyncio.Queue[str | None] = asyncio.Queue()
        self.merged = 0
        self._seen: dict[str, tuple[str, int]] = {}

    def __call__(self, event: Event) -> None:
        if isinstance(event, RunStartedEvent):
            self.messages.put_nowait(f"run {event.run_id} {'resumed' if event.resumed else 'started'} "
                                     "(get_search and resume_search take this id)")
        elif isinstance(event, RecordsEvent):
            self.merged = event.total
        elif isinstance(event, ProgressEvent) and self._seen.get(event.provider) != (
                state := (event.phase, event.results_so_far)):
            self._seen[event.provider] = state
            self.messages.put_nowait(f"{event.provider}: {event.phase}, {event.results_so_far} results; "
                                     f"{self.merged} merged records so far")
        elif isinstance(event, OutcomeEvent):
            o = event.outcome
            self.messages.put_nowait(f"{o.provider}: {o.status}, {o.records} results, {o.credits:g} credits; "
                                     f"{self.merged} merged records so far")


async def run_reporting_progress(state: ServerState, ctx: Context[Any, Any], run: SearchRun,
                                  budget: float) -> SearchReport:
    """Drive ``run`` in a task of its own, sending a progress notification per provider step (when the
    client gave a progress token). A cancelled call cancels the run and waits until it is journaled as
    interrupted (shielded: the SDK cancels the handler's whole scope)."""
    feed = _ProgressFeed()
    task = asyncio.create_task(state.drive(run, budget, feed))
    task.add_done_callback(lambda _: feed.messages.put_nowait(None))
    step = 0
    try:
        while (message := await feed.messages.get()) is not None:
            step += 1
            await ctx.report_progress(step, None, message)
    except BaseException:
        task.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([task], timeout=CANCEL_GRACE_S)
        raise
    report = task.result()
    assert report is not None  # drive returns None only when cancelled, which raised above
    return report


def _plan(state: ServerState, requested: float | None, start: Callable[[float], SearchRun],
          ceiling: float | None = None) -> tuple[SearchRun, float]:
    """Reserve the call's budget from the session, then plan the run with it (``start(budget)``); a refused
    plan gives the reservation back. Raises ConfigError: over a cap, or an invalid request."""
    budget = state.credits.reserve(requested, ceiling)
    try:
        return start(budget), budget
    except BaseException:
        state.credits.settle(budget, 0.0)
        raise


def _search_fields(query: str, mode: str, **optional: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {"query": query, "mode": mode}
    fields.update({k: tuple(v) if isinstance(v, list) else v for k, v in optional.items() if v is not None})
    return fields


async def _resolve(state: ServerState, run_id: str) -> RunState:
    """The journaled run ``run_id`` names (a unique prefix of 4+ characters will do). Raises ConfigError."""
    resolve = getattr(state.agg.job_store, "resolve_run_id", None)
    if resolve is not None:
        run_id = await resolve(run_id)
    found = await state.agg.job_store.run(run_id)
    if found is None:
        raise ConfigError("run_id", f"no run {run_id!r} in the journal")
    return found


def _status_note(state: ServerState, run: RunState, active: bool) -> str | None:
    if run.status == "interrupted":
        if state.can_resume(run.run_id):
            return "interrupted: resume_search continues it (started jobs are polled, never paid for again)"
        return ("interrupted on an in-process sandbox that ended with the process that ran it (its jobs are "
                "gone): start the search again")
    if run.status == "running" and not active:
        return ("recorded as running, but this server is not running it: another process is, or the one that "
                "was stopped without finishing it (then resume_search continues it)")
    return None


def _so_far(state: ServerState, run: RunState) -> SearchResult:
    """A run without a report: the records its hits merge into so far, and its outcomes and credits."""
    request, active = run.request, state.active.get(run.run_id)
    resolver = Resolver(request.mode)
    resolver.add([hit for hits in run.hits.values() for hit in hits])
    outcomes = dict(active.outcomes) if active is not None else {o.provider: o for o in run.outcomes}
    credits = sum(o.credits for o in outcomes.values())
    for provider, record in run.jobs.items():
        if provider not in outcomes:
            with contextlib.suppress(ConfigError):
                credits += journaled_credits(record, state.agg.adapter(provider).cost.per_start)
    status = cast(RunStatus, run.status if run.status in get_args(RunStatus) else "running")
    return SearchResult(
        run_id=run.run_id, status=status, finished=False, active=active is not None, query=request.query,
        mode=request.mode, credits=credits, budget=request.budget, session_credits_left=state.credits.left,
        records=agent_records(resolver.records(request.max_results)), outcomes=tuple(outcomes.values()),
        note=_status_note(state, run, active is not None))


class DeepSearchTools:
    """The tools over one :class:`ServerState`: each method is one tool (its name, docstring, annotated
    arguments and result model are what clients see)."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self.agg = state.agg

    async def deep_search(self, query: Query, ctx: Context[Any, Any], mode: ModeArg = "people",
                          max_results: MaxResults = None, providers: Providers = None,
                          strategy: StrategyArg = None, min_results: MinResults = None, budget: Budget = None,
                          deadline_s: DeadlineS = None) -> SearchResult:
        """Search people or companies matching `query` across the providers and return one merged,
        de-duplicated result set: each record with the providers that found it, per-field provenance and
        consensus, and every provider's outcome. Sends progress notifications (provider phase, results so
        far) when the call has a progress token. Costs up to `budget` credits (default: the per-call cap).
        An identical search that completed within the cache TTL is answered from it: `cached` then names the
        earlier run and its age, and the call costs 0 credits."""
        with _tool_errors():
            fields = _search_fields(query, mode, max_results=max_results, providers=providers, strategy=strategy,
                                    min_results=min_results, deadline_s=deadline_s)
            ttl_s = self.agg.settings.cache.cli_ttl_s  # the CLI's default: an agent repeats itself
            run, reserved = _plan(self.state, budget, lambda b: self.agg.start(budget=b, cache_ttl_s=ttl_s, **fields))
            report = await run_reporting_progress(self.state, ctx, run, reserved)
            return SearchResult.of_report(report, reserved, self.state.credits.left)

    async def start_deep_search(self, query: Query, mode: ModeArg = "people", max_results: MaxResults = None,
                                providers: Providers = None, strategy: StrategyArg = None,
                                min_results: MinResults = None, budget: Budget = None,
                                deadline_s: DeadlineS = None) -> StartedSearch:
        """Start the same search as deep_search in the background and return its `run_id` at once; poll
        get_search with it until `finished`. For searches longer than your tool-call timeout. Costs up to
        `budget` credits (default: the per-call cap), reserved from the session now."""
        with _tool_errors():
            fields = _search_fields(query, mode, max_results=max_results, providers=providers, strategy=strategy,
                                    min_results=min_results, deadline_s=deadline_s)
            run, reserved = _plan(self.state, budget, lambda b: self.agg.start(budget=b, **fields))
            _, started = self.state.in_background(run, reserved)
            return StartedSearch(run_id=await started, budget=reserved, session_credits_left=self.state.credits.left,
                                 providers=run.plan.providers, skipped=run.plan.skipped)

    async def get_search(self, run_id: RunId) -> SearchResult:
        """A run's status (running, done, failed, interrupted), its merged records (so far, while it runs)
        and its providers' outcomes and credits, read from the journal: it works for runs of earlier
        server processes and of the CLI too. Free. `run_id` may be a unique prefix (4+ characters)."""
        with _tool_errors():
            run = await _resolve(self.state, run_id)
            if run.report is None:
                return _so_far(self.state, run)
            return SearchResult.of_report(run.report, run.request.budget, self.state.credits.left)

    async def resume_search(self, run_id: RunId) -> StartedSearch:
        """Continue an interrupted run in the background (a cancelled deep_search, a stopped server):
        started jobs are polled, never started or paid for again, and records already read are not read
        again. Returns at once; poll get_search. Costs up to the run's budget (capped per call)."""
        with _tool_errors():
            found = await _resolve(self.state, run_id)
            if found.report is not None or found.run_id in self.state.active:
                raise ConfigError("run_id", f"run {found.run_id} is {'running' if found.report is None else 'finished'}"
                                            "; get_search shows it")
            if not self.state.can_resume(found.run_id):
                raise ConfigError("run_id", f"run {found.run_id} ran on an in-process sandbox that ended with the "
                                            "process that ran it (its jobs are gone): start the search again")
            run, reserved = _plan(self.state, None, lambda b: self.agg.start(
                found.request.model_copy(update={"budget": b}), run_id=found.run_id), ceiling=found.request.budget)
            _, started = self.state.in_background(run, reserved)
            return StartedSearch(run_id=await started, budget=reserved, session_credits_left=self.state.credits.left,
                                 providers=run.plan.providers, skipped=run.plan.skipped)

    async def compare_providers(self, query: Query, ctx: Context[Any, Any], mode: ModeArg = "people",
                                max_results: MaxResults = None, providers: Providers = None, budget: Budget = None,
                                deadline_s: DeadlineS = None) -> ComparisonResult:
        """Run every capable provider on `query` and compare them: records, unique records, overlap, field
        coverage, time to first result, credits per record; plus the merged records by consensus (what
        `deepsearch compare --json` prints). Costs up to `budget` credits (default: the per-call cap)."""
        with _tool_errors():
            fields = _search_fields(query, mode, max_results=max_results, providers=providers,
                                    deadline_s=deadline_s, strategy="all")
            run, reserved = _plan(self.state, budget, lambda b: self.agg.start(budget=b, **fields))
            report = await run_reporting_progress(self.state, ctx, run, reserved)
            return ComparisonResult(run_id=report.run_id, credits=report.total_credits, budget=reserved,
                                    session_credits_left=self.state.credits.left, comparison=compare(report))

    async def lookup_person(self, ctx: Context[Any, Any], linkedin_url: str | None = None, email: str | None = None,
                            phone_number: str | None = None, profile_id: str | None = None,
                            urls: list[str] | None = None, usernames: list[str] | None = None,
                            run_shape: Literal["partial_only", "partial_plus_full", "full_generation_only"]
                            | None = None, budget: Budget = None) -> LookupResult:
        """Look up one person from identity signals (give at least one: a LinkedIn URL, email, phone, Orbit
        profile id, public URLs or usernames) and return their profile with its sources. `run_shape`
        (Orbit): a fast partial profile, partial then full (default), or only the full one. Costs up to
        `budget` credits (default: the per-call cap)."""
        with _tool_errors():
            signals = {"linkedin_url": linkedin_url, "email": email, "phone_number": phone_number,
                       "profile_id": profile_id, "urls": tuple(urls or ()), "usernames": tuple(usernames or ())}
            try:
                identity = PersonIdentity(**{k: v for k, v in signals.items() if v})
            except ValidationError as exc:
                raise ConfigError.from_validation(exc, default="identity") from None
            fields: dict[str, Any] = {"query": f"lookup {identity.describe()}", "mode": "people",
                                      "identity": identity, "max_results": LOOKUP_MAX_HITS}
            if run_shape is not None:
                fields["options"] = {"orbit": {"run_shape": run_shape}}
            run, reserved = _plan(self.state, budget, lambda b: self.agg.start(budget=b, **fields))
            report = await run_reporting_progress(self.state, ctx, run, reserved)
            best = report.records[0].entity if report.records else None
            return LookupResult(run_id=report.run_id, status="done" if report.delivered else "failed",
                                credits=report.total_credits, budget=reserved,
                                session_credits_left=self.state.credits.left,
                                person=best if isinstance(best, Person) else None,
                                records=agent_records(report.records), outcomes=report.outcomes)

    async def filter_search(self, ctx: Context[Any, Any], mode: ModeArg = "company",
                            simple_filters: dict[str, Any] | None = None, filters: dict[str, Any] | None = None,
                            max_results: MaxResults = None, budget: Budget = None) -> SearchResult:
        """Filter an index (Sixtyfour filter search) instead of a deep search: `simple_filters` (Mongo-style:
        {"hq_country_iso2": {"$eq": "US"}, "employees_count": {"$gte": 100}}) or `filters` (the DSL: {"query":
        {...}, "sort": [...], "size": N}), checked against filter_fields before the paid query. Costs up to
        `budget` credits (default: the per-call cap) per the provider's configured prices."""
        with _tool_errors():
            if simple_filters is None and filters is None:
                raise ConfigError("simple_filters", "give simple_filters, or filters (the DSL form)")
            fields = _search_fields("filter search", mode, max_results=max_results, simple_filters=simple_filters,
                                    filters=filters)
            run, reserved = _plan(self.state, budget, lambda b: self.agg.start(budget=b, **fields))
            report = await run_reporting_progress(self.state, ctx, run, reserved)
            return SearchResult.of_report(report, reserved, self.state.credits.left)

    async def filter_fields(self, mode: ModeArg = "company") -> FilterFieldsResult:
        """The fields a filter search accepts in `mode` (type, whether sortable, rangeable, nested, with top
        values), its operators and limits. Free."""
        with _tool_errors():
            return FilterFieldsResult(capabilities=await self.agg.filter_fields(mode))

    async def filter_values(self, field: Annotated[str, Field(min_length=1, description="A field filter_fields lists "
                                                                                "with top values.")],
                            mode: ModeArg = "company",
                            top_k: Annotated[int, Field(ge=1, le=100, description="How many values.")] = 25,
                            simple_filters: dict[str, Any] | None = None,
                            filters: dict[str, Any] | None = None) -> FilterValuesResult:
        """The top `top_k` (1-100) values of `field` with counts, share of the scope and a ready DSL clause,
        optionally within a scope (`simple_filters` or `filters`). Free."""
        with _tool_errors():
            values = await self.agg.filter_values(field, mode=mode, top_k=top_k, simple_filters=simple_filters,
                                             filters=filters)
            return FilterValuesResult(values=values)
