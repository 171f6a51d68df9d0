"""The Sixtyfour emulator over real sockets (design §5 layer 3; contract §1-§5)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

import aiohttp
import orjson
import pytest

from providers.sandbox.faults import FaultRule

if TYPE_CHECKING:  # fixtures come from tests/sixtyfour/conftest.py
    from conftest import Api, MakeApi

QUERY = "VP of Engineering in New York"  # a few dozen matches in the 400-company world
START = "/search/start-deep-search"
QUERY_PATH = "/search/query"


async def _page_through(api: Api, first: dict[str, Any]) -> list[dict[str, Any]]:
    answer = await api.post(QUERY_PATH, first)
    pages = [answer.json()]
    assert answer.status == 200, answer.body
    while pages[-1]["has_more"]:
        answer = await api.post(QUERY_PATH, {"cursor": pages[-1]["next_cursor"]})
        assert answer.status == 200, answer.body
        pages.append(answer.json())
    return pages


def _expected_ids(api: Api, limit: int | None = None) -> list[str]:
    """The ground truth for :data:`QUERY`, read off the world (not the emulator's matcher): every
    VP of Engineering in New York whom Sixtyfour sees, at an employer it sees. All carry the
    queried title exactly, so all are equally relevant and come in hidden-id order."""
    world = api.sandbox.world
    people = sorted((p for p in world.people
                     if p.title == "VP of Engineering" and p.city == "New York"
                     and world.visible("sixtyfour", p.true_id) and world.visible("sixtyfour", p.company_id)),
                    key=lambda p: p.true_id)
    return [p.linkedin_slug for p in people][:limit]


# -- deep-search lifecycle --------------------------------------------------------------------


async def test_deep_search_goes_queued_running_completed_with_growing_phases(
    make_api: MakeApi,
) -> None:
    settings = {"queue_s": 4, "duration_min_s": 40, "duration_max_s": 50}
    api = await make_api(settings)
    task_id = await api.start(max_results=40)
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["status"] not in ("completed", "failed"):
        seen.append(await api.status(task_id))
        await api.sandbox.clock.sleep(1.5)
    statuses = [doc["status"] for doc in seen]
    assert statuses[0] == "queued" and statuses[-1] == "completed"
    assert "running" in statuses
    assert statuses == sorted(statuses, key=["queued", "running", "completed"].index)
    phases = [doc["current_phase"] for doc in seen if doc["status"] == "running"]
    assert phases == sorted(phases) and phases[0] == 0 and len(set(phases)) >= 3
    assert len({doc["progress_message"] for doc in seen}) >= 4
    iterations = [len(doc["iterations"]) for doc in seen]
    assert iterations == sorted(iterations) and iterations[-1] >= 2
    done = seen[-1]
    assert done["current_phase"] == 3 and done["progress_message"] == "Finalizing results"
    assert done["total_results"] == done["exported_count"] == len(_expected_ids(api, limit=40))
    assert done["resource_handle_id"].startswith("rh_") and done["error"] is None
    assert done["start_time"].endswith("Z") and done["close_time"] > done["start_time"]
    assert done["search_id"] and seen[0]["search_id"] is None


async def test_legacy_status_path_serves_the_same_document(api: Api) -> None:
    doc = await api.completed(output_mode="query_only")
    legacy = await api.get(f"/search/deep-search-status/{doc['task_id']}")
    assert legacy.status == 200 and legacy.json() == doc
    assert doc["resource_handle_id"] is None and doc["exported_count"] is None


async def test_legacy_status_only_setting_hides_the_new_status_path(make_api: MakeApi) -> None:
    api = await make_api({"legacy_status_only": True})
    task_id = await api.start()
    assert (await api.get(f"/search/status/{task_id}")).status == 404
    assert (await api.get(f"/search/deep-search-status/{task_id}")).status == 200


async def test_job_failure_fault_ends_the_task_failed_with_an_error(make_api: MakeApi) -> None:
    api = await make_api(faults=(FaultRule("sixtyfour", kind="job_failure", first_n=1),))
    failing, fine = await api.start(), await api.start()
    api.emulator.force_complete(failing)
    api.emulator.force_complete(fine)
    failed = await api.status(failing)
    assert failed["status"] == "failed" and failed["error"] and failed["close_time"]
    assert failed["total_results"] is None and failed["resource_handle_id"] is None
    assert (await api.status(fine))["status"] == "completed"


async def test_unknown_and_other_org_tasks_are_404(api: Api) -> None:
    task_id = await api.start()
    other = await api.as_org(2).get(f"/search/status/{task_id}")
    assert other.status == 404
    assert other.json() == {"detail": "Search not found or has no parsed_query."}
    assert (await api.get("/search/status/nope")).status == 404


async def test_missing_or_unknown_api_key_is_401(api: Api) -> None:
    for key in (None, "sk-wrong", api.sandbox.api_key("sixtyfour").replace("1", "0")):
        answer = await api.post(START, {"query": QUERY}, key=key)
        assert answer.status == 401 and answer.json() == {"detail": "Invalid API key"}
    assert api.stats()["jobs_started"] == 0


async def test_start_validation_errors_are_fastapi_422(api: Api) -> None:
    missing = await api.post(START, {"mode": "people"})
    assert missing.status == 422
    assert missing.json()["detail"][0] == {"loc": ["body", "query"], "msg": "Field required",
                                           "type": "missing", "input": None}
    for bad in ({"query": "x", "max_results": 0}, {"query": "x", "mode": "robots"},
                {"query": "x", "exclude_list_ids": [str(i) for i in range(11)]}):
        assert (await api.post(START, bad)).status == 422
    broken = await api.call("POST", START, data=b'{"query": ')
    assert broken.status == 422 and broken.json()["detail"][0]["type"] == "json_invalid"


# -- concurrency and idempotency --------------------------------------------------------------


async def test_sixth_concurrent_start_is_429_until_one_completes(api: Api) -> None:
    task_ids = [await api.start() for _ in range(5)]
    refused = await api.post(START, {"query": QUERY})
    assert refused.status == 429
    assert refused.json()["detail"].startswith("Too many concurrent deep searches (limit 5)")
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await api.as_org(2).post(START, {"query": QUERY})).status == 200  # per org
    api.emulator.force_complete(task_ids[0])
    assert (await api.post(START, {"query": QUERY})).status == 200
    stats = api.stats()
    assert stats["jobs_started"] == 7
    assert stats["endpoints"]["POST /search/start-deep-search"]["rate_limited"] == 1


async def test_same_search_id_replays_the_task_without_a_second_job(
    make_api: MakeApi,
) -> None:
    api = await make_api({"credits_per_search": 2.0})
    first = await api.post(START, {"query": QUERY, "search_id": "client-key-1"})
    again = await api.post(START, {"query": QUERY, "search_id": "client-key-1"})
    assert first.status == again.status == 200
    assert first.json() == again.json()
    other_org = await api.as_org(2).start(search_id="client-key-1")
    assert other_org != first.json()["task_id"]
    stats = api.stats()
    assert stats["jobs_started"] == 2 and stats["idempotent_replays"] == 1
    assert stats["credits_charged"] == 4.0
    api.emulator.force_complete(first.json()["task_id"])
    assert (await api.status(first.json()["task_id"]))["search_id"] == "client-key-1"


# -- /search/query paging ---------------------------------------------------------------------


async def test_query_pages_to_the_end_with_cumulative_totals(api: Api) -> None:
    done = await api.completed(QUERY, max_results=100)
    expected = _expected_ids(api, limit=100)
    n = len(expected)
    assert 20 < n < 100 and n % 10 and done["total_results"] == n
    pages = await _page_through(api, {"search_id": done["search_id"], "page_size": 10})
    rows = [row for page in pages for row in page["results"]]
    n_pages = n // 10 + 1
    assert [p["page_number"] for p in pages] == list(range(1, n_pages + 1))
    assert [p["total_results"] for p in pages] == [min(n, 10 * i) for i in range(1, n_pages + 1)]
    assert [p["remaining_results"] for p in pages] == [max(0, n - 10 * i)
                                                       for i in range(1, n_pages + 1)]
    assert all(p["max_pages"] == n_pages and p["page_size"] == 10 for p in pages)
    assert ["total_pages" in p for p in pages] == [False] * (n_pages - 1) + [True]
    assert pages[-1]["total_pages"] == n_pages and pages[-1]["next_cursor"] is None
    assert all(p["cursor_expires_in_seconds"] == 1800 for p in pages)
    ids = [row["raw_document_id"] for row in rows]
    assert len(set(ids)) == len(ids) and ids == expected
    for row in rows:
        source = row["raw_source"]
        assert source["publicId"] == row["raw_document_id"] and source["seniority"] == "VP"
        assert source["currentCompanies"][0]["company"]["companyId"] > 0
        assert "email" not in source and "phone" not in source


async def test_query_max_results_caps_and_exclusions_shorten_pages(api: Api) -> None:
    done = await api.completed(QUERY)
    first = await api.post(QUERY_PATH, {"search_id": done["search_id"], "page_size": 5})
    excluded = [row["raw_document_id"] for row in first.json()["results"][:2]]
    urls = [f"https://www.linkedin.com/in/{excluded[1]}/"]
    pages = await _page_through(api, {"search_id": done["search_id"], "page_size": 5,
                                      "max_results": 12, "exclude_entity_ids": excluded[:1],
                                      "exclude_public_ids": urls})
    assert [p["page_count"] for p in pages] == [3, 5, 2]
    assert pages[0]["has_more"] and pages[-1]["total_results"] == 10
    ids = {row["raw_document_id"] for page in pages for row in page["results"]}
    assert not ids & set(excluded)


async def test_company_search_rows_use_the_documented_snake_case(api: Api) -> None:
    done = await api.completed("Software companies in San Francisco", mode="company")
    answer = await api.post(QUERY_PATH, {"search_id": done["search_id"], "page_size": 100})
    rows = answer.json()["results"]
    world = api.sandbox.world  # the ground truth: Software companies with their HQ in San Francisco
    expected = sorted((c for c in world.companies if c.industry == "Software" and c.hq_city == "San Francisco"
                       and world.visible("sixtyfour", c.true_id)), key=lambda c: c.true_id)
    assert [row["raw_document_id"] for row in rows] == [c.linkedin_slug for c in expected]
    assert len(rows) == done["total_results"] > 0
    for row in rows:
        source = row["raw_source"]
        assert row["raw_document_id"] in source["linkedin_url"]
        assert source["website_domain"] in source["website"] and source["industry"]
        assert source["website"].startswith("https://") and source["size_range"]
        assert isinstance(source["source_id"], int) and "funding_rounds" in source


async def test_cursor_request_with_another_field_is_400(api: Api) -> None:
    done = await api.completed()
    page = (await api.post(QUERY_PATH, {"search_id": done["search_id"], "page_size": 5})).json()
    answer = await api.post(QUERY_PATH, {"cursor": page["next_cursor"], "page_size": 5})
    assert answer.status == 400
    assert answer.json() == {"detail": "Cursor requests must contain only the cursor field."}


async def test_expired_or_garbage_cursor_is_400(make_api: MakeApi) -> None:
    api = await make_api({"cursor_ttl_s": 5})
    done = await api.completed()
    page = (await api.post(QUERY_PATH, {"search_id": done["search_id"], "page_size": 5})).json()
    assert page["cursor_expires_in_seconds"] == 5
    await api.sandbox.clock.sleep(6)
    for cursor in (page["next_cursor"], "bm90LWEtY3Vyc29y"):
        answer = await api.post(QUERY_PATH, {"cursor": cursor})
        assert answer.status == 400 and answer.json() == {"detail": "Invalid or expired cursor"}


async def test_other_orgs_cursor_and_search_id_are_404(api: Api) -> None:
    done = await api.completed()
    page = (await api.post(QUERY_PATH, {"search_id": done["search_id"], "page_size": 5})).json()
    intruder = api.as_org(2)
    assert (await intruder.post(QUERY_PATH, {"cursor": page["next_cursor"]})).status == 404
    assert (await intruder.post(QUERY_PATH, {"search_id": done["search_id"]})).status == 404
    running = await api.start(search_id="still-running")
    assert (await api.post(QUERY_PATH, {"search_id": "still-running"})).status == 404
    assert running


async def test_same_cursor_in_flight_is_409_and_rereading_it_later_is_idempotent(
    make_api: MakeApi,
) -> None:
    api = await make_api({"page_latency_s": 50})
    done = await api.completed()
    page = (await api.post(QUERY_PATH, {"search_id": done["search_id"], "page_size": 5})).json()
    body = {"cursor": page["next_cursor"]}
    with api.sandbox.clock.held():  # whichever request arrives first stays in its page latency
        both = [asyncio.create_task(api.post(QUERY_PATH, body)) for _ in range(2)]
        # (the timeout only guards against a hang: nothing should wait for it)
        done, pending = await asyncio.wait(both, timeout=10, return_when=asyncio.FIRST_COMPLETED)
        assert len(done) == 1, "the second read of an in-flight cursor was not answered at once"
        conflict = done.pop().result()
        assert conflict.status == 409 and conflict.json() == {"detail": "Cursor is already being processed"}
    first = await pending.pop()
    assert first.status == 200
    winner = first.json()
    again = (await api.post(QUERY_PATH, body)).json()
    assert again["results"] == winner["results"] and again["next_cursor"] == winner["next_cursor"]


async def test_query_rate_limit_is_429_with_retry_after(make_api: MakeApi) -> None:
    api = await make_api({"query_rate_limit": 3, "query_window_s": 200})
    done = await api.completed()
    body = {"search_id": done["search_id"]}
    assert [(await api.post(QUERY_PATH, body)).status for _ in range(3)] == [200] * 3
    refused = await api.post(QUERY_PATH, body)
    assert refused.status == 429
    retry_after = int(refused.headers["Retry-After"])
    assert 1 <= retry_after <= 200
    assert refused.json() == {"detail": f"Rate limit exceeded. Retry after {retry_after} seconds."}
    assert (await api.as_org(2).post(QUERY_PATH, {"search_id": "x"})).status == 404  # per org
    await api.sandbox.clock.sleep(retry_after)
    assert (await api.post(QUERY_PATH, body)).status == 200
    assert api.stats()["endpoints"]["POST /search/query"]["rate_limited"] == 1


async def test_general_per_key_limit_covers_every_endpoint(make_api: MakeApi) -> None:
    api = await make_api({"general_rate_limit": 2, "general_window_s": 600})
    task_id = await api.start()
    assert (await api.status(task_id))["task_id"] == task_id
    refused = await api.get(f"/search/status/{task_id}")
    assert refused.status == 429 and int(refused.headers["Retry-After"]) >= 1


async def test_query_request_validation(api: Api) -> None:
    done = await api.completed()
    sid = done["search_id"]
    assert (await api.post(QUERY_PATH, {"search_id": sid, "page_size": 101})).status == 422
    assert (await api.post(QUERY_PATH, {"search_id": sid, "page_size": 0})).status == 422
    for max_results in (0, 5001):
        bad = await api.post(QUERY_PATH, {"search_id": sid, "max_results": max_results})
        assert bad.status == 400
    filters = await api.post(QUERY_PATH, {"simple_filters": {"seniority": "VP"}})  # mode company
    assert filters.status == 400
    assert filters.json() == {"detail": "Unknown field 'seniority' for mode 'company'"}
    mixed = await api.post(QUERY_PATH, {"search_id": sid, "query": "VPs"})
    assert mixed.status == 400
    assert (await api.post(QUERY_PATH, {"page_size": 5})).status == 400
    ok = await api.post(QUERY_PATH, {"search_id": sid, "output_shape": "raw", "mode": "people"})
    assert ok.status == 200


# -- downloads --------------------------------------------------------------------------------


async def test_download_url_works_without_the_key_and_has_the_same_rows(api: Api) -> None:
    done = await api.completed(max_results=20)
    answer = await api.get("/search/download",
                           params={"resource_handle_id": done["resource_handle_id"]})
    assert answer.status == 200
    doc = answer.json()
    assert doc["bucket"] == "sixtyfour-sandbox"
    assert doc["path"] == f"org_1/search/{done['task_id']}/results.csv"
    csv = await api.get(doc["url"], key=None)
    assert csv.status == 200 and csv.headers["Content-Type"].startswith("text/csv")
    lines = csv.body.decode().splitlines()
    assert lines[0].startswith("full_name,first_name,last_name,title,headline,company_name")
    assert len(lines) == 1 + done["total_results"] == 21
    page = (await api.post(QUERY_PATH, {"search_id": done["search_id"], "page_size": 20})).json()
    slugs = [row["raw_document_id"] for row in page["results"]]
    assert [line.split(",")[0] for line in lines[1:3]] == [
        row["raw_source"]["fullName"] for row in page["results"][:2]]
    assert all(slug in csv.body.decode() for slug in slugs)
    assert api.stats()["storage_requests_with_api_key"] == 0


async def test_download_rejects_tampered_and_expired_urls(make_api: MakeApi) -> None:
    api = await make_api({"download_url_ttl_s": 5})
    done = await api.completed()
    params = {"resource_handle_id": done["resource_handle_id"]}
    url = (await api.get("/search/download", params=params)).json()["url"]
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    tampered = parts._replace(query=urlencode({**query, "signature": "0" * 64})).geturl()
    bad = await api.get(tampered, key=None)
    assert bad.status == 403 and b"SignatureDoesNotMatch" in bad.body
    longer = parts._replace(query=urlencode({**query, "expires": int(query["expires"]) + 99}))
    assert (await api.get(longer.geturl(), key=None)).status == 403
    await api.sandbox.clock.sleep(7)
    expired = await api.get(url, key=None)
    assert expired.status == 403 and b"ExpiredToken" in expired.body
    assert (await api.get(url)).status == 403  # a key does not help either...
    assert api.stats()["storage_requests_with_api_key"] == 1  # ...and is recorded


async def test_download_param_errors(api: Api) -> None:
    missing = await api.get("/search/download")
    assert missing.status == 422
    assert missing.json()["detail"][0]["loc"] == ["query", "resource_handle_id"]
    unknown = await api.get("/search/download", params={"resource_handle_id": "rh_nope"})
    assert unknown.status == 404
    done = await api.completed()
    params = {"resource_handle_id": done["resource_handle_id"]}
    assert (await api.as_org(2).get("/search/download", params=params)).status == 404


# -- faults and stats -------------------------------------------------------------------------


async def test_first_n_503_fault_then_success(make_api: MakeApi) -> None:
    rule = FaultRule("sixtyfour", endpoint="POST /search/start-deep-search", first_n=2,
                     retry_after_s=3)
    api = await make_api(faults=(rule,))
    statuses = []
    for _ in range(3):
        answer = await api.post(START, {"query": QUERY, "search_id": "k"})
        statuses.append(answer.status)
        if answer.status == 503:
            assert answer.headers["Retry-After"] == "3" and "detail" in answer.json()
    assert statuses == [503, 503, 200]
    endpoint = api.stats()["endpoints"]["POST /search/start-deep-search"]
    assert endpoint["faults_injected"] == 2 and endpoint["statuses"] == {"200": 1, "503": 2}
    assert api.stats()["jobs_started"] == 1


async def test_429_fault_and_runtime_fault_changes(api: Api) -> None:
    api.sandbox.add_fault(FaultRule("sixtyfour", kind="http_429", first_n=1, retry_after_s=2))
    refused = await api.post(START, {"query": QUERY})
    assert refused.status == 429 and refused.headers["Retry-After"] == "2"
    api.sandbox.add_fault(FaultRule("sixtyfour", kind="http_5xx", rate=1.0, status=502))
    assert (await api.post(START, {"query": QUERY})).status == 502
    assert (await api.get("/_sandbox/stats")).status == 200  # internal routes are never faulted
    api.sandbox.clear_faults()
    assert (await api.post(START, {"query": QUERY})).status == 200


async def test_malformed_json_fault_loses_the_answer_but_the_job_started(
    make_api: MakeApi,
) -> None:
    rule = FaultRule("sixtyfour", endpoint="POST /search/start-deep-search",
                     kind="malformed_json", first_n=1)
    api = await make_api(faults=(rule,))
    lost = await api.post(START, {"query": QUERY, "search_id": "retry-me"})
    assert lost.status == 200
    with pytest.raises(orjson.JSONDecodeError):
        lost.json()
    retried = await api.post(START, {"query": QUERY, "search_id": "retry-me"})
    assert retried.status == 200 and retried.json()["task_id"]
    assert api.stats()["jobs_started"] == 1 and api.stats()["idempotent_replays"] == 1


async def test_reset_fault_drops_the_connection(make_api: MakeApi) -> None:
    api = await make_api(faults=(FaultRule("sixtyfour", kind="reset", first_n=1),))
    with pytest.raises(aiohttp.ClientConnectionError):
        await api.post(START, {"query": QUERY})
    assert (await api.post(START, {"query": QUERY})).status == 200
    endpoint = api.stats()["endpoints"]["POST /search/start-deep-search"]
    assert endpoint["statuses"] == {"200": 1, "reset": 1}
    assert api.stats()["jobs_started"] == 1  # the reset happened before the handler


async def test_slow_fault_delays_on_the_virtual_clock(make_api: MakeApi) -> None:
    api = await make_api(faults=(FaultRule("sixtyfour", kind="slow", first_n=1, delay_s=20),))
    before = api.sandbox.clock.monotonic()
    assert (await api.post(START, {"query": QUERY})).status == 200
    assert api.sandbox.clock.monotonic() - before >= 20


async def test_stats_endpoint_counts_calls_and_matches_sandbox_stats(api: Api) -> None:
    task_id = await api.start()
    await api.status(task_id)
    await api.status(task_id)
    await api.get("/search/status/missing")
    doc = (await api.get("/_sandbox/stats", key=None)).json()
    assert doc == api.stats()
    assert doc["provider"] == "sixtyfour"
    status = doc["endpoints"]["GET /search/status/{task_id}"]
    assert status == {"calls": 3, "statuses": {"200": 2, "404": 1}, "rate_limited": 0,
                      "faults_injected": 0}
    assert doc["jobs_started"] == 1 and doc["credits_charged"] == 0.0
    assert "GET /_sandbox/stats" not in doc["endpoints"]
