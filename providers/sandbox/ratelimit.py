"""Server-side rate limits on the virtual clock (design §4: "enforces what the real API enforces").

Two classic algorithms, both keyed (per org or per API key) and both answering "admit, or retry
after N virtual seconds" so emulators can send an exact ``Retry-After``:

- :class:`SlidingWindowLog` -- ``limit`` requests in any ``window_s`` (Sixtyfour ``/search/query``
  200/min per org, contract sixtyfour §4.3). Exact: the retry delay is the time until the oldest admitted
  request leaves the window. Only admitted requests are logged, so a client that waits the
  advertised delay is admitted.
- :class:`TokenBucket` -- ``rate`` tokens per second with a ``burst`` capacity (Orbit's start
  endpoint, 5/s burst 25).

:func:`retry_after_header` renders a delay as the header value: whole seconds, rounded up.
"""

from __future__ import annotations

import math
from collections import deque

from aggregator.clock import Clock

__all__ = ["SlidingWindowLog", "TokenBucket", "retry_after_header"]


def retry_after_header(delay_s: float) -> str:
    """``Retry-After`` value for a delay in virtual seconds: a whole number, rounded up, >= 1."""
    return str(max(1, math.ceil(delay_s - 1e-9)))


class SlidingWindowLog:
    """At most ``limit`` admitted requests per key in any window of ``window_s`` virtual seconds.

    Args:
        clock: the sandbox clock (virtual seconds).
        limit: requests admitted per window, ``>= 1``.
        window_s: window length in virtual seconds, ``> 0``.
    """

    def __init__(self, clock: Clock, *, limit: int, window_s: float) -> None:
        if limit < 1 or window_s <= 0:
            raise ValueError(f"invalid sliding window: limit={limit}, window_s={window_s}")
        self._clock = clock
        self.limit = limit
        self.window_s = window_s
        self._logs: dict[object, deque[float]] = {}

    def acquire(self, key: object) -> float | None:
        """Admit one request for ``key`` (returns None) or return the delay in virtual seconds
        until a request would be admitted (the oldest logged request leaves the window)."""
        now = self._clock.monotonic()
        log = self._logs.setdefault(key, deque())
        while log and log[0] <= now - self.window_s:
            log.popleft()
        if len(log) >= self.limit:
            return max(0.0, log[0] + self.window_s - now)
        log.append(now)
        return None

    def in_window(self, key: object) -> int:
        """Requests of ``key`` currently counted in the window."""
        now = self._clock.monotonic()
        return sum(1 for t in self._logs.get(key, ()) if t > now - self.window_s)


class TokenBucket:
    """``rate`` tokens per virtual second, at most ``burst`` stored, per key (starts full).

    Args:
        clock: the sandbox clock (virtual seconds).
        rate: refill rate in tokens per virtual second, ``> 0``.
        burst: bucket capacity, ``>= 1``.
    """

    def __init__(self, clock: Clock, *, rate: float, burst: int) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"invalid token bucket: rate={rate}, burst={burst}")
        self._clock = clock
        self.rate = rate
        self.burst = burst
        self._buckets: dict[object, tuple[float, float]] = {}  # key -> (tokens, last refill)

    def acquire(self, key: object, cost: float = 1.0) -> float | None:
        """Take ``cost`` tokens for ``key`` (returns None) or return the delay in virtual
        seconds until enough tokens will have accumulated."""
        now = self._clock.monotonic()
        tokens, last = self._buckets.get(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens + 1e-9 >= cost:
            self._buckets[key] = (tokens - cost, now)
            return None
        self._buckets[key] = (tokens, now)
        return (cost - tokens) / self.rate
