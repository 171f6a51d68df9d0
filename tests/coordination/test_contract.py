"""The coordination contract, for both implementations (issue 16, item 2): exact windows and buckets
across instances, shared pauses, lease caps and expiry, budgets that never overshoot, periods.

Each coordinator instance stands for one process (see ``conftest.py``). Times are recorded on the
client's clock as a provider would bound them: a request was *sent* no earlier than its acquire
returned and *arrived* no later than its release was called.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import UTC, datetime, timedelta

import pytest

from aggregator.clock import ScaledClock
from aggregator.contract import RateLimitSpec
from aggregator.coordination import PAUSE_GATE, BudgetScope, Coordinator, period_start
from aggregator.errors import BudgetExceededError
from tests.coordination.conftest import LEASE_TTL_S, Backend

EPS = 1e-6


def most_in_any_window(spans: list[tuple[float, float]], window_s: float) -> int:
    """The most requests whose [sent, answered] span meets one window shorter than ``window_s``: at most
    that many could have arrived at the provider inside one of its windows."""
    best = 0
    for _, left in spans:  # a window worth checking starts at some answer
        best = max(best, sum(1 for sent, answered in spans if answered >= left and sent < left + window_s - EPS))
    return best


def most_at_once(spans: list[tuple[float, float]]) -> int:
    events = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans], key=lambda e: (e[0], e[1]))
    best = level = 0
    for _, step in events:
        level += step
        best = max(best, level)
    return best


async def warm(*coordinators: Coordinator) -> None:
    """Connect first, so that a test's virtual seconds measure waits, not connecting."""
    for coordinator in coordinators:
        await coordinator.usage(BudgetScope("warm-up", 1.0), ScaledClock(1.0))


async def hammer(coordinators: list[Coordinator], specs: list[RateLimitSpec], clock: ScaledClock, *,
                 tasks_each: int, requests_each: int, latency_s: float,
                 seed: int = 1) -> list[tuple[float, float]]:
    """Every coordinator runs ``tasks_each`` tasks, each sending ``requests_each`` requests."""
    spans: list[tuple[float, float]] = []
    rng = random.Random(seed)

    async def task(coordinator: Coordinator) -> None:
        limit = coordinator.rate_limit("acct", specs, clock)
        for _ in range(requests_each):
            ticket = await limit.acquire()
            sent = clock.monotonic()
            await clock.sleep(latency_s * rng.random())
            spans.append((sent, clock.monotonic()))
            await limit.release(ticket)

    await asyncio.gather(*(task(c) for c in coordinators for _ in range(tasks_each)))
    return spans


async def test_a_sliding_window_never_admits_more_than_its_limit_across_instances(
        backend: Backend, clock: ScaledClock) -> None:
    instances = [backend.make() for _ in range(3)]
    window = RateLimitSpec("query", 6, 20.0)
    spans = await hammer(instances, [window], clock, tasks_each=4, requests_each=2, latency_s=3.0)
    assert len(spans) == 24
    assert most_in_any_window(spans, 20.0) <= 6
    first, last = min(s for s, _ in spans), max(s for s, _ in spans)
    assert last - first >= 3 * 20.0 - 1.0  # 24 requests, 6 per window: at least three windows apart


async def test_a_sliding_window_counts_requests_in_flight(backend: Backend, clock: ScaledClock) -> None:
    a, b = backend.make(), backend.make()
    window = [RateLimitSpec("query", 2, 5.0)]
    held = [await a.rate_limit("acct", window, clock).acquire(), await b.rate_limit("acct", window, clock).acquire()]
    third = asyncio.ensure_future(a.rate_limit("acct", window, clock).acquire())
    await clock.sleep(20.0)  # both are still in flight: however long it takes, the third must wait
    assert not third.done()
    released_at = clock.monotonic()
    await b.rate_limit("acct", window, clock).release(held[1])
    ticket = await asyncio.wait_for(third, timeout=5)
    assert clock.monotonic() >= released_at + 5.0 - 0.5  # counted from the response's stamp
    await a.rate_limit("acct", window, clock).release(held[0])
    await a.rate_limit("acct", window, clock).release(ticket)


async def test_a_window_lets_its_whole_limit_through_at_once_then_waits_for_the_oldest_stamp(
        backend: Backend, clock: ScaledClock) -> None:
    a, b = backend.make(), backend.make()
    await warm(a, b)
    window_s = 300.0  # 3 s of wall time: ten database round trips under a loaded CI never take that long
    spec = [RateLimitSpec("query", 5, window_s)]
    started = clock.monotonic()
    for coordinator in (a, b, a, b, a):
        limit = coordinator.rate_limit("acct", spec, clock)
        await limit.release(await limit.acquire())
    burst_done = clock.monotonic()
    assert burst_done - started < window_s * 0.8  # the burst did not wait for a window
    limit = b.rate_limit("acct", spec, clock)
    await limit.acquire()
    assert clock.monotonic() - started >= window_s - EPS


