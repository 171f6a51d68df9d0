"""Filter search, field discovery and exports of the Sixtyfour emulator over real sockets
(design §5 layer 3; contract §1.4, §2, §5).

Expected rows are computed from the world's ground truth with plain Python (the companies and
people Sixtyfour sees, their hidden-id order and attributes), never from the emulator's documents
or filter engine, so a bug in either rendering or matching shows up here.
"""

from __future__ import annotations

import csv
import io
from typing import TYPE_CHECKING, Any

from providers.sandbox.entities import CompanyEntity, PersonEntity

if TYPE_CHECKING:  # fixtures come from tests/sixtyfour/conftest.py
    from conftest import Api, MakeApi

CAPS = "/search/filter-capabilities"
VALUES = "/search/filter-field-values"
QUERY = "/search/query"
EXPORT = "/search/export"
US = {"hq_country_iso2": {"$eq": "US"}}


def _companies(api: Api) -> list[CompanyEntity]:
    """Ground truth: the world's companies that Sixtyfour sees, in hidden-id order."""
    world = api.sandbox.world
    return [c for c in world.companies if world.visible("sixtyfour", c.true_id)]


def _people(api: Api) -> list[PersonEntity]:
    """Ground truth: the people Sixtyfour sees (at an employer it sees), in hidden-id order."""
    world = api.sandbox.world
    return [p for p in world.people
            if world.visible("sixtyfour", p.true_id) and world.visible("sixtyfour", p.company_id)]


def _us(api: Api) -> list[CompanyEntity]:
    return [c for c in _companies(api) if c.hq_country_iso2 == "US"]


def _slugs(entities: list[CompanyEntity] | list[PersonEntity]) -> list[str]:
    return [e.linkedin_slug for e in entities]


async def _pages(api: Api, first: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await api.post(QUERY, first)
    assert answer.status == 200, answer.body
    pages = [answer.json()]
    while pages[-1]["has_more"]:
        answer = await api.post(QUERY, {"cursor": pages[-1]["next_cursor"]})
        assert answer.status == 200, answer.body
        pages.append(answer.json())
    return pages


def _ids(pages: list[dict[str, Any]]) -> list[str]:
    return [row["raw_document_id"] for page in pages for row in page["results"]]


# -- capabilities -----------------------------------------------------------------------------


async def test_capabilities_describe_each_mode_and_are_cached_until_refresh(api: Api) -> None:
    doc = (await api.get(CAPS)).json()
    assert doc["mode"] == "company" and doc["index_name"] == "companies"
    fields = {f["field"]: f for f in doc["fields"]}
    assert list(fields) == sorted(fields)
    assert fields["employees_count"] == {
        "field": "employees_count", "field_type": "long", "nested_path": None, "queryable": True,
        "sortable": True, "rangeable": True, "sort_field": None,
        "aggregation_field": "employees_count", "value_type": "long", "supports_top_values": True,
        "supports_exact_filter_snippet": True, "related_fields": [],
        "preferred_for_exact_match": False}
    assert fields["description"]["field_type"] == "text"
    assert not fields["description"]["sortable"] and not fields["description"]["supports_top_values"]
    assert fields["company_name"]["sort_field"] == "company_name.keyword"
    assert fields["hq_country_iso2"]["field_type"] == "keyword"
    assert fields["hq_country_iso2"]["preferred_for_exact_match"]
    assert fields["funding_rounds.name"]["field_type"] == "keyword"
    assert fields["funding_rounds.name"]["nested_path"] == "funding_rounds"
    assert doc["nested_paths"] == ["company_locations_full", "company_updates", "employees_count_by_country",
                                   "funding_rounds"]
    assert len(doc["simple_query_operators"]) == 19 and doc["cache_ttl_seconds"] == 3600
    assert doc["limits"] == {"max_query_depth": 8, "max_clause_count": 100,
                             "max_terms_per_clause": 500, "max_sort_clauses": 3,
                             "max_string_length": 1000}
    await api.sandbox.clock.sleep(5)
    again = (await api.get(CAPS, params={"mode": "company"})).json()
    assert again == doc  # served from the cache
    fresh = (await api.get(CAPS, params={"refresh": "true"})).json()
    assert fresh["generated_at_epoch_ms"] >= doc["generated_at_epoch_ms"] + 4000
    assert fresh["mapping_hash"] == doc["mapping_hash"]
    people = (await api.get(CAPS, params={"mode": "people"})).json()
    assert people["index_name"] == "people" and people["nested_paths"] == ["currentCompanies"]
    company_id = next(f for f in people["fields"] if f["field"] == "currentCompanies.company.companyId")
    assert company_id["nested_path"] == "currentCompanies" and company_id["field_type"] == "long"
    bad = await api.get(CAPS, params={"mode": "robots"})
    assert bad.status == 400 and bad.json()["code"] == "unsupported_mode"


# -- field values -----------------------------------------------------------------------------


async def test_field_values_rank_by_count_with_percent_and_reusable_snippets(api: Api) -> None:
    answer = await api.post(VALUES, {"field": "hq_country_iso2", "top_k": 4})
    assert answer.status == 200
    doc = answer.json()
    docs = _companies(api)
    counts: dict[str, int] = {}
    for c in docs:
        counts[c.hq_country_iso2] = counts.get(c.hq_country_iso2, 0) + 1
    expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:4]
    assert [(v["value"], v["count"]) for v in doc["values"]] == expected
    assert doc["total_scoped_documents"] == len(docs) and doc["mode"] == "company"
    assert doc["canonical_field"] == doc["aggregation_field"] == "hq_country_iso2"
    assert doc["value_type"] == "keyword" and doc["nested_path"] is None
    top = doc["values"][0]
    assert top["percent_of_scope"] == round(top["count"] / len(docs), 6)
    assert top["filter_snippet"] == {"term": {"hq_country_iso2": top["value"]}}
    search = (await api.post(QUERY, {"filters": {"query": top["filter_snippet"]}})).json()
    assert search["page_count"] + search["remaining_results"] == top["count"]


