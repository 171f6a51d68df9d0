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

Where the limits live is a :class:`~aggregator.coordination.Coordinator`'s business: by default an
:class:`~aggregator.coordination.InProcessCoordinator` (this process's limiters, exactly as above:
a slot takes them directly, with no I/O); with a database, a
:class:`~aggregator.coordination.PostgresCoordinator` gives every process using the same provider
account (API key) the same windows, buckets, pauses, concurrency caps and job slots, with the same
exactness (see :mod:`aggregator.coordination.postgres`).
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Protocol

from aggregator.clock import Clock
from aggregator.contract import Limits, RateLimitSpec
from aggregator.coordination.base import (
    JOBS_POOL,
    PAUSE_GATE,
    Coordinator,
    LeasePool,
    RateLimit,
    endpoint_pool,
)
from aggregator.log import get_logger
from aggregator.telemetry import metrics as telemetry_metrics

if TYPE_CHECKING:
    from aggregator.coordination.local import LocalLease

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
    """One request's hold on a concurrency cap and on a token of each bucket (released in reverse), in
    this process. A plain class rather than ``asynccontextmanager`` + ``AsyncExitStack``: it runs on
    every request.
    """

    __slots__ = ("_buckets", "_cap", "_lease")

    def __init__(self, cap: LocalLease | None, buckets: list[RateLimiter]) -> None:
        self._cap = cap
        self._buckets = buckets
        self._lease = 0

    async def __aenter__(self) -> None:
        if self._cap is not None:
            self._lease = await self._cap.acquire()
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
            self._cap.release_now(self._lease)


class _SharedSlot:
    """:class:`_Slot` through a shared coordinator: the cap is a lease, the buckets one atomic ticket."""

    __slots__ = ("_cap", "_lease", "_limit", "_ticket")

    def __init__(self, cap: LeasePool | None, limit: RateLimit) -> None:
        self._cap = cap
        self._limit = limit
        self._lease: object = None
        self._ticket: object = None

    async def __aenter__(self) -> None:
        if self._cap is not None:
            self._lease = await self._cap.acquire()
        try:
            self._ticket = await self._limit.acquire()
        except BaseException:
            if self._cap is not None:
                await self._cap.release(self._lease)
            raise

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        try:
            await self._limit.release(self._ticket)
        finally:
            if self._cap is not None:
                await self._cap.release(self._lease)


