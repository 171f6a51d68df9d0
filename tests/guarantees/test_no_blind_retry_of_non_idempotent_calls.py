"""A 5xx on a non-idempotent call is never retried blindly: it may have started (and charged) a job.

The only non-idempotent calls are Extruct's (it has no idempotency key, contract extruct §1): the
create (``POST /v1/discovery_tasks``) and the resume (``POST .../resume``). After an ambiguous
create the core lists the org's tasks and adopts the one the lost create made, and creates again
only when there is none; a resume that fails ambiguously ends the job (``partial``), since
repeating it could raise the target twice. Sixtyfour's and Orbit's submits carry their
idempotency key (``search_id``, ``requestId``) and are retried on 5xx by design
(``tests/sixtyfour/test_adapter_requests.py``, ``tests/orbit/test_search_on_sandbox.py``).

Killed mutation: ``error_for_status`` marks every 5xx retryable (aggregator/http.py), so the retry
policy repeats the POST at once, before (or instead of) looking for the job it made.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from aggregator.errors import ProviderServerError
from aggregator.models import SearchRequest
from providers.extruct.adapter import ExtructAdapter
from providers.sandbox.faults import FaultRule
from tests.fakes import FakeClock
from tests.guarantees.wiring import RequestLog, Wired

BASE = "https://api.extruct.test"
TASKS = f"{BASE}/v1/discovery_tasks"
QUERY = "vertical SaaS companies serving freight forwarding"
CREATE, LIST = "POST /v1/discovery_tasks", "GET /v1/discovery_tasks"
RESUME = "POST /v1/discovery_tasks/{task_id}/resume"


def task(status: str, *, desired: int = 10, qualified: int = 0, exhausted: bool = False) -> dict[str, Any]:
    return {"id": "t-1", "created_at": "2026-11-21T00:00:05Z", "status": status, "query": QUERY,
            "desired_num_results": desired, "is_exhausted": exhausted, "num_results_discovered": 50,
            "num_results_enriched": 40, "num_results_evaluated": 30, "num_results": qualified, "criteria": []}


def result(rid: str) -> dict[str, Any]:
    return {"id": rid, "task_id": "t-1", "company_name": rid.title(), "company_website": f"{rid}.com",
            "relevance": 90, "scores": {}}


def steps(log: RequestLog) -> list[str]:
    return [f"{s.method} {s.url.removeprefix(BASE).partition('?')[0]} {s.status}" for s in log.sent]


async def test_a_create_answered_5xx_is_followed_by_a_task_list_check_not_a_second_create(
    session: aiohttp.ClientSession,
) -> None:
    wired = Wired(session, ExtructAdapter, BASE, "ext-test", clock=FakeClock())
    with aioresponses() as mock:
        log = RequestLog(mock, wired.clock)
        log.reply("POST", TASKS, status=502, payload={"detail": "Bad gateway"})
        log.reply("GET", re.compile(rf"^{re.escape(TASKS)}\?.*$"), payload=[], repeat=True)  # it made nothing
        log.reply("POST", TASKS, payload=task("created"))
        log.reply("GET", f"{TASKS}/t-1", payload=task("done", exhausted=True), repeat=True)
        log.reply("GET", re.compile(rf"^{re.escape(TASKS)}/t-1/results\?.*$"), repeat=True,
                  payload={**task("done", exhausted=True), "results": []})
        outcome = await wired.runner(SearchRequest(query=QUERY, mode="company", max_results=10)).run()

    assert steps(log)[:3] == ["POST /v1/discovery_tasks 502", "GET /v1/discovery_tasks 200",
                              "POST /v1/discovery_tasks 200"]
    assert outcome.status == "no_result" and outcome.error is None and outcome.retries == 0


async def test_a_resume_answered_5xx_is_not_repeated(session: aiohttp.ClientSession) -> None:
    wired = Wired(session, ExtructAdapter, BASE, "ext-test", clock=FakeClock(), page_size=5)
    with aioresponses() as mock:
        log = RequestLog(mock, wired.clock)
        log.reply("POST", TASKS, payload=task("created", desired=200))
        log.reply("GET", f"{TASKS}/t-1", payload=task("done", desired=200, qualified=1), repeat=True)
        log.reply("GET", re.compile(rf"^{re.escape(TASKS)}/t-1/results\?.*$"), repeat=True,
                  payload={**task("done", desired=200, qualified=1), "results": [result("acme")]})
        log.reply("POST", f"{TASKS}/t-1/resume", status=503, payload={"detail": "Service unavailable"})
        log.reply("POST", f"{TASKS}/t-1/resume", payload=task("in_progress", desired=250), repeat=True)
        outcome = await wired.runner(SearchRequest(query=QUERY, mode="company", max_results=400)).run()

    assert [s.status for s in log.of("POST", "/resume")] == [503]
    assert outcome.status == "partial" and outcome.records == 1, outcome
    assert outcome.error is not None and outcome.error.type == "ProviderServerError"


async def test_on_the_sandbox_a_create_whose_answer_was_lost_is_adopted_not_made_twice(make_aggregator: Any) -> None:
    lost = FaultRule(provider="extruct", endpoint=CREATE, kind="http_5xx", status=502, first_n=1,
                     after_handler=True)  # the task is created, the answer is a 502
    agg = await make_aggregator(providers=("extruct",), n_companies=1500, faults=(lost,))
    report = await agg.search(QUERY, mode="company", max_results=10, providers=("extruct",))

    outcome = report.outcome("extruct")
    assert outcome.error is None and outcome.status == "found", outcome
    received = agg.sandbox.requests("extruct")
    assert [(r.route, r.status) for r in received[:2]] == [(CREATE, 502), (LIST, 200)]
    assert len(agg.sandbox.requests("extruct", CREATE)) == 1
    (made,) = agg.sandbox.emulator("extruct").list_tasks()
    assert outcome.job_id == made.task_id


async def test_on_the_sandbox_a_resume_answered_5xx_is_not_repeated(make_aggregator: Any) -> None:
    failing = FaultRule(provider="extruct", endpoint=RESUME, kind="http_5xx", status=503, first_n=1,
                        retry_after_s=None)
    agg = await make_aggregator(providers=("extruct",), n_companies=1500, faults=(failing,))
    adapter = agg.adapter("extruct")
    job = await adapter.submit(SearchRequest(query=QUERY, mode="company", max_results=100), "key-1")

    with pytest.raises(ProviderServerError) as raised:
        await adapter.extend(job, 50)
    assert raised.value.status == 503 and not raised.value.retryable
    assert [r.status for r in agg.sandbox.requests("extruct", RESUME)] == [503]
    assert agg.sandbox.emulator("extruct").task(job.job_id).desired_num_results == 100
