"""Raw HTTP access to an emulator, shared by the provider emulator tests (no retries, no parsing magic),
and :func:`unhurried`, the provider folders' ``make_aggregator``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson

from providers.sandbox.faults import FaultRule
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.fakes import FakeClock


@dataclass
class Answer:
    """One response as received: status, headers and raw body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


A = TypeVar("A", bound=Answer)

async def send(session: aiohttp.ClientSession, method: str, url: str, *, headers: Mapping[str, str],
               json: Any = None, data: bytes | None = None, params: Mapping[str, str] | None = None,
               answer: type[A] = Answer) -> A:  # type: ignore[assignment]
    """Send one request (``json`` is serialized with orjson) and capture the whole answer."""
    sent = dict(headers)
    if json is not None:
        data, sent["Content-Type"] = orjson.dumps(json), "application/json"
    async with session.request(method, url, data=data, params=params, headers=sent) as resp:
        return answer(resp.status, dict(resp.headers), await resp.read())


A = TypeVar("A")


class HoldableClock(FakeClock):
    """A :class:`~tests.fakes.FakeClock` whose sleepers can be held in flight.

    Inside ``with clock.held():`` every ``sleep`` (a ``page_latency_s`` or ``slow`` fault in a
    handler) waits until the block ends, so a test can put a second request next to one still in
    flight without racing the wall clock.
    """

    def __init__(self) -> None:
        super().__init__()
        self._open = asyncio.Event()
        self._open.set()

    @contextmanager
    def held(self) -> Iterator[None]:
        self._open.clear()
        try:
            yield
        finally:
            self._open.set()

    async def sleep(self, seconds: float) -> None:
        await self._open.wait()
        await super().sleep(seconds)


@asynccontextmanager
async def emulator_apis(provider: str, build: Callable[[aiohttp.ClientSession, Sandbox], A], *,
                        n_companies: int,
                        defaults: Mapping[str, Any] | None = None) -> AsyncIterator[Callable[..., Awaitable[A]]]:
    """The body of each provider's ``make_api`` fixture: one session, and per call a sandbox running
    only ``provider`` with ``defaults`` overridden by the call's ``settings``; all closed at the end.

    ``make(settings=None, faults=())`` returns ``build(session, sandbox)``. The sandbox runs on a
    :class:`HoldableClock` (a :class:`~tests.fakes.FakeClock`): its virtual time stands still
    until the test moves it with ``sandbox.clock.sleep(s)`` (or a ``slow`` fault sleeps), so
    windows, durations, TTLs and Retry-After are exact, however slowly a loaded machine runs.
    """
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())

        async def make(settings: Mapping[str, Any] | None = None, faults: tuple[FaultRule, ...] = ()) -> A:
            config = SandboxConfig(providers=(provider,), n_companies=n_companies, faults=faults,
                                   settings={provider: {**(defaults or {}), **(settings or {})}})
            sandbox = Sandbox(config, clock=HoldableClock())
            return build(session, await stack.enter_async_context(sandbox))

        yield make