class ProviderLimiter:
    """Every limit of one provider account, shared by all its jobs (and, through a shared
    :class:`~aggregator.coordination.Coordinator`, by every process using the same account).

    Args:
        provider: registry name; limits: its documented buckets, caps and job slots.
        clock: the clock every wait runs on.
        coordinator: where the limits live; default a new
            :class:`~aggregator.coordination.InProcessCoordinator` (this limiter's alone, as before).
            In process, slots take the limiters directly (no I/O, no extra suspension).
        account: the account the limits belong to (:func:`~aggregator.coordination.account_fingerprint`);
            default ``provider``.
    """

    def __init__(self, provider: str, limits: Limits, clock: Clock, *, coordinator: Coordinator | None = None,
                 account: str | None = None) -> None:
        from aggregator.coordination.local import InProcessCoordinator  # it builds on this module's limiters

        self.provider = provider
        self.limits = limits
        self.clock = clock
        self.coordinator: Coordinator = coordinator if coordinator is not None else InProcessCoordinator()
        self.account = account or provider
        local = self.coordinator if isinstance(self.coordinator, InProcessCoordinator) else None
        self._local = local
        jobs = limits.max_concurrent_jobs
        self._for_endpoint: dict[str, list[RateLimiter]] = {}
        self._shared_for: dict[str, RateLimit] = {}
        if local is not None:
            self._buckets = [(spec, local.local_limiter(self.account, spec, clock)) for spec in limits.rate_limits]
            self._gate = local.local_gate(self.account, clock, f"{provider}:unlimited")  # endpoints no limit covers
            self._caps: dict[str, LocalLease] = {
                ep: local.local_pool(self.account, endpoint_pool(ep), n, clock) for ep, n in limits.concurrency.items()}
            self._local_jobs = local.local_pool(self.account, JOBS_POOL, jobs, clock) if jobs else None
            self.job_slots: LeasePool | None = self._local_jobs
        else:
            self._local_jobs = None
            self._shared_caps = {ep: self.coordinator.lease_pool(self.account, endpoint_pool(ep), n, clock)
                                 for ep, n in limits.concurrency.items()}
            self.job_slots = self.coordinator.lease_pool(self.account, JOBS_POOL, jobs, clock) if jobs else None

    def _covering(self, endpoint: str) -> list[RateLimitSpec]:
        return [spec for spec in self.limits.rate_limits if "*" in spec.endpoints or endpoint in spec.endpoints]

    def buckets_for(self, endpoint: str) -> Sequence[_Named]:
        """The buckets a request to ``endpoint`` takes a token of; an endpoint no documented limit covers
        gets the provider's pause gate, so a 429 there still pauses every request to it."""
        if self._local is None:
            return [_Name(name) for name in self._shared(endpoint).names]
        return self._local_buckets(endpoint)

    def _local_buckets(self, endpoint: str) -> list[RateLimiter]:
        buckets = self._for_endpoint.get(endpoint)
        if buckets is None:
            covering: list[RateLimiter] = [
                lim for spec, lim in self._buckets if "*" in spec.endpoints or endpoint in spec.endpoints]
            buckets = self._for_endpoint[endpoint] = covering or [self._gate]
        return buckets

    def _shared(self, endpoint: str) -> RateLimit:
        limit = self._shared_for.get(endpoint)
        if limit is None:
            limit = self._shared_for[endpoint] = self.coordinator.rate_limit(
                self.account, self._covering(endpoint), self.clock)
        return limit

    def slot(self, endpoint: str) -> AbstractAsyncContextManager[None]:
        """Hold a concurrency slot and a token of every bucket for one request to ``endpoint``.

        Raises (on entry):
            CoordinationUnavailableError: a shared coordinator cannot be reached (nothing may be sent).
        """
        slot: AbstractAsyncContextManager[None] = (
            _SharedSlot(self._shared_caps.get(endpoint), self._shared(endpoint)) if self._local is None
            else _Slot(self._caps.get(endpoint), self._local_buckets(endpoint)))
        metrics = telemetry_metrics.ACTIVE  # deepsearch_rate_limit_wait_seconds, when metrics are enabled
        return slot if metrics is None else metrics.timed_slot(slot, self.provider, endpoint)

    async def pause(self, endpoint: str, seconds: float) -> None:
        """A 429 on ``endpoint``: pause the narrowest buckets that cover it (in every process sharing them).

        Raises:
            CoordinationUnavailableError: a shared pause could not be recorded.
        """
        specific = [spec.name for spec in self.limits.rate_limits if endpoint in spec.endpoints]
        names = specific or [spec.name for spec in self._covering(endpoint)] or [PAUSE_GATE]
        if self._local is not None:
            self._local.pause_now(self.account, names, seconds, self.clock)
            return
        await self.coordinator.pause(self.account, names, seconds, self.clock)

    @asynccontextmanager
    async def job_slot(self) -> AsyncIterator[None]:
        """Hold one of the provider's concurrent-job slots (no-op when it has no cap).

        Raises (on entry):
            CoordinationUnavailableError: a shared coordinator cannot be reached.
        """
        if self.job_slots is None:
            yield
            return
        if self._local is not None and self._local_jobs is not None:  # in process: no extra layers
            lease = await self._local_jobs.acquire()
            try:
                yield
            finally:
                self._local_jobs.release_now(lease)
            return
        async with self.job_slots.hold():
            yield


class _Named(Protocol):
    @property
    def name(self) -> str: ...


@dataclass(frozen=True, slots=True)
class _Name:
    name: str
