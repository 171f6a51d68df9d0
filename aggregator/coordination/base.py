"""The coordination interface: rate limits, leases, credit budgets and circuit breakers shared by every holder.

A :class:`Coordinator` is what the limits (:class:`~aggregator.limits.ProviderLimiter`) and the
HTTP boundary's account budgets ask before a request is sent. Two implementations pass one contract
suite (``tests/coordination``):

- :class:`~aggregator.coordination.local.InProcessCoordinator`: one process (today's limiter,
  semaphores and budget logic), the default, with no I/O on the hot path;
- :class:`~aggregator.coordination.postgres.PostgresCoordinator`: every process that uses one
  PostgreSQL database shares the same windows, buckets, pauses, leases and budgets, exactly.

Keys. Limits belong to a provider *account*, named by :func:`account_fingerprint` (the provider
and a hash of its API key: never the key). A bucket is ``(account, spec.name)``; a lease pool
``(account, name)`` (``"jobs"`` for the provider's concurrent-job slots, ``"endpoint:<METHOD
/template>"`` for a per-endpoint concurrency cap); a budget a :class:`BudgetScope` plus the start
of its current period; a circuit (:mod:`aggregator.breaker`) the account.

Time. Durations given to a coordinator are seconds of the caller's :class:`~aggregator.clock.Clock`
(virtual seconds on a :class:`~aggregator.clock.ScaledClock`), except ``lease_ttl_s``, which is
real seconds: it bounds how long a dead process can hold something, and processes die in real time.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from pydantic import SecretStr

from aggregator.clock import Clock
from aggregator.contract import RateLimitSpec

__all__ = [
    "DEFAULT_LEASE_TTL_S",
    "JOBS_POOL",
    "PAUSE_GATE",
    "BudgetHold",
    "BudgetScope",
    "BudgetUsage",
    "CircuitPolicy",
    "CircuitState",
    "CircuitView",
    "Coordinator",
    "LeasePool",
    "Period",
    "RateLimit",
    "account_fingerprint",
    "endpoint_pool",
    "period_start",
]

Period = Literal["day", "week", "month", "total"]
CircuitState = Literal["closed", "open", "half_open"]
DEFAULT_LEASE_TTL_S = 30.0  # real seconds a dead holder keeps a lease, an in-flight request or a reservation
JOBS_POOL = "jobs"  # the lease pool of a provider's concurrent-job slots
PAUSE_GATE = "*"  # the bucket name of an account's pause gate (endpoints no documented limit covers)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def account_fingerprint(provider: str, api_key: SecretStr | str | None) -> str:
    """The key limits and budgets of one provider account are shared under: ``"<provider>-<16 hex>"``,
    the first 16 hex digits of ``sha256(provider NUL key)``. The key itself is never stored or logged;
    without a key, every keyless client of ``provider`` shares one account."""
    secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else (api_key or "")
    digest = hashlib.sha256(f"{provider}\0{secret}".encode()).hexdigest()[:16]
    return f"{provider}-{digest}"


def endpoint_pool(endpoint: str) -> str:
    """The lease pool name of ``endpoint``'s concurrency cap (``"endpoint:POST /search/query"``)."""
    return f"endpoint:{endpoint}"


def period_start(period: Period, now: datetime) -> datetime:
    """The UTC start of the budget period that contains ``now``: midnight (``day``), Monday midnight
    (``week``, ISO weeks), the first of the month (``month``), or 1970-01-01 (``total``: one period)."""
    if period == "total":
        return _EPOCH
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    return day


@dataclass(frozen=True, slots=True)
class BudgetScope:
    """One credit budget: at most ``limit`` credits spent (settled + reserved) per ``period``.

    ``key`` names what it bounds: ``"run:<run id>"``, ``"account:<fingerprint>"`` or ``"batch:<batch
    id>"``; ``label`` is how a refusal names it (:class:`~aggregator.errors.BudgetExceededError`'s ``budget``).
    """

    key: str
    limit: float
    period: Period = "total"
    label: str = "budget"

    @classmethod
    def for_run(cls, run_id: str, limit: float) -> BudgetScope:
        """A run's ``--budget`` (one period: the run)."""
        return cls(f"run:{run_id}", limit, "total", "the run's budget")

    @classmethod
    def for_account(cls, account: str, limit: float, period: Period) -> BudgetScope:
        """An account-wide budget per ``period`` (``[budgets.<provider>]``)."""
        label = (f"the account's total budget of {limit:g} credits" if period == "total"
                 else f"the account budget of {limit:g} credits per {period}")
        return cls(f"account:{account}", limit, period, label)

    @classmethod
    def for_batch(cls, batch_id: str, limit: float) -> BudgetScope:
        """A batch's ``--budget``: every paid call of every row, in every worker (one period: the batch)."""
        return cls(f"batch:{batch_id}", limit, "total", f"the batch's budget of {limit:g} credits")


