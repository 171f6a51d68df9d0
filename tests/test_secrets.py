"""API keys never leak: a canary key across a whole faulty run, and the signed download without it.

One scenario runs live mode against the sandbox over loopback (keys from the environment, as a
user would set them): Sixtyfour and Orbit know the canary key; Extruct is given a revoked canary
and answers 401 (a failing provider); the emulators inject 5xx, 429 and malformed JSON, and one 401
mid-run; one search runs out of budget, one is interrupted and resumed from the SQLite journal;
lower-level calls raise typed errors. The library logs through structlog (rendered as JSON into a
buffer at debug) for the first part and through stdlib ``logging`` at DEBUG for the resume, so both
routes of :mod:`aggregator.log` are covered. Every sink is then searched for the canary.
"""

from __future__ import annotations

import asyncio
import io
import logging
import traceback
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import structlog
from aiohttp import web
from pydantic import SecretStr

from aggregator.compare import compare
from aggregator.config import Settings, load_settings
from aggregator.contract import JobRef, Limits
from aggregator.core import Aggregator
from aggregator.errors import AggregatorError, ConfigError
from aggregator.events import Event, HitsEvent
from aggregator.http import HttpClient, ProviderHTTPClient
from aggregator.journal import SqliteJournal
from aggregator.limits import ProviderLimiter
from aggregator.models import SearchReport, SearchRequest
from aggregator.render import report_json, write_report
from aggregator.report_html import render_html
from aggregator.retry import RetryPolicy
from aggregator.targets import check_live_base_url
from providers.sandbox.faults import FaultRule
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE
from tests.fakes import FakeClock

CANARY = "sk-CANARY-5f1b9c7e2a4d8031"  # a valid key at Sixtyfour and Orbit
REVOKED = "sk-CANARY-revoked-93e0b7a1"  # Extruct does not know it: 401
MARK = "sk-CANARY"  # both keys, and any prefix of them longer than this

FAULTS = (
    FaultRule("orbit", "GET /v2/developer/profiles/{id}", "http_5xx", status=401, first_n=1),  # a 401 mid-run
    *(FaultRule(p, "*", "http_5xx", 0.1, retry_after_s=None) for p in ("sixtyfour", "orbit")),
    *(FaultRule(p, "*", "malformed_json", 0.1) for p in ("sixtyfour", "orbit")),
    FaultRule("orbit", "*", "http_429", 0.05, retry_after_s=1.0),
)


@dataclass
class Evidence:
    """Everything the canary run produced, by sink."""

    structlog_text: str = ""
    stdlib_text: str = ""
    objects: dict[str, Any] = field(default_factory=dict)  # label -> object whose repr/str is checked
    exceptions: list[BaseException] = field(default_factory=list)
    plain_copies: list[str] = field(default_factory=list)  # object-graph paths holding the key as plain str
    journal: dict[str, bytes] = field(default_factory=dict)  # file name (+ when) -> bytes
    files: dict[str, bytes] = field(default_factory=dict)  # written reports
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (url, headers sent)


def traced_session(requests: list[tuple[str, dict[str, str]]]) -> aiohttp.ClientSession:
    """A session recording the headers each request actually sent."""
    trace = aiohttp.TraceConfig()

    async def on_end(_: Any, __: Any, params: Any) -> None:
        requests.append((str(params.url), dict(params.response.request_info.headers)))

    trace.on_request_end.append(on_end)
    return aiohttp.ClientSession(trace_configs=[trace])


def live_settings(sandbox: Sandbox, **sixtyfour: Any) -> Settings:
    """Live mode with keys and base URLs from the environment, pointing at the sandbox over loopback."""
    env = {"SIXTYFOUR_API_KEY": CANARY, "ORBIT_API_KEY": CANARY, "EXTRUCT_API_TOKEN": REVOKED}
    env.update({f"{p.upper()}_BASE_URL": url for p, url in sandbox.base_urls.items()})
    overrides = {"providers": {"sixtyfour": {"page_size": 5, **sixtyfour}}}
    return load_settings(env=env, overrides=overrides).with_target("live")


@contextmanager
def captured_logs(evidence: Evidence) -> Iterator[io.StringIO]:
    """structlog rendered as JSON into a buffer at debug; stdlib logging at DEBUG into another."""
    saved = structlog.get_config()
    structured, plain = io.StringIO(), io.StringIO()
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        logger_factory=structlog.PrintLoggerFactory(file=structured), cache_logger_on_first_use=False)
    handler = logging.StreamHandler(plain)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root, level = logging.getLogger(), logging.getLogger().level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield structured
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        structlog.configure(**saved)
        evidence.structlog_text, evidence.stdlib_text = structured.getvalue(), plain.getvalue()


