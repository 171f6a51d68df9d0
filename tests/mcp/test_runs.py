"""Issue 17, items 2, 4 and 5: runs longer than a tool call (start, then get), across a server restart, and
a client's cancellation that leaves the run interrupted in the journal and resumable."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from mcp import Client

from tests.mcp.conftest import FAST, ServerFactory, error_text, ok, poll

DEMO = "VP of Engineering in New York"
SLOWER = FAST.replace("time_scale = 0.002", "time_scale = 0.02")  # a run takes a few seconds: time to act


async def get(client: Client, run_id: str) -> dict[str, Any]:
    return ok(await client.call_tool("get_search", {"run_id": run_id}))


async def until_finished(client: Client, run_id: str, seen: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    async def finished() -> dict[str, Any] | None:
        status = await get(client, run_id)
        if seen is not None:
            seen.append(status)
        return status if status["finished"] else None

    return await poll(finished)


async def test_start_returns_a_run_id_at_once_and_get_search_follows_it_to_the_report(
        mcp_server: ServerFactory) -> None:
    async with mcp_server(SLOWER) as client:
        started = ok(await client.call_tool("start_deep_search", {"query": DEMO, "max_results": 10}))
        seen: list[dict[str, Any]] = []
        done = await until_finished(client, started["run_id"][:8], seen)  # a unique prefix will do

    assert started["status"] == "running" and started["credits"] == 0 and started["budget"] == 50
    assert started["providers"] == ["sixtyfour", "orbit"] and started["skipped"][0]["provider"] == "extruct"
    assert started["session_credits_left"] == 150  # its budget is reserved while it runs
    running = [s for s in seen if not s["finished"]]
    assert running and all(s["status"] == "running" and s["active"] for s in running)
    assert done["run_id"] == started["run_id"] and done["status"] == "done" and 0 < len(done["records"]) <= 10
    assert done["credits"] == sum(o["credits"] for o in done["outcomes"]) > 0
    assert done["session_credits_left"] == 200 - done["credits"]  # the unspent part of the budget came back


async def test_get_search_reads_the_journal_so_it_works_after_the_server_restarted(
        mcp_server: ServerFactory) -> None:
    async with mcp_server() as client:
        run_id = ok(await client.call_tool("start_deep_search", {"query": DEMO, "max_results": 5}))["run_id"]
        before = await until_finished(client, run_id)
    async with mcp_server() as client:  # a new server process on the same journal
        after = await get(client, run_id)
        unknown = error_text(await client.call_tool("get_search", {"run_id": "ffffffffffff"}))

    assert after["status"] == "done" and after["records"] == before["records"]
    assert after["outcomes"] == before["outcomes"] and after["credits"] == before["credits"]
    assert unknown == "Error executing tool get_search: run_id: no run 'ffffffffffff' in the journal; " \
                      "`deepsearch runs` lists them"


async def test_a_cancelled_deep_search_is_interrupted_in_the_journal_and_resume_search_finishes_it(
        mcp_server: ServerFactory) -> None:
    messages: list[str] = []
    orbit_running = asyncio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        messages.append(message or "")
        if (message or "").startswith("orbit: running"):
            orbit_running.set()

    async with mcp_server(SLOWER) as client:
        call = asyncio.create_task(client.call_tool("deep_search", {"query": DEMO, "max_results": 30},
                                                    progress_callback=on_progress))
        await asyncio.wait_for(orbit_running.wait(), 30)
        call.cancel()  # the client sends notifications/cancelled
        with pytest.raises(asyncio.CancelledError):
            await call
        run_id = messages[0].split()[1]
        assert messages[0] == f"run {run_id} started (get_search and resume_search take this id)"

        async def interrupted() -> dict[str, Any] | None:
            status = await get(client, run_id)
            return status if status["status"] == "interrupted" else None

        stopped = await poll(interrupted)
        resumed = ok(await client.call_tool("resume_search", {"run_id": run_id}))
        again = error_text(await client.call_tool("resume_search", {"run_id": run_id}))
        done = await until_finished(client, run_id)

    assert not stopped["finished"] and not stopped["active"]
    assert stopped["note"].startswith("interrupted: resume_search continues it")
    assert stopped["session_credits_left"] == 150  # an interrupted run's whole budget counts (spend not exact)
    assert resumed["run_id"] == run_id and resumed["budget"] == 50
    assert again == f"Error executing tool resume_search: run_id: run {run_id} is running; get_search shows it"
    assert done["status"] == "done" and done["records"]
    assert {o["provider"]: o["status"] for o in done["outcomes"]}["orbit"] in ("found", "partial")
