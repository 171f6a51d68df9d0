"""The MCP server (official SDK, ``MCPServer``): deep search as tools for agents.

Tools (each with an ``inputSchema`` from its annotated arguments, an ``outputSchema`` from its result
model in :mod:`aggregator.mcp.models`, structured content, and annotations):

=====================  ==========================================================================
``deep_search``        run a search to its report, with progress notifications; paid
``start_deep_search``  start one in the background and return its run id at once; paid
``get_search``         a run's status, records so far and outcomes, from the journal; free
``resume_search``      continue an interrupted run in the background (nothing paid twice); paid
``compare_providers``  every capable provider on one query, compared; paid
``lookup_person``      one person from identity signals; paid
``filter_search``      Sixtyfour filter search; paid per its cost model
``filter_fields``      the fields a filter search takes; free
``filter_values``      a field's top values; free
=====================  ==========================================================================

Errors: invalid arguments (a JSON-schema violation, an unknown argument, a :class:`ConfigError` of the
library) and refused budgets are tool errors (``isError``) naming the field, e.g. ``max_results: Input
should be less than or equal to 5000 (got 9000)``; provider failures are outcomes inside a successful
result; nothing else raises through the transport (the SDK turns a crash into a generic tool error).
A cancelled call (``notifications/cancelled``) stops the run's provider jobs and journals the run as
``interrupted``: no provider contract offers cancelling a job at the provider, so its jobs are left
to finish there, and a resumed run polls them rather than paying again.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp_types import CallToolResult, InputRequiredResult, ToolAnnotations
from pydantic import ValidationError

from aggregator.errors import ConfigError
from aggregator.mcp.state import ServerState
from aggregator.mcp.tools import DeepSearchTools

__all__ = ["FREE_PROVIDER_READ", "JOURNAL_READ", "PAID", "DeepSearchServer", "build_server"]

PAID = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
"""Paid tools: not read-only (they spend credits and journal a run), so clients ask before calling them."""
FREE_PROVIDER_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                     open_world_hint=True)
JOURNAL_READ = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                               open_world_hint=False)
INSTRUCTIONS = """\
People and company deep search across Sixtyfour, Extruct and Orbit, merged into one de-duplicated result
set with provenance. Paid tools spend provider credits: each call's budget defaults to (and may not
exceed) the server's per-call cap, and the server session has a total cap; every result says what it
cost (`credits`) and what the session has left. A deep search takes seconds to minutes: when your tool
calls time out, use start_deep_search, then poll get_search with the run id. Cancelling a call stops the
run; resume_search continues it without paying twice."""


class DeepSearchServer(MCPServer[Any]):
    """An ``MCPServer`` that refuses unknown arguments (the SDK ignores them) and words argument errors
    like the CLI (``field: problem``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.argument_names: dict[str, frozenset[str]] = {}

    def add_paid_or_free(self, fn: Callable[..., Any], title: str, annotations: ToolAnnotations) -> None:
        """Register ``fn`` (its name, docstring, arguments and result model) as a structured tool."""
        self.add_tool(fn, title=title, annotations=annotations, structured_output=True)
        self.argument_names[fn.__name__] = frozenset(
            name for name, p in inspect.signature(fn).parameters.items() if name != "ctx")

    async def call_tool(self, name: str, arguments: dict[str, Any],
                        context: Context[Any, Any] | None = None) -> CallToolResult | InputRequiredResult:
        """Call tool ``name``. Raises ToolError (an ``isError`` result) for unknown or invalid arguments."""
        known = self.argument_names.get(name)
        unknown = sorted(set(arguments) - known) if known is not None else []
        if known is not None and unknown:
            raise ToolError(f"Error executing tool {name}: {ConfigError.unknown('', unknown[0], 'argument', known)}")
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, ValidationError):
                error = ConfigError.from_validation(exc.__cause__, default="arguments")
                raise ToolError(f"Error executing tool {name}: {error}") from exc.__cause__
            raise


def build_server(state: ServerState) -> DeepSearchServer:
    """The MCP server over ``state`` (an open :class:`ServerState`); run it with ``run_stdio_async()`` or
    ``run_streamable_http_async(host=..., port=...)``."""
    server = DeepSearchServer("deepsearch", title="deepsearch-aggregator", instructions=INSTRUCTIONS,
                              log_level="WARNING")
    tools = DeepSearchTools(state)
    server.add_paid_or_free(tools.deep_search, "Deep search (people or companies)", PAID)
    server.add_paid_or_free(tools.start_deep_search, "Start a deep search in the background", PAID)
    server.add_paid_or_free(tools.get_search, "A search run's status and records", JOURNAL_READ)
    server.add_paid_or_free(tools.resume_search, "Resume an interrupted search run", PAID)
    server.add_paid_or_free(tools.compare_providers, "Compare the providers on one query", PAID)
    server.add_paid_or_free(tools.lookup_person, "Look up one person", PAID)
    server.add_paid_or_free(tools.filter_search, "Filter search (Sixtyfour index)", PAID)
    server.add_paid_or_free(tools.filter_fields, "Filter search: fields", FREE_PROVIDER_READ)
    server.add_paid_or_free(tools.filter_values, "Filter search: top values of a field", FREE_PROVIDER_READ)
    return server
