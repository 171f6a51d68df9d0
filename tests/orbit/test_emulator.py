"""The Orbit emulator over real sockets (design §5 layer 3; contract orbit.md §1-§5, §7-§9)."""

from __future__ import annotations

import itertools
import uuid
from typing import TYPE_CHECKING, Any

import pytest

from providers.sandbox.faults import FaultRule
from providers.sandbox.world import World

if TYPE_CHECKING:  # fixtures come from tests/orbit/conftest.py
    from conftest import Api, MakeApi

START = "/v2/developer/deep-search"
CREDITS = "X-Developer-API-Credits-Remaining"
DEMO_INTENT = {"version": "v1", "experiences": [{"title": "VP of Engineering", "temporalScope": "current"}],
               "geo": {"place": "New York"}, "semanticClauses": [{"text": "Series B SaaS startups"}]}
STANDARD = ("basic", "personalLife", "images", "jobs", "education", "passions", "worldview",
            "accomplishments", "controversies", "bestQualities", "netWorth", "portfolio", "families")
FAST_DISCOVERY = {"sources_s": 50.0, "clustering_s": 50.0, "dispatch_s": 10.0, "candidate_interval_s": 60.0}


def _person(api: Api, *, github: bool = False, school: bool = False) -> Any:
    """A person Orbit covers (with a GitHub handle / school when asked)."""
    return next(p for p in api.emulator.index.people
                if (p.github_username or not github) and (p.school or not school))


def _structured_truth(world: World) -> set[str]:
    """Hidden ids of every covered VP of Engineering in New York (the demo intent without its phrase)."""
    def covered(true_id: str) -> bool:
        return world.visible("orbit", true_id)

    return {p.true_id for p in world.people if p.title == "VP of Engineering" and p.city == "New York"
            and covered(p.true_id) and covered(p.company_id)}  # fmt: skip


def _demo_truth(world: World) -> set[str]:
    """Hidden ids of every covered VP of Engineering in New York at a Series B SaaS startup."""
    def series_b_saas(company_id: str) -> bool:
        company = world.company(company_id)
        return (company.funding_stage == "Series B" and "saas" in company.categories
                and company.employees_count <= 500)  # fmt: skip

    return {t for t in _structured_truth(world) if series_b_saas(world.person(t).company_id)}


# -- start, idempotency, credits ----------------------------------------------------------------


async def test_start_is_202_started_with_links_credits_header_and_10_credits(api: Api) -> None:
    person = _person(api)
    answer = await api.post({"requestId": "run-1", "linkedinUrl": f"https://www.linkedin.com/in/{person.linkedin_slug}"})
    assert answer.status == 202
    doc = answer.json()
    assert doc == {"request_id": "run-1", "run_id": doc["run_id"], "status": "started",
                   "links": {"status": "/v2/developer/deep-search/run-1"}}
    assert doc["run_id"].startswith("run_") and uuid.UUID(doc["run_id"][4:])
    assert answer.headers[CREDITS] == "9990" and api.emulator.balance(1) == 9990
    stats = api.stats()
    assert stats["jobs_started"] == 1 and stats["credits_charged"] == 10


async def test_same_request_id_and_body_replays_already_running_and_charges_once(api: Api) -> None:
    body = {"requestId": "same", "email": _person(api).email, "runShape": "partial_plus_full"}
    first = (await api.post(body)).json()
    again = await api.post({"runShape": "partial_plus_full", **body})  # key order does not matter
    assert again.status == 200 and again.headers[CREDITS] == "9990"
    assert again.json() == {**first, "status": "already_running"}
    stats = api.stats()
    assert stats["jobs_started"] == 1 and stats["credits_charged"] == 10 and stats["idempotent_replays"] == 1


async def test_a_replay_after_the_run_completed_answers_the_finished_run_and_charges_nothing(api: Api) -> None:
    body = {"requestId": "done", "email": _person(api).email, "runShape": "partial_plus_full"}
    first = (await api.post(body)).json()
    api.emulator.force_complete("done")
    status = await api.status("done")
    late = await api.post(body)  # INF §3.3: the status document in the start response's shape
    profile_id = status["result"]["id"]
    assert late.status == 200 and late.headers[CREDITS] == "9990"
    assert late.json() == {**status, "links": {"status": f"{START}/done",
                                               "profile": f"/v2/developer/profiles/{profile_id}"}}
    assert late.json()["run_id"] == first["run_id"] and late.json()["status"] == "completed"
    stats = api.stats()
    assert stats["jobs_started"] == 1 and stats["credits_charged"] == 10 and stats["idempotent_replays"] == 1


