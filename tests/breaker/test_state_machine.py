"""The circuit breaker's state machine and counting rules, on a fake clock (no real sleeping)."""

from __future__ import annotations

import asyncio

import pytest

from aggregator.breaker import CircuitBreaker, verdict
from aggregator.coordination import CircuitPolicy, InProcessCoordinator, LocalState
from aggregator.errors import (
    AuthError,
    BudgetExceededError,
    CircuitOpenError,
    InvalidRequestError,
    ProviderConnectionError,
    ProviderProtocolError,
    ProviderServerError,
    ProviderTimeoutError,
    RateLimitedError,
)
from tests.fakes import FakeClock

POLICY = CircuitPolicy(failures=3, failure_rate=0.5, window_s=60.0, min_calls=10, cooldown_s=30.0)
CTX = {"provider": "orbit", "endpoint": "GET /x"}


def server_error(retry_after_s: float | None = None) -> ProviderServerError:
    return ProviderServerError("down", status=503, retry_after_s=retry_after_s, **CTX)


def make(clock: FakeClock, policy: CircuitPolicy = POLICY, state: LocalState | None = None,
         holder: str | None = None) -> CircuitBreaker:
    return CircuitBreaker("orbit", "orbit-acct", policy, InProcessCoordinator(state, holder=holder), clock)


async def call(breaker: CircuitBreaker, error: BaseException | None) -> CircuitOpenError | None:
    """One attempt through the breaker, as ProviderHTTPClient makes it."""
    probe = await breaker.admit("GET /x")
    return await breaker.done(probe, error, "GET /x")


def test_what_counts_as_a_failure() -> None:
    assert verdict(server_error()) is True
    assert verdict(ProviderConnectionError("reset", **CTX)) is True
    assert verdict(ProviderTimeoutError("slow", **CTX)) is True
    assert verdict(ProviderProtocolError("bad json", **CTX)) is None  # answered, off contract: not an outage
    assert verdict(InvalidRequestError("bad input", status=422, **CTX)) is False  # answered: a success
    assert verdict(AuthError("bad key", status=401, **CTX)) is False
    assert verdict(None) is False
    assert verdict(RateLimitedError("slow down", status=429, **CTX)) is None  # the limiter's business
    assert verdict(BudgetExceededError(needed=1, remaining=0)) is None
    assert verdict(asyncio.CancelledError()) is None


async def test_consecutive_failures_open_it_and_a_success_restarts_the_count() -> None:
    clock = FakeClock()
    breaker = make(clock)
    assert await call(breaker, server_error()) is None
    assert await call(breaker, server_error()) is None
    assert await call(breaker, None) is None  # the streak restarts
    assert await call(breaker, server_error()) is None
    assert await call(breaker, ProviderTimeoutError("t", **CTX)) is None
    assert breaker.state == "closed"
    opened = await call(breaker, ProviderConnectionError("c", **CTX))  # third in a row
    assert isinstance(opened, CircuitOpenError) and opened.failures == 5 and opened.retry_in_s == 30.0
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError) as refused:
        await breaker.admit("GET /x")
    assert not refused.value.retryable
    assert "circuit open until 00:00:30 UTC (5 failures; next probe after 30 s)" in str(refused.value)
    assert breaker.rejected == 1


async def test_4xx_and_429_never_open_it() -> None:
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(20):
        await call(breaker, InvalidRequestError("bad", status=400, **CTX))
        await call(breaker, RateLimitedError("slow down", status=429, **CTX))
    assert breaker.state == "closed"


async def test_a_failure_rate_over_the_window_opens_it_below_the_streak() -> None:
    clock = FakeClock()
    breaker = make(clock, CircuitPolicy(failures=100, failure_rate=0.5, window_s=60.0, min_calls=10))
    for i in range(9):  # alternate: 4 failures of 9 calls, then 5 of 10
        await call(breaker, server_error() if i % 2 else None)
        clock.t += 1
    assert breaker.state == "closed"  # fewer than min_calls
    opened = await call(breaker, server_error())
    assert opened is not None and breaker.state == "open" and opened.failures == 5


