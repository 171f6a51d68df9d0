"""Benchmark ``cache``: how fast a result-cache hit answers, against the run it replaces.

On an in-process sandbox (Sixtyfour, time-scaled) with the SQLite journal the CLI uses, ``queries``
distinct searches run once each (misses: the provider's job, polling, fetching, merging, journaling),
then each is asked ``repeats`` more times (hits: a lookup in the journal, the report read back and marked,
no provider called). Reported: p50 and p99 wall milliseconds of hits and of the runs they replace, their
ratio, and the sandbox's ``jobs_started`` before and after the hits (a hit starts no job).

A miss's time is mostly the provider's (virtual seconds scaled to wall time by ``time_scale``), so the
ratio says more about the sandbox's speed-up than about the cache; the hit's absolute latency is the
number to read (it grows with the report's size: ``max_results`` records are read and validated).
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from aggregator.bench.common import BenchResult, Metric, at_most, median, sandbox_settings
from aggregator.core import Aggregator
from aggregator.journal import SqliteJournal
from providers.sandbox.runner import Sandbox, SandboxConfig

__all__ = ["CacheBenchConfig", "run_cache_bench"]


@dataclass(frozen=True)
class CacheBenchConfig:
    """What the benchmark runs: ``queries`` distinct searches of ``max_results`` records, each hit
    ``repeats`` times; ``time_scale`` wall seconds per virtual second; ``hit_p99_ms`` the target."""

    time_scale: float = 0.01
    n_companies: int = 4000
    max_results: int = 50
    queries: int = 5
    repeats: int = 20
    ttl_s: float = 3600.0
    hit_p99_ms: float = 250.0

    @classmethod
    def quick(cls) -> CacheBenchConfig:
        return cls(time_scale=0.002, n_companies=600, max_results=10, queries=2, repeats=5)


QUERIES = ("VP of Engineering in New York", "CTO in Berlin", "VP of Sales in London", "CEO in New York",
           "VP of Product in San Francisco", "Head of Data in Boston", "CFO in Austin", "Director of Design in Paris")


def _percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


async def run_cache_bench(cfg: CacheBenchConfig | None = None) -> BenchResult:
    """Run the benchmark (see the module docstring). Returns its :class:`BenchResult`."""
    cfg = cfg or CacheBenchConfig()
    started = time.perf_counter()
    queries = [QUERIES[i % len(QUERIES)] + (f" #{i // len(QUERIES)}" if i >= len(QUERIES) else "")
               for i in range(cfg.queries)]
    misses: list[float] = []
    hits: list[float] = []
    config = SandboxConfig(time_scale=cfg.time_scale, n_companies=cfg.n_companies, providers=("sixtyfour",))
    with tempfile.TemporaryDirectory(prefix="deepsearch-cache-bench-") as folder:
        async with Sandbox(config) as sandbox, SqliteJournal(Path(folder) / "journal.sqlite") as journal, \
                Aggregator(sandbox_settings(run={"deadline_s": 30_000.0}), sandbox=sandbox,
                           job_store=journal) as agg:
            for query in queries:
                t0 = time.perf_counter()
                report = await agg.search(query, max_results=cfg.max_results, cache_ttl_s=cfg.ttl_s)
                misses.append(time.perf_counter() - t0)
                assert report.cached is None
            jobs_before = int(sandbox.stats()["providers"]["sixtyfour"]["jobs_started"])
            answered = 0
            for _ in range(cfg.repeats):
                for query in queries:
                    t0 = time.perf_counter()
                    report = await agg.search(query, max_results=cfg.max_results, cache_ttl_s=cfg.ttl_s)
                    hits.append(time.perf_counter() - t0)
                    answered += report.cached is not None
            jobs_after = int(sandbox.stats()["providers"]["sixtyfour"]["jobs_started"])
    hit_p50, hit_p99 = median(hits) * 1000, _percentile(hits, 0.99) * 1000
    miss_p50, miss_p99 = median(misses) * 1000, _percentile(misses, 0.99) * 1000
    return BenchResult(
        name="cache", title="Result cache: hit latency vs the run it replaces", wall_s=time.perf_counter() - started,
        metrics=[
            Metric("hit p50", round(hit_p50, 2), "ms"),
            at_most("hit p99", round(hit_p99, 2), cfg.hit_p99_ms, "ms"),
            Metric("miss p50", round(miss_p50, 1), "ms", reference=f"time scale {cfg.time_scale:g}"),
            Metric("miss p99", round(miss_p99, 1), "ms"),
            Metric("hit p50 / miss p50", round(hit_p50 / miss_p50, 4) if miss_p50 else None, "x"),
            at_most("jobs started by hits", jobs_after - jobs_before, 0, "jobs"),
            at_most("hits not answered from the cache", len(hits) - answered, 0, "searches"),
        ],
        details={"config": asdict(cfg), "misses_ms": [round(m * 1000, 1) for m in misses],
                 "hits": len(hits), "jobs_started_before_hits": jobs_before, "jobs_started_after_hits": jobs_after},
        notes=["SQLite journal (the CLI's), in-process sandbox, Sixtyfour only; wall milliseconds per search() "
               "call; a hit reads the source run back from the journal and marks it (no provider called)"],
    )
