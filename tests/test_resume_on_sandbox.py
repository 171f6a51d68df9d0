"""Interrupted runs resume from the job store: no second paid start, no lost or duplicated record.

Besides comparing with an uninterrupted run of the same code, each scenario checks what the
emulators received (their request logs: each provider's starts carry the run's one journaled
idempotency key, the resumed process picks up the first process's job and checkpoint, no page is
read twice) and the records against the world's ground truth.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from aggregator.core import Aggregator
from aggregator.events import HitsEvent, ProgressEvent
from aggregator.jobstore import InMemoryJobStore, JobStore
from aggregator.models import SearchReport
from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conftest import FAST_SCALE, sandbox_settings

DEMO = "VP of Engineering at Series B SaaS startups in New York"
PROVIDERS = ("sixtyfour", "orbit")


SIXTYFOUR_START, SIXTYFOUR_QUERY = "POST /search/start-deep-search", "POST /search/query"
ORBIT_START, ORBIT_STATUS = "POST /v2/developer/deep-search", "GET /v2/developer/deep-search/{requestId}"


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    config = SandboxConfig(time_scale=FAST_SCALE, providers=PROVIDERS, settings={"sixtyfour": {}})
    async with Sandbox(config) as running:
        yield running


async def interrupted_run(sandbox: Sandbox, store: JobStore, stop: Any) -> str:
    """Start a run and abandon it at the first event ``stop`` accepts, as a crash would."""
    async with Aggregator(sandbox_settings(page_size=5), sandbox=sandbox, job_store=store) as agg:
        stream = agg.stream(DEMO, max_results=30)
        async for event in stream:
            if stop(event):
                break
        await stream.aclose()
    (summary,) = await store.runs()
    return summary.run_id


async def finish(sandbox: Sandbox, store: JobStore, run_id: str) -> set[str]:
    async with Aggregator(sandbox_settings(page_size=5), sandbox=sandbox, job_store=store) as agg:
        report = await agg.resume(run_id)
    assert all(o.status == "found" for o in report.outcomes if o.provider in PROVIDERS)
    check_against_the_world(sandbox, report)
    return {r.record_id for r in report.records}


def check_against_the_world(sandbox: Sandbox, report: SearchReport) -> None:
    """Every record is a VP of Engineering in New York at a Series B SaaS company (the world's hidden
    facts), each hit from a provider that sees that person; 30 records, as asked, for more than 30 exist."""
    world = sandbox.world
    by_slug = {p.linkedin_slug: p for p in world.people}
    truth = {p.linkedin_slug for p in world.people
             if p.title == "VP of Engineering" and p.city == "New York"
             and world.company(p.company_id).funding_stage == "Series B"
             and "saas" in world.company(p.company_id).categories}
    assert len(report.records) == 30 < len(truth)
    for record in report.records:
        for hit in record.hits:
            url = getattr(hit.entity, "linkedin_url", None)
            assert url, hit
            slug = url.rstrip("/").rsplit("/", 1)[1]
            assert slug in truth, (hit.provider, slug)
            person = by_slug[slug]
            assert world.visible(hit.provider, person.true_id) and world.visible(hit.provider, person.company_id)


async def one_key_each(sandbox: Sandbox, store: JobStore, run_id: str) -> tuple[str, str]:
    """Every job start each provider received carried the idempotency key journaled for the run
    (search_id, requestId), and was answered; those keys.

    Usually one start each. A second one is legitimate when the first process was stopped while
    its start was in flight (a slow machine): the resumed process re-sends it with the same key,
    and the provider replays the job instead of starting another (``starts()`` checks that)."""
    keys = []
    for provider, route, field, ok in (("sixtyfour", SIXTYFOUR_START, "search_id", {200}),
                                       ("orbit", ORBIT_START, "requestId", {200, 202})):
        record = await store.get(run_id, provider)
        assert record is not None
        sent = sandbox.requests(provider, route)
        assert 1 <= len(sent) <= 2 and {r.json()[field] for r in sent} == {record.idempotency_key}, provider
        assert all(r.status in ok for r in sent), [r.status for r in sent]
        keys.append(record.idempotency_key)
    return keys[0], keys[1]


async def journaled_cursor(store: JobStore, run_id: str) -> str | None:
    """The Sixtyfour cursor the first process journaled (None: no page recorded yet)."""
    record = await store.get(run_id, "sixtyfour")
    checkpoint = (record.checkpoint or {}).get("adapter") if record else None
    return (checkpoint or {}).get("cursor")


def check_each_page_read_once(sandbox: Sandbox, search_id: str, read_before: int, cursor: str | None) -> None:
    """From Sixtyfour's request log: the first page by ``search_id``, then cursors only, each of the 6
    pages of 30 rows read; the resumed process (the requests after the first ``read_before``) began
    where the journal said (``cursor``, or the first page when none was recorded), read each page
    once, and re-read at most that one page: the one in flight when the first process stopped."""
    sent = sandbox.requests("sixtyfour", SIXTYFOUR_QUERY)
    assert all(r.status == 200 for r in sent), [r.status for r in sent]
    bodies = [r.json() for r in sent]
    first_page = {"search_id": search_id, "page_size": 5, "max_results": 30}
    assert bodies[0] == first_page and all(b == first_page or set(b) == {"cursor"} for b in bodies)
    before, after = bodies[:read_before], bodies[read_before:]
    resume_from = {"cursor": cursor} if cursor else first_page
    assert after[0] == resume_from
    assert [b for b in after if b in before] in ([], [resume_from])
    assert len({str(sorted(b.items())) for b in after}) == len(after)
    assert len({str(sorted(b.items())) for b in bodies}) == 30 // 5


async def baseline(sandbox: Sandbox) -> set[str]:
    async with Aggregator(sandbox_settings(page_size=5), sandbox=sandbox) as agg:
        report = await agg.search(DEMO, max_results=30)
    return {r.record_id for r in report.records}


def starts(sandbox: Sandbox) -> dict[str, int]:
    return {p: sandbox.stats()["providers"][p]["jobs_started"] for p in PROVIDERS}


@pytest.fixture(params=["memory", "sqlite"])
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[JobStore]:
    if request.param == "memory":
        yield InMemoryJobStore()
        return
    from aggregator.journal import SqliteJournal

    async with SqliteJournal(tmp_path / "journal.sqlite") as journal:
        yield journal


async def test_a_run_interrupted_while_polling_resumes_without_starting_again(sandbox: Sandbox,
                                                                               store: JobStore) -> None:
    run_id = await interrupted_run(sandbox, store, lambda e: isinstance(e, ProgressEvent) and e.phase == "running")
    assert starts(sandbox) == {"sixtyfour": 1, "orbit": 1}
    polled_before = len(sandbox.requests("orbit", ORBIT_STATUS))
    read_before = len(sandbox.requests("sixtyfour", SIXTYFOUR_QUERY))
    cursor = await journaled_cursor(store, run_id)

    resumed = await finish(sandbox, store, run_id)
    assert starts(sandbox) == {"sixtyfour": 1, "orbit": 1}  # polled, never re-submitted
    search_id, request_id = await one_key_each(sandbox, store, run_id)
    # the resumed process polled the job the first one started, and read Sixtyfour's pages once
    resumed_polls = sandbox.requests("orbit", ORBIT_STATUS)[polled_before:]
    assert resumed_polls and {r.path.rsplit("/", 1)[1] for r in resumed_polls} == {request_id}
    check_each_page_read_once(sandbox, search_id, read_before, cursor)
    assert resumed == await baseline(sandbox)


async def test_a_run_interrupted_while_paging_continues_from_its_checkpoint(sandbox: Sandbox,
                                                                            store: JobStore) -> None:
    run_id = await interrupted_run(sandbox, store,
                                   lambda e: isinstance(e, HitsEvent) and e.provider == "sixtyfour")
    first_pages = len(await store.hits(run_id, "sixtyfour"))
    assert 0 < first_pages < 30

    queries_before = sandbox.stats()["providers"]["sixtyfour"]["endpoints"]["POST /search/query"]["calls"]
    cursor = await journaled_cursor(store, run_id)
    assert cursor is not None  # hits were journaled, with the cursor that follows them
    resumed = await finish(sandbox, store, run_id)
    queries = sandbox.stats()["providers"]["sixtyfour"]["endpoints"]["POST /search/query"]["calls"] - queries_before
    assert queries <= -(-(30 - first_pages) // 5) + 1  # only the remaining pages were read
    assert len(await store.hits(run_id, "sixtyfour")) == len({h.provider_record_id
                                                              for h in await store.hits(run_id, "sixtyfour")})
    assert starts(sandbox) == {"sixtyfour": 1, "orbit": 1}
    search_id, _ = await one_key_each(sandbox, store, run_id)
    check_each_page_read_once(sandbox, search_id, queries_before, cursor)  # from the journaled cursor on
    assert resumed == await baseline(sandbox)


async def test_resuming_an_unknown_run_is_a_clear_error(sandbox: Sandbox) -> None:
    from aggregator.errors import ConfigError

    async with Aggregator(sandbox_settings(), sandbox=sandbox) as agg:
        with pytest.raises(ConfigError, match="deepsearch runs"):
            await agg.resume("nope")


async def test_a_resumed_run_reports_and_budgets_the_credits_its_first_process_spent(sandbox: Sandbox) -> None:
    store = InMemoryJobStore()
    async with Aggregator(sandbox_settings(), sandbox=sandbox, job_store=store) as agg:
        stream = agg.stream(DEMO, max_results=30, budget=20, providers=("orbit",))
        async for event in stream:
            if isinstance(event, HitsEvent):
                break  # a crash after the first profiles were read and paid for
        await stream.aclose()
    (summary,) = await store.runs()
    read_before = len(await store.hits(summary.run_id, "orbit"))
    assert 0 < read_before <= 10  # the first batch (up to 10 profiles read at once; all 10 on a slow machine)

    async with Aggregator(sandbox_settings(), sandbox=sandbox, job_store=store) as agg:
        report = await agg.resume(summary.run_id)

    orbit = report.outcome("orbit")
    assert orbit.credits == 10 + orbit.records  # the start and every read, across both processes
    assert orbit.credits <= 20 and orbit.status == "partial"  # the budget counted the first process's spend
    assert orbit.error is not None and orbit.error.type == "BudgetExceededError"
