"""Exact request sequences of the Extruct adapter through the real core (aioresponses).

The mocks match paths loosely (regexes) so that each test reads as the provider's answers in turn;
``in_order`` then pins down every request the adapter sent, in order, with its exact query
(``offset``/``limit``: parameters are listed sorted by name).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses
from yarl import URL

from aggregator.models import Criterion, SearchRequest
from providers.extruct.adapter import ExtructAdapter
from tests.fakes import aioresponses_compat
from tests.harness import Harness, bodies, calls, in_order

BASE = "https://api.extruct.test"
KEY = "ext-canary-77"
TASKS = f"{BASE}/v1/discovery_tasks"
LIST = re.compile(rf"^{re.escape(TASKS)}\?.*$")
TASK = f"{TASKS}/t-1"
RESULTS = re.compile(rf"^{re.escape(TASK)}/results\?.*$")
RESUME = f"{TASK}/resume"
CREATE, LISTED, POLL, RESUMED = ("POST /v1/discovery_tasks", "GET /v1/discovery_tasks?limit=50&offset=0",
                                 "GET /v1/discovery_tasks/t-1", "POST /v1/discovery_tasks/t-1/resume")
QUERY = "vertical SaaS companies serving freight forwarding"


def task(status: str = "created", *, id: str = "t-1", query: str = QUERY, desired: int = 10,
         exhausted: bool = False, qualified: int = 0,
         created_at: str = "2026-11-21T00:00:05Z") -> dict[str, Any]:
    return {"id": id, "created_at": created_at, "status": status, "query": query,
            "desired_num_results": desired, "is_exhausted": exhausted, "num_results_discovered": 50,
            "num_results_enriched": 40, "num_results_evaluated": 30, "num_results": qualified,
            "criteria": [{"key": "fit", "name": "Fit", "criterion": "Serves freight forwarders."}]}


def result(rid: str, relevance: int = 90) -> dict[str, Any]:
    return {"id": rid, "task_id": "t-1", "company_name": rid.title(), "company_website": f"{rid}.com",
            "relevance": relevance, "scores": {"fit": {"grade": 5, "explanation": "Yes.", "sources": []}}}


def results_at(offset: int) -> str:
    return f"GET /v1/discovery_tasks/t-1/results?limit=2&offset={offset}"  # page_size 2


def page(status: str, rows: list[dict[str, Any]], **kwargs: Any) -> dict[str, Any]:
    return {**task(status, **kwargs), "results": rows}


@pytest.fixture(autouse=True)
def _compat(monkeypatch: pytest.MonkeyPatch) -> None:
    aioresponses_compat(monkeypatch)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with aiohttp.ClientSession() as session:
        yield Harness(session, ExtructAdapter, BASE, KEY, page_size=2)


async def test_a_lost_create_is_adopted_from_the_task_list_not_created_twice(harness: Harness) -> None:
    other = task(id="someone-else", query="fintech in Berlin")
    stale = task(id="old-run", created_at="2026-01-01T00:00:00Z")  # same query, long before us
    with aioresponses() as mock:
        sent = in_order(mock, BASE)
        mock.post(TASKS, exception=aiohttp.ServerDisconnectedError())
        mock.get(LIST, payload=[other, task(), stale])
        mock.get(TASK, payload=task("done", exhausted=True, qualified=1), repeat=True)
        mock.get(RESULTS, payload=page("done", [result("acme")]), repeat=True)
        outcome = await harness.runner(SearchRequest(query=QUERY, mode="company", max_results=10)).run()
        creates = bodies(mock, "POST", TASKS)

    assert outcome.status == "found" and outcome.job_id == "t-1" and outcome.records == 1
    assert len(creates) == 1  # adopted, not re-created
    assert sent == [CREATE, LISTED, POLL, results_at(0)]  # the first 50 tasks listed once, then t-1 polled and read
    assert harness.store.records[("run-1", "extruct")].job is not None


async def test_when_the_lost_create_made_nothing_it_is_sent_again(harness: Harness) -> None:
    with aioresponses() as mock:
        sent = in_order(mock, BASE)
        mock.post(TASKS, status=502, payload={"detail": "Bad gateway"})
        mock.get(LIST, payload=[])
        mock.post(TASKS, payload=task())
        mock.get(TASK, payload=task("done", exhausted=True), repeat=True)
        mock.get(RESULTS, payload=page("done", []), repeat=True)
        outcome = await harness.runner(SearchRequest(query=QUERY, mode="company", max_results=10)).run()
        creates = bodies(mock, "POST", TASKS)

    assert outcome.status == "no_result" and len(creates) == 2 and creates[0] == creates[1]
    assert sent == [CREATE, LISTED, CREATE, POLL, results_at(0)]  # re-sent only after the list showed nothing


async def test_is_exhausted_while_in_progress_keeps_polling_until_status_is_done(harness: Harness) -> None:
    with aioresponses() as mock:
        sent = in_order(mock, BASE)
        mock.post(TASKS, payload=task())
        mock.get(TASK, payload=task("in_progress", exhausted=True))
        mock.get(TASK, payload=task("in_progress", exhausted=True))
        mock.get(TASK, payload=task("done", exhausted=True, qualified=1))
        mock.get(RESULTS, payload=page("in_progress", []), repeat=True)
        outcome = await harness.runner(SearchRequest(query=QUERY, mode="company", max_results=10)).run()
        task_polls = mock.requests[("GET", URL(TASK))]

    assert outcome.status == "no_result" and outcome.error is None
    assert len(task_polls) == 3  # it did not stop at the first is_exhausted
    # each poll while running reads the (still empty) results from the top; done: one last read
    assert sent == [CREATE, POLL, results_at(0), POLL, results_at(0), POLL, results_at(0)]


async def test_results_streamed_mid_run_are_not_duplicated_by_the_final_pass(harness: Harness) -> None:
    with aioresponses() as mock:
        sent = in_order(mock, BASE)
        mock.post(TASKS, payload=task())
        mock.get(TASK, payload=task("in_progress", qualified=2))
        mock.get(TASK, payload=task("done", qualified=4, exhausted=True))
        # mid-run (page_size 2): a, b
        mock.get(RESULTS, payload=page("in_progress", [result("a", 80), result("b", 70)]))
        # final pass from the top: c and d qualified later, c ranks above a
        mock.get(RESULTS, payload=page("done", [result("c", 95), result("a", 80)]))
        mock.get(RESULTS, payload=page("done", [result("b", 70), result("d", 60)]))
        mock.get(RESULTS, payload=page("done", []))
        outcome = await harness.runner(SearchRequest(query=QUERY, mode="company", max_results=10)).run()

    hits = [h.provider_record_id for e in harness.events if hasattr(e, "hits") for h in e.hits]
    assert sorted(hits) == ["a", "b", "c", "d"] and hits[:2] == ["a", "b"]  # a, b streamed first
    assert outcome.records == 4 and outcome.credits == 4.0
    assert outcome.time_to_first_result_s is not None
    # mid-run: one page; once done, the final pass reads from offset 0 again, page by page to the end
    assert sent == [CREATE, POLL, results_at(0), POLL, results_at(0), results_at(2), results_at(4)]


async def test_resume_fills_up_to_max_results_and_stops_at_the_250_cap(harness: Harness) -> None:
    fit = Criterion(key="fit", name="Fit", criterion="Serves freight forwarders.")
    request = SearchRequest(query=QUERY, mode="company", max_results=400, options={"extruct": {"criteria": (fit,)}})
    rows = [result(f"r{i}") for i in range(3)]
    with aioresponses() as mock:
        sent = in_order(mock, BASE)
        mock.post(TASKS, payload=task(desired=250 - 50))  # server echoed a smaller target
        mock.get(TASK, payload=task("done", desired=200, qualified=3))
        mock.get(RESULTS, payload=page("done", rows[:2], desired=200))
        mock.get(RESULTS, payload=page("done", rows[2:], desired=200))
        mock.post(RESUME, payload=task("in_progress", desired=250))
        mock.get(TASK, payload=task("done", desired=250, qualified=3))
        mock.get(RESULTS, payload=page("done", [], desired=250), repeat=True)
        outcome = await harness.runner(request).run()
        creates, resumes = bodies(mock, "POST", TASKS), bodies(mock, "POST", RESUME)

    assert creates[0]["desired_num_results"] == 250  # min(max_results, cap)
    assert creates[0]["criteria"] == [fit.model_dump()]
    assert resumes == [{"desired_new_results": 50}]  # 250 - 200, never past the cap
    assert outcome.records == 3 and outcome.status == "found"
    # the 200 results read to the end, the task resumed by the 50 left under the cap, then read again
    assert sent == [CREATE, POLL, results_at(0), results_at(2), RESUMED, POLL, results_at(0)]


async def test_an_exhausted_task_is_not_resumed(harness: Harness) -> None:
    with aioresponses() as mock:
        sent = in_order(mock, BASE)
        mock.post(TASKS, payload=task())
        mock.get(TASK, payload=task("done", exhausted=True, qualified=1))
        mock.get(RESULTS, payload=page("done", [result("a")]), repeat=True)
        outcome = await harness.runner(SearchRequest(query=QUERY, mode="company", max_results=10)).run()
        resumes = bodies(mock, "POST", RESUME)

    assert outcome.records == 1 and resumes == []
    assert sent == [CREATE, POLL, results_at(0)]


async def test_the_token_is_sent_as_a_bearer_header(harness: Harness) -> None:
    with aioresponses() as mock:
        mock.post(TASKS, status=401, payload={"detail": "Could not validate credentials"})
        outcome = await harness.runner(SearchRequest(query=QUERY, mode="company", max_results=10)).run()
        (call,) = calls(mock, "POST", "/v1/discovery_tasks")

    assert call.kwargs["headers"]["Authorization"] == f"Bearer {KEY}"
    assert outcome.status == "failed" and outcome.error and outcome.error.type == "AuthError"