async def collect(stream: AsyncIterator[Event], evidence: Evidence, label: str) -> SearchReport | None:
    report = None
    async for event in stream:
        evidence.objects[f"{label} event {len(evidence.objects)}"] = event
        report = getattr(event, "report", report)
    return report


async def expect_error(evidence: Evidence, call: Any) -> None:
    try:
        await call
    except AggregatorError as exc:
        evidence.exceptions.append(exc)
    else:  # pragma: no cover - the scenario is built so that each of these fails
        pytest.fail(f"{call} did not raise")


def plain_copies(root: object, label: str, limit: int = 200_000) -> list[str]:
    """Paths in the object graph of ``root`` where the key sits in a plain ``str`` (not a SecretStr).

    aiohttp's and asyncio's own objects are not entered: the key passes through them per request.
    """
    found: list[str] = []
    seen: set[int] = set()
    todo: list[tuple[str, object]] = [(label, root)]
    while todo and len(seen) < limit:
        path, obj = todo.pop()
        if id(obj) in seen or isinstance(obj, SecretStr | type) or (callable(obj) and not hasattr(obj, "__dict__")):
            continue
        seen.add(id(obj))
        if isinstance(obj, str | bytes):
            if MARK in (obj if isinstance(obj, str) else obj.decode("latin-1")):
                found.append(path)
            continue
        module = type(obj).__module__
        if module.startswith(("aiohttp", "asyncio", "multidict", "yarl", "aiosqlite", "sqlite3", "threading")):
            continue
        if isinstance(obj, dict):
            todo += [(f"{path}[{k!r}]", v) for k, v in obj.items()] + [(f"{path}.key", k) for k in obj]
        elif isinstance(obj, list | tuple | set | frozenset):
            todo += [(f"{path}[{i}]", v) for i, v in enumerate(obj)]
        elif hasattr(obj, "__dict__"):
            todo += [(f"{path}.{k}", v) for k, v in vars(obj).items()]
    return found


def snapshot_journal(path: Path, when: str, evidence: Evidence) -> None:
    for file in sorted(path.parent.glob(path.name + "*")):
        evidence.journal[f"{file.name} ({when})"] = file.read_bytes()


def write_reports(reports: list[SearchReport], folder: Path, evidence: Evidence) -> None:
    for i, report in enumerate(reports):
        for suffix in (".json", ".jsonl", ".csv"):
            write_report(report, folder / f"report{i}{suffix}")
        (folder / f"report{i}.html").write_text(render_html(compare(report)), encoding="utf-8")
        evidence.files[f"report{i} --json"] = report_json(report)
    for file in sorted(folder.glob("report*")):
        evidence.files[file.name] = file.read_bytes()


async def direct_errors(agg: Aggregator, sandbox: Sandbox, job: JobRef, evidence: Evidence) -> None:
    """Typed errors raised to the caller by lower-level calls: 401, garbled JSON, resets, bad input.

    The scenario's random faults are cleared first: a random 5xx drawn before the garbled body would
    raise another error than the one each call is here to show."""
    sandbox.clear_faults()
    await expect_error(evidence, agg.adapter("extruct").submit(SearchRequest(query="x", mode="company"), "k"))
    sandbox.add_fault(FaultRule("sixtyfour", "GET /search/status/{task_id}", "malformed_json", first_n=50))
    await expect_error(evidence, agg.adapter("sixtyfour").poll(job))
    sandbox.add_fault(FaultRule("sixtyfour", "POST /search/query", "reset", first_n=50))
    await expect_error(evidence, agg.adapter("sixtyfour").fetch(job, None))
    await expect_error(evidence, agg.search("", mode="people"))
    settings = load_settings(env={"SIXTYFOUR_API_KEY": CANARY, "SIXTYFOUR_BASE_URL": "http://api.example"})
    with pytest.raises(ConfigError) as info:
        check_live_base_url("sixtyfour", settings.providers["sixtyfour"], allow_insecure=False)
    evidence.exceptions.append(info.value)


async def structlog_part(agg: Aggregator, sandbox: Sandbox, evidence: Evidence) -> tuple[list[SearchReport], str]:
    """Searches with faults, a failing provider, a budget error; one run left interrupted."""
    reports = [await agg.search("VP of Engineering in New York", mode="people", max_results=15),
               await agg.search("Series B SaaS companies in New York", mode="company", max_results=10),
               await agg.search("Head of Product in London", mode="people", max_results=15, budget=12)]
    failed = await agg.search("fintech companies in London", mode="company", providers=["extruct"])
    with pytest.raises(AggregatorError) as info:
        failed.raise_for_status()
    evidence.exceptions.append(info.value)
    stream = agg.stream("CTO in Berlin", mode="people", max_results=15)
    async for event in stream:
        if isinstance(event, HitsEvent):
            break
    await stream.aclose()
    job = reports[0].outcome("sixtyfour")
    assert job.job_id is not None
    ref = JobRef("sixtyfour", job.job_id, "k", "people", datetime.now(UTC), {"search_id": job.job_id})
    await direct_errors(agg, sandbox, ref, evidence)
    runs = await agg.job_store.runs()
    return [*reports, failed], runs[0].run_id


