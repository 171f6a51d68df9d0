"""Client-side rate limits, concurrency caps and 429 pauses, on the injected clock.

Why our own limiter rather than aiolimiter: it must run on the injectable (time-scaled) clock, be
paused by a provider's ``Retry-After``, and guarantee *zero* 429s against a server that counts
requests when it receives them. Two algorithms, as providers document them:

- :class:`SlidingWindowLimiter` — at most ``limit`` requests in any ``window_s``. A request is
  counted from the moment it is *sent* (as in flight) and stamped when its response *arrives*.
  The server received it no later than that stamp, so spacing stamps ``window_s`` apart is exact
  whatever the network latency: no safety margin is needed and utilization stays near 100%.
- :class:`TokenBucketLimiter` — ``rate`` tokens per second up to ``burst``. The same idea: a
  request reserves a token in flight and consumes it when the response arrives, which never
  overstates the server's bucket, so the whole documented burst is usable.

:class:`ProviderLimiter` combines the buckets that apply to an endpoint (e.g. Sixtyfour's
``POST /search/query`` is under both the 200/min query limit and the 500/min general limit), the
per-endpoint concurrency caps, and the provider's cap on concurrent *jobs* (job slots, held from
submit until the job ends — Sixtyfour allows 5 deep searches in flight per org).

Waiters are served first come, first served (one lock per limiter).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Protocol

from aggregator.clock import Clock
from aggregator.contract import Limits, RateLimitSpec
from aggregator.log import get_logger

__all__ = [
    "PauseGate",
    "ProviderLimiter",
    "RateLimiter",
    "SlidingWindowLimiter",
    "TokenBucketLimiter",
    "build_limiter",
]

log = get_logger("aggregator.limits")


class RateLimiter(Protocol):
    name: str

    async def acquire(self) -> None:
        """Wait until one request may be sent, and count it."""
        ...

    def release(self) -> None:
        """The request's response arrived (or the request failed)."""
        ...

    def pause(self, seconds: float) -> None:
        """Send nothing for ``seconds`` (a 429's Retry-After)."""
        ...


class _Pausable(ABC):
    def __init__(self, name: str, clock: Clock) -> None:
        self.name = name
        self.clock = clock
        self._paused_until = 0.0
        self._lock = asyncio.Lock()
        self._in_flight = 0
        self._released = asyncio.Event()

    @abstractmethod
    def _delay(self, now: float) -> float | None:
        """0 = send now; seconds to wait; None = wait for an in-flight response."""

    async def acquire(self) -> None:
        """Wait (first come, first served) until one request may be sent; count it in flight."""
        async with self._lock:
            while True:
                delay = self._delay(self.clock.monotonic())
                if delay == 0.0:
                    self._in_flight += 1
                    return
                if delay is None:
                    self._released.clear()
                    await self._released.wait()
                else:
                    await self.clock.sleep(delay)

    def pause(self, seconds: float) -> None:
        until = self.clock.monotonic() + max(0.0, seconds)
        if until > self._paused_until:
            self._paused_until = until
            log.info("ratelimit.paused", bucket=self.name, pause_s=round(seconds, 3))

    def _pause_left(self, now: float) -> float:
        return max(0.0, self._paused_until - now)


class SlidingWindowLimiter(_Pausable):
    """At most ``limit`` requests in any ``window_s`` seconds (counted in flight, stamped on arrival)."""

    def __init__(self, name: str, limit: int, window_s: float, clock: Clock) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"rate limit {name}: limit >= 1 and window_s > 0 required")
        super().__init__(name, clock)
        self.limit = limit
        self.window_s = window_s
        self._stamps: deque[float] = deque()

    def _delay(self, now: float) -> float | None:
        """0 = send now; seconds to wait; None = wait for an in-flight response."""
        while self._stamps and self._stamps[0] <= now - self.window_s:
            self._stamps.popleft()
        paused = self._pause_left(now)
        if paused > 0:
            return paused
        if len(self._stamps) + self._in_flight < self.limit:
            return 0.0
        if self._stamps:  # the oldest stamp leaves the window first
            return max(self._stamps[0] + self.window_s - now, 1e-6)
        return None

    def release(self) -> None:
        self._in_flight = max(0, self._in_flight - 1)
        self._stamps.append(self.clock.monotonic())
        self._released.set()


