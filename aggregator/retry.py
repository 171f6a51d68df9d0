"""Retry policy: which errors are retried, how long to wait, when to give up.

- Only errors whose ``retryable`` flag is set are retried: 429, 5xx, connection resets, timeouts
  (and malformed bodies of idempotent calls, flagged by :mod:`aggregator.http`). A host name that
  does not resolve is not: it fails on the first attempt (a DNS outage, ``EAI_AGAIN``, is retried).
- The wait honours the provider's ``Retry-After`` (seconds, HTTP-date, or ``retry-after-ms``),
  never shorter than it; without one it is exponential backoff with full jitter:
  ``U(0, min(backoff_max_s, backoff_initial_s * 2**n))``.
- A ``Retry-After`` above ``max_retry_after_s`` is not waited out: the error surfaces at once.
- Attempts are capped (``max_attempts``) and so is the time spent on one call (``max_elapsed_s``,
  measured on the injected clock, so the sandbox's time scale applies).

Built on tenacity's ``AsyncRetrying`` with our clock's ``sleep``. The first attempt runs without it:
tenacity's per-call machinery (a retry state, a ``concurrent.futures.Future`` per attempt, callable
inspection) costs more CPU than a request to the in-process sandbox, and the first attempt needs none of
it (no wait comes before it). Only a retryable failure hands the call to tenacity, which sees that
failure as its attempt 1 (same attempt numbers, waits, caps and hooks as if it had run it).
"""

from __future__ import annotations

import random
import re
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from aggregator.clock import Clock
from aggregator.config import RetrySettings
from aggregator.errors import ProviderError, ProviderServerError, RateLimitedError
from aggregator.log import get_logger
from aggregator.telemetry.tracing import attempt_number

__all__ = ["RetryPolicy", "parse_retry_after", "retry_after_from_body"]

T = TypeVar("T")
log = get_logger("aggregator.retry")

_BODY_RETRY_AFTER = re.compile(r"retry after (\d+(?:\.\d+)?) second", re.IGNORECASE)


def parse_retry_after(headers: Mapping[str, str], now: datetime | None = None) -> float | None:
    """Seconds to wait from ``Retry-After``/``retry-after-ms`` headers, or None.

    Accepts ``retry-after-ms: 1500`` (milliseconds), ``Retry-After: 12`` or ``12.5`` (seconds) and
    ``Retry-After: Wed, 21 Oct 2026 07:28:00 GMT`` (HTTP-date, relative to ``now``). Negative or
    unparseable values give None. Header names are matched case-insensitively.
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    millis = lowered.get("retry-after-ms")
    if millis is not None:
        try:
            value = float(millis) / 1000.0
            if value >= 0:
                return value
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if raw is None:
        return None
    raw = raw.strip()
    try:
        seconds = float(raw)
    except ValueError:
        try:
            when = parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    return seconds if seconds >= 0 else None


def retry_after_from_body(text: str) -> float | None:
    """``"... Retry after 12 seconds."`` in an error body (Sixtyfour's notebook parses this; Sixtyfour §4.3)."""
    match = _BODY_RETRY_AFTER.search(text)
    return float(match.group(1)) if match else None


class RetryPolicy:
    """Runs a coroutine factory with retries. One instance per provider client.

    Args:
        settings: attempt/time caps and backoff parameters (seconds).
        clock: the clock whose ``sleep``/``monotonic`` measure waits and elapsed time.
        rng: jitter source (inject a seeded ``random.Random`` for reproducible tests).
        on_retry: called with ``(error, wait_s)`` before each wait (logging, metrics).
    """

    def __init__(
        self,
        settings: RetrySettings,
        clock: Clock,
        *,
        rng: random.Random | None = None,
        on_retry: Callable[[ProviderError, float], None] | None = None,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.rng = rng or random.Random()
        self.on_retry = on_retry

    def backoff_s(self, attempt: int) -> float:
        """Full-jitter exponential backoff for retry number ``attempt`` (1-based)."""
        ceiling = min(self.settings.backoff_max_s, self.settings.backoff_initial_s * 2 ** (attempt - 1))
        return self.rng.uniform(0.0, ceiling)

    def wait_s(self, error: BaseException, attempt: int) -> float:
        """Seconds to wait before retry ``attempt``: at least the provider's Retry-After."""
        hinted = getattr(error, "retry_after_s", None)
        if isinstance(error, RateLimitedError | ProviderServerError) and hinted is not None:
            return max(float(hinted), 0.0)
        return self.backoff_s(attempt)

    def _should_retry(self, error: BaseException) -> bool:
        if not isinstance(error, ProviderError) or not error.retryable:
            return False
        hinted = getattr(error, "retry_after_s", None)
        return hinted is None or hinted <= self.settings.max_retry_after_s

    async def call(
        self,
        factory: Callable[[], Awaitable[T]],
        *,
        on_retry: Callable[[ProviderError, float], None] | None = None,
    ) -> T:
        """Await ``factory()`` until it succeeds, a non-retryable error occurs or a cap is hit.

        ``on_retry(error, wait_s)`` is called before each wait, after the policy's own hook.

        Raises:
            The last error, unchanged, when retries stop.
        """
        started = self.clock.monotonic()
        try:
            return await factory()  # the usual case: one attempt, no retry machinery
        except BaseException as exc:
            if not self._should_retry(exc):
                raise
            first_failure = exc
        return await self._retry(factory, first_failure, started, on_retry)

    async def _retry(
        self,
        factory: Callable[[], Awaitable[T]],
        first_failure: BaseException,
        started: float,
        on_retry: Callable[[ProviderError, float], None] | None,
    ) -> T:
        """tenacity's loop from attempt 2 on: its attempt 1 re-raises ``first_failure`` (already sent)."""
        settings = self.settings
        pending: list[BaseException] = [first_failure]

        number = 1  # the first attempt ran in call(); telemetry reads the attempt number from the context

        async def attempt() -> T:
            nonlocal number
            if pending:
                raise pending.pop()
            number += 1
            token = attempt_number.set(number)
            try:
                return await factory()
            finally:
                attempt_number.reset(token)

        def stop(state: RetryCallState) -> bool:
            if state.attempt_number >= settings.max_attempts:
                return True
            # tenacity computes the wait before asking stop, so upcoming_sleep is the real next wait
            return self.clock.monotonic() - started + state.upcoming_sleep > settings.max_elapsed_s

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            return self.wait_s(error, state.attempt_number) if error else 0.0

        def before_sleep(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            seconds = state.upcoming_sleep
            if isinstance(error, ProviderError):
                log.info("retry.scheduled", provider=error.provider, endpoint=error.endpoint,
                         error=type(error).__name__, attempt=state.attempt_number,
                         wait_s=round(seconds, 3))
                for hook in (self.on_retry, on_retry):
                    if hook:
                        hook(error, seconds)

        retrying = AsyncRetrying(
            retry=retry_if_exception(self._should_retry),
            stop=stop,
            wait=wait,
            sleep=self.clock.sleep,
            before_sleep=before_sleep,
            reraise=True,
        )
        try:
            return await retrying(attempt)
        finally:
            pending.clear()
