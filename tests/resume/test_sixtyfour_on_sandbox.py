"""Sixtyfour deep searches (people and company mode) crashed at each durable step and resumed.

What the provider received is read from the sandbox's request log; expected values are literals
(the page size, the request bodies), the key the crashed process journaled, and the emulator's
own result set of the search. The search is ``max_results=12`` read in pages of 5: 5 + 5 + 2 rows.
"""

from __future__ import annotations

import pytest

from aggregator.config import Settings
from aggregator.models import Mode, SearchRequest
from providers.sandbox.runner import Sandbox
from tests.conftest import sandbox_settings
from tests.resume.conftest import StartSandbox
from tests.resume.crash import Disk
from tests.resume.runs import Resumed, bodies, crash_and_resume

START = "POST /search/start-deep-search"
STATUS = "GET /search/status/{task_id}"
QUERY = "POST /search/query"
DOWNLOAD = "GET /search/download"
PAGE, MAX = 5, 12
QUERIES: dict[Mode, str] = {"people": "VP of Engineering at Series B SaaS startups in New York",
                            "company": "Series B SaaS companies in New York"}


@pytest.fixture(params=["people", "company"])
def mode(request: pytest.FixtureRequest) -> Mode:
    chosen: Mode = request.param
    return chosen


def settings() -> Settings:
    return sandbox_settings(page_size=PAGE)


def search(mode: Mode) -> SearchRequest:
    return SearchRequest(query=QUERIES[mode], mode=mode, max_results=MAX, providers=("sixtyfour",))


def start_body(mode: Mode, key: str) -> dict[str, object]:
    return {"query": QUERIES[mode], "mode": mode, "max_results": MAX, "search_id": key,
            "output_mode": "query_only"}


def assert_every_row_once(sandbox: Sandbox, run: Resumed) -> None:
    """The resumed run holds the search's first 12 rows (the emulator's result set), each once, in order."""
    (task,) = sandbox.emulator("sixtyfour").list_tasks()  # one deep search ever started
    assert task.search_id == run.record.idempotency_key == run.crashed.key
    truth = [row.raw_document_id for row in task.found[:MAX]]
    assert len(truth) == MAX
    assert [hit.provider_record_id for hit in run.hits] == truth
    outcome = run.report.outcome("sixtyfour")
    assert (outcome.status, outcome.records, outcome.job_id) == ("found", MAX, task.task_id)
    assert run.record.job is not None and run.record.job.job_id == task.task_id
    assert run.record.state == "done"
    assert sorted(h.provider_record_id for r in run.report.records for h in r.hits) == sorted(truth)
    assert sandbox.stats()["providers"]["sixtyfour"]["jobs_started"] == 1


def assert_three_pages_read_once(run: Resumed) -> None:
    """Pages of a fresh read: the first by search_id, then two distinct cursors."""
    first, second, third = bodies(run.all(QUERY))
    assert first == {"search_id": run.crashed.key, "page_size": PAGE, "max_results": MAX}
    assert set(second) == set(third) == {"cursor"} and second["cursor"] != third["cursor"]


async def test_a_crash_after_the_intent_submits_once_with_the_journaled_search_id(
        start_sandbox: StartSandbox, disk: Disk, mode: Mode) -> None:
    sandbox = await start_sandbox("sixtyfour")
    run = await crash_and_resume(sandbox, disk, settings(), search(mode), "intent")

    assert run.crashed.requests == []  # the key was journaled, nothing was sent
    assert (run.crashed.record.state, run.crashed.record.job) == ("submitting", None)
    assert bodies(run.after(START)) == [start_body(mode, run.crashed.key)]
    assert run.record.idempotency_key == run.crashed.key
    assert_three_pages_read_once(run)
    assert_every_row_once(sandbox, run)


