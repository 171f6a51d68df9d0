"""The Extruct emulator over real sockets (design §5 layer 3; contract extruct.md §1-§10)."""

from __future__ import annotations

import itertools
import re
import uuid
from typing import TYPE_CHECKING, Any

from providers.extruct.emulator.criteria import infer_criteria
from providers.extruct.emulator.grading import criterion_spec
from providers.sandbox.faults import FaultRule
from providers.sandbox.matching import parse_query

if TYPE_CHECKING:  # fixtures come from tests/extruct/conftest.py
    from conftest import Api, MakeApi

TASKS = "/v1/discovery_tasks"
FREIGHT = "vertical SaaS companies serving freight forwarding"
BROAD = "B2B SaaS companies"  # hundreds of matches: the pool outlasts small targets
STATUS_ORDER = ["created", "in_progress", "done"]
TASK_FIELDS = {"id", "created_at", "status", "query", "desired_num_results", "is_exhausted",
               "num_results_discovered", "num_results_enriched", "num_results_evaluated",
               "num_results", "table_id", "auto_data_sources", "data_sources", "criteria",
               "exclude_domains"}  # fmt: skip
RESULT_FIELDS = {"id", "task_id", "company_name", "company_description", "company_full_description",
                 "company_website", "relevance", "created_at", "company_profile_id", "source",
                 "scores", "founding_year", "employee_count", "hq_country", "hq_state_province",
                 "hq_city"}  # fmt: skip
BUCKETS = {"1-10", "11-50", "51-200", "201-500", "501-1000", "1001-5000", "5001-10000", "10001+"}
COUNTERS = ("num_results_discovered", "num_results_enriched", "num_results_evaluated", "num_results")


def _counters(doc: dict[str, Any]) -> tuple[int, ...]:
    return tuple(doc[name] for name in COUNTERS)


def _domain(website: str) -> str:
    return website.removeprefix("https://").removeprefix("www.")


def _company(api: Api, row: dict[str, Any]) -> Any:
    """The world entity behind a result row (by its domain)."""
    domain = _domain(row["company_website"])
    return next(c for c in api.sandbox.world.companies if c.domain == domain)


def _check_rows(doc: dict[str, Any]) -> None:
    """Every result is complete, qualified (>= 75 % of grades 4-5) and relevance-ordered."""
    rows, keys = doc["results"], {c["key"] for c in doc["criteria"]}
    assert [r["relevance"] for r in rows] == sorted((r["relevance"] for r in rows), reverse=True)
    for row in rows:
        assert set(row) == RESULT_FIELDS and row["task_id"] == doc["id"]
        assert set(row["scores"]) == keys and row["employee_count"] in BUCKETS
        assert row["source"] in ("web_search", "linkedin", "maps") and 0 <= row["relevance"] <= 100
        grades = [s["grade"] for s in row["scores"].values()]
        assert all(1 <= g <= 5 for g in grades) and sum(g >= 4 for g in grades) >= 0.75 * len(grades)
        for score in row["scores"].values():
            assert row["company_name"].split()[0].rstrip(",") in score["explanation"]
            assert 1 <= len(score["sources"]) <= 2
            assert all(url.startswith("https://") for url in score["sources"])


# -- lifecycle --------------------------------------------------------------------------------


async def test_task_goes_created_in_progress_done_with_monotone_counters(make_api: MakeApi) -> None:
    api = await make_api({"created_s": 60})
    created = await api.create(desired_num_results=250)
    assert set(created) == TASK_FIELDS and created["status"] == "created"
    assert _counters(created) == (0, 0, 0, 0) and created["is_exhausted"] is False
    assert created["created_at"].endswith("Z") and uuid.UUID(created["id"])
    seen = [created]
    while seen[-1]["status"] not in ("done", "failed"):
        seen.append(await api.task(created["id"]))
        await api.sandbox.clock.sleep(1.5)
    statuses = [doc["status"] for doc in seen]
    assert statuses == sorted(statuses, key=STATUS_ORDER.index) and statuses[-1] == "done"
    assert "in_progress" in statuses and statuses.count("created") >= 2
    for before, after in itertools.pairwise(seen):
        assert all(b >= a for a, b in zip(_counters(before), _counters(after), strict=True))
    for doc in seen:
        discovered, enriched, evaluated, qualified = _counters(doc)
        assert discovered >= enriched >= evaluated >= qualified
    final = seen[-1]
    assert final["is_exhausted"] and final["num_results_evaluated"] == final["num_results_enriched"]
    assert final["num_results_discovered"] > final["num_results_enriched"] > final["num_results"] > 0
    assert len({_counters(doc) for doc in seen}) >= 5  # progress was visible step by step