async def test_a_replay_after_the_run_failed_answers_the_failure(make_api: MakeApi) -> None:
    api = await make_api({"identity_check_s": 1.0})
    body = {"requestId": "lost", "email": "nobody@nowhere.example"}
    await api.start(**body)
    await api.sandbox.clock.sleep(2)
    late = await api.post(body)
    assert late.status == 200 and late.json() == {**await api.status("lost"), "links": {"status": f"{START}/lost"}}
    assert late.json()["failure"]["code"] == "identity_not_corroborated" and late.json()["result"] is None
    assert api.stats()["credits_charged"] == 10


async def test_a_finished_discovery_replays_its_candidates(api: Api) -> None:
    body = {"requestId": "disc", "runShape": "candidate_discovery", "structuredIntent": DEMO_INTENT}
    await api.start(**body)
    api.emulator.force_complete("disc")
    late = await api.post(body)
    assert late.status == 200 and late.json() == {**await api.status("disc"), "links": {"status": f"{START}/disc"}}
    assert late.json()["result"]["candidate_profile_ids"] and api.stats()["jobs_started"] == 1


async def test_after_the_run_ended_another_body_still_conflicts_and_another_key_starts_afresh(api: Api) -> None:
    email = _person(api).email
    await api.start(requestId="ended", email=email)
    api.emulator.force_complete("ended")
    conflict = await api.post({"requestId": "ended", "email": email, "runShape": "partial_plus_full"})
    assert conflict.status == 409 and conflict.code == "developer_api_idempotency_key_conflict"
    other = api.with_key(api.emulator.create_key(1))  # INF §1: requestIds are per API key
    assert (await other.post({"requestId": "ended", "email": email})).status == 202
    assert api.stats()["jobs_started"] == 2 and api.stats()["credits_charged"] == 20


async def test_same_request_id_with_a_different_body_is_409_conflict(api: Api) -> None:
    await api.start(requestId="dup", email=_person(api).email)
    body = {"requestId": "dup", "email": _person(api).email, "runShape": "partial_plus_full"}
    answer = await api.post(body)
    assert answer.status == 409 and answer.code == "developer_api_idempotency_key_conflict"
    assert api.stats()["credits_charged"] == 10


async def test_omitted_request_id_is_generated_by_the_server(api: Api) -> None:
    first = await api.start(email=_person(api).email)
    second = await api.start(email=_person(api).email)
    assert uuid.UUID(first["request_id"]) and first["request_id"] != second["request_id"]
    assert first["links"]["status"] == f"{START}/{first['request_id']}"
    assert api.stats()["jobs_started"] == 2


async def test_fully_generated_profile_id_completes_at_once_refunded_then_409(api: Api) -> None:
    person = _person(api)
    done = await api.finished(requestId="full", email=person.email, runShape="full_generation_only")
    profile_id = done["result"]["id"]
    answer = await api.post({"requestId": "regen", "profileId": profile_id})
    assert answer.status == 200 and answer.headers[CREDITS] == "9990"
    assert answer.json() == {"request_id": "regen", "run_id": None, "status": "completed",
                             "result": {"id": profile_id},
                             "links": {"profile": f"/v2/developer/profiles/{profile_id}"}}
    again = await api.post({"requestId": "regen", "profileId": profile_id})
    assert again.status == 409 and again.code == "developer_api_idempotency_key_refunded"
    assert api.stats()["jobs_started"] == 1 and api.emulator.balance(1) == 9990


async def test_lone_profile_id_of_a_partial_profile_starts_full_generation(api: Api) -> None:
    done = await api.finished(email=_person(api).email)  # partial_only
    await api.start(requestId="regen", profileId=done["result"]["id"])
    assert api.emulator.run("regen").shape == "full_generation_only"


async def test_402_names_required_and_remaining_credits_and_charges_nothing(make_api: MakeApi) -> None:
    api = await make_api({"initial_credits": 15})
    await api.start(email=_person(api).email)
    answer = await api.post({"email": _person(api).email})
    assert answer.status == 402
    assert answer.json() == {"status": "failed", "error": {
        "code": "developer_api_credits_insufficient", "message": answer.json()["error"]["message"],
        "requiredCredits": 10, "remainingCredits": 5}}
    assert api.stats()["jobs_started"] == 1 and api.emulator.balance(1) == 5


