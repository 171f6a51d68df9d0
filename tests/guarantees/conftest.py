"""Fixtures every guarantee test shares: the aioresponses shim and one client session per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from tests.fakes import aioresponses_compat


@pytest.fixture(autouse=True)
def _compat(monkeypatch: pytest.MonkeyPatch) -> None:
    aioresponses_compat(monkeypatch)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened
