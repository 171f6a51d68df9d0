"""Conformance to the providers' published schemas (issue 15, item 6).

- the validator (:mod:`tests.conformance.schemas`): documents load, every ``$ref`` resolves, the
  documented example payloads pass, known-bad bodies fail, undocumented routes/statuses are "not
  described", OpenAPI 3.0 ``nullable`` is understood;
- the hook (:mod:`tests.conformance.plugin`): each provider's main flows on a sandbox (a fake clock:
  virtual time moves only when a test sleeps on it; runs are ended with ``force_complete``) must
  reach the validator, so these tests fail if the emulators stop reporting their responses.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from providers.sandbox.runner import Sandbox, SandboxConfig
from tests.conformance.plugin import Recorder
from tests.conformance.schemas import (
    DOCUMENTS,
    FIXTURES,
    Verdict,
    check,
    document,
    normalize,
    overrides,
)
from tests.fakes import FakeClock

# -- the validator --------------------------------------------------------------------------------


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)


@pytest.mark.parametrize("provider", sorted(DOCUMENTS))
def test_each_document_loads_and_every_ref_resolves(provider: str) -> None:
    doc = document(provider)
    assert doc["openapi"].startswith("3.")
    assert (FIXTURES / provider / "SOURCE.md").exists()
    uri = f"urn:conformance:{provider}"
    resolver = Registry().with_resource(uri, Resource.from_contents(doc, DRAFT202012)).resolver(uri)
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        assert resolver.lookup(ref).contents is not None, ref


# Routes an emulator serves that no published document describes (each a deliberate gap, see SOURCE.md).
UNDOCUMENTED_ROUTES = {
    "sixtyfour": {"GET /_storage/{path}"},  # the stand-in for the signed storage URL: a CSV, not the API
    "extruct": {"GET /v1/healthcheck", "GET /v1/billing"},  # first-party CLI only (REPO), no reference page
    "orbit": set(),
}


async def test_every_route_the_emulators_serve_is_in_its_document() -> None:
    config = SandboxConfig(providers=tuple(sorted(DOCUMENTS)), n_companies=400)
    async with Sandbox(config, clock=FakeClock()) as sandbox:
        for provider in sorted(DOCUMENTS):
            served = {f"{r.method} {r.resource.canonical}" for r in sandbox.emulator(provider).app.router.routes()
                      if r.method != "HEAD" and r.resource is not None
                      and not r.resource.canonical.startswith("/_sandbox/")}  # fmt: skip
            described = {route for route in served if route not in UNDOCUMENTED_ROUTES[provider]
                         and check(provider, route, 200, b"{}").verdict is not Verdict.NOT_DESCRIBED}  # fmt: skip
            missing = served - described - UNDOCUMENTED_ROUTES[provider]
            assert not missing, f"{provider}: served but not in tests/fixtures/{provider}: {sorted(missing)}"
            assert UNDOCUMENTED_ROUTES[provider] <= served, f"{provider}: stale UNDOCUMENTED_ROUTES entries"


def _fixture(provider: str, name: str) -> Any:
    return json.loads((FIXTURES / provider / name).read_text(encoding="utf-8"))


# The providers' own example payloads (cited in each SOURCE.md).
SIXTYFOUR_STATUS = {
    "task_id": "e3b0c442-98fc-1c14-9afb-f4c8996fb924", "status": "completed", "start_time": "2026-02-18T10:00:00Z",
    "current_phase": 3, "progress_message": "Finalizing results", "close_time": "2026-02-18T10:04:32Z",
    "resource_handle_id": "rh_7f3d29a1-4b22-4c88-a6f5-1234abcd5678", "total_results": 187, "exported_count": 187,
    "error": None}  # fmt: skip
SIXTYFOUR_QUERY = {
    "search_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890", "next_cursor": "eyJpZCI6I...",
    "cursor_expires_in_seconds": 1800, "request_duration_ms": 142, "has_more": True, "page_size": 10,
    "page_count": 10, "page_number": 1, "max_pages": 500, "remaining_results": 4990, "total_results": 10,
    "results": [{"raw_document_id": "stripe",
                 "raw_source": {"company_name": "Stripe", "hq_country_iso2": "US", "employees_count": 8000}}],
}  # fmt: skip
EXTRUCT_TASK = {
    "id": "d530c3ad-626c-4d7b-ab15-181d4058e4f8", "created_at": "2023-11-07T05:31:56Z", "status": "created",
    "query": "<string>", "desired_num_results": 123, "is_exhausted": False, "num_results": 123, "table_id": None,
}  # fmt: skip
ORBIT_STARTED = {
    "request_id": "8f6f2a1e-4b6d-4f3a-9d2c-1a7e5c3b9f10", "run_id": "RUN_ID", "status": "started",
    "links": {"status": "/v2/developer/deep-search/8f6f2a1e-4b6d-4f3a-9d2c-1a7e5c3b9f10"}}  # fmt: skip

# The documented examples, plus the project's recorded sample payloads in tests/fixtures/<provider>/.
DOCUMENTED_EXAMPLES: list[tuple[str, str, int, Any]] = [
    ("sixtyfour", "POST /search/start-deep-search", 200,
     {"task_id": "e3b0c442-98fc-1c14-9afb-f4c8996fb924", "status": "queued", "message": "Search started successfully"}),
    ("sixtyfour", "GET /search/deep-search-status/{task_id}", 200, SIXTYFOUR_STATUS),
    ("sixtyfour", "GET /search/download", 200,
     {"url": "https://storage.googleapis.com/sixtyfour-results/signed-url-here", "bucket": "sixtyfour-results",
      "path": "org_abc123/search/e3b0c442-98fc-1c14-9afb-f4c8996fb924/results.csv"}),
    ("sixtyfour", "POST /search/query", 200, SIXTYFOUR_QUERY),
    ("sixtyfour", "POST /search/start-deep-search", 422,
     {"detail": [{"loc": ["body", "field"], "msg": "Field required", "type": "missing", "input": None, "ctx": {}}]}),
    ("sixtyfour", "POST /search/export", 409, {"detail": "Export workflow is already running for this search."}),
    ("sixtyfour", "GET /search/status/{task_id}", 200, _fixture("sixtyfour", "status_completed.json")),
    ("sixtyfour", "GET /search/status/{task_id}", 200, _fixture("sixtyfour", "status_running.json")),
    ("sixtyfour", "POST /search/start-deep-search", 200, _fixture("sixtyfour", "start_response.json")),
    ("sixtyfour", "GET /search/download", 200, _fixture("sixtyfour", "download_response.json")),
    ("sixtyfour", "GET /search/filter-capabilities", 200, _fixture("sixtyfour", "filter_capabilities.json")),
    ("sixtyfour", "POST /search/filter-field-values", 200, _fixture("sixtyfour", "filter_field_values.json")),
    ("sixtyfour", "POST /search/query", 200, _fixture("sixtyfour", "query_response_company.json")),
    ("sixtyfour", "POST /search/query", 200, _fixture("sixtyfour", "query_response_company_full.json")),
    ("sixtyfour", "POST /search/query", 200, _fixture("sixtyfour", "query_response_people.json")),
    ("extruct", "GET /v1/discovery_tasks/{task_id}", 200, EXTRUCT_TASK),
    ("extruct", "GET /v1/discovery_tasks/{task_id}/results", 200,
     {"id": "<string>", "created_at": "2023-11-07T05:31:56Z", "status": "created", "query": "<string>",
      "desired_num_results": 123,
      "results": [{"id": "<string>", "task_id": "<string>", "company_name": "<string>",
                   "company_description": "<string>", "company_website": "<string>", "relevance": 123,
                   "created_at": "2023-11-07T05:31:56Z", "company_profile_id": "<string>", "source": "web_search",
                   "scores": {}, "founding_year": 123, "employee_count": "1-10", "hq_country": "<string>",
                   "hq_state_province": "<string>", "hq_city": "<string>", "company_full_description": "<string>"}],
      "is_exhausted": False, "num_results_discovered": 0, "num_results_enriched": 0, "num_results_evaluated": 0,
      "num_results": 0, "table_id": "<string>", "auto_data_sources": True, "data_sources": ["web_search"],
      "criteria": [{"key": "<string>", "name": "<string>", "criterion": "<string>"}]}),
    ("extruct", "GET /v1/user", 200,
     {"user_id": "<string>", "email": "<string>", "available_credits": 123, "organization_id": "<string>",
      "organization_name": "<string>", "organization_slug": "<string>", "organization_is_active": True}),
    ("extruct", "GET /v1/discovery_tasks/{task_id}", 200, _fixture("extruct", "task_in_progress.json")),
    ("extruct", "GET /v1/discovery_tasks/{task_id}/results", 200, _fixture("extruct", "results_done.json")),
    ("orbit", "POST /v2/developer/deep-search", 202, ORBIT_STARTED),
    ("orbit", "POST /v2/developer/deep-search", 200,
     {"request_id": "regen-1", "run_id": None, "status": "completed", "result": {"id": "ORBIT_PROFILE_ID"},
      "links": {"profile": "/v2/developer/profiles/ORBIT_PROFILE_ID"}}),
    ("orbit", "GET /v2/developer/deep-search/{requestId}", 200,
     {"request_id": "8f6f2a1e-4b6d-4f3a-9d2c-1a7e5c3b9f10", "run_id": "RUN_ID", "status": "running", "result": None}),
    ("orbit", "GET /v2/developer/deep-search/{requestId}", 200,
     {"request_id": "8f6f2a1e-4b6d-4f3a-9d2c-1a7e5c3b9f10", "run_id": "RUN_ID", "status": "completed",
      "result": {"id": "ORBIT_PROFILE_ID"}}),
    ("orbit", "GET /v2/developer/profiles/{id}", 402,
     {"status": "failed", "error": {"code": "developer_api_credits_insufficient",
                                    "message": "Developer API credits are insufficient for this request",
                                    "requiredCredits": 2, "remainingCredits": 0}}),
    ("orbit", "GET /v2/developer/profiles/{id}", 200, _fixture("orbit", "profile.json")),
    ("orbit", "POST /v2/developer/deep-search", 202, _fixture("orbit", "start_started.json")),
    ("orbit", "POST /v2/developer/deep-search", 200, _fixture("orbit", "start_completed.json")),
    ("orbit", "GET /v2/developer/deep-search/{requestId}", 200, _fixture("orbit", "status_completed.json")),
    ("orbit", "GET /v2/developer/deep-search/{requestId}", 200, _fixture("orbit", "status_failed.json")),
    ("orbit", "GET /v2/developer/deep-search/{requestId}", 200, _fixture("orbit", "status_candidates_running.json")),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "route", "status", "body"), DOCUMENTED_EXAMPLES)
def test_documented_examples_conform(provider: str, route: str, status: int, body: Any) -> None:
    result = check(provider, route, status, json.dumps(body).encode())
    assert result.verdict is Verdict.VALID, result


def _without(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != key}


_STATUS, _QUERY, _TASK, _ORBIT_START = SIXTYFOUR_STATUS, SIXTYFOUR_QUERY, EXTRUCT_TASK, ORBIT_STARTED

KNOWN_BAD: list[tuple[str, str, int, Any, str]] = [
    ("sixtyfour", "GET /search/status/{task_id}", 200, _without(_STATUS, "start_time"), "'start_time' is a required"),
    ("sixtyfour", "GET /search/status/{task_id}", 200, {**_STATUS, "current_phase": "3"}, "'3' is not valid"),
    ("sixtyfour", "POST /search/query", 200, _without(_QUERY, "total_results"), "'total_results' is a required"),
    ("sixtyfour", "POST /search/query", 200, {**_QUERY, "results": [["stripe"]]}, "is not of type 'object'"),
    ("sixtyfour", "POST /search/filter-field-values", 400, {"detail": {"code": "unsupported_field", "message": "x"}},
     "is not of type 'string'"),
    ("sixtyfour", "POST /search/start-deep-search", 422, {"detail": [{"loc": ["body"], "msg": "Field required"}]},
     "'type' is a required"),
    ("extruct", "GET /v1/discovery_tasks/{task_id}", 200, {**_TASK, "status": "running"}, "is not one of"),
    ("extruct", "GET /v1/discovery_tasks/{task_id}/results", 200, _TASK, "'results' is a required"),
    ("extruct", "GET /v1/user", 200, {"user_id": "u", "email": "e", "available_credits": 1.5},
     "is not of type 'integer'"),
    ("orbit", "POST /v2/developer/deep-search", 202, {**_ORBIT_START, "status": "already_running"}, "was expected"),
    ("orbit", "POST /v2/developer/deep-search", 202, _without(_ORBIT_START, "links"), "'links' is a required"),
    ("orbit", "GET /v2/developer/deep-search/{requestId}", 200,
     {"request_id": "r", "run_id": None, "status": "running"}, "'result' is a required"),
    ("orbit", "GET /v2/developer/profiles/{id}", 404, {"status": "failed", "error": {"message": "gone"}},
     "'code' is a required"),
]  # fmt: skip


@pytest.mark.parametrize(("provider", "route", "status", "body", "message"), KNOWN_BAD)
def test_known_bad_bodies_are_rejected_with_the_failing_path(
    provider: str, route: str, status: int, body: Any, message: str
) -> None:
    result = check(provider, route, status, json.dumps(body).encode())
    assert result.verdict is Verdict.INVALID
    assert any(message in v.message for v in result.violations), result.violations
    assert result.described_by.startswith(route.split(" ")[0])


def test_a_body_that_is_not_json_fails_a_described_route() -> None:
    result = check("sixtyfour", "GET /search/status/{task_id}", 200, b'{"task_id": "')
    assert result.verdict is Verdict.INVALID and "not valid JSON" in result.violations[0].message


@pytest.mark.parametrize(("provider", "route", "status", "content_type"), [
    ("sixtyfour", "GET /search/status/{task_id}", 418, "application/json"),  # status not in the document
    ("sixtyfour", "GET /search/history/{search_id}", 200, "application/json"),  # route not in the subset
    ("sixtyfour", "GET <unmatched>", 404, "application/json"),
    ("extruct", "GET /v1/discovery_tasks/{task_id}", 404, "application/json"),  # error bodies unpublished
    ("extruct", "GET /v1/healthcheck", 200, "application/json"),
    ("nobody", "GET /x", 200, "application/json"),
])  # fmt: skip
def test_undescribed_routes_and_statuses_are_not_described(
    provider: str, route: str, status: int, content_type: str
) -> None:
    assert check(provider, route, status, b"{}", content_type=content_type).verdict is Verdict.NOT_DESCRIBED


def test_non_json_bodies_are_counted_not_validated() -> None:
    result = check("sixtyfour", "GET /search/download", 200, b"a,b\n1,2\n", content_type="text/csv")
    assert result.verdict is Verdict.NOT_JSON


def test_route_parameters_match_whatever_their_names() -> None:
    named = check("orbit", "GET /v2/developer/profiles/{profileId}", 200, _fixture("orbit", "profile.json"))
    assert named.verdict is Verdict.VALID


def test_openapi_30_nullable_and_boolean_exclusive_bounds_are_normalized() -> None:
    assert normalize({"type": "string", "nullable": True}) == {"type": ["string", "null"]}
    assert normalize({"enum": ["a"], "nullable": True}) == {"enum": ["a", None]}
    assert normalize({"$ref": "#/x", "nullable": True, "description": "d"}) == {
        "description": "d", "anyOf": [{"$ref": "#/x"}, {"type": "null"}]}  # fmt: skip
    assert normalize({"description": "any", "nullable": True}) == {"description": "any"}
    assert normalize({"type": "integer", "minimum": 1, "exclusiveMinimum": True}) == {
        "type": "integer", "exclusiveMinimum": 1}  # fmt: skip
    assert normalize({"type": "integer", "maximum": 9, "exclusiveMaximum": False}) == {"type": "integer", "maximum": 9}
    # a property called "nullable" is a property, not the keyword
    props = {"type": "object", "properties": {"nullable": {"type": "boolean"}}}
    assert normalize(props) == props
    # the published Sixtyfour ValidationError.input says "nullable: true" with no type: anything goes
    detail = [{"loc": ["body", 0], "msg": "m", "type": "t", "input": None}]
    assert check("sixtyfour", "POST /search/query", 422, json.dumps({"detail": detail})).verdict is Verdict.VALID


@pytest.mark.parametrize("provider", sorted(DOCUMENTS))
def test_every_override_is_narrow_and_cited(provider: str) -> None:
    for override in overrides(provider):
        assert override.path.startswith(("/components/schemas/", "/paths/")), override
        assert len(override.reason) > 20 and override.citation, override


# -- the hook: each provider's main flows reach the validator --------------------------------------


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


class Client:
    """Raw HTTP to one emulator of a sandbox, recording how many answers the schema describes."""

    def __init__(self, session: aiohttp.ClientSession, sandbox: Sandbox, provider: str,
                 auth: Callable[[str], dict[str, str]]) -> None:  # fmt: skip
        self.session, self.sandbox, self.provider = session, sandbox, provider
        self.base = sandbox.base_urls[provider]
        self.headers = auth(sandbox.api_key(provider, 1))
        self.described = 0

    @property
    def emulator(self) -> Any:
        return self.sandbox.emulator(self.provider)

    async def call(self, method: str, path: str, *, json: Any = None, params: Mapping[str, str] | None = None,
                   headers: Mapping[str, str] | None = None, expect: int | None = None) -> Answer:  # fmt: skip
        url = path if path.startswith("http") else self.base + path
        sent = self.headers if headers is None else headers
        async with self.session.request(method, url, headers=sent, json=json, params=params) as resp:
            answer = Answer(resp.status, await resp.read())
        if expect is not None:
            assert answer.status == expect, (method, path, answer.status, answer.body[:300])
        return answer

    async def described_call(self, method: str, path: str, **kw: Any) -> Any:
        """A call whose answer the provider's document describes (counted); returns its JSON."""
        answer = await self.call(method, path, **kw)
        self.described += 1
        return answer.json()


