"""A 429 pauses every request of its bucket for its Retry-After, not only the retried one.

Killed mutation: ``ProviderHTTPClient._send`` no longer calls ``self.limiter.pause`` on a
``RateLimitedError`` (aggregator/http.py). Then only the rate-limited request waits (its retry
honours Retry-After) while the other jobs sharing the bucket keep sending into the limit.

Request sequence (aioresponses, :class:`~tests.fakes.VirtualClock`): two or three jobs of one
provider share its client; one job's poll draws a 429 with ``Retry-After: R`` at virtual second
t; no request of that bucket is sent in (t, t+R), and the held ones go at exactly t+R.

Sandbox (real emulators, time-scaled): concurrent searches on one Aggregator; a 429 is injected
on one status poll. Requests already on the wire when the 429 was answered may still arrive
after it (at most one per other job: a job's requests are sequential); nothing else of that
bucket reaches the emulator before t+R. Without the pause the other jobs keep polling.

Extruct documents no rate limit, so its client has no bucket to pause by default (see the
report of issue 12); with a bucket configured (``rate_limits``) the guarantee holds as for the
others, which is what its tests pin.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from aggregator.core import Aggregator
from aggregator.models import SearchReport, SearchRequest
from providers.extruct.adapter import ExtructAdapter
from providers.orbit.adapter import OrbitAdapter
from providers.sandbox.faults import FaultRule
from providers.sandbox.stats import RecordedRequest
from providers.sixtyfour.adapter import SixtyfourAdapter
from tests.fakes import VirtualClock, aioresponses_compat, virtual_time
from tests.guarantees.wiring import RequestLog, Sent, Wired

PEOPLE = "VP of Engineering at Series B SaaS startups in New York"
COMPANIES = "vertical SaaS companies serving freight forwarding"
EXTRUCT_BUCKET = [{"name": "api", "endpoints": ["*"], "limit": 600, "window_s": 60.0}]


def quiet_between(sent: list[Sent], start_s: float, end_s: float) -> list[Sent]:
    """Requests sent strictly between ``start_s`` and ``end_s`` (virtual seconds)."""
    return [s for s in sent if start_s < s.at_s < end_s]


async def run_staggered(wired: Wired, request: SearchRequest, clock: VirtualClock,
                        starts_s: dict[str, float]) -> dict[str, Any]:
    """Run one job per ``run_id`` in ``starts_s``, each starting at its virtual second."""

    async def job(run_id: str, at_s: float) -> Any:
        await clock.sleep(at_s)
        return await wired.runner(request, run_id=run_id).run()

    outcomes = await asyncio.gather(*(job(run_id, at) for run_id, at in starts_s.items()))
    return dict(zip(starts_s, outcomes, strict=True))


# -- request sequence ----------------------------------------------------------------------------

@virtual_time
async def test_sixtyfour_a_429_on_one_poll_holds_every_request_of_the_general_bucket(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aioresponses_compat(monkeypatch)
    base = "https://api.sixtyfour.test"
    clock = VirtualClock()
    async with aiohttp.ClientSession() as session:
        wired = Wired(session, SixtyfourAdapter, base, "sk-test", clock=clock)
        with aioresponses() as mock:
            log = RequestLog(mock, clock)
            for task in ("t-a", "t-b"):
                log.reply("POST", f"{base}/search/start-deep-search",
                          payload={"task_id": task, "status": "queued", "message": "ok"})
            # A polls at t=10 and draws a 429: the general bucket (every endpoint) pauses 30 s
            log.reply("GET", f"{base}/search/status/t-a", status=429, headers={"Retry-After": "30"},
                      payload={"detail": "Rate limit exceeded"})
            for task in ("t-a", "t-b"):
                log.reply("GET", f"{base}/search/status/{task}", repeat=True, payload={
                    "task_id": task, "status": "completed", "search_id": f"s-{task}", "total_results": 0})
            log.reply("POST", f"{base}/search/query", repeat=True,
                      payload={"total_results": 0, "has_more": False, "results": []})
            outcomes = await run_staggered(wired, SearchRequest(query=PEOPLE, max_results=5), clock,
                                           {"a": 0.0, "b": 5.0})

    assert all(o.status == "no_result" and o.error is None for o in outcomes.values()), outcomes
    (limited,) = [s for s in log.sent if s.status == 429]
    assert limited.at_s == 10.0
    assert quiet_between(log.sent, 10.0, 40.0) == []  # B's poll was due at 15: held, not sent
    held = {s.url.rsplit("/", 1)[-1] for s in log.sent if s.at_s == 40.0 and "/search/status/" in s.url}
    assert held == {"t-a", "t-b"}  # A's retry and B's held poll, both exactly at t + Retry-After


@virtual_time
async def test_orbit_a_429_on_a_poll_holds_the_status_bucket_and_only_it(monkeypatch: pytest.MonkeyPatch) -> None:
    aioresponses_compat(monkeypatch)
    base = "https://api.orbit.test"
    start_url = f"{base}/v2/developer/deep-search"
    clock = VirtualClock()

    def started(_: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        return 202, {"request_id": body["requestId"], "run_id": "r", "status": "started"}, {}

    def completed(url: str, _: Any) -> tuple[int, Any, dict[str, str]]:
        rid = url.rsplit("/", 1)[-1]
        return 200, {"request_id": rid, "run_id": "r", "status": "completed",
                     "result": {"candidate_profile_ids": []}}, {}

    async with aiohttp.ClientSession() as session:
        wired = Wired(session, OrbitAdapter, base, "sk_orb_test", clock=clock)
        with aioresponses() as mock:
            log = RequestLog(mock, clock)
            log.reply("POST", start_url, answer=started, repeat=True)
            status_url = re.compile(rf"^{re.escape(start_url)}/.+$")
            log.reply("GET", status_url, status=429, headers={"Retry-After": "20"},
                      payload={"status": "failed", "error": {"code": "developer_api_key_rate_limited"}})
            log.reply("GET", status_url, answer=completed, repeat=True)
            # A polls at 3 and draws the 429; B's poll (due at 4) and C's (due at 13) are held until
            # 23, while C's start at 10 goes at once: the start bucket is not paused
            outcomes = await run_staggered(wired, SearchRequest(query=PEOPLE, max_results=5), clock,
                                           {"a": 0.0, "b": 1.0, "c": 10.0})

    assert all(o.status == "no_result" and o.error is None for o in outcomes.values()), outcomes
    (limited,) = [s for s in log.sent if s.status == 429]
    assert limited.at_s == 3.0
    polls = [s for s in log.of("GET") if s is not limited]
    assert sorted(s.at_s for s in polls) == [23.0, 23.0, 23.0]
    assert [s.at_s for s in log.of("POST")] == [0.0, 1.0, 10.0]


@virtual_time
async def test_extruct_with_a_configured_bucket_a_429_holds_every_request_of_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    aioresponses_compat(monkeypatch)
    base = "https://api.extruct.test"
    tasks_url = f"{base}/v1/discovery_tasks"
    clock = VirtualClock()

    def task(task_id: str, status: str) -> dict[str, Any]:
        return {"id": task_id, "created_at": "2026-11-21T00:00:00Z", "status": status, "query": COMPANIES,
                "desired_num_results": 5, "is_exhausted": status == "done", "num_results_discovered": 9,
                "num_results_enriched": 9, "num_results_evaluated": 9, "num_results": 0, "criteria": []}

    async with aiohttp.ClientSession() as session:
        wired = Wired(session, ExtructAdapter, base, "ext-test", clock=clock, rate_limits=EXTRUCT_BUCKET)
        with aioresponses() as mock:
            log = RequestLog(mock, clock)
            for task_id in ("t-a", "t-b"):
                log.reply("POST", tasks_url, payload=task(task_id, "created"))
            log.reply("GET", f"{tasks_url}/t-a", status=429, headers={"Retry-After": "30"},
                      payload={"detail": "Rate limit exceeded"})
            for task_id in ("t-a", "t-b"):
                log.reply("GET", f"{tasks_url}/{task_id}", payload=task(task_id, "done"), repeat=True)
                log.reply("GET", re.compile(rf"^{re.escape(tasks_url)}/{task_id}/results\?.*$"),
                          payload={**task(task_id, "done"), "results": []}, repeat=True)
            outcomes = await run_staggered(wired, SearchRequest(query=COMPANIES, mode="company", max_results=5),
                                           clock, {"a": 0.0, "b": 5.0})

    assert all(o.status == "no_result" and o.error is None for o in outcomes.values()), outcomes
    (limited,) = [s for s in log.sent if s.status == 429]
    assert limited.at_s == 15.0
    assert quiet_between(log.sent, 15.0, 45.0) == []  # B's poll was due at 20
    held = {s.url.rsplit("/", 1)[-1] for s in log.sent if s.at_s == 45.0 and s.url.endswith(("t-a", "t-b"))}
    assert held == {"t-a", "t-b"}


# -- sandbox ---------------------------------------------------------------------------------------

def assert_paused(requests: list[RecordedRequest], routes: set[str], retry_after_s: float, jobs: int) -> None:
    """After the one 429 (at t), only requests already in flight (one per other job at most: a job's
    requests are sequential) reach the emulator on ``routes`` before t + Retry-After.

    Causal, not timed: a request sent after the client saw the 429 waits out the pause, whatever
    the machine's load. (How many requests a job sends in the window without the pause does
    depend on the load; on a quiet machine it is several per job.)"""
    (limited,) = [r for r in requests if r.status == 429]
    t = limited.received_at_s
    during = [r for r in requests if r.route in routes and t < r.received_at_s < t + retry_after_s]
    assert len(during) <= jobs - 1, (
        f"{len(during)} requests reached the emulator within the {retry_after_s} s pause after the 429 at "
        f"{t:.2f}: {[(r.route, round(r.received_at_s, 2)) for r in during]}")
    later = [r for r in requests if r.route in routes and r.received_at_s >= t + retry_after_s]
    assert later, "nothing ran on after the pause: the test proved nothing"


def assert_delivered(reports: list[SearchReport], provider: str) -> None:
    for report in reports:
        outcome = report.outcome(provider)
        assert outcome.status in ("found", "no_result") and outcome.error is None, outcome


async def searches(agg: Aggregator, provider: str, n: int, query: str, **fields: Any) -> list[SearchReport]:
    return list(await asyncio.gather(*(agg.search(query, providers=(provider,), **fields) for _ in range(n))))


async def test_sixtyfour_on_the_sandbox_a_429_pauses_every_job_of_the_bucket(make_aggregator: Any) -> None:
    status = "GET /search/status/{task_id}"
    agg = await make_aggregator(
        n_companies=800, emulator={"duration_min_s": 200, "duration_max_s": 200},
        faults=(FaultRule(provider="sixtyfour", endpoint=status, kind="http_429", first_n=1, retry_after_s=60),))
    reports = await searches(agg, "sixtyfour", 3, PEOPLE, max_results=5)

    assert_delivered(reports, "sixtyfour")
    every_route = {r.route for r in agg.sandbox.requests("sixtyfour")}  # the general bucket covers all
    assert_paused(agg.sandbox.requests("sixtyfour"), every_route, 60.0, jobs=3)


async def test_orbit_on_the_sandbox_a_429_pauses_every_job_of_the_bucket(make_aggregator: Any) -> None:
    status = "GET /v2/developer/deep-search/{requestId}"
    agg = await make_aggregator(
        providers=("orbit",), n_companies=800,
        faults=(FaultRule(provider="orbit", endpoint=status, kind="http_429", first_n=1, retry_after_s=30),))
    reports = await searches(agg, "orbit", 3, PEOPLE, max_results=50)

    assert_delivered(reports, "orbit")
    assert_paused(agg.sandbox.requests("orbit"), {status}, 30.0, jobs=3)


async def test_extruct_on_the_sandbox_a_429_pauses_every_job_of_a_configured_bucket(make_aggregator: Any) -> None:
    task = "GET /v1/discovery_tasks/{task_id}"
    agg = await make_aggregator(
        providers=("extruct",), n_companies=1500,
        emulators={"extruct": {"evaluate_rate_per_min": 6.0}},  # tasks run for minutes: polls go on
        overrides={"providers": {"extruct": {"rate_limits": EXTRUCT_BUCKET}}},
        faults=(FaultRule(provider="extruct", endpoint=task, kind="http_429", first_n=1, retry_after_s=60),))
    reports = await searches(agg, "extruct", 3, COMPANIES, mode="company", max_results=10)

    assert_delivered(reports, "extruct")
    every_route = {r.route for r in agg.sandbox.requests("extruct")}
    assert_paused(agg.sandbox.requests("extruct"), every_route, 60.0, jobs=3)
