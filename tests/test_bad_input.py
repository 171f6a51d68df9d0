"""Bad input, table-driven: every invalid argument, file or setting is a clear error before any network call.

Three tables:

- ``CLI_CASES`` run ``deepsearch`` in-process (click's ``CliRunner``): exit code 2, the message names the flag
  or field, no traceback, and no provider call (a spy on :meth:`ProviderHTTPClient._send` sees every call
  any provider makes; filter cases whose fields need ``filter-capabilities`` may make that free read, never
  the paid query).
- ``LIBRARY_CASES`` call the :class:`Aggregator` on an in-process sandbox: a :class:`ConfigError` naming the
  field, zero calls on the spy and in the sandbox's own ``/_sandbox/stats``; the same cases run again live
  against an unroutable address, where any call would end in a connection error instead.
- ``SETTINGS_CASES`` / ``REQUEST_CASES``: ``load_settings`` / ``load_criteria`` raise ConfigError naming the
  setting; constructing a ``SearchRequest`` raises pydantic's ``ValidationError`` (documented) located at the
  field, which ``ConfigError.from_validation`` turns into the user-facing message.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from click.testing import CliRunner
from pydantic import SecretStr, ValidationError

from aggregator.cli import main
from aggregator.config import load_criteria, load_settings
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from aggregator.http import ProviderHTTPClient
from aggregator.models import PersonIdentity, SearchRequest
from aggregator.pipelines import Policy
from providers.sandbox.runner import Sandbox, SandboxConfig

FAST = "[sandbox]\ntime_scale = 0.002\nn_companies = 50\n"  # a run that gets as far as the sandbox starts fast
UNSET = ("SIXTYFOUR_API_KEY", "EXTRUCT_API_TOKEN", "ORBIT_API_KEY", "SIXTYFOUR_BASE_URL", "EXTRUCT_BASE_URL",
         "ORBIT_BASE_URL", "DEEPSEARCH_SANDBOX")  # no keys, no attached sandbox: the in-process one
CAPABILITIES = "GET /search/filter-capabilities"  # a free metadata read; the paid call is POST /search/query
CRITERION = {"key": "freight", "name": "Freight focus", "criterion": "Serves freight forwarders."}


@pytest.fixture
def provider_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every provider call made in the test (``"METHOD /template"``), seen where all HTTP goes."""
    seen: list[str] = []
    _spy(monkeypatch, seen)
    return seen


# -- the command line ------------------------------------------------------------------------------
def cli(name: str, args: list[str], expect: str, files: dict[str, str | bytes] | None = None,
        allowed: frozenset[str] = frozenset(), env: dict[str, str] | None = None) -> Any:
    """One CLI case: ``args`` ({tmp} = the test's directory), the text the error must show, files to write."""
    return pytest.param(args, expect, files or {}, allowed, env or {}, id=name)


def _criteria(content: str) -> dict[str, str | bytes]:
    return {"c.json": content}