async def test_a_crash_before_the_job_was_journaled_replays_the_start_with_the_same_search_id(
        start_sandbox: StartSandbox, disk: Disk, mode: Mode) -> None:
    sandbox = await start_sandbox("sixtyfour")
    run = await crash_and_resume(sandbox, disk, settings(), search(mode), "submitted")

    (sent,) = run.before(START)  # the start reached Sixtyfour and was answered...
    assert sent.status == 200 and sent.json() == start_body(mode, run.crashed.key)
    assert (run.crashed.record.state, run.crashed.record.job) == ("submitting", None)  # ...the answer was lost
    assert bodies(run.after(START)) == [start_body(mode, run.crashed.key)]  # replayed, byte for byte the same key
    stats = sandbox.stats()["providers"]["sixtyfour"]
    assert (stats["jobs_started"], stats["idempotent_replays"]) == (1, 1)
    assert run.before(QUERY) == []
    assert_three_pages_read_once(run)
    assert_every_row_once(sandbox, run)


async def test_a_crash_after_the_job_was_journaled_polls_it_and_never_starts_again(
        start_sandbox: StartSandbox, disk: Disk, mode: Mode) -> None:
    sandbox = await start_sandbox("sixtyfour")
    run = await crash_and_resume(sandbox, disk, settings(), search(mode), "job")

    assert bodies(run.before(START)) == [start_body(mode, run.crashed.key)]
    assert run.crashed.record.state == "submitted" and run.crashed.record.job is not None
    task_id = run.crashed.record.job.job_id
    assert run.after(START) == []  # the journaled job is polled, not started again
    assert run.after(STATUS) and {r.path for r in run.after(STATUS)} == {f"/search/status/{task_id}"}
    assert_three_pages_read_once(run)
    assert_every_row_once(sandbox, run)

async def test_a_crash_between_a_pages_hits_and_its_checkpoint_rereads_that_page_only(
        start_sandbox: StartSandbox, disk: Disk, mode: Mode) -> None:
    sandbox = await start_sandbox("sixtyfour")
    run = await crash_and_resume(sandbox, disk, settings(), search(mode), "checkpoint", page=2)

    first, second = bodies(run.before(QUERY))  # pages 1 and 2 were read; page 2's checkpoint was lost
    assert first == {"search_id": run.crashed.key, "page_size": PAGE, "max_results": MAX}
    lost_cursor = second["cursor"]
    assert len(run.crashed.hits) == 2 * PAGE  # both pages' hits were journaled
    assert run.crashed.record.checkpoint is not None
    assert run.crashed.record.checkpoint["adapter"]["cursor"] == lost_cursor  # the last journaled position

    assert run.all(START) == run.before(START) and len(run.before(START)) == 1  # never started again
    assert run.after(STATUS) == []  # the job was known to be finished: no polling
    again, last = bodies(run.after(QUERY))
    assert again == {"cursor": lost_cursor}  # page 2 again (its checkpoint was lost), page 1 not
    assert set(last) == {"cursor"} and last["cursor"] != lost_cursor  # then page 3
    assert_every_row_once(sandbox, run)


async def test_a_csv_search_resumed_after_it_was_ready_downloads_its_result_handle_again(
        start_sandbox: StartSandbox, disk: Disk) -> None:
    sandbox = await start_sandbox("sixtyfour")
    csv = sandbox_settings(fetch_via="csv")
    run = await crash_and_resume(sandbox, disk, csv, search("people"), "checkpoint", page=1)

    (task,) = sandbox.emulator("sixtyfour").list_tasks()
    assert task.resource_handle_id and len(task.delivered) == MAX
    assert run.crashed.record.state == "ready" and len(run.crashed.hits) == MAX  # downloaded; checkpoint lost
    (started,) = run.all(START)
    assert started.json() == {**start_body("people", run.crashed.key), "output_mode": "csv"}
    assert run.after(STATUS) == []  # known to be finished: the handle comes from the journaled job
    assert [r.query for r in run.all(DOWNLOAD)] == [{"resource_handle_id": task.resource_handle_id}] * 2
    assert [h.provider_record_id for h in run.hits] == [h.provider_record_id for h in run.crashed.hits]
    outcome = run.report.outcome("sixtyfour")
    assert (outcome.status, outcome.records, outcome.job_id) == ("found", MAX, task.task_id)
