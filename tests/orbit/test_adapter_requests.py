"""Exact request sequences of the Orbit adapter through the real core (aioresponses).

The mocks match paths loosely (regexes) so that each test reads as the provider's answers in turn;
``in_order`` then pins down every request the adapter sent, in order, with its exact path.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from aggregator.models import PersonIdentity, SearchRequest
from providers.orbit.adapter import OrbitAdapter
from tests.fakes import aioresponses_compat
from tests.harness import Harness, bodies, calls, in_order

BASE = "https://api.orbit.test"
KEY = "sk_orb_canary_5150"
START = f"{BASE}/v2/developer/deep-search"
STATUS = re.compile(rf"^{re.escape(START)}/.+$")
PROFILE = re.compile(rf"^{re.escape(BASE)}/v2/developer/profiles/(.+)$")
QUERY = "VP of Engineering at Series B SaaS startups in New York"
CREDITS = "X-Developer-API-Credits-Remaining"
POST_START, POLL = "POST /v2/developer/deep-search", "GET /v2/developer/deep-search/req-1"


def read(pid: str) -> str:
    return f"GET /v2/developer/profiles/{pid}"


def started(status: str = "started") -> dict[str, Any]:
    return {"request_id": "req-1", "run_id": "run_1", "status": status,
            "links": {"status": "/v2/developer/deep-search/req-1"}}


def state(status: str, **result: Any) -> dict[str, Any]:
    return {"request_id": "req-1", "run_id": "run_1", "status": status, "result": result or None}


def profile(pid: str, title: str = "VP of Engineering") -> dict[str, Any]:
    return {"status": "success", "payload": {
        "id": pid, "displayName": pid.title(), "personName": pid.title(),
        "headline": {"jobTitle": title, "companyName": "Acme"}, "location": {"city": "New York, NY, US"},
        "sections": {"jobs": {"items": [{"kind": "job", "title": f"{title} at Acme",
                                         "sources": [{"url": f"https://www.linkedin.com/in/{pid}"}]}]}}}}


def profile_callback(remaining: list[int]) -> Any:
    from aioresponses import CallbackResult

    def reply(url: Any, **kwargs: Any) -> CallbackResult:
        remaining[0] -= 1
        pid = str(url).rsplit("/", 1)[-1]
        return CallbackResult(status=200, payload=profile(pid), headers={CREDITS: str(remaining[0])})

    return reply


@pytest.fixture(autouse=True)
def _compat(monkeypatch: pytest.MonkeyPatch) -> None:
    aioresponses_compat(monkeypatch)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with aiohttp.ClientSession() as session:
        yield Harness(session, OrbitAdapter, BASE, KEY)


async def test_a_lost_202_is_retried_with_the_same_request_id_and_charged_once(harness: Harness) -> None:
    balance = [990]
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START, exception=aiohttp.ServerDisconnectedError())  # the 202 never arrived
        mock.post(START, status=200, payload=started("already_running"), headers={CREDITS: "990"})
        mock.get(STATUS, payload=state("completed", candidate_profile_ids=["p-a"]), repeat=True)
        mock.get(PROFILE, callback=profile_callback(balance), repeat=True)
        outcome = await harness.runner(SearchRequest(query=QUERY, max_results=10)).run()
        sent = bodies(mock, "POST", START)

    assert len(sent) == 2 and sent[0] == sent[1]
    assert sent[0]["requestId"] == harness.store.records[("run-1", "orbit")].idempotency_key
    assert sent[0]["runShape"] == "candidate_discovery"
    assert sent[0]["structuredIntent"]["experiences"][0]["title"] == "VP of Engineering"
    assert outcome.status == "found" and outcome.credits == 10 + 1 and outcome.credits_remaining == 989
    assert order == [POST_START, POST_START, POLL, read("p-a")]  # polled by the id the replay answered


async def test_an_idempotency_conflict_is_a_typed_error_and_never_a_second_run(harness: Harness) -> None:
    conflict = {"status": "failed", "error": {"code": "developer_api_idempotency_key_conflict",
                                              "message": "requestId was used with different parameters"}}
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START, status=409, payload=conflict)
        outcome = await harness.runner(SearchRequest(query=QUERY, max_results=10)).run()
        posts = calls(mock, "POST", "/v2/developer/deep-search")

    assert len(posts) == 1
    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error.type == "InvalidRequestError" and outcome.error.status == 409
    assert "developer_api_idempotency_key_conflict" in outcome.error.message
    assert outcome.credits == 0 and order == [POST_START]


async def test_candidate_profiles_are_read_as_they_appear_once_each(harness: Harness) -> None:
    balance = [1000]
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START, status=202, payload=started(), headers={CREDITS: "990"})
        mock.get(STATUS, payload=state("running", candidate_profile_ids=["p-a"], candidate_count=3))
        mock.get(STATUS, payload=state("running", candidate_profile_ids=["p-a", "p-b"], candidate_count=3))
        mock.get(STATUS, payload=state("completed", candidate_profile_ids=["p-a", "p-b", "p-c"]))
        mock.get(PROFILE, callback=profile_callback(balance), repeat=True)
        outcome = await harness.runner(SearchRequest(query=QUERY, max_results=10)).run()
        reads = calls(mock, "GET", "/v2/developer/profiles/")

    streamed = [h.provider_record_id for e in harness.events if hasattr(e, "hits") for h in e.hits]
    assert streamed == ["p-a", "p-b", "p-c"] and len(reads) == 3
    # each candidate read right after the poll that first listed it, and never again
    assert order == [POST_START, POLL, read("p-a"), POLL, read("p-b"), POLL, read("p-c")]
    assert outcome.records == 3 and outcome.credits == 13 and outcome.credits_remaining == 997
    first = next(e for e in harness.events if hasattr(e, "hits"))
    assert first.hits[0].entity.linkedin_url == "https://www.linkedin.com/in/p-a"  # type: ignore[union-attr]


async def test_a_lookup_streams_the_partial_profile_then_reads_the_full_one(harness: Harness) -> None:
    identity = PersonIdentity(linkedin_url="https://www.linkedin.com/in/jane-doe")
    request = SearchRequest(query="lookup", identity=identity, options={"orbit": {"run_shape": "partial_plus_full"}},
                            max_results=5)
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START, status=202, payload=started())
        mock.get(STATUS, payload=state("running"))
        mock.get(STATUS, payload=state("generating_sections", id="p-jane"))
        mock.get(STATUS, payload=state("completed", id="p-jane",
                                       section_generation={"sections_ready": True}))
        mock.get(PROFILE, payload=profile("p-jane", "Founder"))
        mock.get(PROFILE, payload=profile("p-jane", "Founder & CEO"))
        outcome = await harness.runner(request).run()
        sent = bodies(mock, "POST", START)

    assert sent[0] == {"requestId": sent[0]["requestId"], "runShape": "partial_plus_full",
                       "linkedinUrl": "https://www.linkedin.com/in/jane-doe"}
    titles = [h.entity.title for e in harness.events if hasattr(e, "hits") for h in e.hits]  # type: ignore[union-attr]
    assert titles == ["Founder", "Founder & CEO"]  # partial first, while generating sections
    assert outcome.status == "found" and outcome.pages >= 2
    # the partial profile read once sections are being generated, the full one once they are ready
    assert order == [POST_START, POLL, POLL, read("p-jane"), POLL, read("p-jane")]


async def test_a_failed_run_reports_the_failure_code(harness: Harness) -> None:
    failed = {**state("failed"), "failure": {"code": "identity_not_corroborated", "message": "Not verified."}}
    with aioresponses() as mock:
        mock.post(START, status=202, payload=started())
        mock.get(STATUS, payload=failed)
        outcome = await harness.runner(SearchRequest(query="lookup", max_results=5,
                                                     identity=PersonIdentity(email="x@y.io"))).run()

    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error.type == "JobFailedError" and "identity_not_corroborated" in outcome.error.message


async def test_profile_reads_carry_a_stable_idempotency_key_reused_by_retries(harness: Harness) -> None:
    balance = [990]
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START, status=202, payload=started(), headers={CREDITS: "990"})
        mock.get(STATUS, payload=state("completed", candidate_profile_ids=["p-a", "p-b"]), repeat=True)
        mock.get(f"{BASE}/v2/developer/profiles/p-a", exception=aiohttp.ServerDisconnectedError())
        mock.get(PROFILE, callback=profile_callback(balance), repeat=True)
        outcome = await harness.runner(SearchRequest(query=QUERY, max_results=10)).run()
        reads = calls(mock, "GET", "/v2/developer/profiles/")

    keys = [call.kwargs["headers"]["Idempotency-Key"] for call in reads]
    assert len(reads) == 3 and sorted(keys.count(k) for k in set(keys)) == [1, 2]  # the retry re-sent p-a's key
    assert outcome.records == 2 and outcome.credits == 10 + 2
    # p-a and p-b are read concurrently (one batch): their relative order is the event loop's
    assert order[:2] == [POST_START, POLL] and sorted(order[2:]) == [read("p-a"), read("p-a"), read("p-b")]


async def test_charges_follow_the_credits_header_and_the_budget_settles_at_them(harness: Harness) -> None:
    from aioresponses import CallbackResult

    from aggregator.budget import CreditBudget, current_budget

    # the second read did not lower the balance: a successful read is charged once per Idempotency-Key, so
    # this was a replay of a read of this run whose charge was never counted (a lost response, a crashed
    # process): it counts at the read price once, here
    balances = iter(["989", "989", "988"])

    def reply(url: Any, **kwargs: Any) -> CallbackResult:
        return CallbackResult(status=200, payload=profile(str(url).rsplit("/", 1)[-1]),
                              headers={CREDITS: next(balances)})

    budget = CreditBudget(100)
    token = current_budget.set(budget)
    try:
        with aioresponses() as mock:
            order = in_order(mock, BASE)
            mock.post(START, status=202, payload=started(), headers={CREDITS: "990"})
            mock.get(STATUS, payload=state("completed", candidate_profile_ids=["p-a", "p-b", "p-c"]), repeat=True)
            mock.get(PROFILE, callback=reply, repeat=True)
            runner = harness.runner(SearchRequest(query=QUERY, max_results=10))
            runner.adapter.profile_batch = 1  # type: ignore[attr-defined]  # one read at a time: ordered headers
            outcome = await runner.run()
    finally:
        current_budget.reset(token)

    assert outcome.records == 3 and outcome.credits == 10 + 1 + 1 + 1 and outcome.credits_remaining == 988
    assert budget.spent == 13 and budget.reserved == 0 and budget.by_provider == {"orbit": 13}
    assert order == [POST_START, POLL, read("p-a"), read("p-b"), read("p-c")]


def finished(status: str, **extra: Any) -> dict[str, Any]:
    """A re-sent requestId whose run has ended: its status document plus links (contract §3.3, INF)."""
    return {**state(status), **extra, "links": {"status": "/v2/developer/deep-search/req-1"}}


async def test_a_resent_request_id_that_finds_the_run_completed_is_polled_read_and_charged_once(
    harness: Harness,
) -> None:
    balance = [990]
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START, exception=aiohttp.ServerDisconnectedError())  # the 202 never arrived
        mock.post(START, status=200, headers={CREDITS: "990"},  # the run ended before the retry
                  payload=finished("completed", result={"candidate_profile_ids": ["p-a", "p-b"]}))
        mock.get(STATUS, payload=state("completed", candidate_profile_ids=["p-a", "p-b"]), repeat=True)
        mock.get(PROFILE, callback=profile_callback(balance), repeat=True)
        outcome = await harness.runner(SearchRequest(query=QUERY, max_results=10)).run()
        sent = bodies(mock, "POST", START)

    assert len(sent) == 2 and sent[0] == sent[1]  # the same requestId: never a second run
    assert outcome.status == "found" and outcome.records == 2
    assert outcome.credits == 10 + 2 and outcome.credits_remaining == 988  # the start counted once, not refunded
    assert order[:3] == [POST_START, POST_START, POLL] and sorted(order[3:]) == [read("p-a"), read("p-b")]


async def test_a_resent_request_id_that_finds_the_run_failed_reports_the_failure(harness: Harness) -> None:
    failure = {"code": "identity_not_corroborated", "message": "Not verified."}
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START, exception=aiohttp.ServerDisconnectedError())
        mock.post(START, status=200, payload=finished("failed", failure=failure), headers={CREDITS: "990"})
        mock.get(STATUS, payload={**state("failed"), "failure": failure}, repeat=True)
        outcome = await harness.runner(SearchRequest(query="lookup", max_results=5,
                                                     identity=PersonIdentity(email="x@y.io"))).run()

    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error.type == "JobFailedError" and "identity_not_corroborated" in outcome.error.message
    assert outcome.credits == 10 and order == [POST_START, POST_START, POLL]


async def test_a_resent_lookup_that_finds_the_run_completed_reads_the_full_profile_once(harness: Harness) -> None:
    identity = PersonIdentity(linkedin_url="https://www.linkedin.com/in/jane-doe")
    result = {"id": "p-jane", "section_generation": {"sections_ready": True, "materialized_section_count": 9}}
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START, exception=aiohttp.ServerDisconnectedError())
        mock.post(START, status=200, payload=finished("completed", result=result))
        mock.get(STATUS, payload=state("completed", **result), repeat=True)
        mock.get(PROFILE, payload=profile("p-jane", "Founder & CEO"))
        outcome = await harness.runner(SearchRequest(query="lookup", identity=identity, max_results=5)).run()

    assert outcome.status == "found" and outcome.records == 1 and outcome.credits == 10 + 1
    assert order == [POST_START, POST_START, POLL, read("p-jane")]


async def test_an_immediately_completed_profile_id_is_free_and_never_polled(harness: Harness) -> None:
    identity = PersonIdentity(profile_id="p-jane")
    immediate = {"request_id": "req-1", "run_id": None, "status": "completed", "result": {"id": "p-jane"},
                 "links": {"profile": "/v2/developer/profiles/p-jane"}}
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START, status=200, payload=immediate, headers={CREDITS: "1000"})
        mock.get(PROFILE, payload=profile("p-jane", "Founder & CEO"), headers={CREDITS: "999"})
        outcome = await harness.runner(SearchRequest(query="lookup", identity=identity, max_results=5)).run()

    assert outcome.status == "found" and outcome.credits == 0 + 1
    assert order == [POST_START, read("p-jane")]


async def test_a_failed_read_never_discards_the_reads_paid_beside_it(harness: Harness) -> None:
    """Three candidates read at once, one refused (402): the two paid reads are kept as records, the
    refused one stays unread and is tried once more (refused again) before the job fails."""
    from aioresponses import CallbackResult

    balance = [1000]
    paid = profile_callback(balance)

    def reply(url: Any, **kwargs: Any) -> CallbackResult:
        if str(url).endswith("/p-b"):
            return CallbackResult(status=402, payload={"status": "failed", "error": {
                "code": "insufficient_credits", "message": "Not enough credits.", "requiredCredits": 1,
                "remainingCredits": 0}})
        result: CallbackResult = paid(url, **kwargs)
        return result

    with aioresponses() as mock:
        mock.post(START, status=202, payload=started(), headers={CREDITS: "990"})
        mock.get(STATUS, payload=state("completed", candidate_profile_ids=["p-a", "p-b", "p-c"]), repeat=True)
        mock.get(PROFILE, callback=reply, repeat=True)
        outcome = await harness.runner(SearchRequest(query=QUERY, max_results=10)).run()
        reads = [str(url) for (method, url), sent in mock.requests.items()
                 if method == "GET" and "/profiles/" in str(url) for _ in sent]

    streamed = sorted(h.provider_record_id for e in harness.events if hasattr(e, "hits") for h in e.hits)
    assert streamed == ["p-a", "p-c"] and outcome.records == 2
    assert sorted(r.rsplit("/", 1)[-1] for r in reads) == ["p-a", "p-b", "p-b", "p-c"]
    assert outcome.error is not None and outcome.error.type == "InsufficientCreditsError"
