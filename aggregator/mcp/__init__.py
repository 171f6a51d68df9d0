"""``deepsearch mcp``: the MCP server (official ``mcp`` SDK, v2 ``MCPServer``) over the same Aggregator,
settings, keys, sandbox default and journal as the CLI. Needs the ``mcp`` extra
(``pip install 'deepsearch-aggregator[mcp]'``).

- :func:`serve` — run the server over stdio, or the streamable HTTP transport on ``(host, port)``.
- :func:`~aggregator.mcp.server.build_server` — the server and its tools (:mod:`aggregator.mcp.tools`).
- :class:`~aggregator.mcp.state.ServerState` — what the process holds for its lifetime: the Aggregator and
  its sandbox, the session's credits (``[mcp]`` caps), the runs it drives.
"""

from __future__ import annotations

from collections.abc import Callable

from aggregator.config import Settings
from aggregator.core import Aggregator
from aggregator.jobstore import JobStore
from aggregator.mcp.server import build_server
from aggregator.mcp.state import ServerState

__all__ = ["ServerState", "build_server", "serve"]


async def serve(settings: Settings, store: JobStore, *, http: tuple[str, int] | None = None,
                on_ready: Callable[[Aggregator], None] | None = None) -> None:
    """Serve the MCP tools until the client disconnects (stdio) or the process is stopped (HTTP).

    One :class:`ServerState` (one Aggregator, its sandbox, the session's credits) lives as long as the
    server; ``on_ready`` gets its Aggregator once it is open (the CLI says on stderr where it runs). On
    exit, runs still going are cancelled and journaled as ``interrupted``.

    Raises:
        ConfigError: the settings cannot run (``--live`` without keys, a stale sandbox connection file...).
    """
    async with ServerState.open(settings, store) as state:
        if on_ready is not None:
            on_ready(state.agg)
        server = build_server(state)
        if http is None:
            await server.run_stdio_async()
        else:
            await server.run_streamable_http_async(host=http[0], port=http[1])
