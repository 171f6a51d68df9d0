"""Retry policy: which errors retry, how long we wait (Retry-After wins), and the caps."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from aggregator.config import RetrySettings
from aggregator.errors import (
    AuthError,
    ProviderConnectionError,
    ProviderServerError,
    RateLimitedError,
)
from aggregator.retry import RetryPolicy, parse_retry_after, retry_after_from_body
from tests.fakes import FakeClock

CTX = {"provider": "p", "endpoint": "GET /x"}


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"Retry-After": "12"}, 12.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "-3"}, None),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_parse_retry_after_reads_seconds_and_milliseconds(
    headers: dict[str, str], expected: float | None
) -> None:
    assert parse_retry_after(headers) == expected


def test_parse_retry_after_reads_http_dates_relative_to_now() -> None:
    now = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
    header = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"Retry-After": header}, now=now) == pytest.approx(30.0)
    past = format_datetime(now - timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"Retry-After": past}, now=now) == 0.0


def test_retry_after_is_read_from_a_sixtyfour_style_body() -> None:
    assert retry_after_from_body('{"detail": "Rate limit exceeded. Retry after 12 seconds."}') == 12.0
    assert retry_after_from_body('{"detail": "Rate limit exceeded"}') is None


def test_backoff_is_exponential_with_full_jitter_and_capped() -> None:
    policy = RetryPolicy(RetrySettings(backoff_initial_s=1.0, backoff_max_s=8.0), FakeClock(),
                         rng=random.Random(1))
    for attempt, ceiling in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        samples = [policy.backoff_s(attempt) for _ in range(200)]
        assert min(samples) >= 0.0 and max(samples) <= ceiling
        assert max(samples) > ceiling * 0.8  # jitter spans the range


async def test_retryable_errors_are_retried_and_retry_after_is_waited_out() -> None:
    clock = FakeClock()
    policy = RetryPolicy(RetrySettings(max_attempts=5), clock, rng=random.Random(0))
    calls = 0

    async def flaky() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RateLimitedError("slow down", retry_after_s=7.0, status=429, **CTX)
        if calls == 2:
            raise ProviderServerError("oops", retry_after_s=3.0, status=503, **CTX)
        return "ok"

    assert await policy.call(flaky) == "ok"
    assert calls == 3
    assert clock.sleeps == [7.0, 3.0]


async def test_non_retryable_errors_surface_at_once() -> None:
    clock = FakeClock()
    policy = RetryPolicy(RetrySettings(), clock)

    async def denied() -> None:
        raise AuthError("bad key", status=401, **CTX)

    with pytest.raises(AuthError):
        await policy.call(denied)
    assert clock.sleeps == []


async def test_attempts_are_capped_and_the_last_error_is_raised() -> None:
    clock = FakeClock()
    policy = RetryPolicy(RetrySettings(max_attempts=3, backoff_initial_s=0.1), clock)
    calls = 0

    async def down() -> None:
        nonlocal calls
        calls += 1
        raise ProviderConnectionError(f"reset {calls}", **CTX)

    with pytest.raises(ProviderConnectionError, match="reset 3"):
        await policy.call(down)
    assert calls == 3 and len(clock.sleeps) == 2


async def test_a_retry_after_beyond_the_cap_is_not_waited_out() -> None:
    clock = FakeClock()
    policy = RetryPolicy(RetrySettings(max_retry_after_s=60.0), clock)

    async def limited() -> None:
        raise RateLimitedError("come back tomorrow", retry_after_s=86_400.0, status=429, **CTX)

    with pytest.raises(RateLimitedError):
        await policy.call(limited)
    assert clock.sleeps == []


async def test_time_spent_retrying_one_call_is_capped() -> None:
    clock = FakeClock()
    policy = RetryPolicy(RetrySettings(max_attempts=50, max_elapsed_s=20.0), clock)
    calls = 0

    async def limited() -> None:
        nonlocal calls
        calls += 1
        raise RateLimitedError("wait", retry_after_s=6.0, status=429, **CTX)

    with pytest.raises(RateLimitedError):
        await policy.call(limited)
    assert sum(clock.sleeps) <= 20.0
    assert calls == 4  # waits of 6+6+6 = 18 s; a 4th wait would pass 20 s


@pytest.mark.parametrize("error_type", [RateLimitedError, ProviderServerError])
async def test_a_retry_after_between_the_cap_and_the_elapsed_limit_surfaces_at_once(
    error_type: type[RateLimitedError | ProviderServerError],
) -> None:
    # 120 s would fit in the 600 s elapsed cap: only max_retry_after_s (60 s) stops it
    clock = FakeClock()
    policy = RetryPolicy(RetrySettings(max_retry_after_s=60.0, max_elapsed_s=600.0, max_attempts=6), clock)
    calls = 0

    async def limited() -> None:
        nonlocal calls
        calls += 1
        raise error_type("come back in two minutes", retry_after_s=120.0, status=503, **CTX)

    with pytest.raises(error_type):
        await policy.call(limited)
    assert calls == 1 and clock.sleeps == [] and clock.t == 0.0


async def test_a_retry_after_of_exactly_the_cap_is_waited_out() -> None:
    clock = FakeClock()
    policy = RetryPolicy(RetrySettings(max_retry_after_s=60.0, max_elapsed_s=600.0), clock)
    calls = 0

    async def limited_once() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RateLimitedError("wait a minute", retry_after_s=60.0, status=429, **CTX)
        return "ok"

    assert await policy.call(limited_once) == "ok"
    assert clock.sleeps == [60.0]
