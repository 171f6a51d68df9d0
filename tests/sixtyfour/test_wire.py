"""Sixtyfour's documented payloads parse and normalize; bad shapes become typed errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from aggregator.errors import ProviderProtocolError
from aggregator.models import Company, Person
from providers.sixtyfour.wire import (
    DownloadResponse,
    QueryResponse,
    StartResponse,
    StatusResponse,
    company_from_source,
    hit_from_csv,
    hit_from_row,
    parse,
    person_from_source,
    unwrap_elements,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "sixtyfour"
NOW = datetime(2026, 11, 21, tzinfo=UTC)


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def test_documented_start_status_and_download_examples_parse() -> None:
    start = parse(StartResponse, fixture("start_response.json"), "start")
    assert start.task_id == "e3b0c442-98fc-1c14-9afb-f4c8996fb924" and start.status == "queued"
    status = parse(StatusResponse, fixture("status_completed.json"), "status")
    assert status.status == "completed" and status.total_results == 187
    assert status.resource_handle_id == "rh_7f3d29a1-4b22-4c88-a6f5-1234abcd5678"
    assert parse(DownloadResponse, fixture("download_response.json"), "download").url.startswith("https://")


def test_documented_company_query_page_normalizes_to_a_company_hit() -> None:
    page = parse(QueryResponse, fixture("query_response_company.json"), "query")
    assert page.has_more and page.total_pages is None and page.next_cursor
    hit = hit_from_row(page.results[0], mode="company", rank=1, job_id="t", retrieved_at=NOW)
    assert isinstance(hit.entity, Company)
    assert (hit.entity.name, hit.entity.hq_country_iso2, hit.entity.employee_count) == ("Stripe", "US", 8000)
    assert hit.provider == "sixtyfour" and hit.provider_record_id == "stripe" and hit.rank == 1


def test_camelcase_people_rows_normalize_to_a_person_with_linkedin_url() -> None:
    page = parse(QueryResponse, fixture("query_response_people.json"), "query")
    assert page.total_pages == 1 and not page.has_more
    hit = hit_from_row(page.results[0], mode="people", rank=3, job_id="t", retrieved_at=NOW)
    person = hit.entity
    assert isinstance(person, Person)
    assert person.full_name == "Jane Doe" and person.first_name == "Jane" and person.last_name == "Doe"
    assert person.title == "VP of Engineering" and person.seniority == "VP"
    assert person.linkedin_url == "https://www.linkedin.com/in/jane-doe"
    assert person.company_linkedin_url == "https://www.linkedin.com/company/acme"
    assert person.location == "Singapore"
    assert hit.source_urls == ("https://www.linkedin.com/in/jane-doe",)
    assert hit.raw["raw_source"]["publicId"] == "jane-doe"


def test_a_person_without_positions_takes_the_title_from_the_headline() -> None:
    person = person_from_source({"fullName": "A B", "headline": "Director of Sales at Foo",
                                 "currentCompanies": [{"company": {"companyId": 1}}]})
    assert person.title == "Director of Sales"


def test_element_wrappers_are_unwrapped_recursively() -> None:
    wrapped = {"funding_rounds": [{"element": {"name": "Series B", "amount_raised": 20_000_000}}],
               "company_name": "Acme"}
    assert unwrap_elements(wrapped)["funding_rounds"][0]["name"] == "Series B"
    company = company_from_source(wrapped)
    assert company.funding_stage == "Series B" and company.last_funding_amount_usd == 20_000_000


def test_csv_rows_normalize_with_linkedin_url_as_record_id() -> None:
    row = {"full_name": "Jane Doe", "title": "VP of Engineering", "company_name": "Acme",
           "linkedin": "https://www.linkedin.com/in/jane-doe", "location": "New York"}
    hit = hit_from_csv(row, mode="people", rank=1, job_id="t", retrieved_at=NOW)
    assert hit.provider_record_id == "https://www.linkedin.com/in/jane-doe"
    assert isinstance(hit.entity, Person) and hit.entity.company_name == "Acme"


@pytest.mark.parametrize(
    "payload",
    [
        {"status": "queued"},  # no task_id
        {"task_id": "", "status": "queued"},
        ["not", "an", "object"],
        None,
    ],
)
def test_malformed_start_responses_raise_protocol_errors_naming_provider_and_endpoint(payload: Any) -> None:
    with pytest.raises(ProviderProtocolError) as info:
        parse(StartResponse, payload, "POST /search/start-deep-search")
    assert info.value.provider == "sixtyfour"
    assert info.value.endpoint == "POST /search/start-deep-search"


def test_a_query_page_without_total_results_is_a_protocol_error() -> None:
    with pytest.raises(ProviderProtocolError, match="total_results"):
        parse(QueryResponse, {"results": []}, "POST /search/query")
