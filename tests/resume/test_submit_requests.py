"""The submit's idempotency key, request by request (aioresponses, the real core on a fake clock).

For every provider: the key is in the job store *before* the submit request leaves (a callback on
the mocked submit URL reads the store while the request is being answered), and a runner resumed
from a store holding an intent without a job (a crash between the two) submits with the journaled
key (Sixtyfour ``search_id``, Orbit ``requestId``), or, for Extruct, which has no key, lists its
tasks to adopt the one a lost create made before creating anything.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest
from aioresponses import CallbackResult, aioresponses

from aggregator.contract import ProviderAdapter
from aggregator.models import SearchRequest
from providers import REGISTRY
from providers.extruct.adapter import ExtructAdapter
from providers.orbit.adapter import OrbitAdapter
from providers.sixtyfour.adapter import SixtyfourAdapter
from tests.fakes import aioresponses_compat
from tests.harness import Harness, bodies

RUN = "run-1"  # the Harness's run id
JOURNALED = "3f1c2a9e-journaled-before-the-crash"
PEOPLE = "VP of Engineering at Series B SaaS startups in New York"
COMPANIES = "vertical SaaS companies serving freight forwarding"

SIXTYFOUR = "https://api.sixtyfour.test"
SIXTYFOUR_START = f"{SIXTYFOUR}/search/start-deep-search"
SIXTYFOUR_STATUS = re.compile(rf"^{re.escape(SIXTYFOUR)}/search/status/.+$")
SIXTYFOUR_QUERY = f"{SIXTYFOUR}/search/query"

ORBIT = "https://api.orbit.test"
ORBIT_START = f"{ORBIT}/v2/developer/deep-search"
ORBIT_STATUS = re.compile(rf"^{re.escape(ORBIT_START)}/.+$")

EXTRUCT = "https://api.extruct.test"
EXTRUCT_TASKS = f"{EXTRUCT}/v1/discovery_tasks"
EXTRUCT_LIST = re.compile(rf"^{re.escape(EXTRUCT_TASKS)}\?.*$")
EXTRUCT_TASK = re.compile(rf"^{re.escape(EXTRUCT_TASKS)}/t-1$")
EXTRUCT_RESULTS = re.compile(rf"^{re.escape(EXTRUCT_TASKS)}/t-1/results\?.*$")

Check = Callable[[Any], None]


@pytest.fixture(autouse=True)
def _compat(monkeypatch: pytest.MonkeyPatch) -> None:
    aioresponses_compat(monkeypatch)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


def answering(status: int, payload: Any, check: Check, calls: list[str], name: str) -> Any:
    """An aioresponses callback: ``check(body)`` while the request is in flight, log ``name``, answer."""

    def callback(url: Any, **kwargs: Any) -> CallbackResult:
        calls.append(name)
        check(orjson.loads(kwargs["data"]) if kwargs.get("data") else None)
        return CallbackResult(status=status, payload=payload)

    return callback


def journaled_key(harness: Harness, provider: str) -> str:
    """The key the store holds for the job right now; the job must not be recorded yet."""
    record = harness.store.records.get((RUN, provider))
    assert record is not None, "the submit was sent before its idempotency key was journaled"
    assert (record.state, record.job) == ("submitting", None)
    return record.idempotency_key


async def resumed_from_intent(harness: Harness, provider: str, request: SearchRequest) -> None:
    """The store as a process that crashed after journaling the intent (and maybe sending it) left it."""
    await harness.store.record_submit_intent(RUN, provider, JOURNALED, request)


# -- Sixtyfour: search_id ---------------------------------------------------------------------------

def sixtyfour(session: aiohttp.ClientSession) -> Harness:
    return Harness(session, SixtyfourAdapter, SIXTYFOUR, "sk-test-canary-0001", page_size=5)


def mock_sixtyfour_job(mock: aioresponses) -> None:
    mock.get(SIXTYFOUR_STATUS, payload={"task_id": "t-1", "status": "completed", "search_id": None,
                                        "total_results": 0}, repeat=True)
    mock.post(SIXTYFOUR_QUERY, payload={"total_results": 0, "has_more": False, "results": []})


async def test_sixtyfour_journals_the_search_id_before_the_start_is_sent(session: aiohttp.ClientSession) -> None:
    harness = sixtyfour(session)
    request = SearchRequest(query=PEOPLE, max_results=5)
    in_flight: list[str] = []

    def check(body: Any) -> None:
        assert body["search_id"] == journaled_key(harness, "sixtyfour")

    with aioresponses() as mock:
        mock.post(SIXTYFOUR_START, callback=answering(200, {"task_id": "t-1", "status": "queued"}, check,
                                                      in_flight, "start"))
        mock_sixtyfour_job(mock)
        outcome = await harness.runner(request).run()

    assert in_flight == ["start"] and outcome.status == "no_result", outcome
    record = harness.store.records[(RUN, "sixtyfour")]
    assert record.job is not None and record.job.idempotency_key == record.idempotency_key


async def test_sixtyfour_resumed_from_an_intent_without_a_job_starts_with_the_journaled_search_id(
        session: aiohttp.ClientSession) -> None:
    harness = sixtyfour(session)
    request = SearchRequest(query=PEOPLE, max_results=5)
    await resumed_from_intent(harness, "sixtyfour", request)

    with aioresponses() as mock:
        mock.post(SIXTYFOUR_START, payload={"task_id": "t-1", "status": "queued"})  # a replay: the same task
        mock_sixtyfour_job(mock)
        outcome = await harness.runner(request).run()
        sent = bodies(mock, "POST", SIXTYFOUR_START)

    assert [body["search_id"] for body in sent] == [JOURNALED]
    assert outcome.status == "no_result" and outcome.job_id == "t-1"
    record = harness.store.records[(RUN, "sixtyfour")]
    assert record.idempotency_key == JOURNALED and record.history[0] == "submitting"
    assert record.history.count("submitting") == 1  # the intent was not journaled again under a new key


# -- Orbit: requestId ---------------------------------------------------------------------------------

def orbit(session: aiohttp.ClientSession) -> Harness:
    return Harness(session, OrbitAdapter, ORBIT, "sk_orb_canary_5150")


def orbit_started(request_id: str, status: str = "started") -> dict[str, Any]:
    return {"request_id": request_id, "run_id": "run_1", "status": status,
            "links": {"status": f"/v2/developer/deep-search/{request_id}"}}


def mock_orbit_run(mock: aioresponses) -> None:
    mock.get(ORBIT_STATUS, payload={"request_id": "r", "run_id": "run_1", "status": "completed",
                                    "result": {"candidate_profile_ids": []}}, repeat=True)


async def test_orbit_journals_the_request_id_before_the_start_is_sent(session: aiohttp.ClientSession) -> None:
    harness = orbit(session)
    request = SearchRequest(query=PEOPLE, max_results=5)
    in_flight: list[str] = []

    def check(body: Any) -> None:
        assert body["requestId"] == journaled_key(harness, "orbit")

    with aioresponses() as mock:
        mock.post(ORBIT_START, callback=answering(202, orbit_started("req-1"), check, in_flight, "start"))
        mock_orbit_run(mock)
        outcome = await harness.runner(request).run()

    assert in_flight == ["start"] and outcome.status == "no_result", outcome
    record = harness.store.records[(RUN, "orbit")]
    assert record.job is not None and record.job.idempotency_key == record.idempotency_key


async def test_orbit_resumed_from_an_intent_without_a_job_starts_with_the_journaled_request_id(
        session: aiohttp.ClientSession) -> None:
    harness = orbit(session)
    request = SearchRequest(query=PEOPLE, max_results=5)
    await resumed_from_intent(harness, "orbit", request)

    with aioresponses() as mock:
        mock.post(ORBIT_START, status=200, payload=orbit_started(JOURNALED, "already_running"))
        mock_orbit_run(mock)
        outcome = await harness.runner(request).run()
        sent = bodies(mock, "POST", ORBIT_START)

    assert [body["requestId"] for body in sent] == [JOURNALED]
    assert outcome.status == "no_result" and outcome.job_id == JOURNALED
    assert harness.store.records[(RUN, "orbit")].idempotency_key == JOURNALED


# -- Extruct: no key; a lost create is found in the task list --------------------------------------

def extruct(session: aiohttp.ClientSession) -> Harness:
    return Harness(session, ExtructAdapter, EXTRUCT, "ext-canary-77", page_size=5)


def extruct_task(status: str = "created", *, task_id: str = "t-1", query: str = COMPANIES) -> dict[str, Any]:
    return {"id": task_id, "created_at": "2026-11-21T00:00:05Z", "status": status, "query": query,
            "desired_num_results": 10, "is_exhausted": status == "done", "num_results_discovered": 0,
            "num_results_enriched": 0, "num_results_evaluated": 0, "num_results": 0, "criteria": []}


def mock_extruct_task(mock: aioresponses) -> None:
    mock.get(EXTRUCT_TASK, payload=extruct_task("done"), repeat=True)
    mock.get(EXTRUCT_RESULTS, payload={**extruct_task("done"), "results": []}, repeat=True)


def logging_calls(calls: list[str], name: str, payload: Any) -> Any:
    return answering(200, payload, lambda _: None, calls, name)


async def test_extruct_journals_the_intent_before_the_create_is_sent(session: aiohttp.ClientSession) -> None:
    harness = extruct(session)
    request = SearchRequest(query=COMPANIES, mode="company", max_results=10)
    in_flight: list[str] = []
    keys: list[str] = []

    def check(body: Any) -> None:
        keys.append(journaled_key(harness, "extruct"))
        assert body == {"query": COMPANIES, "desired_num_results": 10}  # Extruct takes no key

    with aioresponses() as mock:
        mock.post(EXTRUCT_TASKS, callback=answering(200, extruct_task(), check, in_flight, "create"))
        mock_extruct_task(mock)
        outcome = await harness.runner(request).run()

    assert in_flight == ["create"] and outcome.status == "no_result", outcome
    record = harness.store.records[(RUN, "extruct")]
    assert record.job is not None and [record.job.idempotency_key] == keys == [record.idempotency_key]


async def test_extruct_resumed_from_an_intent_adopts_the_task_its_lost_create_made(
        session: aiohttp.ClientSession) -> None:
    harness = extruct(session)
    request = SearchRequest(query=COMPANIES, mode="company", max_results=10)
    await resumed_from_intent(harness, "extruct", request)
    calls: list[str] = []

    with aioresponses() as mock:
        others = [extruct_task(task_id="someone-else", query="fintech in Berlin"), extruct_task("in_progress")]
        mock.get(EXTRUCT_LIST, callback=logging_calls(calls, "list", others))
        mock.post(EXTRUCT_TASKS, callback=logging_calls(calls, "create", extruct_task(task_id="t-2")))
        mock_extruct_task(mock)
        outcome = await harness.runner(request).run()

    assert calls == ["list"]  # found and adopted: nothing created
    assert outcome.status == "no_result" and outcome.job_id == "t-1"
    record = harness.store.records[(RUN, "extruct")]
    assert record.job is not None and record.job.job_id == "t-1" and record.idempotency_key == JOURNALED


async def test_extruct_resumed_from_an_intent_whose_create_never_arrived_lists_then_creates_once(
        session: aiohttp.ClientSession) -> None:
    harness = extruct(session)
    request = SearchRequest(query=COMPANIES, mode="company", max_results=10)
    await resumed_from_intent(harness, "extruct", request)
    calls: list[str] = []

    with aioresponses() as mock:
        mock.get(EXTRUCT_LIST, callback=logging_calls(calls, "list", [extruct_task(query="fintech in Berlin")]))
        mock.post(EXTRUCT_TASKS, callback=logging_calls(calls, "create", extruct_task()))
        mock_extruct_task(mock)
        outcome = await harness.runner(request).run()

    assert calls == ["list", "create"]  # looked for the task first, found none, created one
    assert outcome.status == "no_result" and outcome.job_id == "t-1"
    assert harness.store.records[(RUN, "extruct")].idempotency_key == JOURNALED


def test_every_provider_is_covered() -> None:
    adapters: tuple[type[ProviderAdapter], ...] = (SixtyfourAdapter, OrbitAdapter, ExtructAdapter)
    assert sorted(a.name for a in adapters) == sorted(REGISTRY)
