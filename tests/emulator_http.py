"""Raw HTTP access to an emulator, shared by the provider emulator tests (no retries, no parsing magic)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson

from providers.sandbox.faults import FaultRule
from providers.sandbox.runner import Sandbox, SandboxConfig


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


@asynccontextmanager
async def emulator_apis(provider: str, build: Callable[[aiohttp.ClientSession, Sandbox], A], *,
                        time_scale: float, n_companies: int,
                        defaults: Mapping[str, Any] | None = None) -> AsyncIterator[Callable[..., Awaitable[A]]]:
    """The body of each provider's ``make_api`` fixture: one session, and per call a sandbox running
    only ``provider`` with ``defaults`` overridden by the call's ``settings``; all closed at the end.

    ``make(settings=None, faults=(), time_scale=...)`` returns ``build(session, sandbox)``.
    """
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        default_scale = time_scale

        async def make(settings: Mapping[str, Any] | None = None, faults: tuple[FaultRule, ...] = (),
                       time_scale: float = default_scale) -> A:
            config = SandboxConfig(providers=(provider,), time_scale=time_scale, n_companies=n_companies,
                                   faults=faults, settings={provider: {**(defaults or {}), **(settings or {})}})
            return build(session, await stack.enter_async_context(Sandbox(config)))

        yield make
