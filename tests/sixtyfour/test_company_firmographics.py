"""Company firmographics of the Sixtyfour emulator and their normalization (contract §3.1, §3.3).

The emulator fills every documented company field (offices, headcount breakdowns, revenue,
aliases, emails, phones) from the world, consistently; rows may carry ``{"element": X}`` list
wrappers (a setting); the adapter unwraps them and maps what has a place in :class:`Company`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest

from aggregator.models import Company
from providers.sandbox.entities import CompanyEntity
from providers.sandbox.world import World, build_world
from providers.sixtyfour.emulator.firmographics import DEPARTMENTS, REGION_OF_COUNTRY, REGIONS, apportion
from providers.sixtyfour.emulator.rows import render_company, render_csv
from providers.sixtyfour.wire import QueryRow, company_from_source, hit_from_csv, hit_from_row, rows_from_csv

if TYPE_CHECKING:  # fixtures come from tests/sixtyfour/conftest.py
    from conftest import Api, MakeApi

QUERY = "/search/query"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
LIST_FIELDS = ("company_name_alias", "company_locations_full", "employees_count_by_country",
               "company_emails", "company_phone_numbers")


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(seed=11, n_companies=1500)


def _check_types(src: dict[str, Any]) -> None:
    """The documented §3.1 fields exist with their documented shapes."""
    assert all(isinstance(a, str) and a for a in src["company_name_alias"])
    for name in ("canonical_linkedin_url", "description_enriched", "hq_full_address"):
        assert isinstance(src[name], str) and src[name]
    for office in src["company_locations_full"]:
        assert set(office) == {"location_address", "city", "state", "is_primary"}
        assert isinstance(office["location_address"], str) and isinstance(office["is_primary"], bool)
    assert isinstance(src["employees_count_inferred"], int)
    assert isinstance(src["employees_count_change"]["change_yearly_percentage"], float | int)
    for breakdown in ("employees_count_breakdown_by_department", "employees_count_breakdown_by_region"):
        assert all(k.startswith("employees_count_") and isinstance(v, int) for k, v in src[breakdown].items())
    assert "employees_count_unknown" in src["employees_count_breakdown_by_region"]
    for row in src["employees_count_by_country"]:
        assert set(row) == {"country", "employee_count"} and isinstance(row["employee_count"], int)
    revenue = src["revenue_annual"]
    blocks = [revenue] if isinstance(revenue, int) else list(revenue.values())
    assert all(isinstance(b, int) or set(b) == {"annual_revenue", "annual_revenue_currency"} for b in blocks)
    (span,) = src["revenue_annual_range"].values()
    assert set(span) == {"annual_revenue_range_from", "annual_revenue_range_to", "annual_revenue_range_currency"}
    assert all("@" in e for e in src["company_emails"])
    assert all(p.startswith("+") and p[1:].isdigit() for p in src["company_phone_numbers"])


def _revenue(src: dict[str, Any]) -> int:
    node = src["revenue_annual"]
    return node if isinstance(node, int) else int(node["source_5_annual_revenue"]["annual_revenue"])


def _check_consistency(company: CompanyEntity, src: dict[str, Any]) -> None:
    total = company.employees_count
    hq, *others = src["company_locations_full"]
    assert hq == {"location_address": src["hq_full_address"], "city": company.hq_city,
                  "state": company.hq_state, "is_primary": True}
    assert not any(o["is_primary"] for o in others) and company.hq_city in src["hq_full_address"]
    assert sum(src["employees_count_breakdown_by_department"].values()) == total
    assert set(src["employees_count_breakdown_by_department"]) == {f"employees_count_{d}" for d in DEPARTMENTS}
    regions = src["employees_count_breakdown_by_region"]
    assert sum(regions.values()) == total
    by_country = src["employees_count_by_country"]
    assert sum(r["employee_count"] for r in by_country) + regions["employees_count_unknown"] == total
    assert all(r["employee_count"] > 0 for r in by_country)
    counts = [r["employee_count"] for r in by_country]
    assert counts == sorted(counts, reverse=True) and by_country[0]["country"] == company.hq_country
    for region in REGIONS:
        assert regions[f"employees_count_{region}"] == sum(
            r["employee_count"] for r in by_country if REGION_OF_COUNTRY[r["country"]] == region)
    office_countries = {o["location_address"].rsplit(", ", 1)[1] for o in others}
    assert office_countries <= {r["country"] for r in by_country}
    assert src["canonical_linkedin_url"] == f"https://www.linkedin.com/company/{company.linkedin_slug}"
    assert src["linkedin_url"].rstrip("/").replace("://linkedin", "://www.linkedin") == src["canonical_linkedin_url"]
    change = src["employees_count_change"]
    previous = total - change["change_yearly"]
    assert change["current"] == total
    assert change["change_yearly_percentage"] == round(100 * (total - previous) / previous, 2)
    assert 0.85 * total - 1 <= src["employees_count_inferred"] <= 1.2 * total + 1  # rounded
    (span,) = src["revenue_annual_range"].values()
    high = span["annual_revenue_range_to"]
    assert span["annual_revenue_range_from"] <= _revenue(src) and (high is None or _revenue(src) < high)
    assert all(e.endswith("@" + company.domain) for e in src["company_emails"])
    assert company.legal_name in src["company_name_alias"] and company.name not in src["company_name_alias"]


def test_firmographics_are_consistent_for_every_company(world: World) -> None:
    offices = 0
    for company in world.companies:
        src = render_company(world.seed, company).raw_source
        _check_types(src)
        _check_consistency(company, src)
        offices += len(src["company_locations_full"]) - 1
    assert offices > 100  # the rules were checked on companies with offices abroad too
    shapes = {type(render_company(world.seed, c).raw_source["revenue_annual"]) for c in world.companies}
    assert shapes == {int, dict}  # both documented shapes of revenue_annual occur


def test_firmographics_are_deterministic_for_a_seed(world: World) -> None:
    company = max(world.companies, key=lambda c: c.employees_count)
    assert render_company(world.seed, company) == render_company(world.seed, company)
    assert render_company(world.seed, company).raw_source != render_company(world.seed + 1, company).raw_source


def test_apportion_always_sums_to_the_total() -> None:
    assert apportion(10, [1.0, 1.0, 1.0]) == [4, 3, 3]
    assert sum(apportion(7, [0.001, 5.0, 0.2, 0.7])) == 7 and apportion(0, [1.0, 2.0]) == [0, 0]


async def test_filter_search_and_deep_search_rows_carry_the_fields(api: Api) -> None:
    world = api.sandbox.world
    by_slug = {c.linkedin_slug: c for c in world.companies}
    filtered = (await api.post(QUERY, {"mode": "company", "simple_filters": {"employees_count": {"$gte": 200}},
                                       "page_size": 100})).json()
    done = await api.completed("Software companies in San Francisco", mode="company")
    deep = (await api.post(QUERY, {"search_id": done["search_id"], "page_size": 100})).json()
    for page in (filtered, deep):
        assert page["results"]
        for row in page["results"]:
            _check_types(row["raw_source"])
            _check_consistency(by_slug[row["raw_document_id"]], row["raw_source"])


async def test_new_fields_are_filterable(api: Api) -> None:
    caps = {f["field"]: f for f in (await api.get("/search/filter-capabilities")).json()["fields"]}
    assert caps["company_locations_full.city"]["nested_path"] == "company_locations_full"
    assert caps["employees_count_inferred"]["rangeable"]
    berlin = {"company_locations_full": {"$elemMatch": {"company_locations_full.city": "Berlin"}}}
    page = (await api.post(QUERY, {"simple_filters": berlin, "page_size": 100})).json()
    world = api.sandbox.world
    offices = {c.linkedin_slug: render_company(world.seed, c).raw_source["company_locations_full"]
               for c in world.companies if world.visible("sixtyfour", c.true_id)}
    expected = [slug for slug, places in offices.items() if any(o["city"] == "Berlin" for o in places)]
    assert [r["raw_document_id"] for r in page["results"]] == expected and expected


async def test_wrapped_list_items_are_served_and_unwrapped_by_the_adapter(make_api: MakeApi) -> None:
    api = await make_api({"wrap_company_list_items": True})
    page = (await api.post(QUERY, {"simple_filters": {"employees_count": {"$gte": 1000}}, "page_size": 20})).json()
    world = api.sandbox.world
    by_slug = {c.linkedin_slug: c for c in world.companies}
    for row in page["results"]:
        src, plain = row["raw_source"], render_company(world.seed, by_slug[row["raw_document_id"]]).raw_source
        assert src["company_locations_full"][0] == {"element": plain["company_locations_full"][0]}
        assert all(set(item) == {"element"} for name in LIST_FIELDS for item in src[name])
        assert src["company_name_alias"][0] == {"element": plain["company_name_alias"][0]}
        hit = hit_from_row(QueryRow.model_validate(row), mode="company", rank=1, job_id=None, retrieved_at=NOW)
        assert hit.entity == company_from_source(plain) and hit.raw["raw_source"] == src  # raw kept as received
    people = (await api.post(QUERY, {"mode": "people", "simple_filters": {"seniority": "VP"}})).json()
    assert "element" not in people["results"][0]["raw_source"]["currentCompanies"][0]  # people rows stay bare


async def test_a_filter_search_normalizes_wrapped_rows_end_to_end(make_aggregator: Any) -> None:
    agg = await make_aggregator(n_companies=300, emulator={"wrap_company_list_items": True})
    report = await agg.filter_search(mode="company", simple_filters={"employees_count": {"$gte": 300}})
    world = agg.sandbox.world
    by_domain = {c.domain: c for c in world.companies}
    assert report.records
    for record in report.records:
        entity = record.entity
        assert isinstance(entity, Company) and entity.domain
        truth = by_domain[entity.domain]
        assert entity.linkedin_url == f"https://www.linkedin.com/company/{truth.linkedin_slug}"
        assert (entity.hq_city, entity.employee_count) == (truth.hq_city, truth.employees_count)
        assert record.hits[0].raw["raw_source"]["company_locations_full"][0]["element"]["is_primary"] is True


def test_normalization_falls_back_on_the_new_fields() -> None:
    source = {
        "company_name_alias": [{"element": "Acme"}], "website_domain": "acme.com",
        "linkedin_url": "https://linkedin.com/company/acme/",
        "canonical_linkedin_url": "https://www.linkedin.com/company/acme",
        "description_enriched": "Acme makes freight software.", "employees_count_inferred": 120,
        "company_locations_full": [
            {"element": {"location_address": "1 Main Street, Austin, TX", "city": "Austin", "state": "TX",
                         "is_primary": False}},
            {"element": {"location_address": "9 King Road, Boston, MA", "city": "Boston", "state": "MA",
                         "is_primary": True}}],
        "revenue_annual": {"source_5_annual_revenue": {"annual_revenue": 1e7, "annual_revenue_currency": "USD"}},
    }
    company = company_from_source(source)
    assert company.name == "Acme" and company.linkedin_url == "https://www.linkedin.com/company/acme"
    assert company.description == "Acme makes freight software." and company.employee_count == 120
    assert (company.hq_city, company.hq_region) == ("Boston", "MA")
    own = company_from_source({**source, "company_name": "Acme Freight", "company_legal_name": "Acme Freight Inc.",
                               "description": "Freight.", "employees_count": 0, "hq_city": "Denver", "hq_state": "CO"})
    assert (own.name, own.description, own.employee_count) == ("Acme Freight", "Freight.", 0)  # 0 = showcase page
    assert (own.hq_city, own.hq_region) == ("Denver", "CO")
    legal = company_from_source({"company_legal_name": "Acme Freight Inc.", "company_name_alias": ["Acme"]})
    assert legal.name == "Acme Freight Inc." and legal.employee_count is None


def test_company_csv_carries_the_new_columns_and_normalizes_them(world: World) -> None:
    company = max(world.companies, key=lambda c: c.employees_count)
    row = render_company(world.seed, company)
    (record,) = rows_from_csv(render_csv("company", [row]).decode(), "GET /_storage")
    assert record["canonical_linkedin_url"] == row.raw_source["canonical_linkedin_url"]
    assert record["hq_full_address"] == row.raw_source["hq_full_address"]
    assert record["company_emails"].startswith('["') and company.domain in record["company_emails"]
    hit = hit_from_csv({**record, "employees_count": ""}, mode="company", rank=1, job_id=None, retrieved_at=NOW)
    assert isinstance(hit.entity, Company)
    assert hit.entity.linkedin_url == row.raw_source["canonical_linkedin_url"]
    assert hit.entity.employee_count == row.raw_source["employees_count_inferred"]