async def test_is_exhausted_while_still_in_progress_is_a_lasting_state(make_api: MakeApi) -> None:
    api = await make_api({"evaluate_rate_per_min": 5})
    task_id = (await api.create(desired_num_results=250))["id"]
    doc = await api.task(task_id)
    while not doc["is_exhausted"]:
        await api.sandbox.clock.sleep(2)
        doc = await api.task(task_id)
    assert doc["status"] == "in_progress"
    assert doc["num_results_evaluated"] < doc["num_results_enriched"]
    await api.sandbox.clock.sleep(30)  # 12 s per evaluation at 5/min
    later = await api.task(task_id)
    assert later["status"] == "in_progress" and later["is_exhausted"]
    assert later["num_results_evaluated"] > doc["num_results_evaluated"]


async def test_results_are_readable_mid_run_and_ordered_by_relevance(make_api: MakeApi) -> None:
    api = await make_api({"evaluate_rate_per_min": 6})
    task_id = (await api.create(desired_num_results=250))["id"]
    doc = await api.results(task_id)
    while doc["num_results"] < 3:
        await api.sandbox.clock.sleep(2)
        doc = await api.results(task_id)
    assert doc["status"] == "in_progress" and len(doc["results"]) == doc["num_results"]
    _check_rows(doc)
    api.emulator.force_complete(task_id)
    final = await api.results(task_id)
    _check_rows(final)
    assert len(final["results"]) == final["num_results"] > doc["num_results"]
    assert {r["id"] for r in doc["results"]} <= {r["id"] for r in final["results"]}


async def test_freight_query_returns_companies_that_really_are_freight_vertical_saas(api: Api) -> None:
    doc = await api.done(desired_num_results=250)
    assert [c["key"] for c in doc["criteria"]] == ["freight_forwarding_focus", "vertical_saas"]
    assert len(doc["results"]) >= 5
    for row in doc["results"]:
        company = _company(api, row)
        assert {"freight forwarding", "vertical saas"} <= set(company.categories)
        assert row["company_name"] in (company.name, company.legal_name)
        assert row["hq_city"] == company.hq_city
        assert row["founding_year"] == company.founded_year
    # evaluation really rejected some enriched candidates
    assert doc["num_results_evaluated"] > doc["num_results"]


async def test_results_page_with_offset_and_limit(api: Api) -> None:
    done = await api.done(desired_num_results=250)
    ids = [r["id"] for r in done["results"]]
    first = await api.results(done["id"], offset=0, limit=3)
    rest = await api.results(done["id"], offset=3, limit=250)
    assert [r["id"] for r in first["results"] + rest["results"]] == ids
    assert (await api.results(done["id"], offset=len(ids)))["results"] == []


# -- criteria ---------------------------------------------------------------------------------


async def test_explicit_criteria_are_echoed_and_used_for_grading(api: Api) -> None:
    criteria = [
        {"key": "us_hq", "name": "US HQ", "criterion": "Company is headquartered in the United States."},
        {"key": "freight", "name": "Freight", "criterion": "Company is focused on freight forwarding."},
    ]
    doc = await api.done("logistics software for freight forwarders", criteria=criteria,
                         desired_num_results=250)  # fmt: skip
    assert doc["criteria"] == criteria and doc["results"]
    for row in doc["results"]:
        assert set(row["scores"]) == {"us_hq", "freight"}
        company = _company(api, row)
        assert company.hq_country_iso2 == "US" and "freight forwarding" in company.categories
        assert row["hq_country"] == "United States"


