"""The result cache on PostgreSQL: shared by every process on one database, and concurrent identical requests
from two Aggregators (two journals, two coordinators: as two processes would be) run once."""

from __future__ import annotations

import asyncio

from aggregator.core import Aggregator
from tests.cache.conftest import BenchFactory
from tests.conftest import sandbox_settings
from tests.db.backends import migrated_database
from tests.postgres import Cluster

QUERY = "VP of Engineering at Series B SaaS startups in New York"
TTL = 600.0


async def test_two_aggregators_on_one_database_pay_once(cache_bench: BenchFactory, postgres: Cluster) -> None:
    url = migrated_database(postgres)
    bench = await cache_bench()
    settings = sandbox_settings({"database": {"url": url}})
    async with Aggregator(settings, sandbox=bench.sandbox) as one, Aggregator(settings, sandbox=bench.sandbox) as two:
        assert one.job_store is not two.job_store and one.providers.coordinator is not two.providers.coordinator
        reports = await asyncio.gather(*(agg.search(QUERY, max_results=10, cache_ttl_s=TTL)
                                         for agg in (one, two, one, two)))
        assert bench.jobs() == 1  # single flight across the two: one provider job
        (leader,) = [r for r in reports if r.cached is None]
        assert all(r.cached is not None and r.cached.run_id == leader.run_id and r.records == leader.records
                   for r in reports if r is not leader)
        refreshed = await two.search(QUERY, max_results=10, cache_ttl_s=TTL, refresh=True)
        assert bench.jobs() == 2
        hit = await one.search(QUERY, max_results=10, cache_ttl_s=TTL)  # the other's refresh replaced the entry
        assert hit.cached is not None and hit.cached.run_id == refreshed.run_id and bench.jobs() == 2