# -- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("field", "value", "replacement"), [
    ("mode", "generation", "runShape"),
    ("mode", "candidate_discovery", 'runShape "candidate_discovery"'),
    ("partialProfile", True, '"partial_plus_full"'),
    ("dry_run", True, "runs are always real"),
    ("options", {}, "removed"),
    ("profile_id", "orb_x", "use profileId"),
    ("orbit_id", "orb_x", "use profileId"),
    ("phone", "+12125550100", "use phoneNumber"),
    ("nickname", "x", "allowed fields: requestId"),
])  # fmt: skip
async def test_fields_outside_the_allowlist_name_the_field_and_replacement(
    api: Api, field: str, value: Any, replacement: str
) -> None:
    answer = await api.post({"email": "jane@example.com", field: value})
    assert answer.status == 400 and answer.code == "developer_deep_search_field_unsupported"
    message = answer.json()["error"]["message"]
    assert repr(field) in message and replacement in message


VALID = {"email": "jane@example.com"}
INTENT = {"version": "v1", "names": ["Jane Doe"]}


@pytest.mark.parametrize(("body", "code"), [
    ({"requestId": "", **VALID}, "developer_deep_search_request_id_invalid"),
    ({"requestId": 7, **VALID}, "developer_deep_search_request_id_invalid"),
    ({"runShape": "slim_partial", **VALID}, "developer_deep_search_run_shape_invalid"),
    ({"runShape": "candidate_discovery", **VALID}, "developer_deep_search_run_shape_invalid"),
    ({"runShape": "candidate_discovery", "profileId": "orb_1", "structuredIntent": INTENT},
     "developer_deep_search_run_shape_invalid"),
    ({"profileId": ""}, "developer_deep_search_profile_id_invalid"),
    ({"email": "not-an-email"}, "developer_deep_search_email_invalid"),
    ({"phoneNumber": "call me"}, "developer_deep_search_phone_invalid"),
    ({"phoneNumber": "12"}, "developer_deep_search_phone_invalid"),
    ({"linkedinUrl": "https://www.linkedin.com/company/acme"}, "developer_deep_search_linkedin_invalid"),
    ({"linkedinUrl": "https://example.com/in/jane"}, "developer_deep_search_linkedin_invalid"),
    ({"urls": "https://example.com"}, "developer_deep_search_field_invalid"),
    ({"usernames": ["ok", 3]}, "developer_deep_search_field_invalid"),
    ({"urls": ["ftp://example.com/x"]}, "developer_deep_search_url_invalid"),
    ({"urls": ["not a url"]}, "developer_deep_search_url_invalid"),
    ({"runShape": "partial_only"}, "developer_deep_search_input_required"),
    ({"urls": [], "usernames": []}, "developer_deep_search_input_required"),
    ({"structuredIntent": {**INTENT, "personalization": {"network": {"scope": "first_degree"}}}},
     "developer_deep_search_personalization_unsupported"),
    ({"structuredIntent": "VP of Engineering"}, "structured_intent_required"),
    ({"structuredIntent": {**INTENT, "intent": {}}}, "structured_intent_invalid"),
    ({"structuredIntent": {**INTENT, "experiences": [{"title": 3}]}}, "structured_intent_invalid"),
    ({"structuredIntent": {**INTENT, "experiences": [{"temporalScope": "past"}]}},
     "structured_intent_invalid"),
    ({"structuredIntent": {**INTENT, "demographics": {"ageRange": {"min": 40, "max": 30}}}},
     "structured_intent_invalid"),
    ({"structuredIntent": {"names": ["Jane Doe"]}}, "structured_intent_invalid"),
    ({"structuredIntent": {**INTENT, "version": "v2"}}, "structured_intent_version_unsupported"),
    ({"structuredIntent": {**INTENT, "entityClauses": []}}, "structured_intent_entity_clauses_unsupported"),
    ({"structuredIntent": {**INTENT, "resolvedCompanyFilters": {}}}, "structured_intent_server_owned_field"),
    ({"structuredIntent": {**INTENT, "resolvedSchoolFilters": {}}}, "structured_intent_server_owned_field"),
    ({"structuredIntent": {**INTENT, "resolvedEntityFilters": {}}}, "structured_intent_server_owned_field"),
    ([VALID], "developer_deep_search_invalid_request"),
])  # fmt: skip
async def test_invalid_bodies_get_the_documented_400_code_and_cost_nothing(
    api: Api, body: Any, code: str
) -> None:
    answer = await api.post(body)
    assert answer.status == 400 and answer.code == code, answer.body
    assert api.stats()["jobs_started"] == 0 and CREDITS not in answer.headers