@dataclass(slots=True)
class BudgetHold:
    """Credits reserved for one paid call in every scope that applied; settle or release it once.

    ``parts`` are ``(scope key, period start)`` pairs; ``token`` is the implementation's handle.
    """

    token: object
    amount: float
    provider: str
    parts: tuple[tuple[str, datetime], ...]
    open: bool = True


@dataclass(frozen=True, slots=True)
class BudgetUsage:
    """A budget's current period: ``spent`` (settled) and ``reserved`` (in flight) of ``limit``."""

    limit: float
    spent: float
    reserved: float
    period_start: datetime

    @property
    def available(self) -> float:
        return max(0.0, self.limit - self.spent - self.reserved)


@dataclass(frozen=True, slots=True)
class CircuitPolicy:
    """When a provider account's circuit opens (:mod:`aggregator.breaker`; ``[breaker]`` settings).

    It opens after ``failures`` consecutive failed calls, or when at least ``min_calls`` calls of the
    last ``window_s`` seconds (estimated over two tumbling windows, weighted) failed at a rate of
    ``failure_rate`` or more; it stays open ``cooldown_s`` (or the failure's ``Retry-After`` when longer).
    Durations are seconds of the caller's clock.
    """

    failures: int = 8
    failure_rate: float = 0.5
    window_s: float = 60.0
    min_calls: int = 20
    cooldown_s: float = 30.0


@dataclass(frozen=True, slots=True)
class CircuitView:
    """A provider account's circuit as one coordinator call left it.

    ``retry_in_s``: clock seconds until a probe may be sent (``open``; 0 once due, and when not open).
    ``failures``: failures counted since it last closed (what opened it, plus failed probes).
    ``probe``: this caller was granted the half-open probe (:meth:`Coordinator.circuit_probe`).
    ``changed``: this call changed the state (tripped it, granted the probe, closed or reopened it).
    """

    state: CircuitState = "closed"
    retry_in_s: float = 0.0
    failures: int = 0
    probe: bool = False
    changed: bool = False


class RateLimit(ABC):
    """The buckets one request to an endpoint takes together (every documented limit covering it).

    A request is counted from :meth:`acquire` (in flight) and stamped at :meth:`release` (its
    response arrived, or it failed): the server received it no later than that stamp.
    """

    names: tuple[str, ...]

    @abstractmethod
    async def acquire(self) -> object:
        """Wait until the request may be sent; count it in flight. Returns the ticket to release.

        Raises:
            CoordinationUnavailableError: the shared state cannot be reached (nothing may be sent).
        """

    @abstractmethod
    async def release(self, ticket: object) -> None:
        """The request's response arrived (or it failed): stamp it now."""


class LeasePool(ABC):
    """At most ``capacity`` leases held at once, across every holder sharing the pool.

    A holder that stops heartbeating (a killed process) loses its leases ``lease_ttl_s`` real seconds
    after its last heartbeat, so a slot is never leaked for longer.
    """

    name: str
    capacity: int

    @abstractmethod
    async def acquire(self) -> object:
        """Wait (first come, first served within a process) for a free lease; returns it.

        Raises:
            CoordinationUnavailableError: the shared state cannot be reached.
        """

    @abstractmethod
    async def release(self, lease: object) -> None:
        """Give ``lease`` back (a lease already expired or released is ignored)."""

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        """Hold one lease for the block."""
        lease = await self.acquire()
        try:
            yield
        finally:
            await self.release(lease)