CLI_CASES = [
    # search: the query and the plain options
    cli("search-empty-query", ["search", ""], "query"),
    cli("search-whitespace-query", ["search", "   "], "query: query must not be blank"),
    cli("search-query-too-long", ["search", "x" * 2001], "query"),
    cli("search-unknown-provider", ["search", "x", "--provider", "nosuch"], "unknown provider 'nosuch'"),
    cli("search-repeated-provider", ["search", "x", "--providers", "orbit,orbit"], "must not repeat"),
    cli("search-provider-names-nothing", ["search", "x", "--provider", ","], "--provider"),
    cli("search-provider-lacks-mode", ["search", "x", "--mode", "company", "--provider", "orbit"],
        "orbit does not support 'company' mode"),
    cli("search-max-results-0", ["search", "x", "--max-results", "0"], "max_results"),
    cli("search-max-results-5001", ["search", "x", "--max-results", "5001"], "max_results"),
    cli("search-max-results-not-int", ["search", "x", "--max-results", "abc"], "'--max-results'"),
    cli("search-bad-mode", ["search", "x", "--mode", "pets"], "'--mode'"),
    cli("search-bad-strategy", ["search", "x", "--strategy", "best"], "'--strategy'"),
    cli("search-budget-negative", ["search", "x", "--budget", "-1"], "budget"),
    cli("search-budget-zero", ["search", "x", "--budget", "0"], "budget: Input should be greater than 0"),
    cli("search-budget-not-number", ["search", "x", "--budget", "x"], "'--budget'"),
    cli("search-budget-infinite", ["search", "x", "--budget", "inf"], "budget: Input should be a finite number"),
    cli("search-deadline-negative", ["search", "x", "--deadline", "-5"], "deadline_s"),
    cli("search-deadline-zero", ["search", "x", "--deadline", "0"], "deadline_s"),
    cli("search-deadline-over-a-day", ["search", "x", "--deadline", "100000"], "deadline_s"),
    cli("search-deadline-nan", ["search", "x", "--deadline", "nan"], "deadline_s: Input should be a finite number"),
    cli("search-deadline-not-number", ["search", "x", "--deadline", "soon"], "'--deadline'"),
    cli("search-min-results-0", ["search", "x", "--strategy", "fallback", "--min-results", "0"], "--min-results"),
    cli("search-hedge-delay-negative", ["search", "x", "--strategy", "race", "--hedge-delay", "-1"],
        "--hedge-delay"),
    cli("search-out-unsupported-extension", ["search", "x", "--out", "{tmp}/r.xlsx"], "--out"),
    cli("search-sandbox-and-live", ["search", "x", "--sandbox", "--live"], "--sandbox and --live"),
    cli("search-title-in-company-mode", ["search", "x", "--mode", "company", "--title", "CTO"], "titles"),
    cli("search-too-many-titles", ["search", "x", *[a for i in range(21) for a in ("--title", f"T{i}")]],
        "titles"),
    cli("search-too-many-excludes", ["search", "x", *[a for i in range(1001) for a in ("--exclude", f"d{i}.com")]],
        "exclude"),
    # --criteria files
    cli("criteria-bad-json", ["search", "x", "--criteria", "{tmp}/c.json"], "--criteria", _criteria("{bad")),
    cli("criteria-list-of-numbers", ["search", "x", "--criteria", "{tmp}/c.json"], "--criteria[0]",
        _criteria("[1, 2]")),
    cli("criteria-object-without-list", ["search", "x", "--criteria", "{tmp}/c.json"], "--criteria",
        _criteria('{"items": []}')),
    cli("criteria-empty-list", ["search", "x", "--criteria", "{tmp}/c.json"], "--criteria", _criteria("[]")),
    cli("criteria-short-criterion", ["search", "x", "--criteria", "{tmp}/c.json"], "--criteria[0].criterion",
        _criteria('[{"key": "ok", "name": "N", "criterion": "short"}]')),
    cli("criteria-bad-key", ["search", "x", "--criteria", "{tmp}/c.json"], "--criteria[0].key",
        _criteria('[{"key": "1bad", "name": "N", "criterion": "Long enough criterion."}]')),
    cli("criteria-duplicate-keys", ["search", "x", "--mode", "company", "--criteria", "{tmp}/c.json"],
        "criteria: criteria keys must be unique; 'a1' is used twice",
        _criteria('[{"key": "a1", "name": "N", "criterion": "Long enough criterion."},'
                  ' {"key": "a1", "name": "M", "criterion": "Another long criterion."}]')),
    cli("criteria-bad-toml", ["search", "x", "--criteria", "{tmp}/c.toml"], "--criteria", {"c.toml": "[[criteria"}),
    cli("criteria-yaml-file", ["search", "x", "--criteria", "{tmp}/c.yaml"], "--criteria", {"c.yaml": "- a"}),
    cli("criteria-missing-file", ["search", "x", "--criteria", "{tmp}/none.json"], "--criteria: file not found"),
    # --intent files (Orbit structuredIntent)
    cli("intent-wrong-version", ["search", "x", "--intent", "{tmp}/i.json"], "structured_intent.version",
        {"i.json": '{"version": "v2", "experiences": [{"title": "CTO"}]}'}),
    cli("intent-not-an-object", ["search", "x", "--intent", "{tmp}/i.json"], "--intent: expected a JSON object",
        {"i.json": "[1]"}),
    cli("intent-bad-json", ["search", "x", "--intent", "{tmp}/i.json"], "--intent", {"i.json": "{"}),
    cli("intent-empty-place", ["search", "x", "--intent", "{tmp}/i.json"], "structured_intent.geo.place",
        {"i.json": '{"version": "v1", "geo": {"place": ""}}'}),
    cli("intent-unknown-key", ["search", "x", "--intent", "{tmp}/i.json"], "structured_intent.where",
        {"i.json": '{"version": "v1", "where": "Berlin"}'}),
    cli("intent-only-version", ["search", "x", "--intent", "{tmp}/i.json"], "needs at least one criterion",
        {"i.json": '{"version": "v1"}'}),
    cli("intent-missing-file", ["search", "x", "--intent", "{tmp}/none.json"], "--intent: file not found"),
    cli("intent-in-company-mode", ["search", "x", "--mode", "company", "--intent", "{tmp}/i.json"],
        "orbit does not run this request", {"i.json": '{"version": "v1", "geo": {"place": "Berlin"}}'}),
    cli("criteria-in-people-mode", ["search", "x", "--criteria", "{tmp}/c.json"],
        "--criteria: extruct does not run this request (people mode not supported",
        _criteria('[{"key": "a1", "name": "N", "criterion": "Long enough criterion."}]')),
    # --policy
    cli("policy-bad-strategy", ["search", "x", "--policy", "{tmp}/p.json"], "--policy.strategy",
        {"p.json": '{"strategy": "best"}'}),
    cli("policy-negative-hedge", ["search", "x", "--policy", "{tmp}/p.json"], "--policy.hedge_delay_s",
        {"p.json": '{"strategy": "race", "hedge_delay_s": -1}'}),
    cli("policy-unknown-key", ["search", "x", "--policy", "{tmp}/p.json"], "--policy.retries",
        {"p.json": '{"strategy": "all", "retries": 3}'}),
    cli("policy-bad-toml", ["search", "x", "--policy", "{tmp}/p.toml"], "--policy", {"p.toml": "strategy ="}),
    cli("policy-unknown-name", ["search", "x", "--policy", "waterfall"], "--policy: 'waterfall' is neither"),
    cli("policy-step-unknown-provider", ["search", "x", "--policy", "{tmp}/p.json"], "nosuch",
        {"p.json": '{"strategy": "fallback", "steps": ["nosuch"]}'}),
    cli("policy-binary-toml", ["search", "x", "--policy", "{tmp}/p.toml"], "--policy", {"p.toml": b"\xff\xfe"}),
    # --config files
    cli("config-bad-toml", ["search", "x", "--config", "{tmp}/s.toml"], "--config", {"s.toml": "[run\n"}),
    cli("config-missing-file", ["search", "x", "--config", "{tmp}/none.toml"], "--config: file not found"),
    cli("config-is-a-directory", ["search", "x", "--config", "{tmp}"], "'--config'"),
    cli("config-env-missing-file", ["search", "x"], "file not found", env={"DEEPSEARCH_CONFIG": "{tmp}/none.toml"}),
    cli("config-binary-file", ["search", "x", "--config", "{tmp}/s.toml"], "--config", {"s.toml": b"\xff\xfe["}),
    cli("config-unknown-section", ["search", "x", "--config", "{tmp}/s.toml"], "bogus: unknown field",
        {"s.toml": "[bogus]\nx = 1\n"}),
    cli("config-time-scale-0", ["search", "x", "--config", "{tmp}/s.toml"], "sandbox.time_scale",
        {"s.toml": "[sandbox]\ntime_scale = 0\n"}),
    cli("config-max-results-0", ["search", "x", "--config", "{tmp}/s.toml"], "run.max_results",
        {"s.toml": "[run]\nmax_results = 0\n"}),
    cli("config-attempts-not-int", ["search", "x", "--config", "{tmp}/s.toml"], "retry.max_attempts",
        {"s.toml": "[retry]\nmax_attempts = 'many'\n"}),
    cli("config-negative-poll", ["search", "x", "--config", "{tmp}/s.toml"], "providers.sixtyfour.poll_interval_s",
        {"s.toml": "[providers.sixtyfour]\npoll_interval_s = -1\n"}),
    cli("config-enabled-not-bool", ["search", "x", "--config", "{tmp}/s.toml"], "providers.extruct.enabled",
        {"s.toml": "[providers.extruct]\nenabled = 'maybe'\n"}),
    cli("config-rate-limits-not-list", ["search", "x", "--config", "{tmp}/s.toml"],
        "providers.sixtyfour.rate_limits", {"s.toml": "[providers.sixtyfour]\nrate_limits = 'fast'\n"}),
    cli("config-negative-rate-limit", ["search", "x", "--config", "{tmp}/s.toml"],
        "providers.orbit.rate_limits[0].limit",
        {"s.toml": FAST + "[providers.orbit]\nrate_limits = [{name = 'x', limit = -5, window_s = 1.0}]\n"}),
    cli("config-rate-limit-typo", ["search", "x", "--config", "{tmp}/s.toml"],
        "providers.sixtyfour.rate_limits[0].brust: unknown field",
        {"s.toml": FAST + "[providers.sixtyfour]\nrate_limits = [{name = 'q', limit = 5, window_s = 1, brust = 9}]\n"}),
    cli("config-page-size-not-int", ["search", "x", "--config", "{tmp}/s.toml"], "providers.sixtyfour.page_size",
        {"s.toml": FAST + "[providers.sixtyfour]\npage_size = 'big'\n"}),
    cli("config-page-size-0", ["search", "x", "--config", "{tmp}/s.toml"], "providers.sixtyfour.page_size",
        {"s.toml": FAST + "[providers.sixtyfour]\npage_size = 0\n"}),
    cli("config-bad-fetch-via", ["search", "x", "--config", "{tmp}/s.toml"], "providers.sixtyfour.fetch_via",
        {"s.toml": FAST + "[providers.sixtyfour]\nfetch_via = 'ftp'\n"}),
    cli("config-negative-credits", ["search", "x", "--config", "{tmp}/s.toml"],
        "providers.extruct.credits_per_result", {"s.toml": FAST + "[providers.extruct]\ncredits_per_result = -1\n"}),
    cli("config-orbit-batch-0", ["search", "x", "--config", "{tmp}/s.toml"], "providers.orbit.profile_batch",
        {"s.toml": FAST + "[providers.orbit]\nprofile_batch = 0\n"}),
    cli("config-orbit-credits-not-number", ["search", "x", "--config", "{tmp}/s.toml"],
        "providers.orbit.credits_per_run", {"s.toml": FAST + "[providers.orbit]\ncredits_per_run = 'ten'\n"}),
    # lookup
    cli("lookup-no-identity", ["lookup"], "give at least one of --linkedin-url"),
    cli("lookup-empty-profile-id", ["lookup", "--profile-id", ""], "give at least one of"),
    cli("lookup-not-a-linkedin-url", ["lookup", "--linkedin-url", "https://example.com/x"], "--linkedin-url"),
    cli("lookup-bad-email", ["lookup", "--email", "not-an-email"], "--email"),
    cli("lookup-bad-phone", ["lookup", "--phone", "call me"], "--phone"),
    cli("lookup-non-http-url", ["lookup", "--url", "ftp://x"], "--url"),
    cli("lookup-bad-run-shape", ["lookup", "--email", "a@b.co", "--run-shape", "full"], "'--run-shape'"),
    cli("lookup-provider-without-lookup", ["lookup", "--email", "a@b.co", "--provider", "sixtyfour"],
        "sixtyfour cannot look up a person"),
    # filter (Sixtyfour filter search): shape errors need no call; field errors read the capabilities only
    cli("filter-no-filters", ["filter"], "--where"),
    cli("filter-where-bad-json", ["filter", "--where", "{bad"], "--where: not valid JSON"),
    cli("filter-where-not-object", ["filter", "--where", "[1]"], "--where: expected a JSON object"),
    cli("filter-where-empty", ["filter", "--where", "{}"], "simple_filters: must be a non-empty object"),
    cli("filter-unknown-operator", ["filter", "--where", '{"hq_country_iso2": {"$regex": "U"}}'],
        "simple_filters.hq_country_iso2.$regex: unknown operator"),
    cli("filter-limit-0", ["filter", "--where", '{"$limit": 0}'], "simple_filters.$limit"),
    cli("filter-sort-inside", ["filter", "--where", '{"$or": [{"$sort": {"a": 1}}]}'], "top level"),
    cli("filter-in-not-list", ["filter", "--where", '{"hq_country_iso2": {"$in": "US"}}'], "$in takes a list"),
    cli("filter-where-and-dsl", ["filter", "--where", '{"a": 1}', "--dsl", '{"query": {"match_all": {}}}'],
        "filters: give simple_filters or filters, not both"),
    cli("filter-dsl-bad-json", ["filter", "--dsl", "{"], "--dsl: not valid JSON"),
    cli("filter-dsl-no-query", ["filter", "--dsl", '{"size": 3}'], "filters.query: is required"),
    cli("filter-dsl-unknown-clause", ["filter", "--dsl", '{"query": {"regexp": {}}}'],
        "filters.query.regexp: unsupported clause"),
    cli("filter-dsl-size-0", ["filter", "--dsl", '{"query": {"match_all": {}}, "size": 0}'], "filters.size"),
    cli("filter-dsl-sort-number", ["filter", "--dsl", '{"query": {"match_all": {}}, "sort": [1]}'],
        "filters.sort[0]"),
    cli("filter-dsl-bool-not-clause", ["filter", "--dsl", '{"query": {"bool": {"must": [1]}}}'],
        "filters.query.bool.must[0]"),
    cli("filter-unknown-field", ["filter", "--where", '{"nosuch": 1}'], "simple_filters.nosuch: unknown field",
        allowed=frozenset({CAPABILITIES})),
    cli("filter-range-on-keyword", ["filter", "--where", '{"hq_country_iso2": {"$gte": "US"}}'],
        "does not support ranges", allowed=frozenset({CAPABILITIES})),
    cli("filter-company-field-in-people-mode", ["filter", "--mode", "people", "--where", '{"hq_country_iso2": "US"}'],
        "for people mode", allowed=frozenset({CAPABILITIES})),
    cli("filter-provider-without-filters", ["filter", "--where", '{"a": 1}', "--provider", "orbit"],
        "orbit has no filter search"),
    cli("filter-values-top-k-0", ["filter", "--values", "hq_country_iso2", "--top-k", "0"], "top_k"),
    cli("filter-values-unknown-field", ["filter", "--values", "nosuch"], "unknown field 'nosuch'",
        allowed=frozenset({CAPABILITIES})),
    cli("filter-max-results-0", ["filter", "--where", '{"a": 1}', "--max-results", "0"], "max_results"),
    # compare, resume, show
    cli("compare-empty-query", ["compare", ""], "query"),
    cli("compare-report-not-html", ["compare", "x", "--report", "{tmp}/r.pdf"], "--report"),
    cli("compare-unknown-provider", ["compare", "x", "--provider", "nosuch"], "unknown provider 'nosuch'"),
    cli("compare-max-results-0", ["compare", "x", "--max-results", "0"], "max_results"),
    cli("show-unknown-run", ["show", "nosuch"], "run_id"),
    cli("resume-unknown-run", ["resume", "nosuch"], "run_id"),
    # an option that cannot apply to the run is refused, naming it and why (issue 14, item 3)
    cli("search-min-results-under-all", ["search", "x", "--min-results", "5"],
        "--min-results: applies only to the 'fallback' and 'race' strategies, not to 'all'"),
    cli("search-hedge-delay-under-all", ["search", "x", "--hedge-delay", "5"],
        "--hedge-delay: applies only to the 'race' strategy, not to 'all'"),
    cli("search-hedge-delay-under-fallback", ["search", "x", "--strategy", "fallback", "--hedge-delay", "5"],
        "--hedge-delay: applies only to the 'race' strategy, not to 'fallback'"),
    cli("lookup-min-results-under-all", ["lookup", "--email", "a@b.co", "--min-results", "2"], "--min-results"),
    cli("filter-hedge-delay-under-fallback",
        ["filter", "--where", '{"a": 1}', "--strategy", "fallback", "--hedge-delay", "1"], "--hedge-delay"),
    cli("search-min-results-beside-a-policy", ["search", "x", "--policy", "{tmp}/p.json", "--min-results", "3"],
        "--min-results: cannot apply here: --policy sets", {"p.json": '{"strategy": "fallback"}'}),
    cli("search-strategy-beside-a-policy", ["search", "x", "--policy", "{tmp}/p.json", "--strategy", "all"],
        "--strategy: cannot apply here: --policy sets", {"p.json": '{"strategy": "fallback"}'}),
    cli("policy-min-results-under-all", ["search", "x", "--policy", "{tmp}/p.json"],
        "--policy.min_results: applies only to", {"p.json": '{"strategy": "all", "min_results": 3}'}),
    cli("policy-nested-hedge-under-all", ["search", "x", "--policy", "{tmp}/p.json"],
        "--policy.steps[1].hedge_delay_s: applies only to the 'race' strategy",
        {"p.json": '{"strategy": "fallback", "steps": ["orbit", {"steps": ["sixtyfour"], "hedge_delay_s": 5}]}'}),
    cli("policy-advance-on-under-race", ["search", "x", "--policy", "{tmp}/p.toml"], "--policy.advance_on",
        {"p.toml": 'strategy = "race"\nadvance_on = ["error"]\n'}),
    cli("policy-nested-in-a-race", ["search", "x", "--policy", "{tmp}/p.json"],
        "--policy.steps[1]: a race's steps must be provider names",
        {"p.json": '{"strategy": "race", "steps": ["orbit", {"strategy": "all", "steps": ["sixtyfour"]}]}'}),
    cli("explain-with-out", ["search", "x", "--explain", "--out", "{tmp}/r.csv"],
        "--out: cannot apply here: --explain"),
    cli("explain-with-journal", ["search", "x", "--explain", "--journal", "{tmp}/j2.sqlite"],
        "--journal: cannot apply here: --explain"),
    cli("filter-fields-with-where", ["filter", "--fields", "--where", '{"a": 1}'], "--where: cannot apply here"),
    cli("filter-fields-with-max-results", ["filter", "--fields", "--max-results", "3"],
        "--max-results: cannot apply here: --fields reads the index's metadata"),
    cli("filter-values-with-out", ["filter", "--values", "hq_country_iso2", "--out", "{tmp}/v.csv"],
        "--out: cannot apply here: --values"),
    cli("filter-values-with-fields", ["filter", "--values", "hq_country_iso2", "--fields"], "--fields: cannot apply"),
    cli("filter-fields-with-two-providers", ["filter", "--fields", "--provider", "sixtyfour,orbit"],
        "--provider: --fields reads one provider's index"),
    cli("filter-top-k-without-values", ["filter", "--where", '{"a": 1}', "--top-k", "5"], "--top-k: cannot apply"),
    # output paths are checked before any call (issue 14, item 5)
    cli("search-out-folder-under-a-file", ["search", "x", "--out", "{tmp}/f.txt/sub/r.csv"],
        "--out: cannot create the folder", {"f.txt": "a file"}),
    cli("compare-report-folder-under-a-file", ["compare", "x", "--report", "{tmp}/f.txt/r.html"],
        "--report: cannot create the folder", {"f.txt": "a file"}),
    cli("compare-out-unsupported-extension", ["compare", "x", "--out", "{tmp}/r.xlsx"], "--out"),
]


