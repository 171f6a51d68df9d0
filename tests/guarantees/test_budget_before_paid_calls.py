"""A run's budget is reserved BEFORE each paid call: a call that would exceed it is never sent.

Every paid call of every provider: Sixtyfour's start (when ``credits_per_search`` is set: its
pricing is unpublished), Orbit's start (10) and profile reads (1 each), Extruct's create and
resume (1 per match asked for). The request-sequence tests assert the mock received no such
request; the sandbox tests that the emulator received none (``Sandbox.requests``) and charged
nothing for it.

Killed mutation: ``ProviderHTTPClient.request`` reserves after the call instead of before
(aggregator/http.py): the Sixtyfour and Orbit start tests fail. Orbit reads and Extruct's
create/resume are also guarded in their adapters (through ``ProviderHTTPClient.affordable``: they ask
for no more than the budget covers), so for them the call stays unsent unless both guards go.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
from aioresponses import aioresponses

from aggregator.budget import CreditBudget
from aggregator.models import ProviderOutcome, SearchRequest
from providers.extruct.adapter import ExtructAdapter
from providers.orbit.adapter import OrbitAdapter
from providers.sixtyfour.adapter import SixtyfourAdapter
from tests.fakes import FakeClock
from tests.guarantees.wiring import RequestLog, Wired, run_within_budget

PEOPLE = "VP of Engineering at Series B SaaS startups in New York"
COMPANIES = "vertical SaaS companies serving freight forwarding"
SIXTYFOUR_START = "POST /search/start-deep-search"
ORBIT_START, ORBIT_PROFILE = "POST /v2/developer/deep-search", "GET /v2/developer/profiles/{id}"
EXTRUCT_CREATE, EXTRUCT_RESUME = "POST /v1/discovery_tasks", "POST /v1/discovery_tasks/{task_id}/resume"
CREDITS = "X-Developer-API-Credits-Remaining"


def refused(outcome: ProviderOutcome, budget: CreditBudget, spent: float) -> None:
    assert outcome.error is not None and outcome.error.type == "BudgetExceededError", outcome
    assert budget.spent == spent and budget.reserved == 0


# -- request sequence ----------------------------------------------------------------------------

async def test_sixtyfour_a_start_the_budget_cannot_cover_is_not_sent(session: aiohttp.ClientSession) -> None:
    base = "https://api.sixtyfour.test"
    wired = Wired(session, SixtyfourAdapter, base, "sk-test", clock=FakeClock(), credits_per_search=5.0)
    budget = CreditBudget(3)
    with aioresponses() as mock:
        log = RequestLog(mock, wired.clock)
        log.reply("POST", f"{base}/search/start-deep-search", repeat=True,
                  payload={"task_id": "t-1", "status": "queued", "message": "ok"})
        outcome = await run_within_budget(wired.runner(SearchRequest(query=PEOPLE, max_results=5)), budget)

    assert log.sent == []
    assert outcome.status == "failed"
    refused(outcome, budget, spent=0)


async def test_orbit_a_start_and_then_a_profile_read_the_budget_cannot_cover_are_not_sent(
    session: aiohttp.ClientSession,
) -> None:
    base = "https://api.orbit.test"
    start = f"{base}/v2/developer/deep-search"

    def started(_: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        return 202, {"request_id": body["requestId"], "run_id": "r", "status": "started"}, {CREDITS: "990"}

    for budget_credits, sent_starts in ((9, 0), (10, 1)):  # 9: not the run; 10: the run, no read
        wired = Wired(session, OrbitAdapter, base, "sk_orb_test", clock=FakeClock())
        budget = CreditBudget(budget_credits)
        with aioresponses() as mock:
            log = RequestLog(mock, wired.clock)
            log.reply("POST", start, answer=started, repeat=True)
            log.reply("GET", re.compile(rf"^{re.escape(start)}/.+$"), repeat=True, payload={
                "request_id": "r", "run_id": "r", "status": "completed",
                "result": {"candidate_profile_ids": ["p-a", "p-b"]}})
            log.reply("GET", re.compile(rf"^{re.escape(base)}/v2/developer/profiles/.+$"), repeat=True,
                      payload={"status": "success", "payload": {"id": "p-a"}}, headers={CREDITS: "989"})
            outcome = await run_within_budget(wired.runner(SearchRequest(query=PEOPLE, max_results=5)), budget)

        assert len(log.of("POST")) == sent_starts
        assert log.of("GET", "/profiles/") == []
        refused(outcome, budget, spent=10 * sent_starts)


def extruct_task(status: str, desired: int, qualified: int = 0) -> dict[str, Any]:
    return {"id": "t-1", "created_at": "2026-11-21T00:00:00Z", "status": status, "query": COMPANIES,
            "desired_num_results": desired, "is_exhausted": False, "num_results_discovered": 50,
            "num_results_enriched": 40, "num_results_evaluated": 30, "num_results": qualified, "criteria": []}


async def test_extruct_a_create_then_a_resume_the_budget_cannot_cover_are_not_sent(
    session: aiohttp.ClientSession,
) -> None:
    base = "https://api.extruct.test"
    tasks = f"{base}/v1/discovery_tasks"
    rows = [{"id": f"r{i}", "task_id": "t-1", "company_name": f"R{i}", "company_website": f"r{i}.com",
             "relevance": 90, "scores": {}} for i in range(2)]
    for budget_credits, creates in ((0.5, 0), (2, 1)):  # 0.5: not one match; 2: two matches, no resume
        wired = Wired(session, ExtructAdapter, base, "ext-test", clock=FakeClock())
        budget = CreditBudget(budget_credits)
        with aioresponses() as mock:
            log = RequestLog(mock, wired.clock)
            log.reply("POST", tasks, payload=extruct_task("created", 2), repeat=True)
            log.reply("GET", f"{tasks}/t-1", payload=extruct_task("done", 2, qualified=2), repeat=True)
            log.reply("GET", re.compile(rf"^{re.escape(tasks)}/t-1/results\?.*$"), repeat=True,
                      payload={**extruct_task("done", 2, qualified=2), "results": rows})
            log.reply("POST", f"{tasks}/t-1/resume", payload=extruct_task("in_progress", 250), repeat=True)
            request = SearchRequest(query=COMPANIES, mode="company", max_results=400)
            outcome = await run_within_budget(wired.runner(request), budget)

        assert [s.body["desired_num_results"] for s in log.of("POST") if s.url == tasks] == [2] * creates
        assert log.of("POST", "/resume") == []  # 398 more wanted, none affordable
        refused(outcome, budget, spent=2 * creates)


# -- sandbox ---------------------------------------------------------------------------------------

async def test_sixtyfour_on_the_sandbox_a_start_the_budget_cannot_cover_never_reaches_it(
    make_aggregator: Any,
) -> None:
    agg = await make_aggregator(n_companies=600, credits_per_search=5.0, emulator={"credits_per_search": 5.0})
    report = await agg.search(PEOPLE, max_results=5, budget=3, providers=("sixtyfour",))

    assert report.outcome("sixtyfour").error is not None
    assert report.outcome("sixtyfour").error.type == "BudgetExceededError"
    assert agg.sandbox.requests("sixtyfour", SIXTYFOUR_START) == []
    assert agg.sandbox.stats()["providers"]["sixtyfour"]["credits_charged"] == 0


async def test_sixtyfour_on_the_sandbox_no_result_page_beyond_the_budget_is_read(make_aggregator: Any) -> None:
    """With a per-result price, a full page's price is reserved before each /search/query: a budget
    of 12 at 1 credit per result and pages of 5 reads two pages (10 credits), never a third."""
    agg = await make_aggregator(n_companies=600, credits_per_result=1.0, page_size=5)
    report = await agg.search("VP of Engineering in New York", max_results=30, budget=12, providers=("sixtyfour",))

    outcome = report.outcome("sixtyfour")
    assert outcome.status == "partial" and outcome.error is not None
    assert outcome.error.type == "BudgetExceededError"
    assert len(agg.sandbox.requests("sixtyfour", "POST /search/query")) == 2
    assert outcome.records == 10 and outcome.credits == 10.0


async def test_orbit_on_the_sandbox_no_start_or_read_beyond_the_budget_reaches_it(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=("orbit",), n_companies=600)
    too_small = await agg.search(PEOPLE, max_results=5, budget=9, providers=("orbit",))
    assert agg.sandbox.requests("orbit", ORBIT_START) == []

    run_only = await agg.search(PEOPLE, max_results=5, budget=10, providers=("orbit",))
    assert len(agg.sandbox.requests("orbit", ORBIT_START)) == 1
    assert agg.sandbox.requests("orbit", ORBIT_PROFILE) == []  # candidates appeared; none could be paid
    for report in (too_small, run_only):
        assert report.outcome("orbit").error.type == "BudgetExceededError"
    assert agg.sandbox.stats()["providers"]["orbit"]["credits_charged"] == 10


async def test_extruct_on_the_sandbox_no_create_or_resume_beyond_the_budget_reaches_it(make_aggregator: Any) -> None:
    agg = await make_aggregator(providers=("extruct",), n_companies=1500)
    too_small = await agg.search(COMPANIES, mode="company", max_results=400, budget=0.5, providers=("extruct",))
    assert agg.sandbox.requests("extruct", EXTRUCT_CREATE) == []

    three = await agg.search(COMPANIES, mode="company", max_results=400, budget=3, providers=("extruct",))
    (create,) = agg.sandbox.requests("extruct", EXTRUCT_CREATE)
    assert create.json()["desired_num_results"] == 3
    assert agg.sandbox.requests("extruct", EXTRUCT_RESUME) == []  # 397 more wanted, none affordable
    for report in (too_small, three):
        assert report.outcome("extruct").error.type == "BudgetExceededError"
    assert agg.sandbox.stats()["providers"]["extruct"]["credits_charged"] <= 3
