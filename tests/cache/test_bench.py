"""The ``cache`` benchmark (quick sizes): hits start no job, every repeat is answered from the cache."""

from __future__ import annotations

from aggregator.bench.cache import CacheBenchConfig, run_cache_bench
from aggregator.bench.suite import BENCHMARKS


async def test_the_quick_cache_bench_measures_hits_that_start_no_job() -> None:
    assert "cache" in BENCHMARKS
    result = await run_cache_bench(CacheBenchConfig.quick())
    metrics = {m.name: m for m in result.metrics}
    assert metrics["jobs started by hits"].value == 0 and metrics["jobs started by hits"].passed
    assert metrics["hits not answered from the cache"].value == 0
    assert result.details["hits"] == 2 * 5 and len(result.details["misses_ms"]) == 2
    hit, miss = metrics["hit p50"].value, metrics["miss p50"].value
    assert hit is not None and miss is not None and 0 < hit < miss