async def test_field_values_scopes_and_nested_fields(api: Api) -> None:
    us_companies = _us(api)
    scoped = (await api.post(VALUES, {"field": "industry", "simple_filters": US})).json()
    assert scoped["total_scoped_documents"] == len(us_companies)
    assert sum(v["count"] for v in scoped["values"]) == len(us_companies)  # one industry each
    dsl = {"query": {"term": {"hq_country_iso2": "US"}}}
    same = (await api.post(VALUES, {"field": "industry", "filters": dsl})).json()
    assert same["values"] == scoped["values"]
    rounds = (await api.post(VALUES, {"field": "funding_rounds.name", "top_k": 100})).json()
    seeds = sum(1 for c in _companies(api) if any(r.name == "Seed" for r in c.funding_rounds))
    seed = next(v for v in rounds["values"] if v["value"] == "Seed")
    assert seed["count"] == seeds  # documents, not rounds
    assert seed["filter_snippet"] == {"nested": {"path": "funding_rounds", "query": {
        "term": {"funding_rounds.name.keyword": "Seed"}}}}
    missing = next(v for v in rounds["values"] if v["value"] is None)  # the missing bucket
    assert missing["count"] == sum(1 for c in _companies(api) if not c.funding_rounds) > 0


async def test_field_values_errors_carry_the_documented_codes(api: Api) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"mode": "robots", "field": "industry"}, "unsupported_mode"),
        ({"field": "headcount"}, "unsupported_field"),
        ({"field": ""}, "invalid_request"),
        ({"field": "description"}, "top_values_not_supported"),
        ({"field": "industry", "simple_filters": US, "filters": {"query": {"match_all": {}}}},
         "invalid_scoped_filters"),
        ({"field": "industry", "filters": {"query": {"match_all": {}}, "size": 5}},
         "invalid_scoped_filters"),
        ({"field": "industry", "filters": {"query": {"match_all": {}}, "sort": ["founded_year"]}},
         "invalid_scoped_filters"),
        ({"field": "industry", "filters": {}}, "invalid_scoped_filters"),
        ({"field": "industry", "simple_filters": {**US, "$sort": {"employees_count": -1}}},
         "invalid_scoped_filters"),
        ({"field": "industry", "simple_filters": {**US, "$limit": 5}}, "invalid_scoped_filters"),
        ({"field": "industry", "simple_filters": {"headcount": 5}}, "invalid_scoped_filters"),
    ]
    for body, code in cases:
        answer = await api.post(VALUES, body)
        assert answer.status == 400, body
        assert answer.json()["code"] == code and isinstance(answer.json()["detail"], str)
    for body in ({"field": "industry", "top_k": 0}, {"field": "industry", "top_k": 101}, {}):
        assert (await api.post(VALUES, body)).status == 422


