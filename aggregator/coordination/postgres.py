"""Coordination on PostgreSQL: every process using one database shares limits, leases and budgets exactly.

The state lives in the tables and functions of ``aggregator/db/migrations/0002_coordination.sql``;
every operation is one function call (one statement: one transaction, one round trip), in
autocommit mode on a psycopg 3 async pool.

Time source. Every instant is measured on the *database server* (``clock_timestamp()``, read after
the locks are taken), so processes whose clocks disagree still share one time line. A caller's
durations are seconds of its :class:`~aggregator.clock.Clock`: on a
:class:`~aggregator.clock.ScaledClock` (the sandbox's virtual time) they are converted to real
seconds by its ``scale`` (``window_s * scale``), which is the same as converting the server's time to
virtual time, ``virtual = epoch + (db_now - epoch) / scale``: every process of a sandbox shares its
epoch and scale. That formula gives the virtual wall time budget periods start from. A clock whose
time does not run with real time (a test's fake clock) cannot share a server's time: use
:class:`~aggregator.coordination.InProcessCoordinator` with it.

Exactness, as in process. A request is counted in flight from the moment its row is inserted (under
a transaction-scoped advisory lock on the bucket's key, taken in key order, so acquirers of one
bucket serialize and multi-bucket acquirers never deadlock) and stamped with the server's time when
its response is released (written in the background: until then it counts as in flight, never
less); a sliding window admits while ``stamps + in flight < limit``, a token bucket while
``tokens >= in flight + 1``. A dead process's in-flight rows stop being renewed and expire after
``lease_ttl_s``: a window counts one as stamped at its expiry, a bucket consumes its token then.
Leases work the same way (an advisory lock per pool). Budgets lock their period rows ``FOR UPDATE``
in key order and commit durably; limits and leases commit with ``synchronous_commit`` off (a crash
of the server may cost a 429, never money). Nothing holds a lock longer than one statement.

Waiting never polls blindly: a refused acquire returns how long to wait (the oldest stamp leaving
the window, the next token, the pause's end), slept on the caller's clock. When only a release can
help (every request of a full window still in flight, every lease held), the refusal is marked on
the bucket or pool, and its release sends a ``NOTIFY``, waking the waiters of every process at once (one
listening connection per coordinator); they re-check after :data:`RELEASE_WAIT_S` at the latest, so
correctness never depends on a notification.

Circuit breakers (``0007_circuit_breakers.sql``): one row per provider account, taken ``FOR UPDATE`` by
each of three functions (count calls and maybe trip; claim the half-open probe; settle the probe), so a
trip, a probe claim and a close are each one atomic statement. The breaker keeps a local mirror and
syncs at most every :attr:`circuit_sync_s` real seconds while closed (failures at once): no round trip
per request. A probe whose holder died is given up ``lease_ttl_s`` real seconds after it was claimed.

Fail closed. Any database error while acquiring or reserving raises
:class:`~aggregator.errors.CoordinationUnavailableError` naming ``host:port/dbname`` (never the
password), and nothing is sent. Releases that fail are logged and left to expire (conservatively:
an expired in-flight request counts as stamped at its expiry, an expired reservation as spent).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
import psycopg.errors
from pydantic import SecretStr

from aggregator.clock import Clock, ScaledClock
from aggregator.contract import RateLimitSpec
from aggregator.coordination.base import (
    DEFAULT_LEASE_TTL_S,
    PAUSE_GATE,
    BudgetHold,
    BudgetScope,
    BudgetUsage,
    CircuitPolicy,
    CircuitView,
    Coordinator,
    LeasePool,
    RateLimit,
)
from aggregator.db.settings import address, scrub
from aggregator.errors import BudgetExceededError, CoordinationUnavailableError
from aggregator.log import get_logger

if TYPE_CHECKING:
    from psycopg_pool import AsyncConnectionPool

__all__ = ["PostgresCoordinator"]

log = get_logger("aggregator.coordination")

CHANNEL = "coord"
RELEASE_WAIT_S = 1.0  # real seconds a waiter that only a release can free waits before re-checking
POLL_WITHOUT_LISTENER_S = 0.1  # ... when notifications are not being received
DEADLOCK_RETRIES = 3
_ACQUIRE = ("SELECT ids, wait FROM coord_acquire(%s, %s::text[], %s::text[], %s::float8[], %s::float8[], "
            "%s::float8)")
_RELEASE = "SELECT coord_release(%s, %s::bigint[])"
_PAUSE = "SELECT coord_pause(%s::text[], %s::float8)"
_LEASE = "SELECT id, wait FROM coord_lease_acquire(%s, %s, %s, %s::float8)"
_LEASE_RELEASE = "SELECT coord_lease_release(%s, %s::bigint[])"
_HEARTBEAT = "SELECT coord_heartbeat(%s, %s::bigint[], %s::bigint[], %s::bigint[], %s::float8)"
_RESERVE = ("SELECT hold, refused, remaining, starts FROM coord_reserve(%s, %s::text[], %s::text[], "
            "%s::float8[], %s::float8, %s::float8, %s::float8, %s::float8)")
_SETTLE = "SELECT coord_settle(%s, %s::bigint, %s::float8)"
_USAGE = "SELECT spent, reserved, start FROM coord_usage(%s, %s, %s::float8, %s::float8, %s::float8)"
_CIRCUIT_REPORT = ("SELECT state, retry_in, failures, changed FROM coord_circuit_report(%s, %s, %s::float8, "
                   "%s::float8, %s, %s::float8, %s, %s, %s, %s, %s::float8)")
_CIRCUIT_PROBE = "SELECT state, retry_in, failures, probe FROM coord_circuit_probe(%s, %s, %s::float8)"
_CIRCUIT_SETTLE = ("SELECT state, retry_in, failures, changed FROM coord_circuit_settle(%s, %s, %s, %s::float8, "
                   "%s::float8)")


def _time_base(clock: Clock) -> tuple[float, float]:
    """``(epoch seconds, scale)`` mapping the server's time to ``clock``'s wall time (real time: (0, 1))."""
    if isinstance(clock, ScaledClock):
        return clock.epoch.timestamp(), clock.scale
    return 0.0, 1.0


class _PgRateLimit(RateLimit):
    """The buckets of one endpoint, taken in one statement (all or none), keys in lock order."""

    def __init__(self, coordinator: PostgresCoordinator, account: str, specs: Sequence[RateLimitSpec],
                 clock: Clock) -> None:
        self._coordinator = coordinator
        self._clock = clock
        self.names = tuple(spec.name for spec in specs) or (PAUSE_GATE,)
        rows: list[tuple[str, str, float, float]] = []
        for spec in specs:
            if spec.kind == "token_bucket":
                rate_real = spec.limit / spec.window_s / clock.scale  # tokens per real second
                rows.append((f"{account}/{spec.name}", "bucket", float(spec.burst or spec.limit), rate_real))
            else:
                rows.append((f"{account}/{spec.name}", "window", float(spec.limit), spec.window_s * clock.scale))
        if not rows:
            rows.append((f"{account}/{PAUSE_GATE}", "gate", 0.0, 0.0))
        rows.sort()
        self._keys = [r[0] for r in rows]
        self._kinds = [r[1] for r in rows]
        self._limits = [r[2] for r in rows]
        self._params = [r[3] for r in rows]
        self._lock = asyncio.Lock()  # first come, first served within this process

    async def acquire(self) -> object:
        async with self._lock:
            return await self._coordinator._acquire(self._keys, self._kinds, self._limits, self._params,
                                                    self._clock)

    async def release(self, ticket: object) -> None:
        if isinstance(ticket, tuple) and ticket:
            await self._coordinator._release_requests(ticket)


class _PgLeasePool(LeasePool):
    def __init__(self, coordinator: PostgresCoordinator, key: str, capacity: int, clock: Clock) -> None:
        if capacity < 1:
            raise ValueError(f"lease pool {key}: capacity >= 1 required")
        self._coordinator = coordinator
        self._key = key
        self._clock = clock
        self.name = key
        self.capacity = capacity
        self._lock = asyncio.Lock()

    async def acquire(self) -> object:
        async with self._lock:
            return await self._coordinator._acquire_lease(self._key, self.capacity, self._clock)

    async def release(self, lease: object) -> None:
        if isinstance(lease, int):
            await self._coordinator._release_lease(lease)


class PostgresCoordinator(Coordinator):
    """Limits, leases and budgets shared through one PostgreSQL database (see the module docstring).

    Nothing connects until first use; then the schema version is checked (``deepsearch db migrate``
    creates it: nothing migrates implicitly), one listening connection and a pool of up to
    ``pool_size`` are opened, and a heartbeat (on a connection of its own) renews what this instance
    holds every ``lease_ttl_s / 3`` real seconds.

    Args:
        url: ``postgresql://user:password@host:port/dbname`` (a ``SecretStr`` or a string).
        pool_size: most pooled connections. connect_timeout_s: real seconds to wait for the server
            (connecting, or a free pooled connection) before failing closed.
        lease_ttl_s: real seconds after its last heartbeat that a dead holder's leases, in-flight
            requests and reservations expire.
        holder: this instance's name in the tables (default ``host:pid:random``).
        check_schema: check the schema version on connecting (:func:`aggregator.db.migrate.check`).

    Raises (from any operation):
        CoordinationUnavailableError: the database cannot be reached or failed (names ``host:port/dbname``).
        DatabaseSchemaError: (on connecting) the schema is not this version's.
    """

    circuit_sync_s = 1.0  # a breaker's mirror syncs at most once a real second while closed (failures at once)

    def __init__(self, url: str | SecretStr, *, pool_size: int = 10, connect_timeout_s: float = 10.0,
                 lease_ttl_s: float = DEFAULT_LEASE_TTL_S, holder: str | None = None,
                 check_schema: bool = True) -> None:
        self._url = url if isinstance(url, SecretStr) else SecretStr(url)
        self.address = address(self._url.get_secret_value())
        self.pool_size = pool_size
        self.connect_timeout_s = connect_timeout_s
        self.lease_ttl_s = lease_ttl_s
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._check_schema = check_schema
        self._pool: AsyncConnectionPool[Any] | None = None
        self._listener: psycopg.AsyncConnection[Any] | None = None
        self._open_lock = asyncio.Lock()
        self._closed = False
        self._listening = False
        self._watchers: dict[str, set[asyncio.Event]] = {}
        self._requests: set[int] = set()
        self._leases: set[int] = set()
        self._holds: set[int] = set()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._listener_task: asyncio.Task[Any] | None = None
        self._heartbeat_task: asyncio.Task[Any] | None = None

    def __repr__(self) -> str:
        return f"PostgresCoordinator({self.address!r}, holder={self.holder!r})"

    # -- connections ----------------------------------------------------------------------------------
    def _unavailable(self, exc: BaseException | str) -> CoordinationUnavailableError:
        if isinstance(exc, str):
            reason = exc
        elif isinstance(exc, TimeoutError):  # psycopg_pool.PoolTimeout too
            reason = f"no connection within {self.connect_timeout_s:g} s"
        else:  # libpq's message is multi-line
            reason = " ".join(str(exc).split()).removeprefix("connection failed: ") or type(exc).__name__
        return CoordinationUnavailableError(self.address, scrub(reason, self._url.get_secret_value()))

    async def _ensure_open(self) -> AsyncConnectionPool[Any]:
        if self._pool is not None:
            return self._pool
        async with self._open_lock:
            if self._closed:
                raise self._unavailable("the coordinator was closed")
            if self._pool is None:
                await self._open()
            assert self._pool is not None
            return self._pool

    async def _open(self) -> None:
        from psycopg_pool import AsyncConnectionPool

        url = self._url.get_secret_value()
        listener: psycopg.AsyncConnection[Any] | None = None
        pool: AsyncConnectionPool[Any] | None = None
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                listener = await psycopg.AsyncConnection.connect(url, autocommit=True)
                if self._check_schema:
                    from aggregator.db import migrate

                    await migrate.check(listener, self.address)
                await listener.execute(f"LISTEN {CHANNEL}")
                pool = AsyncConnectionPool(url, min_size=1, max_size=self.pool_size, open=False,
                                           kwargs={"autocommit": True}, timeout=self.connect_timeout_s,
                                           name="deepsearch-coordination")
                await pool.open(wait=True, timeout=self.connect_timeout_s)
        except BaseException as exc:
            for closing in (listener, pool):
                if closing is not None:
                    with suppress(Exception):
                        await closing.close()
            if not isinstance(exc, psycopg.Error | OSError | TimeoutError):
                raise  # DatabaseSchemaError, a cancellation
            log.warning("coordination.unavailable", address=self.address, error=type(exc).__name__)
            raise self._unavailable(exc) from None
        self._listener, self._pool = listener, pool
        self._listener_task = self._spawn(self._listen(listener))
        self._heartbeat_task = self._spawn(self._heartbeat())
        log.info("coordination.connected", address=self.address, holder=self.holder)

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        """A background task, tracked until done (its exception is retrieved: :meth:`_call` logged it)."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled():
            task.exception()

    async def _call(self, sql: str, params: Sequence[Any]) -> tuple[Any, ...]:
        """Run one statement on a pooled connection; its one row. A deadlock between first uses of a
        bucket or budget period (creating rows, then locking them) is retried; anything else fails closed."""
        pool = await self._ensure_open()
        stale_retried = False
        for attempt in range(DEADLOCK_RETRIES + 1):
            conn: psycopg.AsyncConnection[Any] | None = None
            try:
                async with pool.connection(timeout=self.connect_timeout_s) as conn:
                    cursor = await conn.execute(sql, params)
                    row = await cursor.fetchone()
                return tuple(row) if row is not None else ()
            except psycopg.errors.DeadlockDetected:
                if attempt == DEADLOCK_RETRIES:
                    raise self._unavailable("deadlock detected, retries exhausted") from None
            except (psycopg.Error, OSError) as exc:
                if conn is not None and conn.broken and not stale_retried:
                    # a pooled connection the server dropped (it restarted): once more on a fresh one. Safe
                    # for every statement here: what a lost one took expires conservatively, the rest repeat
                    stale_retried = True
                    continue
                log.warning("coordination.failed", address=self.address, error=type(exc).__name__)
                raise self._unavailable(exc) from None
        raise AssertionError("unreachable")

    async def ping(self) -> None:
        """One round trip to the database (health checks, the coordination benchmark).

        Raises:
            CoordinationUnavailableError: it cannot be reached.
        """
        await self._call("SELECT 1", ())

    async def _call_undoable(self, sql: str, params: Sequence[Any],
                             undo: Callable[[tuple[Any, ...]], Awaitable[None]]) -> tuple[Any, ...]:
        """:meth:`_call`, finished even if the caller is cancelled meanwhile; then ``undo`` gives back
        whatever it took (a lease, an in-flight request, a reservation nobody will release)."""
        task = self._spawn(self._call(sql, params))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            def after(done: asyncio.Future[tuple[Any, ...]]) -> None:
                if not done.cancelled() and done.exception() is None:
                    self._spawn(undo(done.result()))
                elif not done.cancelled():
                    done.exception()  # retrieved: it was logged by _call

            task.add_done_callback(after)
            raise

    async def _quietly(self, what: str, sql: str, params: Sequence[Any]) -> None:
        """A giving-back statement, run to its end even if the caller is cancelled; a failure is logged
        (what it would have given back expires after the TTL)."""
        task = self._spawn(self._call(sql, params))
        try:
            await asyncio.shield(task)
        except CoordinationUnavailableError as exc:
            log.warning("coordination.release_failed", what=what, address=self.address, error=exc.reason)

    def _in_background(self, what: str, sql: str, params: Sequence[Any]) -> None:
        """A giving-back statement nobody waits for (:meth:`aclose` does); a failure is logged."""
        async def run() -> None:
            try:
                await self._call(sql, params)
            except CoordinationUnavailableError as exc:
                log.warning("coordination.release_failed", what=what, address=self.address, error=exc.reason)

        self._spawn(run())

    # -- notifications and heartbeats -----------------------------------------------------------------
    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        self._listening = True
        try:
            async for note in conn.notifies():
                for event in self._watchers.get(note.payload, ()):
                    event.set()
        except psycopg.Error as exc:
            log.warning("coordination.listen_lost", address=self.address, error=type(exc).__name__)
        finally:
            self._listening = False

    def _watch(self, keys: Sequence[str], event: asyncio.Event) -> None:
        for key in keys:
            self._watchers.setdefault(key, set()).add(event)

    def _unwatch(self, keys: Sequence[str], event: asyncio.Event) -> None:
        for key in keys:
            watchers = self._watchers.get(key)
            if watchers is not None:
                watchers.discard(event)
                if not watchers:
                    del self._watchers[key]

    async def _wait(self, event: asyncio.Event, wait_real_s: float, clock: Clock, *, timed: bool) -> None:
        """Wait ``wait_real_s`` (the database's answer: a time, or < 0 for "until a release").

        A timed wait (a window's oldest stamp leaving it, a token, a pause) is slept on ``clock``: a
        release cannot shorten it. Otherwise a release's notification wakes the waiter at once.
        """
        if timed and wait_real_s >= 0:
            await clock.sleep(wait_real_s / clock.scale)
            return
        poll = RELEASE_WAIT_S if self._listening else POLL_WITHOUT_LISTENER_S
        timeout = poll if wait_real_s < 0 else min(wait_real_s, poll)
        with suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await event.wait()

    async def _heartbeat(self) -> None:
        """Renew what this instance holds every ``lease_ttl_s / 3`` real seconds, on a connection of its
        own: a pool saturated by acquirers must never starve it (a late heartbeat loses leases)."""
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while True:
                await asyncio.sleep(self.lease_ttl_s / 3)
                if not (self._requests or self._leases or self._holds):
                    continue
                params = (self.holder, sorted(self._requests), sorted(self._leases), sorted(self._holds),
                          self.lease_ttl_s)
                try:
                    if conn is None or conn.closed:
                        async with asyncio.timeout(self.connect_timeout_s):
                            conn = await psycopg.AsyncConnection.connect(self._url.get_secret_value(),
                                                                         autocommit=True)
                    row = await (await conn.execute(_HEARTBEAT, params)).fetchone()
                except (psycopg.Error, OSError, TimeoutError) as exc:
                    log.warning("coordination.heartbeat_failed", address=self.address, error=type(exc).__name__)
                    if conn is not None:
                        with suppress(Exception):
                            await conn.close()
                    conn = None
                    continue
                if row and row[0]:
                    log.warning("coordination.leases_lost", address=self.address, count=row[0])
        finally:
            if conn is not None:
                with suppress(Exception):
                    await conn.close()

    # -- rate limits ----------------------------------------------------------------------------------
    def rate_limit(self, account: str, specs: Sequence[RateLimitSpec], clock: Clock) -> RateLimit:
        return _PgRateLimit(self, account, specs, clock)

    async def _acquire(self, keys: list[str], kinds: list[str], limits: list[float], params: list[float],
                       clock: Clock) -> tuple[int, ...]:
        event = asyncio.Event()
        self._watch(keys, event)
        try:
            while True:
                event.clear()
                row = await self._call_undoable(
                    _ACQUIRE, (self.holder, keys, kinds, limits, params, self.lease_ttl_s),
                    lambda r: self._release_requests(tuple(r[0] or ())))
                ids, wait = row
                if ids is not None:
                    self._requests.update(ids)
                    return tuple(ids)
                await self._wait(event, float(wait), clock, timed=True)
        finally:
            self._unwatch(keys, event)

    async def _release_requests(self, ids: tuple[int, ...]) -> None:
        """Stamp the requests, in the background: the response is the caller's already. Until the stamp
        lands the requests count as in flight, which they would count as anyway (exact, never early)."""
        if not ids:
            return
        self._requests.difference_update(ids)
        self._in_background("requests", _RELEASE, (self.holder, list(ids)))

    async def pause(self, account: str, buckets: Sequence[str], seconds: float, clock: Clock) -> None:
        """Share a 429's pause. A database failure is logged, not raised: the next acquire fails closed."""
        keys = sorted(f"{account}/{name}" for name in buckets)
        try:
            await self._call(_PAUSE, (keys, max(0.0, seconds) * clock.scale))
        except CoordinationUnavailableError as exc:
            log.warning("coordination.pause_failed", address=self.address, error=exc.reason)
            return
        log.info("ratelimit.paused", buckets=list(buckets), pause_s=round(seconds, 3), shared=True)

    # -- leases ---------------------------------------------------------------------------------------
    def lease_pool(self, account: str, name: str, capacity: int, clock: Clock) -> LeasePool:
        return _PgLeasePool(self, f"{account}/{name}", capacity, clock)

    async def _acquire_lease(self, key: str, capacity: int, clock: Clock) -> int:
        event = asyncio.Event()
        self._watch([key], event)
        try:
            while True:
                event.clear()
                row = await self._call_undoable(
                    _LEASE, (self.holder, key, capacity, self.lease_ttl_s),
                    lambda r: self._release_lease(r[0]) if r[0] is not None else _nothing())
                lease, wait = row
                if lease is not None:
                    self._leases.add(lease)
                    return int(lease)
                await self._wait(event, float(wait), clock, timed=False)
        finally:
            self._unwatch([key], event)

    async def _release_lease(self, lease: int) -> None:
        self._leases.discard(lease)
        await self._quietly("lease", _LEASE_RELEASE, (self.holder, [lease]))

    # -- budgets --------------------------------------------------------------------------------------
    async def reserve(self, scopes: Sequence[BudgetScope], amount: float, clock: Clock, *,
                      provider: str) -> BudgetHold:
        epoch, scale = _time_base(clock)
        keys = [scope.key for scope in scopes]
        row = await self._call_undoable(
            _RESERVE, (self.holder, keys, [s.period for s in scopes], [s.limit for s in scopes], amount, epoch,
                       scale, self.lease_ttl_s),
            lambda r: self._settle(r[0], 0.0) if r[0] is not None else _nothing())
        hold, refused, remaining, starts = row
        if hold is None:
            scope = scopes[int(refused) - 1]
            raise BudgetExceededError(needed=amount, remaining=float(remaining), provider=provider,
                                      budget=scope.label)
        self._holds.add(hold)
        parts: tuple[tuple[str, datetime], ...] = tuple(zip(keys, starts, strict=True))
        return BudgetHold(hold, amount, provider, parts)

    async def _settle(self, hold: int, charged: float) -> None:
        self._holds.discard(hold)
        await self._quietly("reservation", _SETTLE, (self.holder, hold, charged))

    async def settle(self, hold: BudgetHold, actual: float | None = None) -> None:
        if not hold.open or not isinstance(hold.token, int):
            return
        hold.open = False
        await self._settle(hold.token, hold.amount if actual is None else min(max(actual, 0.0), hold.amount))

    async def release(self, hold: BudgetHold) -> None:
        if not hold.open or not isinstance(hold.token, int):
            return
        hold.open = False
        await self._settle(hold.token, 0.0)

    async def usage(self, scope: BudgetScope, clock: Clock) -> BudgetUsage:
        epoch, scale = _time_base(clock)
        spent, reserved, start = await self._call(_USAGE, (scope.key, scope.period, scope.limit, epoch, scale))
        return BudgetUsage(scope.limit, float(spent), float(reserved), start)

    # -- circuit breakers (0007_circuit_breakers.sql; aggregator.breaker mirrors them locally) ----------
    @staticmethod
    def _circuit_view(row: tuple[Any, ...], clock: Clock, *, probe: bool = False) -> CircuitView:
        state, retry_in, failures, flag = row
        return CircuitView(state, float(retry_in) / clock.scale, int(failures), probe and bool(flag),
                           bool(flag))

    async def circuit_report(self, account: str, policy: CircuitPolicy, clock: Clock, *, calls: int,
                             failures: int, streak: int, broken: bool,
                             retry_after_s: float | None = None) -> CircuitView:
        scale = clock.scale
        row = await self._call(_CIRCUIT_REPORT, (
            account, policy.failures, policy.failure_rate, policy.window_s * scale, policy.min_calls,
            policy.cooldown_s * scale, calls, failures, streak, broken,
            None if retry_after_s is None else retry_after_s * scale))
        return self._circuit_view(row, clock)

    async def circuit_probe(self, account: str, policy: CircuitPolicy, clock: Clock) -> CircuitView:
        row = await self._call(_CIRCUIT_PROBE, (account, self.holder, self.lease_ttl_s))
        return self._circuit_view(row, clock, probe=True)

    async def circuit_settle(self, account: str, policy: CircuitPolicy, clock: Clock, *, ok: bool | None,
                             retry_after_s: float | None = None) -> CircuitView:
        scale = clock.scale
        row = await self._call(_CIRCUIT_SETTLE, (
            account, self.holder, ok, policy.cooldown_s * scale,
            None if retry_after_s is None else retry_after_s * scale))
        return self._circuit_view(row, clock)

    # -- lifecycle ------------------------------------------------------------------------------------
    async def _shutdown(self) -> None:
        self._closed = True
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        listener, pool, self._listener, self._pool = self._listener, self._pool, None, None
        if listener is not None:
            with suppress(Exception):
                await listener.close()
        if pool is not None:
            with suppress(Exception):
                await pool.close()

    async def abandon(self) -> None:
        """As a killed process: no heartbeat, no release; rows expire after ``lease_ttl_s``."""
        self._requests.clear()
        self._leases.clear()
        self._holds.clear()
        await self._shutdown()

    async def aclose(self) -> None:
        """Stamp in-flight requests and give leases back; open reservations are left to expire (counted
        as spent: their calls' outcome is unknown). Then close the connections."""
        if self._pool is not None and not self._closed:
            if self._requests:
                await self._release_requests(tuple(sorted(self._requests)))
            for lease in sorted(self._leases):
                await self._release_lease(lease)
            await self._settled()
        await self._shutdown()

    async def _settled(self) -> None:
        """Wait for the background releases (not the listener and the heartbeat, which never end)."""
        pending = [t for t in self._tasks if t is not self._listener_task and t is not self._heartbeat_task]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


async def _nothing() -> None:
    return None
