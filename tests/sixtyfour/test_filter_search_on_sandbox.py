"""Sixtyfour filter search, field values and export end to end on the sandbox."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import orjson
import pytest

from aggregator.contract import Pending, Ready
from aggregator.core import Aggregator
from aggregator.errors import ConfigError
from aggregator.models import Company, SearchRequest

WHERE = {"hq_country_iso2": {"$eq": "US"}, "employees_count": {"$gte": 100}}
QUERY = "POST /search/query"
VALUES = "POST /search/filter-field-values"


def stats(agg: Aggregator) -> dict[str, Any]:
    document: dict[str, Any] = agg.sandbox.stats()["providers"]["sixtyfour"]
    return document


def calls(agg: Aggregator, endpoint: str) -> int:
    return int(stats(agg)["endpoints"].get(endpoint, {}).get("calls", 0))


async def test_a_company_filter_search_returns_exactly_the_matching_companies(make_aggregator: Any) -> None:
    agg = await make_aggregator(n_companies=600)
    report = await agg.filter_search(mode="company", simple_filters=WHERE, max_results=5000)

    world = agg.sandbox.world
    expected = {c.domain for c in world.companies if world.visible("sixtyfour", c.true_id)
                and c.hq_country_iso2 == "US" and c.employees_count >= 100}
    got = {r.entity.domain for r in report.records if isinstance(r.entity, Company)}
    assert report.outcome("sixtyfour").status == "found" and got == expected


async def test_exclusions_make_short_pages_and_paging_continues(make_aggregator: Any) -> None:
    agg = await make_aggregator(n_companies=600, page_size=10)
    everything = await agg.filter_search(mode="company", simple_filters=WHERE, max_results=5000)
    domains = [r.entity.domain for r in everything.records if isinstance(r.entity, Company)]
    excluded = tuple(d for d in domains[:8] if d)  # most of the first page
    report = await agg.filter_search(mode="company", simple_filters=WHERE, max_results=5000, exclude=excluded)

    got = {r.entity.domain for r in report.records if isinstance(r.entity, Company)}
    assert got == set(domains) - set(excluded)
    assert report.outcome("sixtyfour").pages > len(got) // 10  # short pages did not end the paging


async def test_invalid_filters_never_reach_the_paid_query(make_aggregator: Any) -> None:
    agg = await make_aggregator(n_companies=300)
    with pytest.raises(ConfigError) as info:
        await agg.filter_search(mode="company", simple_filters={"employees_count": {"$between": [1, 9]}})
    assert info.value.field == "simple_filters.employees_count.$between"
    assert calls(agg, QUERY) == 0 and calls(agg, "GET /search/filter-capabilities") == 0  # a shape error: no call
    with pytest.raises(ConfigError) as info:  # an unknown field needs the capabilities, but not the paid query
        await agg.filter_search(mode="company", simple_filters={"employee_count": {"$gte": 1}})
    assert info.value.field == "simple_filters.employee_count.$gte"
    assert calls(agg, QUERY) == 0 and calls(agg, "GET /search/filter-capabilities") == 1


async def test_field_values_show_top_values_with_snippets(make_aggregator: Any) -> None:
    agg = await make_aggregator(n_companies=600)
    values = await agg.filter_values("hq_country_iso2", mode="company", top_k=3,
                                     simple_filters={"employees_count": {"$gte": 100}})
    assert len(values.values) == 3 and values.values[0].value == "US"
    assert [v.count for v in values.values] == sorted((v.count for v in values.values), reverse=True)
    assert values.values[0].filter_snippet == {"term": {"hq_country_iso2": "US"}}


FIELD_VALUES_5_PER_MIN = {"providers": {"sixtyfour": {"rate_limits": [
    {"name": "field_values", "endpoints": [VALUES], "limit": 5, "window_s": 60.0}]}}}


async def test_the_field_values_bucket_is_never_exceeded_under_concurrency(make_aggregator: Any) -> None:
    agg = await make_aggregator(n_companies=300, emulator={"field_values_rate_limit": 5},
                                overrides=FIELD_VALUES_5_PER_MIN)
    results = await asyncio.gather(*(agg.filter_values("hq_country_iso2", top_k=k) for k in range(1, 13)))
    assert len(results) == 12
    assert stats(agg)["endpoints"][VALUES]["statuses"] == {"200": 12}  # queued by us, no 429


async def test_without_our_bucket_the_provider_answers_429(make_aggregator: Any) -> None:
    """Control for the test above: the emulator enforces its field-values limit."""
    no_bucket = {"providers": {"sixtyfour": {"rate_limits": []}}}
    agg = await make_aggregator(n_companies=300, emulator={"field_values_rate_limit": 5}, overrides=no_bucket)
    await asyncio.gather(*(agg.filter_values("hq_country_iso2", top_k=k) for k in range(1, 13)))
    assert stats(agg)["endpoints"][VALUES]["statuses"].get("429", 0) > 0


async def test_an_export_already_running_is_adopted_not_duplicated(make_aggregator: Any) -> None:
    agg = await make_aggregator(n_companies=600, fetch_via="export")
    adapter = agg.adapter("sixtyfour")
    job = await adapter.submit(SearchRequest(query="CTO in New York", max_results=10), "export-test-key")
    while True:
        await agg.clock.sleep(10)
        state = await adapter.poll(job)
        if isinstance(state, Ready) and state.job is not None:
            job = state.job
            break
        assert isinstance(state, Pending)
    base, key = agg.sandbox.base_urls["sixtyfour"], agg.sandbox.api_key("sixtyfour")
    body = orjson.dumps({"search_id": job.extra["search_id"], "mode": "people"})
    # an export of the same search, started elsewhere (or by a request of ours whose answer was lost)
    async with aiohttp.ClientSession() as session, session.post(
        f"{base}/search/export", headers={"x-api-key": key}, data=body
    ) as response:
        assert response.status == 200
    page = await adapter.fetch(job, None)

    assert page.done and len(page.hits) >= 1
    assert stats(agg)["exports_started"] == 1
    assert stats(agg)["endpoints"]["POST /search/export"]["statuses"] == {"200": 1, "409": 1}