async def test_field_values_are_limited_per_org_per_minute(make_api: MakeApi) -> None:
    api = await make_api({"field_values_rate_limit": 3, "field_values_window_s": 60})
    body = {"field": "industry", "top_k": 2}
    assert [(await api.post(VALUES, body)).status for _ in range(3)] == [200] * 3
    refused = await api.post(VALUES, body)  # the fake clock has not moved: the window is still full
    assert refused.status == 429 and refused.headers["Retry-After"] == "60"
    assert refused.json()["detail"].startswith("Rate limit exceeded")
    assert (await api.as_org(2).post(VALUES, body)).status == 200
    assert api.stats()["endpoints"]["POST /search/filter-field-values"]["rate_limited"] == 1
    await api.sandbox.clock.sleep(59)
    assert (await api.post(VALUES, body)).status == 429
    await api.sandbox.clock.sleep(1)
    assert (await api.post(VALUES, body)).status == 200  # the window has passed


# -- fresh searches ---------------------------------------------------------------------------


async def test_fresh_search_pages_with_cumulative_totals_and_replays_by_search_id(
    api: Api,
) -> None:
    expected = _slugs(_us(api))[:35]
    pages = await _pages(api, {"mode": "company", "simple_filters": US, "page_size": 10,
                               "max_results": 35})
    assert _ids(pages) == expected
    assert [p["page_count"] for p in pages] == [10, 10, 10, 5]
    assert [p["total_results"] for p in pages] == [10, 20, 30, 35]
    assert [p["remaining_results"] for p in pages] == [25, 15, 5, 0]
    assert all(p["max_pages"] == 4 and p["page_size"] == 10 for p in pages)
    assert ["total_pages" in p for p in pages] == [False, False, False, True]
    assert pages[-1]["total_pages"] == 4 and pages[-1]["next_cursor"] is None
    search_id = pages[0]["search_id"]
    assert search_id and {p["search_id"] for p in pages} == {search_id}
    assert pages[0]["parsed_query"] == {"mode": "company", "simple_filters": US}
    assert "total_available" not in pages[0]  # people mode only
    source = pages[0]["results"][0]["raw_source"]
    assert {"company_updates", "funding_rounds", "hq_location", "ownership_status",
            "last_funding_round_amount_raised", "company_legal_name"} <= set(source)
    replay = await api.post(QUERY, {"search_id": search_id, "page_size": 10, "max_results": 35})
    assert replay.json()["results"] == pages[0]["results"] and replay.json()["search_id"] == search_id
    echoed = await api.post(QUERY, {"parsed_query": pages[0]["parsed_query"], "page_size": 10})
    assert echoed.json()["results"] == pages[0]["results"]
    assert api.stats()["filter_searches"] == 2


async def test_people_search_reports_total_available_and_matches_one_employer(api: Api) -> None:
    people = _people(api)
    vps = [p.linkedin_slug for p in people if p.seniority == "VP"]
    first = (await api.post(QUERY, {"mode": "people", "simple_filters": {"seniority": "VP"},
                                    "page_size": 5, "max_results": 7})).json()
    assert first["total_available"] == len(vps) > 7
    assert [r["raw_document_id"] for r in first["results"]] == vps[:5]
    employer = api.sandbox.world.company(people[3].company_id)
    company_id = employer.linkedin_id  # Sixtyfour's companyId is the LinkedIn company id
    staff = [p.linkedin_slug for p in people if p.company_id == employer.true_id]
    elem = {"currentCompanies": {"$elemMatch": {"currentCompanies.company.companyId": company_id}}}
    pages = await _pages(api, {"mode": "people", "simple_filters": elem, "page_size": 100})
    assert _ids(pages) == staff and pages[0]["total_available"] == len(staff)
    natural = (await api.post(QUERY, {"query": "VP of Engineering in New York"})).json()
    assert natural["parsed_query"]["mode"] == "people" and natural["total_available"] > 0