@asynccontextmanager
async def _client(provider: str, auth: Callable[[str], dict[str, str]], *, n_companies: int,
                  settings: Mapping[str, Any] | None = None) -> AsyncIterator[Client]:  # fmt: skip
    config = SandboxConfig(providers=(provider,), n_companies=n_companies, settings={provider: dict(settings or {})})
    async with aiohttp.ClientSession() as session, Sandbox(config, clock=FakeClock()) as sandbox:
        yield Client(session, sandbox, provider, auth)


def _assert_reached_the_validator(conformance: Recorder, client: Client) -> None:
    tally = conformance.snapshot()
    assert client.described >= 8
    assert tally.count(client.provider, Verdict.VALID) >= client.described, tally.lines()
    assert tally.count(client.provider, Verdict.INVALID) == 0, conformance.report()


async def test_sixtyfour_flows_are_checked_against_the_published_openapi(conformance: Recorder) -> None:
    slow = {"duration_min_s": 3000.0, "duration_max_s": 3600.0}
    async with _client("sixtyfour", lambda key: {"x-api-key": key}, n_companies=400, settings=slow) as api:
        started = await api.described_call("POST", "/search/start-deep-search", expect=200,
                                           json={"query": "VP of Engineering in New York", "max_results": 20})
        task_id = started["task_id"]
        await api.described_call("GET", f"/search/status/{task_id}", expect=200)
        api.emulator.force_complete(task_id)
        done = await api.described_call("GET", f"/search/status/{task_id}", expect=200)
        assert done["status"] == "completed", done
        await api.described_call("GET", f"/search/deep-search-status/{task_id}", expect=200)
        link = await api.described_call("GET", "/search/download", expect=200,
                                        params={"resource_handle_id": done["resource_handle_id"]})
        csv = await api.call("GET", link["url"], headers={}, expect=200)  # a CSV: counted as "not json"
        assert csv.body
        page = await api.described_call("POST", "/search/query", expect=200,
                                        json={"search_id": done["search_id"], "page_size": 5})
        if page["has_more"]:
            await api.described_call("POST", "/search/query", expect=200, json={"cursor": page["next_cursor"]})
        await api.described_call("GET", "/search/filter-capabilities", expect=200, params={"mode": "company"})
        await api.described_call("POST", "/search/filter-field-values", expect=200,
                                 json={"mode": "company", "field": "employees_count", "top_k": 5})
        await api.described_call("POST", "/search/query", expect=200,
                                 json={"mode": "company", "simple_filters": {"hq_country_iso2": "US"}, "page_size": 3})
        await api.described_call("POST", "/search/start-filter-search", expect=200,
                                 json={"mode": "company", "simple_filters": {"hq_country_iso2": "US"}, "page_size": 3})
        export = await api.described_call("POST", "/search/export", expect=200,
                                          json={"search_id": done["search_id"], "mode": "people"})
        await api.described_call("GET", f"/search/status/{export['task_id']}", expect=200)
        # documented errors: unknown task (404), missing query (422), no key (401)
        await api.described_call("GET", "/search/status/no-such-task", expect=404)
        await api.described_call("POST", "/search/start-deep-search", json={"mode": "people"}, expect=422)
        await api.described_call("GET", f"/search/status/{task_id}", headers={}, expect=401)
    _assert_reached_the_validator(conformance, api)
    assert conformance.snapshot().count("sixtyfour", Verdict.NOT_JSON) >= 1


