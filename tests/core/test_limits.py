"""Client-side rate limits: never more than the limit in any window, pauses, caps, job slots."""

from __future__ import annotations

import asyncio

import pytest

from aggregator.contract import Limits, RateLimitSpec
from aggregator.limits import ProviderLimiter, SlidingWindowLimiter, TokenBucketLimiter
from tests.fakes import FakeClock, VirtualClock, virtual_time


def max_in_any_window(stamps: list[float], window_s: float) -> int:
    stamps = sorted(stamps)
    best, lo = 0, 0
    for hi, t in enumerate(stamps):
        while stamps[lo] <= t - window_s:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@virtual_time
async def test_sliding_window_never_exceeds_its_limit_under_concurrency() -> None:
    clock = VirtualClock()
    limiter = SlidingWindowLimiter("query", limit=10, window_s=6.0, clock=clock)
    sent: list[float] = []

    async def one_request() -> None:
        await limiter.acquire()
        sent.append(clock.monotonic())
        await clock.sleep(0.2)  # request latency
        limiter.release()

    await asyncio.gather(*(one_request() for _ in range(35)))
    assert max_in_any_window(sent, 6.0) <= 10
    # and never needlessly slow: each batch of 10 goes as soon as the previous one's response
    # stamps (at +0.2 s) leave the window, in exact virtual seconds
    assert sent == pytest.approx([0.0] * 10 + [6.2] * 10 + [12.4] * 10 + [18.6] * 5, abs=1e-9)


async def test_sliding_window_lets_a_burst_up_to_the_limit_through_at_once() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter("query", limit=5, window_s=60.0, clock=clock)
    for _ in range(5):
        await limiter.acquire()
        limiter.release()
    assert clock.t == 0.0
    await limiter.acquire()  # the 6th waits for the first to leave the window
    assert clock.t == 60.0


async def test_a_pause_holds_every_request_for_its_duration() -> None:
    clock = FakeClock()
    limiter = SlidingWindowLimiter("query", limit=100, window_s=60.0, clock=clock)
    limiter.pause(12.0)
    await limiter.acquire()
    assert clock.t == 12.0


async def test_token_bucket_allows_the_full_burst_then_its_rate() -> None:
    clock = FakeClock()
    bucket = TokenBucketLimiter("start", rate_per_s=5.0, burst=25, clock=clock)
    for _ in range(25):
        await bucket.acquire()
        bucket.release()
    assert clock.t == 0.0
    await bucket.acquire()
    assert abs(clock.t - 0.2) < 1e-9


@virtual_time
async def test_token_bucket_counts_requests_in_flight_and_consumes_on_response() -> None:
    clock = VirtualClock()
    bucket = TokenBucketLimiter("status", rate_per_s=2.0, burst=3, clock=clock)
    sent: list[float] = []
    arrivals: list[float] = []  # when the "server" counted each request: at the response

    async def one_request() -> None:
        await bucket.acquire()
        sent.append(clock.monotonic())
        await clock.sleep(0.3)  # latency
        arrivals.append(clock.monotonic())
        bucket.release()

    await asyncio.gather(*(one_request() for _ in range(9)))
    # a server bucket of 2/s burst 3 never runs dry for these arrivals
    level, last = 3.0, 0.0
    for t in sorted(arrivals):
        level = min(3.0, level + (t - last) * 2.0) - 1.0
        last = t
        assert level >= -1e-6
    # the burst of 3 goes at once; the 4th waits for a token after the burst's responses consumed
    # theirs (0.3 s + 1 token at 2/s), then one every 0.5 s
    assert sent == pytest.approx([0.0, 0.0, 0.0, 0.8, 1.3, 1.8, 2.3, 2.8, 3.3], abs=1e-9)


@virtual_time
async def test_a_pause_holds_requests_already_waiting_and_those_that_come_later() -> None:
    clock = VirtualClock()
    limiter = ProviderLimiter("sixtyfour", Limits(rate_limits=(
        RateLimitSpec("query", 200, 60.0, ("POST /search/query",)),
        RateLimitSpec("general", 500, 60.0, ("*",)),
    )), clock)
    sent: dict[str, float] = {}

    async def request(name: str, endpoint: str, at_s: float) -> None:
        await clock.sleep(at_s)
        async with limiter.slot(endpoint):
            sent[name] = clock.monotonic()

    async def rate_limited_at(at_s: float) -> None:
        await clock.sleep(at_s)
        await limiter.pause("GET /search/status/{task_id}", 30.0)  # a 429 with Retry-After: 30 at t=5

    await asyncio.gather(
        rate_limited_at(5.0),
        request("before", "GET /search/status/{task_id}", 1.0),
        request("status at 6", "GET /search/status/{task_id}", 6.0),
        request("status at 20", "GET /search/status/{task_id}", 20.0),
        request("query at 34", "POST /search/query", 34.0),  # general covers the query endpoint too
        request("after", "GET /search/status/{task_id}", 40.0),
    )
    assert sent == {"before": 1.0, "status at 6": 35.0, "status at 20": 35.0, "query at 34": 35.0,
                    "after": 40.0}


async def test_provider_limiter_applies_endpoint_and_general_buckets_and_pauses_the_narrowest() -> None:
    clock = FakeClock()
    limits = Limits(rate_limits=(
        RateLimitSpec("query", 200, 60.0, ("POST /search/query",)),
        RateLimitSpec("general", 500, 60.0, ("*",)),
    ))
    limiter = ProviderLimiter("sixtyfour", limits, clock)
    assert [b.name for b in limiter.buckets_for("POST /search/query")] == ["query", "general"]
    assert [b.name for b in limiter.buckets_for("GET /search/status/{task_id}")] == ["general"]
    await limiter.pause("POST /search/query", 30.0)
    async with limiter.slot("GET /search/status/{task_id}"):
        assert clock.t == 0.0  # the status endpoint is not paused by a query 429
    async with limiter.slot("POST /search/query"):
        assert clock.t == 30.0


@virtual_time
async def test_job_slots_cap_concurrent_jobs() -> None:
    clock = VirtualClock()
    limiter = ProviderLimiter("sixtyfour", Limits(max_concurrent_jobs=2), clock)
    running = peak = 0
    ended: list[float] = []

    async def job() -> None:
        nonlocal running, peak
        async with limiter.job_slot():
            running += 1
            peak = max(peak, running)
            await clock.sleep(10.0)
            running -= 1
            ended.append(clock.monotonic())

    await asyncio.gather(*(job() for _ in range(6)))
    assert peak == 2
    assert ended == [10.0, 10.0, 20.0, 20.0, 30.0, 30.0]  # two at a time, back to back


async def test_a_429_on_an_endpoint_no_rate_limit_covers_still_pauses_every_such_request() -> None:
    """Extruct documents no rate limit: its 429's Retry-After must still hold the provider's other requests."""
    clock = FakeClock()
    limiter = ProviderLimiter("extruct", Limits(), clock)
    await limiter.pause("GET /v1/discovery_tasks/{task_id}/results", 12.0)
    async with limiter.slot("POST /v1/discovery_tasks"):
        assert clock.t == 12.0
    async with limiter.slot("GET /v1/discovery_tasks/{task_id}"):
        assert clock.t == 12.0  # the pause is over; nothing else holds it
