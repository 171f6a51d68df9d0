"""Extruct company deep searches crashed at each durable step and resumed.

Extruct has no idempotency key: a resumed run whose create may have been sent lists the recent
tasks and adopts the one it created, and creates only when there is none. The task runs at
emulator speed far above the documented one, so it is done at the first poll: its results are
then read in pages of 5 from offset 0, and a page shorter than 5 ends them. The query's pool holds
fewer matches than the 20 asked for (the task ends exhausted), so the last page is short.
"""

from __future__ import annotations

from aggregator.config import Settings
from aggregator.models import SearchRequest
from providers.extruct.emulator.tasks import Task
from providers.sandbox.runner import Sandbox
from tests.conftest import sandbox_settings
from tests.resume.conftest import StartSandbox
from tests.resume.crash import Disk
from tests.resume.runs import Resumed, bodies, crash_and_resume

CREATE = "POST /v1/discovery_tasks"
LIST = "GET /v1/discovery_tasks"
TASK = "GET /v1/discovery_tasks/{task_id}"
RESULTS = "GET /v1/discovery_tasks/{task_id}/results"
RESUME = "POST /v1/discovery_tasks/{task_id}/resume"
QUERY = "vertical SaaS companies serving freight forwarding"
PAGE, MAX = 5, 20
FAST = {"created_s": 0.0, "discover_rate_per_min": 1e6, "enrich_rate_per_min": 1e6, "evaluate_rate_per_min": 1e6}
CREATE_BODY = {"query": QUERY, "desired_num_results": MAX}


def settings() -> Settings:
    return sandbox_settings({"providers": {"extruct": {"page_size": PAGE}}})


def search() -> SearchRequest:
    return SearchRequest(query=QUERY, mode="company", max_results=MAX, providers=("extruct",))


def offsets(run: Resumed, when: str = "all") -> list[int]:
    requests = {"all": run.all, "before": run.before, "after": run.after}[when](RESULTS)
    assert all(r.query["limit"] == str(PAGE) for r in requests)
    return [int(r.query["offset"]) for r in requests]


def the_task(sandbox: Sandbox) -> Task:
    tasks: list[Task] = sandbox.emulator("extruct").list_tasks()
    (task,) = tasks  # one task was ever created
    return task


def assert_every_match_once(sandbox: Sandbox, run: Resumed) -> None:
    """The run holds every match of the task (the emulator's own list), each once, in relevance order."""
    task = the_task(sandbox)
    now = sandbox.clock.monotonic()
    assert task.status(now) == "done" and task.is_exhausted(now)
    truth = [evaluation.result_id for evaluation in task.results(now)]
    assert 2 * PAGE > len(truth) > PAGE  # two pages, the second one short
    assert [hit.provider_record_id for hit in run.hits] == truth
    outcome = run.report.outcome("extruct")
    assert (outcome.status, outcome.records, outcome.job_id) == ("found", len(truth), task.task_id)
    assert run.record.state == "done" and run.record.job is not None and run.record.job.job_id == task.task_id
    stats = sandbox.stats()["providers"]["extruct"]
    assert stats["jobs_started"] == 1 and stats["credits_charged"] == len(truth) == outcome.credits
    assert run.all(RESUME) == []  # an exhausted task is not asked for more


async def test_a_crash_after_the_intent_lists_tasks_then_creates_once(start_sandbox: StartSandbox,
                                                                      disk: Disk) -> None:
    sandbox = await start_sandbox("extruct", FAST)
    run = await crash_and_resume(sandbox, disk, settings(), search(), "intent")

    assert run.crashed.requests == []  # the intent was journaled, nothing was sent
    assert (run.crashed.record.state, run.crashed.record.job) == ("submitting", None)
    listed, created = run.requests[:2]  # outcome unknown: look for the task first, find none, then create
    assert (listed.route, listed.query) == (LIST, {"offset": "0", "limit": "50"})
    assert created.route == CREATE and created.json() == CREATE_BODY
    assert len(run.all(CREATE)) == 1 and len(run.all(LIST)) == 1
    assert run.record.idempotency_key == run.crashed.key
    assert offsets(run) == [0, PAGE]
    assert_every_match_once(sandbox, run)


async def test_a_crash_after_the_create_adopts_the_created_task(start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("extruct", FAST)
    run = await crash_and_resume(sandbox, disk, settings(), search(), "submitted")

    (created,) = run.before(CREATE)  # the create reached Extruct and was answered; the answer was lost
    assert created.status == 200 and created.json() == CREATE_BODY
    assert (run.crashed.record.state, run.crashed.record.job) == ("submitting", None)
    assert run.requests[0].route == LIST and run.after(CREATE) == []  # found in the list and adopted
    assert len(run.after(LIST)) == 1
    assert run.record.idempotency_key == run.crashed.key
    assert offsets(run) == [0, PAGE]
    assert_every_match_once(sandbox, run)


async def test_a_crash_after_the_task_was_journaled_polls_it_and_never_creates_again(
        start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("extruct", FAST)
    run = await crash_and_resume(sandbox, disk, settings(), search(), "job")

    assert bodies(run.before(CREATE)) == [CREATE_BODY]
    assert run.crashed.record.state == "submitted" and run.crashed.record.job is not None
    task_id = run.crashed.record.job.job_id
    assert run.after(CREATE) == [] and run.all(LIST) == []  # the journaled task: nothing to look for
    assert {r.path for r in run.after(TASK)} == {f"/v1/discovery_tasks/{task_id}"}
    assert offsets(run) == [0, PAGE]
    assert_every_match_once(sandbox, run)

async def test_a_crash_between_a_pages_hits_and_its_checkpoint_rereads_that_page_only(
        start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("extruct", FAST)
    run = await crash_and_resume(sandbox, disk, settings(), search(), "checkpoint", page=2)

    assert offsets(run, "before") == [0, PAGE]  # both pages read; the second one's checkpoint was lost
    assert run.crashed.record.state == "ready" and run.crashed.record.checkpoint is not None
    assert run.crashed.record.checkpoint["adapter"]["offset"] == PAGE
    assert len(run.crashed.hits) > PAGE  # the second page's hits were journaled

    assert bodies(run.all(CREATE)) == [CREATE_BODY] and run.all(LIST) == []  # the journaled task, polled no more
    assert offsets(run, "after") == [PAGE]  # the page whose checkpoint was lost, and nothing else
    assert_every_match_once(sandbox, run)