async def test_extruct_flows_are_checked_against_the_published_reference(conformance: Recorder) -> None:
    async with _client("extruct", lambda key: {"Authorization": f"Bearer {key}"}, n_companies=2000) as api:
        tasks = "/v1/discovery_tasks"
        task = await api.described_call("POST", tasks, expect=200,
                                        json={"query": "vertical SaaS companies serving freight forwarding",
                                              "desired_num_results": 10})
        task_id = task["id"]
        await api.described_call("GET", f"{tasks}/{task_id}", expect=200)
        await api.described_call("GET", f"{tasks}/{task_id}/results", expect=200, params={"limit": "5"})
        api.emulator.force_complete(task_id)
        done = await api.described_call("GET", f"{tasks}/{task_id}/results", expect=200, params={"limit": "50"})
        assert done["status"] in ("done", "failed"), done["status"]
        await api.described_call("GET", f"{tasks}/{task_id}/results", expect=200,
                                 params={"offset": "5", "limit": "5"})
        await api.described_call("GET", tasks, expect=200, params={"limit": "5"})
        second = await api.described_call("POST", tasks, expect=200,
                                          json={"query": "AI procurement startups", "desired_num_results": 5,
                                                "criteria": [{"key": "b2b_fit", "name": "B2B Fit",
                                                              "criterion": "Company sells to business buyers."}],
                                                "exclude_domains": ["https://www.Acme.com/about"]})
        resumed = await api.call("POST", f"{tasks}/{second['id']}/resume", json={"desired_new_results": 5})
        if resumed.status == 200:  # 400 when the small pool is already exhausted (DOC)
            api.described += 1
        await api.described_call("GET", "/v1/user", expect=200)
        await api.described_call("GET", f"{tasks}/{second['id']}", expect=200)
        # errors have no published body: counted as "not described"
        await api.call("GET", f"{tasks}/00000000-0000-4000-8000-000000000000", expect=404)
    _assert_reached_the_validator(conformance, api)
    assert conformance.snapshot().count("extruct", Verdict.NOT_DESCRIBED) >= 1