async def test_a_token_bucket_allows_its_burst_then_its_rate_across_instances(
        backend: Backend, clock: ScaledClock) -> None:
    instances = [backend.make() for _ in range(2)]
    bucket = RateLimitSpec("start", 2, 1.0, kind="token_bucket", burst=4)  # 2 tokens/s, burst 4
    spans = await hammer(instances, [bucket], clock, tasks_each=3, requests_each=2, latency_s=0.5)
    assert len(spans) == 12
    for arrival in (0, 1):  # the provider may count each request when sent or when answered
        level, last = 4.0, min(s for s, _ in spans)
        for at in sorted(span[arrival] for span in spans):
            level = min(4.0, level + (at - last) * 2.0) - 1.0
            last = at
            assert level >= -1e-6
    first, last_sent = min(s for s, _ in spans), max(s for s, _ in spans)
    assert last_sent - first >= (12 - 4) / 2.0 - 0.5  # after the burst, no faster than the rate


async def test_a_pause_is_shared_by_every_instance(backend: Backend, clock: ScaledClock) -> None:
    a, b = backend.make(), backend.make()
    await warm(a, b)
    spec = [RateLimitSpec("general", 100, 60.0)]
    limit = b.rate_limit("acct", spec, clock)
    await limit.release(await limit.acquire())  # b is warm: its next acquire is not slowed by connecting
    paused_at = clock.monotonic()
    await a.pause("acct", ["general"], 12.0, clock)  # a 429 with Retry-After: 12 seen by a
    ticket = await limit.acquire()
    waited = clock.monotonic() - paused_at
    assert 12.0 - EPS <= waited < 12.0 + 10.0
    await limit.release(ticket)
    other = b.rate_limit("other-account", spec, clock)  # another account's bucket of the same name is not paused
    started = clock.monotonic()
    await other.release(await other.acquire())
    assert clock.monotonic() - started < 12.0


async def test_a_pause_gate_holds_endpoints_no_limit_covers(backend: Backend, clock: ScaledClock) -> None:
    a, b = backend.make(), backend.make()
    gate = b.rate_limit("acct", [], clock)
    assert gate.names == (PAUSE_GATE,)
    await gate.release(await gate.acquire())
    paused_at = clock.monotonic()
    await a.pause("acct", [PAUSE_GATE], 8.0, clock)
    await gate.release(await gate.acquire())
    assert clock.monotonic() - paused_at >= 8.0 - EPS


async def test_a_lease_pool_caps_holders_across_instances(backend: Backend, clock: ScaledClock) -> None:
    instances = [backend.make() for _ in range(3)]
    spans: list[tuple[float, float]] = []

    async def job(coordinator: Coordinator) -> None:
        pool = coordinator.lease_pool("acct", "jobs", 3, clock)
        lease = await pool.acquire()
        start = clock.monotonic()
        await clock.sleep(10.0)  # 0.1 s: far longer than a round trip to the database, even on a busy machine
        spans.append((start, clock.monotonic()))
        await pool.release(lease)

    await asyncio.gather(*(job(c) for c in instances for _ in range(4)))
    assert len(spans) == 12 and most_at_once(spans) == 3


async def test_a_dead_holders_lease_expires_after_the_ttl_and_a_live_ones_does_not(
        backend: Backend, clock: ScaledClock) -> None:
    dead, alive, waiting = (backend.make(lease_ttl_s=LEASE_TTL_S) for _ in range(3))
    await dead.lease_pool("acct", "jobs", 2, clock).acquire()
    kept = alive.lease_pool("acct", "jobs", 2, clock)
    await kept.acquire()
    pool = waiting.lease_pool("acct", "jobs", 2, clock)
    await dead.abandon()  # killed: no heartbeat, no release
    started = time.monotonic()
    lease = await asyncio.wait_for(pool.acquire(), timeout=LEASE_TTL_S + 5)
    waited = time.monotonic() - started
    assert LEASE_TTL_S * 0.5 <= waited < LEASE_TTL_S + 2.5  # the TTL (less what passed before), not more
    with pytest.raises(TimeoutError):  # the live holder heartbeats: its lease outlives several TTLs
        await asyncio.wait_for(pool.acquire(), timeout=LEASE_TTL_S * 3)
    await pool.release(lease)


async def test_a_released_lease_goes_to_a_waiter_in_another_instance_at_once(
        backend: Backend, clock: ScaledClock) -> None:
    a, b = backend.make(), backend.make()
    held = await a.lease_pool("acct", "jobs", 1, clock).acquire()
    waiter = asyncio.ensure_future(b.lease_pool("acct", "jobs", 1, clock).acquire())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    released = time.monotonic()
    await a.lease_pool("acct", "jobs", 1, clock).release(held)
    await asyncio.wait_for(waiter, timeout=5)
    assert time.monotonic() - released < 0.5  # woken by the release, not by a poll