async def test_criteria_are_inferred_from_the_query_when_omitted(api: Api) -> None:
    doc = await api.create("Series B fintech companies in New York with 50-200 employees")
    criteria = doc["criteria"]
    assert 2 <= len(criteria) <= 4
    for c in criteria:
        assert re.fullmatch(r"[a-z][a-z0-9_]*", c["key"]) and 1 <= len(c["name"]) <= 100
        assert 10 <= len(c["criterion"]) <= 500
    assert [c["key"] for c in criteria] == ["fintech_focus", "hq_location", "funding_stage", "company_size"]
    api.emulator.force_complete(doc["id"])
    for row in (await api.results(doc["id"]))["results"]:
        grades = [s["grade"] for s in row["scores"].values()]
        assert sum(g >= 4 for g in grades) >= 3


def test_each_inferred_criterion_parses_back_to_exactly_its_constraint() -> None:
    fields = ("categories", "industries", "cities", "states", "countries_iso2", "funding_stages",
              "titles", "min_employees", "max_employees")  # fmt: skip
    queries = ("vertical SaaS companies serving freight forwarding", "B2B SaaS startups in Europe with a "
               "VP of Engineering", "early stage healthtech in Germany or France",
               "software companies in the bay area", "Series B fintech companies in New York with "
               "50-200 employees", "AI procurement startups serving enterprise finance teams")  # fmt: skip
    for query in queries:
        query_spec = parse_query(query, "company")
        criteria = infer_criteria(query)
        assert 2 <= len(criteria) <= 4 and len({key for key, _, _ in criteria}) == len(criteria)
        for _, _, text in criteria:
            spec = criterion_spec(text)
            assert spec.has_constraints or spec.keywords, (query, text)
            assert not (set(spec.keywords) - set(query_spec.keywords)), (query, text, spec.keywords)
            for name in fields:  # every constraint it names comes from the query
                value, wanted = getattr(spec, name), getattr(query_spec, name)
                if value not in (None, ()):
                    assert value == wanted or (isinstance(value, tuple) and set(value) <= set(wanted))


# -- exclusions -------------------------------------------------------------------------------


async def test_exclude_domains_are_normalized_deduplicated_sorted_and_never_returned(api: Api) -> None:
    first = await api.done(desired_num_results=250)
    domains = sorted(_domain(r["company_website"]) for r in first["results"])[:2]
    given = [f"https://www.{domains[1].upper()}/about", domains[0], f"http://{domains[0]}/x?y=1",
             "https://www.Acme.com/about", "shop.stripe.com"]  # fmt: skip
    second = await api.create(exclude_domains=given, desired_num_results=250)
    assert second["exclude_domains"] == sorted({*domains, "acme.com", "stripe.com"})
    api.emulator.force_complete(second["id"])
    returned = {_domain(r["company_website"]) for r in (await api.results(second["id"]))["results"]}
    assert returned and not returned & set(domains)
    bad = await api.post(TASKS, {"query": FREIGHT, "exclude_domains": ["localhost"]})
    assert bad.status == 422 and bad.json()["detail"][0]["loc"] == ["body", "exclude_domains", 0]


async def test_exclude_task_ids_exclude_the_companies_those_tasks_returned(make_api: MakeApi) -> None:
    api = await make_api({"evaluate_rate_per_min": 2})  # unforced tasks stay in progress
    first = await api.done(desired_num_results=5)
    excluded = {_domain(r["company_website"]) for r in first["results"]}
    second = await api.create(exclude_task_ids=[first["id"]], desired_num_results=250)
    assert set(second["exclude_domains"]) == excluded
    api.emulator.force_complete(second["id"])
    returned = {_domain(r["company_website"]) for r in (await api.results(second["id"]))["results"]}
    assert returned and not returned & excluded
    running = (await api.create())["id"]
    foreign = (await api.as_org(2).create())["id"]
    api.emulator.force_complete(foreign)
    for task_id in (running, foreign, str(uuid.uuid4())):
        answer = await api.post(TASKS, {"query": FREIGHT, "exclude_task_ids": [task_id]})
        assert answer.status == 422, task_id
    too_many = await api.post(TASKS, {"query": FREIGHT, "exclude_task_ids": [first["id"]] * 101})
    assert too_many.status == 422


# -- validation, auth, tenancy ----------------------------------------------------------------


