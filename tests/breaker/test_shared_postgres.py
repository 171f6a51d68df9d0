"""Breakers of two processes on one real PostgreSQL database: an open circuit in one is refused by the
other, one probe goes across both, and a closed circuit costs no round trip per call (the local mirror)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aggregator.breaker import CircuitBreaker
from aggregator.clock import ScaledClock
from aggregator.coordination import CircuitPolicy
from aggregator.coordination.postgres import PostgresCoordinator
from aggregator.errors import CircuitOpenError, ProviderServerError
from tests.db.backends import migrated_database
from tests.postgres import Cluster

POLICY = CircuitPolicy(failures=3, failure_rate=0.5, window_s=600.0, min_calls=50, cooldown_s=20.0)
FAILURE = ProviderServerError("down", status=503, provider="orbit", endpoint="GET /x")


@pytest.fixture
async def coordinators(postgres: Cluster) -> Any:
    url = migrated_database(postgres)
    made = [PostgresCoordinator(url, lease_ttl_s=5.0, connect_timeout_s=5.0) for _ in range(2)]
    try:
        yield made
    finally:
        for coordinator in made:
            await coordinator.aclose()


async def test_open_in_one_process_is_refused_in_the_other_and_one_probe_goes(coordinators: Any) -> None:
    clock = ScaledClock(0.01)
    one, two = (CircuitBreaker("orbit", "orbit-acct", POLICY, c, clock, sync_s=0.05) for c in coordinators)
    assert await two.admit() is False  # closed: synced once
    for _ in range(3):
        probe = await one.admit()
        opened = await one.done(probe, FAILURE)
    assert isinstance(opened, CircuitOpenError) and one.state == "open"
    await asyncio.sleep(0.06)  # two's mirror goes stale: its next call syncs and sees the open circuit
    with pytest.raises(CircuitOpenError):
        await two.admit()
    assert two.state == "open" and await two.refusal() is not None
    await clock.sleep(20.5)

    async def attempt(breaker: CircuitBreaker) -> bool | None:
        try:
            return await breaker.admit()
        except CircuitOpenError:
            return None

    results = await asyncio.gather(*(attempt(b) for b in (one, two) * 4))
    assert results.count(True) == 1 and results.count(None) == 7
    prober = (one, two)[results.index(True) % 2]
    assert await prober.done(True, None) is None and prober.state == "closed"
    await asyncio.sleep(0.06)
    other = two if prober is one else one
    assert await other.admit() is False and other.state == "closed"


async def test_a_closed_circuit_costs_no_round_trip_per_call(coordinators: Any) -> None:
    clock = ScaledClock(0.01)
    breaker = CircuitBreaker("orbit", "orbit-acct", POLICY, coordinators[0], clock)  # syncs each real second
    assert breaker.sync_s == 1.0
    calls = 0
    report = coordinators[0].circuit_report

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        return await report(*args, **kwargs)

    coordinators[0].circuit_report = counted
    for _ in range(200):
        await breaker.done(await breaker.admit(), None)
    assert calls <= 2  # one sync, maybe a second if the loop took a real second
    await breaker.done(await breaker.admit(), FAILURE)
    assert calls <= 3  # a failure is sent at once
