"""Extruct: a task that reports ``is_exhausted: true`` while ``in_progress`` is polled until ``done``.

Contract extruct §3.2: completion is decided by ``status`` alone; ``is_exhausted`` (the candidate
pool is depleted) can be true while evaluation still runs, and results qualified after that
moment would be lost by a client that stopped there.

Killed mutation: ``ExtructAdapter.poll`` returns ``Ready`` as soon as ``is_exhausted`` is true
(providers/extruct/adapter.py). The job then reads results as if the task were finished, but a
running task never yields a final page, so it reads forever. These tests fail on that with an
assertion, not a hang: each results read costs virtual time (the request-sequence test's mock
advances its clock; the sandbox's clock runs on its own), so the run's deadline ends it.
"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import aiohttp
from aioresponses import aioresponses

from aggregator.models import SearchRequest
from providers.extruct.adapter import ExtructAdapter
from tests.fakes import FakeClock
from tests.guarantees.wiring import RequestLog, Wired

BASE = "https://api.extruct.test"
TASK_URL = f"{BASE}/v1/discovery_tasks/t-1"
QUERY = "vertical SaaS companies serving freight forwarding"
READ_S = 5.0  # virtual seconds one results read takes (the mock advances the clock)


def task(status: str, *, exhausted: bool, qualified: int = 0) -> dict[str, Any]:
    return {"id": "t-1", "created_at": "2026-11-21T00:00:00Z", "status": status, "query": QUERY,
            "desired_num_results": 10, "is_exhausted": exhausted, "num_results_discovered": 40,
            "num_results_enriched": 40, "num_results_evaluated": 30, "num_results": qualified, "criteria": []}


def result(rid: str) -> dict[str, Any]:
    return {"id": rid, "task_id": "t-1", "company_name": rid.title(), "company_website": f"{rid}.com",
            "relevance": 90, "scores": {}}


async def test_an_exhausted_task_still_in_progress_is_polled_until_done(session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    wired = Wired(session, ExtructAdapter, BASE, "ext-test", clock=clock, page_size=2)
    with aioresponses() as mock:
        log = RequestLog(mock, clock)

        def results(_: str, __: Any) -> tuple[int, Any, dict[str, str]]:
            clock.t += READ_S
            finished = len(task_polls(log)) >= 3  # the task said "done"
            rows = [result("late-qualified")] if finished else []  # qualified after the pool ran dry
            doc = task("done" if finished else "in_progress", exhausted=True, qualified=len(rows))
            return 200, {**doc, "results": rows}, {}

        log.reply("POST", f"{BASE}/v1/discovery_tasks", payload=task("created", exhausted=False))
        log.reply("GET", TASK_URL, payload=task("in_progress", exhausted=True))
        log.reply("GET", TASK_URL, payload=task("in_progress", exhausted=True))
        log.reply("GET", TASK_URL, payload=task("done", exhausted=True, qualified=1), repeat=True)
        log.reply("GET", re.compile(rf"^{re.escape(TASK_URL)}/results\?.*$"), answer=results, repeat=True)
        outcome = await wired.runner(SearchRequest(query=QUERY, mode="company", max_results=10),
                                     deadline_s=600.0).run()

    assert outcome.error is None, outcome.error
    assert outcome.status == "found" and outcome.records == 1  # the result qualified after is_exhausted
    assert len(task_polls(log)) == 3  # polled past both "in_progress, exhausted" answers


def task_polls(log: RequestLog) -> list[Any]:
    return [s for s in log.sent if s.method == "GET" and s.url == TASK_URL]


async def test_on_the_sandbox_an_exhausted_task_is_polled_until_done_and_nothing_is_lost(
    make_aggregator: Any,
) -> None:
    # a small pool screened in seconds, evaluated at a crawl: in_progress with is_exhausted true
    # from the first poll on, until the test ends the task after the client polled it twice so
    slow_evaluation = {"max_pool_size": 60, "discover_rate_per_min": 600.0, "enrich_rate_per_min": 600.0,
                       "evaluate_rate_per_min": 0.01}
    agg = await make_aggregator(providers=("extruct",), n_companies=1500, emulators={"extruct": slow_evaluation})
    emulator = agg.sandbox.emulator("extruct")
    seen: list[tuple[str, bool]] = []  # (status, is_exhausted) of the task at each poll before it ended

    async def end_the_task_after_two_exhausted_polls() -> None:
        while len(seen) < 2:
            await agg.clock.sleep(1.0)
            tasks = emulator.list_tasks()
            polls = agg.sandbox.requests("extruct", "GET /v1/discovery_tasks/{task_id}")
            seen[:] = [(tasks[0].status(p.received_at_s), tasks[0].is_exhausted(p.received_at_s)) for p in polls]
        emulator.force_complete(emulator.list_tasks()[0].task_id)

    ender = asyncio.create_task(end_the_task_after_two_exhausted_polls())
    try:
        report = await agg.search(QUERY, mode="company", max_results=10, providers=("extruct",))
    finally:
        ender.cancel()

    outcome = report.outcome("extruct")
    assert outcome.error is None, outcome.error  # the mutated adapter reads "results" until the deadline
    assert len(seen) >= 2 and set(seen) == {("in_progress", True)}
    (task_state,) = emulator.list_tasks()
    final = {e.result_id for e in task_state.results(emulator.now())}
    assert {h.provider_record_id for r in report.records for h in r.hits} == final  # nothing lost
    assert outcome.records == len(final) > 0