async def test_create_validation_errors_are_fastapi_422(api: Api) -> None:
    for desired in (0, 251):
        answer = await api.post(TASKS, {"query": FREIGHT, "desired_num_results": desired})
        assert answer.status == 422
        assert answer.json()["detail"][0]["loc"] == ["body", "desired_num_results"]
    extra = await api.post(TASKS, {"query": FREIGHT, "notify": True})
    assert extra.status == 422 and extra.json()["detail"][0]["type"] == "extra_forbidden"
    bad_bodies: list[dict[str, Any]] = [
        {}, {"query": "   "}, {"query": FREIGHT, "data_sources": ["extruct_db"]},
        {"query": FREIGHT, "criteria": [{"key": "1bad", "name": "x", "criterion": "long enough text"}]},
        {"query": FREIGHT, "criteria": [{"key": "ok", "name": "x", "criterion": "too short"}]},
        {"query": FREIGHT, "criteria": [{"key": "ok", "name": "", "criterion": "long enough text"}]},
        {"query": FREIGHT, "auto_data_sources": False},
        {"query": FREIGHT, "table": {"id": "not-a-uuid"}},
    ]
    for body in bad_bodies:
        assert (await api.post(TASKS, body)).status == 422, body
    broken = await api.call("POST", TASKS, data=b'{"query": ')
    assert broken.status == 422 and broken.json()["detail"][0]["type"] == "json_invalid"
    assert api.stats()["jobs_started"] == 0


async def test_table_and_data_sources_are_echoed(api: Api) -> None:
    table_id = str(uuid.uuid4())
    doc = await api.create(table={"id": table_id, "run": False}, auto_data_sources=False,
                           data_sources=["linkedin"])  # fmt: skip
    assert doc["table_id"] == table_id and doc["data_sources"] == ["linkedin"]
    assert doc["auto_data_sources"] is False
    api.emulator.force_complete(doc["id"])
    assert {r["source"] for r in (await api.results(doc["id"]))["results"]} == {"linkedin"}


async def test_missing_or_bad_bearer_token_is_401(api: Api) -> None:
    token = api.token
    for auth in (None, "", "Bearer", "Bearer ", f"Token {token}", f"Basic {token}", "Bearer nope",
                 f"Bearer  {token}", f"Bearer{token}", token):
        answer = await api.post(TASKS, {"query": FREIGHT}, auth=auth)
        assert answer.status == 401, auth
        assert answer.json() == {"detail": "Could not validate credentials"}
    assert (await api.get("/v1/user", auth=None)).status == 401
    assert (await api.get("/v1/healthcheck", auth=None)).status == 200
    assert api.stats()["jobs_started"] == 0


async def test_the_bearer_scheme_is_case_insensitive_as_in_fastapi_httpbearer(api: Api) -> None:
    for scheme in ("Bearer", "bearer", "BEARER", "bEaReR"):
        answer = await api.post(TASKS, {"query": FREIGHT}, auth=f"{scheme} {api.token}")
        assert answer.status == 200, scheme
        assert (await api.get("/v1/billing", auth=f"{scheme} {api.token}")).status == 200
    assert api.stats()["jobs_started"] == 4


async def test_another_orgs_task_is_404_everywhere(api: Api) -> None:
    task_id = (await api.create())["id"]
    other = api.as_org(2)
    for answer in (await other.get(f"{TASKS}/{task_id}"), await other.get(f"{TASKS}/{task_id}/results"),
                   await other.post(f"{TASKS}/{task_id}/resume", {"desired_new_results": 5})):
        assert answer.status == 404 and answer.json() == {"detail": "Task not found"}
    assert (await api.get(f"{TASKS}/{uuid.uuid4()}")).status == 404
    assert (await api.get(f"{TASKS}/not-a-uuid")).status == 404


async def test_paging_parameters_are_validated(api: Api) -> None:
    task_id = (await api.create())["id"]
    for params in ({"limit": "251"}, {"limit": "0"}, {"offset": "-1"}, {"limit": "ten"}):
        answer = await api.get(f"{TASKS}/{task_id}/results", params=params)
        assert answer.status == 422, params
        assert answer.json()["detail"][0]["loc"][0] == "query"