class TokenBucketLimiter(_Pausable):
    """``rate_per_s`` tokens per second up to ``burst``, one per request.

    A request reserves a token while in flight and consumes it when its response arrives, the
    latest moment the server can have consumed it. Consuming later never overstates the server's
    bucket, so latency jitter cannot draw a 429 and no burst needs to be held back.
    """

    def __init__(self, name: str, rate_per_s: float, burst: int, clock: Clock) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError(f"token bucket {name}: rate_per_s > 0 and burst >= 1 required")
        super().__init__(name, clock)
        self.rate_per_s = rate_per_s
        self.capacity = float(burst)
        self._tokens = self.capacity
        self._updated = clock.monotonic()

    def _refill(self, now: float) -> None:
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate_per_s)
        self._updated = now

    def _delay(self, now: float) -> float | None:
        """0 = send now; seconds to wait; None = wait for an in-flight response."""
        self._refill(now)
        paused = self._pause_left(now)
        if paused > 0:
            return paused
        needed = self._in_flight + 1
        if self._tokens >= needed:
            return 0.0
        if needed > self.capacity:
            return None
        return (needed - self._tokens) / self.rate_per_s

    def release(self) -> None:
        self._refill(self.clock.monotonic())
        self._tokens -= 1.0
        self._in_flight = max(0, self._in_flight - 1)
        self._released.set()


class PauseGate(_Pausable):
    """No limit of its own: only holds requests for a 429's ``Retry-After`` (endpoints no documented
    rate limit covers, e.g. Extruct's, still honour a pause for every request, not only the retried one)."""

    def _delay(self, now: float) -> float | None:
        return self._pause_left(now)

    def release(self) -> None:
        self._in_flight = max(0, self._in_flight - 1)


def build_limiter(spec: RateLimitSpec, clock: Clock) -> RateLimiter:
    """A limiter for one documented rate limit."""
    if spec.kind == "token_bucket":
        return TokenBucketLimiter(spec.name, spec.limit / spec.window_s, spec.burst or spec.limit, clock)
    return SlidingWindowLimiter(spec.name, spec.limit, spec.window_s, clock)


class _Slot:
    """One request's hold on a concurrency cap and on a token of each bucket (released in reverse).

    A plain class rather than ``asynccontextmanager`` + ``AsyncExitStack``: it runs on every request.
    """

    __slots__ = ("_buckets", "_cap")

    def __init__(self, cap: asyncio.Semaphore | None, buckets: list[RateLimiter]) -> None:
        self._cap = cap
        self._buckets = buckets

    async def __aenter__(self) -> None:
        if self._cap is not None:
            await self._cap.acquire()
        held = 0
        try:
            for bucket in self._buckets:
                await bucket.acquire()
                held += 1
        except BaseException:
            self._release(held)
            raise

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        self._release(len(self._buckets))

    def _release(self, held: int) -> None:
        for bucket in reversed(self._buckets[:held]):
            bucket.release()
        if self._cap is not None:
            self._cap.release()


class ProviderLimiter:
    """Every limit of one provider (one set per API key, shared by all its jobs)."""

    def __init__(self, provider: str, limits: Limits, clock: Clock) -> None:
        self.provider = provider
        self.limits = limits
        self._buckets = [(spec, build_limiter(spec, clock)) for spec in limits.rate_limits]
        self._for_endpoint: dict[str, list[RateLimiter]] = {}
        self._gate = PauseGate(f"{provider}:unlimited", clock)  # endpoints no rate limit covers
        self._caps = {ep: asyncio.Semaphore(n) for ep, n in limits.concurrency.items()}
        self.job_slots = (
            asyncio.Semaphore(limits.max_concurrent_jobs) if limits.max_concurrent_jobs else None
        )

    def buckets_for(self, endpoint: str) -> list[RateLimiter]:
        """The buckets a request to ``endpoint`` takes a token of; an endpoint no documented limit covers
        gets the provider's :class:`PauseGate`, so a 429 there still pauses every request to it."""
        buckets = self._for_endpoint.get(endpoint)
        if buckets is None:
            covering: list[RateLimiter] = [
                lim for spec, lim in self._buckets if "*" in spec.endpoints or endpoint in spec.endpoints]
            buckets = self._for_endpoint[endpoint] = covering or [self._gate]
        return buckets

    def slot(self, endpoint: str) -> AbstractAsyncContextManager[None]:
        """Hold a concurrency slot and a token of every bucket for one request to ``endpoint``."""
        return _Slot(self._caps.get(endpoint), self.buckets_for(endpoint))

    def pause(self, endpoint: str, seconds: float) -> None:
        """A 429 on ``endpoint``: pause the narrowest buckets that cover it."""
        specific = [lim for spec, lim in self._buckets if endpoint in spec.endpoints]
        for bucket in specific or self.buckets_for(endpoint):
            bucket.pause(seconds)

    @asynccontextmanager
    async def job_slot(self) -> AsyncIterator[None]:
        """Hold one of the provider's concurrent-job slots (no-op when it has no cap)."""
        if self.job_slots is None:
            yield
            return
        async with self.job_slots:
            yield
