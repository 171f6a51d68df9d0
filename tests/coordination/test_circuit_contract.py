"""The circuit-breaker part of the coordination contract (issue 19): both implementations, shared state.

Each coordinator instance stands for one process (see ``conftest.py``); the clock is a
:class:`~aggregator.clock.ScaledClock` (1 virtual s = 10 ms), so cooldowns here are short real waits.
"""

from __future__ import annotations

import asyncio

from aggregator.clock import ScaledClock
from aggregator.coordination import CircuitPolicy, CircuitView, Coordinator
from tests.coordination.conftest import Backend
from tests.coordination.test_contract import warm

POLICY = CircuitPolicy(failures=3, failure_rate=0.5, window_s=600.0, min_calls=10, cooldown_s=20.0)


async def fail(coordinator: Coordinator, clock: ScaledClock, n: int = 1, *,
               retry_after_s: float | None = None) -> CircuitView:
    return await coordinator.circuit_report("acct", POLICY, clock, calls=n, failures=n, streak=n, broken=False,
                                            retry_after_s=retry_after_s)


async def read(coordinator: Coordinator, clock: ScaledClock) -> CircuitView:
    return await coordinator.circuit_report("acct", POLICY, clock, calls=0, failures=0, streak=0, broken=False)


async def test_an_open_circuit_is_seen_by_every_instance(backend: Backend, clock: ScaledClock) -> None:
    one, two = backend.make(), backend.make()
    await warm(one, two)
    assert (await fail(one, clock, 2)).state == "closed"
    tripped = await fail(two, clock)  # the streak is shared: 2 + 1
    assert tripped.state == "open" and tripped.changed and tripped.failures == 3
    assert 15.0 < tripped.retry_in_s <= 20.001
    seen = await read(one, clock)
    assert seen.state == "open" and not seen.changed and 10.0 < seen.retry_in_s <= 20.001
    assert not (await one.circuit_probe("acct", POLICY, clock)).probe  # not due yet
    assert (await read(one, clock)).state == "open"
    other = await other_account(two, clock)
    assert other.state == "closed"


async def other_account(coordinator: Coordinator, clock: ScaledClock) -> CircuitView:
    return await coordinator.circuit_report("other", POLICY, clock, calls=0, failures=0, streak=0, broken=False)


async def test_a_success_restarts_the_shared_streak(backend: Backend, clock: ScaledClock) -> None:
    one = backend.make()
    await fail(one, clock, 2)
    await one.circuit_report("acct", POLICY, clock, calls=2, failures=1, streak=1, broken=True)  # ok, then fail
    assert (await fail(one, clock)).state == "closed"  # streak 2
    assert (await fail(one, clock)).state == "open"


async def test_one_probe_across_instances_then_success_closes(backend: Backend, clock: ScaledClock) -> None:
    instances = [backend.make() for _ in range(3)]
    await warm(*instances)
    await fail(instances[0], clock, 3)
    await clock.sleep(21.0)
    views = await asyncio.gather(*(c.circuit_probe("acct", POLICY, clock) for c in instances for _ in range(3)))
    granted = [i for i, v in enumerate(views) if v.probe]
    assert len(granted) == 1 and all(v.state == "half_open" for v in views)
    holder = instances[granted[0] // 3]
    bystander = next(c for c in instances if c is not holder)
    assert not (await bystander.circuit_settle("acct", POLICY, clock, ok=True)).changed  # not its probe
    closed = await holder.circuit_settle("acct", POLICY, clock, ok=True)
    assert closed.state == "closed" and closed.changed and closed.failures == 0
    assert (await read(bystander, clock)).state == "closed"


async def test_a_failed_probe_reopens_for_the_longer_of_cooldown_and_retry_after(
        backend: Backend, clock: ScaledClock) -> None:
    one, two = backend.make(), backend.make()
    await warm(one, two)
    opened = await fail(one, clock, 3, retry_after_s=50.0)
    assert 40.0 < opened.retry_in_s <= 50.001
    await clock.sleep(51.0)
    assert (await two.circuit_probe("acct", POLICY, clock)).probe
    reopened = await two.circuit_settle("acct", POLICY, clock, ok=False, retry_after_s=5.0)
    assert reopened.state == "open" and reopened.failures == 4 and 10.0 < reopened.retry_in_s <= 20.001
    assert (await read(one, clock)).state == "open"


async def test_a_dead_probe_holders_probe_is_given_up_after_the_lease_ttl(
        backend: Backend, clock: ScaledClock) -> None:
    dying, other = backend.make(lease_ttl_s=0.3), backend.make(lease_ttl_s=0.3)
    await warm(dying, other)
    await fail(dying, clock, 3)
    await clock.sleep(21.0)
    assert (await dying.circuit_probe("acct", POLICY, clock)).probe
    await dying.abandon()
    assert not (await other.circuit_probe("acct", POLICY, clock)).probe
    await asyncio.sleep(0.35)  # real seconds: the lease TTL
    assert (await other.circuit_probe("acct", POLICY, clock)).probe


async def test_a_failure_rate_trips_it_and_old_calls_leave_the_window(backend: Backend, clock: ScaledClock) -> None:
    one = backend.make()
    policy = CircuitPolicy(failures=100, failure_rate=0.5, window_s=20.0, min_calls=10, cooldown_s=20.0)

    async def report(calls: int, failures: int) -> CircuitView:
        return await one.circuit_report("acct", policy, clock, calls=calls, failures=failures, streak=0,
                                        broken=True)

    assert (await report(8, 8)).state == "closed"  # fewer than min_calls
    await clock.sleep(45.0)  # more than two windows: forgotten
    assert (await report(8, 3)).state == "closed"
    tripped = await report(2, 2)  # 5 of 10
    assert tripped.state == "open" and tripped.failures == 5