# -- resume -----------------------------------------------------------------------------------


async def test_resume_extends_the_target_up_to_250_then_refuses(api: Api) -> None:
    done = await api.done(BROAD, desired_num_results=5)
    assert done["num_results"] == 5 and not done["is_exhausted"]
    answer = await api.post(f"{TASKS}/{done['id']}/resume", {"desired_new_results": 20})
    assert answer.status == 200
    resumed = answer.json()
    assert set(resumed) == TASK_FIELDS
    assert resumed["desired_num_results"] == 25 and resumed["status"] == "in_progress"
    await api.sandbox.clock.sleep(5)
    later = await api.task(done["id"])
    assert later["num_results_evaluated"] > done["num_results_evaluated"]
    api.emulator.force_complete(done["id"])
    finished = await api.results(done["id"])
    assert finished["status"] == "done" and finished["num_results"] == len(finished["results"]) == 25
    _check_rows(finished)
    assert {r["id"] for r in done["results"]} <= {r["id"] for r in finished["results"]}
    capped = await api.post(f"{TASKS}/{done['id']}/resume", {"desired_new_results": 250})
    assert capped.status == 200 and capped.json()["desired_num_results"] == 250
    again = await api.post(f"{TASKS}/{done['id']}/resume", {})
    assert again.status == 400
    assert api.stats()["resumes"] == 2 and api.stats()["jobs_started"] == 1


async def test_resume_of_an_exhausted_task_is_400_and_bad_bodies_422(api: Api) -> None:
    done = await api.done(desired_num_results=100)
    assert done["is_exhausted"] and done["num_results"] < 100
    answer = await api.post(f"{TASKS}/{done['id']}/resume", {"desired_new_results": 10})
    assert answer.status == 400
    assert answer.json() == {"detail": "Task is exhausted; create a new task to get more results"}
    for body in ({"desired_new_results": 251}, {"desired_new_results": -1}, {"more": 1}):
        assert (await api.post(f"{TASKS}/{done['id']}/resume", body)).status == 422
    assert api.stats()["resumes"] == 0


# -- list, user, billing, stats, faults -------------------------------------------------------


async def test_list_is_a_bare_array_of_the_orgs_tasks_newest_first(api: Api) -> None:
    ids = [(await api.create(f"{FREIGHT} {i}"))["id"] for i in range(3)]
    await api.as_org(2).create()
    answer = await api.get(TASKS)
    assert answer.status == 200 and isinstance(answer.json(), list)
    listed = answer.json()
    assert [t["id"] for t in listed] == ids[::-1] and set(listed[0]) == TASK_FIELDS
    page = (await api.get(TASKS, params={"offset": "1", "limit": "1"})).json()
    assert [t["id"] for t in page] == [ids[1]]


async def test_credits_are_charged_once_per_match_and_shown_on_user(api: Api) -> None:
    user = (await api.get("/v1/user")).json()
    assert set(user) == {"user_id", "email", "available_credits", "organization_id",
                         "organization_name", "organization_slug", "organization_is_active"}
    assert user["available_credits"] == 10_000
    done = await api.done(desired_num_results=250)
    for _ in range(2):
        await api.results(done["id"])
    stats = api.stats()
    assert stats["jobs_started"] == 1 and stats["credits_charged"] == done["num_results"]
    after = (await api.get("/v1/user")).json()
    assert after["available_credits"] == 10_000 - done["num_results"]


async def test_billing_is_the_user_and_its_subscription_as_the_first_party_cli_reads_it(api: Api) -> None:
    answer = await api.get("/v1/billing")
    assert answer.status == 200
    billing = answer.json()
    assert billing == {"user": (await api.get("/v1/user")).json(),
                       "subscription": {"requires_subscription": False, "plan_tier": "pro"}}
    done = await api.done(desired_num_results=10)
    after = (await api.get("/v1/billing")).json()
    assert after["user"]["available_credits"] == 10_000 - done["num_results"]  # the same balance as /v1/user
    assert (await api.as_org(2).get("/v1/billing")).json()["user"]["available_credits"] == 10_000
    assert (await api.get("/v1/billing", auth=None)).status == 401
    assert (await api.get("/v1/billing", auth="Bearer nope")).json() == {"detail": "Could not validate credentials"}