async def test_exclusions_make_pages_short_or_empty_while_has_more_stays_true(api: Api) -> None:
    ranked = sorted(_companies(api), key=lambda c: -c.employees_count)  # ties: hidden-id order
    first = {"simple_filters": {"$sort": [{"employees_count": "desc"}]}, "page_size": 5,
             "max_results": 15}
    assert _ids(await _pages(api, first)) == _slugs(ranked)[:15]
    page1, page2 = ranked[:5], ranked[5:10]
    excluded = [str(page1[0].linkedin_id), f"https://www.linkedin.com/company/{page1[1].linkedin_slug}",
                page1[2].domain, page1[3].linkedin_slug, f"https://www.linkedin.com/company/{page1[4].linkedin_slug}/",
                page2[0].domain, "no-such-company.example"]
    pages = await _pages(api, {**first, "exclude_entity_ids": excluded,
                               "exclude_list_ids": ["list-1"]})
    assert [p["page_count"] for p in pages] == [0, 4, 5]
    assert pages[0]["has_more"] and pages[0]["results"] == [] and pages[0]["next_cursor"]
    assert [p["total_results"] for p in pages] == [0, 4, 9]
    assert _ids(pages) == _slugs(ranked)[6:15]
    sid = pages[0]["search_id"]  # the search_id stores no exclusions: a replay sees all rows
    assert len(_ids(await _pages(api, {"search_id": sid, "max_results": 15}))) == 15


async def test_query_level_caps_combine_with_max_results(api: Api) -> None:
    us = _slugs(_us(api))
    assert len(us) > 20

    async def rows(body: dict[str, Any]) -> list[str]:
        return _ids(await _pages(api, {"page_size": 5, **body}))

    assert await rows({"simple_filters": {**US, "$limit": 7}}) == us[:7]
    assert await rows({"simple_filters": {**US, "$limit": 7}, "max_results": 4}) == us[:4]
    assert await rows({"simple_filters": {**US, "$limit": 3}, "max_results": 50}) == us[:3]
    dsl = {"query": {"term": {"hq_country_iso2": "US"}}, "size": 6}
    assert await rows({"filters": dsl}) == us[:6]
    capped = (await api.post(QUERY, {"simple_filters": {**US, "$limit": 7}, "page_size": 5})).json()
    assert capped["max_pages"] == 2 and capped["remaining_results"] == 2
    everyone = {"query": {"match_all": {}}, "size": 1500}  # DOC: size drives the cap when
    assert len(_people(api)) > 1500  # max_results is omitted (default would be 1000)
    big = (await api.post(QUERY, {"mode": "people", "filters": everyone, "page_size": 100})).json()
    assert big["max_pages"] == 15 and big["remaining_results"] == 1400
    both = {"mode": "people", "filters": everyone, "page_size": 100, "max_results": 1000}
    assert (await api.post(QUERY, both)).json()["max_pages"] == 10


async def test_invalid_or_mixed_query_sources_are_400(api: Api) -> None:
    checks: list[tuple[dict[str, Any], str]] = [
        ({"simple_filters": US, "filters": {"query": {"match_all": {}}}}, "Exactly one query source"),
        ({"simple_filters": US, "query": "VPs"}, "Exactly one query source"),
        ({"filters": {"sort": [{"employees_count": "asc"}]}}, "filters.query is required"),
        ({"simple_filters": {"employees": {"$gt": 5}}}, "Unknown field 'employees'"),
        ({"simple_filters": {"industry": {"$regex": "x"}}}, "'$regex' on field 'industry'"),
        ({"simple_filters": {"$sort": {"description": 1}}}, "'description' is not sortable"),
        ({"mode": "company", "query": "VP of Sales"}, "only supported in people mode"),
        ({"parsed_query": {"nothing": 1}}, "parsed_query must contain exactly one"),
    ]
    for body, detail in checks:
        answer = await api.post(QUERY, body)
        assert answer.status == 400, body
        assert detail in answer.json()["detail"], answer.json()
    page = (await api.post(QUERY, {"simple_filters": US, "page_size": 2})).json()
    mixed = await api.post(QUERY, {"cursor": page["next_cursor"], "simple_filters": US})
    assert mixed.status == 400
    assert (await api.post(QUERY, {"search_id": "unknown"})).status == 404
    assert (await api.as_org(2).post(QUERY, {"search_id": page["search_id"]})).status == 404


# -- exports ----------------------------------------------------------------------------------


async def _status(api: Api, task_id: str) -> dict[str, Any]:
    return await api.status(task_id)


