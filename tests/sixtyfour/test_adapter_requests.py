"""Exact request sequences of the Sixtyfour adapter (aioresponses; no sockets).

Covers: the idempotency key is minted by the core, journaled before the submit, and identical on
every retry; a 429's Retry-After is waited out and is not a failure; follow-up pages are
cursor-only; a 404 on /search/status falls back to the legacy status path. ``in_order`` pins
down every request sent, in order, with its exact path (the mocks match status paths by regex).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import CallbackResult, aioresponses

from aggregator.models import SearchRequest
from providers.sixtyfour.adapter import SixtyfourAdapter
from tests.fakes import aioresponses_compat
from tests.harness import Harness, bodies, in_order

BASE = "https://api.sixtyfour.test"
KEY = "sk-test-canary-0001"
START_URL = f"{BASE}/search/start-deep-search"
STATUS_URL = re.compile(rf"^{re.escape(BASE)}/search/status/.*$")
LEGACY_URL = re.compile(rf"^{re.escape(BASE)}/search/deep-search-status/.*$")
QUERY_URL = f"{BASE}/search/query"
START, STATUS, LEGACY, QUERY = ("POST /search/start-deep-search", "GET /search/status/t-1",
                                "GET /search/deep-search-status/t-1", "POST /search/query")


def person_row(slug: str) -> dict[str, Any]:
    return {"raw_document_id": slug, "raw_source": {"publicId": slug, "fullName": slug.title(),
                                                    "headline": "VP of Engineering at Acme"}}


def completed(task_id: str = "t-1", search_id: str = "s-1") -> dict[str, Any]:
    return {"task_id": task_id, "status": "completed", "start_time": "2026-11-21T10:00:00Z",
            "search_id": search_id, "total_results": 3}


@pytest.fixture(autouse=True)
def _compat(monkeypatch: pytest.MonkeyPatch) -> None:
    aioresponses_compat(monkeypatch)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with aiohttp.ClientSession() as session:
        yield Harness(session, SixtyfourAdapter, BASE, KEY, page_size=2)


async def test_the_idempotency_key_is_journaled_first_and_reused_on_every_retry(harness: Harness) -> None:
    seen_in_store: list[str | None] = []

    def store_then(status: int, payload: dict[str, Any]) -> Any:
        def callback(url: Any, **kwargs: Any) -> CallbackResult:
            record = harness.store.records.get(("run-1", "sixtyfour"))
            seen_in_store.append(record.idempotency_key if record else None)
            return CallbackResult(status=status, payload=payload)

        return callback

    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START_URL, callback=store_then(503, {"detail": "Internal server error"}))
        mock.post(START_URL, exception=aiohttp.ServerDisconnectedError())
        mock.post(START_URL, status=502, payload={"detail": "NL upstream transport error"})
        queued = {"task_id": "t-1", "status": "queued", "message": "ok"}
        mock.post(START_URL, callback=store_then(200, queued))
        mock.get(STATUS_URL, payload=completed(), repeat=True)
        mock.post(QUERY_URL, payload={"total_results": 0, "has_more": False, "results": []})
        outcome = await harness.runner(SearchRequest(query="VP Engineering NYC", max_results=3)).run()
        sent = bodies(mock, "POST", START_URL)

    assert outcome.status == "no_result", outcome
    assert len(sent) == 4
    keys = {body["search_id"] for body in sent}
    assert len(keys) == 1
    key = keys.pop()
    assert seen_in_store == [key, key]  # journaled before the first attempt and the last
    assert outcome.retries == 3
    assert order == [START, START, START, START, STATUS, QUERY]


async def test_a_429_with_retry_after_is_waited_out_and_not_a_failure(harness: Harness) -> None:
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START_URL, status=429, headers={"Retry-After": "17"},
                  payload={"detail": "Too many concurrent deep searches"})
        mock.post(START_URL, payload={"task_id": "t-1", "status": "queued", "message": "ok"})
        mock.get(STATUS_URL, payload=completed(), repeat=True)
        mock.post(QUERY_URL, payload={"total_results": 1, "has_more": False, "results": [person_row("a-b")]})
        outcome = await harness.runner(SearchRequest(query="VP Engineering NYC", max_results=3)).run()

    assert outcome.status == "found" and outcome.records == 1 and outcome.error is None
    assert 17.0 in harness.clock.sleeps
    assert harness.client.stats.rate_limited == 1
    assert order == [START, START, STATUS, QUERY]


async def test_follow_up_pages_send_only_the_cursor(harness: Harness) -> None:
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START_URL, payload={"task_id": "t-1", "status": "queued", "message": "ok"})
        mock.get(STATUS_URL, payload=completed(search_id="s-9"), repeat=True)
        mock.post(QUERY_URL, payload={"total_results": 2, "has_more": True, "next_cursor": "c-1",
                                      "results": [person_row("a-a"), person_row("b-b")]})
        mock.post(QUERY_URL, payload={"total_results": 3, "has_more": False, "next_cursor": None,
                                      "results": [person_row("c-c")]})
        outcome = await harness.runner(SearchRequest(query="q", max_results=10, exclude=("x-y",))).run()
        sent = bodies(mock, "POST", QUERY_URL)

    assert outcome.records == 3 and outcome.pages == 2
    assert sent[0] == {"search_id": "s-9", "page_size": 2, "max_results": 10, "exclude_entity_ids": ["x-y"]}
    assert sent[1] == {"cursor": "c-1"}
    assert order == [START, STATUS, QUERY, QUERY]  # polled by the task id; no page read twice


async def test_status_falls_back_to_the_legacy_path_on_404(harness: Harness) -> None:
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START_URL, payload={"task_id": "t-1", "status": "queued", "message": "ok"})
        mock.get(STATUS_URL, status=404, payload={"detail": "Not Found"})
        mock.get(LEGACY_URL, payload={"task_id": "t-1", "status": "running", "start_time": "x"})
        mock.get(LEGACY_URL, payload=completed())
        mock.post(QUERY_URL, payload={"total_results": 1, "has_more": False, "results": [person_row("a-b")]})
        outcome = await harness.runner(SearchRequest(query="q", max_results=3)).run()

    assert outcome.status == "found"
    assert order == [START, STATUS, LEGACY, LEGACY, QUERY]  # after one 404, only the legacy path


async def test_an_unknown_status_value_fails_the_provider_with_a_protocol_error(harness: Harness) -> None:
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START_URL, payload={"task_id": "t-1", "status": "queued", "message": "ok"})
        mock.get(STATUS_URL, payload={"task_id": "t-1", "status": "exploded", "start_time": "x"})
        outcome = await harness.runner(SearchRequest(query="q", max_results=3)).run()

    assert outcome.status == "failed"
    assert outcome.error is not None and outcome.error.type == "ProviderProtocolError"
    assert "exploded" in outcome.error.message
    assert order == [START, STATUS]  # no retry of an answer it cannot understand, no page read


async def test_the_api_key_is_sent_as_x_api_key_and_never_in_error_messages(harness: Harness) -> None:
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(START_URL, status=401, body=f'{{"detail": "Invalid API key {KEY}"}}')
        outcome = await harness.runner(SearchRequest(query="q", max_results=3)).run()
        headers = next(iter(mock.requests.values()))[0].kwargs["headers"]

    assert headers["x-api-key"] == KEY
    assert outcome.status == "failed" and outcome.error is not None
    assert outcome.error.type == "AuthError" and KEY not in outcome.error.message
    assert order == [START]  # a 401 is not retried
