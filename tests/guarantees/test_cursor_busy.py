"""Sixtyfour's 409 "cursor is already being processed" on ``POST /search/query`` is retried.

Contract sixtyfour §2.3: "409: cursor is already being processed (concurrent use of the same
cursor). Retry after the in-flight request finishes." The adapter sends its query pages with
``retry_on={409}``; the same cursor is re-sent and no row is lost or repeated.

Killed mutation: ``SixtyfourAdapter._query`` without ``retry_on=frozenset({409})``
(providers/sixtyfour/adapter.py): the 409 becomes a non-retryable ``InvalidRequestError`` and the
job ends ``partial``.

Request sequence (aioresponses) and sandbox: the emulator's own 409 (its cursor store refuses a
cursor whose request is in flight; here another client holds the first cursor until that 409 is
served).
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from aggregator.models import SearchRequest
from providers.sixtyfour.adapter import SixtyfourAdapter
from providers.sixtyfour.emulator.query import CursorError, CursorStore
from tests.fakes import FakeClock
from tests.guarantees.wiring import RequestLog, Wired

BASE = "https://api.sixtyfour.test"
QUERY_URL = f"{BASE}/search/query"
QUERY_ROUTE = "POST /search/query"
PEOPLE = "VP of Engineering at Series B SaaS startups in New York"
BUSY = {"detail": "Cursor is already being processed"}


def row(slug: str) -> dict[str, Any]:
    return {"raw_document_id": slug, "raw_source": {"publicId": slug, "fullName": slug.title(),
                                                    "headline": "VP of Engineering at Acme"}}


async def test_a_busy_cursor_is_sent_again_and_no_row_is_lost(session: aiohttp.ClientSession) -> None:
    clock = FakeClock()
    wired = Wired(session, SixtyfourAdapter, BASE, "sk-test", clock=clock, page_size=2)
    with aioresponses() as mock:
        log = RequestLog(mock, clock)
        log.reply("POST", f"{BASE}/search/start-deep-search",
                  payload={"task_id": "t-1", "status": "queued", "message": "ok"})
        log.reply("GET", re.compile(rf"^{re.escape(BASE)}/search/status/.*$"), repeat=True, payload={
            "task_id": "t-1", "status": "completed", "search_id": "s-1", "total_results": 3})
        log.reply("POST", QUERY_URL, payload={"search_id": "s-1", "has_more": True, "next_cursor": "c-1",
                                              "total_results": 2, "results": [row("a-a"), row("b-b")]})
        log.reply("POST", QUERY_URL, status=409, payload=BUSY)
        log.reply("POST", QUERY_URL, payload={"search_id": "s-1", "has_more": False, "next_cursor": None,
                                              "total_results": 3, "results": [row("c-c")]})
        outcome = await wired.runner(SearchRequest(query=PEOPLE, max_results=10)).run()

    queries = log.of("POST", "/search/query")
    assert [q.status for q in queries] == [200, 409, 200]
    assert queries[1].body == queries[2].body == {"cursor": "c-1"}  # the same cursor, sent again
    assert outcome.status == "found" and outcome.error is None, outcome
    assert outcome.records == 3 and outcome.retries == 1


def hold_the_first_cursor(cursors: CursorStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Another client's request holds the first cursor issued until the emulator refused it once
    with its own 409 (``CursorStore.claim``); returns the held tokens."""
    issue, claim = cursors.issue, cursors.claim
    held: list[str] = []

    def issue_held(*args: Any, **kwargs: Any) -> str:
        token = issue(*args, **kwargs)
        if not held:
            held.append(token)
            cursors.entries[token].in_flight = True  # someone else's request on it is being processed
        return token

    def claim_released_after_409(token: str, org: int) -> Any:
        try:
            return claim(token, org)
        except CursorError as exc:
            if exc.status == 409 and token in held:
                cursors.entries[token].in_flight = False  # the other request finished meanwhile
            raise

    monkeypatch.setattr(cursors, "issue", issue_held)
    monkeypatch.setattr(cursors, "claim", claim_released_after_409)
    return held


async def test_on_the_sandbox_the_emulators_cursor_busy_409_is_retried(
    make_aggregator: Any, monkeypatch: pytest.MonkeyPatch,
) -> None:
    agg = await make_aggregator(page_size=5)
    held = hold_the_first_cursor(agg.sandbox.emulator("sixtyfour").cursors, monkeypatch)
    report = await agg.search(PEOPLE, max_results=12, providers=("sixtyfour",))

    outcome = report.outcome("sixtyfour")
    assert outcome.status == "found" and outcome.error is None, outcome
    queries = agg.sandbox.requests("sixtyfour", QUERY_ROUTE)
    assert [q.status for q in queries][:3] == [200, 409, 200] and len(held) == 1
    assert queries[1].json() == queries[2].json() == {"cursor": held[0]}
    (task,) = agg.sandbox.emulator("sixtyfour").tasks.tasks.values()
    ids = [h.provider_record_id for r in report.records for h in r.hits]
    assert len(ids) == len(set(ids)) == outcome.records == min(12, len(task.delivered)) > 5  # none lost or repeated