async def _csv_rows(api: Api, handle: str) -> list[dict[str, str]]:
    link = (await api.get("/search/download", params={"resource_handle_id": handle})).json()
    assert "/export/" in link["path"]
    body = (await api.get(link["url"], key=None)).body.decode()
    return list(csv.DictReader(io.StringIO(body)))


SLOW_EXPORTS = {"export_queue_s": 50.0, "export_duration_s": 200.0}


async def test_export_runs_on_the_clock_and_downloads_rows_minus_exclusions(
    make_api: MakeApi,
) -> None:
    api = await make_api(SLOW_EXPORTS)
    us = _us(api)
    page = (await api.post(QUERY, {"simple_filters": US})).json()
    excluded = [us[0].domain, str(us[2].linkedin_id)]
    started = await api.post(EXPORT, {"search_id": page["search_id"], "max_results": 12,
                                      "exclude_entity_ids": excluded})
    assert started.status == 200
    task_id = started.json()["task_id"]
    assert started.json()["status"] == "queued"
    assert (await _status(api, task_id))["status"] == "queued"
    await api.sandbox.clock.sleep(60)
    running = await _status(api, task_id)
    assert running["status"] == "running" and running["resource_handle_id"] is None
    assert running["progress_message"] in ("Fetching rows", "Writing CSV")
    await api.sandbox.clock.sleep(200)
    done = await _status(api, task_id)
    assert done["status"] == "completed" and done["total_results"] == done["exported_count"] == 12
    assert done["search_id"] == page["search_id"] and done["resource_handle_id"].startswith("rh_")
    legacy = await api.get(f"/search/deep-search-status/{task_id}")
    assert legacy.json() == done
    rows = await _csv_rows(api, done["resource_handle_id"])
    kept = [d for i, d in enumerate(us) if i not in (0, 2)][:12]
    assert [r["website_domain"] for r in rows] == [c.domain for c in kept]
    assert list(rows[0])[:3] == ["company_name", "website", "website_domain"]
    assert api.stats()["exports_started"] == 1


async def test_second_export_of_a_running_search_is_409_with_its_task_id(
    make_api: MakeApi,
) -> None:
    api = await make_api(SLOW_EXPORTS)
    page = (await api.post(QUERY, {"simple_filters": US})).json()
    body = {"search_id": page["search_id"], "max_results": 5}
    first = (await api.post(EXPORT, body)).json()["task_id"]
    conflict = await api.post(EXPORT, body)
    assert conflict.status == 409
    assert conflict.json() == {"detail": "Export workflow is already running for this search.",
                               "task_id": first}
    other = (await api.post(QUERY, {"simple_filters": {"hq_country_iso2": "GB"}})).json()
    assert (await api.post(EXPORT, {"search_id": other["search_id"]})).status == 200
    api.emulator.force_complete(first)
    assert (await _status(api, first))["status"] == "completed"
    again = await api.post(EXPORT, body)
    assert again.status == 200 and again.json()["task_id"] != first
    assert api.stats()["exports_started"] == 3


async def test_export_sources_validation_and_deep_search_exports(api: Api) -> None:
    for body in ({}, {"search_id": "x", "parsed_query": {"simple_filters": US}}):
        answer = await api.post(EXPORT, body)
        assert answer.status == 400
        assert answer.json() == {"detail": "Provide exactly one of search_id or parsed_query."}
    assert (await api.post(EXPORT, {"search_id": "unknown"})).status == 404
    for max_results in (0, 5001):
        answer = await api.post(EXPORT, {"parsed_query": {"simple_filters": US},
                                         "max_results": max_results})
        assert answer.status == 400
    direct = await api.post(EXPORT, {"parsed_query": {"mode": "company", "simple_filters": US},
                                     "max_results": 3})
    assert direct.status == 200
    deep = await api.completed(max_results=8)
    exported = (await api.post(EXPORT, {"search_id": deep["search_id"], "mode": "people"})).json()
    api.emulator.force_complete(exported["task_id"])
    done = await _status(api, exported["task_id"])
    assert done["status"] == "completed" and done["total_results"] == deep["total_results"]
    rows = await _csv_rows(api, done["resource_handle_id"])
    assert list(rows[0])[:2] == ["full_name", "first_name"] and len(rows) == deep["total_results"]
    assert api.stats()["jobs_started"] == 1  # exports are not deep searches
