"""Test doubles."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta


class FakeClock:
    """Virtual time that advances only when someone sleeps: exact for single-task tests.

    ``sleeps`` records every requested sleep in seconds.
    """

    scale = 1.0

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []
        self._wall0 = datetime(2026, 11, 21, tzinfo=UTC)

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return self._wall0 + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


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
