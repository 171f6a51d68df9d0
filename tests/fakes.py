"""Test doubles: fake and virtual clocks, and an aioresponses compatibility shim.

Two clocks, both exact (no real time, no slack in assertions):

- :class:`FakeClock` -- time advances by exactly what the one task under test sleeps. Right for
  single-task tests; wrong as soon as two tasks sleep concurrently (each sleep adds to the total).
- :class:`VirtualClock` on a :class:`VirtualTimeLoop` (decorate the test with
  :func:`virtual_time`) -- for concurrent tests. The *event loop's own time* is virtual: whenever
  the loop has nothing ready to run and would wait for its next timer, virtual time jumps to that
  timer at once. So every ``asyncio.sleep``, ``asyncio.timeout``/``wait_for`` and ``clock.sleep``
  of every task is honoured in virtual seconds, tasks interleave exactly as they would in real
  time, and a test can assert that something happened at virtual second 30.0, not "about then".
  It needs no sockets: real I/O would not advance virtual time (use the time-scaled sandbox for
  that). A deadlock (every task waits, no timer pending) raises :class:`VirtualTimeDeadlock`
  instead of hanging.
"""

from __future__ import annotations

import asyncio
import functools
import math
import selectors
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, ParamSpec

P = ParamSpec("P")
WALL0 = datetime(2026, 11, 21, tzinfo=UTC)
DEADLOCK_GRACE_S = 5.0  # real seconds a virtual loop with no timer waits for another thread


class FakeClock:
    """Virtual time that advances only when someone sleeps: exact for single-task tests.

    ``sleeps`` records every requested sleep in seconds.
    """

    scale = 1.0

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self._wall0 = WALL0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


class VirtualTimeDeadlock(RuntimeError):
    """Every task of a virtual-time test waits and no timer is pending: nothing can ever run again."""


class _VirtualSelector(selectors.BaseSelector):
    """The selector of a :class:`VirtualTimeLoop`: a wait for the next timer advances virtual time.

    The loop asks its selector to wait ``timeout`` seconds exactly when nothing is ready to run
    and its earliest timer is ``timeout`` away (``None``: no timer at all). Instead of blocking,
    this selector moves the loop's clock forward by ``timeout`` and returns no events, so the
    timer is due on the loop's next pass. File objects (the loop's self-pipe, through which
    other threads wake it) stay registered with a real selector and are polled without waiting.
    """

    def __init__(self, loop: VirtualTimeLoop) -> None:
        self._real = selectors.DefaultSelector()
        self._loop = loop

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        events = self._real.select(0)
        if events or (timeout is not None and timeout <= 0):
            return events
        if timeout is None:  # no timer: only another thread (call_soon_threadsafe) can wake us
            events = self._real.select(DEADLOCK_GRACE_S)
            if not events:
                raise VirtualTimeDeadlock(
                    f"virtual time {self._loop.time():.3f} s: every task is waiting and no timer is pending")
            return events
        self._loop.advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose ``time()`` is virtual and jumps to the next timer whenever it is idle."""

    def __init__(self) -> None:
        self._virtual_now = 0.0
        super().__init__(_VirtualSelector(self))

    def time(self) -> float:
        return self._virtual_now

    def advance(self, seconds: float) -> None:
        self._virtual_now += max(0.0, seconds)


class VirtualClock:
    """The :class:`~aggregator.clock.Clock` of a :class:`VirtualTimeLoop`: exact for concurrent tasks.

    ``monotonic()`` is the loop's virtual time (0.0 when the test starts), ``sleep`` waits on the
    loop's timers, ``scale`` is 1.0 (so the core's own loop timers, e.g. a job's deadline or a
    race's hedge, run in the same virtual seconds). ``sleeps`` records every requested sleep.
    Use it inside a test decorated with :func:`virtual_time`.
    """

    scale = 1.0

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    @staticmethod
    def _loop() -> VirtualTimeLoop:
        loop = asyncio.get_running_loop()
        if not isinstance(loop, VirtualTimeLoop):
            raise RuntimeError("VirtualClock needs a VirtualTimeLoop: decorate the test with @virtual_time")
        return loop

    def monotonic(self) -> float:
        return self._loop().time()

    def now(self) -> datetime:
        return WALL0 + timedelta(seconds=self.monotonic())

    async def sleep(self, seconds: float) -> None:
        """Sleep ``seconds`` of virtual time; a positive sleep always advances it (by one ulp at least,
        as real time would: a limiter's float rounding can ask for 1e-17 s, which ``now + delay``
        would absorb, and the waiter would spin at the same instant forever)."""
        self.sleeps.append(seconds)
        if seconds <= 0:
            await asyncio.sleep(0)
            return
        loop = self._loop()
        now = loop.time()
        when = max(now + seconds, math.nextafter(now, math.inf))
        woken: asyncio.Future[None] = loop.create_future()
        timer = loop.call_at(when, _wake, woken)
        try:
            await woken
        finally:
            timer.cancel()

    def __repr__(self) -> str:
        return "VirtualClock()"


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def virtual_time(test: Callable[P, Coroutine[Any, Any, None]]) -> Callable[P, None]:
    """Run an ``async def`` test on a fresh :class:`VirtualTimeLoop` (to pytest, a plain test).

    Fixtures reach the test as usual, but async fixtures would live on another loop: build what
    the test needs inside it.
    """

    @functools.wraps(test)
    def run(*args: P.args, **kwargs: P.kwargs) -> None:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(test(*args, **kwargs))

    return run


class _AlreadySent:
    output_size = 0


def aioresponses_compat(monkeypatch: object) -> None:
    """Let aioresponses 0.7.x build responses on aiohttp >= 3.14.

    aiohttp 3.14 added a required ``stream_writer`` argument to ``ClientResponse.__init__`` that
    aioresponses does not pass yet (pnuckowski/aioresponses#289, open). Test-only shim.
    """
    import inspect

    from aiohttp import ClientResponse

    original = ClientResponse.__init__
    if "stream_writer" not in inspect.signature(original).parameters:
        return

    def init(self: ClientResponse, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("stream_writer", _AlreadySent())
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ClientResponse, "__init__", init)  # type: ignore[attr-defined]