def _invoke(args: list[str], tmp_path: Path, env: dict[str, str] | None = None) -> Any:
    (tmp_path / "fast.toml").write_text(FAST)
    base: dict[str, str | None] = {name: None for name in UNSET}
    base |= {"DEEPSEARCH_CONFIG": str(tmp_path / "fast.toml"), "DEEPSEARCH_JOURNAL": str(tmp_path / "j.sqlite"),
             "COLUMNS": "200"}
    base |= {k: v.replace("{tmp}", str(tmp_path)) for k, v in (env or {}).items()}
    return CliRunner().invoke(main, [a.replace("{tmp}", str(tmp_path)) for a in args], env=base)


@pytest.mark.parametrize(("args", "expect", "files", "allowed", "env"), CLI_CASES)
def test_bad_cli_input_exits_2_naming_the_flag_before_any_provider_call(
        args: list[str], expect: str, files: dict[str, str | bytes], allowed: frozenset[str], env: dict[str, str],
        tmp_path: Path, provider_calls: list[str]) -> None:
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)

    result = _invoke(args, tmp_path, env)

    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit), result.output
    assert result.exit_code == 2, result.output
    assert expect in " ".join(result.output.split()), result.output  # rich wraps long lines
    assert set(provider_calls) <= allowed, provider_calls


