"""Circuit breakers per provider account: stop calling a provider that is down, probe it, come back.

One :class:`CircuitBreaker` guards one provider account (one API key, named by
:func:`~aggregator.coordination.account_fingerprint`); its state is shared through the
:class:`~aggregator.coordination.Coordinator`, so every process using the account (PostgreSQL backend)
sees one circuit::

    closed ──(failures consecutive failures, or failure_rate over window_s with >= min_calls calls)──> open
    open ──(cooldown_s passed, or the failure's Retry-After when longer)──> half_open: one probe call goes
    half_open ──probe succeeds──> closed          half_open ──probe fails──> open (again, for cooldown_s)

What counts (:func:`verdict`): a failed HTTP attempt is a *failure* when the provider was not available:
connection errors, 5xx, timeouts. A 4xx other than 429 is the provider answering (our input, our key): it
counts as a *success*. A malformed body (the provider answered, but not per its contract: a bug, not an
outage, retried on its own), a 429 (the rate limiter pauses for it), our own refusals (budgets,
coordination) and cancellations are not counted at all.

While the circuit is open, :meth:`CircuitBreaker.admit` refuses a call at once with
:class:`~aggregator.errors.CircuitOpenError` (not retryable: retries stop), and the run skips a provider
step before it starts (:meth:`CircuitBreaker.refusal`, outcome ``skipped``). The failure that trips the
circuit also surfaces as a ``CircuitOpenError`` (chained to it), so its call is not retried either.

Hot path. The breaker keeps a local mirror of the shared state. With the in-process coordinator
(``circuit_sync_s = 0``) every call reads and counts through it exactly (no I/O). With PostgreSQL
(``circuit_sync_s = 1`` real second) a call while closed costs no round trip: successes are counted
locally and sent at most once per second (with the next call or result), a failure at once; an open
circuit refuses from the mirror until its probe is due; probe claims and probe results are one atomic
statement each. The consecutive-failure count is therefore exact within a process and approximate across
processes (a success in one process resets the shared streak at its next sync).
"""

from __future__ import annotations

import time
from collections import deque
from datetime import timedelta

from aggregator import telemetry
from aggregator.clock import Clock
from aggregator.config import BreakerSettings
from aggregator.coordination import CircuitPolicy, CircuitState, CircuitView, Coordinator
from aggregator.coordination.local import InProcessCoordinator
from aggregator.errors import (
    CircuitOpenError,
    CoordinationUnavailableError,
    ProviderConnectionError,
    ProviderHTTPError,
    ProviderProtocolError,
    ProviderServerError,
    ProviderTimeoutError,
    RateLimitedError,
)
from aggregator.log import get_logger

__all__ = ["CircuitBreaker", "breaker_from_settings", "policy_from_settings", "verdict"]

log = get_logger("aggregator.breaker")
TRANSITIONS_KEPT = 256


def verdict(error: BaseException | None) -> bool | None:
    """How one finished HTTP attempt counts: True a failure, False a success, None not at all.

    Failures: :class:`ProviderConnectionError`, :class:`ProviderServerError` (5xx),
    :class:`ProviderTimeoutError`. Successes: a response (``error`` None), and any other HTTP error
    status (4xx: the provider answered). Not counted: 429 (:class:`RateLimitedError`),
    :class:`ProviderProtocolError` (malformed body, stray redirect), :class:`CircuitOpenError`, and
    anything not from the provider (budgets, coordination, cancellation).
    """
    if error is None:
        return False
    if isinstance(error, RateLimitedError | CircuitOpenError | ProviderProtocolError):
        return None
    if isinstance(error, ProviderServerError | ProviderConnectionError | ProviderTimeoutError):
        return True
    if isinstance(error, ProviderHTTPError):
        return False
    return None


