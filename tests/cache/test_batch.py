"""Batches and the result cache: rows that repeat a request completed earlier (or in the same batch) are
answered from the cache with ``cache_ttl_s``; without it (and no ``[cache] ttl_s``) every row runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.batch import SqliteBatchStore
from aggregator.errors import ConfigError
from tests.cache.conftest import BenchFactory

QUERY = "VP of Engineering in New York"


async def test_rows_repeating_a_request_are_answered_from_the_cache(cache_bench: BenchFactory, tmp_path: Path) -> None:
    bench = await cache_bench()
    agg = await bench.open()
    earlier = await agg.search(QUERY, max_results=5, cache_ttl_s=600)
    rows = [{"query": QUERY, "max_results": 5}, {"query": "CTO in Berlin", "max_results": 5},
            {"query": "cto   in BERLIN", "max_results": 5}]
    async with SqliteBatchStore(tmp_path / "batches.sqlite") as store, \
            agg.batch(rows, store=store, cache_ttl_s=600, concurrency=3) as run:
        results = {result.row: result async for result in run}
    assert all(r.status == "done" for r in results.values())
    assert results[1].report is not None and results[1].report.cached is not None
    assert results[1].run_id == earlier.run_id and results[1].credits == 0
    berlin = {results[2].run_id, results[3].run_id}
    assert len(berlin) == 1  # the two identical rows ran once (single flight), the other was answered
    assert bench.jobs() == 2


async def test_a_batch_refuses_a_ttl_not_above_zero(cache_bench: BenchFactory) -> None:
    agg = await (await cache_bench()).open()
    with pytest.raises(ConfigError) as refused:
        agg.batch([{"query": QUERY}], cache_ttl_s=0)
    assert refused.value.field == "cache_ttl_s"
