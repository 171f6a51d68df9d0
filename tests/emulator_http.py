"""Raw HTTP access to an emulator, shared by the provider emulator tests (no retries, no parsing magic)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import aiohttp
import orjson


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