async def test_non_json_body_is_invalid_request(api: Api) -> None:
    answer = await api.call("POST", START, data=b"{not json", headers={
        "Authorization": f"Bearer {api.key}", "Content-Type": "application/json"})
    assert answer.status == 400 and answer.code == "developer_deep_search_invalid_request"


async def test_demographics_and_year_fields_are_accepted_and_ignored(api: Api) -> None:
    intent = {**DEMO_INTENT, "demographics": {"ageRange": {"min": 30, "max": 50}, "gender": "female"},
              "experiences": [{"title": "VP of Engineering", "startYear": 2019}]}
    await api.start(runShape="candidate_discovery", structuredIntent=intent)


# -- auth ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "status", "code"), [
    ({}, 401, "missing_api_key"),
    ({"Authorization": "Bearer "}, 401, "missing_api_key"),
    ({"api-key": "sandbox-orbit-key-1"}, 401, "missing_api_key"),
    ({"Authorization": "Basic c2FuZGJveA=="}, 403, "invalid_api_key"),
    ({"Authorization": "Bearer sk_orb_unknown"}, 403, "invalid_api_key"),
    ({"Authorization": "Bearer sandbox-sixtyfour-key-1"}, 403, "invalid_api_key"),
])  # fmt: skip
async def test_missing_or_invalid_keys_get_401_or_403(
    api: Api, headers: dict[str, str], status: int, code: str
) -> None:
    for path in (START, f"{START}/x", "/v2/developer/profiles/x"):
        answer = await api.call("POST" if path == START else "GET", path, json=VALID, headers=headers)
        assert (answer.status, answer.code) == (status, code)


async def test_scopes_search_read_for_deep_search_and_profile_read_for_profiles(api: Api) -> None:
    em = api.emulator
    search_only = api.with_key(em.create_key(1, ["search:read"]))
    profile_only = api.with_key(em.create_key(1, ["profile:read"]))
    assert search_only.key.startswith("sk_orb_") and profile_only.key.startswith("sk_orb_")
    doc = await search_only.finished(email=_person(api).email)
    denied = await profile_only.post(VALID)
    assert denied.status == 403 and denied.code == "missing_api_key_scope"
    denied = await search_only.call("GET", f"/v2/developer/profiles/{doc['result']['id']}")
    assert denied.status == 403 and denied.code == "missing_api_key_scope"
    assert (await profile_only.profile(doc["result"]["id"]))["id"] == doc["result"]["id"]
    both = api.with_key(em.create_key(1))
    await both.start(email=_person(api).email)


async def test_a_run_of_another_key_is_404_not_found(api: Api) -> None:
    run = await api.start(requestId="mine", email=_person(api).email)
    for other in (api.with_key(api.sandbox.api_key("orbit", 2)), api.with_key(api.emulator.create_key(1))):
        answer = await other.call("GET", f"{START}/mine")
        assert answer.status == 404 and answer.code == "developer_deep_search_run_not_found"
    assert (await api.status("mine"))["run_id"] == run["run_id"]
    unknown = await api.call("GET", f"{START}/never-started")
    assert unknown.status == 404 and unknown.code == "developer_deep_search_run_not_found"


# -- single-profile runs -------------------------------------------------------------------------


@pytest.mark.parametrize("variant", [
    "https://www.linkedin.com/in/{slug}",
    "http://linkedin.com/in/{slug}/",
    "https://uk.linkedin.com/in/{upper}?trk=public_profile",
    "linkedin.com/in/{slug}",
])  # fmt: skip
async def test_linkedin_url_variants_resolve_the_right_person(api: Api, variant: str) -> None:
    person = _person(api)
    url = variant.format(slug=person.linkedin_slug, upper=person.linkedin_slug.upper())
    doc = await api.finished(linkedinUrl=url)
    assert doc["status"] == "completed"
    assert doc["result"]["id"] == api.emulator.profile_id(person)
    profile = await api.profile(doc["result"]["id"])
    assert profile["displayName"] == person.full_name


