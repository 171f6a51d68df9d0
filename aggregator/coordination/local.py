"""In-process coordination: today's limiters, a FIFO lease pool and budgets, shared within one process.

:class:`InProcessCoordinator` is the default (no database): every limit lives in this process, so
taking a slot costs what it always did (no I/O, no extra suspension). Coordinators built on one
:class:`LocalState` share every bucket, pause, lease pool and budget, as processes sharing one
database do; each :class:`~aggregator.Aggregator` gets its own state unless one is passed.

The rate limiters are :mod:`aggregator.limits`' (exact on the injected clock); leases are
:class:`LocalLeasePool` (first come, first served, like ``asyncio.Semaphore``, plus expiry for a holder
that was abandoned, :meth:`~InProcessCoordinator.abandon`); budgets are booked synchronously, so concurrent
reservations in one event loop can never overshoot together.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections import deque
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime

from aggregator.clock import Clock
from aggregator.contract import RateLimitSpec
from aggregator.coordination.base import (
    DEFAULT_LEASE_TTL_S,
    PAUSE_GATE,
    BudgetHold,
    BudgetScope,
    BudgetUsage,
    CircuitPolicy,
    CircuitState,
    CircuitView,
    Coordinator,
    LeasePool,
    RateLimit,
    period_start,
)
from aggregator.errors import BudgetExceededError
from aggregator.limits import PauseGate, RateLimiter, build_limiter

__all__ = ["InProcessCoordinator", "LocalLeasePool", "LocalState"]

_EPSILON = 1e-9  # credits: float sums of reservations must not refuse an exact fit


@dataclass(slots=True)
class _Held:
    holder: str
    expires_at: float | None = None  # clock seconds; None while its holder lives


class LocalLeasePool:
    """``capacity`` leases, granted first come, first served (an ``asyncio.Semaphore`` that knows its
    holders). A lease of an abandoned holder expires ``ttl`` after the abandonment."""

    def __init__(self, name: str, capacity: int, clock: Clock) -> None:
        if capacity < 1:
            raise ValueError(f"lease pool {name}: capacity >= 1 required")
        self.name = name
        self.capacity = capacity
        self.clock = clock
        self._held: dict[int, _Held] = {}
        self._waiters: deque[tuple[asyncio.Future[int], str]] = deque()
        self._ids = itertools.count(1)
        self._expiring = 0  # held leases with an expiry (their holder was abandoned)

    @property
    def idle(self) -> bool:
        """No lease held (expired ones excluded) and nobody waiting for one."""
        return not self._waiters and self.in_use == 0

    @property
    def in_use(self) -> int:
        """Leases held now (expired ones excluded)."""
        self._purge()
        return len(self._held)

    def _grant(self, holder: str) -> int:
        lease = next(self._ids)
        self._held[lease] = _Held(holder)
        return lease

    def _purge(self) -> None:
        if not self._expiring:
            return
        now = self.clock.monotonic()
        for lease, held in list(self._held.items()):
            if held.expires_at is not None and held.expires_at <= now:
                del self._held[lease]
                self._expiring -= 1

    async def acquire(self, holder: str) -> int:
        """Wait for a free lease (FIFO); returns its id."""
        if not self._waiters and len(self._held) < self.capacity:
            return self._grant(holder)
        self._purge()
        if not self._waiters and len(self._held) < self.capacity:
            return self._grant(holder)
        waiter: tuple[asyncio.Future[int], str] = (asyncio.get_running_loop().create_future(), holder)
        self._waiters.append(waiter)
        try:
            return await waiter[0]
        except asyncio.CancelledError:
            future = waiter[0]
            if future.done() and not future.cancelled():
                self.release(future.result())  # granted as we were cancelled: hand it on
            else:
                with suppress(ValueError):
                    self._waiters.remove(waiter)
            raise

    def release(self, lease: int) -> None:
        """Give ``lease`` back and hand free leases to the waiters (an unknown lease is ignored)."""
        held = self._held.pop(lease, None)
        if held is not None and held.expires_at is not None:
            self._expiring -= 1
        self.dispatch()

    def dispatch(self) -> None:
        """Hand free leases (after dropping expired ones) to the waiters, first come first served."""
        self._purge()
        while self._waiters and len(self._held) < self.capacity:
            future, holder = self._waiters.popleft()
            if not future.done():
                future.set_result(self._grant(holder))

    def expire(self, holder: str, after_s: float) -> bool:
        """``holder`` died: its leases expire ``after_s`` clock seconds from now. Returns whether it held any."""
        deadline = self.clock.monotonic() + after_s
        found = False
        for held in self._held.values():
            if held.holder == holder and held.expires_at is None:
                held.expires_at = deadline
                self._expiring += 1
                found = True
        return found


class LocalLease(LeasePool):
    """One holder's handle on a :class:`LocalLeasePool` (``release_now`` is the synchronous release)."""

    __slots__ = ("_holder", "capacity", "name", "pool")

    def __init__(self, pool: LocalLeasePool, holder: str) -> None:
        self.pool = pool
        self.name = pool.name
        self.capacity = pool.capacity
        self._holder = holder

    async def acquire(self) -> int:
        return await self.pool.acquire(self._holder)

    def release_now(self, lease: object) -> None:
        if isinstance(lease, int):
            self.pool.release(lease)

    async def release(self, lease: object) -> None:
        self.release_now(lease)


