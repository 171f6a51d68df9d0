"""An unreachable database fails closed with an error naming host:port/database and never the password;
a run stopped by it is resumable once the database is back.

The server "goes away" through a TCP proxy in the test (closed, then reopened on the same port), so
the session's cluster keeps running for the other tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import traceback
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from aggregator.config import DatabaseSettings
from aggregator.core import Aggregator
from aggregator.db.journal import PostgresJournal
from aggregator.errors import DatabaseUnavailableError
from aggregator.events import RunStartedEvent
from aggregator.models import SearchRequest
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE, sandbox_settings
from tests.postgres import PASSWORD, Cluster

START = "POST /search/start-deep-search"
FAKE_NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def everything_said(error: BaseException, caplog: pytest.LogCaptureFixture) -> str:
    return "\n".join([str(error), *traceback.format_exception(error), caplog.text])


class Proxy:
    """A TCP proxy to the cluster on a port of its own: ``close()`` is the server going away (listener
    and every connection), ``open()`` it coming back on the same port."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, upstream_writer}
        pipes = [asyncio.create_task(self._pipe(reader, upstream_writer)),
                 asyncio.create_task(self._pipe(upstream_reader, writer))]
        self._pipes.update(pipes)
        await asyncio.gather(*pipes, return_exceptions=True)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError, asyncio.CancelledError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        for pipe in self._pipes:
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        self._pipes.clear()


@pytest.fixture
async def proxy(postgres: Cluster) -> AsyncIterator[Proxy]:
    opened = Proxy(postgres.port)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


def through(proxy: Proxy, database_url: str) -> DatabaseSettings:
    """``database_url`` reached through ``proxy``, giving up after half a real second."""
    url = database_url.replace(f":{proxy.target_port}/", f":{proxy.port}/")
    return DatabaseSettings.model_validate({"url": url, "connect_timeout_s": 0.5})


async def test_a_wrong_port_is_an_error_naming_host_port_and_database(
        postgres: Cluster, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    port = free_port()
    with pytest.raises(DatabaseUnavailableError) as info:
        await PostgresJournal(database_url.replace(f":{postgres.port}/", f":{port}/")).open()
    database = database_url.rsplit("/", 1)[1]
    assert info.value.address == f"127.0.0.1:{port}/{database}"
    assert f"cannot use the PostgreSQL database at 127.0.0.1:{port}/{database}" in str(info.value)
    assert "Connection refused" in info.value.reason and "Check that the server is running" in str(info.value)
    assert PASSWORD not in everything_said(info.value, caplog)


async def test_a_wrong_password_is_named_as_such_but_never_shown(database_url: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "not-" + PASSWORD
    with pytest.raises(DatabaseUnavailableError) as info:
        await PostgresJournal(database_url.replace(PASSWORD, wrong)).open()
    assert "password authentication failed" in str(info.value)
    said = everything_said(info.value, caplog)
    assert PASSWORD not in said and wrong not in said


async def test_a_journal_whose_server_goes_away_fails_closed_and_the_run_resumes_from_another_once_back(
        proxy: Proxy, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    settings = through(proxy, database_url)
    request = SearchRequest(query="fail closed")
    async with PostgresJournal(settings) as journal:
        await journal.record_run("run-1", request, FAKE_NOW)
        await journal.record_submit_intent("run-1", "fake", "key-1", request)
        await proxy.close()  # the server goes away
        with pytest.raises(DatabaseUnavailableError) as info:
            await journal.record_state("run-1", "fake", "done")
        assert info.value.address == f"127.0.0.1:{proxy.port}/{database_url.rsplit('/', 1)[1]}"
        assert PASSWORD not in everything_said(info.value, caplog)
        await proxy.open()  # back: what was committed is there for the next process
        async with PostgresJournal(settings) as resumed:
            record = await resumed.get("run-1", "fake")
            assert record is not None and (record.idempotency_key, record.state) == ("key-1", "submitting")
            await resumed.record_state("run-1", "fake", "done")
        await proxy.close()  # closing the first journal must not hang on its dead connections
        with contextlib.suppress(DatabaseUnavailableError):
            await journal.close()


async def test_a_search_whose_journal_goes_away_pays_for_nothing_and_resumes_once_back(
        proxy: Proxy, database_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """Fail closed at the run level: the submit intent cannot be journaled, so the paid submit is never
    sent; once the database is back, another process resumes the run and pays once."""
    caplog.set_level(logging.DEBUG)
    config = SandboxConfig(time_scale=FAST_SCALE, n_companies=1000, providers=("sixtyfour",))
    settings = through(proxy, database_url)
    request = SearchRequest(query="CTO in Berlin", max_results=10, providers=("sixtyfour",))
    async with Sandbox(config) as sandbox:
        run_id = None
        async with PostgresJournal(settings) as journal, Aggregator(sandbox_settings(), sandbox=sandbox,
                                                                    job_store=journal) as agg:
            with pytest.raises(DatabaseUnavailableError) as info:
                async for event in agg.stream(request):
                    if isinstance(event, RunStartedEvent):
                        run_id = event.run_id
                        await proxy.close()  # the run is recorded; its jobs are not
            await proxy.open()
        assert run_id is not None and sandbox.requests("sixtyfour", START) == []  # nothing was paid for
        assert PASSWORD not in everything_said(info.value, caplog)

        async with PostgresJournal(settings) as journal, Aggregator(sandbox_settings(), sandbox=sandbox,
                                                                    job_store=journal) as agg:
            report = await agg.resume(run_id)
            state = await journal.run(run_id)
        assert report.outcome("sixtyfour").status == "found" and report.records
        assert len(sandbox.requests("sixtyfour", START)) == 1  # paid once, by the resumed run
        assert state is not None and state.status == "done"