def test_the_call_spy_sees_what_a_valid_command_sends(tmp_path: Path, provider_calls: list[str]) -> None:
    result = _invoke(["filter", "--where", '{"hq_country_iso2": "US"}', "--max-results", "1", "--json",
                      "--no-progress"], tmp_path)
    assert result.exit_code == 0, result.output
    assert {CAPABILITIES, "POST /search/query"} <= set(provider_calls)  # so an empty spy means: nothing sent


# -- the library -----------------------------------------------------------------------------------
Call = Callable[[Aggregator], Awaitable[Any]]


def lib(name: str, call: Call, field_name: str, allowed: frozenset[str] = frozenset()) -> Any:
    """One library case: ``call(agg)`` must raise ConfigError whose field starts with ``field_name``."""
    return pytest.param(call, field_name, allowed, id=name)


def search(query: Any = "CTO in Berlin", **fields: Any) -> Call:
    return lambda agg: agg.search(query, **fields)


async def _build(agg: Aggregator, **fields: Any) -> Any:
    return agg.build_request(**fields)


LIBRARY_CASES = [
    lib("empty-query", search(""), "query"),
    lib("whitespace-query", search("  \t "), "query"),
    lib("no-query", search(None), "query"),
    lib("query-not-text", search(5), "query"),
    lib("max-results-0", search(max_results=0), "max_results"),
    lib("max-results-5001", search(max_results=5001), "max_results"),
    lib("max-results-not-int", search(max_results="abc"), "max_results"),
    lib("unknown-provider", search(providers=("nosuch",)), "providers"),
    lib("providers-as-a-string", search(providers="orbit"), "providers"),
    lib("providers-empty", search(providers=()), "providers"),
    lib("provider-without-the-mode", search(mode="company", providers=("orbit",)), "mode"),
    lib("bad-mode", search(mode="pets"), "mode"),
    lib("bad-strategy", search(strategy="best"), "strategy"),
    lib("budget-negative", search(budget=-1), "budget"),
    lib("budget-zero", search(budget=0), "budget"),
    lib("budget-infinite", search(budget=float("inf")), "budget"),
    lib("budget-not-number", search(budget="x"), "budget"),
    lib("deadline-negative", search(deadline_s=-1), "deadline_s"),
    lib("deadline-nan", search(deadline_s=float("nan")), "deadline_s"),
    lib("misspelt-field", search(max_resluts=3), "max_resluts"),
    lib("short-criterion",
        search(mode="company", options={"extruct": {"criteria": [{**CRITERION, "criterion": "x"}]}}),
        "options.extruct.criteria[0].criterion"),
    lib("duplicate-criteria", search(mode="company", options={"extruct": {"criteria": [CRITERION, CRITERION]}}),
        "options.extruct.criteria"),
    lib("unknown-extruct-option", search(mode="company", options={"extruct": {"critera": []}}),
        "options.extruct.critera"),
    lib("criteria-in-people-mode", search(options={"extruct": {"criteria": [CRITERION]}}), "options.extruct"),
    lib("options-of-an-unknown-provider", search(options={"nosuch": {}}), "options.nosuch"),
    lib("options-of-a-provider-left-out",
        search(providers=("sixtyfour",), options={"orbit": {"run_shape": "partial_only"}}), "options.orbit"),
    lib("intent-wrong-version", search(options={"orbit": {"structured_intent": {"version": "v2"}}}),
        "structured_intent.version"),
    lib("intent-not-an-object", search(options={"orbit": {"structured_intent": [1]}}),
        "options.orbit.structured_intent"),
    lib("bad-run-shape", search(identity=PersonIdentity(email="a@b.co"), options={"orbit": {"run_shape": "full"}}),
        "options.orbit.run_shape"),
    lib("title-in-company-mode", search(mode="company", titles=("CTO",)), "titles"),
    lib("lookup-in-company-mode", search(mode="company", identity=PersonIdentity(email="a@b.co")), "identity"),
    lib("exclude-as-a-string", search(exclude="acme.com"), "exclude"),
    lib("request-with-bad-override", lambda agg: agg.search(SearchRequest(query="x"), max_results=0),
        "max_results"),
    lib("build-request-empty-query", lambda agg: _build(agg, query=""), "query"),
    lib("policy-step-unknown-provider",
        lambda agg: agg.search("CTO in Berlin", policy=Policy(strategy="fallback", steps=("nosuch",))),
        "policy"),
    lib("min-results-under-all", search(min_results=5), "min_results"),
    lib("hedge-delay-under-all", search(hedge_delay_s=5), "hedge_delay_s"),
    lib("hedge-delay-under-fallback", search(strategy="fallback", hedge_delay_s=5), "hedge_delay_s"),
    lib("request-strategy-beside-a-policy", search(strategy="race", policy=Policy(strategy="fallback")), "strategy"),
    lib("request-min-results-beside-a-policy", search(min_results=2, policy=Policy(strategy="fallback")),
        "min_results"),
    lib("policy-min-results-under-all", search(policy=Policy(min_results=3)), "policy.min_results"),
    lib("policy-advance-on-errors-under-race", search(policy=Policy(strategy="race", advance_on_errors=("X",))),
        "policy.advance_on_errors"),
    lib("policy-nested-hedge-under-fallback",
        search(policy=Policy(strategy="fallback", steps=(Policy(strategy="fallback", hedge_delay_s=1),))),
        "policy.steps[0].hedge_delay_s"),
    lib("policy-nested-in-a-race",
        search(policy=Policy(strategy="race", steps=("orbit", Policy(steps=("sixtyfour",))))), "policy.steps[1]"),
    lib("filter-empty", lambda agg: agg.filter_search(simple_filters={}), "simple_filters"),
    lib("filter-not-object", lambda agg: agg.filter_search(simple_filters=[1]),  # type: ignore[arg-type]
        "simple_filters"),
    lib("filter-both-forms",
        lambda agg: agg.filter_search(simple_filters={"a": 1}, filters={"query": {"match_all": {}}}), "filters"),
    lib("filter-dsl-no-query", lambda agg: agg.filter_search(filters={"size": 1}), "filters.query"),
    lib("filter-dsl-unknown-clause", lambda agg: agg.filter_search(filters={"query": {"regexp": {}}}),
        "filters.query.regexp"),
    lib("filter-bad-mode", lambda agg: agg.filter_search(mode="pets", simple_filters={"a": 1}),  # type: ignore[arg-type]
        "mode"),
    lib("filter-unknown-field", lambda agg: agg.filter_search(simple_filters={"nosuch": 1}), "simple_filters.nosuch",
        allowed=frozenset({CAPABILITIES})),
    lib("values-top-k-0", lambda agg: agg.filter_values("hq_country_iso2", top_k=0), "top_k"),
    lib("values-top-k-101", lambda agg: agg.filter_values("hq_country_iso2", top_k=101), "top_k"),
    lib("values-scope-both-forms",
        lambda agg: agg.filter_values("hq_country_iso2", simple_filters={"a": 1}, filters={"query": {}}), "scope"),
    lib("values-scope-with-sort",
        lambda agg: agg.filter_values("hq_country_iso2", simple_filters={"$sort": {"a": 1}}), "simple_filters"),
    lib("values-scope-bad-shape",
        lambda agg: agg.filter_values("hq_country_iso2", simple_filters={"a": {"$in": 3}}), "simple_filters.a.$in"),
    lib("values-provider-without-filters", lambda agg: agg.filter_values("x", provider="orbit"), "provider"),
    lib("values-unknown-field", lambda agg: agg.filter_values("nosuch"), "--values",
        allowed=frozenset({CAPABILITIES})),
]


