"""The fault soak: hundreds of searches against emulators that misbehave, checked against a clean pass.

``deepsearch soak`` (or :func:`run_soak`) runs one deterministic list of distinct people and
company queries, each pass in this process on a fresh in-process sandbox (same seed, same world)
with one :class:`~aggregator.Aggregator` (one HTTP session) running ``concurrency`` searches at a
time over every provider that supports the mode (people: Sixtyfour + Orbit; company: Sixtyfour +
Extruct):

1. a fault-free pass: the reference;
2. a faulty pass: every emulator injects, on every API route and each with probability
   ``fault_rate`` per call, ``http_5xx`` (no Retry-After: backoff), ``http_429`` with
   ``Retry-After``, ``reset`` (connection aborted before the handler), ``slow`` (answers late) and
   ``malformed_json`` (the handler runs, the body is cut in half); on the job-start routes also
   ``reset`` and ``http_5xx`` *after* the handler ran (the job started, the answer was lost: what
   idempotency keys, and Extruct's task-list recovery, are for);
3. a deadline pass: the first ``DEADLINE_PASS_SEARCHES`` queries with the same faults plus very
   slow answers and a short deadline, so searches are cut off while waiting for a job slot, a
   retry, a rate-limit bucket or a response.

Every pass is checked against the reference (see :mod:`aggregator.bench.soak_report`): every
search ends (found / partial / failed with a reason), none past its deadline, no record lost or
duplicated, no paid start duplicated (``/_sandbox/stats``), no unclosed session or leaked task.
Times are virtual seconds (the sandbox clock) except ``wall_s``/``cpu_s`` (real).

Circuit breakers (``[breaker]``, default settings) stay on: at the default fault rates no circuit
should open (the table says how many did); ``deepsearch bench --only breaker`` is the outage pass that
makes one open and close (:mod:`aggregator.bench.breaker`).

Fewer retries than faults is expected: ``slow`` answers are not errors, and aiohttp itself
re-sends a GET once when the server drops a kept-alive connection before answering.

Usage::

    deepsearch soak --searches 500                     # the long soak: ~2 minutes on 2 cores
    deepsearch soak --searches 40 --fault-rate 0.05 --json soak.json

Exit code 0 when every check passed, 1 otherwise (the table lists each problem).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import random
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import aiohttp
import click
import orjson
from rich.console import Console

from aggregator.bench.soak_report import (
    PassResult,
    ProviderRun,
    SearchRun,
    SoakReport,
    check_pass,
    check_reference,
)
from aggregator.config import load_settings
from aggregator.core import Aggregator
from aggregator.events import HitsEvent, ReportEvent, RunStartedEvent
from aggregator.models import Hit, Mode, SearchReport
from aggregator.resolution import features, identity_key
from providers.sandbox.faults import FaultRule
from providers.sandbox.runner import Sandbox, SandboxConfig
from providers.sandbox.vocab import CITIES

__all__ = ["SoakConfig", "SoakQuery", "fault_rules", "run_pass", "run_soak", "soak", "soak_queries"]



def soaked_providers() -> tuple[str, ...]:
    """The registered providers with an emulator and a paid start route (their specs say so)."""
    from providers import REGISTRY

    return tuple(n for n, spec in REGISTRY.items() if spec.emulator is not None and spec.start_route)


def start_route(provider: str) -> str:
    """The route key of ``provider``'s paid job start (its spec's ``start_route``)."""
    from providers import REGISTRY

    route = REGISTRY[provider].start_route
    assert route is not None, f"{provider} declares no start_route"
    return route

ROLES = ("CTO", "CEO", "CFO", "COO", "VP of Engineering", "VP of Sales", "VP of Marketing", "VP of Product",
         "Head of Product", "Head of Engineering", "Head of Growth", "Director of Engineering",
         "Director of Sales", "Engineering Manager", "Product Manager", "Senior Software Engineer",
         "Data Scientist", "Recruiter", "Account Executive", "Product Designer")
STAGES = ("Seed", "Series A", "Series B", "Series C", "Public")
TOPICS = ("SaaS", "fintech", "logistics", "devtools", "ai", "analytics", "healthtech", "cybersecurity",
          "e-commerce", "edtech", "proptech", "payments", "marketplace", "hr tech")
DEADLINE_TOLERANCE_REAL_S = 0.25  # event-loop latency a search may end past its deadline, real seconds
HANG_MARGIN_REAL_S = 30.0  # real seconds past its deadline (beyond the core's grace) a search counts as hung
DEADLINE_PASS_SEARCHES = 24
DEADLINE_PASS_S = 120.0  # virtual seconds: shorter than most searches once answers are slow
DEADLINE_PASS_SLOW = (0.25, 250.0)  # probability per call, delay in virtual seconds (> the deadline)


@dataclass(frozen=True)
class SoakQuery:
    """One search of the soak: ``index`` (0-based), the query text and its mode."""

    index: int
    query: str
    mode: Mode


@dataclass(frozen=True)
class SoakConfig:
    """How each pass runs. ``time_scale``: wall seconds per virtual second; ``deadline_s`` virtual."""

    seed: int = 7
    concurrency: int = 16
    time_scale: float = 0.005
    n_companies: int = 4000
    max_results: int = 20
    deadline_s: float = 1800.0


def soak_queries(count: int, seed: int) -> list[SoakQuery]:
    """``count`` distinct queries, alternating people and company, in a seeded order.

    People: ``"<role> in <city>"``; company: ``"<stage> <topic> companies in <city>"``. Distinct
    queries keep a lost Extruct create (no idempotency key) from matching another search's task.

    Raises:
        ValueError: ``count`` below 1 or above the number of distinct queries (1800).
    """
    rng = random.Random(f"soak:{seed}")
    cities = [c.name for c in CITIES]
    people = [f"{role} in {city}" for role in ROLES for city in cities]
    companies = [f"{stage} {topic} companies in {city}" for stage in STAGES for topic in TOPICS for city in cities]
    limit = 2 * min(len(people), len(companies))
    if not 1 <= count <= limit:
        raise ValueError(f"searches must be 1..{limit}, got {count}")
    rng.shuffle(people)
    rng.shuffle(companies)
    pools = (people, companies)
    return [SoakQuery(i, pools[i % 2][i // 2], "people" if i % 2 == 0 else "company") for i in range(count)]


def fault_rules(rate: float, providers: Sequence[str] | None = None, *, retry_after_s: float = 2.0,
                slow_s: float = 5.0) -> tuple[FaultRule, ...]:
    """The soak's fault rules for ``providers``, each firing with probability ``rate`` per call.

    ``retry_after_s`` is the 429's ``Retry-After`` and ``slow_s`` the delay of slow answers
    (virtual seconds). The kinds are listed in the module docstring.
    """
    rules: list[FaultRule] = []
    for name in soaked_providers() if providers is None else providers:
        start = start_route(name)
        rules += [
            FaultRule(name, start, "reset", rate, after_handler=True),
            FaultRule(name, start, "http_5xx", rate, status=502, retry_after_s=None, after_handler=True),
            FaultRule(name, "*", "http_5xx", rate, status=503, retry_after_s=None),
            FaultRule(name, "*", "http_429", rate, retry_after_s=retry_after_s),
            FaultRule(name, "*", "reset", rate),
            FaultRule(name, "*", "slow", rate, delay_s=slow_s),
            FaultRule(name, "*", "malformed_json", rate),
        ]
    return tuple(rules)


def _deadline_faults(rate: float) -> tuple[FaultRule, ...]:
    chance, delay_s = DEADLINE_PASS_SLOW
    slow = tuple(FaultRule(name, "*", "slow", chance, delay_s=delay_s) for name in soaked_providers())
    return slow + fault_rules(rate)


def _fired(sandbox: Sandbox) -> dict[str, dict[str, int]]:
    counts: dict[str, dict[str, int]] = {}
    for rule, fired in sandbox.faults.fired():
        kind = f"{rule.kind}_after" if rule.after_handler else rule.kind
        per = counts.setdefault(rule.provider, {})
        per[kind] = per.get(kind, 0) + fired
    return counts


async def _fill(agg: Aggregator, run: SearchRun, run_id: str, report: SearchReport,
                hits: dict[str, list[Hit]]) -> None:
    for outcome in report.outcomes:
        if outcome.status == "skipped" and outcome.error is None:
            continue  # the provider does not support the mode: never asked
        error, got = outcome.error, hits.get(outcome.provider, [])
        run.providers[outcome.provider] = ProviderRun(
            provider=outcome.provider, status=outcome.status, job_id=outcome.job_id,
            submit_sent=await agg.job_store.get(run_id, outcome.provider) is not None,
            error=f"{error.type}: {error.message}" if error else None,
            error_endpoint=error.endpoint if error else None, note=outcome.note,
            hit_ids=[h.provider_record_id for h in got],
            keys=[identity_key([features(h)]) or f"id:{h.provider_record_id}" for h in got])
    run.elapsed_s = report.elapsed_s
    run.record_ids = [r.record_id for r in report.records]
    if not report.delivered:
        run.status = "failed"
    else:
        complete = bool(run.providers) and all(p.completed for p in run.providers.values())
        run.status = "found" if complete else "partial"


async def _search(agg: Aggregator, query: SoakQuery, cfg: SoakConfig, gate: asyncio.Semaphore) -> SearchRun:
    """One search through ``agg.stream``; ``hung`` if it has no report long after its deadline."""
    run = SearchRun(query.index, query.query, query.mode, cfg.deadline_s)
    hits: dict[str, list[Hit]] = {}
    run_id = ""
    hang_after_s = cfg.deadline_s * agg.clock.scale + HANG_MARGIN_REAL_S
    async with gate:
        try:
            async with asyncio.timeout(hang_after_s):
                stream = agg.stream(query.query, mode=query.mode, max_results=cfg.max_results,
                                    deadline_s=cfg.deadline_s)
                async with contextlib.aclosing(stream):
                    async for event in stream:
                        if isinstance(event, RunStartedEvent):
                            run_id = event.run_id
                        elif isinstance(event, HitsEvent):
                            hits.setdefault(event.provider, []).extend(event.hits)
                        elif isinstance(event, ReportEvent):
                            await _fill(agg, run, run_id, event.report, hits)
        except TimeoutError:
            run.status = "hung"
    return run


def _open_sessions() -> set[int]:
    gc.collect()
    return {id(o) for o in gc.get_objects() if isinstance(o, aiohttp.ClientSession) and not o.closed}


def _retries(agg: Aggregator) -> dict[str, int]:
    """Retries per provider client over the whole pass (outcomes carry the client's running total)."""
    return {p: int(getattr(getattr(agg.adapter(p).client, "stats", None), "retries", 0)) for p in soaked_providers()}


async def run_pass(queries: Sequence[SoakQuery], faults: tuple[FaultRule, ...], cfg: SoakConfig) -> PassResult:
    """Run ``queries`` on a fresh sandbox injecting ``faults``, then probe for leaks.

    Leaks are what this pass left behind: asyncio tasks and open ``aiohttp.ClientSession`` objects
    that did not exist before it, and ResourceWarnings raised during it.
    """
    tasks_before, sessions_before = set(asyncio.all_tasks()), _open_sessions()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    sandbox_config = SandboxConfig(time_scale=cfg.time_scale, seed=cfg.seed, n_companies=cfg.n_companies,
                                   providers=soaked_providers(), faults=faults)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        async with Sandbox(sandbox_config) as sandbox, Aggregator(load_settings(env={}), sandbox=sandbox) as agg:
            gate = asyncio.Semaphore(cfg.concurrency)
            searches = await asyncio.gather(*(_search(agg, q, cfg, gate) for q in queries))
            retries, stats, fired = _retries(agg), sandbox.stats(), _fired(sandbox)
            opened = {p: breaker.opened for p in soaked_providers() if (breaker := agg.providers.breaker(p))}
        wall_s, cpu_s = time.perf_counter() - wall0, time.process_time() - cpu0
        for _ in range(3):  # let closed transports run their last callbacks
            await asyncio.sleep(0)
        leaked = [f"{t.get_name()}: {t.get_coro()!r}" for t in asyncio.all_tasks()
                  if t not in tasks_before and t is not asyncio.current_task()]
        unclosed = len(_open_sessions() - sessions_before)
    notes = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    return PassResult(searches=list(searches), stats=stats, faults=fired, retries=retries, wall_s=wall_s,
                      cpu_s=cpu_s, unclosed_sessions=unclosed, leaked_tasks=leaked, warnings=notes,
                      circuits_opened=opened)


async def run_soak(searches: int, fault_rate: float, seed: int, concurrency: int, *, time_scale: float = 0.005,
                   max_results: int = 20, deadline_s: float = 1800.0, n_companies: int = 4000,
                   deadline_pass: bool = True) -> SoakReport:
    """Run the soak's passes (fault-free, faulty, deadline) and check them; see the module docstring.

    Args:
        searches: searches per pass (alternating people and company), 1..1800.
        fault_rate: probability per API call of each fault kind, ``0 <= x < 1`` (0.03 = 3 %).
        seed: world, query order and fault draws.
        concurrency: searches in flight at once (one Aggregator, one HTTP session), >= 1.
        time_scale: wall seconds per virtual second of the sandbox, ``0 < x <= 1``.
        max_results: per search. deadline_s: per search, virtual seconds (the deadline pass uses
            its own, :data:`DEADLINE_PASS_S`).
        n_companies: size of the synthetic world.
        deadline_pass: run the third pass.

    Returns:
        The :class:`~aggregator.bench.soak_report.SoakReport`; ``ok`` is False when a check failed.

    Raises:
        ValueError: an argument out of range.
    """
    if not 0 <= fault_rate < 1 or concurrency < 1 or max_results < 1 or deadline_s <= 0 or not 0 < time_scale <= 1:
        raise ValueError("need 0 <= fault_rate < 1, concurrency >= 1, max_results >= 1, deadline_s > 0, "
                         "0 < time_scale <= 1")
    queries = soak_queries(searches, seed)
    cfg = SoakConfig(seed, concurrency, time_scale, n_companies, max_results, deadline_s)
    tolerance_s = DEADLINE_TOLERANCE_REAL_S / time_scale
    problems: list[str] = []
    explained: list[str] = []
    reference = await run_pass(queries, (), cfg)
    faulty = await run_pass(queries, fault_rules(fault_rate), cfg)
    report = SoakReport(
        fault_rate=fault_rate, seed=seed, concurrency=concurrency, time_scale=time_scale,
        deadline_tolerance_s=tolerance_s, reference=check_reference(reference, problems),
        faulty=check_pass(reference, faulty, tolerance_s=tolerance_s, label="faulty pass",
                          problems=problems, explained=explained),
        problems=problems, explained=explained)
    if deadline_pass:
        cut = await run_pass(queries[:DEADLINE_PASS_SEARCHES], _deadline_faults(fault_rate),
                             replace(cfg, deadline_s=DEADLINE_PASS_S))
        report.deadline = check_pass(reference, cut, tolerance_s=tolerance_s, label="deadline pass",
                                     problems=problems, explained=explained)
    return report


@contextlib.contextmanager
def _quiet_logs() -> Iterator[None]:
    """Hide the expected retries and failures (stdlib logging); errors (bugs) still show."""
    levels = {"aggregator": logging.ERROR, "providers": logging.ERROR, "aiohttp": logging.CRITICAL}
    saved = {name: logging.getLogger(name).level for name in levels}
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    try:
        yield
    finally:
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


QUICK_OUTAGE_BELOW = 100  # a soak of fewer searches runs the outage pass at its quick sizes


@click.command("soak")
@click.option("--searches", type=click.IntRange(1, 1800), default=200, show_default=True,
              help="Searches per pass (alternating people and company queries).")
@click.option("--fault-rate", type=click.FloatRange(0, 1, max_open=True), default=0.03, show_default=True,
              help="Probability per API call of each fault kind.")
@click.option("--seed", type=int, default=7, show_default=True, help="World, query order and fault draws.")
@click.option("--concurrency", type=click.IntRange(1, 1000), default=16, show_default=True,
              help="Searches in flight at once.")
@click.option("--time-scale", type=click.FloatRange(0, 1, min_open=True), default=0.005, show_default=True,
              help="Wall seconds per virtual second of the sandbox.")
@click.option("--max-results", type=click.IntRange(1, 5000), default=20, show_default=True,
              help="Per search.")
@click.option("--deadline", "deadline_s", type=click.FloatRange(0, min_open=True), default=1800.0,
              show_default=True, help="Per-search deadline of the fault-free and faulty passes, virtual seconds.")
@click.option("--n-companies", type=click.IntRange(50, 100_000), default=4000, show_default=True,
              help="Size of the synthetic world.")
@click.option("--deadline-pass/--no-deadline-pass", default=True, show_default=True,
              help="Also run the short-deadline pass.")
@click.option("--outage-pass/--no-outage-pass", default=True, show_default=True,
              help="Also run the outage pass: one provider fails every call for a window of virtual time, with "
                   "circuit breakers and without (`deepsearch bench --only breaker`).")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the report as JSON to this file.")
def soak(searches: int, fault_rate: float, seed: int, concurrency: int, time_scale: float, max_results: int,
         deadline_s: float, n_companies: int, deadline_pass: bool, outage_pass: bool, json_path: Path | None) -> None:
    """Soak the provider emulators with faults: nothing may hang, be lost, duplicated or paid twice.

    Runs SEARCHES people and company searches on the in-process sandbox, fault-free, then with
    5xx, 429 + Retry-After, connection resets (also after a job started), slow answers and
    malformed JSON injected at FAULT-RATE each, then a short-deadline pass, and checks each against
    the fault-free pass; then the outage pass: Orbit fails every call for 200 virtual seconds while
    searches keep coming, once with circuit breakers and once without, showing the circuit open, the
    retries it saves and the circuit close (:mod:`aggregator.bench.breaker`; its quick sizes below 100
    searches). Prints a table (and --json
    FILE); exit code 0 when every check passed, 1 otherwise. The long soak: `deepsearch soak --searches 500`
    (~2 minutes on 2 cores).
    """
    from aggregator.bench.breaker import BreakerBenchConfig, run_breaker_bench
    from aggregator.bench.cli import result_table

    with _quiet_logs():
        report = asyncio.run(run_soak(searches, fault_rate, seed, concurrency, time_scale=time_scale,
                                      max_results=max_results, deadline_s=deadline_s, n_companies=n_companies,
                                      deadline_pass=deadline_pass))
        sizes = BreakerBenchConfig() if searches >= QUICK_OUTAGE_BELOW else BreakerBenchConfig.quick()
        outage = asyncio.run(run_breaker_bench(replace(sizes, seed=seed))) if outage_pass else None
    click.echo(report.table())
    if outage is not None:
        Console(width=140).print(result_table(outage))
    doc = report.to_json()
    doc["outage"] = outage.to_json() if outage is not None else None
    if json_path is not None:
        json_path.write_bytes(orjson.dumps(doc, option=orjson.OPT_INDENT_2))
        click.echo(f"wrote {json_path}")
    raise SystemExit(0 if report.ok and (outage is None or outage.passed is not False) else 1)


if __name__ == "__main__":  # python -m aggregator.bench.soak
    soak()