async def test_orbit_flows_are_checked_against_the_documented_payloads(conformance: Recorder) -> None:
    slow = {"partial_s": 5000.0, "full_s": 10000.0, "identity_check_s": 5000.0, "sources_s": 5000.0}
    async with _client("orbit", lambda key: {"Authorization": f"Bearer {key}"}, n_companies=1000,
                       settings=slow) as api:  # fmt: skip
        start = "/v2/developer/deep-search"
        person = next(iter(api.emulator.index.people))
        body = {"requestId": "conformance-1", "email": person.email, "runShape": "partial_plus_full"}
        await api.described_call("POST", start, json=body, expect=202)
        await api.described_call("POST", start, json=body, expect=200)  # already_running
        await api.described_call("GET", f"{start}/conformance-1", expect=200)
        api.emulator.force_complete("conformance-1")
        done = await api.described_call("GET", f"{start}/conformance-1", expect=200)
        if isinstance(done["result"], dict) and "id" in done["result"]:
            await api.described_call("GET", f"/v2/developer/profiles/{done['result']['id']}", expect=200)
        intent = {"version": "v1", "experiences": [{"title": "VP of Engineering", "temporalScope": "current"}],
                  "geo": {"place": "New York"}}
        discovery = {"requestId": "conformance-2", "runShape": "candidate_discovery", "structuredIntent": intent}
        await api.described_call("POST", start, json=discovery, expect=202)
        api.emulator.force_complete("conformance-2")
        await api.described_call("GET", f"{start}/conformance-2", expect=200)
        # documented errors (ERR envelope)
        await api.described_call("GET", f"{start}/no-such-run", expect=404)
        await api.described_call("POST", start, json={"mode": "generation", "email": person.email}, expect=400)
        await api.described_call("POST", start, json={"runShape": "partial_only"}, expect=400)
        await api.described_call("GET", "/v2/developer/profiles/no-such-profile", expect=404)
        await api.described_call("GET", f"{start}/conformance-1", headers={}, expect=401)
    _assert_reached_the_validator(conformance, api)