@dataclass
class Fixture:
    agg: Aggregator
    sandbox: Sandbox | None
    calls: list[str] = field(default_factory=list)

    def served(self) -> int:
        """Requests the sandbox's emulators received (their own ``/_sandbox/stats``)."""
        if self.sandbox is None:
            return 0
        docs = self.sandbox.stats()["providers"].values()
        return sum(ep["calls"] for doc in docs for ep in doc["endpoints"].values())


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def on_sandbox() -> AsyncIterator[Fixture]:
    """One Aggregator on an in-process sandbox running every provider, shared by the library cases."""
    config = SandboxConfig(time_scale=0.002, n_companies=50, providers=("sixtyfour", "extruct", "orbit"))
    with pytest.MonkeyPatch.context() as patch:
        async with Sandbox(config) as sandbox:
            settings = load_settings(env={}).with_target("sandbox")
            async with Aggregator(settings, sandbox=sandbox) as agg:
                fixture = Fixture(agg, sandbox)
                _spy(patch, fixture.calls)
                yield fixture


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def live_unroutable() -> AsyncIterator[Fixture]:
    """One live Aggregator whose providers all point at TEST-NET-1: any call would fail to connect."""
    env = {"SIXTYFOUR_API_KEY": "k1", "EXTRUCT_API_TOKEN": "k2", "ORBIT_API_KEY": "k3",
           **{f"{p}_BASE_URL": "https://192.0.2.1:9" for p in ("SIXTYFOUR", "EXTRUCT", "ORBIT")}}
    settings = load_settings(env=env, overrides={"http": {"timeout_s": 1.0, "connect_timeout_s": 0.5},
                                                 "retry": {"max_attempts": 1}}).with_target("live")
    assert all(isinstance(p.api_key, SecretStr) for p in settings.providers.values())
    with pytest.MonkeyPatch.context() as patch:
        async with Aggregator(settings) as agg:
            fixture = Fixture(agg, None)
            _spy(patch, fixture.calls)
            yield fixture


