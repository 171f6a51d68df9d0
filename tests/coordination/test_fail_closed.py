"""Without its database, PostgreSQL coordination fails closed: no paid call, an error naming the host
(never the password), and everything works again once the database is back."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from pydantic import SecretStr

from aggregator.clock import ScaledClock
from aggregator.config import HttpSettings, RetrySettings
from aggregator.contract import Limits, RateLimitSpec
from aggregator.coordination import AccountBudget, BudgetScope, InProcessCoordinator
from aggregator.coordination.postgres import PostgresCoordinator
from aggregator.errors import CoordinationUnavailableError
from aggregator.http import HttpClient, ProviderHTTPClient
from aggregator.limits import ProviderLimiter
from aggregator.retry import RetryPolicy
from tests.db.backends import migrated_database
from tests.postgres import PASSWORD, Cluster


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port  # nothing listens there any more


class Proxy:
    """A TCP proxy to the cluster that can be taken down and brought back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()
        self._writers.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture
async def counting_server() -> AsyncIterator[tuple[str, list[str]]]:
    """A provider stand-in that counts the requests it receives."""
    received: list[str] = []

    async def handle(request: web.Request) -> web.Response:
        received.append(request.path)
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", received
    finally:
        await runner.cleanup()


def client(base_url: str, limiter: ProviderLimiter, http: HttpClient, clock: ScaledClock,
           budget: AccountBudget | None = None) -> ProviderHTTPClient:
    return ProviderHTTPClient(provider="sixtyfour", base_url=base_url, http=http, limiter=limiter,
                              retry=RetryPolicy(RetrySettings(max_attempts=2), clock), clock=clock,
                              api_key=SecretStr("sk-live-key"), auth_headers=lambda key: {"x-api-key": key},
                              account_budget=budget)


async def test_an_unreachable_database_fails_closed_naming_the_host_and_never_the_password() -> None:
    port = closed_port()
    coordinator = PostgresCoordinator(f"postgresql://deepsearch:{PASSWORD}@127.0.0.1:{port}/coord",
                                      connect_timeout_s=2.0)
    clock = ScaledClock(0.01)
    started = time.monotonic()
    with pytest.raises(CoordinationUnavailableError) as acquiring:
        await coordinator.rate_limit("acct", [RateLimitSpec("query", 5, 1.0)], clock).acquire()
    with pytest.raises(CoordinationUnavailableError) as reserving:
        await coordinator.reserve([BudgetScope.for_account("acct", 10.0, "day")], 1.0, clock, provider="orbit")
    with pytest.raises(CoordinationUnavailableError):
        await coordinator.lease_pool("acct", "jobs", 5, clock).acquire()
    assert time.monotonic() - started < 5.0  # a refused connection is not waited out
    for error in (acquiring.value, reserving.value):
        assert error.address == f"127.0.0.1:{port}/coord"
        assert f"127.0.0.1:{port}/coord" in str(error) and PASSWORD not in str(error) + repr(error.reason)
    await coordinator.aclose()


async def test_no_request_is_sent_without_the_coordination_it_needs(
        counting_server: tuple[str, list[str]]) -> None:
    base_url, received = counting_server
    clock = ScaledClock(0.01)
    down = PostgresCoordinator(f"postgresql://deepsearch:{PASSWORD}@127.0.0.1:{closed_port()}/coord",
                               connect_timeout_s=2.0)
    http = HttpClient(HttpSettings())
    await http.open()
    try:
        limited = client(base_url, ProviderLimiter("sixtyfour", Limits(), clock, coordinator=down), http, clock)
        with pytest.raises(CoordinationUnavailableError):
            await limited.request("GET", "/search/status/1", endpoint="GET /search/status/{task_id}",
                                  idempotent=True)
        # limits in process, but the account's budget needs the database: no paid call either
        budgeted = client(base_url, ProviderLimiter("sixtyfour", Limits(), clock), http, clock,
                          AccountBudget.of(down, "sixtyfour", "acct", 100.0, "day", clock))
        with pytest.raises(CoordinationUnavailableError):
            await budgeted.request("POST", "/search/start-deep-search", endpoint="POST /search/start-deep-search",
                                   json={}, cost=1.0)
        assert received == []
        free = client(base_url, ProviderLimiter("sixtyfour", Limits(), clock), http, clock,
                      AccountBudget.of(InProcessCoordinator(), "sixtyfour", "acct", 100.0, "day", clock))
        await free.request("POST", "/search/start-deep-search", endpoint="POST /search/start-deep-search",
                           json={}, cost=1.0)
        assert received == ["/search/start-deep-search"]  # (the server does count what it gets)
    finally:
        await http.close()
        await down.aclose()


async def test_coordination_fails_closed_while_the_database_is_gone_and_resumes_when_it_is_back(
        postgres: Cluster) -> None:
    url = migrated_database(postgres)
    proxy = Proxy(postgres.port)
    await proxy.start()
    proxied = url.replace(f":{postgres.port}/", f":{proxy.port}/")
    coordinator = PostgresCoordinator(proxied, connect_timeout_s=1.0)
    clock = ScaledClock(0.01)
    limit = coordinator.rate_limit("acct", [RateLimitSpec("query", 100, 1.0)], clock)
    scope = BudgetScope.for_account("acct", 10.0, "day")
    try:
        await limit.release(await limit.acquire())
        await coordinator.settle(await coordinator.reserve([scope], 1.0, clock, provider="orbit"))

        await proxy.stop()  # the database goes away mid-run
        with pytest.raises(CoordinationUnavailableError) as info:
            await limit.acquire()
        assert f"127.0.0.1:{proxy.port}/" in str(info.value) and PASSWORD not in str(info.value)
        with pytest.raises(CoordinationUnavailableError):
            await coordinator.reserve([scope], 1.0, clock, provider="orbit")

        await proxy.start()  # ... and comes back: the same coordinator carries on
        deadline = time.monotonic() + 8.0
        while True:
            try:
                await limit.release(await limit.acquire())
                break
            except CoordinationUnavailableError:
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.1)
        hold = await coordinator.reserve([scope], 1.0, clock, provider="orbit")
        await coordinator.settle(hold)
        assert (await coordinator.usage(scope, clock)).spent == pytest.approx(2.0)  # nothing lost, nothing doubled
    finally:
        await coordinator.aclose()
        await proxy.stop()