async def test_old_calls_leave_the_window() -> None:
    clock = FakeClock()
    breaker = make(clock, CircuitPolicy(failures=100, failure_rate=0.5, window_s=60.0, min_calls=10))
    for _ in range(8):
        await call(breaker, server_error())
    clock.t += 200  # two windows later: forgotten
    for _ in range(4):
        await call(breaker, server_error())
    assert breaker.state == "closed"


async def test_after_the_cooldown_one_probe_goes_and_its_success_closes_it() -> None:
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(3):
        await call(breaker, server_error())
    assert breaker.state == "open"
    clock.t += 29.9
    with pytest.raises(CircuitOpenError):
        await breaker.admit()
    clock.t += 0.1
    assert await breaker.admit() is True  # the probe
    assert breaker.state == "half_open"
    with pytest.raises(CircuitOpenError) as during:
        await breaker.admit()  # one probe at a time
    assert during.value.probing and "a probe is in flight" in str(during.value)
    assert await breaker.done(True, None) is None
    assert breaker.state == "closed" and await breaker.admit() is False


async def test_a_failed_probe_opens_it_again_for_the_cooldown() -> None:
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(3):
        await call(breaker, server_error())
    clock.t += 30
    assert await breaker.admit() is True
    reopened = await breaker.done(True, server_error())
    assert isinstance(reopened, CircuitOpenError) and reopened.failures == 4
    assert breaker.state == "open" and reopened.retry_in_s == 30.0


async def test_a_retry_after_longer_than_the_cooldown_is_respected() -> None:
    clock = FakeClock()
    breaker = make(clock)
    await call(breaker, server_error())
    await call(breaker, server_error())
    opened = await call(breaker, server_error(retry_after_s=90.0))
    assert opened is not None and opened.retry_in_s == 90.0
    clock.t += 60
    with pytest.raises(CircuitOpenError):
        await breaker.admit()
    clock.t += 30
    assert await breaker.admit() is True
    reopened = await breaker.done(True, server_error(retry_after_s=5.0))  # shorter: the cooldown wins
    assert reopened is not None and reopened.retry_in_s == 30.0


async def test_a_cancelled_probe_hands_the_probe_to_the_next_caller() -> None:
    clock = FakeClock()
    breaker = make(clock)
    for _ in range(3):
        await call(breaker, server_error())
    clock.t += 30
    assert await breaker.admit() is True
    assert await breaker.done(True, asyncio.CancelledError()) is None
    assert await breaker.admit() is True


async def test_one_probe_among_concurrent_callers_and_instances() -> None:
    clock = FakeClock()
    state = LocalState()
    first, second = make(clock, state=state, holder="a"), make(clock, state=state, holder="b")
    for _ in range(3):
        await call(first, server_error())
    assert second.state == "closed"  # its mirror: until it asks
    with pytest.raises(CircuitOpenError):
        await second.admit()  # the other instance sees the open circuit
    clock.t += 30

    async def try_admit(breaker: CircuitBreaker) -> bool | None:
        try:
            return await breaker.admit()
        except CircuitOpenError:
            return None

    results = await asyncio.gather(*(try_admit(b) for b in (first, second) * 5))
    assert results.count(True) == 1 and results.count(None) == 9


async def test_a_dead_probe_holder_is_given_up_after_the_lease_ttl() -> None:
    clock = FakeClock()
    state = LocalState()
    first = CircuitBreaker("orbit", "orbit-acct", POLICY, InProcessCoordinator(state, lease_ttl_s=10.0), clock)
    second = CircuitBreaker("orbit", "orbit-acct", POLICY, InProcessCoordinator(state, lease_ttl_s=10.0), clock)
    for _ in range(3):
        await call(first, server_error())
    clock.t += 30
    assert await first.admit() is True  # ... and its process dies
    with pytest.raises(CircuitOpenError):
        await second.admit()
    clock.t += 10
    assert await second.admit() is True