async def canary_run(folder: Path) -> Evidence:
    evidence = Evidence()
    config = SandboxConfig(time_scale=FAST_SCALE, n_companies=1500, providers=("sixtyfour", "extruct", "orbit"),
                           faults=FAULTS)
    journal_path = folder / "journal.sqlite"
    with captured_logs(evidence):
        async with Sandbox(config) as sandbox, SqliteJournal(journal_path) as journal:
            for provider in ("sixtyfour", "orbit"):
                sandbox.keys.register(provider, CANARY, 1)
            settings = live_settings(sandbox)
            async with traced_session(evidence.requests) as session:
                async with Aggregator(settings, session=session, clock=sandbox.clock, job_store=journal) as agg:
                    reports, interrupted = await structlog_part(agg, sandbox, evidence)
                    evidence.plain_copies += plain_copies(agg, "agg")
                    adapters = [agg.adapter(p) for p in ("sixtyfour", "orbit", "extruct")]
                    evidence.objects.update(first_aggregator=agg, adapters=adapters,
                                            clients=[a.client for a in adapters])
                sandbox.clear_faults()
                sandbox.add_fault(FAULTS[1])
                structlog.reset_defaults()  # the resume logs through stdlib logging
                async with Aggregator(settings, session=session, clock=sandbox.clock, job_store=journal) as agg:
                    reports.append(await agg.resume(interrupted))
                    reports.append(await agg.search("Seed fintech companies in Berlin", mode="company"))
                    evidence.plain_copies += plain_copies(agg, "resumed agg")
                    evidence.objects.update(second_aggregator=agg, targets=agg.targets)
            for run in await journal.runs():
                for provider in ("sixtyfour", "orbit", "extruct"):
                    evidence.objects[f"job {run.run_id} {provider}"] = await journal.get(run.run_id, provider)
            snapshot_journal(journal_path, "open", evidence)
        snapshot_journal(journal_path, "closed", evidence)
    write_reports(reports, folder, evidence)
    evidence.objects.update(settings=settings, providers=settings.providers, reports=reports,
                            outcomes=[o for r in reports for o in r.outcomes], journal=journal)
    assert reports[-2].outcome("sixtyfour").status in ("found", "partial")  # the resume did run
    return evidence


@pytest.fixture(scope="module")
def evidence(tmp_path_factory: pytest.TempPathFactory) -> Evidence:
    return asyncio.run(canary_run(tmp_path_factory.mktemp("secrets")))


def test_the_scenario_really_used_the_canary_and_hit_the_faults(evidence: Evidence) -> None:
    sent = [h for _, h in evidence.requests]
    assert any(h.get("x-api-key") == CANARY for h in sent)  # Sixtyfour
    assert any(h.get("Authorization") == f"Bearer {CANARY}" for h in sent)  # Orbit
    assert any(h.get("Authorization") == f"Bearer {REVOKED}" for h in sent)  # Extruct, refused
    outcomes = evidence.objects["outcomes"]
    errors = {o.error.type for o in outcomes if o.error}
    assert {"AuthError", "BudgetExceededError"} <= errors
    raised = {type(e).__name__ for e in evidence.exceptions}
    assert {"AuthError", "ProviderProtocolError", "ProviderConnectionError", "ConfigError",
            "SearchFailedError"} <= raised
    assert "retry.scheduled" in evidence.structlog_text and "job.resumed" in evidence.stdlib_text


def test_logs_never_contain_the_key(evidence: Evidence) -> None:
    assert evidence.structlog_text and evidence.stdlib_text
    assert MARK not in evidence.structlog_text
    assert MARK not in evidence.stdlib_text


def test_reprs_and_strs_never_contain_the_key(evidence: Evidence) -> None:
    leaks = [label for label, obj in evidence.objects.items() if MARK in repr(obj) or MARK in str(obj)]
    assert leaks == []


def test_the_key_is_held_only_as_a_secret_str(evidence: Evidence) -> None:
    assert evidence.plain_copies == []


def test_raised_exceptions_never_carry_the_key(evidence: Evidence) -> None:
    for exc in evidence.exceptions:
        chain: BaseException | None = exc
        while chain is not None:
            texts = [str(chain), repr(chain), repr(chain.args), *traceback.format_exception(chain)]
            assert not [t for t in texts if MARK in t], f"{type(chain).__name__} carries the key"
            chain = chain.__cause__ or chain.__context__


