"""Orbit's documented payloads parse and normalize; bad shapes become typed errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from aggregator.errors import ProviderProtocolError
from providers.orbit.wire import ProfileResponse, StartResponse, StatusResponse, hit_from_profile, parse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "orbit"
NOW = datetime(2026, 11, 21, tzinfo=UTC)


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def test_documented_start_and_status_responses_parse() -> None:
    assert parse(StartResponse, fixture("start_started.json"), "start").status == "started"
    completed = parse(StartResponse, fixture("start_completed.json"), "start")
    assert completed.run_id is None and completed.result == {"id": "ORBIT_PROFILE_ID"}
    status = parse(StatusResponse, fixture("status_completed.json"), "status")
    assert status.result is not None and status.result.id == "ORBIT_PROFILE_ID"
    assert status.result.section_generation == {"sections_ready": True, "materialized_section_count": 9}
    running = parse(StatusResponse, fixture("status_candidates_running.json"), "status")
    assert running.result is not None and running.result.candidate_profile_ids == ["PROFILE_A"]
    failed = parse(StatusResponse, fixture("status_failed.json"), "status")
    assert failed.failure is not None and failed.failure.code == "identity_not_corroborated"


def test_the_documented_profile_becomes_a_person_with_sections_as_evidence() -> None:
    profile = parse(ProfileResponse, fixture("profile.json"), "profile")
    hit = hit_from_profile(profile.payload, rank=2, job_id="req-1", retrieved_at=NOW)
    person = hit.entity
    assert person.kind == "person"
    assert (person.full_name, person.title, person.company_name) == ("Ada Lovelace", "Founder", "Example Co")
    assert person.school == "Example University"
    assert (person.city, person.region, person.country) == ("San Francisco", "CA", "US")
    assert hit.provider == "orbit" and hit.provider_record_id == "orbit-profile-id" and hit.rank == 2
    assert {e.key for e in hit.evidence} == {"basic", "images", "mediaCredits", "musicCredits"}
    assert hit.source_urls == ("https://orbitsearch.com/ada",)


def test_a_linkedin_source_in_the_sections_gives_the_person_a_linkedin_url() -> None:
    data = fixture("profile.json")
    data["payload"]["sections"]["jobs"] = {"items": [{"kind": "job", "title": "Founder at Example Co",
                                                      "sources": [{"url": "https://uk.linkedin.com/in/Ada-L/"}]}]}
    profile = parse(ProfileResponse, data, "profile")
    person = hit_from_profile(profile.payload, rank=1, job_id=None, retrieved_at=NOW).entity
    assert person.linkedin_url == "https://www.linkedin.com/in/ada-l"  # type: ignore[union-attr]


@pytest.mark.parametrize("payload", [{"status": "success"}, {"status": "success", "payload": {"id": ""}}, []])
def test_malformed_profiles_raise_protocol_errors(payload: Any) -> None:
    with pytest.raises(ProviderProtocolError) as info:
        parse(ProfileResponse, payload, "GET /v2/developer/profiles/{id}")
    assert info.value.provider == "orbit"
