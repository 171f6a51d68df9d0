"""Fixtures for the Sixtyfour emulator tests: a real Sandbox over sockets plus a thin client.

``make_api(settings=..., faults=...)`` starts a sandbox (small world, on a fake clock: virtual
time moves only when the test calls ``api.sandbox.clock.sleep``; deep searches last an hour of
virtual time unless ``settings`` say otherwise) and returns an :class:`Api` bound to org 1. Everything is
closed at teardown (warnings are errors, so an unclosed session would fail the test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest

from providers.sandbox.runner import Sandbox
from tests.emulator_http import Answer, emulator_apis, send

QUERY = "VP of Engineering in New York"
SLOW_JOBS = {"duration_min_s": 3000.0, "duration_max_s": 3600.0}



class Api:
    """Raw HTTP access to the sixtyfour emulator as one org (no retries, no parsing magic)."""

    def __init__(self, session: aiohttp.ClientSession, sandbox: Sandbox, org: int = 1) -> None:
        self.session = session
        self.sandbox = sandbox
        self.org = org
        self.base = sandbox.base_urls["sixtyfour"]
        self.key: str | None = sandbox.api_key("sixtyfour", org)

    @property
    def emulator(self) -> Any:
        return self.sandbox.emulator("sixtyfour")

    def as_org(self, org: int) -> Api:
        return Api(self.session, self.sandbox, org)

    async def call(
        self, method: str, path: str, *, json: Any = None, data: bytes | None = None,
        params: Mapping[str, str] | None = None, key: str | None = "default",
    ) -> Answer:
        api_key = self.key if key == "default" else key
        headers = {"x-api-key": api_key} if api_key else {}
        url = path if path.startswith("http") else self.base + path
        return await send(self.session, method, url, headers=headers, json=json, data=data, params=params)

    async def post(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.call("POST", path, json=body, **kw)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.call("GET", path, **kw)

    async def start(self, query: str = QUERY, **body: Any) -> str:
        answer = await self.post("/search/start-deep-search", {"query": query, **body})
        assert answer.status == 200, answer.body
        task_id: str = answer.json()["task_id"]
        return task_id

    async def status(self, task_id: str) -> dict[str, Any]:
        answer = await self.get(f"/search/status/{task_id}")
        assert answer.status == 200, answer.body
        doc: dict[str, Any] = answer.json()
        return doc

    async def completed(self, query: str = QUERY, **body: Any) -> dict[str, Any]:
        """Start a deep search, force it to complete and return its status document."""
        task_id = await self.start(query, **body)
        self.emulator.force_complete(task_id)
        doc = await self.status(task_id)
        assert doc["status"] == "completed"
        return doc

    def stats(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.sandbox.stats()["providers"]["sixtyfour"]
        return doc


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api() -> AsyncIterator[MakeApi]:
    # Long jobs unless a test asks otherwise: tests finish them with force_complete (or move the
    # fake clock past their end), so a test reads as what it does to the job.
    async with emulator_apis("sixtyfour", Api, n_companies=400, defaults=SLOW_JOBS) as make:
        yield make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()

