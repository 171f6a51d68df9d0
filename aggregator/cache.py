"""The result cache: an identical request asked again within a TTL is answered from the journal.

What is identical (:func:`cache_key`): a sha256 of a canonical JSON of every request field that changes
the answer — the query text normalized (Unicode NFKC, casefolded, whitespace collapsed and stripped),
mode, max_results, providers (sorted under the ``all`` strategy, where their order changes nothing;
in order otherwise: a fallback chain or a race is ordered), exclusions (each as matched, sorted, without
repeats), structured fields, identity, filters, provider options (keys sorted), strategy, min_results,
hedge delay and the run's policy — but **not** ``deadline_s`` nor ``budget`` (:data:`UNKEYED_FIELDS`),
plus where each provider that may run does run: sandbox or live, its base URL and its account
(:func:`~aggregator.coordination.account_fingerprint`, never the key). A provider that cannot run here
is keyed by why.

What is cached (:func:`cacheable`): only a complete successful run — its report delivered and every
outcome ``found`` or ``no_result`` without an error, or ``skipped`` by the plan (mode unsupported, not
running here) or as a cancelled race loser (a cancelled loser that had already returned a few hits,
``partial`` with a ``cancelled`` note and no error, is allowed too: the race kept the winner's
records, not its). Never a failed or partial outcome, nor one carrying an error: a deadline, a budget
cut, a provider error. Replaying a failure as a success is what the cache must never do.

Where (the journal, :class:`~aggregator.jobstore.JobStore`): a cacheable run's key is stored with it when
it finishes (:meth:`~aggregator.jobstore.JobStore.record_cache_key`); storing a key clears it from every
older run, so one run (the newest cacheable) answers a key: ``refresh`` runs anew and, when its run is
cacheable, replaces the entry (a refresh that fails leaves the earlier entry in place).
:meth:`~aggregator.jobstore.JobStore.cached_run` finds it when it finished within the TTL, in real
(wall-clock) seconds by the journal's clock, whatever the run's clock (the sandbox's is virtual).

A hit is **not journaled as a run**: its report is the source run's (same ``run_id``), marked
``cached`` (:class:`~aggregator.models.CacheInfo`: source run id, when it finished, age), with every
outcome's credits 0 and a note ``from the cache (run 1a2b3c4d, 42 s old)``. No provider is called.

Single flight: the lookup and the run take a lease of capacity 1 on the pool ``cache:<key>`` of the
account ``cache`` from the run's coordinator, and look up again once it is held: concurrent identical
requests (in one process, or in every process on one PostgreSQL database) run once, the others wait
and are answered from the cache. A waiter whose leader's run was not cacheable runs itself. The lease is
given back when the run ends, fails or its generator is closed.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import AsyncGenerator, Callable, Mapping
from contextlib import aclosing
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aggregator.coordination import account_fingerprint
from aggregator.events import Event, OutcomeEvent, RecordsEvent, ReportEvent, RunStartedEvent
from aggregator.exclusions import parse_exclusion
from aggregator.jobstore import SHORT_RUN_ID, RunState
from aggregator.log import get_logger
from aggregator.models import CacheInfo, ProviderOutcome, SearchReport, SearchRequest
from aggregator.telemetry import record_cache

if TYPE_CHECKING:
    from aggregator.pipelines import Policy
    from aggregator.run import SearchRun
    from aggregator.targets import ProviderTarget

__all__ = [
    "CACHE_ACCOUNT",
    "KEYED_FIELDS",
    "UNKEYED_FIELDS",
    "CacheRequest",
    "cache_age",
    "cache_events",
    "cache_key",
    "cacheable",
    "cached_report",
    "normalize_text",
]

log = get_logger("aggregator.cache")

CACHE_ACCOUNT = "cache"
"""The coordinator account whose lease pools (``cache:<key>``) make identical requests run once."""

UNKEYED_FIELDS = frozenset({"deadline_s", "budget"})
"""Request fields that do not change the answer of a complete run (a run they would have cut short is
not cached), so they are left out of the key."""

KEYED_FIELDS = ("query", "mode", "max_results", "providers", "strategy", "min_results", "hedge_delay_s",
                "exclude", "titles", "companies", "locations", "schools", "identity", "simple_filters",
                "filters", "options")
"""Every other :class:`~aggregator.models.SearchRequest` field, each reviewed for how it is normalized.
A field added to the request is keyed as it is dumped (safe: never a false hit), and a test fails until it
is listed here or in :data:`UNKEYED_FIELDS`."""

_SPACE = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Text as keyed: Unicode NFKC, casefolded, runs of whitespace collapsed to one space, stripped."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def cache_key(request: SearchRequest, targets: Mapping[str, ProviderTarget], policy: Policy | None = None) -> str:
    """The cache key of ``request`` run with ``policy`` on ``targets``: 64 hex characters (sha256).

    ``targets`` are the Aggregator's (``ProviderSet.targets``); those the request may use are keyed by
    where they run (sandbox or live, base URL, account fingerprint) or why they cannot. ``policy`` is the
    run's (:func:`aggregator.run.policy_for`); None keys the request's own strategy fields only.
    """
    data = request.model_dump(mode="json", exclude=set(UNKEYED_FIELDS))
    data["query"] = normalize_text(request.query)
    for name in ("titles", "companies", "locations", "schools"):
        data[name] = [normalize_text(value) for value in getattr(request, name)]
    strategy = policy.strategy if policy is not None else request.strategy
    if request.providers is not None and strategy == "all":
        data["providers"] = sorted(request.providers)
    excluded = {(e.kind, e.key) for e in (parse_exclusion(item, request.mode) for item in request.exclude)}
    data["exclude"] = sorted(excluded)
    data["policy"] = policy.model_dump() if policy is not None else None  # its sets are sorted when dumped
    wanted = request.providers or tuple(targets)
    data["targets"] = {name: _where(targets[name]) for name in sorted(wanted) if name in targets}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_sorted_set)
    return hashlib.sha256(text.encode()).hexdigest()


def _where(target: ProviderTarget) -> dict[str, Any]:
    if target.skip_reason:
        return {"skipped": target.skip_reason}
    return {"sandbox": target.sandbox, "base_url": target.base_url.rstrip("/"),
            "account": account_fingerprint(target.name, target.api_key)}


def _sorted_set(value: Any) -> Any:
    """Sets in sorted order: their iteration order changes with the process's string hash seed."""
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    raise TypeError(f"cannot key a {type(value).__name__}")