class _LocalRateLimit(RateLimit):
    """Local limiters taken one after the other (released in reverse), as a request's slot takes them."""

    def __init__(self, limiters: list[RateLimiter]) -> None:
        self._limiters = limiters
        self.names = tuple(limiter.name for limiter in limiters)

    async def acquire(self) -> object:
        held = 0
        try:
            for limiter in self._limiters:
                await limiter.acquire()
                held += 1
        except BaseException:
            for limiter in reversed(self._limiters[:held]):
                limiter.release()
            raise
        return None

    async def release(self, ticket: object) -> None:
        for limiter in reversed(self._limiters):
            limiter.release()


@dataclass(slots=True)
class _Budget:
    limit: float
    spent: float = 0.0
    reserved: float = 0.0


@dataclass(slots=True)
class _Circuit:
    """One account's circuit; instants are seconds of the clock of its first user."""

    clock: Clock
    state: CircuitState = "closed"
    open_until: float = 0.0
    failures: int = 0  # since it last closed
    streak: int = 0  # consecutive failures (closed)
    window_start: float = 0.0
    calls: float = 0.0
    fails: float = 0.0
    prev_calls: float = 0.0
    prev_fails: float = 0.0
    probe_holder: str | None = None
    probe_expires: float = 0.0

    def view(self, now: float, *, probe: bool = False, changed: bool = False) -> CircuitView:
        retry_in = max(0.0, self.open_until - now) if self.state == "open" else 0.0
        return CircuitView(self.state, retry_in, self.failures, probe, changed)

    def roll(self, now: float, window_s: float) -> None:
        """Move to the window holding ``now`` (the last one becomes the previous, older ones are gone)."""
        elapsed = now - self.window_start
        if elapsed < window_s:
            return
        recent = elapsed < 2 * window_s
        self.prev_calls, self.prev_fails = (self.calls, self.fails) if recent else (0.0, 0.0)
        self.calls = self.fails = 0.0
        self.window_start = now if not recent else self.window_start + window_s

    def open(self, now: float, policy: CircuitPolicy, retry_after_s: float | None) -> None:
        self.state = "open"
        self.open_until = now + max(policy.cooldown_s, retry_after_s or 0.0)
        self.probe_holder = None

    def close(self, now: float) -> None:
        self.state, self.failures, self.streak, self.probe_holder = "closed", 0, 0, None
        self.window_start, self.calls, self.fails, self.prev_calls, self.prev_fails = now, 0.0, 0.0, 0.0, 0.0


