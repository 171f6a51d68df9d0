"""The ``deepsearch`` command end to end, as a user runs it (subprocess, sandbox, no API keys)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

DEMO = "VP of Engineering at Series B SaaS startups in New York"
KEY_VARS = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY")


def run(*args: str, env: dict[str, str] | None = None, tmp_path: Path,
        config_toml: str = "") -> subprocess.CompletedProcess[str]:
    """``deepsearch *args`` on a fast sandbox; ``config_toml`` is appended to its config file."""
    config = tmp_path / "fast.toml"
    config.write_text("[sandbox]\ntime_scale = 0.002\n" + config_toml)
    base = {k: v for k, v in os.environ.items() if k not in KEY_VARS and k != "DEEPSEARCH_CONFIG"}
    base["DEEPSEARCH_CONFIG"] = str(config)
    base["DEEPSEARCH_JOURNAL"] = str(tmp_path / "journal.sqlite")  # never the user's own journal
    base["COLUMNS"] = "200"
    return subprocess.run([sys.executable, "-m", "aggregator", *args], capture_output=True, text=True,
                          env={**base, **(env or {})}, timeout=120, check=False)


def test_search_runs_on_the_sandbox_and_prints_json_with_outcomes_and_records(tmp_path: Path) -> None:
    out = tmp_path / "people.jsonl"
    result = run("search", DEMO, "--mode", "people", "--max-results", "50", "--json", "--out", str(out),
                 tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Running on the sandbox" in result.stderr
    report = orjson.loads(result.stdout)
    assert report["sandbox"] is True
    outcomes = {o["provider"]: o for o in report["outcomes"]}
    assert outcomes["sixtyfour"]["status"] == "found" and outcomes["orbit"]["status"] == "found"
    assert outcomes["extruct"]["status"] == "skipped"  # company mode only
    assert outcomes["orbit"]["credits"] >= 10 and outcomes["orbit"]["credits_remaining"] is not None
    assert 10 <= len(report["records"]) <= 50
    first = report["records"][0]
    assert set(first["providers"]) == {"sixtyfour", "orbit"} and first["consensus"] == 2  # most agreed first
    assert {hit["provider"] for hit in first["hits"]} == {"sixtyfour", "orbit"}
    assert "engineering" in first["entity"]["title"].lower()
    lines = out.read_bytes().splitlines()
    assert len(lines) == len(report["records"])
    assert orjson.loads(lines[0])["record_id"] == first["record_id"]


def test_search_prints_a_table_and_writes_csv(tmp_path: Path) -> None:
    out = tmp_path / "people.csv"
    result = run("search", "CTO in New York", "--max-results", "5", "--no-progress", "--out", str(out),
                 tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Providers" in result.stdout and "sixtyfour" in result.stdout and "found" in result.stdout
    with out.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert 1 <= len(rows) <= 5 and rows[0]["full_name"]
    assert set(rows[0]["providers"].split(";")) <= {"sixtyfour", "orbit"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["search", "x", "--max-results", "0"], "max_results"),
        (["search", "   "], "query"),
        (["search", "x", "--provider", "nosuch"], "unknown provider 'nosuch'"),
        (["search", "x", "--out", "result.xlsx"], "--out"),
        (["search", "x", "--deadline", "-1"], "deadline_s"),
        (["search", "x", "--mode", "pets"], "--mode"),
    ],
)
def test_bad_input_is_rejected_with_exit_2_naming_the_field(args: list[str], message: str,
                                                            tmp_path: Path) -> None:
    result = run(*args, tmp_path=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert "Running on the sandbox" not in result.stderr  # rejected before anything started


def test_live_without_keys_names_the_missing_variables(tmp_path: Path) -> None:
    result = run("search", "x", "--live", tmp_path=tmp_path)
    assert result.returncode == 2
    assert "SIXTYFOUR_API_KEY" in result.stderr


def test_with_a_key_set_providers_run_live_and_the_rest_are_skipped(tmp_path: Path) -> None:
    # A key for a provider whose live URL points at a closed local port: it runs "live" and fails
    # to connect (no network here), proving it did not silently fall back to the sandbox.
    # Live runs wait in real time: the retry settings keep the backoff (default: up to 5 retries of
    # U(0, 1..16) s, ~15 s) to one retry of at most 10 ms, and the report shows that one retry.
    env = {"SIXTYFOUR_API_KEY": "sk-canary-9f3b", "SIXTYFOUR_BASE_URL": "http://127.0.0.1:9"}
    no_wait = "[retry]\nmax_attempts = 2\nbackoff_initial_s = 0.01\nbackoff_max_s = 0.01\n"
    result = run("search", "x", "--json", "--no-progress", env=env, tmp_path=tmp_path, config_toml=no_wait)
    assert result.returncode == 3, result.stderr
    report = orjson.loads(result.stdout)
    assert report["sandbox"] is False
    outcome, *rest = report["outcomes"]
    assert {o["provider"]: o["status"] for o in rest} == {"extruct": "skipped", "orbit": "skipped"}  # no keys
    assert outcome["provider"] == "sixtyfour" and outcome["status"] == "failed"
    assert outcome["error"]["type"] == "ProviderConnectionError"
    assert outcome["retries"] == 1  # retried (a connection error is retryable), as configured
    assert "sk-canary-9f3b" not in result.stdout + result.stderr


def test_sandbox_serve_prints_base_urls_that_answer(tmp_path: Path) -> None:
    import urllib.request

    config = tmp_path / "fast.toml"
    config.write_text("[sandbox]\nn_companies = 200\n")
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env["DEEPSEARCH_CONFIG"] = str(config)
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "sandbox", "serve"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert proc.stdout is not None
        name, url = proc.stdout.readline().strip().split("\t")
        assert name == "sixtyfour" and url.startswith("http://127.0.0.1:")
        with urllib.request.urlopen(f"{url}/_sandbox/stats", timeout=10) as response:
            assert orjson.loads(response.read())["provider"] == "sixtyfour"
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_an_explicitly_requested_provider_without_a_key_is_an_error_in_live_mode(tmp_path: Path) -> None:
    result = run("search", "x", "--live", "--provider", "sixtyfour", tmp_path=tmp_path)
    assert result.returncode == 2 and "SIXTYFOUR_API_KEY" in result.stderr


def test_the_library_prints_nothing_on_stdout_when_the_app_configured_no_logging(tmp_path: Path) -> None:
    script = (
        "import asyncio\n"
        "from aggregator import Aggregator\n"
        "async def main():\n"
        "    async with Aggregator() as agg:\n"
        "        report = await agg.search('CTO in New York', max_results=3)\n"
        "        assert report.outcome('sixtyfour').status == 'found'\n"
        "asyncio.run(main())\n"
    )
    config = tmp_path / "small.toml"
    config.write_text("[sandbox]\ntime_scale = 0.002\nn_companies = 300\n")
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env["DEEPSEARCH_CONFIG"] = str(config)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and result.stderr == ""


def test_extruct_company_search_prints_grades_and_writes_evidence(tmp_path: Path) -> None:
    criteria = tmp_path / "criteria.toml"
    criteria.write_text(
        '[[criteria]]\nkey = "freight"\nname = "Freight focus"\n'
        'criterion = "Company serves freight forwarding."\n'
        '[[criteria]]\nkey = "saas"\nname = "Vertical SaaS"\n'
        'criterion = "Company is a vertical SaaS company."\n')
    out = tmp_path / "companies.json"
    result = run("search", "vertical SaaS companies serving freight forwarding", "--mode", "company",
                 "--provider", "extruct", "--max-results", "10", "--criteria", str(criteria),
                 "--no-progress", "--out", str(out), tmp_path=tmp_path)

    assert result.returncode == 0, result.stderr
    assert "Grades" in result.stdout and "freight" in result.stdout
    report = orjson.loads(out.read_bytes())
    assert report["outcomes"][0]["provider"] == "extruct" and report["outcomes"][0]["status"] == "found"
    evidence = report["records"][0]["hits"][0]["evidence"]
    assert {e["key"] for e in evidence} == {"freight", "saas"}
    assert all(1 <= e["grade"] <= 5 and e["text"] for e in evidence)


def test_invalid_criteria_are_rejected_before_any_call(tmp_path: Path) -> None:
    criteria = tmp_path / "criteria.json"
    criteria.write_text('[{"key": "ok", "name": "Fit", "criterion": "too short"}]')
    result = run("search", "x", "--mode", "company", "--criteria", str(criteria), tmp_path=tmp_path)
    assert result.returncode == 2
    assert "--criteria[0].criterion" in result.stderr
    assert "Running on the sandbox" not in result.stderr


def orbit_slug() -> str:
    from providers.sandbox.world import build_world

    world = build_world()
    person = next(p for p in world.people if p.title == "VP of Engineering"
                  and world.visible("orbit", p.true_id) and world.visible("orbit", p.company_id))
    return person.linkedin_slug


def test_orbit_search_reports_credits(tmp_path: Path) -> None:
    result = run("search", DEMO, "--provider", "orbit", "--max-results", "10", "--json", "--no-progress",
                 tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    (outcome,) = orjson.loads(result.stdout)["outcomes"]
    assert outcome["provider"] == "orbit" and outcome["status"] == "found"
    assert outcome["credits"] == 10 + outcome["records"] and outcome["credits_remaining"] is not None


def test_lookup_by_linkedin_url_prints_the_profile(tmp_path: Path) -> None:
    slug = orbit_slug()
    result = run("lookup", "--linkedin-url", f"https://www.linkedin.com/in/{slug}", "--no-progress",
                 tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "§ jobs" in result.stdout and slug in result.stdout and "orbit" in result.stdout


def test_explain_shows_the_structured_intent_and_sends_nothing(tmp_path: Path) -> None:
    result = run("search", DEMO, "--provider", "orbit", "--explain", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    body = orjson.loads(result.stdout)["orbit"]
    assert body["runShape"] == "candidate_discovery"
    assert body["structuredIntent"]["geo"] == {"place": "New York"}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["lookup"], "give at least one of --linkedin-url"),
        (["lookup", "--linkedin-url", "https://example.com/jane"], "--linkedin-url: must be a LinkedIn"),
        (["lookup", "--email", "not-an-email"], "--email"),
        (["search", "x", "--provider", "orbit", "--intent", "INTENT"],
         "structured_intent_version_unsupported"),
        (["search", "x", "--mode", "company", "--provider", "orbit"], "orbit does not support"),
    ],
)
def test_bad_lookups_and_intents_exit_2_before_any_call(
    args: list[str], message: str, tmp_path: Path
) -> None:
    intent = tmp_path / "intent.json"
    intent.write_text('{"version": "v2", "names": ["Ada"]}')
    result = run(*[str(intent) if a == "INTENT" else a for a in args], tmp_path=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())


def test_filter_search_from_the_command_line(tmp_path: Path) -> None:
    where = '{"hq_country_iso2": {"$eq": "US"}, "employees_count": {"$gte": 100}}'
    result = run("filter", "--mode", "company", "--where", where, "--max-results", "5", "--json", "--no-progress",
                 tmp_path=tmp_path, config_toml="[run]\ndeadline_s = 30000.0\n")  # not about deadlines: never 1.8 s
    assert result.returncode == 0, result.stderr
    report = orjson.loads(result.stdout)
    assert report["request"]["simple_filters"] == orjson.loads(where)
    assert len(report["records"]) == 5
    assert all(r["entity"]["hq_country_iso2"] == "US" and r["entity"]["employee_count"] >= 100
               for r in report["records"])


def test_filter_fields_and_values_are_discoverable(tmp_path: Path) -> None:
    fields = run("filter", "--fields", "--json", tmp_path=tmp_path)
    assert fields.returncode == 0, fields.stderr
    names = {f["field"] for f in orjson.loads(fields.stdout)["fields"]}
    assert {"hq_country_iso2", "employees_count", "funding_rounds.name"} <= names
    values = run("filter", "--values", "hq_country_iso2", "--top-k", "3", "--json", tmp_path=tmp_path)
    assert values.returncode == 0, values.stderr
    assert len(orjson.loads(values.stdout)["values"]) == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["filter", "--where", '{"hq_country_iso2": {"$gte": "US"}}'], "does not support ranges"),
        (["filter", "--where", '{"nope": 1}'], "unknown field 'nope'"),
        (["filter", "--where", "{not json"], "--where: not valid JSON"),
        (["filter"], "give --where"),
        (["filter", "--values", "description"], "has no top values"),
    ],
)
def test_bad_filters_exit_2_naming_the_problem(args: list[str], message: str, tmp_path: Path) -> None:
    result = run(*args, tmp_path=tmp_path)
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in " ".join(result.stderr.split())


def test_compare_prints_tables_and_writes_an_html_report(tmp_path: Path) -> None:
    html = tmp_path / "compare.html"
    result = run("compare", DEMO, "--report", str(html), "--no-progress", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Overlap" in result.stdout and "sixtyfour" in result.stdout and "orbit" in result.stdout
    document = html.read_text()
    assert all(f'id="{chart}"' in document for chart in ("overlap-matrix", "coverage-bars", "timeline"))


def test_compare_json_has_overlap_and_coverage(tmp_path: Path) -> None:
    result = run("compare", "vertical SaaS companies serving freight forwarding", "--mode", "company", "--json",
                 "--no-progress", tmp_path=tmp_path)
    assert result.returncode == 0, result.stderr
    providers = {p["provider"]: p for p in orjson.loads(result.stdout)["providers"]}
    assert set(providers) == {"sixtyfour", "extruct"}
    assert providers["extruct"]["overlap"]["sixtyfour"] == providers["sixtyfour"]["overlap"]["extruct"] > 0
    assert set(providers["extruct"]["coverage"]) >= {"domain", "size", "HQ"}


def test_runs_are_journaled_and_can_be_listed_and_shown(tmp_path: Path) -> None:
    searched = run("search", "CTO in New York", "--max-results", "3", "--json", "--no-progress", tmp_path=tmp_path)
    assert searched.returncode == 0, searched.stderr
    run_id = orjson.loads(searched.stdout)["run_id"]

    listed = run("runs", "--json", tmp_path=tmp_path)
    assert listed.returncode == 0, listed.stderr
    (row,) = orjson.loads(listed.stdout)
    assert row["run_id"] == run_id and row["status"] == "done" and row["records"] >= 3

    shown = run("show", run_id, "--json", tmp_path=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert orjson.loads(shown.stdout) == orjson.loads(searched.stdout)  # the same report, from the journal
    missing = run("show", "nope", tmp_path=tmp_path)
    assert missing.returncode == 2 and "deepsearch runs" in missing.stderr


def test_ctrl_c_stops_gracefully_records_an_interrupted_run_and_prints_the_resume_command(tmp_path: Path) -> None:
    import re
    import signal
    import time

    config = tmp_path / "slow.toml"
    config.write_text("[sandbox]\ntime_scale = 0.02\nn_companies = 1000\n")  # a run takes seconds
    env = {k: v for k, v in os.environ.items() if k not in KEY_VARS}
    env.update(DEEPSEARCH_CONFIG=str(config), DEEPSEARCH_JOURNAL=str(tmp_path / "journal.sqlite"))
    proc = subprocess.Popen([sys.executable, "-m", "aggregator", "search", DEMO, "--json"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stderr is not None
    for line in proc.stderr:  # wait until the providers are at work
        if ": running" in line or ": queued" in line:
            break
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)

    assert proc.returncode == 130, stderr
    # the in-process sandbox ends with the process: no resume command that would fail, but what to do instead
    assert "deepsearch resume" not in stderr and "sandbox serve" in stderr, stderr
    match = re.search(r"run (\w+) is in the journal as interrupted, but it cannot be resumed", stderr)
    assert match, stderr
    listed = run("runs", "--json", tmp_path=tmp_path)
    (row,) = orjson.loads(listed.stdout)
    assert row["run_id"] == match.group(1) and row["status"] == "interrupted"
    resumed = run("resume", match.group(1), tmp_path=tmp_path)  # the in-process sandbox is gone: said clearly
    assert resumed.returncode == 2 and "in-process sandbox" in " ".join(resumed.stderr.split())
