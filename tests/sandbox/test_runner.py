"""Shared sandbox machinery: limiters, fault rules, keys, stats, the runner and its middleware."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web

from providers import REGISTRY, ProviderSpec
from providers.sandbox.context import KeyRegistry, SandboxContext
from providers.sandbox.faults import FaultInjector, FaultRule
from providers.sandbox.ratelimit import SlidingWindowLog, TokenBucket, retry_after_header
from providers.sandbox.runner import AttachedSandbox, Sandbox, SandboxConfig, SandboxConnection, serve
from providers.sandbox.server import Reply, json_response, new_app
from providers.sandbox.stats import StatsRecorder


class ManualClock:
    """Virtual time that moves only when a test advances it."""

    scale = 1.0

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def now(self) -> datetime:
        return datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=self.t)

    async def sleep(self, seconds: float) -> None:
        self.t += seconds


# -- a tiny emulator to drive the shared middleware -------------------------------------------


class EchoEmulator:
    def __init__(self, ctx: SandboxContext, settings: Mapping[str, Any]) -> None:
        self.calls = 0
        self.settings = dict(settings)
        self.app = new_app(ctx)
        self.app.router.add_post("/echo/{name}", self.echo)
        self.app.router.add_get("/teapot", self.teapot)

    async def echo(self, request: web.Request) -> web.Response:
        self.calls += 1
        return json_response({"name": request.match_info["name"], "calls": self.calls})

    async def teapot(self, request: web.Request) -> web.Response:
        raise Reply.json({"detail": "short and stout"}, status=418)


def create_echo(ctx: SandboxContext, settings: Mapping[str, Any]) -> EchoEmulator:
    return EchoEmulator(ctx, settings)


@pytest.fixture
def echo_registered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(REGISTRY, "echo", ProviderSpec("echo", adapter="", emulator=f"{__name__}:create_echo"))


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def _config(**kw: Any) -> SandboxConfig:
    return SandboxConfig(**{"time_scale": 0.002, "n_companies": 400, "providers": ("echo",), **kw})


# -- limiters ---------------------------------------------------------------------------------


def test_sliding_window_admits_limit_then_reports_exact_delay() -> None:
    clock = ManualClock()
    limiter = SlidingWindowLog(clock, limit=3, window_s=60)
    for t in (0.0, 10.0, 20.0):
        clock.t = t
        assert limiter.acquire("org1") is None
    clock.t = 25.0
    assert limiter.acquire("org1") == pytest.approx(35.0)  # the t=0 request leaves at 60
    assert limiter.acquire("org2") is None  # keys are independent
    clock.t = 60.0
    assert limiter.acquire("org1") is None
    assert limiter.acquire("org1") == pytest.approx(10.0)  # next to leave: t=10 at 70
    assert limiter.in_window("org1") == 3


def test_retry_after_header_rounds_up_to_whole_seconds() -> None:
    assert [retry_after_header(x) for x in (0.0, 0.2, 3.0, 59.01)] == ["1", "1", "3", "60"]


def test_token_bucket_allows_burst_then_refills_at_rate() -> None:
    clock = ManualClock()
    bucket = TokenBucket(clock, rate=5, burst=25)
    assert all(bucket.acquire("k") is None for _ in range(25))
    assert bucket.acquire("k") == pytest.approx(0.2)
    clock.t = 0.2
    assert bucket.acquire("k") is None
    assert bucket.acquire("k") == pytest.approx(0.2)
    with pytest.raises(ValueError):
        TokenBucket(clock, rate=0, burst=1)


# -- fault rules, keys, stats -----------------------------------------------------------------


def test_first_n_rule_fires_for_exactly_n_matching_calls() -> None:
    injector = FaultInjector(7, (FaultRule("p", endpoint="POST /a", first_n=2),))
    assert injector.draw_http("p", "GET /b") is None  # not matching: not counted
    fired = [injector.draw_http("p", "POST /a") is not None for _ in range(4)]
    assert fired == [True, True, False, False]
    assert injector.draw_http("other", "POST /a") is None


def test_wildcard_rules_skip_internal_routes_and_rates_are_seeded() -> None:
    rule = FaultRule("p", rate=0.5)
    assert not rule.matches("p", "GET /_sandbox/stats")
    assert not rule.matches("p", "GET /_storage/{path}")
    assert FaultRule("p", endpoint="GET /_storage/{path}").matches("p", "GET /_storage/{path}")
    a, b = FaultInjector(7, (rule,)), FaultInjector(7, (rule,))
    seq_a = [a.draw_http("p", "GET /x") is not None for _ in range(200)]
    seq_b = [b.draw_http("p", "GET /x") is not None for _ in range(200)]
    assert seq_a == seq_b and 60 < sum(seq_a) < 140


def test_job_failure_rules_are_separate_from_http_faults() -> None:
    injector = FaultInjector(1, (FaultRule("p", kind="job_failure", first_n=1),))
    assert injector.draw_http("p", "POST /start") is None
    assert injector.job_fails("p", "POST /start") and not injector.job_fails("p", "POST /start")
    injector.clear()
    assert injector.rules == ()


def test_key_registry_maps_keys_to_orgs_per_provider() -> None:
    keys = KeyRegistry()
    assert keys.org_for("sixtyfour", keys.key_for("sixtyfour", 3)) == 3
    assert keys.org_for("orbit", keys.key_for("sixtyfour")) is None
    for bad in (None, "", "sandbox-sixtyfour-key-0", "sandbox-sixtyfour-key-x"):
        assert keys.org_for("sixtyfour", bad) is None
    keys.register("sixtyfour", "custom", 9)
    assert keys.org_for("sixtyfour", "custom") == 9


def test_stats_document_shape() -> None:
    stats = StatsRecorder("p")
    stats.count_call("POST /a")
    stats.count_status("POST /a", 200)
    stats.count_call("POST /a")
    stats.count_status("POST /a", 429)
    stats.count_rate_limited("POST /a")
    stats.add("jobs_started")
    stats.add("credits_charged", 1.5)
    doc = stats.snapshot()
    assert doc["endpoints"] == {"POST /a": {"calls": 2, "statuses": {"200": 1, "429": 1},
                                            "rate_limited": 1, "faults_injected": 0}}
    assert (doc["provider"], doc["jobs_started"], doc["credits_charged"]) == ("p", 1, 1.5)


# -- the runner and the shared middleware over sockets ----------------------------------------


@pytest.mark.usefixtures("echo_registered")
async def test_sandbox_serves_each_provider_on_its_own_port(
    session: aiohttp.ClientSession,
) -> None:
    config = _config(providers=("echo", "sixtyfour"))
    async with Sandbox(config) as sandbox:
        assert set(sandbox.base_urls) == {"echo", "sixtyfour"}
        assert len(set(sandbox.base_urls.values())) == 2
        assert sandbox.api_keys["echo"] == sandbox.api_key("echo") == "sandbox-echo-key-1"
        assert sandbox.api_key("echo", 2) == "sandbox-echo-key-2"
        assert len(sandbox.world.companies) == 400
        for name, url in sandbox.base_urls.items():
            async with session.get(f"{url}/_sandbox/stats") as resp:
                assert resp.status == 200 and (await resp.json())["provider"] == name
        assert set(sandbox.stats()["providers"]) == {"echo", "sixtyfour"}
        assert isinstance(sandbox.emulator("echo"), EchoEmulator)


async def test_unknown_provider_and_unstarted_world_are_errors() -> None:
    with pytest.raises(ValueError, match="no sandbox emulator"):
        async with Sandbox(SandboxConfig(providers=("nope",))):
            pass
    with pytest.raises(RuntimeError):
        _ = Sandbox().world


@pytest.mark.usefixtures("echo_registered")
async def test_middleware_counts_routes_statuses_and_unmatched(
    session: aiohttp.ClientSession,
) -> None:
    async with Sandbox(_config(settings={"echo": {"x": 1}})) as sandbox:
        url = sandbox.base_urls["echo"]
        for name in ("a", "b"):
            async with session.post(f"{url}/echo/{name}") as resp:
                assert resp.status == 200
        async with session.get(f"{url}/teapot") as resp:
            assert resp.status == 418 and await resp.json() == {"detail": "short and stout"}
        async with session.get(f"{url}/nowhere") as resp:
            assert resp.status == 404
        endpoints = sandbox.stats()["providers"]["echo"]["endpoints"]
        assert sandbox.emulator("echo").settings == {"x": 1}
    assert endpoints["POST /echo/{name}"]["calls"] == 2
    assert endpoints["GET /teapot"]["statuses"] == {"418": 1}
    assert endpoints["GET <unmatched>"]["statuses"] == {"404": 1}


@pytest.mark.usefixtures("echo_registered")
async def test_http_fault_kinds_over_sockets(session: aiohttp.ClientSession) -> None:
    echo = "POST /echo/{name}"
    faults = (
        FaultRule("echo", endpoint=echo, kind="http_5xx", first_n=1, status=502,
                  retry_after_s=None),
        FaultRule("echo", endpoint=echo, kind="http_5xx", first_n=1, after_handler=True),
        FaultRule("echo", endpoint=echo, kind="malformed_json", first_n=1),
        FaultRule("echo", endpoint=echo, kind="reset", first_n=1),
    )
    async with Sandbox(_config(faults=faults)) as sandbox:
        url, emulator = f"{sandbox.base_urls['echo']}/echo/x", sandbox.emulator("echo")
        async with session.post(url) as resp:
            assert resp.status == 502 and "Retry-After" not in resp.headers
        assert emulator.calls == 0
        async with session.post(url) as resp:
            assert resp.status == 503 and resp.headers["Retry-After"] == "1"
        assert emulator.calls == 1  # after_handler: the side effect happened, the answer did not
        async with session.post(url) as resp:
            assert resp.status == 200
            with pytest.raises(orjson.JSONDecodeError):
                orjson.loads(await resp.read())
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.post(url) as resp:
                await resp.read()
        async with session.post(url) as resp:
            assert resp.status == 200 and (await resp.json())["calls"] == 3
        endpoint = sandbox.stats()["providers"]["echo"]["endpoints"][echo]
    assert endpoint["faults_injected"] == 4 and endpoint["calls"] == 5
    assert endpoint["statuses"] == {"200": 2, "502": 1, "503": 1, "reset": 1}


@pytest.mark.usefixtures("echo_registered")
async def test_slow_fault_waits_on_the_sandbox_clock(session: aiohttp.ClientSession) -> None:
    clock = ManualClock()
    rule = FaultRule("echo", kind="slow", first_n=1, delay_s=42)
    async with Sandbox(_config(faults=(rule,)), clock=clock) as sandbox:
        assert sandbox.clock is clock
        async with session.post(f"{sandbox.base_urls['echo']}/echo/x") as resp:
            assert resp.status == 200
    assert clock.t == 42


@pytest.mark.usefixtures("echo_registered")
async def test_serve_runs_until_cancelled(session: aiohttp.ClientSession) -> None:
    ready: asyncio.Queue[SandboxConnection] = asyncio.Queue()
    task = asyncio.create_task(serve(_config(), on_ready=ready.put_nowait))
    urls = (await asyncio.wait_for(ready.get(), timeout=10)).base_urls
    async with session.get(f"{urls['echo']}/_sandbox/stats") as resp:
        assert resp.status == 200
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    with pytest.raises(aiohttp.ClientConnectionError):
        async with session.get(f"{urls['echo']}/_sandbox/stats"):
            pass


@pytest.mark.usefixtures("echo_registered")
async def test_connection_file_lets_another_process_share_urls_keys_and_virtual_time(
        tmp_path: Path, session: aiohttp.ClientSession) -> None:
    async with Sandbox(_config(time_scale=0.01)) as sandbox:
        await asyncio.sleep(0.05)  # the sandbox's virtual clock has advanced ~5 s
        path = tmp_path / "sandbox.json"
        sandbox.connection().write(path)
        attached = AttachedSandbox(SandboxConnection.read(path))
        assert attached.base_urls == sandbox.base_urls and attached.api_keys == sandbox.api_keys
        assert attached.in_process is False and sandbox.in_process is True
        assert attached.clock.scale == 0.01
        # a clock anchored at the sandbox's epoch reads the same virtual time (not a fresh start at
        # 0): bracketed by two reads of the sandbox's clock, so a pause between the reads (a busy
        # machine; 1 ms of it is 0.1 virtual s here) cannot fail it; 0.5 s of virtual slack is only
        # for the epoch's rounding
        before, seen, after = sandbox.clock.now(), attached.clock.now(), sandbox.clock.now()
        slack = timedelta(seconds=0.5)
        assert before - slack <= seen <= after + slack, (before, seen, after)
        assert attached.clock.monotonic() >= 5.0  # the sandbox had run ~5 virtual s: not a fresh clock
        async with session.get(f"{attached.base_urls['echo']}/_sandbox/stats") as resp:
            assert resp.status == 200


def test_connection_file_errors_name_the_file_and_the_fix(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(ValueError, match="sandbox serve --connection-file"):
        SandboxConnection.read(missing)
    broken = tmp_path / "broken.json"
    broken.write_text('{"base_urls": {}}')
    with pytest.raises(ValueError, match="not a sandbox connection file: KeyError"):
        SandboxConnection.read(broken)