def _spy(patch: pytest.MonkeyPatch, seen: list[str]) -> None:
    """Record the endpoint of every HTTP exchange (``_send`` is the one place all of them go through)."""
    send = ProviderHTTPClient._send

    async def spy(self: ProviderHTTPClient, method: str, url: str, endpoint: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(endpoint)
        return await send(self, method, url, endpoint, *args, **kwargs)

    patch.setattr(ProviderHTTPClient, "_send", spy)


async def _rejects(fixture: Fixture, call: Call, field_name: str, allowed: frozenset[str]) -> None:
    calls_before, served_before = len(fixture.calls), fixture.served()
    with pytest.raises(ConfigError) as info:
        await call(fixture.agg)
    assert info.value.field.startswith(field_name), info.value
    assert str(info.value).startswith(f"{info.value.field}: ") and info.value.problem
    made = fixture.calls[calls_before:]
    assert set(made) <= allowed, made
    assert fixture.served() - served_before == len(made)  # the emulators agree: nothing else reached them


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("call", "field_name", "allowed"), LIBRARY_CASES)
async def test_bad_library_calls_raise_config_error_naming_the_field_before_any_call(
        on_sandbox: Fixture, call: Call, field_name: str, allowed: frozenset[str]) -> None:
    await _rejects(on_sandbox, call, field_name, allowed)


