"""Extruct's documented payloads parse and normalize; bad shapes become typed errors."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest

from aggregator.errors import ProviderProtocolError
from providers.extruct.wire import ResultsResponse, Task, TaskList, hit_from_result, parse

FIXTURES = Path(__file__).parent.parent / "fixtures" / "extruct"
NOW = datetime(2026, 11, 21, tzinfo=UTC)


def fixture(name: str) -> Any:
    return orjson.loads((FIXTURES / name).read_bytes())


def test_the_documented_task_object_parses_with_counters_and_criteria() -> None:
    task = parse(Task, fixture("task_in_progress.json"), "GET")
    assert task.status == "in_progress" and task.num_results == 41 and not task.is_exhausted
    assert task.num_results_discovered >= task.num_results_enriched >= task.num_results_evaluated
    assert task.criteria[0].key == "has_logistics_focus"


def test_the_list_endpoint_is_a_bare_array_of_tasks() -> None:
    tasks = parse(TaskList, [fixture("task_in_progress.json")], "LIST")
    assert [t.id for t in tasks] == ["d530c3ad-626c-4d7b-ab15-181d4058e4f8"]
    with pytest.raises(ProviderProtocolError):
        parse(TaskList, {"items": []}, "GET /v1/discovery_tasks")


def test_a_documented_result_becomes_a_company_hit_with_graded_evidence() -> None:
    page = parse(ResultsResponse, fixture("results_done.json"), "RESULTS")
    names = {c.key: c.name or c.key for c in page.criteria}
    hit = hit_from_result(page.results[0], rank=1, criteria_names=names, retrieved_at=NOW)

    company = hit.entity
    assert company.kind == "company"
    assert (company.name, company.domain, company.website) == ("Matchory", "matchory.com", "https://matchory.com")
    assert (company.hq_city, company.hq_region, company.hq_country) == ("Munich", "Bavaria", "Germany")
    assert company.employee_range == "11-50" and company.founded_year == 2019
    assert hit.score == 1.0 and hit.provider == "extruct" and hit.provider_record_id == "RESULT_UUID"
    (evidence,) = hit.evidence
    assert (evidence.key, evidence.label, evidence.grade) == ("has_api", "API Available", 5)
    assert evidence.text and evidence.source_urls == ("https://matchory.com/api",)
    assert hit.source_urls == ("https://matchory.com/api",)


def test_a_result_without_an_id_is_a_protocol_error_naming_the_endpoint() -> None:
    data = fixture("results_done.json")
    del data["results"][0]["id"]
    with pytest.raises(ProviderProtocolError) as info:
        parse(ResultsResponse, data, "GET /v1/discovery_tasks/{task_id}/results")
    assert info.value.provider == "extruct" and "results.0.id" in str(info.value)
