"""Injectable clocks: every duration the core and the sandbox measure goes through one.

The sandbox runs on *virtual seconds*: documented provider durations (a 60 s deep search, a
10-15 s poll cadence, a 200/min rate-limit window, a 1800 s cursor TTL) are kept as documented and
a :class:`ScaledClock` maps them to wall time by one factor. When the client and the in-process
sandbox share one scaled clock, every interval they agree on (Retry-After, windows, deadlines)
stays consistent, and a demo or a test finishes in seconds without patching ``asyncio.sleep``.

Network timeouts of the HTTP client stay in real seconds: they guard sockets, not providers.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "ScaledClock", "SystemClock"]


@runtime_checkable
class Clock(Protocol):
    """What the core needs to know about time. All values are (virtual) seconds.

    ``scale`` is wall seconds per clock second (1.0 for real time).
    """

    scale: float

    def monotonic(self) -> float:
        """Seconds on a monotonic scale; only differences are meaningful."""
        ...

    def now(self) -> datetime:
        """The current UTC wall-clock time (advances at the clock's rate)."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Suspend the caller for ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """Real time: ``time.monotonic``, ``datetime.now(UTC)`` and ``asyncio.sleep``."""

    scale = 1.0

    def monotonic(self) -> float:
        return time.monotonic()

    def now(self) -> datetime:
        return datetime.now(UTC)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


class ScaledClock:
    """Virtual time that runs ``1/scale`` times faster than real time.

    ``ScaledClock(0.01)`` makes a documented 60 s job take 0.6 s of wall time; ``sleep(10)``
    returns after 0.1 s; ``monotonic()`` advances by 100 per real second.

    Two processes agree on virtual time when both anchor their clock at the same ``epoch`` (a
    standalone sandbox publishes its epoch, and a client in another process builds
    ``ScaledClock(scale, epoch=...)`` from it): virtual time is ``epoch`` plus the real seconds
    since ``epoch``, scaled.

    Args:
        scale: wall seconds per virtual second, ``0 < scale <= 1``.
        epoch: the real UTC instant at which virtual time equals real time; default now.

    Raises:
        ValueError: if ``scale`` is not in ``(0, 1]``.
    """

    def __init__(self, scale: float, *, epoch: datetime | None = None) -> None:
        if not 0.0 < scale <= 1.0:
            raise ValueError(f"time scale must be in (0, 1], got {scale!r}")
        self.scale = scale
        self._wall0 = datetime.now(UTC) if epoch is None else epoch.astimezone(UTC)
        since_epoch_s = max(0.0, time.time() - self._wall0.timestamp())
        self._t0 = time.monotonic() - since_epoch_s

    @property
    def epoch(self) -> datetime:
        """The real instant at which this clock's virtual time started (see the class docstring)."""
        return self._wall0

    def monotonic(self) -> float:
        return (time.monotonic() - self._t0) / self.scale

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) * self.scale)

    def __repr__(self) -> str:
        return f"ScaledClock(scale={self.scale})"
