"""Coordination cost: what taking a request's limits, a job slot and a budget reservation costs, in
process and on PostgreSQL (issue 16, item 2).

Each implementation runs the same operations through the library's own code paths, sequentially (one
at a time: the cost of one operation, not of queueing behind others), with limits lifted so nothing
ever waits for a window:

- ``slot``: :meth:`ProviderLimiter.slot` of Sixtyfour's ``POST /search/query`` (two buckets: the
  query window and the general window) entered and left: one request's rate-limit coordination
  (on PostgreSQL: one round trip to take both buckets; the stamp is written in the background, and
  competes with the next acquire for the server). Windows are 0.25 s, so that the stamps inside one
  stay as many as a documented limit allows (200-500), whatever the rate measured;
- ``job slot``: :meth:`ProviderLimiter.job_slot` taken and given back (a lease);
- ``budget``: an account budget's reserve then settle (one paid call's budget coordination);
- ``round trip`` (PostgreSQL only): ``SELECT 1`` on a pooled connection, the floor of the others.

Reported per implementation and operation: p50 and p99 in milliseconds (real time, ``perf_counter``).
PostgreSQL is measured when a database is configured (``database_url``, default
``DEEPSEARCH_DATABASE_URL``) and migrated (``deepsearch db migrate``); the benchmark's rows live under
an account of their own (``bench-<random>``), never a real key's. Without one, only the in-process
numbers are reported (a note says why).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

from aggregator.bench.common import BenchResult, Metric
from aggregator.clock import SystemClock
from aggregator.config import DATABASE_URL_ENV
from aggregator.contract import Limits, RateLimitSpec
from aggregator.coordination import AccountBudget, Coordinator, InProcessCoordinator
from aggregator.errors import DatabaseError
from aggregator.limits import ProviderLimiter

__all__ = ["CoordinationConfig", "measure", "run", "run_coordination"]

QUERY = "POST /search/query"
LIFTED = 10**9  # requests per window: nothing waits, only the coordination is measured
WINDOW_S = 0.25  # short windows keep the stamps inside one (~ops/s x 0.25) near a documented limit's 200-500


@dataclass(frozen=True)
class CoordinationConfig:
    """How many of each operation to time (after ``warmup`` untimed ones) and where PostgreSQL is."""

    operations: int = 2000
    warmup: int = 50
    database_url: str | None = None  # default: $DEEPSEARCH_DATABASE_URL; none: in process only

    @classmethod
    def quick(cls) -> CoordinationConfig:
        return cls(operations=200, warmup=10)


def _percentiles(samples_s: list[float]) -> dict[str, float]:
    ordered = sorted(samples_s)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0

    return {"p50_ms": round(at(0.50), 4), "p99_ms": round(at(0.99), 4), "n": len(ordered)}


async def _timed(operation: Callable[[], Awaitable[None]], n: int, warmup: int) -> dict[str, float]:
    for _ in range(warmup):
        await operation()
    samples = []
    for _ in range(n):
        started = time.perf_counter()
        await operation()
        samples.append(time.perf_counter() - started)
    return _percentiles(samples)


async def measure(coordinator: Coordinator, operations: int = 2000, warmup: int = 50) -> dict[str, dict[str, float]]:
    """p50/p99 (ms) of one request slot, one job slot and one budget reservation through ``coordinator``.

    Raises:
        CoordinationUnavailableError, DatabaseSchemaError: a PostgreSQL coordinator cannot be used.
    """
    clock = SystemClock()
    account = f"bench-{uuid.uuid4().hex[:12]}"
    limits = Limits(rate_limits=(RateLimitSpec("query", LIFTED, WINDOW_S, (QUERY,)),
                                 RateLimitSpec("general", LIFTED, WINDOW_S, ("*",))), max_concurrent_jobs=5)
    limiter = ProviderLimiter("sixtyfour", limits, clock, coordinator=coordinator, account=account)
    budget = AccountBudget.of(coordinator, "sixtyfour", account, float(LIFTED), "day", clock)

    async def slot() -> None:
        async with limiter.slot(QUERY):
            pass

    async def job_slot() -> None:
        async with limiter.job_slot():
            pass

    async def reservation() -> None:
        hold = await budget.reserve(1.0)
        assert hold is not None  # the account's scope always applies
        await budget.settle(hold, 1.0)

    measured = {"slot": await _timed(slot, operations, warmup),
                "job slot": await _timed(job_slot, operations, warmup),
                "budget": await _timed(reservation, operations, warmup)}
    ping = getattr(coordinator, "ping", None)
    if ping is not None:  # the floor: one pooled round trip (SELECT 1)
        measured["round trip"] = await _timed(ping, operations, warmup)
    return measured


async def run_coordination(cfg: CoordinationConfig | None = None) -> BenchResult:
    """Both implementations (PostgreSQL when configured), as a :class:`BenchResult`."""
    cfg = cfg or CoordinationConfig()
    started = time.perf_counter()
    results: dict[str, dict[str, dict[str, float]] | None] = {
        "in-process": await measure(InProcessCoordinator(), cfg.operations, cfg.warmup)}
    notes = [f"{cfg.operations} of each operation, one at a time, after {cfg.warmup} untimed; limits lifted"]
    url = cfg.database_url or os.environ.get(DATABASE_URL_ENV, "").strip() or None
    results["postgresql"] = None
    if url is None:
        notes.append(f"PostgreSQL not measured: set {DATABASE_URL_ENV} to a migrated database")
    else:
        from aggregator.coordination.postgres import PostgresCoordinator

        coordinator = PostgresCoordinator(url)
        try:
            results["postgresql"] = await measure(coordinator, cfg.operations, cfg.warmup)
            notes.append(f"PostgreSQL at {coordinator.address}")
        except DatabaseError as exc:  # unreachable, or not migrated
            notes.append(f"PostgreSQL not measured: {exc}")
        finally:
            await coordinator.aclose()
    metrics = [Metric(f"{impl} {op} {stat.removesuffix('_ms')}", numbers[stat], "ms")
               for impl, measured in results.items() if measured is not None
               for op, numbers in measured.items() for stat in ("p50_ms", "p99_ms")]
    return BenchResult(name="coordination",
                       title="Coordination cost (p50/p99 ms: in process, PostgreSQL)",
                       metrics=metrics, wall_s=time.perf_counter() - started, notes=notes,
                       details={"config": {**asdict(cfg), "database_url": None}, "results": results})


def run(operations: int = 2000, database_url: str | None = None) -> dict[str, Any]:
    """:func:`run_coordination` in a fresh event loop; returns ``{"in-process": {op: {"p50_ms",
    "p99_ms", "n"}}, "postgresql": {...} or None}`` (ops: ``slot``, ``job slot``, ``budget``)."""
    result = asyncio.run(run_coordination(CoordinationConfig(operations=operations, database_url=database_url)))
    return dict(result.details["results"])
