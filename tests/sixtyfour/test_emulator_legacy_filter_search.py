"""The legacy ``POST /search/start-filter-search`` of the Sixtyfour emulator over real sockets
(design §5 layer 3; contract §2.4).

Two documented clients: the OpenAPI's synchronous one (a ``FilterSearchResponse`` paged with
cursors) and the skill doc's polling one (``task_id`` -> ``GET /search/status`` -> download). Both
must get the rows ``/search/query`` gives for the same filters; expected rows come from the
world's ground truth, never from the emulator's engine.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from providers.sandbox.entities import CompanyEntity

if TYPE_CHECKING:  # fixtures come from tests/sixtyfour/conftest.py
    from conftest import Api, MakeApi

LEGACY = "/search/start-filter-search"
QUERY = "/search/query"
US = {"hq_country_iso2": {"$eq": "US"}}
ADDED = {"task_id", "status", "resource_handle_id", "exported_count"}


def _us_slugs(api: Api) -> list[str]:
    """Ground truth: the US companies Sixtyfour sees, in hidden-id order."""
    world = api.sandbox.world
    companies: list[CompanyEntity] = [c for c in world.companies
                                      if world.visible("sixtyfour", c.true_id) and c.hq_country_iso2 == "US"]
    return [c.linkedin_slug for c in companies]


async def _pages(api: Api, path: str, first: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await api.post(path, first)
    assert answer.status == 200, answer.body
    pages = [answer.json()]
    while pages[-1]["has_more"]:
        answer = await api.post(path, {"cursor": pages[-1]["next_cursor"]})
        assert answer.status == 200, answer.body
        pages.append(answer.json())
    return pages


def _ids(pages: list[dict[str, Any]]) -> list[str]:
    return [row["raw_document_id"] for page in pages for row in page["results"]]


async def test_sync_client_pages_the_alias_like_search_query(api: Api) -> None:
    body = {"simple_filters": US, "page_size": 10, "max_results": 35}
    pages = await _pages(api, LEGACY, body)
    assert _ids(pages) == _us_slugs(api)[:35]
    assert [p["page_count"] for p in pages] == [10, 10, 10, 5]
    assert [p["total_results"] for p in pages] == [10, 20, 30, 35]
    assert [p["remaining_results"] for p in pages] == [25, 15, 5, 0]
    assert pages[-1]["total_pages"] == 4 and pages[-1]["next_cursor"] is None
    assert pages[0]["parsed_query"] == {"mode": "company", "simple_filters": US}
    first = pages[0]
    assert first["status"] == "completed" and first["exported_count"] == 35
    assert first["resource_handle_id"].startswith("rh_") and first["task_id"]
    assert all({k: p[k] for k in ADDED} == {k: first[k] for k in ADDED} for p in pages)
    assert {p["search_id"] for p in pages} == {first["search_id"]}
    same = await _pages(api, QUERY, body)  # the same search through /search/query: the same answer
    assert [p["results"] for p in same] == [p["results"] for p in pages]
    assert [set(p) - ADDED for p in pages] == [set(p) for p in same]


async def test_a_cursor_from_the_alias_continues_on_search_query_and_must_stand_alone(api: Api) -> None:
    first = (await api.post(LEGACY, {"simple_filters": US, "page_size": 5, "max_results": 12})).json()
    mixed = await api.post(LEGACY, {"cursor": first["next_cursor"], "page_size": 5})
    assert mixed.status == 400
    assert mixed.json() == {"detail": "Cursor requests must contain only the cursor field."}
    second = (await api.post(QUERY, {"cursor": first["next_cursor"]})).json()
    assert second["page_number"] == 2 and second["task_id"] == first["task_id"]
    assert [r["raw_document_id"] for r in second["results"]] == _us_slugs(api)[5:10]
    garbage = await api.post(LEGACY, {"cursor": "not-a-cursor"})
    assert garbage.status == 400 and garbage.json() == {"detail": "Invalid or expired cursor"}
    null_cursor = await api.post(LEGACY, {"simple_filters": US, "cursor": None, "page_size": 5})
    assert null_cursor.status == 200 and null_cursor.json()["page_number"] == 1


async def test_polling_client_gets_a_completed_task_with_the_same_rows(api: Api) -> None:
    """SK-search: start, poll GET /search/status/{task_id}, download resource_handle_id's CSV."""
    started = (await api.post(LEGACY, {"mode": "company", "simple_filters": US, "max_results": 40})).json()
    expected = _us_slugs(api)[:40]
    for path in (f"/search/status/{started['task_id']}", f"/search/deep-search-status/{started['task_id']}"):
        status = (await api.get(path)).json()
        assert status["status"] == "completed" and status["task_id"] == started["task_id"]
        assert status["total_results"] == status["exported_count"] == 40
        assert status["search_id"] == started["search_id"]
        assert status["resource_handle_id"] == started["resource_handle_id"]
        assert status["close_time"] and status["error"] is None
    link = (await api.get("/search/download", params={"resource_handle_id": started["resource_handle_id"]})).json()
    download = await api.get(link["url"], key=None)
    assert download.status == 200
    rows = list(csv.DictReader(io.StringIO(download.body.decode())))
    world = api.sandbox.world
    by_slug = {c.linkedin_slug: c for c in world.companies}
    assert [r["website_domain"] for r in rows] == [by_slug[s].domain for s in expected]
    replay = await _pages(api, QUERY, {"search_id": started["search_id"], "page_size": 100, "max_results": 40})
    assert _ids(replay) == expected


