"""The fast normalization path builds exactly the hits the fully validated path builds.

Normalizers build :class:`~aggregator.models.Hit`, its entity and evidence with ``trusted`` (no
re-validation of values read from validated wire models, ``raw`` kept as received). Under
:func:`~aggregator.models.always_validate` the same code validates every model instead: the
reference. Both run on every provider's documented fixtures and on emulator output, and must agree
in value, type and fields set. Sixtyfour rows are read lazily (wrappers peeled per value read): the
entity must equal the one normalized from the document unwrapped whole first, however it is wrapped.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from pydantic import BaseModel

from aggregator.bench.normalize import NORMALIZERS, NormalizeConfig, capture_payloads
from aggregator.errors import ProviderProtocolError
from aggregator.models import Hit, always_validate
from providers.extruct.wire import ResultsResponse, hit_from_result
from providers.extruct.wire import parse as parse_extruct
from providers.orbit.wire import ProfileResponse, hit_from_profile
from providers.orbit.wire import parse as parse_orbit
from providers.sixtyfour.wire import (
    QueryResponse,
    company_from_source,
    hit_from_csv,
    hit_from_row,
    person_from_source,
    rows_from_csv,
    unwrap_elements,
)
from providers.sixtyfour.wire import parse as parse_sixtyfour

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 1, 1, tzinfo=UTC)


def load(provider: str, name: str) -> Any:
    return orjson.loads((FIXTURES / provider / name).read_bytes())


def assert_identical(fast: Any, slow: Any, where: str = "hit") -> None:
    """Equal values, the same types and the same ``model_fields_set``, recursively."""
    assert type(fast) is type(slow), where
    if isinstance(fast, BaseModel):
        assert fast == slow, where
        assert fast.model_fields_set == slow.model_fields_set, where
        assert fast.model_dump(mode="json") == slow.model_dump(mode="json"), where
        for name in type(fast).model_fields:
            assert_identical(getattr(fast, name), getattr(slow, name), f"{where}.{name}")
    elif isinstance(fast, tuple | list):
        assert len(fast) == len(slow), where
        for i, (a, b) in enumerate(zip(fast, slow, strict=True)):
            assert_identical(a, b, f"{where}[{i}]")
    else:
        assert fast == slow, where


def both_ways(normalize: Callable[[], list[Hit]]) -> list[Hit]:
    fast = normalize()
    with always_validate():
        slow = normalize()
    assert fast and len(fast) == len(slow)
    assert_identical(fast, slow)
    return fast


def sixtyfour_page(data: Any, mode: str) -> list[Hit]:
    page = parse_sixtyfour(QueryResponse, data, "POST /search/query")
    return [hit_from_row(row, mode="people" if mode == "people" else "company", rank=i, job_id="job",
                         retrieved_at=NOW) for i, row in enumerate(page.results, start=1)]


@pytest.mark.parametrize(("name", "mode"), [("query_response_people.json", "people"),
                                            ("query_response_company.json", "company"),
                                            ("query_response_company_full.json", "company")])
def test_sixtyfour_query_fixtures_normalize_the_same_either_way(name: str, mode: str) -> None:
    data = load("sixtyfour", name)
    hits = both_ways(lambda: sixtyfour_page(data, mode))
    for hit, row in zip(hits, data["results"], strict=True):
        assert hit.raw["raw_source"] is row["raw_source"]  # kept as received, not copied


@pytest.mark.parametrize(("name", "mode"), [("results_people.csv", "people"), ("results_company.csv", "company")])
def test_sixtyfour_csv_fixtures_normalize_the_same_either_way(name: str, mode: str) -> None:
    text = (FIXTURES / "sixtyfour" / name).read_text()
    rows = rows_from_csv(text, "GET download")
    both_ways(lambda: [hit_from_csv(row, mode="people" if mode == "people" else "company", rank=i, job_id=None,
                                    retrieved_at=NOW) for i, row in enumerate(rows, start=1)])
    plain = list(csv.DictReader(io.StringIO(text)))  # a plain DictReader row works too
    both_ways(lambda: [hit_from_csv(row, mode="people" if mode == "people" else "company", rank=1, job_id=None,
                                    retrieved_at=NOW) for row in plain])


def extruct_page(data: Any) -> list[Hit]:
    page = parse_extruct(ResultsResponse, data, "GET /v1/discovery_tasks/{task_id}/results")
    names = {c.key: c.name or c.key for c in page.criteria}
    return [hit_from_result(result, rank=i, criteria_names=names, retrieved_at=NOW, raw=data["results"][i - 1])
            for i, result in enumerate(page.results, start=1)] + [
        hit_from_result(result, rank=1, criteria_names={}, retrieved_at=NOW) for result in page.results]


def test_extruct_fixture_normalizes_the_same_either_way() -> None:
    data = load("extruct", "results_done.json")
    hits = both_ways(lambda: extruct_page(data))
    assert hits[0].raw is data["results"][0]
    assert any(hit.evidence for hit in hits)


def orbit_profile(data: Any) -> list[Hit]:
    profile = parse_orbit(ProfileResponse, data, "GET /v2/developer/profiles/{id}")
    return [hit_from_profile(profile.payload, rank=1, job_id="job", retrieved_at=NOW, raw=data.get("payload")),
            hit_from_profile(profile.payload, rank=2, job_id=None, retrieved_at=NOW)]


def test_orbit_fixture_normalizes_the_same_either_way() -> None:
    data = load("orbit", "profile.json")
    hits = both_ways(lambda: orbit_profile(data))
    assert hits[0].raw is data["payload"] and hits[0].evidence


async def test_emulator_output_normalizes_the_same_either_way() -> None:
    payloads = await capture_payloads(NormalizeConfig.quick())
    assert set(payloads) == set(NORMALIZERS)
    for label, bodies in payloads.items():
        assert bodies, label
        for raw in bodies:
            both_ways(lambda raw=raw, label=label: NORMALIZERS[label](raw))  # type: ignore[misc]


def wrap_everything(value: Any, depth: int = 0) -> Any:
    """Every value and list item inside ``value`` wrapped as ``{"element": X}`` (twice at odd depths)."""
    def wrap(inner: Any) -> Any:
        wrapped = {"element": wrap_everything(inner, depth + 1)}
        return {"element": wrapped} if depth % 2 else wrapped

    if isinstance(value, dict):
        return {k: wrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [wrap(v) for v in value]
    return value


def test_sixtyfour_rows_read_lazily_equal_rows_unwrapped_whole() -> None:
    people = load("sixtyfour", "query_response_people.json")["results"]
    companies = [*load("sixtyfour", "query_response_company.json")["results"],
                 *load("sixtyfour", "query_response_company_full.json")["results"]]
    for normalize, rows in ((person_from_source, people), (company_from_source, companies)):
        for row in rows:
            source = row["raw_source"]
            expected = normalize(unwrap_elements(source))
            for variant in (source, wrap_everything(source), {"element": wrap_everything(source)}):
                assert_identical(normalize(variant), expected)


@pytest.mark.parametrize("bad", [[1], "text", 3, None])
def test_a_row_whose_raw_source_is_not_an_object_is_a_protocol_error(bad: Any) -> None:
    with pytest.raises(ProviderProtocolError) as caught:
        parse_sixtyfour(QueryResponse, {"total_results": 1, "results": [{"raw_source": bad}]}, "POST /search/query")
    assert caught.value.provider == "sixtyfour" and caught.value.endpoint == "POST /search/query"
    assert "results.0.raw_source" in str(caught.value) and "valid dictionary" in str(caught.value)


def test_an_orbit_section_item_that_is_not_an_object_is_a_protocol_error() -> None:
    data = load("orbit", "profile.json")
    name = next(iter(data["payload"]["sections"]))
    data["payload"]["sections"][name] = {"items": ["not an object"]}
    with pytest.raises(ProviderProtocolError) as caught:
        parse_orbit(ProfileResponse, data, "GET /v2/developer/profiles/{id}")
    assert caught.value.provider == "orbit" and "valid dictionary" in str(caught.value)


def test_out_of_range_values_still_fail_validation_on_the_fast_path() -> None:
    hit = sixtyfour_page(load("sixtyfour", "query_response_people.json"), "people")[0]
    values = {name: getattr(hit, name) for name in type(hit).model_fields}
    for bad in ({"rank": 0}, {"score": 1.5}, {"score": float("nan")}):
        with pytest.raises(ValueError):
            Hit.trusted(**{**values, **bad})
