"""Issue 17, items 3 and 4: money caps refused before anything is paid, invalid arguments as tool errors
naming the field, and the command without its optional extra."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import orjson

from tests.mcp.conftest import FAST, ROOT, ServerFactory, error_text, ok, server_environment

DEMO = "VP of Engineering in New York"
RAISE = "raise it in the server's config file (--config or DEEPSEARCH_CONFIG, section [mcp]) and restart the server"


def runs_in_journal(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "j.sqlite") as db:
        return int(db.execute("SELECT COUNT(*) FROM runs").fetchone()[0])


async def test_a_budget_above_the_per_call_cap_is_refused_naming_the_cap_before_anything_is_paid(
        mcp_server: ServerFactory, tmp_path: Path) -> None:
    async with mcp_server() as client:
        refused = error_text(await client.call_tool("deep_search", {"query": DEMO, "budget": 80}))
        refused_start = error_text(await client.call_tool("start_deep_search", {"query": DEMO, "budget": 50.5}))
        fields = ok(await client.call_tool("filter_fields", {}))  # free tools answer whatever the caps

    assert refused == ("Error executing tool deep_search: budget: 80 credits is above this server's per-call cap, "
                       f"[mcp] max_credits_per_call = 50; ask for at most 50, or {RAISE}")
    assert "[mcp] max_credits_per_call = 50" in refused_start
    assert fields["credits"] == 0
    assert runs_in_journal(tmp_path) == 0  # refused before the run was even recorded


async def test_once_the_session_cap_is_spent_paid_calls_are_refused_naming_it(
        mcp_server: ServerFactory, tmp_path: Path) -> None:
    caps = FAST + "[mcp]\nmax_credits_per_call = 10\nmax_credits_per_session = 10\n"
    async with mcp_server(caps) as client:
        # Orbit's run costs 10: the budget covers the start and no profile read
        first = ok(await client.call_tool("deep_search", {"query": DEMO, "max_results": 5, "providers": ["orbit"]}))
        recorded = runs_in_journal(tmp_path)
        refused = error_text(await client.call_tool("lookup_person", {"email": "jane@acme.com"}))
        asked = error_text(await client.call_tool("compare_providers", {"query": DEMO, "budget": 1}))

    orbit = first["outcomes"][0]
    assert first["budget"] == 10 and first["credits"] == 10 and first["session_credits_left"] == 0
    # a provider's failure is an outcome inside a successful result, never a tool error
    assert first["status"] == "failed" and orbit["status"] == "failed"
    assert orbit["error"]["type"] == "BudgetExceededError"
    expected = ("budget: this server session's credits are used up: [mcp] max_credits_per_session = 10 is spent or "
                f"held by running calls; {RAISE}")
    assert refused == f"Error executing tool lookup_person: {expected}"
    assert asked == f"Error executing tool compare_providers: {expected}"
    assert runs_in_journal(tmp_path) == recorded  # nothing was started, so nothing was paid


async def test_invalid_arguments_are_tool_errors_naming_the_field_and_the_server_keeps_serving(
        mcp_server: ServerFactory) -> None:
    calls = {
        ("deep_search", '{"query": "x", "max_results": 0}'):
            "max_results: Input should be greater than or equal to 1 (got 0)",
        ("deep_search", '{"query": "x", "max_result": 5}'):
            "max_result: unknown argument; did you mean 'max_results'? (known: budget, deadline_s, max_results, "
            "min_results, mode, providers, query, strategy)",
        ("deep_search", '{"mode": "people"}'): "query: Field required",
        ("deep_search", '{"query": "x", "mode": "robots"}'):
            "mode: Input should be 'people' or 'company' (got 'robots')",
        ("deep_search", '{"query": "x", "min_results": 5}'): "min_results: ",  # the library's own refusal
        ("deep_search", '{"query": "x", "providers": ["sixtyfor"]}'): "providers",
        ("lookup_person", "{}"): "identity: give at least one of linkedin_url, email, phone_number, profile_id, urls, "
                                 "usernames",
        ("lookup_person", '{"email": "not-an-email"}'): "email: String should match pattern",
        ("filter_search", "{}"): "simple_filters: give simple_filters, or filters (the DSL form)",
        ("filter_values", '{"field": "no_such_field"}'): "no_such_field",
        ("resume_search", '{"run_id": "abcdef"}'): "run_id: no run 'abcdef' in the journal",
    }
    async with mcp_server() as client:
        answers = {key: await client.call_tool(key[0], orjson.loads(key[1])) for key in calls}
        still = ok(await client.call_tool("filter_fields", {"mode": "people"}))

    for (tool, arguments), expected in calls.items():
        message = error_text(answers[(tool, arguments)])
        assert message.startswith(f"Error executing tool {tool}: "), message
        assert expected in message, (tool, arguments, message)
    assert still["capabilities"]["mode"] == "people"


def test_without_the_mcp_extra_the_command_exits_2_naming_the_pip_install(tmp_path: Path) -> None:
    code = "import sys; sys.modules['mcp'] = None; from aggregator.cli import main; main(['mcp'])"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=30,
                          env=server_environment(tmp_path, FAST))
    assert done.returncode == 2
    assert "pip install 'deepsearch-aggregator[mcp]'" in done.stderr and done.stdout == ""