async def test_mode_defaults_to_company_and_people_mode_works(api: Api) -> None:
    company = (await api.post(LEGACY, {"simple_filters": US, "page_size": 3})).json()
    assert company["parsed_query"]["mode"] == "company" and "total_available" not in company
    assert all("company_name" in r["raw_source"] for r in company["results"])
    assert company["remaining_results"] == len(_us_slugs(api)) - 3  # no cap below max_results' 1000
    people = (await api.post(LEGACY, {"mode": "people", "simple_filters": {"seniority": "VP"},
                                      "page_size": 3})).json()
    assert people["parsed_query"]["mode"] == "people" and people["total_available"] > 3
    assert all(r["raw_source"]["seniority"] == "VP" for r in people["results"])


async def test_validation_errors_match_search_query(api: Api) -> None:
    for page_size in (0, 101):
        answer = await api.post(LEGACY, {"simple_filters": US, "page_size": page_size})
        assert answer.status == 422
        (item,) = answer.json()["detail"]
        assert item["loc"] == ["body", "page_size"] and item["type"] in ("greater_than_equal", "less_than_equal")
    bad_mode = await api.post(LEGACY, {"simple_filters": US, "mode": "person"})
    assert bad_mode.status == 422 and bad_mode.json()["detail"][0]["loc"] == ["body", "mode"]
    for body in ({}, {"simple_filters": US, "filters": {"query": {"match_all": {}}}}):
        answer = await api.post(LEGACY, body)
        assert answer.status == 400
        assert answer.json() == {"detail": "Exactly one of simple_filters or filters is required."}
    too_many = await api.post(LEGACY, {"simple_filters": US, "max_results": 5001})
    assert too_many.status == 400 and too_many.json() == {"detail": "max_results must be between 1 and 5000"}
    unknown = await api.post(LEGACY, {"simple_filters": {"no_such_field": 1}})
    assert unknown.status == 400 and "no_such_field" in unknown.json()["detail"]
    assert api.emulator.list_tasks() == []  # a refused request leaves no task behind


async def test_the_alias_and_search_query_share_one_rate_limit_bucket(make_api: MakeApi) -> None:
    api = await make_api({"query_rate_limit": 3, "query_window_s": 60.0})
    assert (await api.post(LEGACY, {"simple_filters": US})).status == 200
    assert (await api.post(QUERY, {"simple_filters": US})).status == 200
    assert (await api.post(LEGACY, {"simple_filters": US})).status == 200
    refused = await api.post(LEGACY, {"simple_filters": US})
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1
    assert (await api.post(QUERY, {"simple_filters": US})).status == 429
    await api.sandbox.clock.sleep(60)  # virtual time: the window passes
    assert (await api.post(LEGACY, {"simple_filters": US})).status == 200
