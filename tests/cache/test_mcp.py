"""The MCP server's ``deep_search`` uses the CLI's cache TTL: an agent repeating a search is answered from the
cache, for 0 credits, and the result says ``cached``."""

from __future__ import annotations

from pathlib import Path

from tests.mcp.conftest import FAST, ServerFactory, mcp_server, ok

__all__ = ["mcp_server"]  # the fixture, used by name

DEMO = "VP of Engineering at Series B SaaS startups in New York"


async def test_a_repeated_deep_search_is_answered_from_the_cache(mcp_server: ServerFactory, tmp_path: Path) -> None:
    config = FAST + "[mcp]\nmax_credits_per_call = 20\nmax_credits_per_session = 40\n"
    arguments = {"query": DEMO, "max_results": 5, "providers": ["orbit"], "budget": 20}
    async with mcp_server(config) as client:
        first = ok(await client.call_tool("deep_search", arguments))
        again = ok(await client.call_tool("deep_search", arguments))
    assert first["cached"] is None and first["credits"] > 0 and first["status"] == "done"
    assert again["cached"]["run_id"] == first["run_id"] and again["credits"] == 0
    assert again["records"] == first["records"]
    assert again["session_credits_left"] == first["session_credits_left"]  # nothing spent