def policy_from_settings(settings: BreakerSettings) -> CircuitPolicy:
    """The :class:`CircuitPolicy` of one provider's resolved ``[breaker]`` settings."""
    return CircuitPolicy(failures=settings.failures, failure_rate=settings.failure_rate,
                         window_s=settings.window_s, min_calls=settings.min_calls, cooldown_s=settings.cooldown_s)


def breaker_from_settings(settings: BreakerSettings, provider: str, account: str, coordinator: Coordinator,
                          clock: Clock) -> CircuitBreaker | None:
    """``provider``'s breaker per ``settings`` (its ``[breaker.providers.<provider>]`` override applied),
    or None when it is disabled."""
    resolved = settings.for_provider(provider)
    if not resolved.enabled:
        return None
    return CircuitBreaker(provider, account, policy_from_settings(resolved), coordinator, clock)


class CircuitBreaker:
    """One provider account's circuit breaker (see the module docstring).

    Args:
        provider: registry name (errors, logs, telemetry). account: the account fingerprint (shared key).
        policy: thresholds and cooldown, seconds of ``clock``.
        coordinator: where the state is shared. clock: the clock of the calls (virtual on the sandbox).
        sync_s: real seconds between syncs of the local mirror while closed (default: the coordinator's
            ``circuit_sync_s``; 0 reads and counts through the coordinator on every call).
    """

    def __init__(self, provider: str, account: str, policy: CircuitPolicy, coordinator: Coordinator,
                 clock: Clock, *, sync_s: float | None = None) -> None:
        self.provider = provider
        self.account = account
        self.policy = policy
        self.coordinator = coordinator
        self.clock = clock
        self.sync_s = coordinator.circuit_sync_s if sync_s is None else sync_s
        # in process, a closed circuit is read and a success counted without a coroutine or a view
        self._local = coordinator if isinstance(coordinator, InProcessCoordinator) and not self.sync_s else None
        self.state: CircuitState = "closed"  # the mirror
        self._open_until = 0.0  # clock seconds
        self._failures = 0
        self._synced = float("-inf")  # real seconds (time.monotonic) of the last sync
        self._calls = self._fails = self._streak = 0
        self._broken = False
        self._retry_after: float | None = None
        self.rejected = 0  # calls and steps this breaker refused (this process)
        self.probes = 0  # probes this process sent
        self.opened = 0  # transitions to open this process saw (tripped here or elsewhere)
        self.transitions: deque[tuple[float, CircuitState]] = deque(maxlen=TRANSITIONS_KEPT)
        """The latest state changes this process saw: ``(clock seconds, new state)``."""

    def __repr__(self) -> str:
        return f"CircuitBreaker(provider={self.provider!r}, state={self.state!r})"

    # -- the mirror ---------------------------------------------------------------------------------
    def _stale(self) -> bool:
        return time.monotonic() - self._synced >= self.sync_s

    def _apply(self, view: CircuitView) -> None:
        self._synced = time.monotonic()
        self._failures = view.failures
        if view.state == "open":
            self._open_until = self.clock.monotonic() + view.retry_in_s
        if view.state != self.state:
            log.info("breaker.state", provider=self.provider, state=view.state, was=self.state,
                     failures=view.failures, retry_in_s=round(view.retry_in_s, 3))
            if view.state == "open":
                self.opened += 1
            self.state = view.state
            self.transitions.append((self.clock.monotonic(), view.state))
            telemetry.record_circuit_state(self.provider, view.state)

    def _error(self, endpoint: str = "*") -> CircuitOpenError:
        retry_in = max(0.0, self._open_until - self.clock.monotonic()) if self.state == "open" else 0.0
        return CircuitOpenError(provider=self.provider, endpoint=endpoint, failures=self._failures,
                                open_until=self.clock.now() + timedelta(seconds=retry_in), retry_in_s=retry_in,
                                probing=self.state == "half_open")

    def _refuse(self, endpoint: str = "*") -> CircuitOpenError:
        self.rejected += 1
        telemetry.record_circuit_rejection(self.provider)
        return self._error(endpoint)

    async def _flush(self) -> None:
        """Send the pending counts (none: just read the state) and mirror the answer."""
        calls, fails, streak, broken, retry_after = (self._calls, self._fails, self._streak, self._broken,
                                                     self._retry_after)
        self._calls = self._fails = self._streak = 0
        self._broken, self._retry_after = False, None
        try:
            view = await self.coordinator.circuit_report(
                self.account, self.policy, self.clock, calls=calls, failures=fails, streak=streak,
                broken=broken, retry_after_s=retry_after)
        except BaseException:
            self._calls += calls  # counted at the next sync
            self._fails += fails
            self._streak = self._streak + streak if not self._broken else self._streak
            self._broken = self._broken or broken
            raise
        self._apply(view)

    # -- calls --------------------------------------------------------------------------------------
    async def admit(self, endpoint: str = "*") -> bool:
        """May a call be sent now? Returns whether it is the half-open probe (report it with :meth:`done`).

        Raises:
            CircuitOpenError: the circuit is open (or another caller's probe is in flight): not sent.
            CoordinationUnavailableError: the shared state cannot be reached.
        """
        if self.state == "closed":
            if self._local is not None and self._local.circuit_state_now(self.account) == "closed":
                return False
            if self._stale():
                await self._flush()
            if self.state == "closed":
                return False
        if self.state == "open" and self.clock.monotonic() < self._open_until:
            raise self._refuse(endpoint)
        if self.state == "half_open" and not self._stale():
            raise self._refuse(endpoint)
        view = await self.coordinator.circuit_probe(self.account, self.policy, self.clock)
        self._apply(view)
        if view.probe:
            self.probes += 1
            log.info("breaker.probe", provider=self.provider, endpoint=endpoint)
            return True
        if view.state == "closed":
            return False
        raise self._refuse(endpoint)

    async def done(self, probe: bool, error: BaseException | None, endpoint: str = "*") -> CircuitOpenError | None:
        """Count a finished attempt (``error`` None: it succeeded; see :func:`verdict`).

        Returns a :class:`CircuitOpenError` when this attempt opened the circuit (it tripped it, or it was
        the probe and failed): the caller raises it instead of the error, so the call is not retried.
        A coordination failure here is logged, never raised (the response is the caller's already).
        """
        failed = verdict(error)
        retry_after = getattr(error, "retry_after_s", None) if isinstance(error, ProviderServerError) else None
        try:
            if probe:
                ok = None if failed is None else not failed
                view = await self.coordinator.circuit_settle(self.account, self.policy, self.clock, ok=ok,
                                                             retry_after_s=retry_after)
                self._apply(view)
                return self._error(endpoint) if view.changed and view.state == "open" and failed else None
            if failed is None:
                return None
            if (not failed and self._local is not None and self.state == "closed"
                    and self._local.circuit_success_now(self.account, self.policy, self.clock) == "closed"):
                return None
            self._calls += 1
            if failed:
                self._fails += 1
                self._streak += 1
                if retry_after is not None:
                    self._retry_after = max(self._retry_after or 0.0, retry_after)
            else:
                self._streak, self._broken = 0, True
            if not (failed or self._stale()):
                return None
            was = self.state
            await self._flush()
            return self._error(endpoint) if failed and was == "closed" and self.state == "open" else None
        except CoordinationUnavailableError as exc:
            log.warning("breaker.sync_failed", provider=self.provider, error=exc.reason)
            return None

    async def refusal(self) -> CircuitOpenError | None:
        """Why a new provider step must not start now (the circuit is open and its probe is not due, or a
        probe is in flight), or None. Counts as a rejection when it refuses. Never claims the probe.

        Raises:
            CoordinationUnavailableError: the shared state cannot be reached.
        """
        if (self.state != "open" or self.clock.monotonic() >= self._open_until) and self._stale():
            await self._flush()
        if self.state == "open" and self.clock.monotonic() < self._open_until:
            return self._refuse()
        if self.state == "half_open":
            return self._refuse()
        return None
