"""Fixtures of the MCP tests: the SDK's own client over stdio against a real ``python -m aggregator mcp``
process on a small, fast in-process sandbox (no provider key in its environment), journaled in ``tmp_path``."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp_types import CallToolResult

ROOT = Path(__file__).resolve().parents[2]
FAST = ("[sandbox]\ntime_scale = 0.002\nn_companies = 600\n"
        "[run]\ndeadline_s = 30000.0\n")  # unhurried: tests that are not about deadlines must not race the clock
PROVIDER_VARS = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
                 "ORBIT_BASE_URL", "DEEPSEARCH_SANDBOX", "DEEPSEARCH_CONFIG", "DEEPSEARCH_DATABASE_URL")
POLL_S = 0.05

ServerFactory = Callable[..., AbstractAsyncContextManager[Client]]


def server_environment(tmp_path: Path, config: str) -> dict[str, str]:
    """The server's environment: no provider key (so the sandbox), ``config`` as its file, a journal here."""
    (tmp_path / "mcp.toml").write_text(config)
    env = {name: value for name, value in os.environ.items() if name not in PROVIDER_VARS}
    return env | {"DEEPSEARCH_CONFIG": str(tmp_path / "mcp.toml"), "DEEPSEARCH_JOURNAL": str(tmp_path / "j.sqlite"),
                  "COLUMNS": "200"}


@pytest.fixture
def mcp_server(tmp_path: Path) -> ServerFactory:
    """``async with mcp_server(config=FAST) as client``: a ``deepsearch mcp`` process over stdio with that
    config file (its stderr in ``tmp_path / "server.err"``); the same ``tmp_path`` journal for every process
    of a test."""

    @asynccontextmanager
    async def start(config: str = FAST) -> AsyncIterator[Client]:
        params = StdioServerParameters(command=sys.executable, args=["-m", "aggregator", "mcp"],
                                       env=server_environment(tmp_path, config), cwd=str(ROOT))
        with (tmp_path / "server.err").open("a") as errlog:
            async with Client(stdio_client(params, errlog=errlog)) as client:
                yield client

    return start


def ok(result: CallToolResult) -> dict[str, Any]:
    """The structured content of a successful call."""
    assert not result.is_error, result.content
    assert result.structured_content is not None
    return result.structured_content


def error_text(result: CallToolResult) -> str:
    """The message of a tool error (``isError``)."""
    assert result.is_error, result.structured_content
    return " ".join(getattr(block, "text", "") for block in result.content)


async def poll(check: Callable[[], Awaitable[dict[str, Any] | None]], timeout_s: float = 45.0) -> dict[str, Any]:
    """Call ``check`` every :data:`POLL_S` until it returns a result; fail after ``timeout_s``."""
    async with asyncio.timeout(timeout_s):
        while True:  # the server is another process: there is nothing to wait on but its answers
            found = await check()
            if found is not None:
                return found
            await asyncio.sleep(POLL_S)
