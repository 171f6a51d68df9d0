"""The benchmark suite: every benchmark by name, run in one process, results as one JSON document.

::

    doc = run_benchmarks(["ratelimit"], quick=True)       # or None for all, in BENCHMARKS order
    doc["benchmarks"]["ratelimit"]["metrics"][0]["value"]

Document shape::

    {"quick": false, "started_at": "2026-...Z", "wall_s": 312.4,           # real seconds, whole suite
     "machine": {"python": "3.11.7", "cores": 2, "load_average_before": [1.2, 0.9, 0.7],
                 "load_average_after": [...]},                          # other processes' load
     "passed": true,                                                   # every checked target met
     "benchmarks": {"overhead": <BenchResult.to_json()>, ...}}

Each benchmark's module docstring says what it measures and how; ``quick`` runs small sizes at a
small time scale (seconds, for tests and CI): its numbers check the machinery, not the targets.
"""

from __future__ import annotations

import asyncio
import os
import platform
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from aggregator.bench.batch import BatchBenchConfig, run_batch_bench
from aggregator.bench.breaker import BreakerBenchConfig, run_breaker_bench
from aggregator.bench.cache import CacheBenchConfig, run_cache_bench
from aggregator.bench.common import BenchResult, cores
from aggregator.bench.coordination import CoordinationConfig, run_coordination
from aggregator.bench.fanout import FanoutConfig, run_fanout
from aggregator.bench.kill import KillBenchConfig, run_kill_bench
from aggregator.bench.merging import MergingConfig, run_merging
from aggregator.bench.normalize import NormalizeConfig, run_normalize
from aggregator.bench.overhead import OverheadConfig, run_overhead
from aggregator.bench.ratelimit import RateLimitConfig, run_ratelimit
from aggregator.bench.resolution import ResolutionBenchConfig, run_resolution
from aggregator.bench.saturation import SaturationBenchConfig, run_saturation_bench
from aggregator.bench.startup import StartupConfig, run_startup
from aggregator.bench.ttfr import TtfrConfig, run_ttfr

__all__ = ["BENCHMARKS", "Options", "run_benchmarks", "run_benchmarks_async"]


class Options:
    """Suite-wide options: ``quick`` sizes; the overhead benchmark's ``concurrency`` levels and
    ``time_scale`` (None: the benchmark's default)."""

    def __init__(self, quick: bool = False, concurrency: Sequence[int] | None = None,
                 time_scale: float | None = None) -> None:
        self.quick = quick
        self.concurrency = tuple(concurrency) if concurrency else None
        self.time_scale = time_scale


def _overhead(options: Options) -> Awaitable[BenchResult]:
    cfg = OverheadConfig.quick() if options.quick else OverheadConfig()
    if options.concurrency:
        cfg = replace(cfg, concurrency=options.concurrency)
    if options.time_scale:
        cfg = replace(cfg, time_scale=options.time_scale)
    return run_overhead(cfg)


BENCHMARKS: dict[str, Callable[[Options], Awaitable[BenchResult]]] = {
    "overhead": _overhead,
    "ratelimit": lambda o: run_ratelimit(RateLimitConfig.quick() if o.quick else RateLimitConfig()),
    "fanout": lambda o: run_fanout(FanoutConfig.quick() if o.quick else FanoutConfig()),
    "ttfr": lambda o: run_ttfr(TtfrConfig.quick() if o.quick else TtfrConfig()),
    "normalize": lambda o: run_normalize(NormalizeConfig.quick() if o.quick else NormalizeConfig()),
    "merging": lambda o: run_merging(MergingConfig.quick() if o.quick else MergingConfig()),
    "resolution": lambda o: run_resolution(ResolutionBenchConfig.quick() if o.quick else ResolutionBenchConfig()),
    "startup": lambda o: run_startup(StartupConfig.quick() if o.quick else StartupConfig()),
    "coordination": lambda o: run_coordination(CoordinationConfig.quick() if o.quick else CoordinationConfig()),
    "batch": lambda o: run_batch_bench(BatchBenchConfig.quick() if o.quick else BatchBenchConfig()),
    "kill": lambda o: run_kill_bench(KillBenchConfig.quick() if o.quick else KillBenchConfig()),
    "saturation": lambda o: run_saturation_bench(SaturationBenchConfig.quick() if o.quick else SaturationBenchConfig()),
    "breaker": lambda o: run_breaker_bench(BreakerBenchConfig.quick() if o.quick else BreakerBenchConfig()),
    "cache": lambda o: run_cache_bench(CacheBenchConfig.quick() if o.quick else CacheBenchConfig()),
}
"""Benchmark name -> coroutine factory, in the order the suite runs them."""


def _load() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other processes share the cores: context for timings)."""
    return [round(x, 2) for x in os.getloadavg()] if hasattr(os, "getloadavg") else None


async def run_benchmarks_async(
    names: Sequence[str] | None = None, options: Options | None = None,
    on_result: Callable[[BenchResult], None] | None = None,
) -> dict[str, Any]:
    """Run ``names`` (default all, in :data:`BENCHMARKS` order) one after the other.

    ``on_result`` is called with each result as it is ready (the CLI prints its table).

    Raises:
        ValueError: an unknown benchmark name (before anything runs).
    """
    options = options or Options()
    chosen = [n for n in BENCHMARKS if names is None or n in names]
    unknown = sorted(set(names or ()) - set(BENCHMARKS))
    if unknown:
        raise ValueError(f"unknown benchmark {unknown[0]!r}; known: {', '.join(BENCHMARKS)}")
    started_at, started = datetime.now(UTC), time.perf_counter()
    load_before = _load()
    results: dict[str, Any] = {}
    for name in chosen:
        result = await BENCHMARKS[name](options)
        results[name] = result.to_json()
        if on_result is not None:
            on_result(result)
    verdicts = [r["passed"] for r in results.values() if r["passed"] is not None]
    return {
        "quick": options.quick, "started_at": started_at.isoformat().replace("+00:00", "Z"),
        "wall_s": time.perf_counter() - started,
        "machine": {"python": platform.python_version(), "cores": cores(),
                    "load_average_before": load_before, "load_average_after": _load()},
        "passed": all(verdicts) if verdicts else None, "benchmarks": results,
    }


def run_benchmarks(names: Sequence[str] | None = None, quick: bool = False,
                   concurrency: Sequence[int] | None = None, time_scale: float | None = None) -> dict[str, Any]:
    """:func:`run_benchmarks_async` in a fresh event loop (see the module docstring for the shape)."""
    return asyncio.run(run_benchmarks_async(names, Options(quick, concurrency, time_scale)))