@pytest.mark.asyncio(loop_scope="module")
@pytest.mark.parametrize(("call", "field_name", "allowed"),
                         [c for c in LIBRARY_CASES if not c.values[2]])  # those that need no call at all
async def test_bad_library_calls_are_rejected_live_before_any_connection(
        live_unroutable: Fixture, call: Call, field_name: str, allowed: frozenset[str]) -> None:
    await _rejects(live_unroutable, call, field_name, allowed)  # a call would be a ProviderConnectionError


# -- settings, criteria and the request model ------------------------------------------------------
def setting(name: str, source: str | bytes | dict[str, Any] | None, field_name: str) -> Any:
    """``source``: TOML text/bytes for a user file, a dict of overrides, or None for a directory."""
    return pytest.param(source, field_name, id=name)


SETTINGS_CASES = [
    setting("file-bad-toml", "[run\n", "--config"),
    setting("file-binary", b"\xff\xfe[", "--config"),
    setting("file-is-a-directory", None, "--config"),
    setting("file-unknown-key-type", "[run]\nmax_results = '50'\ndeadline_s = [1]\n", "run.deadline_s"),
    setting("file-time-scale-0", "[sandbox]\ntime_scale = 0\n", "sandbox.time_scale"),
    setting("file-negative-rate-limit", "[providers.orbit]\nrate_limits = [{name = 'x', limit = -1, window_s = 1}]\n",
            "providers.orbit.rate_limits[0].limit"),
    setting("overrides-max-results-0", {"run": {"max_results": 0}}, "run.max_results"),
    setting("overrides-bad-target", {"target": "cloud"}, "target"),
    setting("overrides-unknown-section", {"bogus": {}}, "bogus"),
    setting("overrides-negative-timeout", {"http": {"timeout_s": -1}}, "http.timeout_s"),
    setting("overrides-provider-not-a-table", {"providers": {"orbit": 3}}, "providers.orbit"),
    setting("file-misspelt-provider-table", "[providers.sixtyfor]\npage_size = 5\n", "providers.sixtyfor"),
    setting("file-provider-key-typo", "[providers.sixtyfour]\npoll_intervall_s = 5\n",
            "providers.sixtyfour.poll_intervall_s"),
    setting("file-adapter-key-typo", "[providers.orbit]\ncredits_per_profil = 2\n",
            "providers.orbit.credits_per_profil"),
    setting("file-other-providers-key", "[providers.extruct]\nfetch_via = 'csv'\n", "providers.extruct.fetch_via"),
    setting("file-section-key-typo", "[run]\nmax_result = 5\n", "run.max_result"),
    setting("file-policy-key-typo", "[policies.cheap]\nstratgy = 'fallback'\n", "policies.cheap.stratgy"),
    setting("overrides-rate-limit-row-typo",
            {"providers": {"orbit": {"rate_limits": [{"name": "x", "limit": 1, "window_s": 1, "brust": 2}]}}},
            "providers.orbit.rate_limits[0].brust"),
    setting("overrides-unknown-provider", {"providers": {"acme": {}}}, "providers.acme"),
]


