"""Exact request sequences of Sixtyfour filter search and export (aioresponses).

``in_order`` pins down every request sent, in order, with its exact path and query (the mocks
match some paths by regex).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aioresponses import aioresponses

from aggregator.errors import ConfigError
from aggregator.models import SearchRequest
from providers.sixtyfour.adapter import SixtyfourAdapter
from tests.fakes import aioresponses_compat
from tests.harness import Harness, bodies, calls, in_order

BASE = "https://api.sixtyfour.test"
QUERY = f"{BASE}/search/query"
CAPABILITIES = re.compile(rf"^{re.escape(BASE)}/search/filter-capabilities\?.*$")
FIELDS = [{"field": "hq_country_iso2", "field_type": "keyword", "supports_top_values": True},
          {"field": "employees_count", "field_type": "long", "sortable": True, "rangeable": True}]
WHERE = {"hq_country_iso2": {"$eq": "US"}, "employees_count": {"$gte": 100}}


def company(slug: str) -> dict[str, Any]:
    return {"raw_document_id": slug, "raw_source": {"company_name": slug.title(), "website_domain": f"{slug}.com",
                                                     "hq_country_iso2": "US", "employees_count": 200}}


def page(rows: list[dict[str, Any]], *, more: bool, cursor: str | None, total: int) -> dict[str, Any]:
    return {"search_id": "fs-1", "results": rows, "has_more": more, "next_cursor": cursor, "total_results": total}


@pytest.fixture(autouse=True)
def _compat(monkeypatch: pytest.MonkeyPatch) -> None:
    aioresponses_compat(monkeypatch)


@pytest.fixture
async def harness() -> AsyncIterator[Harness]:
    async with aiohttp.ClientSession() as session:
        yield Harness(session, SixtyfourAdapter, BASE, "sk-test", page_size=3)


async def test_a_filter_search_pages_past_short_pages_while_has_more(harness: Harness) -> None:
    request = SearchRequest(query="filter search", mode="company", simple_filters=WHERE, max_results=20,
                            exclude=("excluded.com",))
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(QUERY, payload=page([company("a")], more=True, cursor="c1", total=1))  # short: exclusions
        mock.post(QUERY, payload=page([], more=True, cursor="c2", total=1))  # empty, still more
        mock.post(QUERY, payload=page([company("b"), company("c")], more=False, cursor=None, total=3))
        outcome = await harness.runner(request).run()
        sent = bodies(mock, "POST", QUERY)
        polls = calls(mock, "GET", "/search/status/")

    assert outcome.status == "found" and outcome.records == 3 and outcome.pages == 3
    assert sent[0] == {"mode": "company", "page_size": 3, "max_results": 20, "simple_filters": WHERE,
                       "exclude_entity_ids": ["excluded.com"]}
    assert sent[1:] == [{"cursor": "c1"}, {"cursor": "c2"}]
    assert polls == []  # a filter search is ready at once
    assert order == ["POST /search/query"] * 3


async def test_an_expired_cursor_reruns_from_the_search_id_and_resends_exclusions(harness: Harness) -> None:
    request = SearchRequest(query="filter search", mode="company", simple_filters=WHERE, max_results=20,
                            exclude=("excluded.com",))
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(QUERY, payload=page([company("a"), company("b"), company("c")], more=True, cursor="c1", total=3))
        mock.post(QUERY, status=400, payload={"detail": "Invalid or expired cursor"})
        mock.post(QUERY, payload=page([company("a"), company("b"), company("c")], more=True, cursor="c9", total=3))
        mock.post(QUERY, payload=page([company("d")], more=False, cursor=None, total=4))
        outcome = await harness.runner(request).run()
        sent = bodies(mock, "POST", QUERY)

    assert outcome.records == 4
    assert order == ["POST /search/query"] * 4
    assert sent[:2] == [{"mode": "company", "page_size": 3, "max_results": 20, "simple_filters": WHERE,
                         "exclude_entity_ids": ["excluded.com"]}, {"cursor": "c1"}]
    assert sent[2] == {"search_id": "fs-1", "page_size": 3, "max_results": 20,
                       "exclude_entity_ids": ["excluded.com"]}  # a search_id stores no exclusions (§1.5)
    assert sent[3] == {"cursor": "c9"}


async def test_filters_are_checked_against_capabilities_before_the_paid_query(harness: Harness) -> None:
    bad = SearchRequest(query="filter search", mode="company", max_results=5,
                        simple_filters={"hq_country_iso2": {"$gt": "A"}})
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.get(CAPABILITIES, payload={"mode": "company", "fields": FIELDS}, repeat=True)
        with pytest.raises(ConfigError) as info:
            await harness.adapter.prepare(bad)
        await harness.adapter.prepare(bad.model_copy(update={"simple_filters": WHERE}))
        queries = calls(mock, "POST", "/search/query")
        capability_reads = calls(mock, "GET", "/search/filter-capabilities")

    assert info.value.field == "simple_filters.hq_country_iso2.$gt"
    assert queries == [] and len(capability_reads) == 1  # cached per mode
    assert order == ["GET /search/filter-capabilities?mode=company"]


async def test_a_409_on_export_adopts_the_running_export(harness: Harness) -> None:
    harness.adapter.fetch_via = "export"
    status = re.compile(rf"^{re.escape(BASE)}/search/status/(.+)$")
    storage = "https://storage.test/results.csv?sig=1"
    with aioresponses() as mock:
        order = in_order(mock, BASE)
        mock.post(f"{BASE}/search/start-deep-search", payload={"task_id": "t-1", "status": "queued", "message": ""})
        mock.get(f"{BASE}/search/status/t-1", payload={"task_id": "t-1", "status": "completed", "start_time": "x",
                                                       "search_id": "s-1"})
        mock.post(f"{BASE}/search/export", status=409,
                  payload={"detail": "Export workflow is already running for this search.", "task_id": "exp-7"})
        mock.get(status, payload={"task_id": "exp-7", "status": "running", "start_time": "x"})
        mock.get(status, payload={"task_id": "exp-7", "status": "completed", "start_time": "x",
                                  "resource_handle_id": "rh-7"})
        mock.get(re.compile(rf"^{re.escape(BASE)}/search/download\?.*$"),
                 payload={"url": storage, "bucket": "b", "path": "p"})
        mock.get(storage, body="full_name,linkedin\nJane Doe,https://www.linkedin.com/in/jane\n",
                 content_type="text/csv")
        outcome = await harness.runner(SearchRequest(query="CTO in Austin", max_results=5)).run()
        exports = calls(mock, "POST", "/search/export")
        polled = calls(mock, "GET", "/search/status/exp-7")

    assert outcome.status == "found" and outcome.records == 1
    assert len(exports) == 1 and len(polled) == 2  # adopted, polled, never a second export
    assert order == ["POST /search/start-deep-search", "GET /search/status/t-1", "POST /search/export",
                     "GET /search/status/exp-7", "GET /search/status/exp-7",
                     "GET /search/download?resource_handle_id=rh-7", f"GET {storage}"]
