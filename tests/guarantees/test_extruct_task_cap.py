"""Extruct: a task never asks beyond its 250-result cap, neither when created nor when resumed.

Contract extruct §4, §7: ``desired_num_results`` is 1..250 and the task-level cap is 250; a resume
raises the target by ``desired_new_results`` within it. The adapter asks
``min(max_results, 250)`` on create and ``min(missing, 250 - desired)`` on resume.

Killed mutations (providers/extruct/adapter.py): the create asks ``max_results`` (the emulator
answers 422, as FastAPI would); the resume asks for everything missing (beyond the cap).

Request sequence: ``tests/extruct/test_adapter_requests.py::
test_resume_fills_up_to_max_results_and_stops_at_the_250_cap``. Sandbox, here.
"""

from __future__ import annotations

from typing import Any

from aggregator.models import SearchRequest

COMPANIES = "vertical SaaS companies serving freight forwarding"
CREATE, RESUME = "POST /v1/discovery_tasks", "POST /v1/discovery_tasks/{task_id}/resume"


async def test_on_the_sandbox_a_search_for_400_creates_a_task_for_250_and_never_resumes_past_it(
    make_aggregator: Any,
) -> None:
    agg = await make_aggregator(providers=("extruct",), n_companies=1500,
                                emulators={"extruct": {"evaluate_rate_per_min": 2000.0}})
    report = await agg.search(COMPANIES, mode="company", max_results=400, providers=("extruct",))

    assert report.outcome("extruct").error is None, report.outcome("extruct")
    (create,) = agg.sandbox.requests("extruct", CREATE)
    assert create.json()["desired_num_results"] == 250
    assert agg.sandbox.requests("extruct", RESUME) == []  # already at the cap: nothing to resume


async def test_on_the_sandbox_a_resume_asks_only_up_to_the_cap(make_aggregator: Any) -> None:
    # discovery at a crawl: the task cannot exhaust its pool (a 400 to any resume) during the test
    agg = await make_aggregator(providers=("extruct",), n_companies=1500,
                                emulators={"extruct": {"discover_rate_per_min": 0.01}})
    adapter = agg.adapter("extruct")
    job = await adapter.submit(SearchRequest(query=COMPANIES, mode="company", max_results=200), "key-1")
    resumed = await adapter.extend(job, 400)  # 400 missing: only 50 fit under the cap

    (resume,) = agg.sandbox.requests("extruct", RESUME)
    assert resume.status == 200 and resume.json() == {"desired_new_results": 50}
    assert resumed is not None and resumed.extra["desired_num_results"] == 250
    assert agg.sandbox.emulator("extruct").task(job.job_id).desired_num_results == 250