@pytest.mark.parametrize(("source", "field_name"), SETTINGS_CASES)
def test_bad_settings_raise_config_error_naming_the_setting(source: str | bytes | dict[str, Any] | None,
                                                            field_name: str, tmp_path: Path) -> None:
    path = tmp_path / "user.toml"
    if isinstance(source, bytes):
        path.write_bytes(source)
    elif isinstance(source, str):
        path.write_text(source)
    else:
        path.mkdir()
    with pytest.raises(ConfigError) as info:
        if isinstance(source, dict):
            load_settings(env={}, overrides=source)
        else:
            load_settings(path, env={})
    assert info.value.field == field_name, info.value


@pytest.mark.parametrize(
    ("name", "content"),
    [pytest.param("c.toml", b"\xff\xfe", id="binary-toml"),
     pytest.param("c.json", None, id="directory"),
     pytest.param("c.json", b'{"criteria": {"key": "a"}}', id="criteria-not-a-list"),
     pytest.param("c.json", b"\xff\xfe", id="binary-json")],
)
def test_unreadable_criteria_files_raise_config_error(name: str, content: bytes | None, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes(content) if content is not None else path.mkdir()
    with pytest.raises(ConfigError) as info:
        load_criteria(path)
    assert info.value.field == "--criteria"


REQUEST_CASES = [
    pytest.param({"query": ""}, "query", id="empty-query"),
    pytest.param({"query": "x", "max_results": 0}, "max_results", id="max-results-0"),
    pytest.param({"query": "x", "budget": 0}, "budget", id="budget-0"),
    pytest.param({"query": "x", "deadline_s": float("inf")}, "deadline_s", id="deadline-infinite"),
    pytest.param({"query": "x", "simple_filters": {"a": 1}, "filters": {"query": {}}}, "filters", id="both-filters"),
    pytest.param({"query": "x", "mode": "company", "schools": ("MIT",)}, "schools", id="school-in-company-mode"),
    pytest.param({"query": "x", "mode": "company", "identity": {"email": "a@b.co"}}, "identity",
                 id="lookup-in-company-mode"),
    pytest.param({"query": "x", "identity": {"email": "a@b.co"}, "simple_filters": {"a": 1}}, "simple_filters",
                 id="lookup-and-filter"),
    pytest.param({"query": "x", "identity": {}}, "identity", id="lookup-without-signals"),
    pytest.param({"query": "x", "options": {"Orbit": {}}}, "options", id="options-not-keyed-by-provider"),
]


@pytest.mark.parametrize(("fields", "field_name"), REQUEST_CASES)
def test_search_request_errors_are_located_at_the_field(fields: dict[str, Any], field_name: str) -> None:
    with pytest.raises(ValidationError) as info:
        SearchRequest(**fields)
    assert info.value.errors()[0]["loc"][0] == field_name
    error = ConfigError.from_validation(info.value)
    assert error.field.startswith(field_name) and str(error).startswith(f"{field_name}")
    assert isinstance(error, ValueError)