class Coordinator(ABC):
    """Shared rate limits, leases and credit budgets (see the module docstring).

    One instance per process (or per :class:`~aggregator.Aggregator`); instances that share a
    backend (a PostgreSQL database, or one in-process state) share every limit, lease and budget.
    ``holder`` names this instance in the shared state.
    """

    holder: str
    circuit_sync_s: float = 0.0
    """Real seconds a :class:`~aggregator.breaker.CircuitBreaker` may keep counts and a closed state in its
    local mirror before syncing (0: every call goes through the coordinator, which costs no I/O in process)."""

    @abstractmethod
    def rate_limit(self, account: str, specs: Sequence[RateLimitSpec], clock: Clock) -> RateLimit:
        """The buckets ``specs`` of ``account`` taken together by one request (no specs: the account's
        pause gate, which only holds requests during a 429's pause)."""

    @abstractmethod
    async def pause(self, account: str, buckets: Sequence[str], seconds: float, clock: Clock) -> None:
        """Send nothing through ``account``'s ``buckets`` (names; :data:`PAUSE_GATE` for the gate) for
        ``seconds`` (a 429's ``Retry-After``), in every process.

        Raises:
            CoordinationUnavailableError: the pause could not be shared.
        """

    @abstractmethod
    def lease_pool(self, account: str, name: str, capacity: int, clock: Clock) -> LeasePool:
        """``account``'s pool ``name`` of ``capacity`` leases (:data:`JOBS_POOL`, :func:`endpoint_pool`)."""

    def drop_idle_pool(self, account: str, name: str) -> None:
        """Forget ``account``'s pool ``name`` when no lease of it is held or awaited (pools made per key,
        such as the result cache's one per request, would otherwise pile up in a long-lived process).
        Only in-process state is kept per pool; a shared backend has nothing to drop (the default)."""
        return None

    @abstractmethod
    async def reserve(self, scopes: Sequence[BudgetScope], amount: float, clock: Clock, *,
                      provider: str) -> BudgetHold:
        """Reserve ``amount`` credits in every scope's current period, atomically: all or none.

        Raises:
            BudgetExceededError: a scope cannot cover it (``budget`` names the scope's label).
            CoordinationUnavailableError: the shared state cannot be reached (nothing reserved).
        """

    @abstractmethod
    async def settle(self, hold: BudgetHold, actual: float | None = None) -> None:
        """The call succeeded: charge ``actual`` (default: what was reserved, never more)."""

    @abstractmethod
    async def release(self, hold: BudgetHold) -> None:
        """The call failed (providers refund failed calls): give the reservation back."""

    @abstractmethod
    async def usage(self, scope: BudgetScope, clock: Clock) -> BudgetUsage:
        """The scope's current period (zero when nothing was reserved in it yet)."""

    # -- circuit breakers (aggregator.breaker keeps a local mirror and calls these) ----------------------
    @abstractmethod
    async def circuit_report(self, account: str, policy: CircuitPolicy, clock: Clock, *, calls: int,
                             failures: int, streak: int, broken: bool,
                             retry_after_s: float | None = None) -> CircuitView:
        """Count ``calls`` finished calls of ``account``, ``failures`` of them failed, and return its circuit.

        ``streak`` is the failures at the end of the batch (after its last success); ``broken`` says
        the batch held a success, so the shared run of consecutive failures restarts at ``streak``
        (else it grows by it). Counted only while the circuit is closed; when a threshold of
        ``policy`` is met it opens (``changed``) for ``max(policy.cooldown_s, retry_after_s)``.
        ``calls=0`` only reads the state.

        Raises:
            CoordinationUnavailableError: the shared state cannot be reached.
        """

    @abstractmethod
    async def circuit_probe(self, account: str, policy: CircuitPolicy, clock: Clock) -> CircuitView:
        """Claim the half-open probe, atomically across every holder: granted (``probe``) to one caller
        once the circuit's open time is over and no live probe is in flight (a probe whose holder died
        is given up after the lease TTL). A closed circuit is returned as it is.

        Raises:
            CoordinationUnavailableError: the shared state cannot be reached.
        """

    @abstractmethod
    async def circuit_settle(self, account: str, policy: CircuitPolicy, clock: Clock, *, ok: bool | None,
                             retry_after_s: float | None = None) -> CircuitView:
        """The probe this holder was granted ended: ``ok`` closes the circuit (counts restart), a failure
        opens it again for ``max(policy.cooldown_s, retry_after_s)``, None (cancelled, no answer either
        way) hands the probe to the next caller at once. Ignored when this holder holds no probe.

        Raises:
            CoordinationUnavailableError: the shared state cannot be reached.
        """

    @abstractmethod
    async def abandon(self) -> None:
        """Stop heartbeating and drop everything without giving anything back, as a killed process
        would (its leases and in-flight requests expire after the TTL; its reservations then count
        as spent). For tests, and for a process that must stop at once."""

    @abstractmethod
    async def aclose(self) -> None:
        """Give back what this instance still holds and close its connections."""