def _outcome_cacheable(outcome: ProviderOutcome, answered_by: tuple[str, ...]) -> bool:
    if outcome.error is not None:
        return False
    if outcome.status in ("found", "no_result", "skipped"):
        return True  # skipped: by the plan, or a race loser cancelled before it returned anything
    cancelled = (outcome.note or "").startswith("cancelled")
    return outcome.status == "partial" and cancelled and outcome.provider not in answered_by


def cacheable(report: SearchReport | None) -> bool:
    """Whether a finished run's ``report`` may answer later identical requests (see the module docstring).

    True when the report delivered and every outcome is ``found`` / ``no_result`` without an error,
    ``skipped`` (by the plan, or a race loser cancelled before it returned hits), or a race loser cancelled
    after it returned some (``partial``, note ``cancelled``, no error, not among ``answered_by``). False
    for no report, a report from the cache, or any failed, partial or erroring outcome (deadline, budget).
    """
    if report is None or report.cached is not None or not report.delivered:
        return False
    return all(_outcome_cacheable(o, report.answered_by) for o in report.outcomes)


def cache_age(seconds: float) -> str:
    """An age for people: ``42 s``, ``12 min``, ``3.5 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cached_report(state: RunState, now: datetime) -> SearchReport:
    """The report of ``state`` (a cached run) as an answer at wall time ``now``: marked ``cached`` with its
    source run and age, every outcome's credits 0 with a note ``from the cache (run <short id>, <age> old)``."""
    assert state.report is not None
    finished = state.finished_at or now
    age_s = max(0.0, (now - finished).total_seconds())
    note = f"from the cache (run {state.run_id[:SHORT_RUN_ID]}, {cache_age(age_s)} old)"
    outcomes = tuple(o.model_copy(update={"credits": 0.0, "note": "; ".join(filter(None, (note, o.note)))})
                     for o in state.report.outcomes)
    return state.report.model_copy(update={
        "outcomes": outcomes, "cached": CacheInfo(run_id=state.run_id, cached_at=finished, age_s=age_s)})


def _wall_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class CacheRequest:
    """How one run uses the cache: its ``key``, the TTL of a lookup (real seconds; None: no lookup, only
    store) and whether it ``refresh``-es (runs anew, then replaces the entry). ``now`` is the wall clock
    (UTC) that entries' ages are measured with, against the wall-clock time the journal stamped their runs'
    finish with (the Aggregator's ``wall_clock``; the same clock as the journal's in tests)."""

    key: str
    ttl_s: float | None
    refresh: bool = False
    now: Callable[[], datetime] = field(default=_wall_now, compare=False)

    @property
    def looks_up(self) -> bool:
        return self.ttl_s is not None and not self.refresh


async def _lookup(run: SearchRun, cache: CacheRequest) -> SearchReport | None:
    if not cache.looks_up:
        return None
    assert cache.ttl_s is not None
    now = cache.now()
    state = await run.store.cached_run(cache.key, cache.ttl_s, now)
    if state is None or state.report is None:
        return None
    return cached_report(state, now)


async def _replay(report: SearchReport) -> AsyncGenerator[Event, None]:
    yield RunStartedEvent(report.run_id, False)
    for outcome in report.outcomes:
        yield OutcomeEvent(outcome)
    yield RecordsEvent(report.records, (), len(report.records))
    yield ReportEvent(report)


async def cache_events(run: SearchRun, cache: CacheRequest, events: Callable[[], AsyncGenerator[Event, None]],
                       ) -> AsyncGenerator[Event, None]:
    """``run``'s events through the cache: a fresh cached answer (RunStartedEvent with the source run's id,
    its outcomes, its records, the marked report), else ``events()`` (the run itself) under the single-flight
    lease, its key stored when the run is :func:`cacheable`."""
    report = await _lookup(run, cache)  # a hit needs no lease: nothing runs
    if report is not None:
        record_cache("hit")
        async for event in _replay(report):
            yield event
        return
    pool = run.providers.coordinator.lease_pool(CACHE_ACCOUNT, f"cache:{cache.key}", 1, run.clock)
    lease = await pool.acquire()
    try:
        report = await _lookup(run, cache)  # an identical request may have just finished
        if report is not None:
            record_cache("waited")
            record_cache("hit")
            async for event in _replay(report):
                yield event
            return
        record_cache("refresh" if cache.refresh else "miss")
        final: SearchReport | None = None
        async with aclosing(events()) as running:  # closed with us: the run is marked interrupted at once
            async for event in running:
                if isinstance(event, ReportEvent):
                    final = event.report
                    if cacheable(final):  # stored before the report is handed on: a waiter finds it at once
                        await run.store.record_cache_key(final.run_id, cache.key)
                        record_cache("stored")
                yield event
        if final is not None and not cacheable(final):
            log.info("cache.not_stored", run_id=final.run_id, reason="incomplete or failed run")
    finally:
        await pool.release(lease)
        run.providers.coordinator.drop_idle_pool(CACHE_ACCOUNT, f"cache:{cache.key}")  # one pool per key