@pytest.mark.parametrize("signal", ["email", "phone", "github_url", "username", "alias"])
async def test_other_identity_signals_resolve_the_same_person(api: Api, signal: str) -> None:
    person = _person(api, github=True)
    digits = person.phone.removeprefix("+")
    body = {"email": {"email": person.email.upper()},
            "phone": {"phoneNumber": f"+{digits[0]} ({digits[1:4]}) {digits[4:7]}-{digits[7:]}"},
            "github_url": {"urls": [f"https://github.com/{person.github_username}"]},
            "username": {"usernames": [person.github_username]},
            "alias": {"profileId": f"orbit_{person.linkedin_slug}", "runShape": "partial_only"}}[signal]
    doc = await api.finished(**body)
    assert doc["result"]["id"] == api.emulator.profile_id(person)


async def test_unknown_identity_fails_identity_not_corroborated(make_api: MakeApi) -> None:
    api = await make_api({"identity_check_s": 1.0})
    run = await api.start(linkedinUrl="https://www.linkedin.com/in/nobody-at-all-1",
                          email="x@nowhere.example")
    assert (await api.status(run["request_id"]))["status"] in ("running", "failed")
    await api.sandbox.clock.sleep(2)
    doc = await api.status(run["request_id"])
    assert doc["status"] == "failed" and doc["result"] is None
    assert doc["failure"]["code"] == "identity_not_corroborated"
    assert doc["failure"]["retry_inputs"] == ["linkedinUrl", "email"]


async def test_signals_pointing_at_two_people_are_not_corroborated(api: Api) -> None:
    a, b = api.emulator.index.people[:2]
    doc = await api.finished(email=a.email, linkedinUrl=f"https://www.linkedin.com/in/{b.linkedin_slug}")
    assert doc["status"] == "failed" and doc["failure"]["code"] == "identity_not_corroborated"


async def test_partial_plus_full_shows_generating_sections_then_a_fuller_profile(make_api: MakeApi) -> None:
    api = await make_api({"partial_s": 1.0})
    person = _person(api, github=True, school=True)
    run = await api.start(runShape="partial_plus_full", usernames=[person.github_username])
    doc = await api.status(run["request_id"])
    while doc["status"] == "running":
        await api.sandbox.clock.sleep(0.5)
        doc = await api.status(run["request_id"])
    assert doc["status"] == "generating_sections" and doc["result"] == {"id": api.emulator.profile_id(person)}
    partial = await api.profile(doc["result"]["id"])
    assert tuple(partial["sections"]) == STANDARD  # no contribution sections yet
    assert all(partial["sections"][k] for k in ("basic", "images", "jobs", "education"))
    assert partial["sections"]["passions"] is None and partial["sections"]["bestQualities"] is None
    api.emulator.force_complete(run["request_id"])
    done = await api.status(run["request_id"])
    assert done["status"] == "completed"
    full = await api.profile(done["result"]["id"])
    materialized = [k for k, v in full["sections"].items() if v is not None and k != "basic"]
    assert {"passions", "bestQualities", "githubRepos"} <= set(materialized)
    assert done["result"]["section_generation"] == {"sections_ready": True,
                                                    "materialized_section_count": len(materialized)}


async def test_profile_payload_has_the_documented_shape_and_sources(api: Api) -> None:
    person = _person(api, school=True)
    company = api.sandbox.world.company(person.company_id)
    doc = await api.finished(email=person.email)
    profile = await api.profile(doc["result"]["id"])
    assert set(profile) == {"id", "displayName", "personName", "aliases", "avatarUrl", "profileUrl",
                            "verified", "location", "headline", "sections"}
    assert profile["profileUrl"] == f"https://orbitsearch.com/{person.linkedin_slug}" and profile["verified"]
    assert profile["location"]["city"].startswith(f"{person.city}, ")
    assert profile["headline"] == {"jobTitle": person.title, "companyName": company.name,
                                   "schoolName": person.school}
    job = profile["sections"]["jobs"]["items"][0]
    assert job["kind"] == "job" and job["title"] == f"{person.title} at {company.name}"
    assert [s["url"] for s in job["sources"]] == [
        f"https://www.linkedin.com/in/{person.linkedin_slug}", f"https://{company.domain}"]
    assert {i["kind"] for i in profile["sections"]["basic"]["items"]} == {"school", "location"}
    for name, section in profile["sections"].items():
        for item in (section or {"items": []})["items"]:
            assert name == "images" or {"kind", "title"} <= set(item)  # images: documented shape
            assert all(set(s) == {"url", "name", "title"} for s in item["sources"])