async def test_concurrent_reservations_from_several_instances_never_overshoot(
        backend: Backend, clock: ScaledClock) -> None:
    instances = [backend.make() for _ in range(3)]
    scope = BudgetScope.for_account("acct", 37.0, "day")
    rng = random.Random(5)
    charged: list[float] = []
    refused = 0

    async def paid_call(coordinator: Coordinator, cost: float) -> None:
        nonlocal refused
        try:
            hold = await coordinator.reserve([scope], cost, clock, provider="orbit")
        except BudgetExceededError as exc:
            refused += 1
            assert exc.budget == scope.label
            return
        await clock.sleep(rng.random())
        if rng.random() < 0.2:
            await coordinator.release(hold)
            return
        actual = cost if rng.random() < 0.7 else cost / 2
        charged.append(actual)
        await coordinator.settle(hold, actual)

    await asyncio.gather(*(paid_call(c, rng.choice([1.0, 1.0, 1.0, 10.0])) for c in instances for _ in range(50)))
    usage = await instances[0].usage(scope, clock)
    assert usage.reserved == pytest.approx(0.0, abs=1e-9)
    assert usage.spent == pytest.approx(sum(charged)) and usage.spent <= 37.0 + 1e-9
    assert refused > 0


async def test_a_reservation_needs_room_in_every_scope_or_takes_none(backend: Backend, clock: ScaledClock) -> None:
    a, b = backend.make(), backend.make()
    run = BudgetScope.for_run("run-1", 100.0)
    account = BudgetScope.for_account("acct", 10.0, "day")
    first = await a.reserve([run, account], 8.0, clock, provider="sixtyfour")
    with pytest.raises(BudgetExceededError) as info:
        await b.reserve([run, account], 5.0, clock, provider="sixtyfour")
    message = str(info.value)
    assert "sixtyfour" in message and "per day" in message and "10 credits" in message
    assert (info.value.needed, info.value.remaining) == (5.0, pytest.approx(2.0))
    assert (await b.usage(run, clock)).reserved == pytest.approx(8.0)  # the refused one booked nothing
    await a.settle(first, 3.0)
    assert (await b.usage(account, clock)).available == pytest.approx(7.0)
    await a.settle(first, 8.0)  # settling twice is a no-op
    assert (await b.usage(run, clock)).spent == pytest.approx(3.0)


async def test_a_dead_instances_reservation_counts_as_spent(backend: Backend, clock: ScaledClock) -> None:
    dead, alive = backend.make(lease_ttl_s=LEASE_TTL_S), backend.make(lease_ttl_s=LEASE_TTL_S)
    scope = BudgetScope.for_account("acct", 10.0, "total")
    await dead.reserve([scope], 4.0, clock, provider="orbit")
    await dead.abandon()  # the call may have been charged: never give it back
    assert (await alive.usage(scope, clock)).spent + (await alive.usage(scope, clock)).reserved == pytest.approx(4.0)
    await asyncio.sleep(LEASE_TTL_S + 0.1)  # the database's TTL, in real time: the dead holder's last heartbeat
    usage = await alive.usage(scope, clock)
    assert (usage.spent, usage.reserved) == (pytest.approx(4.0), pytest.approx(0.0))


async def test_a_budget_period_rolls_over_at_midnight_utc(backend: Backend) -> None:
    coordinator = backend.make()
    scope = BudgetScope.for_account("acct", 10.0, "day")
    await coordinator.usage(scope, ScaledClock(0.1))  # connect first: the clock below starts near midnight
    real_now = time.time()
    midnight = (datetime.fromtimestamp(real_now, UTC) + timedelta(days=1)).replace(
        hour=0, minute=0, second=0, microsecond=0).timestamp()
    scale, before_s = 0.1, 3.0  # virtual seconds before midnight when the clock starts
    epoch = (real_now / scale - midnight + before_s) / (1 / scale - 1)
    clock = ScaledClock(scale, epoch=datetime.fromtimestamp(epoch, UTC))
    day = period_start("day", clock.now())
    assert clock.now() < datetime.fromtimestamp(midnight, UTC)
    await coordinator.reserve([scope], 10.0, clock, provider="orbit")
    with pytest.raises(BudgetExceededError, match="per day"):
        await coordinator.reserve([scope], 1.0, clock, provider="orbit")
    await clock.sleep(max(0.0, midnight - clock.now().timestamp()) + 0.5)
    hold = await coordinator.reserve([scope], 1.0, clock, provider="orbit")  # a new day, a new budget
    assert hold.parts[0][1] == day + timedelta(days=1)
    usage = await coordinator.usage(scope, clock)
    assert (usage.period_start, usage.reserved) == (day + timedelta(days=1), pytest.approx(1.0))


def test_periods_start_at_utc_midnight_monday_and_the_first() -> None:
    at = datetime(2026, 11, 21, 15, 30, tzinfo=UTC)  # a Saturday
    assert period_start("day", at) == datetime(2026, 11, 21, tzinfo=UTC)
    assert period_start("week", at) == datetime(2026, 11, 16, tzinfo=UTC)
    assert period_start("month", at) == datetime(2026, 11, 1, tzinfo=UTC)
    assert period_start("total", at) == datetime(1970, 1, 1, tzinfo=UTC)