async def test_billing_reports_the_plan_gate_that_makes_creates_402(make_api: MakeApi) -> None:
    gated = await make_api({"plan_required": True})
    billing = (await gated.get("/v1/billing")).json()
    assert billing["subscription"] == {"requires_subscription": True, "plan_tier": "free"}
    assert billing["user"]["organization_is_active"] is False
    assert (await gated.post(TASKS, {"query": FREIGHT})).status == 402


async def test_plan_gate_and_empty_balance_are_402(make_api: MakeApi) -> None:
    gated = await make_api({"plan_required": True})
    answer = await gated.post(TASKS, {"query": FREIGHT})
    assert answer.status == 402 and answer.json()["detail"]["error"] == "plan_required"
    assert gated.stats()["jobs_started"] == 0
    poor = await make_api({"available_credits": 3})
    done = await poor.done(desired_num_results=250)
    assert done["num_results"] == 3 and poor.stats()["credits_charged"] == 3
    broke = await poor.post(TASKS, {"query": FREIGHT})
    assert broke.status == 402 and broke.json()["detail"]["error"] == "insufficient_credits"


async def test_job_failure_fault_fails_the_task_without_an_error_field(make_api: MakeApi) -> None:
    api = await make_api(faults=(FaultRule("extruct", kind="job_failure", first_n=1),))
    failing, fine = (await api.create())["id"], (await api.create())["id"]
    for task_id in (failing, fine):
        api.emulator.force_complete(task_id)
    failed = await api.task(failing)
    assert failed["status"] == "failed" and set(failed) == TASK_FIELDS
    assert (await api.task(fine))["status"] == "done"
    assert (await api.post(f"{TASKS}/{failing}/resume", {})).status == 400


async def test_failure_draws_repeat_for_the_same_requests_on_the_same_seed_whatever_the_ids(
    make_api: MakeApi,
) -> None:
    queries = [f"{FREIGHT} {i}" for i in range(4)] * 2 + [BROAD] * 4  # repeats draw afresh (their ordinal)

    async def outcomes(api: Api) -> tuple[list[str], list[list[tuple[str, str]]]]:
        ids = [(await api.create(q, desired_num_results=5))["id"] for q in queries]
        for task_id in ids:
            api.emulator.force_complete(task_id)
        docs = [await api.results(task_id) for task_id in ids]
        return [d["status"] for d in docs], [[(r["company_website"], r["source"]) for r in d["results"]]
                                             for d in docs]  # in the served order: it repeats too  # fmt: skip

    first, first_sources = await outcomes(await make_api({"failure_rate": 0.5}))
    second, second_sources = await outcomes(await make_api({"failure_rate": 0.5}))
    assert first == second and {"done", "failed"} == set(first)
    assert first_sources == second_sources  # each result's source is drawn without the task id too
    assert first[:4] != first[4:8] or first[8:] != first[:4]  # the same query can draw differently


async def test_optional_rate_limit_is_429_with_retry_after(make_api: MakeApi) -> None:
    api = await make_api({"rate_limit_per_min": 3, "rate_limit_window_s": 3600})
    statuses = [(await api.get("/v1/user")).status for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    limited = await api.get("/v1/user")
    assert limited.json() == {"detail": "Rate limit exceeded"} and int(limited.headers["Retry-After"]) >= 1
    assert api.stats()["rate_limited"] == 2


async def test_injected_503_and_stats_document(make_api: MakeApi) -> None:
    fault = FaultRule("extruct", endpoint=f"POST {TASKS}", kind="http_5xx", first_n=1)
    api = await make_api(faults=(fault,))
    first = await api.post(TASKS, {"query": FREIGHT})
    assert first.status == 503 and first.json() == {"detail": "Service unavailable"}
    await api.create()
    stats = (await api.get("/_sandbox/stats", auth=None)).json()
    assert stats == api.stats()
    assert stats["jobs_started"] == 1
    assert stats["endpoints"][f"POST {TASKS}"]["statuses"] == {"200": 1, "503": 1}
    assert {"resumes", "credits_charged", "rate_limited"} <= set(stats)