async def test_job_failure_fault_fails_the_run_with_the_saved_profile_id(make_api: MakeApi) -> None:
    api = await make_api(faults=(FaultRule("orbit", f"POST {START}", "job_failure", first_n=1),))
    doc = await api.finished(email=_person(api).email)
    assert doc["status"] == "failed" and doc["failure"]["code"] == "profile_sections_not_ready"
    assert doc["result"]["section_generation"] == {"sections_ready": False, "materialized_section_count": 0}
    profile = await api.profile(doc["result"]["id"])
    assert profile["sections"]["jobs"] is None and profile["sections"]["basic"] is not None


# -- candidate discovery -------------------------------------------------------------------------


async def test_candidate_ids_grow_while_running_and_are_readable_before_completion(
    make_api: MakeApi,
) -> None:
    api = await make_api(FAST_DISCOVERY)
    run = await api.start(runShape="candidate_discovery", structuredIntent=DEMO_INTENT)
    seen = [await api.status(run["request_id"])]
    while seen[-1]["result"]["persisted_candidate_count"] < 2:
        await api.sandbox.clock.sleep(10)
        seen.append(await api.status(run["request_id"]))
    now = seen[-1]
    assert now["status"] == "running" and now["result"]["current_phase"] == "generating_candidates"
    assert now["result"]["candidate_count"] >= now["result"]["dispatched_candidate_count"] > 2
    ids = now["result"]["candidate_profile_ids"]
    assert len(ids) == now["result"]["persisted_candidate_count"] >= 2
    for before, after in itertools.pairwise(seen):
        old = before["result"]["candidate_profile_ids"]
        assert after["result"]["candidate_profile_ids"][: len(old)] == old
    assert "finding_sources" in {d["result"]["current_phase"] for d in seen}
    candidate = await api.profile(ids[0])
    assert candidate["verified"] is False and candidate["sections"]["jobs"] is not None
    api.emulator.force_complete(run["request_id"])
    done = await api.status(run["request_id"])
    assert done["status"] == "completed" and done["result"]["current_phase"] == "completed"
    assert done["result"]["candidate_profile_ids"][: len(ids)] == ids


async def test_demo_intent_candidates_really_are_new_york_vps_at_series_b_saas(api: Api) -> None:
    doc = await api.finished(runShape="candidate_discovery", structuredIntent=DEMO_INTENT)
    ids = doc["result"]["candidate_profile_ids"]
    people = {api.emulator.profile_id(p): p for p in api.emulator.index.people}
    found = {people[i].true_id for i in ids}
    assert found == _demo_truth(api.sandbox.world) and len(found) >= 5
    # every New York VP of Engineering is a discovered cluster; those matching no semantic phrase are
    # skipped, never generated (INF §11), because some clusters do match it
    result = doc["result"]
    assert result["candidate_count"] == len(_structured_truth(api.sandbox.world)) > len(ids)
    assert len(ids) == result["persisted_candidate_count"] == result["dispatched_candidate_count"]
    assert result["skipped_candidate_count"] == result["candidate_count"] - len(ids)
    synonyms = {**DEMO_INTENT, "experiences": [{"title": "Vice President of Engineering"}]}
    again = await api.finished(runShape="candidate_discovery", structuredIntent=synonyms)
    assert again["result"]["candidate_profile_ids"] == ids


async def test_max_candidates_caps_dispatch_and_reports_skipped(make_api: MakeApi) -> None:
    api = await make_api({"max_candidates": 3})
    doc = await api.finished(runShape="candidate_discovery", structuredIntent=DEMO_INTENT)
    result = doc["result"]
    assert result["dispatched_candidate_count"] == result["persisted_candidate_count"] == 3
    assert result["skipped_candidate_count"] == result["candidate_count"] - 3 > 0