def test_the_journal_file_never_contains_the_key(evidence: Evidence) -> None:
    assert any("-wal (open)" in name for name in evidence.journal)  # the WAL was inspected too
    assert [name for name, data in evidence.journal.items() if MARK.encode() in data] == []


def test_reports_in_every_format_never_contain_the_key(evidence: Evidence) -> None:
    assert {".json", ".jsonl", ".csv", ".html"} <= {Path(n).suffix for n in evidence.files}
    assert [name for name, data in evidence.files.items() if MARK.encode() in data] == []


# -- the signed download URL ---------------------------------------------------------------
@pytest.mark.parametrize("fetch_via", ["csv", "export"])
async def test_the_signed_download_url_is_fetched_without_the_api_key(fetch_via: str) -> None:
    requests: list[tuple[str, dict[str, str]]] = []
    config = SandboxConfig(time_scale=FAST_SCALE, n_companies=1500, providers=("sixtyfour",))
    async with Sandbox(config) as sandbox, traced_session(requests) as session:
        sandbox.keys.register("sixtyfour", CANARY, 1)
        async with Aggregator(live_settings(sandbox, fetch_via=fetch_via), session=session,
                              clock=sandbox.clock) as agg:
            report = await agg.search("VP of Engineering in New York", mode="people", max_results=10)
        stats = sandbox.stats()["providers"]["sixtyfour"]

    assert report.outcome("sixtyfour").status == "found"
    downloads = [h for url, h in requests if "/_storage/" in url]
    api_calls = [h for url, h in requests if "/_storage/" not in url]
    assert len(downloads) == 1 and stats["storage_requests"] == 1
    assert all(h.get("x-api-key") == CANARY for h in api_calls)  # the capture sees the key where it is sent
    assert not [h for h in downloads if {k.lower() for k in h} & {"x-api-key", "authorization"}]
    assert not [h for h in downloads if any(MARK in v for v in h.values())]
    assert stats["storage_requests_with_api_key"] == 0


# -- the HTTP client alone: bodies and redirects that would carry the key ---------------------
@contextmanager
def client_for(base_url: str, session: aiohttp.ClientSession) -> Iterator[ProviderHTTPClient]:
    clock = FakeClock()
    settings = load_settings(env={}, overrides={"retry": {"max_attempts": 1}})
    http = HttpClient(settings.http, session)
    yield ProviderHTTPClient(provider="sixtyfour", base_url=base_url, http=http,
                             limiter=ProviderLimiter("sixtyfour", Limits(), clock),
                             retry=RetryPolicy(settings.retry, clock), clock=clock, api_key=SecretStr(CANARY),
                             auth_headers=lambda key: {"x-api-key": key})


async def serve(app: web.Application, host: str) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, host, 0).start()
    return runner, f"http://{host}:{runner.addresses[0][1]}"


@pytest.mark.parametrize("status", [200, 401, 429, 500, 502])
async def test_an_error_or_garbled_body_echoing_the_key_is_redacted(status: int) -> None:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(status=status, text=f"<html>bad key {request.headers['x-api-key']}</html>")

    app = web.Application()
    app.router.add_get("/echo", echo)
    runner, base = await serve(app, "127.0.0.1")
    try:
        async with aiohttp.ClientSession() as session:
            with client_for(base, session) as client, pytest.raises(AggregatorError) as info:
                await client.request("GET", "/echo", endpoint="GET /echo")
    finally:
        await runner.cleanup()
    texts = [str(info.value), repr(info.value), repr(info.value.args), str(getattr(info.value, "body_excerpt", ""))]
    assert not [t for t in texts if MARK in t]


async def test_a_redirect_to_another_host_never_receives_the_key() -> None:
    seen: list[dict[str, str]] = []

    async def elsewhere(request: web.Request) -> web.Response:
        seen.append(dict(request.headers))
        return web.json_response({"ok": True})

    other = web.Application()
    other.router.add_get("/landing", elsewhere)
    other_runner, other_base = await serve(other, "127.0.0.1")
    other_host = other_base.replace("127.0.0.1", "localhost")  # another host name, the same machine

    async def moved(_: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect(f"{other_host}/landing")

    api = web.Application()
    api.router.add_get("/search", moved)
    api_runner, api_base = await serve(api, "127.0.0.1")
    try:
        async with aiohttp.ClientSession() as session:
            with client_for(api_base, session) as client, suppress(AggregatorError):  # refusing it is fine
                await client.request("GET", "/search", endpoint="GET /search")
    finally:
        await api_runner.cleanup()
        await other_runner.cleanup()
    assert not [h for h in seen if any(MARK in v for v in h.values())]
