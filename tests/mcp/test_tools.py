"""Issue 17, items 1, 2 and 5: the tools as an MCP client sees them, each one called over stdio."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from pathlib import Path
from typing import Any

from mcp import Client
from mcp_types import ToolAnnotations

from tests.mcp.conftest import FAST, ROOT, ServerFactory, ok, poll, server_environment

PAID = ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True)
TOOLS = {
    "deep_search": PAID, "start_deep_search": PAID, "resume_search": PAID, "compare_providers": PAID,
    "lookup_person": PAID, "filter_search": PAID,
    "get_search": ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                  open_world_hint=False),
    "filter_fields": ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                     open_world_hint=True),
    "filter_values": ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True,
                                     open_world_hint=True),
}
DEMO = "VP of Engineering in New York"


async def test_every_tool_is_listed_with_input_and_output_schemas_and_annotations(
        mcp_server: ServerFactory, tmp_path: Path) -> None:
    async with mcp_server() as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}

    assert set(listed) == set(TOOLS)
    for name, tool in listed.items():
        assert tool.annotations == TOOLS[name], name
        assert tool.description and tool.title, name
        assert tool.output_schema is not None and "credits" in tool.output_schema["properties"], name
    search = listed["deep_search"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["max_results"]["anyOf"][0] == {"maximum": 5000, "minimum": 1, "type": "integer"}
    assert set(search["properties"]) == {"query", "mode", "max_results", "providers", "strategy", "min_results",
                                         "budget", "deadline_s"}
    record = listed["deep_search"].output_schema["$defs"]["AgentRecord"]["properties"]
    assert {"providers", "field_provenance", "consensus", "sources"} <= set(record)
    said = (tmp_path / "server.err").read_text()
    assert "Running on the sandbox" in said and "deepsearch MCP server on stdio" in said  # stderr, never stdout


async def test_deep_search_sends_progress_notifications_and_returns_the_merged_result(
        mcp_server: ServerFactory) -> None:
    progress: list[tuple[float, str | None]] = []

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append((value, message))

    async with mcp_server() as client:
        result = ok(await client.call_tool("deep_search", {"query": DEMO, "max_results": 5},
                                           progress_callback=on_progress))

    assert [value for value, _ in progress] == sorted({value for value, _ in progress})  # strictly increasing
    messages = [message or "" for _, message in progress]
    assert any(m.startswith("orbit: running") for m in messages) and any("sixtyfour: found" in m for m in messages)
    assert any("merged records so far" in m and not m.endswith(" 0 merged records so far") for m in messages)
    assert result["status"] == "done" and result["finished"] and result["sandbox"]
    assert 0 < len(result["records"]) <= 5
    assert any(r["consensus"] == 2 and set(r["providers"]) == {"orbit", "sixtyfour"} for r in result["records"])
    first = result["records"][0]
    assert first["field_provenance"]["full_name"] and first["sources"][0]["provider"] in first["providers"]
    assert {o["provider"]: o["status"] for o in result["outcomes"]} == {
        "sixtyfour": "found", "extruct": "skipped", "orbit": "found"}
    assert result["credits"] == sum(o["credits"] for o in result["outcomes"]) > 0  # Orbit: 10 a run + 1 a profile
    assert result["budget"] == 50 and result["session_credits_left"] == 200 - result["credits"]


async def test_compare_lookup_and_the_filter_tools_answer_with_structured_results(
        mcp_server: ServerFactory) -> None:
    async with mcp_server() as client:
        compared = ok(await client.call_tool("compare_providers", {"query": DEMO, "max_results": 5}))
        url = next(r["key"] for r in compared["comparison"]["merged"] if r["key"].startswith("linkedin.com/in/"))
        looked = ok(await client.call_tool("lookup_person", {"linkedin_url": f"https://www.{url}",
                                                             "run_shape": "partial_only"}))
        fields = ok(await client.call_tool("filter_fields", {"mode": "company"}))
        field = next(f["field"] for f in fields["capabilities"]["fields"] if f["supports_top_values"])
        values = ok(await client.call_tool("filter_values", {"field": field, "top_k": 3}))
        filtered = ok(await client.call_tool("filter_search", {"simple_filters": {"hq_country_iso2": {"$eq": "US"}},
                                                               "max_results": 5}))

    comparison = compared["comparison"]
    assert {p["provider"] for p in comparison["providers"]} == {"sixtyfour", "orbit"}
    assert comparison["skipped"] == [{"provider": "extruct", "reason": "people mode not supported (extruct "
                                                                        "supports company mode only)"}]
    assert compared["credits"] == comparison["credits"] > 0
    assert looked["status"] == "done" and looked["person"]["linkedin_url"] == f"https://www.{url}"
    assert looked["credits"] >= 0 and looked["budget"] == 50
    assert fields["credits"] == 0 and fields["capabilities"]["provider"] == "sixtyfour"
    assert values["credits"] == 0 and len(values["values"]["values"]) == 3
    assert filtered["status"] == "done" and 0 < len(filtered["records"]) <= 5
    assert all(r["entity"]["kind"] == "company" for r in filtered["records"])
    assert "credits" in filtered


async def test_http_serves_the_same_tools_on_loopback_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    errlog = (tmp_path / "server.err").open("w")
    server = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "aggregator", "mcp", "--http", str(port), cwd=ROOT,
        env=server_environment(tmp_path, FAST), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=errlog)
    try:
        async def listening() -> dict[str, Any] | None:
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                await writer.wait_closed()
                return {}
            return None

        await poll(listening, timeout_s=30)
        async with Client(f"http://127.0.0.1:{port}/mcp") as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            fields = ok(await client.call_tool("filter_fields", {}))
    finally:
        server.send_signal(signal.SIGTERM)
        stdout, _ = await asyncio.wait_for(server.communicate(), 30)
        errlog.close()

    assert names == set(TOOLS) and fields["credits"] == 0
    assert server.returncode == 0 and stdout == b""
    assert f"deepsearch MCP server on streamable HTTP at http://127.0.0.1:{port}/mcp" in (
        tmp_path / "server.err").read_text()