async def test_structured_intent_single_profile_resolves_by_name_and_organization(api: Api) -> None:
    person = _person(api)
    company = api.sandbox.world.company(person.company_id)
    intent = {"version": "v1", "names": [person.full_name.upper()],
              "experiences": [{"organization": company.domain}]}
    doc = await api.finished(structuredIntent=intent)
    assert doc["result"]["id"] == api.emulator.profile_id(person)


# -- semantic clauses are signals, not filters (DOC §7; INF §11) ----------------------------------


def _employer(api: Api, person: Any) -> Any:
    return api.sandbox.world.company(person.company_id)


async def test_the_docs_structured_intent_sample_finds_the_person_despite_its_semantic_clause(api: Api) -> None:
    # SEED "Start a run from a structured intent seed": names + organization + "writes about developer tools"
    person = next(p for p in api.emulator.index.people if "devtools" not in _employer(api, p).categories)
    intent = {"version": "v1", "names": [person.full_name],
              "experiences": [{"organization": _employer(api, person).name}],
              "semanticClauses": [{"text": "writes about developer tools"}]}
    doc = await api.finished(structuredIntent=intent)
    assert doc["status"] == "completed" and doc["result"]["id"] == api.emulator.profile_id(person)
    without = await api.finished(structuredIntent={k: v for k, v in intent.items() if k != "semanticClauses"})
    assert without["result"]["id"] == doc["result"]["id"]


async def test_a_semantic_phrase_picks_among_people_the_structured_clauses_cannot_tell_apart(api: Api) -> None:
    people = sorted(api.emulator.index.people, key=lambda p: p.true_id)
    first, other = next((a, b) for a in people for b in people if a.full_name == b.full_name
                        and a.true_id < b.true_id and a.title != b.title)  # fmt: skip
    named = {"version": "v1", "names": [first.full_name]}
    plain = await api.finished(structuredIntent=named)
    assert plain["result"]["id"] == api.emulator.profile_id(first)  # a tie: the first hidden id
    ranked = await api.finished(structuredIntent={**named, "semanticClauses": [{"text": other.title}]})
    assert ranked["result"]["id"] == api.emulator.profile_id(other)


async def test_a_semantic_clause_reorders_discovery_but_removes_no_candidate(make_api: MakeApi) -> None:
    api = await make_api({"discovery_skip_unmatched": False, "max_candidates": 200})
    world, people = api.sandbox.world, {api.emulator.profile_id(p): p.true_id for p in api.emulator.index.people}
    plain = {k: v for k, v in DEMO_INTENT.items() if k != "semanticClauses"}
    base = [people[i] for i in (await api.finished(runShape="candidate_discovery", structuredIntent=plain))
            ["result"]["candidate_profile_ids"]]  # fmt: skip
    ranked = [people[i] for i in (await api.finished(runShape="candidate_discovery", structuredIntent=DEMO_INTENT))
              ["result"]["candidate_profile_ids"]]  # fmt: skip
    truth = _demo_truth(world)
    assert base == sorted(base) and set(ranked) == set(base) == _structured_truth(world)
    assert set(ranked[: len(truth)]) == truth and ranked != base  # the matching ones first, then the rest


async def test_each_phrase_of_a_clause_is_a_separate_signal(api: Api) -> None:
    intent = {**DEMO_INTENT, "semanticClauses": [{"text": "Series B SaaS startups", "anyOf": ["fintech"]}]}
    doc = await api.finished(runShape="candidate_discovery", structuredIntent=intent)
    world, people = api.sandbox.world, {api.emulator.profile_id(p): p for p in api.emulator.index.people}
    found = [people[i] for i in doc["result"]["candidate_profile_ids"]]

    def score(p: Any) -> int:
        return (p.true_id in _demo_truth(world)) + ("fintech" in world.company(p.company_id).categories)

    assert found == sorted(found, key=lambda p: (-score(p), p.true_id)) and all(score(p) > 0 for p in found)
    assert {p.true_id for p in found} >= _demo_truth(world)  # both aliases count (Search would OR them)


