"""Fixtures for the Orbit emulator tests: a real Sandbox over sockets plus a thin raw client.

``make_api(settings=..., faults=...)`` starts a sandbox running only the Orbit emulator
(1000-company world, on a fake clock: virtual time moves only by ``api.sandbox.clock.sleep``) and
returns an :class:`Api` bound to org 1's sandbox key. Runs are slow unless ``settings`` say
otherwise (:data:`SLOW_RUNS`): tests end them with ``force_complete`` or move the clock.
Everything is closed at teardown (warnings are errors, so an unclosed session would fail the test).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from providers.sandbox.runner import Sandbox
from tests.emulator_http import Answer as BaseAnswer
from tests.emulator_http import emulator_apis, send

N_COMPANIES = 1000
START = "/v2/developer/deep-search"
SLOW_RUNS = {"partial_s": 5000.0, "full_s": 10000.0, "identity_check_s": 5000.0,
             "sources_s": 5000.0}  # fmt: skip
DEMO_INTENT = {"version": "v1", "experiences": [{"title": "VP of Engineering", "temporalScope": "current"}],
               "geo": {"place": "New York"}, "semanticClauses": [{"text": "Series B SaaS startups"}]}


@dataclass
class Answer(BaseAnswer):
    @property
    def code(self) -> str:
        """``error.code`` of an error envelope."""
        doc = self.json()
        assert doc["status"] == "failed", doc
        code: str = doc["error"]["code"]
        return code


class Api:
    """Raw HTTP access to the Orbit emulator with one API key (no retries, no parsing magic)."""

    def __init__(self, session: aiohttp.ClientSession, sandbox: Sandbox, key: str) -> None:
        self.session = session
        self.sandbox = sandbox
        self.base = sandbox.base_urls["orbit"]
        self.key = key

    @property
    def emulator(self) -> Any:
        return self.sandbox.emulator("orbit")

    def with_key(self, key: str) -> Api:
        return Api(self.session, self.sandbox, key)

    async def call(
        self, method: str, path: str, *, json: Any = None, data: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Answer:
        sent = {"Authorization": f"Bearer {self.key}"} if headers is None else dict(headers)
        return await send(self.session, method, self.base + path, headers=sent, json=json, data=data, answer=Answer)

    async def post(self, body: Any, **kw: Any) -> Answer:
        return await self.call("POST", START, json=body, **kw)

    async def start(self, **body: Any) -> dict[str, Any]:
        answer = await self.post(body)
        assert answer.status == 202, answer.body
        doc: dict[str, Any] = answer.json()
        return doc

    async def status(self, request_id: str) -> dict[str, Any]:
        answer = await self.call("GET", f"{START}/{request_id}")
        assert answer.status == 200, answer.body
        doc: dict[str, Any] = answer.json()
        return doc

    async def profile(self, profile_id: str) -> dict[str, Any]:
        answer = await self.call("GET", f"/v2/developer/profiles/{profile_id}")
        assert answer.status == 200, answer.body
        doc: dict[str, Any] = answer.json()["payload"]
        return doc

    async def finished(self, **body: Any) -> dict[str, Any]:
        """Start a run, force it to its end and return its status document."""
        request_id = (await self.start(**body))["request_id"]
        self.emulator.force_complete(request_id)
        return await self.status(request_id)

    def stats(self) -> dict[str, Any]:
        doc: dict[str, Any] = self.sandbox.stats()["providers"]["orbit"]
        return doc


MakeApi = Callable[..., Awaitable[Api]]


@pytest.fixture
async def make_api() -> AsyncIterator[MakeApi]:
    async with emulator_apis("orbit", lambda session, sandbox: Api(session, sandbox, sandbox.api_key("orbit")),
                             n_companies=N_COMPANIES, defaults=SLOW_RUNS) as make:
        yield make


@pytest.fixture
async def api(make_api: MakeApi) -> Api:
    return await make_api()

