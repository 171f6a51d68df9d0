"""Fixtures for the Extruct emulator tests: a real Sandbox over sockets plus a thin raw client.

``make_api(settings=..., faults=...)`` starts a sandbox running only the Extruct emulator
(2000-company world, on a fake clock: virtual time moves only by ``api.sandbox.clock.sleep``) and
returns an :class:`Api` bound to org 1. Tasks run at the emulator's default rates unless
``settings`` say otherwise; tests that need a finished task use ``force_complete``. Everything
is closed at teardown (warnings are errors, so an unclosed session would fail the test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import pytest

from providers.sandbox.runner import Sandbox
from tests.emulator_http import Answer, emulator_apis, send

N_COMPANIES = 2000
TASKS = "/v1/discovery_tasks"
FREIGHT = "vertical SaaS companies serving freight forwarding"



class Api:
    """Raw HTTP access to the Extruct emulator as one org (no retries, no parsing magic)."""

    def __init__(self, session: aiohttp.ClientSession, sandbox: Sandbox, org: int = 1) -> None:
        self.session = session
        self.sandbox = sandbox
        self.org = org
        self.base = sandbox.base_urls["extruct"]
        self.token = sandbox.api_key("extruct", org)

    @property
    def emulator(self) -> Any:
        return self.sandbox.emulator("extruct")

    def as_org(self, org: int) -> Api:
        return Api(self.session, self.sandbox, org)

    async def call(
        self, method: str, path: str, *, json: Any = None, data: bytes | None = None,
        params: Mapping[str, str] | None = None, auth: str | None = "default",
    ) -> Answer:
        header = f"Bearer {self.token}" if auth == "default" else auth
        headers = {"Authorization": header} if header is not None else {}
        return await send(self.session, method, self.base + path, headers=headers, json=json, data=data,
                          params=params)

    async def post(self, path: str, body: Any, **kw: Any) -> Answer:
        return await self.call("POST", path, json=body, **kw)

    async def get(self, path: str, **kw: Any) -> Answer:
        return await self.call("GET", path, **kw)

    async def create(self, query: str = FREIGHT, **body: Any) -> dict[str, Any]:
        answer = await self.post(TASKS, {"query": query, **body})
        assert answer.status == 200, answer.body
        doc: dict[str, Any] = answer.json()
        return doc

    async def task(self, task_id: str) -> dict[str, Any]:
        answer = await self.get(f"{TASKS}/{task_id}")
        assert answer.status == 200, answer.body
        doc: dict[str, Any] = answer.json()
        return doc

    async def results(self, task_id: str, **params: int) -> dict[str, Any]:
        query = {k: str(v) for k, v in params.items()}
        answer = await self.get(f"{TASKS}/{task_id}/results", params=query)
        assert answer.status == 200, answer.body
        doc: dict[str, Any] = answer.json()
        return doc

    async def done(self, query: str = FREIGHT, **body: Any) -> dict[str, Any]:
        """Create a task, force it to its end and return its results document (all rows)."""
        task_id = (await self.create(query, **body))["id"]
        self.emulator.force_complete(task_id)
        doc = await self.results(task_id, limit=250)
        assert doc["status"] == "done", doc["status"]
        return doc

    def stats(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.sandbox.stats()["providers"]["extruct"]
        return doc


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api() -> AsyncIterator[MakeApi]:
    async with emulator_apis("extruct", Api, n_companies=N_COMPANIES) as make:
        yield make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()