def circuit_trips(streak: int, calls: float, fails: float, policy: CircuitPolicy) -> bool:
    """Whether a closed circuit opens: ``policy.failures`` consecutive failures, or a failure rate of
    ``policy.failure_rate`` over at least ``policy.min_calls`` calls (the window's estimate)."""
    return streak >= policy.failures or (calls >= policy.min_calls and fails >= policy.failure_rate * calls)


class LocalState:
    """What in-process coordinators built on it share: buckets, pauses, lease pools, budgets and circuits."""

    def __init__(self) -> None:
        self.buckets: dict[tuple[str, str], RateLimiter] = {}
        self.pending_pauses: dict[tuple[str, str], tuple[Clock, float]] = {}  # paused before first use
        self.pools: dict[tuple[str, str], LocalLeasePool] = {}
        self.budgets: dict[tuple[str, datetime], _Budget] = {}
        self.circuits: dict[str, _Circuit] = {}


class InProcessCoordinator(Coordinator):
    """Coordination within one process (see the module docstring).

    Args:
        state: shared with other coordinators (tests model processes this way); default: a new one.
        lease_ttl_s: real seconds an abandoned holder's leases live on.
        holder: this instance's name in the state (default: a random one).
    """

    def __init__(self, state: LocalState | None = None, *, lease_ttl_s: float = DEFAULT_LEASE_TTL_S,
                 holder: str | None = None) -> None:
        self.state = state if state is not None else LocalState()
        self.lease_ttl_s = lease_ttl_s
        self.holder = holder or f"local-{uuid.uuid4().hex[:12]}"
        self._holds: dict[object, BudgetHold] = {}
        self._hold_ids = itertools.count(1)
        self._timers: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"InProcessCoordinator(holder={self.holder!r})"

    # -- rate limits: the fast path hands ProviderLimiter the limiters themselves ---------------------
    def local_limiter(self, account: str, spec: RateLimitSpec, clock: Clock) -> RateLimiter:
        """The account's limiter of ``spec`` (created on first use; shared by every coordinator on the state)."""
        key = (account, spec.name)
        limiter = self.state.buckets.get(key)
        if limiter is None:
            limiter = self.state.buckets[key] = build_limiter(spec, clock)
            self._apply_pending_pause(key, limiter)
        return limiter

    def local_gate(self, account: str, clock: Clock, name: str = PAUSE_GATE) -> RateLimiter:
        """The account's pause gate (holds requests only during a 429's pause)."""
        key = (account, PAUSE_GATE)
        gate = self.state.buckets.get(key)
        if gate is None:
            gate = self.state.buckets[key] = PauseGate(name, clock)
            self._apply_pending_pause(key, gate)
        return gate

    def _apply_pending_pause(self, key: tuple[str, str], limiter: RateLimiter) -> None:
        pending = self.state.pending_pauses.pop(key, None)
        if pending is not None:
            clock, until = pending
            left = until - clock.monotonic()
            if left > 0:
                limiter.pause(left)

    def local_pool(self, account: str, name: str, capacity: int, clock: Clock) -> LocalLease:
        """This holder's handle on the account's lease pool ``name`` (created with ``capacity``)."""
        key = (account, name)
        pool = self.state.pools.get(key)
        if pool is None:
            pool = self.state.pools[key] = LocalLeasePool(f"{account}/{name}", capacity, clock)
        return LocalLease(pool, self.holder)

    def drop_idle_pool(self, account: str, name: str) -> None:
        pool = self.state.pools.get((account, name))
        if pool is not None and pool.idle:
            del self.state.pools[(account, name)]

    def rate_limit(self, account: str, specs: Sequence[RateLimitSpec], clock: Clock) -> RateLimit:
        limiters = [self.local_limiter(account, spec, clock) for spec in specs] or [self.local_gate(account, clock)]
        return _LocalRateLimit(limiters)

    async def pause(self, account: str, buckets: Sequence[str], seconds: float, clock: Clock) -> None:
        self.pause_now(account, buckets, seconds, clock)

    def pause_now(self, account: str, buckets: Sequence[str], seconds: float, clock: Clock) -> None:
        """:meth:`pause`, synchronously."""
        for name in buckets:
            limiter = self.state.buckets.get((account, name))
            if limiter is not None:
                limiter.pause(seconds)
                continue
            until = clock.monotonic() + max(0.0, seconds)
            pending = self.state.pending_pauses.get((account, name))
            if pending is None or pending[1] < until:
                self.state.pending_pauses[(account, name)] = (clock, until)

    def lease_pool(self, account: str, name: str, capacity: int, clock: Clock) -> LeasePool:
        return self.local_pool(account, name, capacity, clock)

    # -- budgets --------------------------------------------------------------------------------------
    def reserve_now(self, scopes: Sequence[BudgetScope], amount: float, clock: Clock, *,
                    provider: str) -> BudgetHold:
        """:meth:`reserve`, synchronously (no await between the check and the booking)."""
        now = clock.now()
        parts = [(scope, period_start(scope.period, now)) for scope in scopes]
        for scope, start in parts:
            budget = self.state.budgets.get((scope.key, start))
            available = scope.limit - (budget.spent + budget.reserved if budget else 0.0)
            if amount > available + _EPSILON:
                raise BudgetExceededError(needed=amount, remaining=max(0.0, available), provider=provider,
                                          budget=scope.label)
        for scope, start in parts:
            budget = self.state.budgets.setdefault((scope.key, start), _Budget(scope.limit))
            budget.limit = scope.limit
            budget.reserved += amount
        token = next(self._hold_ids)
        hold = self._holds[token] = BudgetHold(token, amount, provider,
                                               tuple((scope.key, start) for scope, start in parts))
        return hold

    async def reserve(self, scopes: Sequence[BudgetScope], amount: float, clock: Clock, *,
                      provider: str) -> BudgetHold:
        return self.reserve_now(scopes, amount, clock, provider=provider)

    def _close(self, hold: BudgetHold, charged: float) -> None:
        if not hold.open:
            return
        hold.open = False
        self._holds.pop(hold.token, None)
        for part in hold.parts:
            budget = self.state.budgets.get(part)
            if budget is not None:
                budget.reserved = max(0.0, budget.reserved - hold.amount)
                budget.spent += charged

    async def settle(self, hold: BudgetHold, actual: float | None = None) -> None:
        self._close(hold, hold.amount if actual is None else min(max(actual, 0.0), hold.amount))

    async def release(self, hold: BudgetHold) -> None:
        self._close(hold, 0.0)

    async def usage(self, scope: BudgetScope, clock: Clock) -> BudgetUsage:
        start = period_start(scope.period, clock.now())
        budget = self.state.budgets.get((scope.key, start))
        if budget is None:
            return BudgetUsage(scope.limit, 0.0, 0.0, start)
        return BudgetUsage(scope.limit, budget.spent, budget.reserved, start)

    # -- circuit breakers -----------------------------------------------------------------------------
    def _circuit(self, account: str, clock: Clock) -> tuple[_Circuit, float]:
        circuit = self.state.circuits.get(account)
        if circuit is None:
            circuit = self.state.circuits[account] = _Circuit(clock, window_start=clock.monotonic())
        now = circuit.clock.monotonic()
        if circuit.state == "half_open" and circuit.probe_expires <= now:  # the probe's holder is gone
            circuit.state, circuit.probe_holder, circuit.open_until = "open", None, now
        return circuit, now

    def circuit_report_now(self, account: str, policy: CircuitPolicy, clock: Clock, *, calls: int, failures: int,
                           streak: int, broken: bool, retry_after_s: float | None = None) -> CircuitView:
        """:meth:`circuit_report`, synchronously."""
        circuit, now = self._circuit(account, clock)
        if circuit.state != "closed" or calls <= 0:
            return circuit.view(now)
        circuit.roll(now, policy.window_s)
        circuit.calls += calls
        circuit.fails += failures
        circuit.failures += failures
        circuit.streak = streak if broken else circuit.streak + streak
        weight = max(0.0, 1.0 - (now - circuit.window_start) / policy.window_s)
        if not circuit_trips(circuit.streak, circuit.prev_calls * weight + circuit.calls,
                             circuit.prev_fails * weight + circuit.fails, policy):
            return circuit.view(now)
        circuit.failures = max(circuit.streak, round(circuit.prev_fails * weight + circuit.fails))
        circuit.open(now, policy, retry_after_s)
        return circuit.view(now, changed=True)

    def circuit_state_now(self, account: str) -> CircuitState:
        """The account's circuit state as stored (the breaker's fast path; expiry is checked by the others)."""
        circuit = self.state.circuits.get(account)
        return "closed" if circuit is None else circuit.state

    def circuit_success_now(self, account: str, policy: CircuitPolicy, clock: Clock) -> CircuitState:
        """Count one successful call (the breaker's fast path: a success never opens a circuit); the state."""
        circuit = self.state.circuits.get(account)
        if circuit is None:
            circuit = self.state.circuits[account] = _Circuit(clock, window_start=clock.monotonic())
        if circuit.state == "closed":
            now = circuit.clock.monotonic()
            if now - circuit.window_start >= policy.window_s:
                circuit.roll(now, policy.window_s)
            circuit.calls += 1
            circuit.streak = 0
        return circuit.state

    async def circuit_report(self, account: str, policy: CircuitPolicy, clock: Clock, *, calls: int,
                             failures: int, streak: int, broken: bool,
                             retry_after_s: float | None = None) -> CircuitView:
        return self.circuit_report_now(account, policy, clock, calls=calls, failures=failures, streak=streak,
                                       broken=broken, retry_after_s=retry_after_s)

    async def circuit_probe(self, account: str, policy: CircuitPolicy, clock: Clock) -> CircuitView:
        circuit, now = self._circuit(account, clock)
        if circuit.state != "open" or circuit.open_until > now:
            return circuit.view(now)
        circuit.state, circuit.probe_holder = "half_open", self.holder
        circuit.probe_expires = now + self.lease_ttl_s / circuit.clock.scale
        return circuit.view(now, probe=True, changed=True)

    async def circuit_settle(self, account: str, policy: CircuitPolicy, clock: Clock, *, ok: bool | None,
                             retry_after_s: float | None = None) -> CircuitView:
        circuit, now = self._circuit(account, clock)
        if circuit.state != "half_open" or circuit.probe_holder != self.holder:
            return circuit.view(now)
        if ok:
            circuit.close(now)
        elif ok is None:
            circuit.state, circuit.probe_holder, circuit.open_until = "open", None, now
        else:
            circuit.failures += 1
            circuit.open(now, policy, retry_after_s)
        return circuit.view(now, changed=True)

    # -- lifecycle ------------------------------------------------------------------------------------
    async def abandon(self) -> None:
        """As a killed process: open reservations count as spent at once; leases expire after the TTL."""
        for hold in list(self._holds.values()):
            self._close(hold, hold.amount)
        for pool in self.state.pools.values():
            after_s = self.lease_ttl_s / pool.clock.scale
            if pool.expire(self.holder, after_s):
                timer = asyncio.get_running_loop().create_task(self._dispatch_after(pool, after_s))
                self._timers.add(timer)
                timer.add_done_callback(self._timers.discard)

    @staticmethod
    async def _dispatch_after(pool: LocalLeasePool, after_s: float) -> None:
        await pool.clock.sleep(after_s)
        pool.dispatch()

    async def aclose(self) -> None:
        for timer in list(self._timers):
            timer.cancel()