async def test_an_intent_of_semantic_clauses_only_matches_people_who_match_a_phrase(api: Api) -> None:
    world, people = api.sandbox.world, {api.emulator.profile_id(p): p for p in api.emulator.index.people}
    semantic = {"version": "v1", "semanticClauses": [{"text": "Series B SaaS startups"}]}
    doc = await api.finished(runShape="candidate_discovery", structuredIntent=semantic)
    found = [people[i] for i in doc["result"]["candidate_profile_ids"]]
    assert found and all(world.company(p.company_id).funding_stage == "Series B" for p in found)
    single = await api.finished(structuredIntent=semantic)  # INF §11: the best match, as for any intent
    assert single["status"] == "completed" and single["result"]["id"] == api.emulator.profile_id(found[0])
    nothing = await api.finished(runShape="candidate_discovery",
                                 structuredIntent={"version": "v1", "semanticClauses": [{"text": "zzqx blorft"}]})
    assert nothing["status"] == "completed" and nothing["result"]["candidate_profile_ids"] == []


# -- profile read --------------------------------------------------------------------------------


async def test_profile_read_costs_1_credit_404_is_free_and_aliases_resolve(api: Api) -> None:
    person = _person(api)
    doc = await api.finished(email=person.email)
    profile_id = doc["result"]["id"]
    answer = await api.call("GET", f"/v2/developer/profiles/orbit_{person.linkedin_slug}")
    assert answer.status == 200 and answer.headers[CREDITS] == "9989"
    assert answer.json()["status"] == "success" and answer.json()["payload"]["id"] == profile_id
    for missing in ("orb_000000000000", api.emulator.profile_id(api.emulator.index.people[-1])):
        answer = await api.call("GET", f"/v2/developer/profiles/{missing}")
        assert answer.status == 404 and answer.code == "developer_profile_not_found"
    assert api.emulator.balance(1) == 9989 and api.stats()["credits_charged"] == 11


async def test_profile_reads_with_an_idempotency_key_are_charged_once(api: Api) -> None:
    person = _person(api)
    profile_id = (await api.finished(email=person.email))["result"]["id"]
    auth = {"Authorization": f"Bearer {api.key}"}
    path = f"/v2/developer/profiles/{profile_id}"
    first = await api.call("GET", path, headers={**auth, "Idempotency-Key": "read-1"})
    replay = await api.call("GET", path, headers={**auth, "Idempotency-Key": "read-1"})
    assert first.status == replay.status == 200
    assert first.headers[CREDITS] == replay.headers[CREDITS] == "9989"  # the replay is free
    assert replay.json()["payload"]["id"] == profile_id and api.stats()["idempotent_replays"] == 1
    other = await api.call("GET", "/v2/developer/profiles/orb_000000000000",
                           headers={**auth, "Idempotency-Key": "read-1"})
    assert other.status == 409 and other.code == "developer_api_idempotency_key_conflict"
    unkeyed = await api.call("GET", path)  # without a key every read is charged (DOC CRED)
    assert unkeyed.headers[CREDITS] == "9988" and api.emulator.balance(1) == 9988


# -- rate limits ---------------------------------------------------------------------------------


async def test_start_bucket_429s_after_a_burst_of_25_and_never_charges(make_api: MakeApi) -> None:
    api = await make_api()
    email = _person(api).email
    statuses = [(await api.post({"email": email})).status for _ in range(25)]
    limited = await api.post({"email": email})
    assert statuses == [202] * 25
    assert limited.status == 429 and limited.code == "developer_api_key_rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    other_key = api.with_key(api.emulator.create_key(1))
    assert (await other_key.post({"email": email})).status == 202  # per key
    stats = api.stats()
    assert stats["credits_charged"] == 260 and stats["rate_limited"] == 1


async def test_status_bucket_is_separate_from_the_start_bucket(make_api: MakeApi) -> None:
    api = await make_api()
    email = _person(api).email
    for _ in range(25):
        await api.post({"requestId": "one", "email": email})
    assert (await api.post({"requestId": "one", "email": email})).status == 429
    statuses = [(await api.call("GET", f"{START}/one")).status for _ in range(21)]
    assert statuses[:20] == [200] * 20 and statuses[20] == 429
    assert api.stats()["endpoints"][f"GET {START}/{{requestId}}"]["rate_limited"] == 1


async def test_injected_faults_use_the_error_envelope(make_api: MakeApi) -> None:
    api = await make_api(faults=(FaultRule("orbit", f"POST {START}", "http_5xx", first_n=1, status=503),))
    answer = await api.post(VALID)
    assert answer.status == 503 and answer.code == "developer_deep_search_unavailable"
    assert (await api.post(VALID)).status == 202
